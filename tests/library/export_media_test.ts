/**
 * The pure parts of the MP4 and MCAP export: the video clock and fixed-rate placement (formats/mp4.ts), the
 * EBML sizes of the Matroska feed, the protobuf encoding (checked against hand-worked bytes), the selection's
 * merged parts, and ffmpeg's arguments. The files themselves are checked by ffprobe and the mcap package in
 * export_media.stack_test.ts.
 */
import assert from "node:assert/strict";
import type { Clip } from "../../src/catalog/catalog.ts";
import { mergedParts } from "../../src/library/export_selection.ts";
import { vint } from "../../src/library/formats/matroska.ts";
import { ffmpegArgs, FixedRate, HOLD_MS, VideoClock } from "../../src/library/formats/mp4.ts";
import { Proto, timestamp, varint } from "../../src/library/formats/protobuf.ts";
import { compressedImage } from "../../src/library/formats/mcap.ts";

Deno.test("video clock: capture times within a part, parts one after the other, strictly increasing", () => {
  const c = new VideoClock();
  assert.deepEqual([c.place(0, 5000), c.place(0, 5145), c.place(0, 5145), c.place(0, 6000)], [
    0,
    145,
    146,
    1000,
  ]);
  assert.equal(c.endMs, 1000 + HOLD_MS);
  // A new part starts where the last one's hold ends, whatever its capture times.
  assert.deepEqual([c.place(1, 100), c.place(1, 400)], [2000, 2300]);
  // A part captured earlier than the last frame cannot go back in time.
  assert.equal(c.place(2, 0), 2300 + HOLD_MS);
});

Deno.test("fixed rate: each frame fills the slots until the next; a frame replaced within its slot is dropped", () => {
  const r = new FixedRate<string>(5); // 200 ms slots
  const dropped: string[] = [];
  const shown = [
    ...r.push("a", 0, (f) => dropped.push(f)),
    ...r.push("b", 145, (f) => dropped.push(f)), // slot 1
    ...r.push("c", 190, (f) => dropped.push(f)), // slot 1 too: b never shows
    ...r.push("d", 601, (f) => dropped.push(f)), // slot 4
  ];
  assert.deepEqual(shown, [{ frame: "a", slot: 0, until: 1 }, { frame: "c", slot: 1, until: 4 }]);
  assert.deepEqual(dropped, ["b"]);
  assert.deepEqual(r.finish(601 + HOLD_MS), { last: { frame: "d", slot: 4, until: 9 }, slots: 9 });
  // 3 fps: 333.33 ms is slot 1, not 2; slot times are rounded to the ms.
  const t = new FixedRate<string>(3);
  assert.deepEqual([t.slotOf(333.3333333), t.slotOf(334), t.slotMs(1), t.slotMs(2)], [1, 2, 333, 667]);
});

Deno.test("EBML sizes: shortest form, all-ones reserved", () => {
  assert.deepEqual([...vint(0)], [0x80]);
  assert.deepEqual([...vint(126)], [0xfe]);
  assert.deepEqual([...vint(127)], [0x40, 0x7f]); // 0xff would be "unknown size"
  assert.deepEqual([...vint(500_000)], [0x27, 0xa1, 0x20]);
});

Deno.test("protobuf: varints, timestamps, a CompressedImage by hand", () => {
  assert.deepEqual([...varint(300)], [0xac, 0x02]);
  assert.deepEqual([...varint(2n ** 63n)], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  assert.deepEqual([...timestamp(1500).finish()], [0x08, 0x01, 0x10, 0x80, 0xca, 0xb5, 0xee, 0x01]);
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xd9]);
  assert.deepEqual([...compressedImage(1500, "r/camera", jpeg)], [
    ...[0x0a, 0x08, 0x08, 0x01, 0x10, 0x80, 0xca, 0xb5, 0xee, 0x01], // 1: timestamp
    ...[0x12, 0x04, 0xff, 0xd8, 0xff, 0xd9], // 2: data, the bytes as they are
    ...[0x1a, 0x04, 0x6a, 0x70, 0x65, 0x67], // 3: "jpeg"
    ...[0x22, 0x08, ...new TextEncoder().encode("r/camera")], // 4: frame_id
  ]);
  // Defaults are left out (proto3), unless a message field is asked for even when empty.
  assert.equal(new Proto().uint(1, 0).double(2, 0).string(3, "").size, 0);
  assert.deepEqual([...new Proto().message(1, new Proto(), true).finish()], [0x0a, 0x00]);
});

Deno.test("merged parts: a collection's clips once each, touching and overlapping spans joined per robot", () => {
  const clip = (id: number, robotId: string, fromMs: number, toMs: number): Clip => ({
    id,
    robotId,
    fromMs,
    toMs,
    name: `c${id}`,
    note: "",
    labels: [],
    createdMs: 0,
    author: null,
  });
  const clips = [
    clip(1, "b", 500, 900),
    clip(2, "a", 100, 200),
    clip(3, "a", 201, 300),
    clip(4, "a", 250, 260),
  ];
  const parts = mergedParts({ labels: ["x"] }, { kind: "collection", clip: null, collection: null, clips });
  assert.deepEqual(parts.map((p) => [p.robot, p.filter.fromMs, p.filter.toMs, p.clip?.id ?? null]), [
    ["a", 100, 300, null],
    ["b", 500, 900, 1],
  ]);
  assert.deepEqual(parts[0].filter.labels, ["x"], "the rest of the filter narrows every part");
});

Deno.test("ffmpeg arguments: even sizes, no B-frames, capture times passed through or a fixed rate", () => {
  const vfr = ffmpegArgs({ width: 1921, height: 1081, fps: null, output: { file: "/tmp/x.mp4.partial" } });
  assert.ok(vfr.join(" ").includes("scale=1920:1080"));
  assert.ok(vfr.join(" ").includes("-bf 0"));
  assert.ok(vfr.join(" ").includes(`-fps_mode passthrough -enc_time_base 1:1000 -r 1000/${HOLD_MS}`));
  assert.deepEqual(vfr.slice(-6), ["-movflags", "+faststart", "-f", "mp4", "-y", "/tmp/x.mp4.partial"]);
  const cfr = ffmpegArgs({ width: 640, height: 480, fps: 10, output: { stream: true } });
  assert.ok(cfr.join(" ").includes("-fps_mode passthrough -r 10"));
  assert.ok(cfr.join(" ").endsWith("frag_keyframe+empty_moov+default_base_moof -f mp4 pipe:1"));
});
