/** Label Studio writer: tasks with image URLs, rectangles in percent, choices, predictions; the config. */
import assert from "node:assert/strict";
import { frameImageUrl, lsLabelConfig, lsTask } from "../../../src/library/formats/label_studio.ts";
import { box, frame } from "./rows.ts";

Deno.test("Label Studio task: image URL of the server, accepted boxes and tags as the annotation, model boxes as predictions", () => {
  const f = frame({
    boxes: [
      box(5, { x: 64, y: 48, w: 320, h: 240 }),
      box(6, { unit: "norm", x: 0.1, y: 0.2, w: 0.3, h: 0.4, label: "door" }),
    ],
    predictions: [
      box(7, { source: "model:yolov8n", confidence: 0.5, accepted: false }),
      box(8, { source: "model:yolov8n", confidence: 0.25, accepted: false }),
    ],
    tags: ["night"],
    split: "val",
  });
  const task = JSON.parse(lsTask(f, "http://127.0.0.1:8080/"));
  assert.deepEqual(task.data, {
    image: `http://127.0.0.1:8080/api/frames/${encodeURIComponent(f.key)}/image`,
    key: f.key,
    robot_id: "reachy-001",
    capture_time: "2026-02-18T09:00:00.000Z",
    split: "val",
  });
  const [r5, r6, tags] = task.annotations[0].result;
  assert.deepEqual(r5, {
    id: "fb5",
    type: "rectanglelabels",
    from_name: "label",
    to_name: "image",
    original_width: 640,
    original_height: 480,
    image_rotation: 0,
    value: { x: 10, y: 10, width: 50, height: 50, rotation: 0, rectanglelabels: ["person"] },
  });
  assert.deepEqual(r6.value, {
    x: 0.1 * 100,
    y: 0.2 * 100,
    width: 0.3 * 100,
    height: 0.4 * 100,
    rotation: 0,
    rectanglelabels: ["door"],
  });
  assert.deepEqual(tags, {
    id: "fbtags",
    type: "choices",
    from_name: "tags",
    to_name: "image",
    value: { choices: ["night"] },
  });
  assert.equal(task.annotations[0].ground_truth, false);
  assert.equal(task.predictions.length, 1);
  assert.equal(task.predictions[0].model_version, "yolov8n");
  assert.equal(task.predictions[0].score, 0.375);
  assert.deepEqual(task.predictions[0].result.map((r: { id: string; score: number }) => [r.id, r.score]), [[
    "fb7",
    0.5,
  ], ["fb8", 0.25]]);
  const bare = JSON.parse(lsTask(frame(), "http://h"));
  assert.deepEqual(Object.keys(bare), ["data"], "no annotation, no prediction: data only");
  assert.equal(
    frameImageUrl("http://h:1/", "frames/a b/c.jpg"),
    "http://h:1/api/frames/frames%2Fa%20b%2Fc.jpg/image",
  );
});

Deno.test("Label Studio config: rectangle labels, choices only with tags, the label set when there is no class", () => {
  assert.equal(
    lsLabelConfig(["door", "a&b"], ["night"]),
    `<View>\n  <Image name="image" value="$image" zoom="true"/>\n  <RectangleLabels name="label" toName="image">\n` +
      `    <Label value="door"/>\n    <Label value="a&#38;b"/>\n  </RectangleLabels>\n` +
      `  <Choices name="tags" toName="image" choice="multiple" showInline="true">\n    <Choice value="night"/>\n` +
      `  </Choices>\n</View>\n`,
  );
  assert.doesNotMatch(lsLabelConfig(["door"], []), /Choices/);
  assert.match(lsLabelConfig([], [], ["cat", "dog"]), /<Label value="cat"\/>\n {4}<Label value="dog"\/>/);
});
