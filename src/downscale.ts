/**
 * Shrinks a small grey image (the 1/8-scale decode) to the filter's grid.
 *
 * "area" averages every source pixel of a cell, which evens out sensor noise; "nearest" takes the pixel at each
 * cell's centre, as the original frame-bucket did, for thresholds tuned on its hashes.
 */
import type { GreyImage } from "./jpeg_dc.ts";

export type ResizeMode = "area" | "nearest";

/** Resizes `src` to `width` x `height`; cell values are means, kept as floats so no rounding decides a hash bit. */
export function resizeGrey(src: GreyImage, width: number, height: number, mode: ResizeMode): Float32Array {
  if (src.width < 1 || src.height < 1) {
    throw new RangeError(`cannot resize an empty ${src.width}x${src.height} image`);
  }
  const out = new Float32Array(width * height);
  const data = src.data;
  if (mode === "nearest") {
    for (let y = 0; y < height; y++) {
      const sy = Math.min(src.height - 1, Math.floor((y + 0.5) * src.height / height));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(src.width - 1, Math.floor((x + 0.5) * src.width / width));
        out[y * width + x] = data[sy * src.width + sx];
      }
    }
    return out;
  }
  // Area: cell edges at integer source positions; a cell never has fewer than one source pixel, so an image
  // smaller than the grid repeats pixels instead of leaving cells empty.
  for (let y = 0; y < height; y++) {
    const y0 = Math.min(src.height - 1, Math.floor(y * src.height / height));
    const y1 = Math.max(y0 + 1, Math.floor((y + 1) * src.height / height));
    for (let x = 0; x < width; x++) {
      const x0 = Math.min(src.width - 1, Math.floor(x * src.width / width));
      const x1 = Math.max(x0 + 1, Math.floor((x + 1) * src.width / width));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) {
        const row = yy * src.width;
        for (let xx = x0; xx < x1; xx++) sum += data[row + xx];
      }
      out[y * width + x] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  return out;
}
