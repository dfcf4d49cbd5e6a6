/**
 * Pure parts of "each frame with its labels and clips", shared by both backends' `withLabels`: the capture span
 * of a page per robot (which clips to ask for), and putting a page's own labels and clips together.
 */
import type { ClipRef, FrameRow, SearchHit } from "./catalog.ts";

/** A clip as a page needs it: its reference and its span. */
export interface SpanClip {
  ref: ClipRef;
  from: number;
  to: number;
}

/** Per robot, the first and last capture time among `frames`. */
export function robotSpans(frames: FrameRow[]): Map<string, { from: number; to: number }> {
  const spans = new Map<string, { from: number; to: number }>();
  for (const f of frames) {
    const s = spans.get(f.robotId);
    if (!s) spans.set(f.robotId, { from: f.timestampMs, to: f.timestampMs });
    else {
      s.from = Math.min(s.from, f.timestampMs);
      s.to = Math.max(s.to, f.timestampMs);
    }
  }
  return spans;
}

/** Each frame with its own labels (`direct`, by key), the clips of its robot it lies in, and all labels sorted. */
export function assembleHits(
  frames: FrameRow[],
  direct: Map<string, string[]>,
  clipsOf: Map<string, SpanClip[]>,
): SearchHit[] {
  return frames.map((frame) => {
    const own = direct.get(frame.key) ?? [];
    const clips = (clipsOf.get(frame.robotId) ?? []).filter((c) =>
      c.from <= frame.timestampMs && c.to >= frame.timestampMs
    ).map((c) => c.ref);
    const all = new Set(own);
    for (const c of clips) for (const l of c.labels) all.add(l);
    return { frame, labels: [...all].sort(), directLabels: own, clips };
  });
}
