/** COCO instances writer: the document's shape, pixel boxes unchanged, converted ones once, categories from 1. */
import assert from "node:assert/strict";
import { ClassList } from "../../../src/library/formats/common.ts";
import {
  cocoAnnotationPath,
  cocoDocument,
  cocoHead,
  cocoImagePath,
  cocoMiddle,
  cocoTail,
} from "../../../src/library/formats/coco.ts";
import { box, frame } from "./rows.ts";

Deno.test("COCO: images, annotations and categories; pixels unchanged, fractions times the size", () => {
  const classes = new ClassList(["person", "door"]);
  const f1 = frame({
    boxes: [
      box(7, { x: 10.25, y: 20.5, w: 30.125, h: 40.0625 }),
      box(9, { label: "door", unit: "norm", x: 0.1, y: 0.2, w: 0.5, h: 0.25 }),
    ],
    tags: ["night"],
    split: "train",
  });
  const f2 = frame({ split: "train", name: "reachy-001/2026-02-18/b.jpg" });
  const doc = JSON.parse(
    cocoDocument([f1, f2], classes, { description: "test", dateCreated: "2026-11-30T12:00:00.000Z" }),
  );
  assert.deepEqual(doc.categories, [{ id: 1, name: "door", supercategory: "" }, {
    id: 2,
    name: "person",
    supercategory: "",
  }]);
  assert.equal(doc.info.year, 2026);
  assert.deepEqual(doc.images[0], {
    id: 1,
    file_name: "reachy-001/2026-02-18/20260218T090000000Z_000001.jpg",
    width: 640,
    height: 480,
    key: f1.key,
    robot_id: "reachy-001",
    capture_time: "2026-02-18T09:00:00.000Z",
    labels: ["night"],
  });
  assert.deepEqual(doc.annotations[0], {
    id: 7,
    image_id: 1,
    category_id: 2,
    bbox: [10.25, 20.5, 30.125, 40.0625],
    area: 30.125 * 40.0625,
    iscrowd: 0,
    segmentation: [],
    attributes: { source: "human" },
  });
  assert.deepEqual(doc.annotations[1].bbox, [0.1 * 640, 0.2 * 480, 0.5 * 640, 0.25 * 480]);
  assert.equal(doc.annotations[1].category_id, 1);
  assert.equal(doc.images.length, 2);
  assert.equal(cocoAnnotationPath("val"), "annotations/instances_val.json");
  assert.equal(cocoAnnotationPath(null), "annotations/instances_default.json");
  assert.equal(cocoImagePath(f1), "images/train/reachy-001/2026-02-18/20260218T090000000Z_000001.jpg");
  assert.equal(cocoImagePath(frame()), `images/default/${frame().name}`);
});

Deno.test("COCO: the pieces join into valid JSON also with no image; a model's score is kept", () => {
  const classes = new ClassList([]);
  const empty = JSON.parse(
    cocoHead(classes, { description: "d", dateCreated: "2026-01-01T00:00:00Z" }) + cocoMiddle + cocoTail,
  );
  assert.deepEqual([empty.images, empty.annotations, empty.categories], [[], [], []]);
  const doc = JSON.parse(cocoDocument(
    [frame({ boxes: [box(1, { source: "model:yolo", confidence: 0.75, label: "cat" })] })],
    classes,
    { description: "d", dateCreated: "2026-01-01T00:00:00Z" },
  ));
  assert.deepEqual(doc.annotations[0].attributes, { source: "model:yolo", confidence: 0.75 });
  assert.deepEqual(
    doc.categories,
    [{ id: 1, name: "cat", supercategory: "" }],
    "a class met while writing is listed",
  );
});
