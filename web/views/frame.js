// One frame: the full image with its boxes (drawn, moved, resized, classed and accepted with the mouse or the
// keyboard: see web/boxes.js), its review status, its whole-frame labels (add with the box, `l` focuses it;
// remove with ×), metadata, the frames that look most like it, and the robot's previous/next frame (←/→).
// A frame opened from a search keeps that search in its URL, so `n` goes to the next frame to do in it.

import { api, frameUrl } from "../api.js";
import { attempt, clear, fmtBytes, fmtTime, goBack, h, labelChips, toast } from "../dom.js";
import { similarResults } from "../actions.js";
import { BoxEditor, classColor, classOfHotkey, loadLabelSet } from "../boxes.js";

/** The search parameters a frame page carries along (those of GET /api/frames, and `want`). */
const CONTEXT = ["robot", "from", "to", "label", "all_labels", "tier", "status", "nolabel", "order", "want"];
const CLASS_KEY = "frame-bucket.box-class";

/**
 * `#/frame/KEY?…` for a frame opened from a search: the search's filter and order ride along (an object of
 * GET /api/frames parameters, arrays repeated, or URLSearchParams), so the frame page's `n` finds the next frame
 * to do in that same search and ←/→ keep it.
 */
export function frameHref(key, search = {}) {
  const q = new URLSearchParams();
  const pairs = search instanceof URLSearchParams
    ? [...search]
    : Object.entries(search).flatMap(([name, v]) => (Array.isArray(v) ? v : [v]).map((x) => [name, x]));
  for (const [name, v] of pairs) {
    if (CONTEXT.includes(name) && v !== undefined && v !== null && v !== "" && v !== false) {
      q.append(name, String(v));
    }
  }
  const text = q.toString();
  return `#/frame/${encodeURIComponent(key)}${text ? `?${text}` : ""}`;
}

/**
 * What `n` looks for: the URL's `want`, else "review" when the search asks for labelled frames (a review
 * search), else "unlabelled".
 */
function wantOf(params) {
  const want = params.get("want");
  if (want === "review" || want === "unlabelled") return want;
  const status = params.getAll("status").flatMap((s) => s.split(","));
  return status.includes("labelled") && !status.includes("unlabelled") ? "review" : "unlabelled";
}

const STATUS_TEXT = {
  unlabelled: "unlabelled",
  labelled: "labelled, to review",
  reviewed: "reviewed",
  rejected: "rejected",
};

export async function frameView(root, { parts, params = new URLSearchParams() }) {
  const key = parts[0];
  let frame;
  try {
    frame = await api(frameUrl(key));
  } catch (error) {
    root.append(h("p.empty", {}, error.message, " ", h("a", { href: "#/" }, "Back to the robots.")));
    return;
  }
  const context = new URLSearchParams([...params].filter(([name]) => CONTEXT.includes(name)));
  const want = wantOf(params);
  const hrefOf = (k) => frameHref(k, context);
  const robotHref = `#/robot/${encodeURIComponent(frame.robot_id)}`;

  const labelsBox = h("div.labels-box");
  const labelInput = h("input#label-input", {
    placeholder: "add a label (l)",
    list: "frame-label-names",
    "aria-label": "add a label",
    autocomplete: "off",
    // Enter adds the label itself: while the browser's suggestion list is still open (a name typed fast after a
    // prefix of a known one), Chromium takes the Enter to close the list and the form is never submitted.
    onkeydown: (e) => {
      if (e.key !== "Enter" || e.isComposing) return;
      e.preventDefault();
      addLabel();
    },
  });
  const names = h("datalist", { id: "frame-label-names" });
  const similarGrid = h("div.similar");
  const sameRobot = h("input", { type: "checkbox", onchange: () => loadSimilar() });
  const statusBadge = h("span#review-status.review-status");
  const boxList = h("ul.box-list", { "aria-label": "boxes of this frame" });
  const classPicker = h("div.class-picker", { role: "group", "aria-label": "classes" });
  const zoomLevel = h("span#zoom-level.zoom-level");
  const classInput = h("input#box-class", {
    placeholder: "class for new boxes",
    list: "frame-label-names",
    "aria-label": "class for new boxes",
    autocomplete: "off",
    size: 14,
    onkeydown: (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      const name = classInput.value.trim();
      if (!name) return;
      classInput.blur(); // keys go back to the boxes
      pickClass(name);
    },
  });

  const editor = new BoxEditor({
    frameKey: frame.key,
    boxes: frame.boxes ?? [],
    alt: `${frame.robot_id} at ${frame.capture_time}`,
    onChange: () => {
      paintBoxes();
      paintStatus();
    },
    onNeedClass: () => {
      toast("Pick a class for the box: press 1–9, or type one and press Enter.");
      classInput.focus();
    },
  });
  editor.className = sessionStorage.getItem(CLASS_KEY) ?? "";
  classInput.value = editor.className;

  const go = async (k) => {
    if (!k) return;
    await editor.flush();
    location.hash = hrefOf(k);
  };

  const nav = h(
    "div.frame-nav",
    {},
    h("a.button", { href: robotHref }, `↑ ${frame.robot_id}`),
    h("button#prev", {
      type: "button",
      disabled: !frame.previous_key,
      title: "previous frame (←)",
      onclick: () => go(frame.previous_key),
    }, "← Previous"),
    h("span.when", {}, fmtTime(frame.timestamp_ms)),
    h("button#next", {
      type: "button",
      disabled: !frame.next_key,
      title: "next frame (→)",
      onclick: () => go(frame.next_key),
    }, "Next →"),
    h("span.sep"),
    statusBadge,
    h("button#mark-reviewed.quiet", {
      type: "button",
      title: "reviewed (r)",
      onclick: () => review("reviewed"),
    }, "✓ Reviewed"),
    h("button#mark-rejected.quiet", {
      type: "button",
      title: "rejected (x)",
      onclick: () => review("rejected"),
    }, "✗ Rejected"),
    h(
      "button#next-todo",
      { type: "button", title: "next frame to do in this search (n)", onclick: () => nextToDo() },
      want === "review" ? "Next to review (n)" : "Next unlabelled (n)",
    ),
  );

  const toolbar = h(
    "div.box-toolbar",
    {},
    h(
      "button#zoom-out.quiet",
      { type: "button", title: "zoom out (−)", onclick: () => editor.zoomOut() },
      "−",
    ),
    zoomLevel,
    h("button#zoom-in.quiet", { type: "button", title: "zoom in (+)", onclick: () => editor.zoomIn() }, "+"),
    h(
      "button#zoom-fit.quiet",
      { type: "button", title: "fit (0)", onclick: () => editor.zoomReset() },
      "Fit",
    ),
    h("span.sep"),
    h("label", {}, "Class ", classInput),
    classPicker,
  );

  // The frame's key on the editor: the page is redrawn on ← / →, and tests wait for the new frame's editor by it.
  const editorBox = h("div.image-box.box-editor", { dataset: { key: frame.key } }, toolbar, editor.el);

  const details = h(
    "dl.meta",
    {},
    [
      ["robot", h("a", { href: robotHref }, frame.robot_id)],
      ["captured", fmtTime(frame.timestamp_ms)],
      ["sequence", frame.seq],
      ["size", fmtBytes(frame.size)],
      ["tier", frame.tier],
      [
        "filter",
        `${frame.filter}${
          frame.filter_distance === null ? " (first frame)" : `, distance ${frame.filter_distance}`
        }`,
      ],
      ["stored", fmtTime(Date.parse(frame.stored_time))],
      ["clips", frame.clips.length ? frame.clips.map((c) => c.name).join(", ") : "—"],
      ["key", h("code", {}, frame.key)],
    ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );

  root.append(
    nav,
    h(
      "div.frame-main",
      {},
      editorBox,
      h(
        "aside.frame-side",
        {},
        h("h2", {}, "Boxes"),
        boxList,
        h("h2", {}, "Labels"),
        labelsBox,
        h(
          "form.label-form",
          {
            onsubmit: (e) => {
              e.preventDefault();
              addLabel();
            },
          },
          labelInput,
          names,
          h("button", { type: "submit" }, "Add"),
        ),
        h("h2", {}, "Details"),
        details,
        h("p", {}, h("a", { href: frameUrl(frame.key, "image"), download: "" }, "Download the JPEG")),
      ),
    ),
    h(
      "p.hint.keys-help",
      {},
      "Keys: drag on the image to draw a box · 1–9 class (of the selected box and the next one) · " +
        "Tab / Shift+Tab select a box · arrows move it, Shift+arrows resize (Alt: 10 px) · Delete remove · " +
        "Enter accept the selected pre-label (none selected: all) · + − 0 zoom (Ctrl+wheel) · " +
        "r reviewed (accepts the pre-labels left) · x rejected · n next to do · " +
        "← → previous / next frame (no box selected) · " +
        "l label box · Esc deselect, then back to the robot.",
    ),
    h(
      "section.similar-box",
      {},
      h(
        "div.view-head",
        {},
        h("h2", {}, "Looks like this"),
        h("label.muted", {}, sameRobot, " same robot only"),
      ),
      similarGrid,
    ),
  );

  // ---- boxes and classes
  function paintBoxes() {
    zoomLevel.textContent = `${Math.round(editor.zoom * 100)}%`;
    clear(
      boxList,
      editor.boxes.length === 0 ? h("li.muted", {}, "No boxes: drag on the image to draw one.") : null,
      editor.boxes.map((b) =>
        h(
          `li.box-item${b.id === editor.selected ? ".selected" : ""}${b.accepted ? "" : ".pre"}`,
          {
            dataset: { id: String(b.id) },
            "aria-selected": String(b.id === editor.selected),
            onclick: () => editor.select(b.id === editor.selected ? null : b.id),
          },
          h("span.swatch", { style: { background: classColor(b.label) } }),
          h("span.box-label", {}, b.label),
          b.accepted ? null : h("span.pre-tag", { title: `${b.source}, not accepted yet` }, "pre-label"),
          b.confidence === null || b.confidence === undefined
            ? null
            : h("span.muted", {}, b.confidence.toFixed(2)),
        )
      ),
    );
  }
  function paintClasses(set) {
    const withKeys = [...set.labels.values()].filter((l) => l.hotkey !== null && l.hotkey !== undefined)
      .sort((a, b) => a.hotkey - b.hotkey);
    clear(
      classPicker,
      withKeys.map((l) =>
        h(
          `button.class-chip${l.name === editor.className ? ".current" : ""}`,
          {
            type: "button",
            title: `class ${l.name} (key ${l.hotkey})`,
            dataset: { label: l.name },
            onclick: (e) => {
              e.currentTarget.blur();
              pickClass(l.name);
            },
          },
          h("kbd", {}, String(l.hotkey)),
          h("span.swatch", { style: { background: classColor(l.name) } }),
          l.name,
        )
      ),
    );
  }
  let labelSetNow = { labels: new Map(), strict: false };
  async function pickClass(name) {
    sessionStorage.setItem(CLASS_KEY, name);
    classInput.value = name;
    const pending = editor.setClass(name); // sets the class at once, then saves
    paintClasses(labelSetNow);
    await pending;
    if (!labelSetNow.labels.has(name)) refreshNames(); // a class made by this box
  }

  // ---- review
  function status() {
    if (frame.status === "reviewed" || frame.status === "rejected") return frame.status;
    return frame.direct_labels.length > 0 || editor.boxes.length > 0 ? "labelled" : "unlabelled";
  }
  function paintStatus() {
    const now = status();
    statusBadge.dataset.status = now;
    statusBadge.textContent = STATUS_TEXT[now];
  }
  async function review(to) {
    await editor.flush();
    // Reviewing a frame vouches for the boxes left on it: the pre-labels not deleted become a person's.
    if (to === "reviewed" && editor.preLabels.length > 0) await editor.accept({ all: true });
    const ok = await attempt(() =>
      api("/api/frames/review", { method: "POST", body: { keys: [frame.key], status: to } })
    );
    if (!ok) return;
    frame.status = to;
    paintStatus();
    toast(`marked ${to}`);
  }
  async function nextToDo() {
    await editor.flush();
    const query = Object.fromEntries(CONTEXT.filter((n) => n !== "want").map((n) => [n, context.getAll(n)]));
    // Opened on its own (no search): the robot's frames, forward in time as → goes.
    if (![...context.keys()].some((n) => n !== "want")) {
      Object.assign(query, { robot: frame.robot_id, order: "oldest" });
    }
    const data = await attempt(() => api(frameUrl(frame.key, "next"), { query: { ...query, want } }));
    if (!data) return;
    if (data.key) {
      location.hash = frameHref(data.key, [...context].length ? context : { ...query, want });
    } else {
      toast(
        want === "review"
          ? "Nothing left to review after this frame in this search."
          : "No unlabelled frame after this one in this search.",
      );
    }
  }

  // ---- whole-frame labels
  function paintLabels() {
    const fromClips = {};
    for (const c of frame.clips) for (const l of c.labels) fromClips[l] = c.name;
    // Whole-frame labels: its own and its clips'; box classes are listed with the boxes.
    const shown = frame.labels.filter((l) => frame.direct_labels.includes(l) || l in fromClips);
    clear(
      labelsBox,
      shown.length
        ? labelChips(shown, { removable: frame.direct_labels, onRemove: removeLabel, fromClips })
        : h("p.muted", {}, "No labels yet."),
    );
  }
  async function reload() {
    const fresh = await attempt(() => api(frameUrl(frame.key)));
    if (fresh) frame = fresh;
    paintLabels();
    paintStatus();
  }
  async function addLabel() {
    const name = labelInput.value.trim();
    if (!name) return;
    const ok = await attempt(() =>
      api("/api/frames/labels", { method: "POST", body: { keys: [frame.key], add: [name] } })
    );
    if (!ok) return; // the box keeps the focus: the name can be fixed
    labelInput.value = "";
    // The focus leaves the box, so the next keys are the page's again (← → move on, `l` opens the box empty)
    // instead of being typed into the box.
    labelInput.blur();
    toast(`labelled ${name}`);
    await reload();
    refreshNames();
  }
  async function removeLabel(name) {
    const ok = await attempt(() =>
      api("/api/frames/labels", { method: "POST", body: { keys: [frame.key], remove: [name] } })
    );
    if (ok) await reload();
  }
  async function refreshNames() {
    const set = await attempt(() => loadLabelSet({ fresh: true }));
    if (!set) return;
    labelSetNow = set;
    editorBox.dataset.labels = "loaded"; // hotkeys work from here on (tests wait for it)
    clear(names, [...set.labels.keys()].map((name) => h("option", { value: name })));
    paintClasses(set);
    editor.paint(); // the label set's colours
    paintBoxes();
  }
  async function loadSimilar() {
    clear(similarGrid, h("p.muted", {}, "Looking…"));
    let data;
    try {
      data = await api(frameUrl(frame.key, "similar"), {
        query: { k: 12, robot: sameRobot.checked ? frame.robot_id : "" },
      });
    } catch (error) {
      clear(similarGrid, h("p.muted", {}, error.message));
      return;
    }
    clear(similarGrid, similarResults(data.frames, { label: "frames like this one" }).el);
  }

  // ---- keys
  const onKey = (e) => {
    const t = e.target;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement ||
      t instanceof HTMLSelectElement || t?.isContentEditable;
    if (e.key === "Escape") {
      if (typing) t.blur();
      else if (editor.hasDraft) editor.dropDraft();
      else if (editor.selected !== null) editor.select(null);
      else goBack(robotHref);
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || document.querySelector("dialog[open]")) return;
    // A focused button or link keeps Enter and Space (and Tab) for itself.
    const onControl = t instanceof HTMLButtonElement || t instanceof HTMLAnchorElement;
    const step = e.altKey ? 10 : 1;
    const arrows = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    if (e.key in arrows) {
      if (editor.selectedBox) {
        e.preventDefault(); // also the browser's Alt+← (history back)
        const [dx, dy] = arrows[e.key];
        editor.nudge(dx, dy, { resize: e.shiftKey });
      } else if (!e.altKey && !e.shiftKey && e.key === "ArrowLeft" && frame.previous_key) {
        go(frame.previous_key);
      } else if (!e.altKey && !e.shiftKey && e.key === "ArrowRight" && frame.next_key) {
        go(frame.next_key);
      }
      return;
    }
    if (e.altKey) return;
    if (e.key === "Tab") {
      if (onControl || editor.boxes.length === 0) return;
      e.preventDefault();
      editor.selectStep(e.shiftKey ? -1 : 1);
    } else if (e.key === "Delete" || e.key === "Backspace") {
      if (!editor.selectedBox) return;
      e.preventDefault();
      editor.removeSelected();
    } else if (/^[1-9]$/.test(e.key)) {
      e.preventDefault();
      const name = classOfHotkey(Number(e.key));
      if (name) pickClass(name);
      else toast(`No class has the key ${e.key}: give one on the Labels page.`, "error");
    } else if (e.key === "Enter") {
      if (onControl) return;
      e.preventDefault();
      acceptKey();
    } else if (e.key === "+" || e.key === "=") editor.zoomIn();
    else if (e.key === "-" || e.key === "_") editor.zoomOut();
    else if (e.key === "0") editor.zoomReset();
    else if (e.key === "r") review("reviewed");
    else if (e.key === "x") review("rejected");
    else if (e.key === "n") nextToDo();
    else if (e.key === "l") {
      e.preventDefault();
      labelInput.focus();
    }
  };
  async function acceptKey() {
    const selected = editor.selectedBox;
    const n = await editor.accept({ all: selected === null });
    if (n > 0) toast(`accepted ${n} pre-label${n === 1 ? "" : "s"}`);
    else if (!selected) toast("No pre-labels on this frame.");
  }

  document.addEventListener("keydown", onKey);
  paintLabels();
  paintBoxes();
  paintStatus();
  refreshNames();
  loadSimilar();
  return () => {
    document.removeEventListener("keydown", onKey);
    editor.flush();
    editor.destroy();
  };
}
