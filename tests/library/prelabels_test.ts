import assert from "node:assert/strict";
import type { Box, BoxInput, ChangeBy, FrameRow, LabelInfo, LabelLimits } from "../../src/catalog/catalog.ts";
import { BadInputError } from "../../src/errors.ts";
import {
  checkModelName,
  clipToImage,
  type ImportDeps,
  importPredictions,
  parseCocoResults,
  parseYoloClasses,
  parseYoloLabels,
  type Prediction,
} from "../../src/library/prelabels.ts";

const A = "reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg";
const B = "reachy-001/2026-11-30/20261130T120000.100Z_000002.jpg";

/** Asserts that `fn` throws a BadInputError whose message matches every pattern. */
function refuses(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof BadInputError, `expected BadInputError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

Deno.test("COCO results with image names and class names", () => {
  const got = parseCocoResults([
    { image_id: A, category_id: "person", bbox: [10, 20, 30.5, 40], score: 0.91 },
    { image_id: "frames/" + B, category_id: "door_closed", bbox: [0, 0, 1920, 1080] },
  ]);
  assert.deepEqual(got, [
    { ref: A, label: "person", x: 10, y: 20, w: 30.5, h: 40, unit: "px", confidence: 0.91 },
    { ref: "frames/" + B, label: "door_closed", x: 0, y: 0, w: 1920, h: 1080, unit: "px", confidence: null },
  ]);
});

Deno.test("COCO results with numeric ids, an images list and categories", () => {
  const images = [{ id: 1, file_name: A }, { id: 2, file_name: B }];
  const categories = [{ id: 1, name: "person" }, { id: 3, name: "door_closed" }];
  const got = parseCocoResults([
    { image_id: 2, category_id: 3, bbox: [1, 2, 3, 4], score: 0.5 },
    { image_id: 1, category_id: 1, bbox: [5, 6, 7, 8], score: 1, segmentation: [] },
  ], { images, categories });
  assert.deepEqual(got.map((p) => [p.ref, p.label, p.x, p.confidence]), [
    [B, "door_closed", 1, 0.5],
    [A, "person", 5, 1],
  ]);
  // A whole dataset object: its annotations with its own lists.
  const dataset = parseCocoResults({
    images,
    categories,
    annotations: [{ id: 9, image_id: 1, category_id: 3, bbox: [1, 1, 2, 2], score: 0.25 }],
  });
  assert.deepEqual(dataset, [{
    ref: A,
    label: "door_closed",
    x: 1,
    y: 1,
    w: 2,
    h: 2,
    unit: "px",
    confidence: 0.25,
  }]);
});

Deno.test("COCO results: every problem named by result, field and value; nothing returned", () => {
  refuses(
    () =>
      parseCocoResults([
        { image_id: 7, category_id: "person", bbox: [1, 2, 3, 4] },
        { image_id: A, category_id: 4, bbox: [1, 2, 3, 4] },
        { image_id: A, category_id: "person", bbox: [1, 2, 3] },
        { image_id: A, category_id: "person", bbox: [1, 2, -3, 4] },
        { image_id: A, category_id: "person", bbox: [1, 2, 3, 4], score: 1.5 },
        { image_id: A, category_id: "a/b", bbox: [1, 2, 3, 4] },
        "junk",
      ]),
    /^7 problems in the COCO results; nothing was imported/,
    /result 0: image_id 7 is a number: give the images list/,
    /result 1: category_id 4 is a number: give the categories list/,
    /result 2: bbox \[1,2,3\] must be \[x, y, width, height\]/,
    /result 3: bbox \[1,2,-3,4\] has a negative width/,
    /result 4: score 1.5 is outside 0..1/,
    /result 5: label "a\/b" may not contain '\/'/,
    /result 6: expected an object/,
  );
  refuses(
    () =>
      parseCocoResults([{ image_id: 5, category_id: 1, bbox: [1, 2, 3, 4] }], {
        images: [{ id: 1, file_name: A }],
        categories: [{ id: 2, name: "x" }],
      }),
    /image_id 5 is not in the images list/,
    /category_id 1 is not in the categories list/,
  );
  refuses(() => parseCocoResults({ info: {} }), /must be a JSON array/);
  refuses(
    () => parseCocoResults([], { images: [{ id: 1, file_name: A }, { id: 1, file_name: B }] }),
    /images\[1\]: id 1 is given twice/,
  );
  // More than ten problems: ten listed and the rest counted.
  const many = Array.from({ length: 13 }, () => ({ image_id: A, category_id: "p", bbox: null }));
  refuses(() => parseCocoResults(many), /^13 problems/, /result 9:/, /… and 3 more$/);
});

Deno.test("YOLO labels: 5 and 6 columns, centre to corner, blank lines and comments", () => {
  const classes = parseYoloClasses("person\ndoor_closed\n\n");
  assert.deepEqual(classes, ["person", "door_closed"]);
  const got = parseYoloLabels([
    {
      name: A.replace(".jpg", ".txt"),
      text: "0 0.5 0.5 0.25 0.5\n\n# a comment\r\n1 0.125 0.75 0.25 0.5 0.8\n",
    },
    { name: B.replace(".jpg", ".txt"), text: "" },
  ], classes);
  assert.deepEqual(got, [
    {
      ref: A.replace(".jpg", ".txt"),
      label: "person",
      x: 0.375,
      y: 0.25,
      w: 0.25,
      h: 0.5,
      unit: "norm",
      confidence: null,
    },
    {
      ref: A.replace(".jpg", ".txt"),
      label: "door_closed",
      x: 0,
      y: 0.5,
      w: 0.25,
      h: 0.5,
      unit: "norm",
      confidence: 0.8,
    },
  ]);
});

Deno.test("YOLO labels: bad lines name file, line and value", () => {
  const classes = ["person", "door_closed"];
  refuses(
    () =>
      parseYoloLabels([{
        name: "x.txt",
        text: [
          "0 0.5 0.5 0.1", // 4 columns
          "2 0.5 0.5 0.1 0.1", // class out of range
          "a 0.5 0.5 0.1 0.1", // class not a number
          "0 0.5 nan 0.1 0.1", // not a number
          "0 0.5 0.5 -0.1 0.1", // negative
          "1 0.5 0.5 0.1 0.1 1.2", // confidence
          "0 0.1 0.1 0.2 0.1 0.3 0.2 0.4", // polygon
          "1.5 0.5 0.5 0.1 0.1", // fractional class
          "0 0.5 0.5 0.1 0.1", // fine
        ].join("\n"),
      }], classes),
    /^8 problems in the YOLO labels/,
    /x\.txt line 1: 4 columns in "0 0\.5 0\.5 0\.1": expected "class cx cy w h \[confidence\]"/,
    /x\.txt line 2: class 2 is not in the classes list \(2 classes, 0\.\.1\)/,
    /x\.txt line 3: class "a" must be a class number/,
    /x\.txt line 4: cy "nan" is not a number/,
    /x\.txt line 5: w -0\.1 is negative/,
    /x\.txt line 6: confidence 1\.2 is outside 0\.\.1/,
    /x\.txt line 7: 8 columns .*polygon labels are not boxes/,
    /x\.txt line 8: class "1\.5" must be a class number/,
  );
  refuses(() => parseYoloClasses("person\n\ndoor\n", "classes.txt"), /classes\.txt line 2 is empty/);
  refuses(() => parseYoloClasses("person\nperson\n"), /class "person" is also class 0/);
  refuses(() => parseYoloClasses("\n\n"), /names no class/);
});

Deno.test("clipToImage cuts boxes to the image, keeps exact numbers otherwise, drops outside ones", () => {
  const size = { width: 1920, height: 1080 };
  assert.deepEqual(clipToImage({ x: 10.1, y: 20.2, w: 30.3, h: 40.4, unit: "px" }, size), {
    x: 10.1,
    y: 20.2,
    w: 30.3,
    h: 40.4,
  });
  assert.deepEqual(clipToImage({ x: -10, y: 1000, w: 50, h: 100, unit: "px" }, size), {
    x: 0,
    y: 1000,
    w: 40,
    h: 80,
  });
  assert.deepEqual(clipToImage({ x: 0.9, y: -0.1, w: 0.2, h: 0.3, unit: "norm" }, size)!.x, 0.9);
  const n = clipToImage({ x: 0.9, y: -0.1, w: 0.2, h: 0.3, unit: "norm" }, size)!;
  assert.ok(Math.abs(n.w - 0.1) < 1e-12 && n.y === 0 && Math.abs(n.h - 0.2) < 1e-12);
  assert.equal(clipToImage({ x: 1920, y: 0, w: 10, h: 10, unit: "px" }, size), null);
  assert.equal(clipToImage({ x: 5, y: 5, w: 0, h: 10, unit: "px" }, size), null);
  assert.equal(clipToImage({ x: 1.2, y: 0, w: 0.1, h: 0.1, unit: "norm" }, size), null);
});

Deno.test("checkModelName", () => {
  assert.equal(checkModelName("yolov8n-2026.03_a"), "yolov8n-2026.03_a");
  refuses(() => checkModelName("yolo v8"), /model name "yolo v8" must be 1-64 letters/);
  refuses(() => checkModelName(""), /model name ""/);
  refuses(() => checkModelName("x".repeat(65)), /must be 1-64/);
});

// ------------------------------------------------------------------------------------------------ import

function row(key: string): FrameRow {
  return {
    key,
    robotId: "reachy-001",
    timestampMs: 0,
    seq: 0,
    size: 1,
    etag: null,
    filter: "ahash",
    distance: null,
    hash: null,
    tier: "local",
    tierChangedMs: 0,
    storedMs: 0,
  };
}

/** A catalog of frames with sizes, and a label store keeping boxes in memory. */
function fakeDeps(
  frames: Record<string, { width: number; height: number } | null | "bad">,
  limits: Partial<LabelLimits> = {},
  labelSet: string[] = [],
) {
  const boxes: Box[] = [];
  const calls: { inputs: BoxInput[]; by?: ChangeBy }[] = [];
  let nextId = 1;
  const deps: ImportDeps = {
    frame: (key) => Promise.resolve(key in frames ? row(key) : null),
    imageSize: (r) => {
      const s = frames[r.key];
      if (s === "bad") return Promise.reject(new BadInputError("not a JPEG: no SOI marker"));
      return Promise.resolve(s);
    },
    store: {
      limits: { maxPerRequest: 100, maxDistinct: 1000, strict: false, ...limits },
      list: () =>
        Promise.resolve(
          labelSet.map((name, i): LabelInfo => ({
            id: i + 1,
            name,
            frames: 0,
            clips: 0,
            boxes: 0,
            color: null,
            hotkey: null,
          })),
        ),
      boxesOf: (keys) => {
        const out = new Map<string, Box[]>();
        for (const b of boxes) if (keys.includes(b.key)) out.set(b.key, [...(out.get(b.key) ?? []), b]);
        return Promise.resolve(out);
      },
      addBoxes: (inputs, by) => {
        calls.push({ inputs: [...inputs], by });
        const made = inputs.map((i): Box => ({
          id: nextId++,
          key: i.key,
          label: i.label,
          x: i.x,
          y: i.y,
          w: i.w,
          h: i.h,
          unit: i.unit ?? "px",
          imageWidth: i.imageWidth,
          imageHeight: i.imageHeight,
          confidence: i.confidence ?? null,
          source: i.source ?? "human",
          accepted: !(i.source ?? "").startsWith("model:"),
          author: by?.author ?? null,
          createdMs: 0,
          updatedMs: 0,
        }));
        boxes.push(...made);
        return Promise.resolve(made);
      },
    },
  };
  return { deps, boxes, calls };
}

const pred = (ref: string, x: number, extra: Partial<Prediction> = {}): Prediction => ({
  ref,
  label: "person",
  x,
  y: 10,
  w: 100,
  h: 50,
  unit: "px",
  confidence: 0.7,
  ...extra,
});

Deno.test("importPredictions: keys, sizes, clipping, batches, skips, progress", async () => {
  const C = "reachy-001/2026-11-30/20261130T120000.200Z_000003.jpg";
  const D = "reachy-001/2026-11-30/20261130T120000.300Z_000004.jpg";
  const { deps, boxes, calls } = fakeDeps({
    [`frames/${A}`]: { width: 1920, height: 1080 },
    [`frames/${B}`]: { width: 640, height: 480 },
    [`frames/${C}`]: null,
    [`frames/${D}`]: "bad",
  });
  const progress: number[] = [];
  const summary = await importPredictions(deps, [
    pred(A, 10),
    pred(A, 1900), // clipped to 20 wide
    pred(B.replace(".jpg", ".txt"), 0.5, {
      unit: "norm",
      x: 0.5,
      y: 0.5,
      w: 0.25,
      h: 0.25,
      confidence: null,
    }),
    pred(B, 700), // outside the 640-wide image
    pred(C, 1),
    pred(D, 1),
    pred("reachy-001/2026-11-30/nothing.jpg", 1),
    pred("../x.jpg", 1),
    pred(A, 30),
  ], { model: "yolov8n", author: "ann", batchSize: 2, progress: (p) => progress.push(p.boxes) });
  assert.equal(summary.boxes, 4);
  assert.equal(summary.frames, 2);
  assert.equal(summary.clipped, 1);
  assert.deepEqual(summary.skipped.map((s) => s.ref), [
    "../x.jpg",
    B,
    C,
    D,
    "reachy-001/2026-11-30/nothing.jpg",
  ]);
  assert.match(summary.skipped[0].reason, /contains "\.\."/);
  assert.match(
    summary.skipped[1].reason,
    /box 2 of 2 \(person 700,10 100x50 px\) lies outside the 640x480 image/,
  );
  assert.match(summary.skipped[2].reason, /no store holds the JPEG of frames\/.*000003\.jpg \(1 box\)/);
  assert.match(summary.skipped[3].reason, /the JPEG of .* is unreadable: not a JPEG/);
  assert.match(
    summary.skipped[4].reason,
    /no frame frames\/reachy-001\/2026-11-30\/nothing\.jpg in the catalog/,
  );
  // A's three boxes in one call (a frame is never split), then B's.
  assert.deepEqual(calls.map((c) => c.inputs.map((i) => i.key.slice(-10))), [
    ["000001.jpg", "000001.jpg", "000001.jpg"],
    ["000002.jpg"],
  ]);
  assert.equal(calls[0].by?.author, "ann");
  const a = boxes.filter((b) => b.key === `frames/${A}`);
  assert.deepEqual(
    a.map((b) => [b.x, b.w, b.imageWidth, b.imageHeight, b.source, b.confidence, b.accepted]),
    [
      [10, 100, 1920, 1080, "model:yolov8n", 0.7, false],
      [1900, 20, 1920, 1080, "model:yolov8n", 0.7, false],
      [30, 100, 1920, 1080, "model:yolov8n", 0.7, false],
    ],
  );
  const b = boxes.find((x) => x.key === `frames/${B}`)!;
  assert.deepEqual([b.x, b.y, b.w, b.h, b.unit, b.imageWidth, b.confidence], [
    0.5,
    0.5,
    0.25,
    0.25,
    "norm",
    640,
    null,
  ]);
  assert.deepEqual(progress, [3, 4, 4]);

  // Again: everything is already there.
  const again = await importPredictions(deps, [pred(A, 10), pred(A, 10), pred(A, 1900)], {
    model: "yolov8n",
  });
  assert.equal(again.boxes, 1); // the second identical box of A at x=10 is new: only one existed
  assert.deepEqual(again.skipped.map((s) => s.reason.replace(/\(box \d+\)/, "(box N)")), [
    "box 1 of 3 is already imported (box N)",
    "box 3 of 3 is already imported (box N)",
  ]);
  // Another model's boxes are not the same boxes.
  const other = await importPredictions(deps, [pred(A, 10)], { model: "detr" });
  assert.equal(other.boxes, 1);
});

Deno.test("importPredictions: strict mode refuses unknown classes before writing; bad model names", async () => {
  const { deps, calls } = fakeDeps({ [`frames/${A}`]: { width: 1920, height: 1080 } }, { strict: true }, [
    "person",
    "door_closed",
  ]);
  await assert.rejects(
    importPredictions(deps, [pred(A, 1), pred(A, 2, { label: "persn" })], { model: "m" }),
    (e) =>
      e instanceof BadInputError &&
      /label "persn" is not in the label set \(labels.strict = true\): use one of person/.test(e.message),
  );
  assert.equal(calls.length, 0);
  const ok = await importPredictions(deps, [pred(A, 1)], { model: "m" });
  assert.equal(ok.boxes, 1);
  await assert.rejects(importPredictions(deps, [], { model: "a b" }), BadInputError);
});

Deno.test("importPredictions: a store failure stops the import", async () => {
  const { deps } = fakeDeps({ [`frames/${A}`]: { width: 1920, height: 1080 } });
  deps.imageSize = () => Promise.reject(new Error("S3 unreachable"));
  await assert.rejects(importPredictions(deps, [pred(A, 1)], { model: "m" }), /S3 unreachable/);
});
