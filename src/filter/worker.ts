/**
 * A worker that computes filter signatures off the consumer's event loop (see pool.ts). It builds the same
 * plugin from the same module and options as the main thread, then answers one message per frame. A frame comes
 * in a transfer buffer, which goes back with the answer for the next frame when the plugin keeps nothing of its
 * input (checked once, at start), and stays here otherwise.
 */
/// <reference lib="deno.worker" />
import { encode } from "jpeg-js";
import { filterFromSpec, type FilterSpec } from "./loader.ts";
import type { FilterPlugin, Signature } from "../plugin.ts";

let plugin: FilterPlugin | null = null;
/** Whether transfer buffers go back to the pool (the plugin keeps nothing of its input). */
let giveBack = false;

/** A 128x128 JPEG of four grey quadrants, with its own Huffman tables: something every image filter can read. */
function probeJpeg(): Uint8Array {
  const size = 128;
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = (x < size / 2 ? 40 : 200) + (y < size / 2 ? 0 : 30) + ((x * 7 + y * 3) % 11);
      data.set([v, v, v, 255], (y * size + x) * 4);
    }
  }
  return new Uint8Array(encode({ data, width: size, height: size }, 85).data);
}

/** Structural equality of two signatures (typed arrays by content). */
export function sameSignature(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (depth > 6 || typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return Number.isNaN(a) && Number.isNaN(b);
  }
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b) || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return x.every((v, i) => v === y[i]);
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    sameSignature((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1)
  );
}

/**
 * Whether the plugin's answers depend on memory of inputs it was given before (a cache holding views of a JPEG,
 * say): the probe is read once from a scratch copy that is then wiped, and once more from a fresh copy; a plugin
 * that keeps nothing of its input gives the same signature both times. Slots are reused only for such a plugin.
 * One that fails on the probe, or answers differently for any reason, gets a fresh copy of every frame to keep.
 */
export async function keepsInput(filter: FilterPlugin, probe = probeJpeg()): Promise<boolean> {
  const scratch = probe.slice();
  try {
    const first: Signature = await filter.signature(scratch);
    scratch.fill(0);
    const second: Signature = await filter.signature(probe.slice());
    return !sameSignature(first, second);
  } catch {
    return true;
  } finally {
    // Whatever the plugin kept of the scratch copy reads the probe again, and stays so: it is never changed again.
    scratch.set(probe);
    kept.push(scratch);
  }
}
/** Inputs a plugin may hold views of (the probe's scratch copies). */
const kept: Uint8Array[] = [];

self.onmessage = async (event: MessageEvent) => {
  const message = event.data as
    | { type: "init"; spec: FilterSpec }
    | { type: "sign"; id: number; buffer: ArrayBuffer; length: number };
  if (message.type === "init") {
    try {
      // The main thread type-checked a user's module already.
      plugin = await filterFromSpec(message.spec, true);
      giveBack = !(await keepsInput(plugin));
      self.postMessage({ type: "ready", shared: giveBack });
    } catch (error) {
      self.postMessage({ type: "failed", error: (error as Error).message });
    }
    return;
  }
  const { id, buffer, length } = message;
  const back = giveBack ? { buffer } : {};
  const transfer = giveBack ? [buffer] : [];
  try {
    const signature = await plugin!.signature(new Uint8Array(buffer, 0, length));
    self.postMessage({ type: "signed", id, signature, ...back }, transfer);
  } catch (error) {
    const e = error as Error;
    self.postMessage({
      type: "error",
      id,
      name: e?.name ?? "Error",
      error: e?.message ?? String(error),
      ...back,
    }, transfer);
  }
};
