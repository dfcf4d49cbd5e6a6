/** Boxes and dataset frames for the format writers' tests. */
import type { Box } from "../../../src/catalog/catalog.ts";
import type { DatasetFrame } from "../../../src/library/formats/common.ts";
import { frameRow, T0 } from "../../support/rows.ts";

/** A box (default: a person, 10,20 30x40 px, on a 640x480 frame, by a person). */
export function box(id: number, over: Partial<Box>): Box {
  return {
    id,
    key: "frames/r/2026-02-18/x.jpg",
    label: "person",
    x: 10,
    y: 20,
    w: 30,
    h: 40,
    unit: "px",
    imageWidth: 640,
    imageHeight: 480,
    confidence: null,
    source: "human",
    accepted: true,
    author: null,
    createdMs: 0,
    updatedMs: 0,
    ...over,
  };
}

/** A frame of reachy-001 as the writers see it (640x480, no boxes, no split). */
export function frame(over: Partial<DatasetFrame> = {}): DatasetFrame {
  const row = frameRow("reachy-001", T0, 1);
  return {
    key: row.key,
    row,
    name: row.key.slice("frames/".length),
    width: 640,
    height: 480,
    boxes: [],
    predictions: [],
    tags: [],
    split: null,
    ...over,
  };
}
