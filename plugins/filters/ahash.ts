/**
 * aHash filter (the original's "phash"): grey image -> hash_size x hash_size grid -> one bit per cell, set when the
 * cell is brighter than the grid's mean. Two frames differ by the hamming distance of their bits; a frame is
 * stored when that distance to the robot's last stored frame is above `threshold`.
 *
 * The grey image comes from the JPEG's DC coefficients (the contract's `decodeGreyEighth`, a 1/8-scale decode): the
 * grid is at most 64x64, so a full decode would be wasted work.
 */
import {
  API_VERSION,
  decodeGreyEighth,
  type FilterFactory,
  type FilterPlugin,
  hamming,
  resizeGrey,
  type ResizeMode,
  type Signature,
} from "frame-bucket/plugin";

export interface Options {
  /** Hamming distance (out of hashSize^2 bits) above which a frame counts as a new scene. */
  threshold: number;
  /** Grid side; 16 gives a 256-bit hash. */
  hashSize: number;
  /** "area" (mean of each cell) or "nearest" (the original's sampling). */
  resize: ResizeMode;
}

export const defaults: Options = { threshold: 26, hashSize: 16, resize: "area" };

/** Packs one bit per cell (cell > mean), most significant bit first. */
export function hashBits(cells: Float32Array): Uint8Array {
  let sum = 0;
  for (let i = 0; i < cells.length; i++) sum += cells[i];
  const mean = sum / cells.length;
  const bits = new Uint8Array(Math.ceil(cells.length / 8));
  for (let i = 0; i < cells.length; i++) {
    if (cells[i] > mean) bits[i >> 3] |= 0x80 >> (i & 7);
  }
  return bits;
}

/** The aHash of a JPEG. */
export function ahash(jpeg: Uint8Array, hashSize: number, resize: ResizeMode): Uint8Array {
  return hashBits(resizeGrey(decodeGreyEighth(jpeg), hashSize, hashSize, resize));
}

const create: FilterFactory<Options> = (options): FilterPlugin<Uint8Array> => {
  const o = { ...defaults, ...options };
  if (!Number.isInteger(o.hashSize) || o.hashSize < 2 || o.hashSize > 64) {
    throw new RangeError(`ahash: hash size ${o.hashSize} must be a whole number from 2 to 64`);
  }
  const bits = o.hashSize * o.hashSize;
  if (!Number.isFinite(o.threshold) || o.threshold < 0 || o.threshold >= bits) {
    throw new RangeError(
      `ahash: threshold ${o.threshold} must be from 0 to ${bits - 1} (a ${o.hashSize}x${o.hashSize} hash)`,
    );
  }
  if (o.resize !== "area" && o.resize !== "nearest") {
    throw new RangeError(`ahash: resize ${JSON.stringify(o.resize)} must be "area" or "nearest"`);
  }
  return {
    name: "ahash",
    apiVersion: API_VERSION,
    signature(jpeg): Signature<Uint8Array> {
      const value = ahash(jpeg, o.hashSize, o.resize);
      return { value, bits: value };
    },
    restore(bits) {
      if (bits.length !== Math.ceil(o.hashSize * o.hashSize / 8)) {
        throw new RangeError(
          `ahash: ${bits.length * 8} stored bits do not fit a ${o.hashSize}x${o.hashSize} hash`,
        );
      }
      return { value: bits, bits };
    },
    distance: (a, b) => hamming(a.value, b.value),
    accepts: (distance) => distance > o.threshold,
  };
};

export default create;
