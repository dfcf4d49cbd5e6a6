// The action bar of a gallery, the same wherever frames are listed (a robot's frames, search results, similar
// frames): add or remove a label on the selected frames (or on a robot view's picked span), make a clip of them
// when they are one robot's, and Clear. It shows while there is something to act on, and confirms each action.

import { api } from "./api.js";
import { attempt, clear, h, toast } from "./dom.js";
import { Gallery } from "./gallery.js";

let bars = 0;

/**
 * @param {import("./gallery.js").Gallery} gallery
 * @param {object} [o]
 * @param {() => ({text: string, body: object, robot: string, fromMs: number, toMs: number} | null)} [o.span]
 *   what to act on when no frame is selected (the robot view's picked span)
 * @param {() => void} [o.onClearSpan]  Clear with no frame selected
 * @param {() => void} [o.onSpanChanged]  after labels of a span changed, or a clip with labels was made
 * @param {(clip: object) => void} [o.onClip]  after a clip was made
 * @returns {{el: HTMLElement, paint: () => void}}
 */
export function actionBar(
  gallery,
  { span = () => null, onClearSpan = () => {}, onSpanChanged = () => {}, onClip = () => {} } = {},
) {
  const listId = `label-names-${++bars}`;
  const labelInput = h("input", { placeholder: "label", list: listId, size: 16, "aria-label": "label" });
  const clipName = h("input", { placeholder: "clip name", size: 16, "aria-label": "clip name" });
  const datalist = h("datalist", { id: listId });
  const targetText = h("strong");
  const clipControls = h(
    "span.clip-controls",
    {},
    h("span.sep"),
    clipName,
    h("button", { type: "button", onclick: makeClip }, "Make clip"),
  );
  const el = h(
    "div.actionbar",
    { hidden: true, role: "toolbar", "aria-label": "actions on the selected frames" },
    h("span", {}, "For ", targetText, ":"),
    labelInput,
    datalist,
    h("button", { type: "button", onclick: () => changeLabels("add") }, "Add label"),
    h("button.quiet", { type: "button", onclick: () => changeLabels("remove") }, "Remove label"),
    clipControls,
    h("span.sep"),
    h("button.quiet", {
      type: "button",
      title: "clear the selection (Esc)",
      onclick: () => (gallery.selected.size ? gallery.clearSelection() : onClearSpan()),
    }, "Clear"),
  );
  // Enter in the label box adds the label, as on the frame page.
  labelInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      changeLabels("add");
    }
  });

  function target() {
    const picked = gallery.selectedHits();
    if (picked.length) {
      const times = picked.map((p) => p.timestamp_ms);
      const robots = [...new Set(picked.map((p) => p.robot_id))];
      return {
        text: `${picked.length} selected frame${picked.length === 1 ? "" : "s"}`,
        body: { keys: picked.map((p) => p.key) },
        keys: picked.map((p) => p.key),
        robot: robots.length === 1 ? robots[0] : null,
        fromMs: Math.min(...times),
        toMs: Math.max(...times),
      };
    }
    const s = span();
    return s ? { ...s, keys: null } : null;
  }

  async function changeLabels(kind) {
    const t = target();
    const name = labelInput.value.trim();
    if (!t) return;
    if (!name) {
      labelInput.focus();
      return toast("type a label first", "error");
    }
    const result = await attempt(() =>
      api("/api/frames/labels", { method: "POST", body: { ...t.body, [kind]: [name] } })
    );
    if (!result) return;
    toast(
      kind === "add"
        ? `${result.added} frame(s) labelled ${name}`
        : `${result.removed} label(s) ${name} removed`,
    );
    if (t.keys) gallery.applyLabels(t.keys, { [kind]: [name] });
    else onSpanChanged();
    refreshLabelNames();
  }

  async function makeClip() {
    const t = target();
    const name = clipName.value.trim();
    if (!t?.robot) return;
    if (!name) {
      clipName.focus();
      return toast("give the clip a name", "error");
    }
    const labels = labelInput.value.trim() ? [labelInput.value.trim()] : [];
    const clip = await attempt(() =>
      api("/api/clips", {
        method: "POST",
        body: { robot: t.robot, from: t.fromMs, to: t.toMs, name, labels },
      })
    );
    if (!clip) return;
    toast(`clip ${clip.name} made: ${clip.frames} frames`);
    clipName.value = "";
    onClip(clip);
    if (labels.length) onSpanChanged();
  }

  async function refreshLabelNames() {
    const data = await attempt(() => api("/api/labels"));
    if (data) clear(datalist, data.labels.map((l) => h("option", { value: l.name })));
  }

  function paint() {
    const t = target();
    el.hidden = !t;
    if (!t) return;
    targetText.textContent = t.text;
    // A clip is one robot's span: frames of several robots cannot make one.
    clipControls.hidden = !t.robot;
  }
  refreshLabelNames();
  return { el, paint };
}

/**
 * Similar-frame results (GET /api/frames/{key}/similar, POST /api/similar) as selectable tiles with their own
 * action bar; a plain click opens a frame. Tiles carry the class `similar-tile` and show the distance in bits.
 */
export function similarResults(frames, { label = "similar frames", onOpen = openFrame } = {}) {
  let bar = null;
  const gallery = new Gallery({
    hits: frames,
    onOpen,
    onSelection: () => bar?.paint(),
    showRobot: true,
    label,
    tileClass: "similar-tile",
    emptyText: "No frames with a hash.",
  });
  bar = actionBar(gallery);
  const el = h("div.similar-results", {}, gallery.el, bar.el);
  return { el, gallery };
}

/** Opens a frame's page. */
export function openFrame(hit) {
  location.hash = `#/frame/${encodeURIComponent(hit.key)}`;
}
