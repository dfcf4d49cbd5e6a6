/**
 * The WebAssembly scan loop (src/filter/scan_wasm.ts) against the TypeScript loop it stands in for: the same image
 * on every frame either can read, the same error on every frame it cannot, and the committed module built from the
 * committed Rust.
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { decodeColourEighth, decodeGreyEighth, useWasmScan } from "../../src/filter/jpeg_dc.ts";
import { scanWasmCounts, WASM_MEMORY_MAX } from "../../src/filter/scan_wasm.ts";
import { buildScanWasm } from "../../dev/build_wasm.ts";
import { Rng } from "../../dev/random.ts";
import { jpegFixture, mutatedJpeg, readSamples } from "../support/images.ts";

const FIXTURES = [...Deno.readDirSync(new URL("../fixtures/jpeg/", import.meta.url))]
  .map((e) => e.name)
  .filter((name) => name.endsWith(".jpg") && name !== "arithmetic.jpg")
  .sort();

/** What a decode gives: the image's bytes, or the error's class and message. */
function outcome(
  decode: (b: Uint8Array) => { width: number; height: number; data: Uint8Array },
  buf: Uint8Array,
) {
  try {
    const img = decode(buf);
    return { width: img.width, height: img.height, data: img.data };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

function both(buf: Uint8Array) {
  return { grey: outcome(decodeGreyEighth, buf), colour: outcome(decodeColourEighth, buf) };
}

/** Decodes `buf` with the TypeScript loop alone, then with the WebAssembly one, and compares. */
function sameEitherWay(buf: Uint8Array, name: string): void {
  useWasmScan(false);
  let ts;
  try {
    ts = both(buf);
  } finally {
    useWasmScan(true);
  }
  assert.deepEqual(both(buf), ts, name);
}

/** A 4:4:4 frame of noisy blocks (jpeg-js), as the e2e bench's generated scenes: longer codes than the samples. */
function noisyFrame(width: number, height: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < data.length; i += 4) {
    const x = (i / 4) % width;
    const v = ((x >> 5) + (Math.floor(i / 4 / width) >> 4)) & 1 ? 200 : 50;
    data[i] = v + rng.int(31) - 15;
    data[i + 1] = 255 - v + rng.int(31) - 15;
    data[i + 2] = rng.int(256);
    data[i + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ data, width, height }, 90).data);
}

Deno.test("the WebAssembly scan loop decodes every fixture and camera frame to the TypeScript loop's image", () => {
  const before = scanWasmCounts();
  const inputs: [string, Uint8Array][] = [
    ...FIXTURES.map((name): [string, Uint8Array] => [name, jpegFixture(name)]),
    ...readSamples().map((buf, i): [string, Uint8Array] => [`reachy sample ${i + 1}`, buf]),
    ["noisy 4:4:4 frame", noisyFrame(320, 240, 7)],
  ];
  for (const [name, buf] of inputs) sameEitherWay(buf, name);
  const after = scanWasmCounts();
  // Every good scan stayed on the fast path: none was handed back, none trapped.
  assert.ok(
    after.decoded > before.decoded + inputs.length,
    `decoded ${after.decoded - before.decoded} scans`,
  );
  assert.equal(after.redone, before.redone, "a good scan was handed back to the TypeScript loop");
  assert.equal(after.trapped, before.trapped, "the WebAssembly loop trapped");
});

Deno.test("a frame the WebAssembly scan loop cannot decode gets the TypeScript loop's error or image", () => {
  // Mutated real frames and fixtures (mutatedJpeg: bytes changed, markers inserted, runs deleted, the data cut
  // short): each must come out the same either way, an image or the same error. Counted, not timed, so that a slow
  // machine runs all of it.
  const rng = new Rng(0x5ca1ab1e);
  const sources = [
    readSamples()[0],
    ...["baseline_420.jpg", "progressive_420.jpg", "restart_5b_422.jpg", "restart_rows.jpg", "grey.jpg"].map(
      jpegFixture,
    ),
  ];
  const before = scanWasmCounts();
  for (let run = 0; run < 400; run++) {
    const buf = mutatedJpeg(rng, sources[run % sources.length], 4);
    sameEitherWay(buf, `run ${run}`);
  }
  const after = scanWasmCounts();
  assert.ok(after.redone > before.redone, "no mutated frame reached the TypeScript loop's error path");
  assert.equal(after.trapped, before.trapped, "the WebAssembly loop trapped");
});

Deno.test("a frame too large for the WebAssembly memory cap is decoded by the TypeScript loop, not grown into", () => {
  // A real frame with 17 MiB of padding after its EOI: the image is the frame's, and the instance does not grow.
  const frame = readSamples()[0];
  const padded = new Uint8Array(frame.length + WASM_MEMORY_MAX + (1 << 20));
  padded.set(frame);
  const before = scanWasmCounts();
  sameEitherWay(padded, "padded frame");
  assert.deepEqual(decodeGreyEighth(padded), decodeGreyEighth(frame));
  const after = scanWasmCounts();
  assert.ok(after.tooLarge > before.tooLarge, "the padded frame was not left to the TypeScript loop");
  assert.ok(after.memoryBytes <= WASM_MEMORY_MAX, `the instance grew to ${after.memoryBytes} bytes`);
  assert.equal(after.trapped, before.trapped);
});

Deno.test("the committed WebAssembly module is what src/filter/scan_wasm/ builds to", async () => {
  const committed = await Deno.readTextFile(new URL("../../src/filter/scan_wasm_bytes.ts", import.meta.url));
  assert.equal(
    await buildScanWasm(),
    committed,
    "run `deno task wasm` and commit src/filter/scan_wasm_bytes.ts",
  );
});
