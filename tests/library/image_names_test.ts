import assert from "node:assert/strict";
import { imageName, keyOfImage } from "../../src/library/image_names.ts";
import { BadInputError } from "../../src/errors.ts";

const KEY = "frames/reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg";
const NAME = "reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg";

Deno.test("imageName drops the frames/ prefix, keyOfImage puts it back", () => {
  assert.equal(imageName(KEY), NAME);
  assert.equal(keyOfImage(NAME), KEY);
  assert.equal(keyOfImage(imageName(KEY)), KEY);
  // A key without the prefix stays as it is.
  assert.equal(imageName(NAME), NAME);
});

Deno.test("keyOfImage accepts full keys, ./ and / leads, backslashes and .txt stems", () => {
  assert.equal(keyOfImage(KEY), KEY);
  assert.equal(keyOfImage("./" + NAME), KEY);
  assert.equal(keyOfImage("/" + NAME), KEY);
  assert.equal(keyOfImage(NAME.replaceAll("/", "\\")), KEY);
  assert.equal(keyOfImage(NAME.replace(/\.jpg$/, ".txt")), KEY);
  assert.equal(keyOfImage(NAME.replace(/\.jpg$/, ".TXT")), KEY);
});

Deno.test("imageName and keyOfImage with another rustfs.prefix", () => {
  assert.equal(imageName("cam/x/a.jpg", "cam/"), "x/a.jpg");
  assert.equal(keyOfImage("x/a.jpg", "cam/"), "cam/x/a.jpg");
});

Deno.test("keyOfImage refuses empty names and .. with the fix", () => {
  assert.throws(() => keyOfImage("  "), (e) => e instanceof BadInputError && /is empty/.test(e.message));
  assert.throws(
    () => keyOfImage("reachy-001/../../etc/passwd"),
    (e) => e instanceof BadInputError && /"\.\."/.test(e.message),
  );
});
