/**
 * Thumbnails for the web UI: a frame's 1/8-scale colour image read straight from its JPEG's DC coefficients of
 * Y, Cb and Cr (src/filter/jpeg_dc.ts, no inverse DCT), shrunk further when it is still wide, and encoded as a
 * small JPEG. Each thumbnail pixel is the mean colour of an 8x8 block of the frame, so the thumbnail looks like
 * the frame, only smaller. A 1920x1080 frame becomes 240x135 in a few milliseconds. A JPEG whose colour the DC
 * decoder cannot read (CMYK, an exotic sampling) gets a grey thumbnail instead. Results are kept in a
 * least-recently-used cache bounded by bytes; concurrent requests for one frame share one decode.
 */
import jpeg from "jpeg-js";
import { resizeGrey } from "../filter/downscale.ts";
import { decodeColourEighth, decodeGreyEighth, type RgbImage } from "../filter/jpeg_dc.ts";

/** Thumbnails wider than this are shrunk (frames above 2560 pixels wide). */
export const MAX_THUMB_WIDTH = 320;

/** Encodes an RGB raster as a JPEG (jpeg-js wants RGBA). */
export function encodeRgb(image: RgbImage, quality = 80): Uint8Array {
  const rgba = new Uint8Array(image.width * image.height * 4);
  for (let i = 0, j = 0; i < image.data.length; i += 3, j += 4) {
    rgba[j] = image.data[i];
    rgba[j + 1] = image.data[i + 1];
    rgba[j + 2] = image.data[i + 2];
    rgba[j + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ data: rgba, width: image.width, height: image.height }, quality).data);
}

/** The size a thumbnail of `width` x `height` is shrunk to, or null when it is narrow enough. */
function shrunkSize(width: number, height: number): { width: number; height: number } | null {
  if (width <= MAX_THUMB_WIDTH) return null;
  return { width: MAX_THUMB_WIDTH, height: Math.max(1, Math.round(height * MAX_THUMB_WIDTH / width)) };
}

/** Shrinks an RGB raster by area means, channel by channel. */
function shrinkRgb(image: RgbImage, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const channel = new Uint8Array(image.width * image.height);
  for (let c = 0; c < 3; c++) {
    for (let i = 0, j = c; i < channel.length; i++, j += 3) channel[i] = image.data[j];
    const cells = resizeGrey(
      { width: image.width, height: image.height, data: channel },
      width,
      height,
      "area",
    );
    for (let i = 0, j = c; i < cells.length; i++, j += 3) out[j] = Math.round(cells[i]);
  }
  return { width, height, data: out };
}

/**
 * The colour image a thumbnail is made of (1/8 of the frame, at most MAX_THUMB_WIDTH wide); grey (R = G = B) when
 * the JPEG's colour cannot be read by the DC decoder. Throws SyntaxError for a JPEG it cannot read at all.
 */
export function thumbnailImage(frame: Uint8Array): RgbImage {
  let image: RgbImage;
  try {
    image = decodeColourEighth(frame);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Colour it has none we read (CMYK, an exotic sampling), or the file is broken: the grey decode says which.
    const grey = decodeGreyEighth(frame);
    const data = new Uint8Array(grey.data.length * 3);
    for (let i = 0, j = 0; i < grey.data.length; i++, j += 3) {
      data[j] = data[j + 1] = data[j + 2] = grey.data[i];
    }
    image = { width: grey.width, height: grey.height, data };
  }
  const size = shrunkSize(image.width, image.height);
  return size ? shrinkRgb(image, size.width, size.height) : image;
}

/** The thumbnail JPEG of a frame's JPEG. Throws SyntaxError for a JPEG the DC decoder cannot read. */
export function makeThumbnail(frame: Uint8Array): Uint8Array {
  return encodeRgb(thumbnailImage(frame));
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
