/**
 * Whether a filter plugin keeps (views of) its input between calls, which decides whether it may be handed a
 * buffer that is reused or freed once its call is over: the pool's transfer buffers (worker.ts), and the
 * consumer's fetch answers, which are freed as soon as their batch is handled (src/kafka/wire_consumer.ts).
 */
import type { FilterPlugin, Signature } from "../plugin.ts";

/**
 * A 128x128 JPEG of four grey quadrants with faint noise (1.5 KB, as jpeg-js encodes it at quality 75, with its
 * own Huffman tables): something every image filter can read. Kept as text so that a worker does not load an
 * encoder, and Node compatibility with it, for one image: that cost each worker ~60 MB (bench drain).
 */
const PROBE_BASE64 =
  "/9j/4AAQSkZJRgABAQAAAQABAAD/2wCEAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAx" +
  "NDQ0Hyc5PTgyPC4zNDIBCQkJDAsMGA0NGDIhHCEyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy" +
  "MjIyMv/AABEIAIAAgAMBEQACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQEC" +
  "AwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm" +
  "Z2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq" +
  "8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIy" +
  "gQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SF" +
  "hoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEA" +
  "AhEDEQA/APLP0oAPpQAfrQAfX9KAD9KAD6UAH60AH1oA+oP880AH+eaAD60AH6UAH0oAP1oAPr+lAB+lAHy/+tAB9f0oAP0oAPpQ" +
  "AfrQAfWgA/zzQAf55oA+oPrQAfpQAfSgA/WgA+v6UAH6UAH0oAP1oA+X/wBKAD6UAH60AH1oAP8APNAB/nmgA+tAB+lAH1B9KAD9" +
  "aAD6/pQAfpQAfSgA/WgA+tAB/nmgD5f/AFoAPrQAf55oAP8APNAB9aAD9KAD6UAH60AfUH1/SgA/SgA+lAB+tAB9aAD/ADzQAf55" +
  "oAPrQB8v/wCeaAD/ADzQAfWgA/SgA+lAB+tAB9f0oAP0oA+oPpQAfrQAfWgA/wA80AH+eaAD60AH6UAH0oA+X/rQAfpQAfSgA/Wg" +
  "A+v6UAH6UAH0oAP1oA+oPrQAf55oAP8APNAB9aAD9KAD6UAH60AH1/SgD5f+lAB+tAB9f0oAP0oAPpQAfrQAfWgA/wA80AfUH+ea" +
  "AD60AH6UAH0oAP1oAPr+lAB+lAB9KAPl/wCv6UAH6UAH0oAP1oAPrQAf55oAP880AH1oA+oP0oAPpQAfrQAfX9KAD9KAD6UAH60A" +
  "H1oA+ffpQAfrQAfWgA/zzQAf55oAPrQAfpQAfSgD6g/WgA+v6UAH6UAH0oAP1oAPrQAf55oAP880AfL/ANaAD/PNAB/nmgA+tAB+" +
  "lAB9KAD9aAD6/pQB9QfpQAfSgA/WgA+tAB/nmgA/zzQAfWgA/SgD5f8A880AH1oAP0oAPpQAfrQAfX9KAD9KAD6UAfUH60AH1oAP" +
  "880AH+eaAD60AH6UAH0oAP1oA+X/ANKAD6UAH60AH1/SgA/SgA+lAB+tAB9aAPqD/PNAB/nmgA+tAB+lAB9KAD9aAD6/pQAfpQB8" +
  "v/rQAfX9KAD9KAD6UAH60AH1oAP880AH+eaAPqD60AH6UAH0oAP1oAPr+lAB+lAB9KAD9aAPl/8ASgA+lAB+tAB9aAD/ADzQAf55" +
  "oAPrQAfpQB9QfSgA/WgA+v6UAH6UAH0oAP1oAPrQAf55oA+X/wBaAD60AH+eaAD/ADzQAfWgA/SgA+lAB+tAH1B9f0oAP0oAPpQA" +
  "frQAfWgA/wA80AH+eaAD60AfL/8AnmgA/wA80AH1oAP0oAPpQAfrQAfX9KAD9KAPqD6UAH60AH1oAP8APNAB/nmgA+tAB+lAB9KA" +
  "P//Z";

export function probeJpeg(): Uint8Array {
  return Uint8Array.from(atob(PROBE_BASE64), (c) => c.charCodeAt(0));
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
