/**
 * MCAP of stored frames for Foxglove and ROS tooling, written with `@mcap/core`'s McapWriter (chunked, with
 * message and chunk indexes, statistics and summary offsets, so readers seek by time instead of scanning).
 *
 * Per robot R, three topics; every message's log time and publish time are the frame's capture time:
 * - `/R/camera`: `foxglove.CompressedImage` (protobuf), one message per stored frame: `data` is the stored JPEG,
 *   byte for byte, `format` "jpeg", `frame_id` "R/camera", `timestamp` the capture time.
 * - `/R/annotations`: `foxglove.ImageAnnotations` (protobuf), one per frame at the same time: each box as a
 *   closed 4-point outline (`PointsAnnotation`, LINE_LOOP, pixels) and its class as a `TextAnnotation`; boxes a
 *   model proposed that nobody accepted yet in another colour, marked "(proposed)". An empty message for a frame
 *   without boxes, so the image panel does not keep the previous frame's boxes.
 * - `/R/frames`: `frame_bucket.Frame` (JSON, with a JSON Schema), one per catalogued frame: its key, sequence,
 *   labels (own, boxes', clips'), clips, review status, boxes; `missing: true` (and no image) for a frame that no
 *   store held. The way back from a message to the catalog.
 * Clips are metadata records named `clip` (id, name, robot, from/to as ISO and ns, labels as a JSON array, note),
 * a collection one named `collection`, and the export itself one named `frame-bucket.export`.
 *
 * Encoding: Foxglove decodes both protobuf and JSON for its schemas, but JSON has no bytes type (the image would
 * be base64: a third larger, and decoded again on every view), while protobuf carries the JPEG as it is, with a
 * few bytes of framing, and is the encoding Foxglove documents first for its schemas. The schema of a protobuf
 * channel is a FileDescriptorSet, built here from the Foxglove .proto field numbers (formats/protobuf.ts). Our own
 * per-frame record is small and for people and scripts, so it is JSON, readable without any schema compiler.
 */
import type { Box, Clip, Collection } from "../../catalog/catalog.ts";
import { boxPixels } from "../../catalog/boxes.ts";
import { descriptorSet, type FileSpec, Proto, timestamp } from "./protobuf.ts";

const encoder = new TextEncoder();

const TIMESTAMP: FileSpec = {
  name: "google/protobuf/timestamp.proto",
  package: "google.protobuf",
  messages: [{
    name: "Timestamp",
    fields: [{ name: "seconds", number: 1, type: "int64" }, { name: "nanos", number: 2, type: "int32" }],
  }],
};

const COMPRESSED_IMAGE: FileSpec = {
  name: "foxglove/CompressedImage.proto",
  package: "foxglove",
  dependencies: [TIMESTAMP.name],
  messages: [{
    name: "CompressedImage",
    fields: [
      { name: "timestamp", number: 1, type: "message", typeName: ".google.protobuf.Timestamp" },
      { name: "frame_id", number: 4, type: "string" },
      { name: "data", number: 2, type: "bytes" },
      { name: "format", number: 3, type: "string" },
    ],
  }],
};

const COLOR: FileSpec = {
  name: "foxglove/Color.proto",
  package: "foxglove",
  messages: [{
    name: "Color",
    fields: ["r", "g", "b", "a"].map((name, i) => ({ name, number: i + 1, type: "double" as const })),
  }],
};

const POINT2: FileSpec = {
  name: "foxglove/Point2.proto",
  package: "foxglove",
  messages: [{
    name: "Point2",
    fields: [{ name: "x", number: 1, type: "double" }, { name: "y", number: 2, type: "double" }],
  }],
};

const TS = { type: "message", typeName: ".google.protobuf.Timestamp" } as const;
const COLOR_T = { type: "message", typeName: ".foxglove.Color" } as const;
const POINT_T = { type: "message", typeName: ".foxglove.Point2" } as const;

const CIRCLE: FileSpec = {
  name: "foxglove/CircleAnnotation.proto",
  package: "foxglove",
  dependencies: [COLOR.name, POINT2.name, TIMESTAMP.name],
  messages: [{
    name: "CircleAnnotation",
    fields: [
      { name: "timestamp", number: 1, ...TS },
      { name: "position", number: 2, ...POINT_T },
      { name: "diameter", number: 3, type: "double" },
      { name: "thickness", number: 4, type: "double" },
      { name: "fill_color", number: 5, ...COLOR_T },
      { name: "outline_color", number: 6, ...COLOR_T },
    ],
  }],
};

const POINTS: FileSpec = {
  name: "foxglove/PointsAnnotation.proto",
  package: "foxglove",
  dependencies: [COLOR.name, POINT2.name, TIMESTAMP.name],
  messages: [{
    name: "PointsAnnotation",
    enums: [{
      name: "Type",
      values: [["UNKNOWN", 0], ["POINTS", 1], ["LINE_LOOP", 2], ["LINE_STRIP", 3], ["LINE_LIST", 4]],
    }],
    fields: [
      { name: "timestamp", number: 1, ...TS },
      { name: "type", number: 2, type: "enum", typeName: ".foxglove.PointsAnnotation.Type" },
      { name: "points", number: 3, repeated: true, ...POINT_T },
      { name: "outline_color", number: 4, ...COLOR_T },
      { name: "outline_colors", number: 5, repeated: true, ...COLOR_T },
      { name: "fill_color", number: 6, ...COLOR_T },
      { name: "thickness", number: 7, type: "double" },
    ],
  }],
};

const TEXT: FileSpec = {
  name: "foxglove/TextAnnotation.proto",
  package: "foxglove",
  dependencies: [COLOR.name, POINT2.name, TIMESTAMP.name],
  messages: [{
    name: "TextAnnotation",
    fields: [
      { name: "timestamp", number: 1, ...TS },
      { name: "position", number: 2, ...POINT_T },
      { name: "text", number: 3, type: "string" },
      { name: "font_size", number: 4, type: "double" },
      { name: "text_color", number: 5, ...COLOR_T },
      { name: "background_color", number: 6, ...COLOR_T },
    ],
  }],
};

const IMAGE_ANNOTATIONS: FileSpec = {
  name: "foxglove/ImageAnnotations.proto",
  package: "foxglove",
  dependencies: [CIRCLE.name, POINTS.name, TEXT.name],
  messages: [{
    name: "ImageAnnotations",
    fields: [
      { name: "circles", number: 1, repeated: true, type: "message", typeName: ".foxglove.CircleAnnotation" },
      { name: "points", number: 2, repeated: true, type: "message", typeName: ".foxglove.PointsAnnotation" },
      { name: "texts", number: 3, repeated: true, type: "message", typeName: ".foxglove.TextAnnotation" },
    ],
  }],
};

/** A schema as McapWriter registers it. */
export interface SchemaInfo {
  name: string;
  encoding: string;
  data: Uint8Array;
}

export const COMPRESSED_IMAGE_SCHEMA: SchemaInfo = {
  name: "foxglove.CompressedImage",
  encoding: "protobuf",
  data: descriptorSet([TIMESTAMP, COMPRESSED_IMAGE]),
};

export const IMAGE_ANNOTATIONS_SCHEMA: SchemaInfo = {
  name: "foxglove.ImageAnnotations",
  encoding: "protobuf",
  data: descriptorSet([TIMESTAMP, COLOR, POINT2, CIRCLE, POINTS, TEXT, IMAGE_ANNOTATIONS]),
};

export const FRAME_SCHEMA: SchemaInfo = {
  name: "frame_bucket.Frame",
  encoding: "jsonschema",
  data: encoder.encode(JSON.stringify({
    title: "frame_bucket.Frame",
    description:
      "A frame as frame-bucket's catalog knows it; its image is on /{robot}/camera at the same time.",
    type: "object",
    properties: {
      key: { type: "string", description: "The object key in frame-bucket's store." },
      robot: { type: "string" },
      seq: { type: "integer" },
      captured: { type: "string", description: "Capture time, ISO 8601 UTC." },
      labels: { type: "array", items: { type: "string" }, description: "Own, boxes' and clips' labels." },
      own_labels: { type: "array", items: { type: "string" } },
      clips: {
        type: "array",
        items: {
          type: "object",
          properties: { id: { type: "integer" }, name: { type: "string" }, labels: { type: "array" } },
        },
      },
      status: { type: "string", description: "Review status." },
      boxes: { type: "integer", description: "Boxes on the frame (on /{robot}/annotations)." },
      missing: { type: "boolean", description: "True when no store held the image (no camera message)." },
    },
    required: ["key", "robot", "seq", "captured"],
  })),
};

/** Topic names of a robot. */
export const topics = (robot: string) => ({
  camera: `/${robot}/camera`,
  annotations: `/${robot}/annotations`,
  frames: `/${robot}/frames`,
});

/** Nanoseconds since the epoch of a time in ms (MCAP log times). */
export const nanos = (ms: number): bigint => BigInt(ms) * 1_000_000n;

/** A `foxglove.CompressedImage` of a stored JPEG (the bytes as they are). */
export function compressedImage(timeMs: number, frameId: string, jpeg: Uint8Array): Uint8Array {
  return new Proto()
    .message(1, timestamp(timeMs), true)
    .bytes(2, jpeg)
    .string(3, "jpeg")
    .string(4, frameId)
    .finish();
}

type Rgba = [number, number, number, number];
const ACCEPTED: Rgba = [0.16, 0.85, 0.35, 1];
const PROPOSED: Rgba = [1, 0.6, 0.1, 1];
const WHITE: Rgba = [1, 1, 1, 1];
const SHADE: Rgba = [0, 0, 0, 0.6];
const FONT_PX = 22;

const color = ([r, g, b, a]: Rgba) => new Proto().double(1, r).double(2, g).double(3, b).double(4, a);
const point = (x: number, y: number) => new Proto().double(1, x).double(2, y);

/** A `foxglove.ImageAnnotations` of a frame's boxes (see the module comment); empty without boxes. */
export function imageAnnotations(timeMs: number, boxes: Box[]): Uint8Array {
  const msg = new Proto();
  const texts: Proto[] = [];
  for (const box of boxes) {
    const { x, y, w, h } = boxPixels(box);
    const tint = box.accepted ? ACCEPTED : PROPOSED;
    const outline = new Proto()
      .message(1, timestamp(timeMs), true)
      .uint(2, 2) // LINE_LOOP
      .message(3, point(x, y), true)
      .message(3, point(x + w, y), true)
      .message(3, point(x + w, y + h), true)
      .message(3, point(x, y + h), true)
      .message(4, color(tint))
      .double(7, 3);
    msg.message(2, outline);
    const score = box.confidence === null ? "" : ` ${box.confidence.toFixed(2)}`;
    texts.push(
      new Proto()
        .message(1, timestamp(timeMs), true)
        .message(2, point(x + 2, Math.max(FONT_PX, y - 4)), true)
        .string(3, `${box.label}${score}${box.accepted ? "" : " (proposed)"}`)
        .double(4, FONT_PX)
        .message(5, color(WHITE))
        .message(6, color(SHADE)),
    );
  }
  for (const t of texts) msg.message(3, t);
  return msg.finish();
}

/** What `/R/frames` says of a frame. */
export interface FrameRecord {
  key: string;
  robot: string;
  seq: number;
  captured: string;
  labels: string[];
  own_labels: string[];
  clips: { id: number; name: string; labels: string[] }[];
  status: string;
  boxes: number;
  missing?: boolean;
}

export function frameRecord(record: FrameRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The metadata record of a clip. */
export function clipMetadata(clip: Clip): Map<string, string> {
  return new Map([
    ["id", String(clip.id)],
    ["name", clip.name],
    ["robot", clip.robotId],
    ["topic", topics(clip.robotId).camera],
    ["from", iso(clip.fromMs)],
    ["to", iso(clip.toMs)],
    ["from_ns", String(nanos(clip.fromMs))],
    ["to_ns", String(nanos(clip.toMs))],
    ["labels", JSON.stringify(clip.labels)],
    ["note", clip.note],
  ]);
}

/** The metadata record of a collection. */
export function collectionMetadata(c: Collection): Map<string, string> {
  return new Map([
    ["id", String(c.id)],
    ["name", c.name],
    ["note", c.note],
    ["clip_ids", JSON.stringify(c.clipIds)],
  ]);
}
