/**
 * CRC-32C (Castagnoli), the checksum of Kafka record batches (v2), which every produced batch carries and the
 * broker verifies. kafkajs computes it a byte at a time; for a 200 KB frame that was a fifth of a producer's CPU.
 * This one reads eight bytes per step through eight derived tables ("slicing-by-8"), the same polynomial and
 * result, several times faster in V8.
 */

const POLY = 0x82f63b78; // Castagnoli, bit-reversed
const T = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c;
}
// T[t * 256 + n]: the CRC of byte n followed by t zero bytes, so eight table reads advance eight bytes at once.
for (let n = 0; n < 256; n++) {
  let c = T[n];
  for (let t = 1; t < 8; t++) {
    c = T[c & 0xff] ^ (c >>> 8);
    T[t * 256 + n] = c;
  }
}

/** CRC-32C of `bytes` as an unsigned 32-bit number (continuing from `crc` when given). */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  const n = bytes.length;
  let i = 0;
  for (const end = n - 7; i < end; i += 8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    const b = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    c = T[1792 + (a & 0xff)] ^ T[1536 + ((a >>> 8) & 0xff)] ^ T[1280 + ((a >>> 16) & 0xff)] ^
      T[1024 + (a >>> 24)] ^ T[768 + (b & 0xff)] ^ T[512 + ((b >>> 8) & 0xff)] ^
      T[256 + ((b >>> 16) & 0xff)] ^
      T[b >>> 24];
  }
  for (; i < n; i++) c = T[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
