/**
 * The Ultralytics YOLO detection layout:
 *
 *   images/<split>/<flat name>.jpg     the frames
 *   labels/<split>/<flat name>.txt     one line per box: `<class> <x centre> <y centre> <width> <height>`, all
 *                                      fractions of the image (an image without boxes gets an empty file: a
 *                                      negative, as Ultralytics reads it)
 *   data.yaml                          `train:`/`val:`/`test:` image folders and `names:` (id: name)
 *
 * Without a split every frame is in `train`, and `val:` names the same folder (Ultralytics wants one).
 *
 * Image names are flat here, the frame's image name with `/` written as `__`
 * (`reachy-001__2026-11-30__20261130T120000000Z_000001.jpg`): Datumaro's YOLO reader, which CVAT uses to import
 * YOLO, finds images only directly inside `images/<split>/` and takes the folder right above a label file as its
 * split, so nested folders would be lost. `keyOfFlatName` reads a flat name back to the key (robot ids may hold
 * `__`; the date and file parts never do, so the name is split from the right).
 *
 * Class ids run from 0 in class order (ClassList: sorted by name), the same order as COCO's ids minus one.
 * Numbers are fractions computed once from the stored box (`boxNormalised`: exact for a normalised box; the centre
 * adds half the size), written as plain decimals with full double precision.
 */
import { boxNormalised } from "../../catalog/boxes.ts";
import type { Box } from "../../catalog/catalog.ts";
import { FRAMES_PREFIX, imageName } from "../image_names.ts";
import type { SplitName } from "../split.ts";
import { type ClassList, type DatasetFrame, decimal } from "./common.ts";

/** The split of a frame in an export without a split. */
export const YOLO_DEFAULT_SPLIT: SplitName = "train";

/** A frame's image name without folders: its image name with each `/` as `__`. */
export function flatImageName(key: string, prefix = FRAMES_PREFIX): string {
  return imageName(key, prefix).replaceAll("/", "__");
}

/**
 * The key of a flat image name (or of its `.txt` label file): the last two `__` are the folder separators
 * (robot `__` day `__` file). Null when the name does not have that shape.
 */
export function keyOfFlatName(name: string, prefix = FRAMES_PREFIX): string | null {
  const base = name.replaceAll("\\", "/").split("/").at(-1)!.replace(/\.txt$/i, ".jpg");
  const m = /^(.+)__(\d{4}-\d{2}-\d{2})__([^/]+)$/.exec(base);
  return m ? `${prefix}${m[1]}/${m[2]}/${m[3]}` : null;
}

/** The image path of a frame in the export. */
export function yoloImagePath(frame: Pick<DatasetFrame, "name" | "split">): string {
  return `images/${frame.split ?? YOLO_DEFAULT_SPLIT}/${frame.name}`;
}

/** The label file path of a frame: its image path under `labels/`, ending in `.txt`. */
export function yoloLabelPath(frame: Pick<DatasetFrame, "name" | "split">): string {
  return `labels/${frame.split ?? YOLO_DEFAULT_SPLIT}/${frame.name.replace(/\.[^./]*$/, "")}.txt`;
}

/** One label line: class id and the box's centre and size as fractions. */
export function yoloLine(box: Box, classes: ClassList): string {
  const { x, y, w, h } = boxNormalised(box);
  return `${classes.index(box.label)} ${decimal(x + w / 2)} ${decimal(y + h / 2)} ${decimal(w)} ${
    decimal(h)
  }\n`;
}

/** The label file of a frame: one line per box (empty for a frame without boxes). */
export function yoloLabels(boxes: Box[], classes: ClassList): string {
  return boxes.map((b) => yoloLine(b, classes)).join("");
}

/**
 * data.yaml: the image folders of the splits (relative to the file's folder, which Ultralytics takes as the
 * dataset root when `path` is not given) and the class names by id. Names are JSON strings, which YAML reads as
 * double-quoted scalars whatever they hold.
 */
export function dataYaml(classes: ClassList, splits: SplitName[] | null): string {
  const present = splits && splits.length ? splits : [YOLO_DEFAULT_SPLIT];
  const lines = [
    "# Ultralytics YOLO detection dataset written by frame-bucket (deno task export --format yolo).",
    "# Image folders are relative to this file; labels/ mirrors images/.",
  ];
  for (const s of present) lines.push(`${s}: images/${s}`);
  if (!present.includes("val")) {
    lines.push(`val: images/${present[0]}  # no val split: the ${present[0]} images`);
  }
  lines.push(`nc: ${classes.size}`);
  lines.push(classes.size ? "names:" : "names: {}");
  classes.names.forEach((name, i) => lines.push(`  ${i}: ${JSON.stringify(name)}`));
  return lines.join("\n") + "\n";
}
