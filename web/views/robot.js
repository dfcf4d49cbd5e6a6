// One robot: its timeline, its clips, and a gallery of its frames (newest first) that loads as you scroll.
// Frames are picked by selecting tiles or a span on the timeline; the action bar labels them or makes a clip.
// The timeline zooms (double-click a bar, or the Zoom buttons) down to bars of one second, counted here from the
// frames themselves, so a clip of a few seconds can be picked with the mouse.

import { api } from "../api.js";
import { attempt, clear, fmtCount, fmtTime, h, isoParam, parseUtc, toast } from "../dom.js";
import { Gallery } from "../gallery.js";
import { actionBar, openFrame } from "../actions.js";
import { markPicked, timeline } from "../timeline.js";
import { playHref } from "./player.js";

const MINUTE = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
/** Windows up to this long are drawn in seconds (bucket auto). */
const SECONDS_UP_TO = 15 * MINUTE;
/** Second bars are counted from the frames: at most this window, and this many frames. */
const SECONDS_AT_MOST = HOUR;
const SECOND_FRAMES_CAP = 20_000;

function parseTimes(params, fromName, toName) {
  const ms = (name, end) => {
    const v = params.get(name);
    const t = v ? parseUtc(v, { end }) : NaN;
    return Number.isFinite(t) ? t : undefined;
  };
  return { fromMs: ms(fromName, false), toMs: ms(toName, true) };
}

/** Frames per second of a robot in [fromMs, toMs], counted from its frames (the API's bars stop at minutes). */
async function secondBuckets(robot, fromMs, toMs) {
  const counts = new Map();
  let cursor, seen = 0;
  do {
    const page = await api("/api/frames", {
      query: { robot, from: isoParam(fromMs), to: isoParam(toMs), order: "oldest", limit: 1000, cursor },
    });
    for (const f of page.frames) {
      const start = Math.floor(f.timestamp_ms / 1000) * 1000;
      counts.set(start, (counts.get(start) ?? 0) + 1);
    }
    seen += page.frames.length;
    cursor = page.next_cursor;
  } while (cursor && seen < SECOND_FRAMES_CAP);
  return {
    bucket: "second",
    bucket_ms: 1000,
    buckets: [...counts].sort((a, b) => a[0] - b[0]).map(([start_ms, frames]) => ({ start_ms, frames })),
    partial: Boolean(cursor),
  };
}

/** The wider window "zoom out" goes to: the hour, then the day around it, then everything (null). */
function widen(zoom) {
  const length = zoom.toMs - zoom.fromMs;
  const centre = zoom.fromMs + length / 2;
  const around = (unit) => {
    const start = Math.floor(centre / unit) * unit;
    return { fromMs: start, toMs: start + unit - 1 };
  };
  if (length < HOUR - 1) return around(HOUR);
  if (length < DAY - 1) return around(DAY);
  return null;
}

export async function robotView(root, { parts, params, restore }) {
  const robot = parts[0];
  let span = parseTimes(params, "from", "to");
  const zoomed = parseTimes(params, "zoom_from", "zoom_to");
  /** The timeline's window, or null: the robot's whole life. */
  let zoom = zoomed.fromMs !== undefined && zoomed.toMs !== undefined ? zoomed : null;
  let bucket = params.get("bucket") || "auto";
  const head = h("div.view-head", {}, h("h1", {}, robot), h("span.muted.stats"));
  const timelineSlot = h("div.timeline-slot");
  const bucketSelect = h(
    "select",
    {
      "aria-label": "bar width",
      onchange: () => ((bucket = bucketSelect.value), drawTimeline(), syncHash()),
    },
    ["auto", "second", "minute", "hour", "day"].map((b) =>
      h("option", { value: b, selected: b === bucket }, b)
    ),
  );
  const fromInput = h("input", {
    name: "from",
    placeholder: "from, e.g. 2026-02-18T09:00Z",
    size: 24,
    "aria-label": "from",
  });
  const toInput = h("input", { name: "to", placeholder: "to", size: 24, "aria-label": "to" });
  const zoomIn = h("button.quiet", {
    type: "button",
    title: "draw the picked span over the whole width (or double-click a bar)",
    onclick: () => span.fromMs !== undefined && span.toMs !== undefined && setZoom(span),
  }, "Zoom in");
  const zoomOut = h("button.quiet", {
    type: "button",
    title: "a wider window (-)",
    onclick: () => zoom && setZoom(widen(zoom)),
  }, "Zoom out");
  const windowText = h("span.muted.window");
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
    zoomIn,
    zoomOut,
    windowText,
    h("span.sep"),
    fromInput,
    h("span", {}, "–"),
    toInput,
    h("button", { type: "submit" }, "Show"),
    h("button.quiet", { type: "button", onclick: () => setSpan(undefined, undefined) }, "All frames"),
    // The picked span (else the window shown, else all the robot's frames) at the frames' capture times.
    h("button#play-span.quiet", {
      type: "button",
      title: "play the picked span at the frames' capture times",
      onclick: () => {
        const play = span.fromMs !== undefined || span.toMs !== undefined ? span : zoom ?? {};
        location.hash = playHref({ robot, from: play.fromMs, to: play.toMs });
      },
    }, "Play"),
  );
  const clipsBox = h("div.clip-strip");
  root.append(
    head,
    h("section.panel", {}, rangeForm, timelineSlot),
    clipsBox,
    h(
      "p.hint",
      {},
      "Click a bar (or drag across bars) to show its frames, Shift-click another to stretch the span, ",
      "double-click to zoom in. Click a frame to open it; tick frames (or Ctrl-click, Shift-click for a run; ",
      "Tab to a frame and Space; Ctrl+A for all shown, Esc to clear) to label several or make a clip of them.",
    ),
  );

  let bar = null;
  const gallery = new Gallery({
    query: galleryQuery(),
    onOpen: openFrame,
    onSelection: () => bar?.paint(),
    onPage: () => bar?.paint(),
    emptyText: "No frames in this span.",
    label: `frames of ${robot}`,
    atLeast: restore?.tiles ?? 0,
    selectedKeys: restore?.selected ?? [],
  });
  bar = actionBar(gallery, {
    span: spanTarget,
    onClearSpan: () => setSpan(undefined, undefined),
    onSpanChanged: () => gallery.reset(galleryQuery()),
    onClip: () => attempt(drawClips),
  });
  // After the gallery: a sticky bar at the bottom of the window, however far down the frames are selected.
  root.append(gallery.el, bar.el);

  let timelineData = null;
  function galleryQuery() {
    return {
      robot,
      from: span.fromMs === undefined ? undefined : isoParam(span.fromMs),
      to: span.toMs === undefined ? undefined : isoParam(span.toMs),
    };
  }
  function spanTarget() {
    if (span.fromMs === undefined || span.toMs === undefined) return null;
    return {
      text: `all frames ${fmtTime(span.fromMs, { millis: false })} – ${
        fmtTime(span.toMs, { millis: false })
      }${gallery.total === null ? "" : ` (${fmtCount(gallery.total)})`}`,
      body: { robot, from: span.fromMs, to: span.toMs },
      robot,
      fromMs: span.fromMs,
      toMs: span.toMs,
    };
  }
  function syncHash() {
    const q = new URLSearchParams();
    if (span.fromMs !== undefined) q.set("from", isoParam(span.fromMs));
    if (span.toMs !== undefined) q.set("to", isoParam(span.toMs));
    if (zoom) {
      q.set("zoom_from", isoParam(zoom.fromMs));
      q.set("zoom_to", isoParam(zoom.toMs));
    }
    if (bucket !== "auto") q.set("bucket", bucket);
    const text = q.toString();
    // The history entry's state (the router's scroll bookkeeping) stays.
    history.replaceState(history.state, "", `#/robot/${encodeURIComponent(robot)}${text ? `?${text}` : ""}`);
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
    zoomIn.disabled = fromMs === undefined || toMs === undefined;
    syncHash();
    gallery.reset(galleryQuery());
    bar.paint();
  }
  function setZoom(next) {
    zoom = next;
    syncHash();
    drawTimeline();
  }
  async function drawTimeline() {
    const wantSeconds = (length) =>
      bucket === "second" || (bucket === "auto" && length !== null && length <= SECONDS_UP_TO);
    const length = zoom ? zoom.toMs - zoom.fromMs : null;
    const data = await attempt(() =>
      api(`/api/robots/${encodeURIComponent(robot)}/timeline`, {
        query: {
          bucket: bucket === "second" ? "auto" : bucket,
          from: zoom ? isoParam(zoom.fromMs) : undefined,
          to: zoom ? isoParam(zoom.toMs) : undefined,
        },
      })
    );
    if (!data) return;
    let bars = data;
    const window = zoom ?? { fromMs: data.first_timestamp_ms, toMs: data.last_timestamp_ms };
    if (wantSeconds(window.toMs - window.fromMs)) {
      if (window.toMs - window.fromMs > SECONDS_AT_MOST) {
        toast("bars of a second need a window of an hour at most: zoom in first", "error");
      } else {
        const seconds = await attempt(() => secondBuckets(robot, window.fromMs, window.toMs));
        if (seconds) bars = seconds;
        if (seconds?.partial) toast(`second bars count the first ${fmtCount(SECOND_FRAMES_CAP)} frames only`);
      }
    }
    timelineData = bars;
    clear(
      timelineSlot,
      timeline(bars, span, (a, b) => setSpan(a, b), {
        range: zoom ?? undefined,
        onZoom: (a, b) => setZoom({ fromMs: a, toMs: b }),
        onZoomOut: () => zoom && setZoom(widen(zoom)),
      }),
    );
    zoomOut.disabled = !zoom;
    windowText.textContent = zoom
      ? `${fmtTime(zoom.fromMs, { millis: false })} – ${fmtTime(zoom.toMs, { millis: false })}`
      : "";
    head.querySelector(".stats").textContent = `${fmtCount(data.frames)} frames${
      zoom ? " in this window" : ""
    } · ${fmtTime(data.first_timestamp_ms, { millis: false })} – ${
      fmtTime(data.last_timestamp_ms, { millis: false })
    } · bars of one ${bars.bucket}`;
    if (length === null && bars.bucket === "second") {
      // Whole robot in seconds: nothing to zoom out to.
      zoomOut.disabled = true;
    }
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

  fromInput.value = span.fromMs === undefined ? "" : isoParam(span.fromMs);
  toInput.value = span.toMs === undefined ? "" : isoParam(span.toMs);
  zoomIn.disabled = span.fromMs === undefined || span.toMs === undefined;
  zoomOut.disabled = !zoom;
  bar.paint();
  await Promise.all([drawTimeline(), attempt(drawClips), gallery.ready]);
  // Refresh the figures now and then: frames keep arriving.
  // Not while the keyboard is on a bar: a redraw would take the focus away.
  const timer = setInterval(() => {
    if (document.visibilityState === "visible" && !timelineSlot.contains(document.activeElement)) {
      drawTimeline();
    }
  }, 30_000);
  return () => {
    clearInterval(timer);
    gallery.destroy();
  };
}
