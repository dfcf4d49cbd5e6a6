/**
 * An example filter plugin: keeps a frame when the scene's overall brightness changed, e.g. lights switched on
 * or off, a door opened to daylight. Copy it, change it, and point `filter.primary` at your copy:
 *
 *   [filter]
 *   primary = "./examples/filters/brightness.ts"
 *   options = { min_change = 12.0 }
 *
 * Paths are relative to the config file. The module is type-checked against the plugin contract
 * (`frame-bucket/plugin`, src/plugin.ts) at start-up, wherever it lives.
 */
import {
  API_VERSION,
  decodeGreyEighth,
  type FilterFactory,
  type FilterPlugin,
  type Signature,
} from "frame-bucket/plugin";

export interface Options {
  /** Change of mean brightness (0-255 grey levels) above which a frame is kept. */
  min_change: number;
}

export const defaults: Options = { min_change: 12 };

const brightness: FilterFactory<Options> = (options): FilterPlugin<number> => {
  const o = { ...defaults, ...options };
  if (typeof o.min_change !== "number" || !(o.min_change >= 0 && o.min_change <= 255)) {
    throw new RangeError(
      `brightness: min_change ${JSON.stringify(o.min_change)} must be a number from 0 to 255`,
    );
  }
  return {
    name: "brightness",
    apiVersion: API_VERSION,
    signature(jpeg): Signature<number> {
      // The 1/8-scale decode is cheap (DC coefficients only) and its mean equals the full image's.
      const { data } = decodeGreyEighth(jpeg);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i];
      return { value: sum / data.length };
    },
    distance: (a, b) => Math.abs(a.value - b.value),
    accepts: (distance) => distance > o.min_change,
  };
};

export default brightness;
