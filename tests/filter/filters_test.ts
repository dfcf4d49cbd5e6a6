import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import ahashFactory, { ahash, hashBits } from "../../plugins/filters/ahash.ts";
import { hamming } from "frame-bucket/plugin";
import histogramFactory, { chiSquared } from "../../plugins/filters/histogram.ts";
import { resizeGrey } from "../../src/filter/downscale.ts";
import { greyJpeg, readSamples } from "../support/images.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("aHash of generated images with known hashes", async (t) => {
  await t.step("left half dark, right half bright: each row is 0x00 0xff", () => {
    const img = greyJpeg(128, 128, (x) => (x < 64 ? 10 : 240));
    for (const mode of ["area", "nearest"] as const) {
      assert.equal(hex(ahash(img, 16, mode)), "00ff".repeat(16), mode);
    }
  });
  await t.step("top half bright: first 128 bits set", () => {
    const img = greyJpeg(256, 256, (_x, y) => (y < 128 ? 200 : 30));
    assert.equal(hex(ahash(img, 16, "area")), "ff".repeat(16) + "00".repeat(16));
  });
  await t.step("checkerboard of 8x8-pixel cells (hash size 8 over 64x64)", () => {
    const img = greyJpeg(64, 64, (x, y) => (((x >> 3) + (y >> 3)) & 1 ? 220 : 20));
    assert.equal(hex(ahash(img, 8, "area")), "55aa55aa55aa55aa");
  });
  await t.step("hash size 8 gives 64 bits", () => {
    assert.equal(ahash(greyJpeg(64, 64, (x) => x * 4), 8, "area").length, 8);
  });
});

Deno.test("aHash from the DC decode agrees with a full exact decode", () => {
  // Reference: jpeg-js decodes every pixel; we average the luma of each cell ourselves.
  for (const [i, bytes] of readSamples().slice(0, 3).entries()) {
    const full = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    const grey = new Uint8Array(full.width * full.height);
    for (let p = 0; p < grey.length; p++) {
      const r = full.data[p * 4], g = full.data[p * 4 + 1], b = full.data[p * 4 + 2];
      grey[p] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    }
    const exact = hashBits(
      resizeGrey({ width: full.width, height: full.height, data: grey }, 16, 16, "area"),
    );
    const fast = ahash(bytes, 16, "area");
    // Cell borders of a 16x16 grid over 240x135 DC blocks fall inside 8x8 blocks vertically, so a few cells near
    // the mean may flip; measured 0-2 bits on these frames.
    assert.ok(hamming(exact, fast) <= 4, `sample ${i}: ${hamming(exact, fast)} bits differ`);
  }
});

Deno.test("the ten still reachy frames sit far below the threshold", async (t) => {
  const samples = readSamples();
  for (const mode of ["area", "nearest"] as const) {
    await t.step(mode, () => {
      const first = ahash(samples[0], 16, mode);
      const distances = samples.slice(1).map((s) => hamming(first, ahash(s, 16, mode)));
      assert.ok(Math.max(...distances) < 26, `${mode}: distances ${distances}`);
    });
  }
});

Deno.test("filter plugins validate their options before any frame", async (t) => {
  await t.step("ahash", () => {
    assert.throws(() => ahashFactory({ hashSize: 1 }), { name: "RangeError", message: /hash size 1/ });
    assert.throws(() => ahashFactory({ threshold: 256 }), { message: /threshold 256 must be from 0 to 255/ });
    assert.throws(() => ahashFactory({ resize: "bilinear" as "area" }), { message: /resize "bilinear"/ });
  });
  await t.step("histogram", () => {
    assert.throws(() => histogramFactory({ threshold: 2 }), { message: /threshold 2/ });
    assert.throws(() => histogramFactory({ bins: 1 }), { message: /bins 1/ });
  });
});

Deno.test("histogram filter: same scene near 0, different scene above the threshold", () => {
  const f = histogramFactory({});
  const samples = readSamples();
  const a = f.signature(samples[0]) as { value: Float64Array };
  const b = f.signature(samples[9]) as { value: Float64Array };
  const dark = f.signature(greyJpeg(320, 240, () => 20)) as { value: Float64Array };
  assert.ok(f.distance(a, b) < 0.15, `still scene ${f.distance(a, b)}`);
  assert.ok(f.accepts(f.distance(a, dark)), `dark frame ${f.distance(a, dark)}`);
  assert.equal(chiSquared(a.value, a.value), 0);
});

Deno.test("a corrupt JPEG is a clear error from the filter, not a crash", () => {
  const f = ahashFactory({});
  assert.throws(() => f.signature(new Uint8Array([1, 2, 3])), SyntaxError);
  const truncated = readSamples()[0].subarray(0, 5000);
  assert.throws(() => f.signature(truncated), SyntaxError);
});
