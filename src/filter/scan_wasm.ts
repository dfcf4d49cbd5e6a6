/**
 * The fast path of the scan decoder: `decodeHuffmanScan` of jpeg_dc.ts compiled to WebAssembly (the Rust source is
 * beside this file, in scan_wasm/; `deno task wasm` rebuilds it into scan_wasm_bytes.ts). It decodes a good scan
 * to exactly what the TypeScript loop gives, in less time; on anything else it returns -1 and the caller runs the
 * TypeScript loop, which names the problem.
 */
import type { HuffmanScan } from "./jpeg_dc.ts";
import { SCAN_WASM_BASE64 } from "./scan_wasm_bytes.ts";

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  decode_scan(
    d: number,
    n: number,
    start: number,
    tabs: number,
    tabsLen: number,
    slow: number,
    slowLen: number,
    blk: number,
    nb: number,
    mcusX: number,
    mcusY: number,
    rowStride: number,
    colStride: number,
    plane: number,
    planeLen: number,
    ri: number,
    withAc: number,
    al: number,
  ): number;
}

/** Bytes of one slow table in the instance's memory: maxcode[18] and valoff[18] as i32, then 256 symbols. */
const SLOW_BYTES = 18 * 4 * 2 + 256;
const PAGE = 65536;
/**
 * The most memory the instance grows to (it never shrinks): a full-HD frame needs ~0.6 MiB, an 8 MiB frame (the
 * default kafka.max_message_bytes) with a 32-megapixel plane ~13 MiB. A scan that would need more is decoded by
 * the TypeScript loop, whose buffers the collector takes back.
 */
export const WASM_MEMORY_MAX = 16 * 1024 * 1024;

/**
 * Since start: scans decoded here, given back to the TypeScript loop (bad data), lost to a trap (a bug), and left
 * to it for their size; and the instance's memory now.
 */
export interface ScanWasmCounts {
  decoded: number;
  redone: number;
  trapped: number;
  tooLarge: number;
  memoryBytes: number;
}
const counts = { decoded: 0, redone: 0, trapped: 0, tooLarge: 0 };

/** A copy of the counts (tests check that good frames never leave the fast path). */
export function scanWasmCounts(): ScanWasmCounts {
  return { ...counts, memoryBytes: exports?.memory.buffer.byteLength ?? 0 };
}

let exports: Exports | null = null;
/** The tables last copied into the instance (a camera's frames all use the same ones). */
let placedTabs: Int32Array | null = null;

function instance(): Exports {
  if (exports) return exports;
  const bytes = Uint8Array.from(atob(SCAN_WASM_BASE64), (c) => c.charCodeAt(0));
  exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Exports;
  return exports;
}

/**
 * Decodes a Huffman scan as `decodeHuffmanScan` does, writing into its plane. Returns the position after the scan's
 * last consumed byte, or -1 when the scan is to be decoded by TypeScript.
 */
export function decodeScanWasm(scan: HuffmanScan): number {
  const { d, start, tabs, slow, blk, nb, mcusX, mcusY, rowStride, colStride, plane, ri, withAc, al } = scan;
  const x = instance();
  const tabsAt = x.__heap_base.value as number;
  const slowAt = tabsAt + tabs.byteLength;
  const blkAt = slowAt + slow.length * SLOW_BYTES;
  const planeAt = blkAt + blk.byteLength;
  const dAt = planeAt + plane.byteLength;
  const end = dAt + d.length;
  if (end > WASM_MEMORY_MAX) {
    counts.tooLarge++;
    return -1;
  }
  const memory = x.memory;
  if (end > memory.buffer.byteLength) {
    memory.grow(Math.ceil((end - memory.buffer.byteLength) / PAGE));
    placedTabs = null;
  }
  const buffer = memory.buffer;
  if (placedTabs !== tabs) {
    new Int32Array(buffer, tabsAt, tabs.length).set(tabs);
    for (let i = 0; i < slow.length; i++) {
      const at = slowAt + i * SLOW_BYTES;
      const t = slow[i];
      new Int32Array(buffer, at, 18).set(t.maxcode);
      new Int32Array(buffer, at + 72, 18).set(t.valoff);
      const symbols = new Uint8Array(buffer, at + 144, 256);
      symbols.fill(0);
      symbols.set(t.symbols.subarray(0, 256));
    }
    placedTabs = tabs;
  }
  new Int32Array(buffer, blkAt, blk.length).set(blk);
  const wasmPlane = new Int32Array(buffer, planeAt, plane.length);
  wasmPlane.set(plane);
  new Uint8Array(buffer, dAt, d.length).set(d);
  let pos: number;
  try {
    pos = x.decode_scan(
      dAt,
      d.length,
      start,
      tabsAt,
      tabs.length,
      slowAt,
      slow.length,
      blkAt,
      nb,
      mcusX,
      mcusY,
      rowStride,
      colStride,
      planeAt,
      plane.length,
      ri,
      withAc ? 1 : 0,
      al,
    );
  } catch {
    // A trap (a bounds check in the Rust code caught a bug): the TypeScript loop decodes this scan, and the next one
    // gets a new instance, as a trap leaves the instance's stack pointer where the trap left it.
    counts.trapped++;
    exports = null;
    placedTabs = null;
    return -1;
  }
  if (pos < 0) {
    counts.redone++;
    return -1;
  }
  counts.decoded++;
  plane.set(wasmPlane);
  return pos;
}
