/**
 * Pre-labels: a detector's predictions imported as boxes with source `model:NAME` and the model's score as
 * confidence. They start unaccepted (drawn dashed) until a person accepts or deletes them.
 *
 * Two formats, parsed by pure functions into {@link Prediction}s:
 * - COCO results: a JSON array of `{image_id, category_id, bbox: [x, y, w, h], score}` in pixels (what
 *   pycocotools' `loadRes` and most detectors write). `image_id` is an image name or frame key, or a number
 *   resolved through an `images` list (`[{id, file_name}]`, usually the ground-truth file's); a numeric
 *   `category_id` is named through `categories` (`[{id, name}]`), a string one is the class itself. A whole COCO
 *   dataset object (`{images, annotations, categories}`) is read as its annotations with its own lists.
 * - YOLO: one text file per image, named like the image with `.txt`, a line per box
 *   `class cx cy w h [confidence]`, the centre and size as fractions of the image; `class` indexes the classes
 *   list (classes.txt / obj.names, one name a line).
 *
 * Malformed input is refused before anything is written, with every problem (the first ten listed) naming the
 * file, the line or result, and the value. What can only be found against the catalog is skipped and reported
 * instead: a frame that does not exist or whose JPEG no store holds, a box that lies outside its image once
 * clipped to it, a box already imported. Boxes are stored in the unit the format gives (COCO px, YOLO fractions):
 * COCO's numbers as they are, YOLO's centre moved to the corner by one subtraction (an export back to YOLO adds
 * it again, equal to the file's value to the last bit or within one unit in the last place).
 */
import { mapLimited } from "../map_limited.ts";
import type { Box, BoxInput, BoxUnit, ChangeBy, FrameRow, LabelStore } from "../catalog/catalog.ts";
import { labelProblem, notInLabelSet } from "../catalog/rules.ts";
import { BadInputError } from "../errors.ts";
import type { ImageSize } from "./image_size.ts";
import { FRAMES_PREFIX, keyOfImage } from "./image_names.ts";

/** One predicted box, before it is matched to a frame. */
export interface Prediction {
  /** The image: an image name, a frame key or a YOLO label file's path (resolved by `keyOfImage`). */
  ref: string;
  /** The class name. */
  label: string;
  /** Left, top, width, height in `unit`. */
  x: number;
  y: number;
  w: number;
  h: number;
  unit: BoxUnit;
  /** The model's score in [0, 1]; null when the file has none. */
  confidence: number | null;
}

/** The lists a COCO results file refers to by number. */
export interface CocoLists {
  /** `[{id, file_name}]`: image ids to image names. */
  images?: unknown;
  /** `[{id, name}]`: category ids to class names. */
  categories?: unknown;
}

/** A YOLO label file: its path relative to the label folder, and its text. */
export interface YoloFile {
  name: string;
  text: string;
}

/** Most problems listed in one refusal; the message gives the total. */
const LISTED_PROBLEMS = 10;
const MODEL_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Collects parse problems and throws them as one BadInputError. */
class Problems {
  readonly list: string[] = [];
  constructor(readonly what: string) {}
  add(problem: string): void {
    this.list.push(problem);
  }
  throwIfAny(): void {
    const n = this.list.length;
    if (n === 0) return;
    const shown = this.list.slice(0, LISTED_PROBLEMS).map((p) => `  ${p}`).join("\n");
    const more = n > LISTED_PROBLEMS ? `\n  … and ${n - LISTED_PROBLEMS} more` : "";
    const head = n === 1 ? `1 problem in the ${this.what}` : `${n} problems in the ${this.what}`;
    throw new BadInputError(`${head}; nothing was imported, fix them and import again:\n${shown}${more}`);
  }
}

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A model name for `model:NAME`: 1–64 letters, digits, '.', '_' or '-'. */
export function checkModelName(model: string): string {
  if (typeof model !== "string" || !MODEL_NAME.test(model)) {
    throw new BadInputError(
      `model name ${show(model)} must be 1-64 letters, digits, '.', '_' or '-' (e.g. yolov8n-2026-03): ` +
        `boxes get the source model:NAME`,
    );
  }
  return model;
}

/** Maps ids to names from a COCO list of `{id, <field>}` objects, adding problems for bad entries. */
function idMap(list: unknown, field: string, what: string, problems: Problems): Map<string, string> | null {
  if (list === undefined || list === null) return null;
  const map = new Map<string, string>();
  if (!Array.isArray(list)) {
    problems.add(`${what} must be a list of {id, ${field}}, got ${show(list)}`);
    return map;
  }
  list.forEach((entry, i) => {
    const id = isRecord(entry) ? entry.id : undefined;
    const value = isRecord(entry) ? entry[field] : undefined;
    if ((typeof id !== "number" && typeof id !== "string") || typeof value !== "string" || value === "") {
      problems.add(`${what}[${i}]: expected {id, ${field}}, got ${show(entry)}`);
    } else if (map.has(String(id)) && map.get(String(id)) !== value) {
      problems.add(
        `${what}[${i}]: id ${show(id)} is given twice (${show(map.get(String(id)))} and ${show(value)})`,
      );
    } else map.set(String(id), value);
  });
  return map;
}

function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Checks a confidence value; returns the problem or null. */
function confidenceProblem(v: number): string | null {
  return v >= 0 && v <= 1 ? null : `score ${v} is outside 0..1`;
}

/**
 * Parses COCO detection results into predictions (px, top-left corner, width, height). `json` is the parsed
 * results array, or a COCO dataset object whose `annotations` are read with its `images` and `categories` (lists
 * in `lists` take precedence). Throws BadInputError listing the problems (result index, field and value).
 */
export function parseCocoResults(json: unknown, lists: CocoLists = {}): Prediction[] {
  const problems = new Problems("COCO results");
  let results: unknown = json;
  let images = lists.images;
  let categories = lists.categories;
  if (isRecord(json)) {
    if (!Array.isArray(json.annotations)) {
      throw new BadInputError(
        `COCO results must be a JSON array of {image_id, category_id, bbox, score} (or a dataset with ` +
          `"annotations"); got an object with keys ${show(Object.keys(json).slice(0, 5))}`,
      );
    }
    results = json.annotations;
    images ??= json.images;
    categories ??= json.categories;
  }
  if (!Array.isArray(results)) {
    throw new BadInputError(
      `COCO results must be a JSON array of {image_id, category_id, bbox, score}; got ${show(results)}`,
    );
  }
  const imageNames = idMap(images, "file_name", "images", problems);
  const classNames = idMap(categories, "name", "categories", problems);
  const out: Prediction[] = [];
  results.forEach((r, i) => {
    const at = `result ${i}`;
    if (!isRecord(r)) {
      problems.add(`${at}: expected an object {image_id, category_id, bbox, score}, got ${show(r)}`);
      return;
    }
    const before = problems.list.length;
    // The image.
    let ref = "";
    const imageId = r.image_id;
    if (typeof imageId === "number" || (typeof imageId === "string" && imageId !== "")) {
      const named = imageNames?.get(String(imageId));
      if (named !== undefined) ref = named;
      else if (typeof imageId === "string") ref = imageId;
      else if (imageNames) problems.add(`${at}: image_id ${imageId} is not in the images list`);
      else {
        problems.add(
          `${at}: image_id ${imageId} is a number: give the images list ({id, file_name}, e.g. --images ` +
            `with the ground-truth file) or use image names as image_id`,
        );
      }
    } else problems.add(`${at}: image_id ${show(imageId)} must be an image name or a number`);
    // The class.
    let label = "";
    const categoryId = r.category_id;
    if (typeof categoryId === "number" || (typeof categoryId === "string" && categoryId !== "")) {
      const named = classNames?.get(String(categoryId));
      if (named !== undefined) label = named;
      else if (typeof categoryId === "string") label = categoryId;
      else if (classNames) problems.add(`${at}: category_id ${categoryId} is not in the categories list`);
      else {
        problems.add(
          `${at}: category_id ${categoryId} is a number: give the categories list ({id, name}, e.g. ` +
            `--images with the ground-truth file) or use class names as category_id`,
        );
      }
    } else problems.add(`${at}: category_id ${show(categoryId)} must be a class name or a number`);
    if (label !== "") {
      const problem = labelProblem(label);
      if (problem) problems.add(`${at}: ${problem}`);
    }
    // The rectangle.
    const bbox = r.bbox;
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(finite)) {
      problems.add(`${at}: bbox ${show(bbox)} must be [x, y, width, height] in pixels`);
    } else if (bbox[2] < 0 || bbox[3] < 0) {
      problems.add(`${at}: bbox ${show(bbox)} has a negative width or height`);
    }
    // The score.
    let confidence: number | null = null;
    if (r.score !== undefined && r.score !== null) {
      if (!finite(r.score)) problems.add(`${at}: score ${show(r.score)} must be a number in 0..1`);
      else {
        const problem = confidenceProblem(r.score);
        if (problem) problems.add(`${at}: ${problem}`);
        confidence = r.score;
      }
    }
    if (problems.list.length > before) return;
    const [x, y, w, h] = bbox as number[];
    out.push({ ref, label, x, y, w, h, unit: "px", confidence });
  });
  problems.throwIfAny();
  return out;
}

/**
 * Reads a YOLO classes file (classes.txt, obj.names): one class name a line, the line number (from 0) being the
 * class id. Trailing empty lines are ignored; an empty line between names would shift every later id, so it is
 * refused, as is a name that is not a valid label.
 */
export function parseYoloClasses(text: string, file = "classes file"): string[] {
  const problems = new Problems(file);
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const seen = new Map<string, number>();
  lines.forEach((name, i) => {
    const at = `${file} line ${i + 1}`;
    if (name === "") {
      problems.add(`${at} is empty: class ids count lines, so give class ${i} a name`);
      return;
    }
    const problem = labelProblem(name);
    if (problem) problems.add(`${at}: ${problem}`);
    else if (seen.has(name)) problems.add(`${at}: class ${show(name)} is also class ${seen.get(name)}`);
    else seen.set(name, i);
  });
  if (lines.length === 0) problems.add(`${file} names no class: write one class name a line`);
  problems.throwIfAny();
  return lines;
}

/**
 * Parses YOLO label files into predictions (fractions of the image, centre converted to the top-left corner).
 * Lines are `class cx cy w h` or `class cx cy w h confidence`; blank lines and `#` comments are skipped. Throws
 * BadInputError listing the problems (file, line and value).
 */
export function parseYoloLabels(files: YoloFile[], classes: string[]): Prediction[] {
  const problems = new Problems("YOLO labels");
  const out: Prediction[] = [];
  for (const file of files) {
    const lines = file.text.replace(/^\uFEFF/, "").split(/\r?\n/);
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const at = `${file.name} line ${i + 1}`;
      const cols = line.split(/\s+/);
      if (cols.length !== 5 && cols.length !== 6) {
        problems.add(
          `${at}: ${cols.length} columns in ${show(line)}: expected "class cx cy w h [confidence]"` +
            (cols.length > 6 ? " (polygon labels are not boxes)" : ""),
        );
        return;
      }
      const nums = cols.map(Number);
      const cls = nums[0];
      if (!Number.isInteger(cls) || cls < 0 || !/^\d+(\.0*)?$/.test(cols[0])) {
        problems.add(`${at}: class ${show(cols[0])} must be a class number (0..${classes.length - 1})`);
        return;
      }
      if (cls >= classes.length) {
        problems.add(
          `${at}: class ${cls} is not in the classes list (${classes.length} classes, 0..${
            classes.length - 1
          })`,
        );
        return;
      }
      const names = ["cx", "cy", "w", "h", "confidence"];
      for (let c = 1; c < cols.length; c++) {
        if (!Number.isFinite(nums[c]) || cols[c] === "") {
          problems.add(`${at}: ${names[c - 1]} ${show(cols[c])} is not a number`);
          return;
        }
      }
      const [, cx, cy, w, h] = nums;
      if (w < 0 || h < 0) {
        problems.add(`${at}: ${w < 0 ? `w ${cols[3]}` : `h ${cols[4]}`} is negative`);
        return;
      }
      let confidence: number | null = null;
      if (cols.length === 6) {
        const problem = confidenceProblem(nums[5]);
        if (problem) {
          problems.add(`${at}: confidence ${cols[5]} is outside 0..1`);
          return;
        }
        confidence = nums[5];
      }
      out.push({
        ref: file.name,
        label: classes[cls],
        x: cx - w / 2,
        y: cy - h / 2,
        w,
        h,
        unit: "norm",
        confidence,
      });
    });
  }
  problems.throwIfAny();
  return out;
}

/**
 * The part of a box inside the image: each edge moved in to the image's border (px: 0..width/height, norm:
 * 0..1). Null when nothing of it is inside, or no area is left.
 */
export function clipToImage(
  box: { x: number; y: number; w: number; h: number; unit: BoxUnit },
  size: ImageSize,
): { x: number; y: number; w: number; h: number } | null {
  const limitX = box.unit === "px" ? size.width : 1;
  const limitY = box.unit === "px" ? size.height : 1;
  const x0 = Math.max(0, box.x);
  const y0 = Math.max(0, box.y);
  const x1 = Math.min(limitX, box.x + box.w);
  const y1 = Math.min(limitY, box.y + box.h);
  if (!(x1 > x0) || !(y1 > y0)) return null;
  // Unchanged numbers stay exactly as given (an export writes them back bit for bit).
  return {
    x: x0,
    y: y0,
    w: x0 === box.x && x1 === box.x + box.w ? box.w : x1 - x0,
    h: y0 === box.y && y1 === box.y + box.h ? box.h : y1 - y0,
  };
}

/** What `importPredictions` needs: the catalog, a frame's size, the label store. The server and the CLI each pass theirs. */
export interface ImportDeps {
  /** The catalog row of a frame; null when the catalog has none. */
  frame(key: string): Promise<FrameRow | null>;
  /**
   * The frame's pixel size, read from its stored JPEG (never from the predictions); null when no store holds
   * it. Throws BadInputError when the bytes are not a readable JPEG (the frame is skipped) and anything else when
   * a store fails (the import stops).
   */
  imageSize(row: FrameRow): Promise<ImageSize | null>;
  store: Pick<LabelStore, "addBoxes" | "boxesOf" | "list" | "limits">;
  /** The key prefix image names are relative to (rustfs.prefix; default `frames/`). */
  prefix?: string;
}

export interface ImportOptions {
  /** The model's name: boxes get the source `model:NAME`. */
  model: string;
  author?: string | null;
  /** Boxes per addBoxes call (one transaction and one journal entry each; default 500). */
  batchSize?: number;
  /** Frames whose sizes are read at once (default 8). */
  concurrency?: number;
  /** Called after each batch is written, and at the end. */
  progress?: (p: ImportProgress) => void;
  nowMs?: number;
}

export interface ImportProgress {
  /** Frames looked at so far, of `totalFrames` the predictions name. */
  framesDone: number;
  totalFrames: number;
  /** Frames that got at least one box. */
  frames: number;
  boxes: number;
  skipped: number;
}

/** A prediction (or a frame's worth of them) that was not imported, and why. */
export interface Skip {
  ref: string;
  reason: string;
}

export interface ImportSummary {
  /** Frames that got at least one box. */
  frames: number;
  /** Boxes written. */
  boxes: number;
  /** Boxes that reached outside their image and were cut to it. */
  clipped: number;
  skipped: Skip[];
}

const DEFAULT_BATCH = 500;
const DEFAULT_CONCURRENCY = 8;

function sameBox(a: Box, b: BoxInput): boolean {
  const near = (p: number, q: number) => Math.abs(p - q) <= 1e-9 * Math.max(1, Math.abs(p));
  return a.label === b.label && a.source === b.source && a.unit === b.unit && near(a.x, b.x) &&
    near(a.y, b.y) && near(a.w, b.w) && near(a.h, b.h);
}

/**
 * Imports predictions as boxes with source `model:NAME`: resolves each ref to a frame key, reads the frame's size
 * from its JPEG, clips each box to the image, leaves out boxes already imported (same frame, class, source and
 * rectangle: a re-run after an interruption adds nothing twice), and writes the rest with `addBoxes` in batches.
 * In strict mode every class must be in the label set, checked before anything is written. A store failure
 * stops the import (batches written so far stay; running it again completes it).
 */
export async function importPredictions(
  deps: ImportDeps,
  predictions: Prediction[],
  options: ImportOptions,
): Promise<ImportSummary> {
  const source = `model:${checkModelName(options.model)}`;
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
  const by: ChangeBy = { author: options.author ?? null, nowMs: options.nowMs };
  const skipped: Skip[] = [];
  // Refs to keys, predictions grouped by frame in the order first named.
  const byKey = new Map<string, { ref: string; predictions: Prediction[] }>();
  for (const p of predictions) {
    let key: string;
    try {
      key = keyOfImage(p.ref, deps.prefix ?? FRAMES_PREFIX);
    } catch (error) {
      if (!(error instanceof BadInputError)) throw error;
      skipped.push({ ref: p.ref, reason: error.message });
      continue;
    }
    let group = byKey.get(key);
    if (!group) byKey.set(key, group = { ref: p.ref, predictions: [] });
    group.predictions.push(p);
  }
  if (deps.store.limits.strict) {
    const known = new Set((await deps.store.list()).map((l) => l.name));
    for (const group of byKey.values()) {
      for (const p of group.predictions) {
        if (!known.has(p.label)) throw notInLabelSet(p.label, [...known]);
      }
    }
  }
  const keys = [...byKey.keys()];
  const summary: ImportSummary = { frames: 0, boxes: 0, clipped: 0, skipped };
  let framesDone = 0;
  const report = () =>
    options.progress?.({
      framesDone,
      totalFrames: keys.length,
      frames: summary.frames,
      boxes: summary.boxes,
      skipped: skipped.length,
    });
  const pending: BoxInput[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const written = await deps.store.addBoxes(pending.splice(0), by);
    summary.boxes += written.length;
    summary.frames += new Set(written.map((b) => b.key)).size;
    report();
  };
  const plural = (n: number) => `${n} box${n === 1 ? "" : "es"}`;
  // A chunk of frames at a time: their rows and sizes are read concurrently, their boxes looked up at once.
  const chunk = Math.max(batchSize, 64);
  for (let start = 0; start < keys.length; start += chunk) {
    const part = keys.slice(start, start + chunk);
    const sized = await mapLimited(part, options.concurrency ?? DEFAULT_CONCURRENCY, async (key) => {
      const group = byKey.get(key)!;
      const row = await deps.frame(key);
      if (!row) return { key, group, reason: `no frame ${key} in the catalog` };
      try {
        const size = await deps.imageSize(row);
        if (!size) return { key, group, reason: `no store holds the JPEG of ${key}` };
        return { key, group, size };
      } catch (error) {
        if (!(error instanceof BadInputError)) throw error;
        return { key, group, reason: `the JPEG of ${key} is unreadable: ${error.message}` };
      }
    });
    const found = sized.filter((s) => s.size).map((s) => s.key);
    const existing = found.length ? await deps.store.boxesOf(found) : new Map<string, Box[]>();
    for (const s of sized) {
      framesDone++;
      const n = s.group.predictions.length;
      if (!s.size) {
        skipped.push({ ref: s.group.ref, reason: `${s.reason} (${plural(n)})` });
        continue;
      }
      const size = s.size;
      const left = [...(existing.get(s.key) ?? [])];
      s.group.predictions.forEach((p, i) => {
        const clipped = clipToImage(p, size);
        if (!clipped) {
          skipped.push({
            ref: p.ref,
            reason:
              `box ${i + 1} of ${n} (${p.label} ${p.x},${p.y} ${p.w}x${p.h} ${p.unit}) lies outside the ` +
              `${size.width}x${size.height} image` +
              (p.unit === "norm" ? " (YOLO coordinates are fractions 0..1 of the image)" : ""),
          });
          return;
        }
        if (clipped.x !== p.x || clipped.y !== p.y || clipped.w !== p.w || clipped.h !== p.h) {
          summary.clipped++;
        }
        const input: BoxInput = {
          key: s.key,
          label: p.label,
          ...clipped,
          unit: p.unit,
          imageWidth: size.width,
          imageHeight: size.height,
          confidence: p.confidence,
          source,
        };
        const same = left.findIndex((b) => sameBox(b, input));
        if (same >= 0) {
          skipped.push({
            ref: p.ref,
            reason: `box ${i + 1} of ${n} is already imported (box ${left[same].id})`,
          });
          left.splice(same, 1);
          return;
        }
        pending.push(input);
      });
      // A frame's boxes go into one call where they fit, so its journal entry names the frame.
      if (pending.length >= batchSize) await flush();
    }
  }
  await flush();
  report();
  return summary;
}
