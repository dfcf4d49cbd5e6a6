/** Byte helpers the tests share. */

export { concatBytes as concat } from "../../src/bytes.ts";

/** Whether the two hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * `data` snappy-compressed in xerial framing, as the Java client writes it: the 16-byte header, then each block
 * (`data` cut at `cuts`) compressed on its own, after its length.
 */
export function xerialSnappy(
  compress: (b: Uint8Array) => Uint8Array,
  data: Uint8Array,
  cuts: number[],
): Uint8Array {
  const bounds = [0, ...cuts, data.length];
  const blocks = bounds.slice(1).map((end, i) => compress(data.subarray(bounds[i], end)));
  const framed = new Uint8Array(16 + blocks.reduce((n, b) => n + 4 + b.length, 0));
  framed.set([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
  const view = new DataView(framed.buffer);
  let at = 16;
  for (const block of blocks) {
    view.setInt32(at, block.length);
    framed.set(block, at + 4);
    at += 4 + block.length;
  }
  return framed;
}
