import assert from "node:assert/strict";
import { parseXml } from "../../../src/library/import/xml.ts";
import { refuses } from "./helpers.ts";

Deno.test("XML: elements, attributes, text, entities, lines; prolog, comments, CDATA passed over", () => {
  const root = parseXml(
    `\uFEFF<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE annotations>
<!-- a comment -->
<annotations>
  <version>1.1</version>
  <image id="0" name="a &amp; b/&#x41;&#66;.jpg" width='10'
         height="20">
    <box label="person" xtl="1" ytl="2" xbr="3" ybr="4"/>
    <tag label="x&lt;y"><![CDATA[<raw>]]></tag>
  </image>
</annotations>
<!-- after -->
`,
    "annotations.xml",
  );
  assert.equal(root.name, "annotations");
  assert.equal(root.line, 4);
  assert.equal(root.children.length, 2);
  assert.equal(root.children[0].text, "1.1");
  const image = root.children[1];
  assert.deepEqual(image.attributes, { id: "0", name: "a & b/AB.jpg", width: "10", height: "20" });
  assert.equal(image.line, 6);
  assert.equal(image.children[0].line, 8);
  assert.deepEqual(image.children[0].attributes, { label: "person", xtl: "1", ytl: "2", xbr: "3", ybr: "4" });
  assert.equal(image.children[1].attributes.label, "x<y");
  assert.equal(image.children[1].text, "<raw>");
});

Deno.test("XML: malformed documents refused naming the file and line", () => {
  refuses(() => parseXml("", "a.xml"), /^a\.xml line 1: the file is empty/);
  refuses(
    () => parseXml("<a>\n<b>\n</a>", "a.xml"),
    /a\.xml line 3: end tag <\/a> closes <b> opened on line 2/,
  );
  refuses(() => parseXml("<a>\n<b x=1/></a>", "a.xml"), /line 2: the value of x in <b> is not quoted/);
  refuses(() => parseXml('<a x="1" x="2"/>', "a.xml"), /attribute x is given twice/);
  refuses(() => parseXml("<a>\n\n<b>", "a.xml"), /line 3: <b> opened on line 3 is never closed/);
  refuses(() => parseXml("<a/><b/>", "a.xml"), /a second root element <b>/);
  refuses(() => parseXml("<a>&nbsp;</a>", "a.xml"), /unknown reference "&nbsp;"/);
  refuses(() => parseXml("<a>AT&T</a>", "a.xml"), /"&" that starts no reference/);
  refuses(() => parseXml("{}", "a.json"), /text before the root element; is it an XML file/);
  refuses(() => parseXml("<a></a> junk", "a.xml"), /text after the root element/);
});
