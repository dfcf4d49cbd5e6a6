/**
 * What several routes share: the JSON shapes of frames, clips and robots (documented once, under
 * #/components/schemas), the common parameters, and the functions that turn library values into those shapes.
 */
import {
  type Box,
  type Clip,
  type FrameRow,
  type LabelInfo,
  REVIEW_STATUSES,
  type SearchHit,
  TIERS,
} from "../catalog/catalog.ts";
import {
  array,
  at,
  boolean,
  both,
  commaList,
  flag,
  type Infer,
  integer,
  list,
  literal,
  named,
  nullable,
  number,
  object,
  optional,
  robots,
  segment,
  string,
  text,
  until,
} from "./schema.ts";

export const iso = (ms: number): string => new Date(ms).toISOString();

export function hex(bytes: Uint8Array | null): string | null {
  return bytes ? Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") : null;
}

// ------------------------------------------------------------------------------------------------ parameters

export const KEY = segment("The frame's object key, percent-encoded as one segment ('/' as %2F).");
export const ROBOTS = robots("Only these robots (repeatable).");
export const TIER_LIST = list("Only frames in these tiers (repeatable).", { enum: TIERS });
export const FROM = at("Capture time at or after this.");
export const TO = until("Capture time at or before this.", "from");
export const AUTHOR = text("Who makes the change (recorded in the journal).");
export const STATUS_LIST = commaList(
  "Only frames whose review status is one of these: unlabelled, labelled, reviewed, rejected",
  REVIEW_STATUSES,
);
export const NO_LABEL = flag(
  "Only frames with no label at all: none of their own, no box, in no labelled clip.",
);

// --------------------------------------------------------------------------------------------------- shapes

const TIER = literal(TIERS);

/** Where a frame is in review. */
export const STATUS = literal(
  REVIEW_STATUSES,
  "unlabelled / labelled (derived: no own label or box / at least one), reviewed / rejected (set by a person).",
);

export const BOX = named(
  "Box",
  object({
    id: integer(),
    key: string({ description: "The frame's key." }),
    label: string({ description: "The class (a label of the label set)." }),
    x: number("Left edge, in unit."),
    y: number("Top edge, in unit."),
    w: number("Width, in unit."),
    h: number("Height, in unit."),
    unit: literal(["px", "norm"] as const, "px: pixels of the frame; norm: fractions (0..1) of its size."),
    image_width: integer("The frame's width in pixels."),
    image_height: integer("The frame's height in pixels."),
    confidence: nullable(number(), "A model's score in [0, 1]; null for people's boxes."),
    source: string({ description: "human, import or model:NAME." }),
    accepted: boolean("False for a model's box until a person accepts it."),
    author: nullable(string()),
    created_ms: integer(),
    updated_ms: integer(),
  }),
);

/** A label of the label set with its use counts. */
export const LABEL = named(
  "Label",
  object({
    name: string(),
    frames: integer("Frames labelled directly."),
    clips: integer("Clips carrying it."),
    boxes: integer("Boxes of this class."),
    color: nullable(string(), "Display colour #rrggbb; null: the UI picks one from the name."),
    hotkey: nullable(integer(), "Key 1-9 that picks it in the UI; null: none."),
  }),
);

export const FRAME = named(
  "Frame",
  object({
    key: string(),
    robot_id: string(),
    capture_time: string({ description: "ISO 8601, UTC" }),
    timestamp_ms: integer(),
    seq: integer(),
    size: integer(),
    tier: TIER,
    labels: array(string(), { description: "Its own labels and those of clips it lies in." }),
    direct_labels: array(string(), { description: "Its own labels." }),
    clips: array(object({ id: integer(), name: string(), labels: array(string()) })),
    boxes: array(BOX, { description: "Its boxes, by id." }),
    status: STATUS,
    distance: optional(integer("Hamming distance (similarity results only).")),
  }),
);

/** A frame's detail: the frame and what GET /api/frames/{key} adds. */
export const FRAME_DETAIL = named(
  "FrameDetail",
  both(
    FRAME,
    object({
      etag: nullable(string()),
      filter: string(),
      filter_distance: nullable(number()),
      hash: nullable(string(), "aHash bits in hex."),
      stored_time: string(),
      tier_changed_time: string(),
      previous_key: nullable(string(), "The robot's frame before this one."),
      next_key: nullable(string(), "The robot's frame after this one."),
    }),
  ),
);

export const ROBOT = named(
  "Robot",
  object({
    robot_id: string(),
    frames: integer(),
    bytes: integer(),
    first_capture_time: string(),
    last_capture_time: string(),
    first_timestamp_ms: integer(),
    last_timestamp_ms: integer(),
    latest_key: nullable(string()),
  }),
);

export const CLIP = named(
  "Clip",
  object({
    id: integer(),
    robot_id: string(),
    from: string(),
    to: string(),
    from_ms: integer(),
    to_ms: integer(),
    name: string(),
    note: string(),
    labels: array(string()),
    created: string(),
    author: nullable(string()),
    frames: integer("Frames of the robot in the span now."),
  }),
);

export type FrameJson = Infer<typeof FRAME>;
export type ClipJson = Infer<typeof CLIP>;
export type BoxJson = Infer<typeof BOX>;
export type LabelJson = Infer<typeof LABEL>;

/** A box as the API shows it (snake_case). */
export function boxJson(b: Box): BoxJson {
  return {
    id: b.id,
    key: b.key,
    label: b.label,
    x: b.x,
    y: b.y,
    w: b.w,
    h: b.h,
    unit: b.unit,
    image_width: b.imageWidth,
    image_height: b.imageHeight,
    confidence: b.confidence,
    source: b.source,
    accepted: b.accepted,
    author: b.author,
    created_ms: b.createdMs,
    updated_ms: b.updatedMs,
  };
}

/** A label as the API shows it. */
export function labelJson(l: LabelInfo): LabelJson {
  return {
    name: l.name,
    frames: l.frames,
    clips: l.clips,
    boxes: l.boxes,
    color: l.color,
    hotkey: l.hotkey,
  };
}

/** A search or similarity hit as the API shows it. */
export function frameJson(hit: SearchHit & { distance?: number }): FrameJson {
  const f = hit.frame;
  return {
    key: f.key,
    robot_id: f.robotId,
    capture_time: iso(f.timestampMs),
    timestamp_ms: f.timestampMs,
    seq: f.seq,
    size: f.size,
    tier: f.tier,
    labels: hit.labels,
    direct_labels: hit.directLabels,
    clips: hit.clips.map((c) => ({ id: c.id, name: c.name, labels: c.labels })),
    boxes: hit.boxes.map(boxJson),
    status: hit.status,
    ...(hit.distance === undefined ? {} : { distance: hit.distance }),
  };
}

/** A clip as the API shows it, with the number of frames its span holds now. */
export function clipJson(c: Clip, frames: number): ClipJson {
  return {
    id: c.id,
    robot_id: c.robotId,
    from: iso(c.fromMs),
    to: iso(c.toMs),
    from_ms: c.fromMs,
    to_ms: c.toMs,
    name: c.name,
    note: c.note,
    labels: c.labels,
    created: iso(c.createdMs),
    author: c.author,
    frames,
  };
}

/** The entity tag of a frame: the store's when the catalog has it, else one made from key and size. */
export function frameEtag(row: FrameRow): string {
  if (row.etag) return `"${row.etag.replace(/"/g, "")}"`;
  let h = 0x811c9dc5;
  for (let i = 0; i < row.key.length; i++) h = Math.imul(h ^ row.key.charCodeAt(i), 0x01000193);
  return `"fb-${(h >>> 0).toString(16)}-${row.size}"`;
}
