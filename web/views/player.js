// The player: the stored frames of a clip, a robot's time span or a search, shown at their capture times. A kept
// frame stays on screen until the next kept frame (the filter dropped the frames in between because the scene
// did not change), so gaps play as the scene was. Play/pause (Space), speed 1x-8x, frame steps with `,` and `.`,
// a scrubber over the span with the timeline's bars (web/timeline.js) and a slider, the current frame's labels
// and boxes over it, and a link to the frame's page.
//
// `#/play?clip=ID`, `#/play?robot=R&from=..&to=..` or `#/play?<search filters>`; `at=MS` starts there (kept in
// the URL on pause, so Back from the frame page returns to the same frame), `speed=N`.
//
// Timing: a clock runs at the speed from when play was pressed; each tick (requestAnimationFrame) shows the
// newest frame due by the clock that is decoded. Images are fetched and decoded ahead (createImageBitmap, scaled
// to the screen) in a bounded window, a few at a time, so decoding never happens on the tick. A frame shown more
// than one frame interval (the span's median gap, over the speed) after it was due counts as late; frames passed
// over because a newer one was already due and ready count as skipped; when the next frame is still not decoded
// well after it was due, the clock waits for it (a stall) instead of running on with nothing to show. The counts
// are on the page (and in the player's data-* attributes, which the browser test reads).

import { api, frameUrl, qs } from "../api.js";
import { clear, fmtCount, fmtTime, h, isoParam, parseUtc, toast } from "../dom.js";
import { markPicked, timeline } from "../timeline.js";
import { classColor, loadLabelSet, pxRect } from "../boxes.js";
import { frameHref } from "./frame.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const SPEEDS = [1, 2, 4, 8];
/** Frames fetched and decoded ahead of the one due, and kept behind it (for `,`). */
const AHEAD = 24;
const BEHIND = 8;
/** Fetches and decodes at once. */
const IN_FLIGHT = 4;
/** Frames asked for per request, and at most in the player (an hour at 10 fps). */
const PAGE = 2000;
const MAX_FRAMES = 36_000;
/**
 * Decodes per second the player aims at: when frames are due faster than this (high speeds), only every n-th
 * frame is fetched and decoded, and the frames between are skipped rather than decoded too late to show.
 */
const DECODES_PER_S = 20;
/** Waiting this long past a frame's due time with nothing to show stops the clock (a stall). */
const STALL_MS = 500;
/** The search filters a player takes (those of GET /api/playback). */
const FILTERS = ["clip", "robot", "from", "to", "label", "all_labels", "tier", "status", "nolabel"];

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  return el;
}

/** Index of the last frame at or before `t` (-1 when none is). */
function indexAt(frames, t) {
  let lo = 0, hi = frames.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (frames[mid].timestamp_ms <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** The middle gap between frames: the span's frame interval (100 ms at 10 fps). */
function medianGap(frames) {
  const gaps = [];
  const step = Math.max(1, Math.floor(frames.length / 2000));
  for (let i = step; i < frames.length; i += step) {
    gaps.push(frames[i].timestamp_ms - frames[i - step].timestamp_ms);
  }
  if (gaps.length === 0) return 100;
  gaps.sort((a, b) => a - b);
  return Math.max(1, gaps[gaps.length >> 1] / step);
}

/** Bars for the scrubber, counted from the frames: seconds up to 10 minutes, minutes up to 10 hours, else hours. */
function bars(frames, fromMs, toMs) {
  const length = toMs - fromMs;
  const [bucket, width] = length <= 600_000
    ? ["second", 1000]
    : length <= 36_000_000
    ? ["minute", 60_000]
    : ["hour", 3_600_000];
  const counts = new Map();
  for (const f of frames) {
    const start = Math.floor(f.timestamp_ms / width) * width;
    counts.set(start, (counts.get(start) ?? 0) + 1);
  }
  return {
    bucket,
    bucket_ms: width,
    buckets: [...counts].sort((a, b) => a[0] - b[0]).map(([start_ms, frames]) => ({ start_ms, frames })),
  };
}

/**
 * Fetches and decodes frames into ImageBitmaps, scaled to `width()` pixels wide, a bounded number at a time;
 * keeps those inside the window the player asks for and closes the rest.
 */
class Prefetch {
  constructor(width) {
    this.width = width;
    /** index -> {bitmap, promise, abort} */
    this.entries = new Map();
    this.running = 0;
    this.queue = [];
    this.onReady = () => {};
  }

  ready(i) {
    return this.entries.get(i)?.bitmap ?? null;
  }

  /** The bitmap of frame `i` (fetched now unless it is on its way). */
  get(frames, i) {
    let entry = this.entries.get(i);
    if (!entry) {
      entry = this.#start(frames, i, true);
    }
    return entry.promise;
  }

  /**
   * Keeps the frames from `from - BEHIND` to AHEAD frames fetched ahead, and fetches the missing ones, nearest
   * first: every `stride`-th frame (those whose index is a multiple of it, so the choice stays put as playback
   * moves on) and the last one.
   */
  want(frames, from, stride = 1) {
    const last = frames.length - 1;
    const lo = Math.max(0, from - BEHIND), hi = Math.min(last, from + AHEAD * stride);
    for (const [i, entry] of this.entries) {
      if (i < lo || i > hi) {
        entry.abort.abort();
        entry.bitmap?.close();
        this.entries.delete(i);
      }
    }
    const wanted = (i) => i >= lo && i <= hi && (i % stride === 0 || i === last) && !this.entries.has(i);
    this.queue = this.queue.filter(wanted);
    for (let i = Math.ceil(Math.max(0, from) / stride) * stride; i <= hi; i += stride) {
      if (wanted(i) && !this.queue.includes(i)) this.queue.push(i);
    }
    if (hi === last && wanted(last) && !this.queue.includes(last)) this.queue.push(last);
    this.frames = frames;
    this.#pump();
  }

  #pump() {
    while (this.running < IN_FLIGHT && this.queue.length) {
      const i = this.queue.shift();
      if (!this.entries.has(i)) this.#start(this.frames, i, false);
    }
  }

  #start(frames, i, now) {
    const abort = new AbortController();
    const entry = { bitmap: null, abort, promise: null };
    this.entries.set(i, entry);
    this.running++;
    entry.promise = (async () => {
      try {
        const response = await fetch(frameUrl(frames[i].key, "image"), { signal: abort.signal });
        if (!response.ok) {
          throw new Error(`frame ${frames[i].key}: ${response.status} ${response.statusText}`);
        }
        const blob = await response.blob();
        const bitmap = await createImageBitmap(blob, { resizeWidth: this.width(), resizeQuality: "medium" });
        if (abort.signal.aborted || this.entries.get(i) !== entry) {
          bitmap.close();
          return null;
        }
        entry.bitmap = bitmap;
        this.onReady(i);
        return bitmap;
      } catch (error) {
        if (this.entries.get(i) === entry) this.entries.delete(i);
        if (abort.signal.aborted) return null;
        throw error;
      } finally {
        this.running--;
        this.#pump();
      }
    })();
    if (!now) entry.promise.catch(() => {});
    return entry;
  }

  destroy() {
    for (const entry of this.entries.values()) {
      entry.abort.abort();
      entry.bitmap?.close();
    }
    this.entries.clear();
    this.queue = [];
  }
}

export async function playerView(root, { params }) {
  const source = new URLSearchParams();
  for (const name of FILTERS) for (const v of params.getAll(name)) if (v !== "") source.append(name, v);
  if (![...source.keys()].length) {
    root.append(
      h("h1", {}, "Player"),
      h("p.empty", {}, "Nothing to play: open the player from a clip, a robot's span or a search (Play)."),
    );
    return;
  }
  const query = Object.fromEntries([...new Set(source.keys())].map((k) => [k, source.getAll(k)]));
  const first = await api("/api/playback", { query: { ...query, limit: PAGE, count: true } });
  const frames = first.frames;
  const total = first.total ?? frames.length;
  const title = first.clip
    ? `Clip ${first.clip.name}`
    : source.has("robot") && source.getAll("robot").length === 1 && !source.has("label")
    ? `${source.get("robot")}`
    : "Search";
  const back = first.clip
    ? `#/clips`
    : source.get("robot") && !source.has("label") && !source.has("tier") && !source.has("status")
    ? `#/robot/${encodeURIComponent(source.get("robot"))}${
      qs({ from: source.get("from"), to: source.get("to") })
    }`
    : `#/search${qs(Object.fromEntries([...source].filter(([k]) => k !== "clip")))}`;

  root.append(h("div.view-head", {}, h("h1", {}, `Play · ${title}`), h("a", { href: back }, "Back")));
  if (frames.length === 0) {
    root.append(h("p.empty", {}, "No frames to play in this span."));
    return;
  }

  // ---- the stage: a canvas the frames are drawn on, the boxes' SVG over it
  const canvas = h("canvas.player-canvas", { "aria-label": "the frame" });
  const overlay = svg("svg", { class: "player-boxes", "aria-hidden": "true", preserveAspectRatio: "none" });
  const stage = h("div.player-stage", {}, canvas, overlay);
  const labelsLine = h("div.player-labels", { "aria-live": "off" });
  const timeText = h("span.player-time");
  const countText = h("span.muted.player-count");
  const statsText = h("span.muted.player-stats");
  const playButton = h("button#player-play", { type: "button", title: "play or pause (Space)" }, "Play");
  const speedSelect = h(
    "select#player-speed",
    { "aria-label": "speed", title: "speed" },
    SPEEDS.map((s) => h("option", { value: s }, `${s}x`)),
  );
  const stepBack = h("button#player-back.quiet", { type: "button", title: "previous frame (,)" }, "‹ ,");
  const stepOn = h("button#player-next.quiet", { type: "button", title: "next frame (.)" }, ". ›");
  const frameLink = h(
    "a#player-frame-link",
    { title: "open this frame's page (labels, boxes, review)" },
    "Frame page",
  );
  const slider = h("input#player-slider", {
    type: "range",
    step: 1,
    "aria-label": "position in the span (arrow keys: a frame back or on)",
  });
  const scrub = h("div.player-scrub");
  const playhead = h("div.player-playhead", { "aria-hidden": "true" });
  const el = h(
    "section#player.player.panel",
    {},
    stage,
    h(
      "div.player-controls",
      {},
      playButton,
      stepBack,
      stepOn,
      h("label", {}, "Speed ", speedSelect),
      timeText,
      countText,
      h("span.player-gap"),
      frameLink,
    ),
    labelsLine,
    h("div.player-scrubber", {}, scrub, playhead),
    slider,
    h(
      "p.hint",
      {},
      "Space plays and pauses, `,` and `.` step a frame, click a bar or drag the slider to go there. ",
      statsText,
    ),
  );
  root.append(el);
  const labelSet = loadLabelSet().catch(() => null);

  // ---- state
  const spanFrom = first.from_ms ?? frames[0].timestamp_ms;
  let spanTo = first.to_ms ?? frames[frames.length - 1].timestamp_ms;
  let gap = medianGap(frames);
  let index = -1; // the frame on screen
  let shownKeyBoxes = null;
  let speed = SPEEDS.includes(Number(params.get("speed"))) ? Number(params.get("speed")) : 1;
  speedSelect.value = String(speed);
  let playing = false;
  let anchorMedia = 0, anchorReal = 0; // the clock: media time anchorMedia at performance.now() anchorReal
  /** The frame the clock waits for (a stall), else null. */
  let stalled = null;
  /** The frame a stall waited for is late, whatever the clock says once it goes on. */
  let lateNext = false;
  let ended = false;
  let raf = 0;
  let destroyed = false;
  const stats = { shown: 0, late: 0, skipped: 0, stalls: 0 };
  let natural = null; // the frames' pixel size, from the first one decoded
  let timelineData = null;

  const backingWidth = () => {
    const css = stage.clientWidth || 960;
    const want = Math.round(css * Math.min(2, devicePixelRatio || 1));
    return Math.max(160, Math.min(natural?.width ?? 1920, want));
  };
  const cache = new Prefetch(backingWidth);
  cache.onReady = () => {
    if (playing && !raf) raf = requestAnimationFrame(tick);
  };

  // ---- drawing
  function fitStage() {
    if (!natural) return;
    const style = getComputedStyle(el);
    const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const maxHeight = Math.max(200, innerHeight - 380);
    const width = Math.floor(Math.min(room, (maxHeight * natural.width) / natural.height));
    stage.style.width = `${width}px`;
    stage.style.height = `${Math.round((width * natural.height) / natural.width)}px`;
  }
  const resizer = new ResizeObserver(() => {
    fitStage();
    paintBoxes(index, true);
  });
  resizer.observe(el);

  function draw(bitmap) {
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
  }

  /** The frame's boxes in its own pixel grid (the SVG's viewBox), each with its class's tag. */
  function paintBoxes(i, force = false) {
    const frame = frames[i];
    if (!frame) return;
    if (!force && shownKeyBoxes === frame.key) return;
    shownKeyBoxes = frame.key;
    const boxes = frame.boxes;
    if (boxes.length === 0) {
      overlay.replaceChildren();
      return;
    }
    const w = boxes[0].image_width, ht = boxes[0].image_height;
    overlay.setAttribute("viewBox", `0 0 ${w} ${ht}`);
    const k = w / Math.max(1, stage.clientWidth || w);
    const items = [];
    for (const box of boxes) {
      const r = pxRect(box);
      const color = classColor(box.label);
      const text = box.confidence === null ? box.label : `${box.label} ${box.confidence.toFixed(2)}`;
      const tagH = 16 * k, tagW = (text.length * 7 + 8) * k;
      const tagY = r.y >= tagH ? r.y - tagH : r.y;
      const g = svg("g", { class: `box${box.accepted ? "" : " pre"}`, "data-label": box.label });
      g.append(
        svg("rect", {
          class: "box-rect",
          x: r.x,
          y: r.y,
          width: r.w,
          height: r.h,
          stroke: color,
          fill: color,
          "fill-opacity": 0.06,
          "stroke-width": 2 * k,
          "stroke-dasharray": box.accepted ? null : `${7 * k} ${5 * k}`,
        }),
        svg("rect", { class: "box-tag", x: r.x, y: tagY, width: tagW, height: tagH, fill: color }),
      );
      const label = svg("text", { x: r.x + 4 * k, y: tagY + 12 * k, "font-size": 12 * k });
      label.textContent = text;
      g.append(label);
      items.push(g);
    }
    overlay.replaceChildren(...items);
  }

  let lastBar = null;
  let infoOf = -1;
  /** The clock's place on the slider and the bars; the frame's time, number, labels and link when it changed. */
  function paintPosition(clock) {
    const t = Math.max(spanFrom, Math.min(spanTo, clock));
    const i = Math.max(0, index);
    const frame = frames[i];
    if (infoOf !== i) {
      infoOf = i;
      timeText.textContent = fmtTime(frame.timestamp_ms);
      frameLink.href = frameHref(frame.key);
      clear(
        labelsLine,
        frame.labels.length
          ? frame.labels.map((l) => h("span.chip", { style: { borderLeftColor: classColor(l) } }, l))
          : h("span.muted", {}, "no labels"),
        frame.robot_id !== source.get("robot") ? h("span.muted", {}, `robot ${frame.robot_id}`) : null,
      );
    }
    countText.textContent = `frame ${fmtCount(i + 1)} of ${fmtCount(frames.length)}${
      frames.length < total ? ` (${fmtCount(total)} in all)` : ""
    }`;
    slider.value = String(Math.round(t));
    if (timelineData) {
      const width = timelineData.bucket_ms;
      const firstSlot = Math.floor(spanFrom / width) * width;
      const end = Math.floor(spanTo / width) * width + width;
      playhead.style.left = `${Math.max(0, Math.min(1, (t - firstSlot) / (end - firstSlot))) * 100}%`;
      const bar = Math.floor(t / width) * width;
      const box = scrub.querySelector(".timeline-box");
      if (bar !== lastBar && box) {
        markPicked(box, width, bar, bar);
        lastBar = bar;
      }
    }
    paintStats();
  }

  function paintStats() {
    const state = ended ? "ended" : stalled !== null ? "stalled" : playing ? "playing" : "paused";
    Object.assign(el.dataset, {
      state,
      index: String(index),
      key: frames[Math.max(0, index)].key,
      position: String(Math.round(position())),
      speed: String(speed),
      shown: String(stats.shown),
      late: String(stats.late),
      skipped: String(stats.skipped),
      stalls: String(stats.stalls),
      frames: String(frames.length),
    });
    statsText.textContent = `Played: ${fmtCount(stats.shown)} frames shown, ${fmtCount(stats.late)} late, ` +
      `${fmtCount(stats.skipped)} skipped, ${fmtCount(stats.stalls)} stalls.`;
    playButton.textContent = playing ? "Pause" : ended ? "Play again" : "Play";
    playButton.setAttribute("aria-pressed", String(playing));
  }

  /** Shows frame `i` (steps, seeks, the first frame): waits for its image. */
  async function showNow(i, t = frames[i].timestamp_ms) {
    index = i;
    paintBoxes(i);
    paintPosition(t);
    cache.want(frames, i);
    const bitmap = await cache.get(frames, i).catch((error) => {
      toast(error.message, "error");
      return null;
    });
    if (!bitmap || index !== i || destroyed) return;
    draw(bitmap);
  }

  // ---- the clock
  const position = () =>
    playing && stalled === null ? anchorMedia + (performance.now() - anchorReal) * speed : anchorMedia;
  const due = (i) => anchorReal + (frames[i].timestamp_ms - anchorMedia) / speed;
  /** Every how many frames one is decoded while playing (1 up to DECODES_PER_S frames due a second). */
  const stride = () => Math.max(1, Math.round((1000 / gap) * speed / DECODES_PER_S));
  /** The next frame after the one on screen that playback decodes. */
  const nextDecoded = () => Math.min(frames.length - 1, (Math.floor(index / stride()) + 1) * stride());
  const endMs = () => frames[frames.length - 1].timestamp_ms + gap;

  /** Plays from the frame on screen (from the first again after the end), counting afresh. */
  async function play() {
    if (playing) return;
    if (ended || index >= frames.length - 1) {
      ended = false;
      anchorMedia = frames[0].timestamp_ms;
      await showNow(0);
    } else anchorMedia = Math.max(anchorMedia, frames[Math.max(0, index)].timestamp_ms);
    Object.assign(stats, { shown: 0, late: 0, skipped: 0, stalls: 0 });
    anchorReal = performance.now();
    playing = true;
    stalled = null;
    lateNext = false;
    paintStats();
    raf = requestAnimationFrame(tick);
  }

  function pause() {
    if (!playing) return;
    anchorMedia = position();
    playing = false;
    stalled = null;
    cancelAnimationFrame(raf);
    raf = 0;
    paintPosition(anchorMedia);
    remember();
  }

  function tick() {
    raf = 0;
    if (!playing || destroyed) return;
    const now = performance.now();
    if (stalled !== null) {
      // The clock waits at the next frame until its image is there.
      if (cache.ready(stalled)) {
        anchorMedia = frames[stalled].timestamp_ms;
        anchorReal = now;
        stalled = null;
        lateNext = true;
      }
    }
    const t = position();
    const target = indexAt(frames, t);
    if (target > index) {
      let j = target;
      while (j > index && !cache.ready(j)) j--;
      if (j > index) {
        const interval = gap / speed;
        if (lateNext || now - due(j) > interval) stats.late++;
        lateNext = false;
        stats.shown++;
        stats.skipped += j - index - 1;
        index = j;
        draw(cache.ready(j));
        paintBoxes(j);
      } else if (stalled === null && now - due(nextDecoded()) > STALL_MS) {
        stalled = nextDecoded();
        stats.stalls++;
        anchorMedia = frames[stalled].timestamp_ms;
      }
      cache.want(frames, Math.max(index + 1, target), stride());
    }
    paintPosition(stalled !== null ? anchorMedia : t);
    if (index >= frames.length - 1 && t >= endMs()) {
      playing = false;
      ended = true;
      anchorMedia = frames[frames.length - 1].timestamp_ms;
      paintStats();
      remember();
      return;
    }
    raf = requestAnimationFrame(tick);
  }

  /** Goes to time `t` (a scrubber pick): the frame on screen at that time, as the scene was. */
  /**
   * Goes to time `t`: the frame on screen at that time, as the scene was; with `barEnd` (a bar picked) the bar's
   * first frame when it has one.
   */
  function seek(t, barEnd = null) {
    let i = indexAt(frames, t);
    if (i < 0 || frames[i].timestamp_ms < t) {
      const next = i + 1;
      if (i < 0 || (barEnd !== null && next < frames.length && frames[next].timestamp_ms <= barEnd)) i = next;
    }
    i = Math.max(0, Math.min(frames.length - 1, i));
    ended = false;
    anchorMedia = Math.max(t, frames[i].timestamp_ms);
    anchorReal = performance.now();
    stalled = null;
    showNow(i, anchorMedia).then(() => {
      if (playing) anchorReal = performance.now();
    });
    if (!playing) remember();
  }

  function step(dir) {
    if (playing) pause();
    const i = Math.max(0, Math.min(frames.length - 1, index + dir));
    ended = false;
    anchorMedia = frames[i].timestamp_ms;
    showNow(i);
    remember();
  }

  /** The position in the URL (not a new history entry): Back from the frame page returns to this frame. */
  function remember() {
    const q = new URLSearchParams(source);
    q.set("at", String(Math.round(anchorMedia)));
    if (speed !== 1) q.set("speed", String(speed));
    history.replaceState(history.state, "", `#/play?${q}`);
  }

  // ---- the scrubber
  function drawScrubber() {
    timelineData = bars(frames, spanFrom, spanTo);
    lastBar = null;
    clear(
      scrub,
      timeline(timelineData, {}, (a, b) => seek(a, b), { range: { fromMs: spanFrom, toMs: spanTo } }),
    );
    slider.min = String(spanFrom);
    slider.max = String(spanTo);
    paintPosition(position());
  }
  slider.addEventListener("input", () => seek(Number(slider.value)));
  // The slider moves by ms under the mouse (any time of the span); its arrow keys step a frame instead.
  slider.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    step(e.key === "ArrowLeft" ? -1 : 1);
  });

  playButton.addEventListener("click", () => (playing ? pause() : play()));
  stepBack.addEventListener("click", () => step(-1));
  stepOn.addEventListener("click", () => step(1));
  speedSelect.addEventListener("change", () => {
    const t = position();
    speed = Number(speedSelect.value);
    anchorMedia = t;
    anchorReal = performance.now();
    paintStats();
    if (!playing) remember();
  });
  const onKey = (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    // Keys typed into a field stay there (the slider takes them too: it has no use for these).
    if (
      t !== slider && t instanceof HTMLElement &&
      (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))
    ) {
      return;
    }
    if (e.key === ",") step(-1);
    else if (e.key === ".") step(1);
    else if (e.key === " " || e.key === "k") {
      if (t instanceof HTMLButtonElement || t instanceof HTMLAnchorElement) return; // their own Space
      playing ? pause() : play();
    } else return;
    e.preventDefault();
  };
  document.addEventListener("keydown", onKey);

  // ---- start: the first frame's size, then the rest of the frames in the background
  try {
    const blob = await (await fetch(frameUrl(frames[0].key, "image"))).blob();
    const probe = await createImageBitmap(blob);
    natural = { width: probe.width, height: probe.height };
    probe.close();
  } catch {
    natural = { width: 1920, height: 1080 };
  }
  fitStage();
  drawScrubber();
  const at = params.get("at") ? parseUtc(params.get("at")) : NaN;
  await showNow(Number.isFinite(at) ? Math.max(0, indexAt(frames, at)) : 0);
  if (Number.isFinite(at)) anchorMedia = Math.max(at, frames[index].timestamp_ms);
  labelSet.then(() => paintBoxes(index, true));

  (async () => {
    let cursor = first.next_cursor;
    while (cursor && !destroyed && frames.length < MAX_FRAMES) {
      const page = await api("/api/playback", { query: { ...query, limit: PAGE, cursor } }).catch((error) => {
        toast(`only ${fmtCount(frames.length)} frames could be loaded: ${error.message}`, "error");
        return null;
      });
      if (!page || destroyed) return;
      frames.push(...page.frames);
      cursor = page.next_cursor;
      if (first.to_ms === null) spanTo = frames[frames.length - 1].timestamp_ms;
      gap = medianGap(frames);
      drawScrubber();
    }
    if (cursor && !destroyed) {
      toast(`the player holds the first ${fmtCount(MAX_FRAMES)} frames: pick a shorter span for the rest`);
      spanTo = frames[frames.length - 1].timestamp_ms;
      drawScrubber();
    }
  })();

  return () => {
    destroyed = true;
    playing = false;
    cancelAnimationFrame(raf);
    document.removeEventListener("keydown", onKey);
    resizer.disconnect();
    cache.destroy();
  };
}

/** `#/play?…` for a clip, a robot's span or a search (an object of GET /api/playback filters, arrays repeated). */
export function playHref(source) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(source)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (FILTERS.includes(name) && v !== undefined && v !== null && v !== "" && v !== false) {
        q.append(name, typeof v === "number" && name !== "clip" ? isoParam(v) : String(v));
      }
    }
  }
  return `#/play?${q}`;
}
