// A robot's frames over time as a strip of bars (one per second, minute, hour or day). Pick a span with the mouse:
// click a bar, drag across bars, or Shift-click another bar to stretch the pick; double-click a bar to zoom into
// it (a day shows its hours, an hour its minutes, a minute its seconds). By keyboard the strip is one Tab stop:
// ←/→ (Home/End) move between bars, Enter or Space picks, Shift+Enter stretches, + zooms in, - zooms out.

import { fmtClock, fmtCount, fmtTime, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const BAR = 10;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

const inSpan = (start, width, fromMs, toMs) =>
  fromMs !== undefined && toMs !== undefined && start + width - 1 >= fromMs && start <= toMs;

/**
 * @param {object} data  {bucket, bucket_ms, buckets: [{start_ms, frames}]} (GET /api/robots/{id}/timeline, or
 *   second bars counted by the page)
 * @param {{fromMs?: number, toMs?: number}} picked  the current span, highlighted
 * @param {(fromMs: number, toMs: number) => void} onPick
 * @param {object} [o]
 * @param {{fromMs: number, toMs: number}} [o.range]  draw bars over this whole window (empty time too)
 * @param {(fromMs: number, toMs: number) => void} [o.onZoom]  zoom into a bar (double-click, +)
 * @param {() => void} [o.onZoomOut]  (-)
 */
export function timeline(data, picked, onPick, { range, onZoom = () => {}, onZoomOut = () => {} } = {}) {
  const width = data.bucket_ms;
  const counts = new Map(data.buckets.map((b) => [b.start_ms, b.frames]));
  const align = (t) => Math.floor(t / width) * width;
  const first = range ? align(range.fromMs) : data.buckets.length ? data.buckets[0].start_ms : 0;
  const last = range
    ? align(range.toMs)
    : data.buckets.length
    ? data.buckets[data.buckets.length - 1].start_ms
    : 0;
  const slots = [];
  for (let t = first; t <= last && slots.length < 5000; t += width) slots.push(t);
  const max = Math.max(1, ...data.buckets.map((b) => b.frames));
  const n = Math.max(1, slots.length);
  const chart = svg("svg", {
    class: "timeline",
    viewBox: `0 0 ${n * BAR} 100`,
    preserveAspectRatio: "none",
    role: "group",
    "aria-label": `timeline, a bar per ${data.bucket}: arrow keys move, Enter picks, Shift+Enter stretches ` +
      "the pick, + zooms in, - zooms out",
  });
  const groups = [];
  let focusAt = -1;
  slots.forEach((start, i) => {
    const frames = counts.get(start) ?? 0;
    const height = frames ? Math.max(4, (frames / max) * 100) : 0;
    const on = inSpan(start, width, picked.fromMs, picked.toMs);
    if (on && focusAt < 0) focusAt = i;
    const label = `${fmtTime(start, { millis: false })} (${data.bucket}): ${fmtCount(frames)} frames`;
    // A full-height transparent hit area over each bar keeps even empty and small buckets clickable.
    const group = svg(
      "g",
      {
        class: `slot${on ? " picked" : ""}`,
        "data-start": start,
        "data-index": i,
        role: "button",
        tabindex: "-1",
        "aria-label": label,
        "aria-pressed": String(on),
      },
      svg("title", {}, label),
      svg("rect", { class: "hit", x: i * BAR, y: 0, width: BAR, height: 100 }),
      svg("rect", { class: "bar", x: i * BAR + 1, y: 100 - height, width: BAR - 2, height }),
    );
    groups.push(group);
    chart.append(group);
  });
  // One Tab stop: the first picked bar, else the newest.
  if (groups.length) groups[focusAt >= 0 ? focusAt : groups.length - 1].setAttribute("tabindex", "0");

  let anchor = null; // index of the bar a pick started from (Shift stretches from it)
  let pressed = null; // index under the pointer when the button went down
  const indexAt = (clientX) => {
    const box = chart.getBoundingClientRect();
    return Math.max(0, Math.min(n - 1, Math.floor(((clientX - box.left) / box.width) * n)));
  };
  const pick = (a, b) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    onPick(slots[lo], slots[hi] + width - 1);
  };
  const preview = (a, b) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    groups.forEach((g, i) => g.classList.toggle("picking", i >= lo && i <= hi));
  };
  const focusBar = (i) => {
    for (const g of groups) g.setAttribute("tabindex", "-1");
    groups[i].setAttribute("tabindex", "0");
    groups[i].focus();
  };

  chart.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !slots.length) return;
    pressed = indexAt(e.clientX);
    chart.setPointerCapture?.(e.pointerId);
    preview(e.shiftKey && anchor !== null ? anchor : pressed, pressed);
  });
  chart.addEventListener("pointermove", (e) => {
    if (pressed === null) return;
    preview(e.shiftKey && anchor !== null ? anchor : pressed, indexAt(e.clientX));
  });
  chart.addEventListener("pointerup", (e) => {
    if (pressed === null) return;
    const at = indexAt(e.clientX);
    preview(-1, -1);
    if (e.shiftKey && anchor !== null) pick(anchor, at);
    else {
      anchor = pressed;
      pick(pressed, at);
    }
    pressed = null;
  });
  chart.addEventListener("pointercancel", () => {
    pressed = null;
    preview(-1, -1);
  });
  chart.addEventListener("dblclick", (e) => {
    if (!slots.length) return;
    const start = slots[indexAt(e.clientX)];
    onZoom(start, start + width - 1);
  });
  chart.addEventListener("keydown", (e) => {
    const g = e.target.closest?.("g.slot");
    if (!g || e.ctrlKey || e.metaKey || e.altKey) return;
    const i = Number(g.dataset.index);
    const moves = {
      ArrowLeft: i - 1,
      ArrowRight: i + 1,
      Home: 0,
      End: n - 1,
      PageUp: i - 10,
      PageDown: i + 10,
    };
    if (e.key in moves) focusBar(Math.max(0, Math.min(n - 1, moves[e.key])));
    else if (e.key === "Enter" || e.key === " ") {
      if (e.shiftKey && anchor !== null) pick(anchor, i);
      else {
        anchor = i;
        pick(i, i);
      }
    } else if (e.key === "+" || e.key === "=") onZoom(slots[i], slots[i] + width - 1);
    else if (e.key === "-") onZoomOut();
    else return;
    e.preventDefault();
  });

  const ticks = h("div.axis", { "aria-hidden": "true" });
  if (slots.length) {
    // About six labels, centred under their bar, none so close to an end that it would be cut off.
    const every = Math.max(1, Math.floor(slots.length / 6));
    for (let i = Math.floor(every / 2); i < slots.length - every / 3; i += every) {
      const text = width < 60_000
        ? fmtClock(slots[i])
        : fmtTime(slots[i], { millis: false }).replace(":00Z", "Z");
      ticks.append(h("span", { style: { left: `${((i + 0.5) / n) * 100}%` } }, text));
    }
  }
  return h("div.timeline-box", {}, chart, ticks);
}

/** Marks the bars inside [fromMs, toMs] (after a pick, without redrawing). */
export function markPicked(box, width, fromMs, toMs) {
  for (const g of box.querySelectorAll("g.slot")) {
    const on = inSpan(Number(g.dataset.start), width, fromMs, toMs);
    g.classList.toggle("picked", on);
    g.setAttribute("aria-pressed", String(on));
  }
}
