import assert from "node:assert/strict";
import { parseDataYaml, parseYolo } from "../../../src/library/import/yolo.ts";
import { ClassList } from "../../../src/library/formats/common.ts";
import { dataYaml, yoloLabels } from "../../../src/library/formats/yolo.ts";
import { refuses } from "./helpers.ts";
import { box } from "../formats/rows.ts";

Deno.test("data.yaml names: block map, block list, flow list and map, quotes and comments", () => {
  assert.deepEqual(
    parseDataYaml(
      `train: images/train\nval: images/val\nnames:\n  0: "door"\n  1: person # a comment\n  2: 'it''s'\nnc: 3\n`,
    ),
    ["door", "person", "it's"],
  );
  assert.deepEqual(parseDataYaml(`names:\n  - door\n  - "per son"\n`), ["door", "per son"]);
  assert.deepEqual(parseDataYaml(`names: [door, 'person', "a,b"]\n`), ["door", "person", "a,b"]);
  assert.deepEqual(parseDataYaml(`path: .\nnames: {0: door, 1: person}\n`), ["door", "person"]);
  assert.deepEqual(parseDataYaml(dataYaml(new ClassList(["b", "a"]), ["train", "val"])), ["a", "b"]);
});

Deno.test("data.yaml: problems named by file and line", () => {
  refuses(() => parseDataYaml("train: x\n", "d.yaml"), /d\.yaml has no "names:"/);
  refuses(
    () => parseDataYaml("names:\n  0: a\n  2: b\n", "d.yaml"),
    /d\.yaml: class 1 has no name \(ids must run 0\.\.1\)/,
  );
  refuses(() => parseDataYaml("names:\n  x: a\n", "d.yaml"), /d\.yaml line 2: class id "x" must be 0, 1, 2/);
  refuses(() => parseDataYaml("names: [a, a]\n", "d.yaml"), /class "a" is both 0 and 1/);
  refuses(() => parseDataYaml("names: person\n", "d.yaml"), /line 1: names "person" must be a list or a map/);
});

Deno.test("YOLO: a label file per image (empty = no box), centre to corner, classes from data.yaml", () => {
  const parsed = parseYolo([
    {
      name: "labels/train/reachy-001__2026-11-30__x.txt",
      text: "1 0.5 0.5 0.25 0.5\n0 0.1 0.1 0.2 0.2 0.75\n",
    },
    { name: "labels/val/reachy-001__2026-11-30__y.txt", text: "" },
  ], { dataYaml: { name: "data.yaml", text: "names:\n  0: door\n  1: person\n" } });
  assert.equal(parsed.format, "yolo");
  const [x, y] = parsed.images;
  assert.deepEqual(x.refs, ["labels/train/reachy-001__2026-11-30__x.txt"]);
  assert.deepEqual(x.boxes.map((b) => [b.label, b.x, b.y, b.w, b.h, b.unit, b.confidence]), [
    ["person", 0.375, 0.25, 0.25, 0.5, "norm", null],
    ["door", 0, 0, 0.2, 0.2, "norm", 0.75],
  ]);
  assert.deepEqual(y.boxes, []);
  // Classes given directly or by a names file.
  assert.equal(
    parseYolo([{ name: "a.txt", text: "0 .5 .5 .1 .1" }], { classes: ["cat"] }).images[0].boxes[0].label,
    "cat",
  );
  assert.equal(
    parseYolo([{ name: "a.txt", text: "0 .5 .5 .1 .1" }], { namesFile: { name: "obj.names", text: "dog\n" } })
      .images[0]
      .boxes[0].label,
    "dog",
  );
});

Deno.test("YOLO: problems named by file, line and value", () => {
  refuses(() => parseYolo([{ name: "a.txt", text: "" }], {}), /need their class names/);
  refuses(
    () => parseYolo([{ name: "a.txt", text: "0 0.5 0.5 0.1\n3 0.5 0.5 0.1 0.1\n" }], { classes: ["a", "b"] }),
    /^2 problems in the YOLO labels/,
    /a\.txt line 1: 4 columns/,
    /a\.txt line 2: class 3 is not in the classes list \(2 classes, 0\.\.1\)/,
  );
  refuses(
    () => parseYolo([{ name: "a.jpg", text: "" }], { classes: ["a"] }),
    /a\.jpg: a label file's name ends in \.txt/,
  );
});

Deno.test("YOLO: what frame-bucket's YOLO writer writes reads back within a unit in the last place", () => {
  const classes = new ClassList(["door", "person"]);
  const boxes = [
    box(1, { label: "person", x: 0.1, y: 0.2, w: 0.3, h: 0.4, unit: "norm" }),
    box(2, { label: "door", x: 10, y: 20, w: 30, h: 40 }),
  ];
  const [image] = parseYolo([{ name: "f.txt", text: yoloLabels(boxes, classes) }], {
    dataYaml: { name: "data.yaml", text: dataYaml(classes, null) },
  }).images;
  const want = [["person", 0.1, 0.2, 0.3, 0.4], ["door", 10 / 640, 20 / 480, 30 / 640, 40 / 480]] as const;
  image.boxes.forEach((b, i) => {
    assert.equal(b.label, want[i][0]);
    [b.x, b.y, b.w, b.h].forEach((v, j) =>
      assert.ok(Math.abs(v - (want[i][j + 1] as number)) < 1e-15, `${v}`)
    );
  });
});
