/** CVAT for images 1.1 writer: meta, images with boxes as corners and tags, escapes, sources. */
import assert from "node:assert/strict";
import {
  cvatAnnotationPath,
  cvatDocument,
  cvatImagePath,
  cvatSource,
} from "../../../src/library/formats/cvat.ts";
import { box, frame } from "./rows.ts";

Deno.test("CVAT: the task's meta, boxes as pixel corners, tags, escaped names", () => {
  const f = frame({
    boxes: [
      box(1, { x: 10.25, y: 20.5, w: 30.125, h: 40.0625 }),
      box(2, { label: 'a<b & "c"', unit: "norm", x: 0.5, y: 0.5, w: 0.25, h: 0.5, source: "import" }),
    ],
    tags: ["night"],
  });
  const xml = cvatDocument([f, frame({ name: "reachy-001/2026-02-18/b.jpg" })], {
    name: "train",
    labels: ['a<b & "c"', "night", "person"],
    nowIso: "2026-11-30T12:00:00.000Z",
  });
  assert.match(
    xml,
    /^<\?xml version="1.0" encoding="utf-8"\?>\n<annotations>\n {2}<version>1.1<\/version>\n/,
  );
  assert.match(xml, /<size>2<\/size>[\s\S]*<stop_frame>1<\/stop_frame>/);
  assert.match(xml, /<created>2026-11-30T12:00:00.000\+00:00<\/created>/);
  assert.match(xml, /<label>\n {10}<name>a&#60;b &#38; &#34;c&#34;<\/name>/);
  assert.ok(
    xml.includes(
      `  <image id="0" name="${f.name}" width="640" height="480">\n` +
        `    <box label="person" source="manual" occluded="0" xtl="10.25" ytl="20.5" xbr="40.375" ybr="60.5625" z_order="0"></box>\n` +
        `    <box label="a&#60;b &#38; &#34;c&#34;" source="file" occluded="0" xtl="320" ytl="240" xbr="480" ybr="480" z_order="0"></box>\n` +
        `    <tag label="night" source="manual"></tag>\n  </image>\n`,
    ),
    xml,
  );
  assert.match(
    xml,
    /<image id="1" name="reachy-001\/2026-02-18\/b.jpg" width="640" height="480">\n {2}<\/image>\n<\/annotations>\n$/,
  );
  assert.equal(cvatSource("model:yolo"), "auto");
  assert.equal(cvatAnnotationPath(null), "annotations.xml");
  assert.equal(cvatAnnotationPath("val"), "val.xml");
  assert.equal(cvatImagePath(f), `images/${f.name}`);
});
