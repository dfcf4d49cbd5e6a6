import assert from "node:assert/strict";
import { parseCvat } from "../../../src/library/import/cvat.ts";
import { cvatDocument } from "../../../src/library/formats/cvat.ts";
import { A, B, refuses } from "./helpers.ts";
import { box, frame } from "../formats/rows.ts";

const doc = (images: string) =>
  `<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta><task><name>t</name></task></meta>\n${images}</annotations>\n`;

Deno.test("CVAT: boxes as corners to x, y, w, h in px; tags; empty images; shapes that are no boxes left out", () => {
  const parsed = parseCvat([{
    name: "annotations.xml",
    text: doc(`  <image id="0" name="${A}" width="1920" height="1080">
    <box label="person" source="manual" occluded="0" xtl="10.5" ytl="20" xbr="110.5" ybr="220" z_order="0">
      <attribute name="pose">standing</attribute>
    </box>
    <box label="door" xtl="0" ytl="0" xbr="1920" ybr="1080" rotation="0.0"/>
    <box label="door" xtl="1" ytl="1" xbr="5" ybr="5" rotation="12"/>
    <polygon label="floor" points="0,0;1,1;2,0"/>
    <tag label="night" source="manual"/>
    <tag label="night"/>
  </image>
  <image id="1" name="${B}" width="640" height="480"></image>
`),
  }]);
  assert.equal(parsed.format, "cvat");
  assert.equal(parsed.images.length, 2);
  const [a, b] = parsed.images;
  assert.deepEqual(a.refs, [A]);
  assert.equal(a.width, 1920);
  assert.equal(a.height, 1080);
  assert.deepEqual(a.boxes.map((x) => [x.label, x.x, x.y, x.w, x.h, x.unit]), [
    ["person", 10.5, 20, 100, 200, "px"],
    ["door", 0, 0, 1920, 1080, "px"],
  ]);
  assert.match(a.boxes[0].at, /annotations\.xml line 6 <box>/);
  assert.deepEqual(a.tags, ["night"]);
  assert.deepEqual(b.boxes, []);
  assert.deepEqual(parsed.skipped.map((s) => s.reason.replace(/ line \d+/, "")), [
    'annotations.xml <box>: rotated "12" degrees; boxes are upright, left out',
    'annotations.xml <polygon> ("floor"): a polygon is not a box, left out',
  ]);
});

Deno.test("CVAT: every problem named by file, line and value; video and other roots refused", () => {
  refuses(
    () =>
      parseCvat([{
        name: "train.xml",
        text: doc(`  <image id="0" name="${A}" width="1920" height="x">
    <box label="person" xtl="a" ytl="0" xbr="5" ybr="5"/>
    <box xtl="0" ytl="0" xbr="5" ybr="5"/>
    <box label="person" xtl="9" ytl="0" xbr="5" ybr="5"/>
    <box label="a/b" xtl="0" ytl="0" xbr="5" ybr="5"/>
  </image>
  <image id="1" width="1" height="1"/>
`),
      }]),
    /^6 problems in train\.xml; nothing was imported/,
    /train\.xml line 5 <image id="0">: width "1920" and height "x" must be positive whole pixels/,
    /train\.xml line 6 <box>: xtl "a" must be a number/,
    /line 7 <box>: no label attribute/,
    /line 8 <box>: the bottom-right corner \(5, 5\) is left of or above the top-left \(9, 0\)/,
    /line 9 <box>: .*a\/b/,
    /line 11 <image id="1">: no name attribute/,
  );
  refuses(
    () => parseCvat([{ name: "v.xml", text: doc(`  <track id="0" label="person"></track>\n`) }]),
    /v\.xml line 5: <track> is CVAT for video: export the task as "CVAT for images 1\.1"/,
  );
  refuses(
    () => parseCvat([{ name: "x.xml", text: "<dataset/>" }]),
    /x\.xml line 1: the root element is <dataset>, not <annotations>/,
  );
});

Deno.test("CVAT: what frame-bucket's CVAT writer writes reads back as the same boxes and tags", () => {
  const f = frame({
    boxes: [
      box(1, { x: 10.25, y: 20, w: 30.5, h: 40 }),
      box(2, { label: "door", x: 0.1, y: 0.2, w: 0.3, h: 0.4, unit: "norm", source: "import" }),
    ],
    tags: ["night", "rain & fog"],
  });
  const text = cvatDocument([f], {
    name: "t",
    labels: ["door", "person"],
    nowIso: "2026-11-30T12:00:00.000Z",
  });
  const [image] = parseCvat([{ name: "annotations.xml", text }]).images;
  assert.deepEqual(image.refs, [f.name]);
  assert.deepEqual(image.tags, ["night", "rain & fog"]);
  assert.deepEqual(image.boxes[0], { ...image.boxes[0], label: "person", x: 10.25, y: 20, w: 30.5, h: 40 });
  const door = image.boxes[1];
  assert.equal(door.label, "door");
  for (const [got, want] of [[door.x, 64], [door.y, 96], [door.w, 192], [door.h, 192]]) {
    assert.ok(Math.abs(got - want) < 1e-9, `${got} vs ${want}`);
  }
});
