/** Shared pieces of the dataset writers: plain decimals, XML escapes, class ids. */
import assert from "node:assert/strict";
import { ClassList, decimal, xmlEscape } from "../../../src/library/formats/common.ts";

Deno.test("decimal: the shortest text of the double, never in exponent form", () => {
  for (
    const n of [0, 1, 0.5, 1 / 3, 0.1 + 0.2, 1920, 300.125, 1e-7, 1.2345e-9, 5e-324, 1e21, 1.5e22, -2.5e-8]
  ) {
    const text = decimal(n);
    assert.doesNotMatch(text, /e/i, text);
    assert.equal(Number(text), n, `${n} -> ${text}`);
  }
  assert.equal(decimal(1e-7), "0.0000001");
  assert.equal(decimal(1.2345e-9), "0.0000000012345");
  assert.equal(decimal(1e21), "1000000000000000000000");
  assert.equal(decimal(0.25), "0.25");
  assert.throws(() => decimal(NaN), /not a finite number/);
});

Deno.test("xmlEscape: markup, quotes and line ends as references; characters XML cannot hold replaced", () => {
  assert.equal(xmlEscape(`a<b>&"c'\td\n`), "a&#60;b&#62;&#38;&#34;c&#39;&#9;d&#10;");
  assert.equal(xmlEscape("door\u0001"), "door\ufffd");
  assert.equal(xmlEscape("Tür 🚪"), "Tür 🚪");
});

Deno.test("ClassList: sorted by code point, COCO ids from 1, YOLO from 0; a class met later is appended", () => {
  const c = new ClassList(["person", "door", "Door", "person", "ä"]);
  assert.deepEqual(c.names, ["Door", "door", "person", "ä"]);
  assert.equal(c.index("door"), 1);
  assert.equal(c.cocoId("door"), 2);
  assert.equal(c.index("bicycle"), 4, "appended, ids already written stay");
  assert.deepEqual(c.names, ["Door", "door", "person", "ä", "bicycle"]);
  assert.equal(c.size, 5);
});
