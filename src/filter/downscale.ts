/**
 * Shrinks a small grey image (the 1/8-scale decode) to the filter's grid.
 *
 * "area" averages every source pixel of a cell, which evens out sensor noise; "nearest" takes the pixel at each
 * cell's centre, as the original frame-bucket did, for thresholds tuned on its hashes.
 */
import type { GreyImage } from "./jpeg_dc.ts";

export type ResizeMode = "area" | "nearest";

/** Resizes `src` to `width` x `height`; cell values are means, kept as floats so no rounding decides a hash bit. */
export function resizeGrey(
  src: GreyImage,
  width: number,
  height: number,
  mode: ResizeMode,
  /** Reused result buffer of width * height cells (saves an allocation per frame on the hot path). */
  into?: Float32Array,
): Float32Array {
  if (src.width < 1 || src.height < 1) {
    throw new RangeError(`cannot resize an empty ${src.width}x${src.height} image`);
  }
  const out = into && into.length === width * height ? into : new Float32Array(width * height);
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
  // smaller than the grid repeats pixels instead of leaving cells empty. Separable: each source row is first
  // summed into the grid's columns, then rows of those sums into cells, so the cost is about one add per source
  // pixel plus one per cell.
  const xb = edges(src.width, width), yb = edges(src.height, height);
  const rowSums = new Int32Array(width);
  let lastY0 = -1, lastY1 = -1;
  for (let y = 0; y < height; y++) {
    const y0 = yb[2 * y], y1 = yb[2 * y + 1];
    if (y0 === lastY0 && y1 === lastY1) {
      // Growing vertically, consecutive cells cover the same source rows: the sums are already there.
      out.copyWithin(y * width, (y - 1) * width, y * width);
      continue;
    }
    lastY0 = y0;
    lastY1 = y1;
    rowSums.fill(0);
    for (let yy = y0; yy < y1; yy++) {
      const row = yy * src.width;
      for (let x = 0, e = 0; x < width; x++, e += 2) {
        let i = row + xb[e];
        const x1 = row + xb[e + 1];
        let sum = data[i++];
        while (i < x1) sum += data[i++];
        rowSums[x] += sum;
      }
    }
    const rows = y1 - y0;
    for (let x = 0, e = 0; x < width; x++, e += 2) {
      out[y * width + x] = rowSums[x] / (rows * (xb[e + 1] - xb[e]));
    }
  }
  return out;
}

const edgeCache = new Map<number, Int32Array>();

/** [start, end) source indices of each of `cells` cells over `size` pixels, cached: frame sizes rarely change. */
function edges(size: number, cells: number): Int32Array {
  const id = size * 65536 + cells;
  let out = edgeCache.get(id);
  if (!out) {
    out = new Int32Array(2 * cells);
    for (let c = 0; c < cells; c++) {
      const c0 = Math.min(size - 1, Math.floor(c * size / cells));
      out[2 * c] = c0;
      out[2 * c + 1] = Math.max(c0 + 1, Math.floor((c + 1) * size / cells));
    }
    if (edgeCache.size > 64) edgeCache.clear();
    edgeCache.set(id, out);
  }
  return out;
}
