import assert from "node:assert/strict";
import { parseCoco } from "../../../src/library/import/coco.ts";
import { ClassList } from "../../../src/library/formats/common.ts";
import { cocoDocument } from "../../../src/library/formats/coco.ts";
import { A, B, refuses } from "./helpers.ts";
import { box, frame } from "../formats/rows.ts";

const categories = [{ id: 1, name: "door" }, { id: 2, name: "person" }];

Deno.test("COCO: every image (with or without boxes), boxes in px, key first, labels as tags, scores", () => {
  const parsed = parseCoco([{
    name: "instances_val.json",
    json: {
      categories,
      images: [
        { id: 1, file_name: A, width: 1920, height: 1080, key: `frames/${A}`, labels: ["night"] },
        { id: 2, file_name: B, width: 640, height: 480 },
      ],
      annotations: [
        { id: 7, image_id: 1, category_id: 2, bbox: [10.5, 20, 30, 40], area: 1200, iscrowd: 0 },
        { id: 8, image_id: 1, category_id: 1, bbox: [0, 0, 5, 5], score: 0.5 },
      ],
    },
  }]);
  assert.equal(parsed.format, "coco");
  const [a, b] = parsed.images;
  assert.deepEqual(a.refs, [`frames/${A}`, A]);
  assert.deepEqual([a.width, a.height, a.tags], [1920, 1080, ["night"]]);
  assert.deepEqual(a.boxes.map((x) => [x.label, x.x, x.y, x.w, x.h, x.unit, x.confidence]), [
    ["person", 10.5, 20, 30, 40, "px", null],
    ["door", 0, 0, 5, 5, "px", 0.5],
  ]);
  assert.equal(a.boxes[1].at, "instances_val.json annotations[1]");
  assert.deepEqual(b.refs, [B]);
  assert.deepEqual(b.boxes, []);
});

Deno.test("COCO: problems named by file, entry and value; results arrays pointed to pre-labels", () => {
  refuses(
    () =>
      parseCoco([{
        name: "instances_train.json",
        json: {
          categories,
          images: [{ id: 1, file_name: "", width: 1, height: 1 }, { id: 2, file_name: A, width: 0 }],
        },
      }]),
    /^2 problems in instances_train\.json/,
    /images\[0\]: file_name "" must be the image's file name/,
    /images\[1\]: width 0 and height undefined must be positive whole pixels/,
  );
  refuses(
    () =>
      parseCoco([{
        name: "i.json",
        json: {
          categories,
          images: [{ id: 1, file_name: A }],
          annotations: [{ image_id: 1, category_id: 9, bbox: [0, 0, 1, 1] }, {
            image_id: 5,
            category_id: 1,
            bbox: [1],
          }],
        },
      }]),
    /^i\.json: 3 problems in the annotations/,
    /annotations\[0\]: category_id 9 is not in the categories list/,
    /annotations\[1\]: image_id 5 is not in the images list/,
    /annotations\[1\]: bbox \[1\] must be \[x, y, width, height\] in pixels/,
  );
  refuses(
    () => parseCoco([{ name: "r.json", json: [] }]),
    /r\.json is a JSON array: a COCO results file .* pre-labels/,
  );
  refuses(() => parseCoco([{ name: "x.json", json: { a: 1 } }]), /x\.json is not a COCO instances file/);
});

Deno.test("COCO: what frame-bucket's COCO writer writes reads back as the same boxes, keys and tags", () => {
  const f = frame({
    boxes: [box(3, { x: 10.25, y: 20, w: 30.5, h: 40 }), box(4, { label: "door", x: 1, y: 2, w: 3, h: 4 })],
    tags: ["night"],
  });
  const classes = new ClassList(["door", "person"]);
  const json = JSON.parse(cocoDocument([f], classes, { description: "d", dateCreated: "2026-11-30" }));
  const [image] = parseCoco([{ name: "instances_default.json", json }]).images;
  assert.deepEqual(image.refs, [f.key, f.name]);
  assert.deepEqual(image.tags, ["night"]);
  assert.deepEqual(image.boxes.map((b) => [b.label, b.x, b.y, b.w, b.h, b.boxId, b.boxIdSource]), [
    ["person", 10.25, 20, 30.5, 40, 3, "human"],
    ["door", 1, 2, 3, 4, 4, "human"],
  ]);
});
