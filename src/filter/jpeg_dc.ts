/**
 * A 1/8-scale greyscale JPEG decoder that reads only what the aHash filter needs.
 *
 * The DC coefficient of an 8x8 DCT block is eight times the block's mean sample, so a luma image at 1/8 of the
 * size falls out of the entropy-coded data without any IDCT, dequantization of AC coefficients, upsampling or
 * colour conversion. What remains is Huffman decoding: AC coefficients are never used, but in a sequential scan
 * they sit between the DC values and have to be decoded to be stepped over, and chroma blocks of interleaved scans
 * likewise. Progressive files are cheaper: only the DC scans are decoded, every AC scan is skipped by looking for
 * the next marker.
 *
 * Speed comes from lookup tables indexed by the next LAC (14) bits of the stream. Because AC values are skipped
 * and not stored, one AC table entry can stand for several whole coefficients (code + value bits) at once: it
 * says how many bits they take and how far they advance the coefficient index. The bit buffer lives in local
 * variables of one monomorphic loop; rare cases (long codes, restart markers) leave the loop through plain
 * functions that share the reader state through a small Int32Array.
 *
 * The scan loop runs as WebAssembly (scan_wasm.ts, built from the Rust in scan_wasm/), about a quarter faster than
 * the same loop in TypeScript (`deno task bench filter` prints both). The TypeScript loop stays: it decodes any scan
 * the WebAssembly one gives up on, so errors are reported by one implementation, and tests hold the two to the
 * same output.
 *
 * Everything that is not a JPEG this decoder can read is refused with a SyntaxError saying what and where. Every
 * loop is bounded by the input length, and no buffer is sized by a header's word alone: the luma plane is only
 * allocated once the file has shown enough entropy-coded bytes to fill it (each block costs at least one bit).
 */

import { decodeScanWasm } from "./scan_wasm.ts";

/** A greyscale raster, row-major, one byte per pixel. */
export interface GreyImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A colour raster, row-major, three bytes (R, G, B) per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What the frame header of a JPEG says, as read by {@link readJpegInfo}. */
export interface JpegInfo {
  width: number;
  height: number;
  components: number;
  progressive: boolean;
  /** "4:2:0", "4:2:2", "4:4:4", "4:1:1", "4:4:0", "grey", or the sampling factors like "2x2,1x1,1x1,2x2". */
  subsampling: string;
}

/** Larger frames are refused: far beyond any camera this project meets, and it caps the plane at 16 MiB. */
export const MAX_DIMENSION = 16384;

let useWasm = true;
/** Chooses the scan decoder: the WebAssembly fast path (default) or the TypeScript loop alone (tests, bench). */
export function useWasmScan(on: boolean): void {
  useWasm = on;
}

// Lookahead widths of the fast Huffman tables. 9 bits covers all but the rarest DC codes; 14 bits for AC lets an
// entry span two to four short coefficients. Two 14-bit tables take 128 KiB (L2, not L1), and still the full-HD
// frames of bench filter decode 7 % faster than with 12 bits (1.41 against 1.51 ms; 16 bits: 1.42-1.45 ms).
// scan_wasm/src/lib.rs has the same widths and the entry layouts below: change them together.
const LDC = 9;
const MDC = (1 << LDC) - 1;
const LAC = 14;
const MAC = (1 << LAC) - 1;
const DC_SIZE = 1 << LDC;
const AC_SIZE = 1 << LAC;

// AC entry layout (Int32). The bits taken come first, so that the WebAssembly loop can shift its bit buffer by the
// entry itself (a shift takes its count modulo 64): one operation fewer between one lookup and the next.
//   bits 0-5   multi: bits taken by all whole coefficients in the entry, 0 = not in the table (slow path)
//   bit  6     multi: the entry ends with an end-of-block
//   bits 7-13  multi: index advance of all of them, plus one if it ends with an EOB
//   bits 14-18 single: bits taken by the first coefficient (code + value)
//   bits 19-24 single: how far it moves the coefficient index (run + 1, 16 for ZRL, 0 for EOB)
//   bit  25    single: the first symbol is an end-of-block
const M_EOB = 1 << 6;
const S_EOB = 1 << 25;
// While building: a first-symbol entry, with bits 0-4 and 5-10 as bits 14-18 and 19-24 above, and this flag.
const ONE_EOB = 1 << 11;

// DC entry layout: bits 0-4 code + value bits (0 = slow path), bits 8-31 the signed DC difference.

/** A Huffman table ready for decoding: the fast lookup and the canonical-code arrays for the slow path. */
interface HuffTable {
  /** DC_SIZE or AC_SIZE entries, layout above. */
  fast: Int32Array;
  /** maxcode[l]: the largest code of length l, -1 when there is none (index 1..16). */
  maxcode: Int32Array;
  /** valoff[l]: add to a code of length l to get the index of its symbol. */
  valoff: Int32Array;
  symbols: Uint8Array;
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
}

interface Frame {
  marker: number;
  width: number;
  height: number;
  progressive: boolean;
  comps: Component[];
  hmax: number;
  vmax: number;
}

function fail(message: string): SyntaxError {
  return new SyntaxError(message);
}

function hex2(b: number): string {
  return "0x" + b.toString(16).padStart(2, "0").toUpperCase();
}

function markerName(m: number): string {
  if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return `SOF${m - 0xc0}`;
  if (m >= 0xd0 && m <= 0xd7) return `RST${m - 0xd0}`;
  if (m >= 0xe0 && m <= 0xef) return `APP${m - 0xe0}`;
  if (m >= 0xf0 && m <= 0xfd) return `JPG${m - 0xf0}`;
  const names: Record<number, string> = {
    0xc4: "DHT",
    0xc8: "JPG",
    0xcc: "DAC",
    0xd8: "SOI",
    0xd9: "EOI",
    0xda: "SOS",
    0xdb: "DQT",
    0xdc: "DNL",
    0xdd: "DRI",
    0xde: "DHP",
    0xdf: "EXP",
    0xfe: "COM",
    0x01: "TEM",
  };
  return names[m] ?? `marker ${hex2(m)}`;
}

/** The reason a SOFn other than 0, 1, 2 cannot be decoded here, or "" when it can. */
function unsupportedSof(m: number): string {
  if (m === 0xc3) return "lossless (SOF3)";
  if (m >= 0xc5 && m <= 0xc7) return `hierarchical/differential coding (SOF${m - 0xc0})`;
  if (m >= 0xc9 && m <= 0xcb) return `arithmetic coding (SOF${m - 0xc0})`;
  if (m >= 0xcd && m <= 0xcf) return `arithmetic hierarchical coding (SOF${m - 0xc0})`;
  return "";
}

// ---------------------------------------------------------------------------------------------------------------
// Huffman tables

/**
 * Builds the decoding tables from a DHT's 16 code-length counts and its symbols. Refuses over-subscribed tables
 * (and the all-ones code, which the standard reserves), as libjpeg does.
 */
function buildHuffTable(counts: Uint8Array, symbols: Uint8Array, isAc: boolean, where: string): HuffTable {
  const maxcode = new Int32Array(18).fill(-1);
  const valoff = new Int32Array(18);
  const lengths = new Uint8Array(symbols.length);
  const codes = new Int32Array(symbols.length);
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const c = counts[l - 1];
    if (c > 0) {
      valoff[l] = k - code;
      for (let i = 0; i < c; i++) {
        lengths[k] = l;
        codes[k] = code;
        k++;
        code++;
      }
      // `code` is one past the last code of this length; it must still fit in l bits (all-ones is reserved).
      if (code >= 1 << l) throw fail(`bad Huffman table in ${where}: too many codes of length ${l}`);
      maxcode[l] = code - 1;
    }
    code <<= 1;
  }
  const fast = isAc ? buildAcFast(lengths, codes, symbols) : buildDcFast(lengths, codes, symbols);
  return { fast, maxcode, valoff, symbols };
}

function buildDcFast(lengths: Uint8Array, codes: Int32Array, symbols: Uint8Array): Int32Array {
  const fast = new Int32Array(DC_SIZE);
  for (let i = 0; i < symbols.length; i++) {
    const l = lengths[i];
    const s = symbols[i];
    if (l > LDC) continue;
    const first = codes[i] << (LDC - l);
    const last = (codes[i] + 1) << (LDC - l);
    // Sizes above 11 never occur in 8-bit data; leave them to the slow path, which refuses them.
    const fits = s <= 11 && l + s <= LDC;
    for (let idx = first; idx < last; idx++) {
      if (!fits) {
        fast[idx] = 0;
        continue;
      }
      let v = 0;
      if (s > 0) {
        v = (idx >> (LDC - l - s)) & ((1 << s) - 1);
        if (v < 1 << (s - 1)) v -= (1 << s) - 1;
      }
      fast[idx] = (v << 8) | (l + s);
    }
  }
  return fast;
}

function buildAcFast(lengths: Uint8Array, codes: Int32Array, symbols: Uint8Array): Int32Array {
  // First the one-coefficient entries (the low 12 bits of the final layout).
  const single = new Int32Array(AC_SIZE);
  for (let i = 0; i < symbols.length; i++) {
    const l = lengths[i];
    if (l > LAC) continue;
    const r = symbols[i] >> 4;
    const s = symbols[i] & 15;
    let e = 0;
    if (s === 0) {
      // r = 15 is ZRL (sixteen zeros); any other run with size 0 ends the block (EOBn only exists in
      // progressive AC scans, which are never decoded here, so treat it like libjpeg treats a stray one).
      e = r === 15 ? l | (16 << 5) : l | ONE_EOB;
    } else if (l + s <= LAC) {
      e = (l + s) | ((r + 1) << 5);
    }
    const first = codes[i] << (LAC - l);
    const last = (codes[i] + 1) << (LAC - l);
    for (let idx = first; idx < last; idx++) single[idx] = e;
  }
  // Then chain as many whole coefficients as the LAC bits hold. The bits after the first symbol are the top bits
  // of (idx << used); the entry for those bits is only valid if its symbol fits in what is left.
  const fast = new Int32Array(AC_SIZE);
  for (let idx = 0; idx < AC_SIZE; idx++) {
    const e0 = single[idx];
    const l0 = e0 & 31;
    if (l0 === 0) continue;
    let used = l0;
    let eob = (e0 & ONE_EOB) !== 0;
    let adv = eob ? 1 : (e0 >>> 5) & 63;
    while (!eob && used < LAC) {
      const e = single[(idx << used) & MAC];
      const l = e & 31;
      if (l === 0 || l > LAC - used) break;
      const isEob = (e & ONE_EOB) !== 0;
      const a = isEob ? 1 : (e >>> 5) & 63;
      // The coefficient index can move by at most 63 in a block; longer chains would never pass the check.
      if (adv + a > 63) break;
      used += l;
      adv += a;
      eob = isEob;
    }
    fast[idx] = used | (eob ? M_EOB : 0) | (adv << 7) | ((e0 & 31) << 14) | (((e0 >>> 5) & 63) << 19) |
      ((e0 & ONE_EOB) !== 0 ? S_EOB : 0);
  }
  return fast;
}

// Tables built from DHT segments, keyed by their bytes: a camera sends the same tables in every frame, and
// building a 16384-entry AC table costs more than decoding a small frame's DC values.
interface CachedTable {
  isAc: boolean;
  key: Uint8Array;
  table: HuffTable;
}
const tableCache: CachedTable[] = [];
const TABLE_CACHE_MAX = 16;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `key` is the DHT's 16 counts followed by its symbols. */
function cachedHuffTable(key: Uint8Array, isAc: boolean, where: string): HuffTable {
  for (const c of tableCache) {
    if (c.isAc === isAc && sameBytes(c.key, key)) return c.table;
  }
  // The cached table must own its bytes: a view into the caller's JPEG would pin that buffer, and a buffer the
  // caller reuses (the filter pool's transfer buffers) would change the table under later decodes.
  const own = key.slice();
  const table = buildHuffTable(own.subarray(0, 16), own.subarray(16), isAc, where);
  if (tableCache.length >= TABLE_CACHE_MAX) tableCache.shift();
  tableCache.push({ isAc, key: own, table });
  return table;
}

function hexBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// The typical tables of JPEG Annex K.3 (counts per code length 1..16, then the symbols), which Motion-JPEG
// streams (UVC cameras, AVI MJPG) leave out and expect the decoder to assume.
const STD_DC_LUMA = "00010501010101010100000000000000" +
  "000102030405060708090a0b";
const STD_DC_CHROMA = "00030101010101010101010000000000" +
  "000102030405060708090a0b";
const STD_AC_LUMA = "0002010303020403050504040000017d" +
  "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a" +
  "3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a929394" +
  "95969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8" +
  "e9eaf1f2f3f4f5f6f7f8f9fa";
const STD_AC_CHROMA = "00020102040403040705040400010277" +
  "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728" +
  "292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92" +
  "939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7" +
  "e8e9eaf2f3f4f5f6f7f8f9fa";

const standardTables: (HuffTable | null)[] = [null, null, null, null];

/** The Annex K table for slot 0 (luma) or 1 (chroma), or null for slots 2 and 3, which have no default. */
function standardTable(isAc: boolean, slot: number): HuffTable | null {
  if (slot > 1) return null;
  const i = (isAc ? 2 : 0) + slot;
  const spec = [STD_DC_LUMA, STD_DC_CHROMA, STD_AC_LUMA, STD_AC_CHROMA][i];
  let t = standardTables[i];
  if (!t) {
    const bytes = hexBytes(spec);
    t = standardTables[i] = buildHuffTable(bytes.subarray(0, 16), bytes.subarray(16), isAc, "standard table");
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// Bit reader, slow paths. State in st: [0] bit buffer, [1] valid bits in it, [2] byte position, [3] zero bytes
// fed after the entropy data ran out (a marker or the end of the file).

/**
 * Tops the bit buffer up to more than 24 bits. A 0xFF 0x00 pair is one 0xFF data byte; a 0xFF followed by
 * anything else starts a marker, where the data ends: from there zeros are fed and counted, and the caller
 * checks after each MCU that none of them was consumed.
 */
function refillSt(d: Uint8Array, st: Int32Array): void {
  const n = d.length;
  let acc = st[0];
  let nbits = st[1];
  let pos = st[2];
  let fake = st[3];
  while (nbits <= 24) {
    let byte = 0;
    if (pos < n) {
      byte = d[pos];
      if (byte !== 0xff) pos++;
      else if (pos + 1 < n && d[pos + 1] === 0) pos += 2;
      else {
        byte = 0;
        fake++;
      }
    } else fake++;
    acc = (acc << 8) | byte;
    nbits += 8;
  }
  st[0] = acc;
  st[1] = nbits;
  st[2] = pos;
  st[3] = fake;
}

/** Decodes one symbol bit by bit through the canonical code (codes longer than the lookahead). */
function slowSymbol(d: Uint8Array, st: Int32Array, t: HuffTable, scanNo: number): number {
  if (st[1] < 16) refillSt(d, st);
  const acc = st[0];
  const nbits = st[1];
  for (let l = 1; l <= 16; l++) {
    const code = (acc >>> (nbits - l)) & ((1 << l) - 1);
    if (code <= t.maxcode[l]) {
      st[1] = nbits - l;
      return t.symbols[code + t.valoff[l]];
    }
  }
  throw fail(`bad Huffman code in scan ${scanNo} at byte ${st[2]}`);
}

function takeBits(d: Uint8Array, st: Int32Array, s: number): number {
  if (s === 0) return 0;
  if (st[1] < s) refillSt(d, st);
  const nbits = st[1] - s;
  st[1] = nbits;
  return (st[0] >>> nbits) & ((1 << s) - 1);
}

/** A DC difference the fast table could not give. */
function slowDc(d: Uint8Array, st: Int32Array, t: HuffTable, scanNo: number): number {
  const s = slowSymbol(d, st, t, scanNo);
  if (s > 11) throw fail(`bad DC difference size ${s} in scan ${scanNo} at byte ${st[2]}`);
  let v = takeBits(d, st, s);
  if (s > 0 && v < 1 << (s - 1)) v -= (1 << s) - 1;
  return v;
}

/** An AC coefficient the fast table could not give: returns its index advance, or 64 for an end-of-block. */
function slowAc(d: Uint8Array, st: Int32Array, t: HuffTable, scanNo: number): number {
  const rs = slowSymbol(d, st, t, scanNo);
  const r = rs >> 4;
  const s = rs & 15;
  if (s === 0) return r === 15 ? 16 : 64;
  takeBits(d, st, s);
  return r + 1;
}

function truncated(scanNo: number, mcu: number, total: number): SyntaxError {
  return fail(`truncated JPEG: entropy data of scan ${scanNo} ends in MCU ${mcu} of ${total}`);
}

/**
 * Finds the marker that ends an entropy-coded segment: the index of its first 0xFF. Stuffed 0xFF 0x00 pairs and
 * restart markers belong to the segment. Bounded by the input, like every search here.
 */
function findMarker(d: Uint8Array, from: number, scanNo: number): number {
  const n = d.length;
  let i = from;
  for (;;) {
    i = d.indexOf(0xff, i);
    if (i < 0) break;
    let j = i + 1;
    while (j < n && d[j] === 0xff) j++;
    if (j >= n) break;
    const m = d[j];
    if (m !== 0 && (m < 0xd0 || m > 0xd7)) return i;
    i = j + 1;
  }
  throw fail(`truncated JPEG: entropy data of scan ${scanNo} runs to the end of the file (no EOI)`);
}

/**
 * Moves past the restart marker RSTn expected at a restart boundary. Unconsumed bits before it are dropped (they
 * are padding); stray bytes before it are skipped as libjpeg does; any other marker is an error.
 */
function expectRestart(
  d: Uint8Array,
  from: number,
  n: number,
  scanNo: number,
  mcu: number,
  total: number,
): number {
  const len = d.length;
  let i = from;
  for (;;) {
    i = d.indexOf(0xff, i);
    if (i < 0) break;
    let j = i + 1;
    while (j < len && d[j] === 0xff) j++;
    if (j >= len) break;
    const m = d[j];
    if (m === 0) {
      i = j + 1;
      continue;
    }
    if (m === 0xd0 + n) return j + 1;
    throw fail(
      `corrupt JPEG: expected RST${n} before MCU ${mcu} of ${total} in scan ${scanNo}, found ${
        markerName(m)
      } at byte ${i}`,
    );
  }
  throw truncated(scanNo, mcu, total);
}

// ---------------------------------------------------------------------------------------------------------------
// The scan decoders

/** One Huffman scan to decode: what `decodeHuffmanScan` and its WebAssembly twin (scan_wasm.ts) take. */
export interface HuffmanScan {
  /** The whole JPEG, and where the scan's entropy-coded data starts in it. */
  d: Uint8Array;
  start: number;
  /** The fast tables of the scan's Huffman tables in one array, and the tables themselves for the slow path. */
  tabs: Int32Array;
  slow: HuffTable[];
  /**
   * The blocks of one MCU, 6 ints each: fast DC table offset in `tabs`, fast AC table offset, index of the DC
   * table in `slow`, index of the AC table, component index (for the DC predictor), and the block's offset in
   * `plane` from the MCU's origin, or -1 for a block of another component. `nb` blocks.
   */
  blk: Int32Array;
  nb: number;
  mcusX: number;
  mcusY: number;
  /** Steps in `plane` from one MCU row, and one MCU, to the next. */
  rowStride: number;
  colStride: number;
  /** Where the DC values go (shifted left by `al`). */
  plane: Int32Array;
  /** The restart interval in MCUs, 0 for none. */
  ri: number;
  /** Sequential scans (DC + 63 AC per block); false for progressive DC first scans. */
  withAc: boolean;
  al: number;
  /** For messages. */
  scanNo: number;
}

/**
 * Decodes a Huffman scan's MCUs and stores the luma DC values (shifted left by `al`) in `plane`.
 *
 * Returns the byte position after the last consumed byte. This is the hot loop: the bit buffer is in locals,
 * the refill is written out inline, the slow paths leave through `st` (4 ints of scratch, as `preds`).
 */
function decodeHuffmanScan(scan: HuffmanScan, preds: Int32Array, st: Int32Array): number {
  const { d, start, tabs, slow, blk, nb, mcusX, mcusY, rowStride, colStride, plane, ri, withAc, al, scanNo } =
    scan;
  const n = d.length;
  const total = mcusX * mcusY;
  let pos = start;
  let acc = 0;
  let nbits = 0;
  let fake = 0;
  let todo = ri;
  let rst = 0;
  let mcu = 0;
  preds.fill(0);
  for (let my = 0; my < mcusY; my++) {
    const rowBase = my * rowStride;
    for (let mx = 0; mx < mcusX; mx++, mcu++) {
      if (ri !== 0) {
        if (todo === 0) {
          // Restart: the predictors reset and the bit stream realigns to the byte after RSTn.
          pos = expectRestart(d, pos, rst, scanNo, mcu, total);
          acc = 0;
          nbits = 0;
          fake = 0;
          preds.fill(0);
          rst = (rst + 1) & 7;
          todo = ri;
        }
        todo--;
      }
      const base = rowBase + mx * colStride;
      for (let b = 0, o = 0; b < nb; b++, o += 6) {
        if (nbits < 16) {
          while (nbits <= 24) {
            let byte = 0;
            if (pos < n) {
              byte = d[pos];
              if (byte !== 0xff) pos++;
              else if (pos + 1 < n && d[pos + 1] === 0) pos += 2;
              else {
                byte = 0;
                fake++;
              }
            } else fake++;
            acc = (acc << 8) | byte;
            nbits += 8;
          }
        }
        let e = tabs[blk[o] + ((acc >>> (nbits - LDC)) & MDC)];
        let diff = 0;
        if ((e & 31) !== 0) {
          nbits -= e & 31;
          diff = e >> 8;
        } else {
          st[0] = acc;
          st[1] = nbits;
          st[2] = pos;
          st[3] = fake;
          diff = slowDc(d, st, slow[blk[o + 2]], scanNo);
          acc = st[0];
          nbits = st[1];
          pos = st[2];
          fake = st[3];
        }
        const c = blk[o + 4];
        const pred = preds[c] + diff;
        preds[c] = pred;
        const delta = blk[o + 5];
        if (delta >= 0) plane[base + delta] = pred << al;
        if (!withAc) continue;
        const acOff = blk[o + 1];
        let k = 1;
        for (;;) {
          if (nbits < LAC) {
            while (nbits <= 24) {
              let byte = 0;
              if (pos < n) {
                byte = d[pos];
                if (byte !== 0xff) pos++;
                else if (pos + 1 < n && d[pos + 1] === 0) pos += 2;
                else {
                  byte = 0;
                  fake++;
                }
              } else fake++;
              acc = (acc << 8) | byte;
              nbits += 8;
            }
          }
          e = tabs[acOff + ((acc >>> (nbits - LAC)) & MAC)];
          const ml = e & 63;
          if (ml !== 0) {
            const f = (e >>> 7) & 127;
            if (k + f <= 64) {
              // Every coefficient of the entry belongs to this block: take them all at once.
              nbits -= ml;
              k += f;
              if ((e & M_EOB) !== 0 || k === 64) break;
              continue;
            }
            // The block ends inside the entry: take only its first coefficient.
            nbits -= (e >>> 14) & 31;
            if ((e & S_EOB) !== 0) break;
            k += (e >>> 19) & 63;
          } else {
            st[0] = acc;
            st[1] = nbits;
            st[2] = pos;
            st[3] = fake;
            const a = slowAc(d, st, slow[blk[o + 3]], scanNo);
            acc = st[0];
            nbits = st[1];
            pos = st[2];
            fake = st[3];
            if (a === 64) break;
            k += a;
          }
          if (k >= 64) {
            if (k > 64) throw fail(`bad AC run past the end of a block in scan ${scanNo}, MCU ${mcu}`);
            break;
          }
        }
      }
      // Zeros fed past the end of the data are fine to look ahead into, never to consume.
      if (fake !== 0 && fake * 8 > nbits) throw truncated(scanNo, mcu, total);
    }
  }
  return pos;
}

/** Progressive DC refinement scan: one bit per block, the next bit (`al`) of each luma DC value. */
function decodeDcRefine(
  d: Uint8Array,
  start: number,
  blk: Int32Array,
  nb: number,
  mcusX: number,
  mcusY: number,
  rowStride: number,
  colStride: number,
  plane: Int32Array,
  ri: number,
  al: number,
  scanNo: number,
  st: Int32Array,
): number {
  const total = mcusX * mcusY;
  st[0] = 0;
  st[1] = 0;
  st[2] = start;
  st[3] = 0;
  let todo = ri;
  let rst = 0;
  let mcu = 0;
  for (let my = 0; my < mcusY; my++) {
    for (let mx = 0; mx < mcusX; mx++, mcu++) {
      if (ri !== 0) {
        if (todo === 0) {
          st[2] = expectRestart(d, st[2], rst, scanNo, mcu, total);
          st[0] = 0;
          st[1] = 0;
          st[3] = 0;
          rst = (rst + 1) & 7;
          todo = ri;
        }
        todo--;
      }
      const base = my * rowStride + mx * colStride;
      for (let b = 0, o = 0; b < nb; b++, o += 6) {
        const bit = takeBits(d, st, 1);
        const delta = blk[o + 5];
        if (delta >= 0 && bit !== 0) plane[base + delta] |= 1 << al;
      }
      if (st[3] !== 0 && st[3] * 8 > st[1]) throw truncated(scanNo, mcu, total);
    }
  }
  return st[2];
}

// ---------------------------------------------------------------------------------------------------------------
// Markers

function readU16(d: Uint8Array, i: number): number {
  return (d[i] << 8) | d[i + 1];
}

/** Parses a SOF0/1/2 segment body [body, end). */
function parseFrame(d: Uint8Array, m: number, body: number, end: number): Frame {
  const at = body - 4;
  if (end - body < 6) throw fail(`corrupt JPEG: ${markerName(m)} segment at byte ${at} is too short`);
  const precision = d[body];
  if (precision !== 8) throw fail(`unsupported JPEG: ${precision}-bit precision (${markerName(m)})`);
  const height = readU16(d, body + 1);
  const width = readU16(d, body + 3);
  const nf = d[body + 5];
  if (width === 0 || height === 0) {
    throw fail(`unsupported JPEG: zero dimension ${width}x${height} in ${markerName(m)} at byte ${at}`);
  }
  if (width > MAX_DIMENSION || height > MAX_DIMENSION) {
    throw fail(`unsupported JPEG: ${width}x${height} exceeds the ${MAX_DIMENSION}x${MAX_DIMENSION} limit`);
  }
  if (nf < 1 || nf > 4) throw fail(`unsupported JPEG: ${nf} components in ${markerName(m)} at byte ${at}`);
  if (end - body < 6 + 3 * nf) {
    throw fail(`corrupt JPEG: ${markerName(m)} segment at byte ${at} is too short`);
  }
  const comps: Component[] = [];
  let hmax = 1;
  let vmax = 1;
  for (let i = 0; i < nf; i++) {
    const p = body + 6 + 3 * i;
    const id = d[p];
    const h = d[p + 1] >> 4;
    const v = d[p + 1] & 15;
    const tq = d[p + 2];
    if (h < 1 || h > 4 || v < 1 || v > 4) {
      throw fail(`corrupt JPEG: component ${i + 1} has sampling factors ${h}x${v} (${markerName(m)})`);
    }
    if (tq > 3) throw fail(`corrupt JPEG: component ${i + 1} uses quantization table ${tq}`);
    for (const c of comps) if (c.id === id) throw fail(`corrupt JPEG: duplicate component id ${id}`);
    comps.push({ id, h, v, tq });
    hmax = Math.max(hmax, h);
    vmax = Math.max(vmax, v);
  }
  return { marker: m, width, height, progressive: m === 0xc2, comps, hmax, vmax };
}

function subsamplingName(f: Frame): string {
  const c = f.comps;
  if (c.length === 1) return "grey";
  if (c.length === 3 && c[1].h === 1 && c[1].v === 1 && c[2].h === 1 && c[2].v === 1) {
    const key = `${c[0].h}x${c[0].v}`;
    const known: Record<string, string> = {
      "1x1": "4:4:4",
      "2x1": "4:2:2",
      "2x2": "4:2:0",
      "4x1": "4:1:1",
      "1x2": "4:4:0",
    };
    if (known[key]) return known[key];
  }
  return c.map((x) => `${x.h}x${x.v}`).join(",");
}

/** Reads a segment's length at `pos` (just after the marker) and returns its end, checking it fits the file. */
function segmentEnd(d: Uint8Array, pos: number, m: number): number {
  if (pos + 2 > d.length) {
    throw fail(`truncated JPEG: file ends in the ${markerName(m)} marker at byte ${pos - 2}`);
  }
  const len = readU16(d, pos);
  if (len < 2) throw fail(`corrupt JPEG: ${markerName(m)} segment at byte ${pos - 2} has length ${len}`);
  if (pos + len > d.length) {
    throw fail(`truncated JPEG: ${markerName(m)} segment at byte ${pos - 2} runs past the end of the file`);
  }
  return pos + len;
}

/** Reads the marker at `pos` (skipping fill bytes); returns [marker, position after it]. */
function nextMarker(d: Uint8Array, pos: number): [number, number] {
  const n = d.length;
  if (pos >= n) throw fail(`truncated JPEG: file ends at byte ${n} before EOI`);
  if (d[pos] !== 0xff) throw fail(`corrupt JPEG: expected a marker at byte ${pos}, found ${hex2(d[pos])}`);
  let p = pos + 1;
  while (p < n && d[p] === 0xff) p++;
  if (p >= n) throw fail(`truncated JPEG: file ends at byte ${n} before EOI`);
  const m = d[p];
  if (m === 0) throw fail(`corrupt JPEG: expected a marker at byte ${pos}, found stuffed 0xFF 0x00`);
  return [m, p + 1];
}

function checkSoi(d: Uint8Array): void {
  if (d.length < 2 || d[0] !== 0xff || d[1] !== 0xd8) {
    throw fail(`not a JPEG: no SOI marker (${d.length === 0 ? "empty input" : `starts with ${hex2(d[0])}`})`);
  }
}

/** Refuses the markers of JPEG processes this decoder does not implement. */
function checkSupported(m: number): void {
  const why = unsupportedSof(m);
  if (why) throw fail(`unsupported JPEG: ${why}`);
  if (m === 0xcc) throw fail("unsupported JPEG: arithmetic coding (DAC)");
  if (m === 0xc8) throw fail("unsupported JPEG: reserved JPG marker (SOF8)");
  if (m === 0xdc) throw fail("unsupported JPEG: DNL marker (height defined after the first scan)");
  if (m === 0xde || m === 0xdf) throw fail(`unsupported JPEG: hierarchical coding (${markerName(m)})`);
  if (m === 0xd8) throw fail("corrupt JPEG: a second SOI marker");
}

/**
 * Reads a JPEG's frame header (markers only, no entropy data): size, component count, progressive or not, and
 * chroma subsampling. Throws SyntaxError for what {@link decodeGreyEighth} would refuse in the header.
 */
export function readJpegInfo(jpeg: Uint8Array): JpegInfo {
  const d = jpeg;
  checkSoi(d);
  let pos = 2;
  for (;;) {
    const [m, after] = nextMarker(d, pos);
    pos = after;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;
    if (m === 0xd9) throw fail("corrupt JPEG: EOI before any SOF (frame header)");
    if (m === 0xda) throw fail("corrupt JPEG: SOS before any SOF (frame header)");
    checkSupported(m);
    const end = segmentEnd(d, pos, m);
    if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      const f = parseFrame(d, m, pos + 2, end);
      return {
        width: f.width,
        height: f.height,
        components: f.comps.length,
        progressive: f.progressive,
        subsampling: subsamplingName(f),
      };
    }
    pos = end;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The decoder

/**
 * The DC values of a JPEG, as {@link decodeDcPlanes} leaves them: `plane` holds each component's DC coefficients
 * (times 2^Al already undone for progressive files, before dequantization) in a layout of its own (see there).
 */
interface DcPlanes {
  frame: Frame;
  plane: Int32Array;
  /** Row length of the layout: the luma plane's width (grey mode) or the MCU grid at maximum sampling (colour). */
  planeW: number;
  /** DC quantizer of each component. */
  q: Int32Array;
  /** Where each component's values start in `plane` (colour mode; only [0] = 0 in grey mode). */
  offsets: number[];
  /** Whether a scan carried the component's DC values. */
  seen: boolean[];
  /** The transform flag of an Adobe APP14 segment (0: no colour transform, i.e. RGB; 1: YCbCr), -1 when none. */
  adobeTransform: number;
}

/**
 * Decodes a JPEG to greyscale at 1/8 scale: one pixel per 8x8 luma block, ceil(W/8) x ceil(H/8), the mean of
 * the block as its DC coefficient gives it (clamp(round(DC * q0 / 8 + 128))), exactly what libjpeg's 1/8 scaled
 * IDCT computes. The first component is taken as luma (Y of YCbCr; for Adobe RGB or CMYK files it is R or C).
 *
 * Supports baseline, extended (8-bit) and progressive Huffman JPEGs with any sampling factors, interleaved and
 * non-interleaved scans, restart intervals, and Motion-JPEG frames without DHT. Throws SyntaxError naming the
 * problem and its place for anything else, including truncated or corrupt data.
 */
export function decodeGreyEighth(jpeg: Uint8Array): GreyImage {
  const { frame: f, plane, planeW, q } = decodeDcPlanes(jpeg, false);
  const q0 = q[0];
  const c0 = f.comps[0];
  const outW = Math.ceil(f.width / 8);
  const outH = Math.ceil(f.height / 8);
  const out = new Uint8Array(outW * outH);
  const sameGrid = c0.h === f.hmax && c0.v === f.vmax;
  for (let y = 0; y < outH; y++) {
    // A luma component sampled below the maximum (rare) has fewer blocks: pick the one under each output pixel.
    const py = sameGrid ? y : Math.floor((y * c0.v) / f.vmax);
    for (let x = 0; x < outW; x++) {
      const px = sameGrid ? x : Math.floor((x * c0.h) / f.hmax);
      // round(DC * q / 8 + 128), as libjpeg's 1x1 IDCT: (v + 4) >> 3 with the +128 folded in as 1024.
      const v = (plane[py * planeW + px] * q0 + 1028) >> 3;
      out[y * outW + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: outW, height: outH, data: out };
}

/**
 * Reads the DC coefficients of a JPEG's blocks: only the luma component's (`colour` false: chroma blocks are
 * decoded to be stepped over, chroma-only scans skipped), or every component's (`colour` true).
 *
 * Grey mode keeps the luma blocks in one plane, `planeW` wide. Colour mode lays every component out on the grid
 * of the MCUs at maximum sampling (`planeW` = MCUs across x Hmax, MCUs down x Vmax rows), one such grid per
 * component at `offsets[c]`: block (x, y) of MCU (mx, my) of a component sampled h x v sits at row my*Vmax + y,
 * column mx*Hmax + x. Interleaved scans then write every component with the luma strides, through the same loop
 * as grey mode; a component sampled below the maximum leaves cells of its grid unused.
 */
// A worker decodes one frame after another of the same size with the same Huffman tables, so the two biggest
// allocations of a decode are kept from one frame to the next instead of left to the collector (~170 KB a
// full-HD frame, which a busy worker otherwise holds as garbage between collections: bench drain, peak RSS):
// - the grey plane, which never leaves decodeGreyEighth (the colour plane does leave, and is not reused);
// - the fast tables of a scan laid out in one array, rebuilt only when the scan's tables change.
let scratchPlane: Int32Array | null = null;
/** The largest plane kept between frames (4 MiB: a 32-megapixel image); a bigger one is used once and dropped. */
const SCRATCH_MAX = 1 << 20;

/** A zeroed luma plane of `size` values, the kept one when it fits. */
function greyPlane(size: number): Int32Array {
  if (scratchPlane && scratchPlane.length === size) return scratchPlane.fill(0);
  const plane = new Int32Array(size);
  if (size <= SCRATCH_MAX) scratchPlane = plane;
  return plane;
}

let lastScanTables: { parts: Int32Array[]; tabs: Int32Array } | null = null;

/** The fast tables of a scan's Huffman tables, in order, in one array (the last scan's when the same). */
function scanTables(parts: Int32Array[], length: number): Int32Array {
  const last = lastScanTables;
  if (last && last.parts.length === parts.length && last.parts.every((p, i) => p === parts[i])) {
    return last.tabs;
  }
  const tabs = new Int32Array(length);
  let off = 0;
  for (const part of parts) {
    tabs.set(part, off);
    off += part.length;
  }
  // Tables are only ever built, never changed, so the same objects mean the same contents.
  lastScanTables = { parts: parts.slice(), tabs };
  return tabs;
}

function decodeDcPlanes(jpeg: Uint8Array, colour: boolean): DcPlanes {
  const d = jpeg;
  const n = d.length;
  checkSoi(d);
  let frame: Frame | null = null;
  const qDc = new Int32Array(4);
  const qDefined = [false, false, false, false];
  const dcTables: (HuffTable | null)[] = [null, null, null, null];
  const acTables: (HuffTable | null)[] = [null, null, null, null];
  let ri = 0;
  let scanNo = 0;
  let plane: Int32Array | null = null;
  let planeW = 0;
  let planeH = 0;
  const q = new Int32Array(4);
  let offsets: number[] = [0];
  const seen = [false, false, false, false];
  let adobeTransform = -1;
  const st = new Int32Array(4);
  const preds = new Int32Array(4);
  let pos = 2;
  for (;;) {
    const [m, after] = nextMarker(d, pos);
    const markerAt = after - 2;
    pos = after;
    if (m === 0xd9) break;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // standalone markers without a length
    checkSupported(m);
    const end = segmentEnd(d, pos, m);
    const body = pos + 2;
    if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      if (frame) throw fail(`corrupt JPEG: second frame header (${markerName(m)}) at byte ${markerAt}`);
      frame = parseFrame(d, m, body, end);
    } else if (m === 0xc4) {
      let p = body;
      while (p < end) {
        const tc = d[p] >> 4;
        const th = d[p] & 15;
        if (tc > 1 || th > 3) {
          throw fail(`corrupt JPEG: DHT at byte ${markerAt} defines table class ${tc} id ${th}`);
        }
        if (p + 17 > end) throw fail(`corrupt JPEG: DHT at byte ${markerAt} is too short`);
        let count = 0;
        for (let i = 1; i <= 16; i++) count += d[p + i];
        if (count > 256 || p + 17 + count > end) {
          throw fail(`corrupt JPEG: DHT at byte ${markerAt} declares ${count} codes`);
        }
        const where = `DHT at byte ${markerAt}`;
        const t = cachedHuffTable(d.subarray(p + 1, p + 17 + count), tc === 1, where);
        if (tc === 1) acTables[th] = t;
        else dcTables[th] = t;
        p += 17 + count;
      }
    } else if (m === 0xdb) {
      let p = body;
      while (p < end) {
        const pq = d[p] >> 4;
        const tq = d[p] & 15;
        if (pq > 1 || tq > 3) {
          throw fail(`corrupt JPEG: DQT at byte ${markerAt} defines table ${tq} precision ${pq}`);
        }
        const size = pq === 0 ? 64 : 128;
        if (p + 1 + size > end) throw fail(`corrupt JPEG: DQT at byte ${markerAt} is too short`);
        // Only the first entry (the DC quantizer; zigzag order starts with it) matters at 1/8 scale.
        qDc[tq] = pq === 0 ? d[p + 1] : readU16(d, p + 1);
        qDefined[tq] = true;
        p += 1 + size;
      }
    } else if (m === 0xdd) {
      if (end - body < 2) throw fail(`corrupt JPEG: DRI at byte ${markerAt} is too short`);
      ri = readU16(d, body);
    } else if (m === 0xda) {
      scanNo++;
      if (!frame) throw fail("corrupt JPEG: SOS before any SOF (frame header)");
      const f: Frame = frame;
      const ns = end - body >= 1 ? d[body] : 0;
      if (ns < 1 || ns > 4 || end - body < 4 + 2 * ns) {
        throw fail(`corrupt JPEG: SOS at byte ${markerAt} is malformed (${ns} components)`);
      }
      const scomps: number[] = [];
      const tds: number[] = [];
      const tas: number[] = [];
      for (let i = 0; i < ns; i++) {
        const id = d[body + 1 + 2 * i];
        const ci = f.comps.findIndex((c) => c.id === id);
        if (ci < 0 || scomps.includes(ci)) {
          throw fail(`corrupt JPEG: SOS at byte ${markerAt} names unknown or repeated component ${id}`);
        }
        scomps.push(ci);
        tds.push(d[body + 2 + 2 * i] >> 4);
        tas.push(d[body + 2 + 2 * i] & 15);
      }
      const sp = body + 1 + 2 * ns;
      const ss = d[sp];
      const se = d[sp + 1];
      const ah = d[sp + 2] >> 4;
      const al = d[sp + 2] & 15;
      const dataStart = end;
      const hasLuma = scomps.includes(0);
      // Sequential scans carry DC and AC together; progressive scans only matter if they are DC scans.
      const isDcScan = f.progressive ? ss === 0 : true;
      if (f.progressive) {
        if (ss > 63 || se > 63 || se < ss || (ss === 0 && se !== 0) || (ss > 0 && ns !== 1) || al > 13) {
          throw fail(
            `corrupt JPEG: progressive scan ${scanNo} has bad parameters Ss=${ss} Se=${se} Al=${al}`,
          );
        }
      }
      if (!isDcScan || (!hasLuma && !colour)) {
        // Nothing of the DC values wanted in here: step over the entropy data without reading it.
        pos = findMarker(d, dataStart, scanNo);
        continue;
      }
      if (ns > 1) {
        let blocks = 0;
        for (const ci of scomps) blocks += f.comps[ci].h * f.comps[ci].v;
        if (blocks > 10) throw fail(`corrupt JPEG: scan ${scanNo} has ${blocks} blocks per MCU (at most 10)`);
      }
      const c0 = f.comps[0];
      // The luma component's own size in blocks, and the MCU grid of interleaved scans.
      const cw = Math.ceil((f.width * c0.h) / f.hmax);
      const chh = Math.ceil((f.height * c0.v) / f.vmax);
      const bw = Math.ceil(cw / 8);
      const bh = Math.ceil(chh / 8);
      const mcusXi = Math.ceil(f.width / (8 * f.hmax));
      const mcusYi = Math.ceil(f.height / (8 * f.vmax));
      if (!plane) {
        // Each block of a luma DC scan costs at least one bit, so a header promising more blocks than eight per
        // remaining byte is lying; refuse before allocating anything of its size.
        const remaining = n - dataStart;
        if (bw * bh > remaining * 8 + 8) {
          const blocks = bw * bh;
          throw fail(
            `truncated JPEG: ${f.width}x${f.height} needs ${blocks} luma blocks but only ${remaining} bytes ` +
              `of entropy data follow scan ${scanNo} (or the size is wrong)`,
          );
        }
        if (colour) {
          // The same bound for every component's blocks, which colour mode keeps too.
          let blocks = 0;
          for (const c of f.comps) {
            blocks += Math.ceil(Math.ceil((f.width * c.h) / f.hmax) / 8) *
              Math.ceil(Math.ceil((f.height * c.v) / f.vmax) / 8);
          }
          if (blocks > remaining * 8 + 8) {
            throw fail(
              `truncated JPEG: ${f.width}x${f.height} needs ${blocks} blocks but only ${remaining} bytes ` +
                `of entropy data follow scan ${scanNo} (or the size is wrong)`,
            );
          }
        }
        const wanted = colour ? f.comps.length : 1;
        for (let ci = 0; ci < wanted; ci++) {
          const c = f.comps[ci];
          if (!qDefined[c.tq]) throw fail(`corrupt JPEG: missing DQT table ${c.tq} for component ${c.id}`);
          q[ci] = qDc[c.tq];
        }
        if (colour) {
          planeW = mcusXi * f.hmax;
          planeH = mcusYi * f.vmax;
          offsets = f.comps.map((_, ci) => ci * planeW * planeH);
          plane = new Int32Array(f.comps.length * planeW * planeH);
        } else {
          planeW = f.comps.length === 1 ? bw : mcusXi * c0.h;
          planeH = f.comps.length === 1 ? bh : mcusYi * c0.v;
          plane = greyPlane(planeW * planeH);
        }
      }
      // Per-block descriptors of one MCU, and the fast tables of this scan laid out in one array.
      const interleaved = ns > 1;
      const blk: number[] = [];
      const slow: HuffTable[] = [];
      const fastParts: Int32Array[] = [];
      let fastLen = 0;
      const refine = f.progressive && ah !== 0;
      const withAc = !f.progressive;
      const tableFor = (isAc: boolean, slot: number): [number, number] => {
        if (slot > 3) throw fail(`corrupt JPEG: scan ${scanNo} uses Huffman table ${slot}`);
        const t = (isAc ? acTables : dcTables)[slot] ?? standardTable(isAc, slot);
        if (!t) {
          throw fail(
            `corrupt JPEG: scan ${scanNo} uses undefined ${isAc ? "AC" : "DC"} Huffman table ${slot}`,
          );
        }
        let si = slow.indexOf(t);
        if (si < 0) {
          si = slow.length;
          slow.push(t);
          fastParts.push(t.fast);
          fastLen += t.fast.length;
        }
        let off = 0;
        for (let i = 0; i < si; i++) off += fastParts[i].length;
        return [off, si];
      };
      for (let i = 0; i < ns; i++) {
        const ci = scomps[i];
        const c = f.comps[ci];
        let dcOff = 0;
        let dcSlow = 0;
        let acOff = 0;
        let acSlow = 0;
        if (!refine) [dcOff, dcSlow] = tableFor(false, tds[i]);
        if (withAc) [acOff, acSlow] = tableFor(true, tas[i]);
        const bx = interleaved ? c.h : 1;
        const by = interleaved ? c.v : 1;
        for (let y = 0; y < by; y++) {
          for (let x = 0; x < bx; x++) {
            const delta = colour ? offsets[ci] + y * planeW + x : ci === 0 ? y * planeW + x : -1;
            blk.push(dcOff, acOff, dcSlow, acSlow, i, delta);
          }
        }
      }
      const tabs = scanTables(fastParts, fastLen);
      let mcusX = interleaved ? mcusXi : bw;
      let mcusY = interleaved ? mcusYi : bh;
      let rowStride = interleaved ? c0.v * planeW : planeW;
      let colStride = interleaved ? c0.h : 1;
      if (colour) {
        // The layout of decodeDcPlanes' doc. A scan of one component walks that component's own block grid; the
        // step from one block to the next is one cell (sampled at the maximum) or one MCU (sampled once per MCU).
        if (interleaved) {
          rowStride = f.vmax * planeW;
          colStride = f.hmax;
        } else {
          const c = f.comps[scomps[0]];
          if ((c.h !== 1 && c.h !== f.hmax) || (c.v !== 1 && c.v !== f.vmax)) {
            throw fail(
              `unsupported JPEG for colour: component ${c.id} sampled ${c.h}x${c.v} under a maximum of ` +
                `${f.hmax}x${f.vmax} in a scan of its own`,
            );
          }
          mcusX = Math.ceil(Math.ceil((f.width * c.h) / f.hmax) / 8);
          mcusY = Math.ceil(Math.ceil((f.height * c.v) / f.vmax) / 8);
          colStride = c.h === f.hmax ? 1 : f.hmax;
          rowStride = (c.v === f.vmax ? 1 : f.vmax) * planeW;
        }
      }
      const blkArr = Int32Array.from(blk);
      const nb = blk.length / 6;
      const p = plane as Int32Array;
      let endPos: number;
      if (refine) {
        endPos = decodeDcRefine(
          d,
          dataStart,
          blkArr,
          nb,
          mcusX,
          mcusY,
          rowStride,
          colStride,
          p,
          ri,
          al,
          scanNo,
          st,
        );
      } else {
        const scan: HuffmanScan = {
          d,
          start: dataStart,
          tabs,
          slow,
          blk: blkArr,
          nb,
          mcusX,
          mcusY,
          rowStride,
          colStride,
          plane: p,
          ri,
          withAc,
          al: f.progressive ? al : 0,
          scanNo,
        };
        endPos = useWasm ? decodeScanWasm(scan) : -1;
        if (endPos < 0) endPos = decodeHuffmanScan(scan, preds, st);
      }
      for (const ci of scomps) seen[ci] = true;
      // Whatever is left before the next marker is padding (or junk libjpeg would also skip).
      pos = findMarker(d, endPos, scanNo);
      continue;
    }
    // Adobe's APP14 says whether three components are YCbCr or RGB ("Adobe", version, flags0, flags1, transform).
    if (m === 0xee && end - body >= 12 && d[body] === 0x41 && d[body + 1] === 0x64 && d[body + 4] === 0x65) {
      adobeTransform = d[body + 11];
    }
    // APPn, COM, JPGn and anything else with a length need nothing but skipping.
    pos = end;
  }
  if (!frame) throw fail("corrupt JPEG: EOI before any SOF (frame header)");
  if (scanNo === 0) throw fail("corrupt JPEG: EOI before any SOS (no scan)");
  if (!seen[0] || !plane) throw fail("corrupt JPEG: no scan carries the luma DC coefficients");
  return { frame, plane, planeW, q, offsets, seen, adobeTransform };
}

/** YCbCr to RGB terms per chroma value (R and B rounded; G's two terms in 16.16 fixed point, summed then shifted). */
interface YccTables {
  crR: Int32Array;
  cbB: Int32Array;
  cbG: Int32Array;
  crG: Int32Array;
}
let yccCache: YccTables | null = null;

function yccTables(): YccTables {
  if (yccCache) return yccCache;
  const fix = (x: number) => Math.round(x * 65536);
  const t: YccTables = {
    crR: new Int32Array(256),
    cbB: new Int32Array(256),
    cbG: new Int32Array(256),
    crG: new Int32Array(256),
  };
  for (let i = 0; i < 256; i++) {
    const c = i - 128;
    t.crR[i] = (fix(1.402) * c + 32768) >> 16;
    t.cbB[i] = (fix(1.772) * c + 32768) >> 16;
    t.cbG[i] = -fix(0.344136) * c;
    t.crG[i] = -fix(0.714136) * c + 32768;
  }
  return yccCache = t;
}

/** A component's DC level at 1/8 scale: round(DC * q / 8) + 128 clamped to 0..255, as in {@link decodeGreyEighth}. */
function dcLevel(dc: number, q: number): number {
  const v = (dc * q + 1028) >> 3;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Decodes a JPEG in colour at 1/8 scale: ceil(W/8) x ceil(H/8) RGB pixels, each the mean colour of its 8x8 block
 * as the DC coefficients of Y, Cb and Cr give it. A chroma block sampled below luma (4:2:0, 4:2:2, 4:1:1, 4:4:0)
 * covers several output pixels and colours each of them. YCbCr becomes RGB by the JFIF equations; three
 * components are taken as RGB as they are when an Adobe APP14 segment says so (transform 0) or their ids are 'R',
 * 'G', 'B'; a greyscale JPEG gives grey pixels (R = G = B). The cost over {@link decodeGreyEighth} is the chroma
 * DC values (their AC coefficients are stepped over in both) and chroma-only scans of progressive files.
 *
 * Throws SyntaxError as decodeGreyEighth does, and also for what has no colour meaning here: two or four
 * components (CMYK, YCCK) and a component sampled other than once or at the maximum per MCU in a scan of its own.
 */
export function decodeColourEighth(jpeg: Uint8Array): RgbImage {
  const { frame: f, plane, planeW, q, offsets, seen, adobeTransform } = decodeDcPlanes(jpeg, true);
  const nc = f.comps.length;
  if (nc === 2 || nc === 4) {
    throw fail(`unsupported JPEG for colour: ${nc} components${nc === 4 ? " (CMYK or YCCK)" : ""}`);
  }
  const outW = Math.ceil(f.width / 8);
  const outH = Math.ceil(f.height / 8);
  // Where each output pixel's block of each component sits in the plane: the block under the pixel (bx, by) on
  // the component's own grid, then its cell in the layout of decodeDcPlanes.
  const cols = f.comps.map((c, ci) =>
    Int32Array.from({ length: outW }, (_, x) => {
      const bx = Math.floor((x * c.h) / f.hmax);
      return offsets[ci] + Math.floor(bx / c.h) * f.hmax + (bx % c.h);
    })
  );
  const rows = f.comps.map((c) =>
    Int32Array.from({ length: outH }, (_, y) => {
      const by = Math.floor((y * c.v) / f.vmax);
      return (Math.floor(by / c.v) * f.vmax + (by % c.v)) * planeW;
    })
  );
  const out = new Uint8Array(outW * outH * 3);
  if (nc === 1) {
    const [c0, r0] = [cols[0], rows[0]];
    for (let y = 0, o = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++, o += 3) {
        out[o] = out[o + 1] = out[o + 2] = dcLevel(plane[r0[y] + c0[x]], q[0]);
      }
    }
    return { width: outW, height: outH, data: out };
  }
  const ids = f.comps.map((c) => c.id);
  const rgb = adobeTransform === 0 ||
    (adobeTransform < 0 && ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42);
  // Levels per component first (a component no scan carried, as in a truncated progressive file, is mid-level:
  // neutral chroma), then the conversion through tables.
  const levels = [0, 1, 2].map((ci) => {
    const lv = new Uint8Array(outW * outH);
    if (!seen[ci]) return lv.fill(128);
    const cx = cols[ci], ry = rows[ci], qc = q[ci];
    for (let y = 0, o = 0; y < outH; y++) {
      const r = ry[y];
      for (let x = 0; x < outW; x++, o++) {
        const v = (plane[r + cx[x]] * qc + 1028) >> 3;
        lv[o] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
    return lv;
  });
  const [l0, l1, l2] = levels;
  if (rgb) {
    for (let i = 0, o = 0; i < l0.length; i++, o += 3) {
      out[o] = l0[i];
      out[o + 1] = l1[i];
      out[o + 2] = l2[i];
    }
    return { width: outW, height: outH, data: out };
  }
  const t = yccTables();
  for (let i = 0, o = 0; i < l0.length; i++, o += 3) {
    // JFIF (ITU-R BT.601, full range), in 16.16 fixed point as libjpeg's jdcolor.c.
    const y = l0[i], cb = l1[i], cr = l2[i];
    const r = y + t.crR[cr];
    const g = y + ((t.cbG[cb] + t.crG[cr]) >> 16);
    const b = y + t.cbB[cb];
    out[o] = r < 0 ? 0 : r > 255 ? 255 : r;
    out[o + 1] = g < 0 ? 0 : g > 255 ? 255 : g;
    out[o + 2] = b < 0 ? 0 : b > 255 ? 255 : b;
  }
  return { width: outW, height: outH, data: out };
}
