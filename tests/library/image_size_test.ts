import assert from "node:assert/strict";
import { jpegSize } from "../../src/library/image_size.ts";
import { BadInputError } from "../../src/errors.ts";
import { greyJpeg, jpegFixture, readSamples, withComment } from "../support/images.ts";

Deno.test("jpegSize reads the SOF of baseline, progressive and odd-sized files", () => {
  assert.deepEqual(jpegSize(greyJpeg(37, 21, () => 90)), { width: 37, height: 21 });
  assert.deepEqual(jpegSize(jpegFixture("odd_641x479.jpg")), { width: 641, height: 479 });
  assert.deepEqual(jpegSize(jpegFixture("odd_17x33_progressive_grey.jpg")), { width: 17, height: 33 });
  // Arithmetic coding (SOF9) cannot be decoded here, but its size still reads.
  const arith = jpegSize(jpegFixture("arithmetic.jpg"));
  assert.ok(arith.width > 0 && arith.height > 0);
  // A COM segment before the frame header is stepped over.
  assert.deepEqual(jpegSize(withComment(greyJpeg(8, 9, () => 1), "hello")), { width: 8, height: 9 });
});

Deno.test("jpegSize of the real samples is 1920x1080", () => {
  const samples = readSamples();
  assert.ok(samples.length > 0);
  for (const s of samples) assert.deepEqual(jpegSize(s), { width: 1920, height: 1080 });
});

Deno.test("jpegSize refuses what has no frame header, naming the problem", () => {
  const bad = (bytes: Uint8Array, re: RegExp) =>
    assert.throws(() => jpegSize(bytes), (e) => e instanceof BadInputError && re.test(e.message));
  bad(new Uint8Array(0), /no SOI marker.*empty/);
  bad(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), /no SOI marker/);
  bad(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), /no frame header/);
  const jpeg = greyJpeg(16, 16, () => 50);
  // Cut inside the segments before the SOF.
  bad(jpeg.subarray(0, 30), /no frame header/);
  // A zero height (DNL) is refused.
  const zero = jpeg.slice();
  for (let i = 2; i < zero.length - 8; i++) {
    if (zero[i] === 0xff && zero[i + 1] === 0xc0) {
      zero[i + 5] = 0;
      zero[i + 6] = 0;
      break;
    }
  }
  bad(zero, /size of 16x0/);
  // Garbage where a marker should be.
  bad(new Uint8Array([0xff, 0xd8, 0x12, 0x34]), /expected a marker at byte 2/);
});
