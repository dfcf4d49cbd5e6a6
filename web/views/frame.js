// One frame: the full image, its metadata and labels (add with the box, `l` focuses it; remove with ×), the
// frames that look most like it, and the robot's previous/next frame (arrow keys).

import { api, frameUrl } from "../api.js";
import { attempt, clear, fmtBytes, fmtTime, h, labelChips, toast } from "../dom.js";

const open = (key) => (location.hash = `#/frame/${encodeURIComponent(key)}`);

export async function frameView(root, { parts }) {
  const key = parts[0];
  let frame;
  try {
    frame = await api(frameUrl(key));
  } catch (error) {
    root.append(h("p.empty", {}, error.message, " ", h("a", { href: "#/" }, "Back to the robots.")));
    return;
  }
  const labelsBox = h("div.labels-box");
  const labelInput = h("input#label-input", {
    placeholder: "add a label (l)",
    list: "frame-label-names",
    "aria-label": "add a label",
    autocomplete: "off",
  });
  const names = h("datalist", { id: "frame-label-names" });
  const similarGrid = h("div.similar");
  const sameRobot = h("input", { type: "checkbox", onchange: () => loadSimilar() });
  const robotHref = `#/robot/${encodeURIComponent(frame.robot_id)}`;

  const nav = h(
    "div.frame-nav",
    {},
    h("a.button", { href: robotHref }, `↑ ${frame.robot_id}`),
    h("button#prev", {
      type: "button",
      disabled: !frame.previous_key,
      title: "previous frame (←)",
      onclick: () => frame.previous_key && open(frame.previous_key),
    }, "← Previous"),
    h("span.when", {}, fmtTime(frame.timestamp_ms)),
    h("button#next", {
      type: "button",
      disabled: !frame.next_key,
      title: "next frame (→)",
      onclick: () => frame.next_key && open(frame.next_key),
    }, "Next →"),
  );

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
      h(
        "div.image-box",
        {},
        h("img#frame-image", {
          src: frameUrl(frame.key, "image"),
          alt: `${frame.robot_id} at ${frame.capture_time}`,
        }),
      ),
      h(
        "aside.frame-side",
        {},
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
    h("p.hint", {}, "Keys: ← previous, → next, l label box, Esc back to the robot."),
  );

  function paintLabels() {
    const fromClips = {};
    for (const c of frame.clips) for (const l of c.labels) fromClips[l] = c.name;
    clear(
      labelsBox,
      frame.labels.length
        ? labelChips(frame.labels, { removable: frame.direct_labels, onRemove: removeLabel, fromClips })
        : h("p.muted", {}, "No labels yet."),
    );
  }
  async function reload() {
    const fresh = await attempt(() => api(frameUrl(frame.key)));
    if (fresh) frame = fresh;
    paintLabels();
  }
  async function addLabel() {
    const name = labelInput.value.trim();
    if (!name) return;
    const ok = await attempt(() =>
      api("/api/frames/labels", { method: "POST", body: { keys: [frame.key], add: [name] } })
    );
    if (!ok) return;
    labelInput.value = "";
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
    const data = await attempt(() => api("/api/labels"));
    if (data) clear(names, data.labels.map((l) => h("option", { value: l.name })));
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
    clear(
      similarGrid,
      data.frames.length ? null : h("p.muted", {}, "No other frames with a hash."),
      data.frames.map((f) =>
        h(
          "a.tile.similar-tile",
          {
            href: `#/frame/${encodeURIComponent(f.key)}`,
            title: `${f.robot_id} ${f.capture_time}`,
            dataset: { key: f.key },
          },
          h("img", {
            src: frameUrl(f.key, "thumb"),
            alt: `${f.robot_id} at ${f.capture_time}`,
            loading: "lazy",
          }),
          h(
            "span.caption",
            {},
            h("span.distance", { title: "hamming distance in bits" }, `${f.distance} bits`),
            ` ${f.robot_id} ${fmtTime(f.timestamp_ms, { millis: false })}`,
          ),
        )
      ),
    );
  }

  const onKey = (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
    if (e.key === "Escape") {
      if (typing) e.target.blur();
      else location.hash = robotHref;
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "ArrowLeft" && frame.previous_key) open(frame.previous_key);
    else if (e.key === "ArrowRight" && frame.next_key) open(frame.next_key);
    else if (e.key === "l") {
      e.preventDefault();
      labelInput.focus();
    } else return;
  };
  document.addEventListener("keydown", onKey);
  paintLabels();
  refreshNames();
  loadSimilar();
  return () => document.removeEventListener("keydown", onKey);
}
