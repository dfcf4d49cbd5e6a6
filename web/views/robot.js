// One robot: its timeline, its clips, and a gallery of its frames (newest first) that loads as you scroll.
// Frames are picked by selecting tiles or a span on the timeline; the action bar labels them or makes a clip.

import { api } from "../api.js";
import { attempt, clear, fmtCount, fmtTime, h, isoParam, parseUtc, toast } from "../dom.js";
import { Gallery } from "../gallery.js";
import { markPicked, timeline } from "../timeline.js";

function parseSpan(params) {
  const ms = (name) => {
    const v = params.get(name);
    const t = v ? parseUtc(v, { end: name === "to" }) : NaN;
    return Number.isFinite(t) ? t : undefined;
  };
  return { fromMs: ms("from"), toMs: ms("to") };
}

export async function robotView(root, { parts, params }) {
  const robot = parts[0];
  let span = parseSpan(params);
  let bucket = params.get("bucket") || "auto";
  const head = h("div.view-head", {}, h("h1", {}, robot), h("span.muted.stats"));
  const timelineSlot = h("div.timeline-slot");
  const bucketSelect = h(
    "select",
    {
      "aria-label": "bar width",
      onchange: () => ((bucket = bucketSelect.value), drawTimeline(), syncHash()),
    },
    ["auto", "minute", "hour", "day"].map((b) => h("option", { value: b, selected: b === bucket }, b)),
  );
  const fromInput = h("input", { name: "from", placeholder: "from, e.g. 2026-02-18T09:00Z", size: 24 });
  const toInput = h("input", { name: "to", placeholder: "to", size: 24 });
  const rangeForm = h(
    "form.rangebar",
    {
      onsubmit: (e) => {
        e.preventDefault();
        const from = fromInput.value.trim(), to = toInput.value.trim();
        setSpan(from ? parseUtc(from) : undefined, to ? parseUtc(to, { end: true }) : undefined);
      },
    },
    h("label", {}, "Bars ", bucketSelect),
    h("span.sep"),
    fromInput,
    h("span", {}, "–"),
    toInput,
    h("button", { type: "submit" }, "Show"),
    h("button.quiet", { type: "button", onclick: () => setSpan(undefined, undefined) }, "All frames"),
  );
  const clipsBox = h("div.clip-strip");
  const actionBar = h("div.actionbar", { hidden: true });
  root.append(
    head,
    h("section.panel", {}, rangeForm, timelineSlot),
    clipsBox,
    h(
      "p.hint",
      {},
      "Click a bar to show its frames, Shift-click another to stretch the span. Click a frame to open it; tick ",
      "frames (or Ctrl-click, Shift-click for a run) to label several or make a clip of them.",
    ),
    actionBar,
  );

  const gallery = new Gallery({
    query: galleryQuery(),
    onOpen: (hit) => (location.hash = `#/frame/${encodeURIComponent(hit.key)}`),
    onSelection: () => paintActions(),
    onPage: () => paintActions(),
    emptyText: "No frames in this span.",
  });
  root.append(gallery.el);

  let timelineData = null;
  function galleryQuery() {
    return {
      robot,
      from: span.fromMs === undefined ? undefined : isoParam(span.fromMs),
      to: span.toMs === undefined ? undefined : isoParam(span.toMs),
    };
  }
  function syncHash() {
    const q = new URLSearchParams();
    if (span.fromMs !== undefined) q.set("from", isoParam(span.fromMs));
    if (span.toMs !== undefined) q.set("to", isoParam(span.toMs));
    if (bucket !== "auto") q.set("bucket", bucket);
    const text = q.toString();
    history.replaceState(null, "", `#/robot/${encodeURIComponent(robot)}${text ? `?${text}` : ""}`);
  }
  function setSpan(fromMs, toMs) {
    if (Number.isNaN(fromMs) || Number.isNaN(toMs)) {
      toast("from/to must be ISO 8601 times (2026-02-18T09:00Z) or ms since the epoch", "error");
      return;
    }
    span = { fromMs, toMs };
    fromInput.value = fromMs === undefined ? "" : isoParam(fromMs);
    toInput.value = toMs === undefined ? "" : isoParam(toMs);
    const box = timelineSlot.querySelector(".timeline-box");
    if (box && timelineData) markPicked(box, timelineData.bucket_ms, fromMs, toMs);
    syncHash();
    gallery.reset(galleryQuery());
    paintActions();
  }
  async function drawTimeline() {
    const data = await attempt(() =>
      api(`/api/robots/${encodeURIComponent(robot)}/timeline`, { query: { bucket } })
    );
    if (!data) return;
    timelineData = data;
    clear(timelineSlot, timeline(data, span, (a, b) => setSpan(a, b)));
    head.querySelector(".stats").textContent = `${fmtCount(data.frames)} frames · ${
      fmtTime(data.first_timestamp_ms, { millis: false })
    } – ${fmtTime(data.last_timestamp_ms, { millis: false })} · bars of one ${data.bucket}`;
  }
  async function drawClips() {
    const { clips } = await api("/api/clips", { query: { robot } });
    clear(
      clipsBox,
      clips.length ? h("span.muted", {}, "Clips: ") : null,
      clips.map((c) =>
        h(
          "button.clip",
          {
            type: "button",
            title: `${c.name}: ${fmtTime(c.from_ms)} – ${fmtTime(c.to_ms)}, ${c.frames} frames${
              c.note ? `\n${c.note}` : ""
            }`,
            onclick: () => setSpan(c.from_ms, c.to_ms),
          },
          c.name,
          c.labels.length ? h("span.clip-labels", {}, c.labels.join(", ")) : null,
        )
      ),
    );
  }

  // ---- the action bar: labels and clips for the selected frames, or for the picked span
  const labelInput = h("input", {
    placeholder: "label",
    list: "label-names",
    size: 16,
    "aria-label": "label",
  });
  const clipName = h("input", { placeholder: "clip name", size: 16, "aria-label": "clip name" });
  const datalist = h("datalist", { id: "label-names" });
  function target() {
    const picked = gallery.selectedHits();
    if (picked.length) {
      const times = picked.map((p) => p.timestamp_ms);
      return {
        text: `${picked.length} selected frame${picked.length === 1 ? "" : "s"}`,
        body: { keys: picked.map((p) => p.key) },
        keys: picked.map((p) => p.key),
        fromMs: Math.min(...times),
        toMs: Math.max(...times),
      };
    }
    if (span.fromMs !== undefined && span.toMs !== undefined) {
      return {
        text: `all frames ${fmtTime(span.fromMs, { millis: false })} – ${
          fmtTime(span.toMs, { millis: false })
        }${gallery.total === null ? "" : ` (${fmtCount(gallery.total)})`}`,
        body: { robot, from: span.fromMs, to: span.toMs },
        keys: null,
        fromMs: span.fromMs,
        toMs: span.toMs,
      };
    }
    return null;
  }
  async function changeLabels(kind) {
    const t = target();
    const name = labelInput.value.trim();
    if (!t || !name) return toast("type a label first", "error");
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
    else gallery.reset(galleryQuery());
    refreshLabelNames();
  }
  async function makeClip() {
    const t = target();
    const name = clipName.value.trim();
    if (!t || !name) return toast("give the clip a name", "error");
    const labels = labelInput.value.trim() ? [labelInput.value.trim()] : [];
    const clip = await attempt(() =>
      api("/api/clips", { method: "POST", body: { robot, from: t.fromMs, to: t.toMs, name, labels } })
    );
    if (!clip) return;
    toast(`clip ${clip.name} made: ${clip.frames} frames`);
    clipName.value = "";
    drawClips();
    if (labels.length) gallery.reset(galleryQuery());
  }
  const targetText = h("strong");
  actionBar.append(
    h("span", {}, "For ", targetText, ":"),
    labelInput,
    datalist,
    h("button", { type: "button", onclick: () => changeLabels("add") }, "Add label"),
    h("button.quiet", { type: "button", onclick: () => changeLabels("remove") }, "Remove label"),
    h("span.sep"),
    clipName,
    h("button", { type: "button", onclick: makeClip }, "Make clip"),
    h("span.sep"),
    h("button.quiet", {
      type: "button",
      onclick: () => (gallery.selected.size ? gallery.clearSelection() : setSpan(undefined, undefined)),
    }, "Clear"),
  );
  function paintActions() {
    const t = target();
    actionBar.hidden = !t;
    if (t) targetText.textContent = t.text;
  }
  async function refreshLabelNames() {
    const { labels } = await api("/api/labels");
    clear(datalist, labels.map((l) => h("option", { value: l.name })));
  }

  fromInput.value = span.fromMs === undefined ? "" : isoParam(span.fromMs);
  toInput.value = span.toMs === undefined ? "" : isoParam(span.toMs);
  paintActions();
  await Promise.all([drawTimeline(), attempt(drawClips), attempt(refreshLabelNames)]);
  // Refresh the figures now and then: frames keep arriving.
  const timer = setInterval(() => document.visibilityState === "visible" && drawTimeline(), 30_000);
  return () => {
    clearInterval(timer);
    gallery.destroy();
  };
}
