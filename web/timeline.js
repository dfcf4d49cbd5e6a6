// A robot's frames over time as a strip of bars (one per minute, hour or day, from one SQL aggregate:
// GET /api/robots/{id}/timeline). Click a bar to pick its span, Shift-click another to stretch the pick.

import { fmtCount, fmtTime, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/**
 * @param {object} data  the timeline response
 * @param {{fromMs?: number, toMs?: number}} picked  the current span, highlighted
 * @param {(fromMs: number, toMs: number) => void} onPick
 */
export function timeline(data, picked, onPick) {
  const width = data.bucket_ms;
  const counts = new Map(data.buckets.map((b) => [b.start_ms, b.frames]));
  const first = data.buckets.length ? data.buckets[0].start_ms : 0;
  const last = data.buckets.length ? data.buckets[data.buckets.length - 1].start_ms : 0;
  const slots = [];
  for (let t = first; t <= last && slots.length < 5000; t += width) slots.push(t);
  const max = Math.max(1, ...data.buckets.map((b) => b.frames));
  const n = Math.max(1, slots.length);
  const bar = 10;
  const chart = svg("svg", {
    class: "timeline",
    viewBox: `0 0 ${n * bar} 100`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": `frames per ${data.bucket}`,
  });
  let anchor = null;
  slots.forEach((start, i) => {
    const frames = counts.get(start) ?? 0;
    const height = frames ? Math.max(4, (frames / max) * 100) : 0;
    const inPick = picked.fromMs !== undefined && picked.toMs !== undefined &&
      start + width - 1 >= picked.fromMs &&
      start <= picked.toMs;
    const label = `${fmtTime(start, { millis: false })} (${data.bucket}): ${fmtCount(frames)} frames`;
    // A full-height transparent hit area over each bar keeps even empty and small buckets clickable.
    const group = svg(
      "g",
      { class: `slot${inPick ? " picked" : ""}`, "data-start": start },
      svg("title", {}, label),
      svg("rect", { class: "hit", x: i * bar, y: 0, width: bar, height: 100 }),
      svg("rect", { class: "bar", x: i * bar + 1, y: 100 - height, width: bar - 2, height }),
    );
    group.addEventListener("click", (e) => {
      if (e.shiftKey && anchor !== null) {
        const [a, b] = anchor < start ? [anchor, start] : [start, anchor];
        onPick(a, b + width - 1);
      } else {
        anchor = start;
        onPick(start, start + width - 1);
      }
    });
    chart.append(group);
  });
  const ticks = h("div.axis");
  if (slots.length) {
    // About six labels, centred under their bar, none so close to an end that it would be cut off.
    const every = Math.max(1, Math.floor(slots.length / 6));
    for (let i = Math.floor(every / 2); i < slots.length - every / 3; i += every) {
      ticks.append(
        h(
          "span",
          { style: { left: `${((i + 0.5) / n) * 100}%` } },
          fmtTime(slots[i], { millis: false }).replace(":00Z", "Z"),
        ),
      );
    }
  }
  return h("div.timeline-box", {}, chart, ticks);
}

/** Marks the bars inside [fromMs, toMs] (after a pick, without redrawing). */
export function markPicked(box, width, fromMs, toMs) {
  for (const g of box.querySelectorAll("g.slot")) {
    const start = Number(g.dataset.start);
    g.classList.toggle("picked", fromMs !== undefined && start + width - 1 >= fromMs && start <= toMs);
  }
}
