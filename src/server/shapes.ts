/**
 * What several routes share: the JSON shapes of frames, clips and robots (documented once, under
 * #/components/schemas), the common parameters, and the functions that turn library values into those shapes.
 */
import { type Clip, type FrameRow, type SearchHit, TIERS } from "../catalog/catalog.ts";
import {
  array,
  at,
  both,
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

// --------------------------------------------------------------------------------------------------- shapes

const TIER = literal(TIERS);

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
