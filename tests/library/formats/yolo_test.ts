/** YOLO (Ultralytics) writer: label lines, flat image names and back, data.yaml. */
import assert from "node:assert/strict";
import { ClassList } from "../../../src/library/formats/common.ts";
import {
  dataYaml,
  flatImageName,
  keyOfFlatName,
  yoloImagePath,
  yoloLabelPath,
  yoloLabels,
} from "../../../src/library/formats/yolo.ts";
import { box, frame } from "./rows.ts";

Deno.test("YOLO label lines: class id, centre and size as fractions, plain decimals", () => {
  const classes = new ClassList(["person", "door"]);
  const text = yoloLabels([
    box(1, { unit: "norm", x: 0.1, y: 0.2, w: 0.5, h: 0.25 }),
    box(2, { label: "door", x: 64, y: 48, w: 320, h: 240 }),
    box(3, { unit: "norm", x: 0, y: 0, w: 2e-7, h: 1e-7 }),
  ], classes);
  assert.equal(
    text,
    `1 ${0.1 + 0.25} ${0.2 + 0.125} 0.5 0.25\n` +
      `0 ${64 / 640 + 320 / 640 / 2} ${48 / 480 + 240 / 480 / 2} 0.5 0.5\n` +
      `1 0.0000001 0.00000005 0.0000002 0.0000001\n`,
  );
  assert.equal(yoloLabels([], classes), "", "a negative: an empty file");
});

Deno.test("flat image names: / as __, read back from the right (robot ids may hold __)", () => {
  const key = "frames/bracket__002/2026-02-18/20260218T090000000Z_000001_p3-o12.jpg";
  assert.equal(flatImageName(key), "bracket__002__2026-02-18__20260218T090000000Z_000001_p3-o12.jpg");
  assert.equal(keyOfFlatName(flatImageName(key)), key);
  assert.equal(
    keyOfFlatName("labels/train/bracket__002__2026-02-18__20260218T090000000Z_000001_p3-o12.txt"),
    key,
  );
  assert.equal(keyOfFlatName("not-a-frame.jpg"), null);
  const f = frame({ name: flatImageName(key), split: "val" });
  assert.equal(yoloImagePath(f), `images/val/${flatImageName(key)}`);
  assert.equal(yoloLabelPath(f), `labels/val/${flatImageName(key).replace(/\.jpg$/, ".txt")}`);
  assert.equal(yoloImagePath(frame({ name: "a.jpg" })), "images/train/a.jpg");
});

Deno.test("data.yaml: the splits' folders, val falls back to train, names by id as JSON strings", () => {
  const classes = new ClassList(["person", 'odd: "name" # x']);
  assert.equal(
    dataYaml(classes, ["train", "val", "test"]),
    "# Ultralytics YOLO detection dataset written by frame-bucket (deno task export --format yolo).\n" +
      "# Image folders are relative to this file; labels/ mirrors images/.\n" +
      "train: images/train\nval: images/val\ntest: images/test\nnc: 2\nnames:\n" +
      `  0: "odd: \\"name\\" # x"\n  1: "person"\n`,
  );
  assert.match(dataYaml(classes, null), /^train: images\/train\nval: images\/train {2}# no val split/m);
  assert.match(dataYaml(new ClassList([]), null), /^nc: 0\nnames: \{\}\n/m);
});
