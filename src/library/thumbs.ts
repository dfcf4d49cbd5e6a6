/**
 * Thumbnails for the web UI: a frame's 1/8-scale grey image read straight from its JPEG's DC coefficients
 * (src/filter/jpeg_dc.ts, no inverse DCT), shrunk further when it is still wide, and encoded as a small grey JPEG.
 * A 1920x1080 frame becomes 240x135 in a few milliseconds. Results are kept in a least-recently-used cache
 * bounded by bytes; concurrent requests for one frame share one decode.
 */
import jpeg from "jpeg-js";
import { resizeGrey } from "../filter/downscale.ts";
import { decodeGreyEighth, type GreyImage } from "../filter/jpeg_dc.ts";

/** Thumbnails wider than this are shrunk (frames above 2560 pixels wide). */
export const MAX_THUMB_WIDTH = 320;

/** Encodes a grey raster as a JPEG (jpeg-js wants RGBA). */
export function encodeGrey(image: GreyImage, quality = 80): Uint8Array {
  const rgba = new Uint8Array(image.width * image.height * 4);
  for (let i = 0, j = 0; i < image.data.length; i++, j += 4) {
    rgba[j] = rgba[j + 1] = rgba[j + 2] = image.data[i];
    rgba[j + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ data: rgba, width: image.width, height: image.height }, quality).data);
}

/** The thumbnail JPEG of a frame's JPEG. Throws SyntaxError for a JPEG the DC decoder cannot read. */
export function makeThumbnail(frame: Uint8Array): Uint8Array {
  let grey = decodeGreyEighth(frame);
  if (grey.width > MAX_THUMB_WIDTH) {
    const width = MAX_THUMB_WIDTH,
      height = Math.max(1, Math.round(grey.height * MAX_THUMB_WIDTH / grey.width));
    const cells = resizeGrey(grey, width, height, "area");
    grey = { width, height, data: Uint8Array.from(cells, (v) => Math.round(v)) };
  }
  return encodeGrey(grey);
}

/** A least-recently-used map bounded by the total size of its values. */
export class ByteLru {
  readonly #map = new Map<string, Uint8Array>();
  #bytes = 0;
  constructor(readonly maxBytes: number) {}

  get(key: string): Uint8Array | undefined {
    const value = this.#map.get(key);
    if (value) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: string, value: Uint8Array): void {
    const old = this.#map.get(key);
    if (old) {
      this.#bytes -= old.length;
      this.#map.delete(key);
    }
    if (value.length > this.maxBytes) return;
    this.#map.set(key, value);
    this.#bytes += value.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.maxBytes) break;
      this.#map.delete(k);
      this.#bytes -= v.length;
    }
  }

  get size(): number {
    return this.#map.size;
  }

  get bytes(): number {
    return this.#bytes;
  }
}

/** Thumbnails by frame key, cached; `load` fetches a frame's JPEG (null when no store has it). */
export class Thumbnails {
  readonly cache: ByteLru;
  readonly #pending = new Map<string, Promise<Uint8Array | null>>();
  /** Thumbnails made (cache misses), for tests and logs. */
  made = 0;

  constructor(readonly load: (key: string) => Promise<Uint8Array | null>, maxBytes = 32 * 1024 * 1024) {
    this.cache = new ByteLru(maxBytes);
  }

  get(key: string): Promise<Uint8Array | null> {
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve(hit);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = (async () => {
        const frame = await this.load(key);
        if (!frame) return null;
        const thumb = makeThumbnail(frame);
        this.made++;
        this.cache.set(key, thumb);
        return thumb;
      })().finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }
}
