import assert from "node:assert/strict";
import { modelSource, parseLabelStudio, urlRefs } from "../../../src/library/import/label_studio.ts";
import { lsTask } from "../../../src/library/formats/label_studio.ts";
import { A, refuses } from "./helpers.ts";
import { box, frame } from "../formats/rows.ts";

const rect = (id: string, label: string, x: number, y: number, w: number, h: number, extra = {}) => ({
  id,
  type: "rectanglelabels",
  from_name: "label",
  to_name: "image",
  original_width: 1920,
  original_height: 1080,
  value: { x, y, width: w, height: h, rotation: 0, rectanglelabels: [label] },
  ...extra,
});

Deno.test("Label Studio: image URLs to names (our API's key, local files, other URLs)", () => {
  assert.deepEqual(urlRefs(`http://127.0.0.1:8080/api/frames/${encodeURIComponent("frames/" + A)}/image`), [
    "frames/" + A,
  ]);
  assert.deepEqual(urlRefs(`/data/local-files/?d=${encodeURIComponent("export/" + A)}`), [
    "export/" + A,
    "/data/local-files/",
  ]);
  assert.deepEqual(urlRefs("s3://bucket/exports/a%20b.jpg"), ["exports/a b.jpg"]);
  assert.deepEqual(urlRefs("https://host/x/y.jpg?sig=1"), ["/x/y.jpg"]);
  assert.equal(modelSource("yolo v8 (2026)"), "model:yolo-v8-2026");
  assert.equal(modelSource(undefined), "model:label-studio");
});

Deno.test("Label Studio: the ground truth or latest annotation; percent to fractions; choices; predictions", () => {
  const parsed = parseLabelStudio([
    {
      id: 1,
      data: { image: `http://h/api/frames/${encodeURIComponent("frames/" + A)}/image`, key: "frames/" + A },
      annotations: [
        { id: 10, updated_at: "2026-11-30T12:00:00Z", result: [rect("a", "door", 1, 1, 1, 1)] },
        {
          id: 11,
          updated_at: "2026-11-30T13:00:00Z",
          result: [
            rect("fb42", "person", 12.5, 25, 25, 50),
            { id: "r", type: "rectangle", value: { x: 0, y: 0, width: 10, height: 10, rotation: 0 } },
            { id: "r", type: "labels", value: { x: 0, y: 0, width: 10, height: 10, labels: ["door"] } },
            rect("rot", "door", 1, 1, 1, 1, {
              value: { x: 1, y: 1, width: 1, height: 1, rotation: 30, rectanglelabels: ["door"] },
            }),
            { id: "p", type: "polygonlabels", value: { points: [[0, 0]], polygonlabels: ["floor"] } },
            { id: "t", type: "choices", from_name: "tags", value: { choices: ["night", "rain"] } },
          ],
        },
        { id: 12, was_cancelled: true, updated_at: "2026-11-30T14:00:00Z", result: [] },
      ],
      predictions: [{
        model_version: "yolov8n",
        score: 0.5,
        result: [rect("fb7", "person", 0, 0, 10, 10, { score: 0.9 })],
      }],
    },
    { id: 2, data: { image: "/data/upload/1/x.jpg" }, annotations: [] },
    {
      id: 3,
      data: { image: "/data/upload/1/y.jpg" },
      annotations: [{ id: 5, ground_truth: true, result: [] }, {
        id: 6,
        result: [rect("q", "door", 1, 1, 1, 1)],
      }],
    },
  ], "export.json");
  assert.equal(parsed.format, "label-studio");
  assert.equal(parsed.images.length, 2);
  const [a, c] = parsed.images;
  assert.deepEqual(a.refs, ["frames/" + A]);
  assert.deepEqual(a.tags, ["night", "rain"]);
  assert.deepEqual(
    a.boxes.map((b) => [b.label, b.x, b.y, b.w, b.h, b.unit, b.boxId, b.source, b.confidence]),
    [
      ["person", 0.125, 0.25, 0.25, 0.5, "norm", 42, undefined, null],
      ["door", 0, 0, 0.1, 0.1, "norm", undefined, undefined, null],
      ["person", 0, 0, 0.1, 0.1, "norm", 7, "model:yolov8n", 0.9],
    ],
  );
  assert.notEqual(a.complete, false);
  // The ground truth wins over a later annotation; its empty result says "no box".
  assert.deepEqual(c.refs, ["/data/upload/1/y.jpg"]);
  assert.deepEqual(c.boxes, []);
  const reasons = parsed.skipped.map((s) => s.reason).join("\n");
  assert.match(reasons, /task 0 \(id 1\): 2 annotations; imported annotations\[1\] \(id 11, updated last\)/);
  assert.match(reasons, /result 3 \(id "rot"\): rotated 30 degrees/);
  assert.match(reasons, /result 4 \(id "p"\): a "polygonlabels" result is not a box/);
  assert.match(reasons, /task 0 \(id 1\): 1 cancelled/);
  assert.match(reasons, /1 task\(s\) without an annotation/);
  assert.match(
    reasons,
    /task 2 \(id 3\): 2 annotations; imported annotations\[0\] \(id 5, the ground truth\)/,
  );
});

Deno.test("Label Studio: a task with predictions only does not say which boxes the frame has", () => {
  const [image] = parseLabelStudio([{
    data: { image: "x/" + A },
    predictions: [{ model_version: "m", result: [rect("1", "door", 1, 1, 1, 1)] }],
  }]).images;
  assert.equal(image.complete, false);
  assert.equal(image.boxes[0].source, "model:m");
});

Deno.test("Label Studio: predictions listed by id only (the project export) are left out, noted once", () => {
  const parsed = parseLabelStudio([
    { data: { image: "x/" + A }, annotations: [{ result: [] }], predictions: [3] },
    { data: { image: "x/b.jpg" }, predictions: [4, 5] },
  ]);
  assert.equal(parsed.images.length, 1);
  assert.deepEqual(parsed.skipped.map((s) => s.reason.replace(/:.*/, "")), [
    "3 prediction(s) given by id only (Label Studio's project export does not include them)",
    "1 task(s) without an annotation",
  ]);
});

Deno.test("Label Studio: problems named by task, result and value; JSON-MIN refused", () => {
  refuses(
    () =>
      parseLabelStudio([
        { data: {} },
        {
          data: { image: "a.jpg" },
          annotations: [{ result: [rect("1", "a/b", 1, 1, 1, 1), rect("2", "p", 1, 1, -1, 1)] }],
        },
        {
          data: { image: "a.jpg" },
          annotations: [{
            result: [{
              type: "rectanglelabels",
              value: { x: "1", y: 1, width: 1, height: 1, rectanglelabels: ["p"] },
            }],
          }],
        },
        "junk",
      ], "ls.json"),
    /^5 problems in ls\.json/,
    /ls\.json task 0: data names no image/,
    /task 1 annotations\[0\] result 0 \(id "1"\): .*a\/b/,
    /task 1 annotations\[0\] result 1 \(id "2"\): width -1 or height 1 is negative/,
    /task 2 annotations\[0\] result 0: x, y, width, height \["1",1,1,1\] must be numbers/,
    /task 3: expected a task/,
  );
  refuses(
    () =>
      parseLabelStudio([{ image: "a.jpg", id: 1, annotator: "x", annotation_id: 2, label: [] }], "min.json"),
    /min\.json is Label Studio's JSON-MIN export/,
  );
  refuses(() => parseLabelStudio({ a: 1 }, "x.json"), /x\.json must be Label Studio's JSON export/);
});

Deno.test("Label Studio: what frame-bucket's Label Studio writer writes reads back (ids, percent, tags, predictions)", () => {
  const f = frame({
    boxes: [box(5, { x: 64, y: 48, w: 320, h: 240 })],
    predictions: [
      box(6, {
        label: "door",
        source: "model:yolo",
        accepted: false,
        confidence: 0.8,
        x: 0,
        y: 0,
        w: 64,
        h: 48,
      }),
    ],
    tags: ["night"],
  });
  const [image] = parseLabelStudio([JSON.parse(lsTask(f, "http://127.0.0.1:8080"))]).images;
  assert.deepEqual(image.refs, [f.key]);
  assert.deepEqual(image.tags, ["night"]);
  assert.deepEqual(image.boxes.map((b) => [b.label, b.boxId, b.source, b.confidence]), [
    ["person", 5, undefined, null],
    ["door", 6, "model:yolo", 0.8],
  ]);
  const p = image.boxes[0];
  [[p.x, 0.1], [p.y, 0.1], [p.w, 0.5], [p.h, 0.5]].forEach(([got, want]) =>
    assert.ok(Math.abs(got - want) < 1e-15)
  );
});
