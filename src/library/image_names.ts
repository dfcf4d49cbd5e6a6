/**
 * Image names: how a frame is called in files outside frame-bucket (pre-label imports, training exports). The name
 * is the object key without its `frames/` prefix, e.g. `reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg`:
 * unique, readable, and a relative path that keeps robot and day as folders when an export is unpacked.
 */
import { BadInputError } from "../errors.ts";

/** The object key prefix of stored frames (rustfs.prefix's default). */
export const FRAMES_PREFIX = "frames/";

/**
 * A frame's image name: its key without the leading `frames/` (or `prefix`, for a store configured with another
 * rustfs.prefix); a key without it is returned as it is.
 */
export function imageName(key: string, prefix = FRAMES_PREFIX): string {
  return prefix && key.startsWith(prefix) ? key.slice(prefix.length) : key;
}

/**
 * The frame key of an image name: the reverse of {@link imageName}. Accepts a full key too (with `frames/`), a
 * leading `./` or `/`, Windows separators, and a `.txt` stem (a YOLO label file) which names the `.jpg` of the
 * same stem. Throws BadInputError for an empty name or one that climbs out (`..`).
 */
export function keyOfImage(name: string, prefix = FRAMES_PREFIX): string {
  let s = name.trim().replaceAll("\\", "/");
  while (s.startsWith("./")) s = s.slice(2);
  s = s.replace(/^\/+/, "");
  if (s === "") {
    throw new BadInputError(
      `image name ${JSON.stringify(name)} is empty: give the frame's name like reachy-001/2026-11-30/...jpg`,
    );
  }
  if (s.split("/").some((part) => part === "..")) {
    throw new BadInputError(
      `image name ${JSON.stringify(name)} contains "..": give the frame's name relative to the export root`,
    );
  }
  if (/\.txt$/i.test(s)) s = s.slice(0, -4) + ".jpg";
  return s.startsWith(prefix) ? s : prefix + s;
}
