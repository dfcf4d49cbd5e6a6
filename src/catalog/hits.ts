/**
 * Pure parts of "each frame with its labels and clips", shared by both backends' `withLabels`: the capture span
 * of a page per robot (which clips to ask for), and putting a page's own labels, boxes, reviews and clips
 * together.
 */
import type { Box, ClipRef, FrameRow, ReviewStatus, SearchHit } from "./catalog.ts";

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

/**
 * A frame's review status: what a person set (`reviewed`, `rejected`) when there is a review row, else `labelled`
 * when it has a label of its own or a box, else `unlabelled` (labels from clips do not count: a clip says what
 * happens over a span, not that anyone looked at this frame).
 */
export function derivedStatus(
  set: "reviewed" | "rejected" | null | undefined,
  ownLabels: number,
  boxes: number,
): ReviewStatus {
  if (set) return set;
  return ownLabels > 0 || boxes > 0 ? "labelled" : "unlabelled";
}

/**
 * Each frame with its own labels (`direct`, by key), the clips of its robot it lies in, its boxes (by key, in id
 * order), its review status (`reviewed`: what a person set, by key) and all labels (own, box classes, clips')
 * sorted, each once.
 */
export function assembleHits(
  frames: FrameRow[],
  direct: Map<string, string[]>,
  clipsOf: Map<string, SpanClip[]>,
  boxes: Map<string, Box[]> = new Map(),
  reviewed: Map<string, "reviewed" | "rejected"> = new Map(),
): SearchHit[] {
  return frames.map((frame) => {
    const own = direct.get(frame.key) ?? [];
    const clips = (clipsOf.get(frame.robotId) ?? []).filter((c) =>
      c.from <= frame.timestampMs && c.to >= frame.timestampMs
    ).map((c) => c.ref);
    const frameBoxes = boxes.get(frame.key) ?? [];
    const all = new Set(own);
    for (const b of frameBoxes) all.add(b.label);
    for (const c of clips) for (const l of c.labels) all.add(l);
    return {
      frame,
      labels: [...all].sort(),
      directLabels: own,
      clips,
      boxes: frameBoxes,
      status: derivedStatus(reviewed.get(frame.key), own.length, frameBoxes.length),
    };
  });
}
