/**
 * Hamming distance of two packed bit strings: the one implementation, exported to plugins by src/plugin.ts
 * (`frame-bucket/plugin`).
 */

/** Set bits of every byte value. */
const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});

/** Bits that differ between two equally long hashes. RangeError when their lengths differ. */
export function hamming(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) {
    throw new RangeError(`hashes of ${a.length * 8} and ${b.length * 8} bits cannot be compared`);
  }
  let d = 0;
  for (let i = 0; i < a.length; i++) d += POPCOUNT[a[i] ^ b[i]];
  return d;
}
