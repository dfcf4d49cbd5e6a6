/**
 * Histogram filter: a 64-bin grey histogram of a 64x64 downsample, compared by chi-squared distance
 * 0.5 * sum((a - b)^2 / (a + b)) over normalised bins, which runs from 0 (same histogram) to 1 (disjoint).
 * Blind to where things are, so it keeps frames whose lighting or content mix changed, not ones where an object
 * moved; useful as an alternative on cameras with a lot of motion but steady scenes.
 */
import {
  API_VERSION,
  decodeGreyEighth,
  type FilterFactory,
  type FilterPlugin,
  resizeGrey,
  type Signature,
} from "frame-bucket/plugin";

export interface Options {
  /** Chi-squared distance (0..1) above which a frame counts as a new scene. */
  threshold: number;
  /** Number of grey-level bins. */
  bins: number;
  /** Side of the square downsample the histogram is taken from. */
  size: number;
}

export const defaults: Options = { threshold: 0.15, bins: 64, size: 64 };

export function greyHistogram(
  jpeg: Uint8Array,
  bins: number,
  size: number,
  scratch?: Float32Array,
): Float64Array {
  const cells = resizeGrey(decodeGreyEighth(jpeg), size, size, "area", scratch);
  const hist = new Float64Array(bins);
  const scale = bins / 256;
  const top = bins - 1;
  for (let i = 0; i < cells.length; i++) {
    const bin = (cells[i] * scale) | 0;
    hist[bin > top ? top : bin]++;
  }
  const inv = 1 / cells.length;
  for (let i = 0; i < bins; i++) hist[i] *= inv;
  return hist;
}

export function chiSquared(a: Float64Array, b: Float64Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const s = a[i] + b[i];
    if (s > 0) d += (a[i] - b[i]) * (a[i] - b[i]) / s;
  }
  return d / 2;
}

const create: FilterFactory<Options> = (options): FilterPlugin<Float64Array> => {
  const o = { ...defaults, ...options };
  if (!Number.isFinite(o.threshold) || o.threshold < 0 || o.threshold >= 1) {
    throw new RangeError(`histogram: threshold ${o.threshold} must be from 0 to below 1`);
  }
  if (!Number.isInteger(o.bins) || o.bins < 2 || o.bins > 256) {
    throw new RangeError(`histogram: bins ${o.bins} must be a whole number from 2 to 256`);
  }
  if (!Number.isInteger(o.size) || o.size < 4 || o.size > 256) {
    throw new RangeError(`histogram: size ${o.size} must be a whole number from 4 to 256`);
  }
  // The downsample is only needed while one histogram is computed: one buffer per plugin instance.
  const scratch = new Float32Array(o.size * o.size);
  return {
    name: "histogram",
    apiVersion: API_VERSION,
    signature: (jpeg): Signature<Float64Array> => ({ value: greyHistogram(jpeg, o.bins, o.size, scratch) }),
    distance: (a, b) => chiSquared(a.value, b.value),
    accepts: (distance) => distance > o.threshold,
  };
};

export default create;
