/** Generated test images, and the real samples (dev/samples.ts: the benchmarks read them too), for the tests. */
import jpeg from "jpeg-js";
import type { Rng } from "../../dev/random.ts";
import { concat } from "./bytes.ts";

export { readSamples, sampleFiles, SAMPLES_DIR } from "../../dev/samples.ts";

/** Encodes a grey image given by a function of (x, y) as a baseline JPEG. */
export function greyJpeg(
  width: number,
  height: number,
  shade: (x: number, y: number) => number,
  quality = 95,
): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = Math.max(0, Math.min(255, Math.round(shade(x, y))));
      const i = (y * width + x) * 4;
      data[i] = data[i + 1] = data[i + 2] = v;
      data[i + 3] = 255;
    }
  }
  return new Uint8Array(jpeg.encode({ data, width, height }, quality).data);
}

/** A JPEG of tests/fixtures/jpeg/. */
export function jpegFixture(name: string): Uint8Array {
  return Deno.readFileSync(new URL(`../fixtures/jpeg/${name}`, import.meta.url));
}

/**
 * A copy of `src` with 1 to `maxEdits` random edits, for the decoders' fuzz tests: bytes changed or flipped, a
 * marker inserted (a restart marker half the time), a run deleted, a byte of the first 700 (headers: sizes and
 * tables) changed; and a quarter of the time the result is cut short.
 */
export function mutatedJpeg(rng: Rng, src: Uint8Array, maxEdits = 8): Uint8Array {
  let buf: Uint8Array = src.slice();
  const edits = 1 + rng.int(maxEdits);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(buf.length);
    switch (rng.int(5)) {
      case 0:
        buf[at] = rng.int(256);
        break;
      case 1:
        buf[at] ^= 1 << rng.int(8);
        break;
      case 2: {
        const marker = rng.int(2) === 0 ? 0xd0 + rng.int(8) : rng.int(256);
        buf = concat([buf.subarray(0, at), new Uint8Array([0xff, marker]), buf.subarray(at)]);
        break;
      }
      case 3:
        buf = concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + rng.int(16)))]);
        break;
      default:
        buf[rng.int(Math.min(buf.length, 700))] = rng.int(256);
    }
  }
  return rng.int(4) === 0 ? buf.subarray(0, rng.int(buf.length + 1)) : buf;
}

/** A JPEG-shaped blob (SOI, noise, EOI) of exactly `size` bytes (at least 4); the noise may hold markers. */
export function fakeJpeg(rng: Rng, size: number): Uint8Array {
  const out = rng.bytes(Math.max(4, size));
  out.set([0xff, 0xd8], 0);
  out.set([0xff, 0xd9], out.length - 2);
  return out;
}

/** The frame with a COM segment right after SOI: a legal JPEG whose bytes contain `text` (so frames differ). */
export function withComment(jpeg: Uint8Array, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const segment = new Uint8Array(4 + payload.length);
  segment.set([0xff, 0xfe, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  segment.set(payload, 4);
  return concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}
