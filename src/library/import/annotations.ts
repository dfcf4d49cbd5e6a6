/**
 * What the format readers of src/library/import/ produce: the images a dataset file describes, each with the names
 * it gives the image, the size it states, its boxes and its whole-frame labels. The readers are pure (text in,
 * these rows out); apply.ts matches the images to frames and writes the boxes and labels.
 *
 * Malformed input is refused whole before anything is written: every problem (the first ten listed) names the
 * file, the line or element, and the value. What a reader can parse but frame-bucket cannot hold (a rotated box, a
 * polygon, a cancelled annotation) is not an error: it is left out and listed in `skipped`.
 */
import type { BoxUnit } from "../../catalog/catalog.ts";
import { labelProblem } from "../../catalog/rules.ts";
import { BadInputError } from "../../errors.ts";

/** The formats an import reads. */
export const IMPORT_FORMATS = ["coco", "yolo", "cvat", "label-studio"] as const;
export type ImportFormat = typeof IMPORT_FORMATS[number];

/** A box as the file gives it, before it is matched to a frame. */
export interface ImportedBox {
  /** The class: a label name (checked like every label). */
  label: string;
  /** Left, top, width, height in `unit`, origin at the top-left corner. */
  x: number;
  y: number;
  w: number;
  h: number;
  unit: BoxUnit;
  /** A score the file gives (a YOLO 6th column, a COCO `score`, a Label Studio prediction's); else null. */
  confidence: number | null;
  /**
   * A source the file names for this box: `model:NAME` for a Label Studio prediction of model NAME. Undefined:
   * the import's own source (`import`, or the one the caller gives).
   */
  source?: string;
  /**
   * frame-bucket's box id the file carries (a Label Studio result id `fb<id>`, a COCO annotation id with our
   * export's `attributes.source`): the box it was exported from, when that box is still on the frame.
   */
  boxId?: number;
  /** With `boxId`: the id counts only when the box has this source (COCO ids are only ours when it matches). */
  boxIdSource?: string;
  /** Where in the file, for messages (`task 3 result "fb12"`). */
  at: string;
}

/** One image of the file: which frame it is, and what is on it. */
export interface ImportedImage {
  /**
   * Names the file gives the image, most specific first: a frame key, an image name (`reachy-001/2026-11-30/
   * ....jpg`), a file path, a YOLO label file path. apply.ts tries each (and the tail of each path) against the
   * catalog.
   */
  refs: string[];
  /** Where in the file, for messages (`instances_val.json image 4`, `annotations.xml line 12`). */
  at: string;
  /** Pixel size the file states, checked against the stored JPEG for pixel boxes; null when it states none. */
  width: number | null;
  height: number | null;
  boxes: ImportedBox[];
  /** Whole-frame labels (CVAT tags, Label Studio choices, the `labels` our COCO export writes). */
  tags: string[];
  /**
   * False when the file does not say which boxes the image has (a Label Studio task with predictions but no
   * annotation): then boxes of the import's own source already on the frame stay. Default true: the image's
   * boxes are all it has, so a re-import replaces those an earlier import of the same source put there.
   */
  complete?: boolean;
}

/** Something in the file that is not imported, and why. */
export interface ImportSkip {
  ref: string;
  reason: string;
}

/** A parsed file (or set of files). */
export interface ParsedImport {
  format: ImportFormat;
  images: ImportedImage[];
  /** Parts of the file left out (unsupported shapes, cancelled annotations), each with its reason. */
  skipped: ImportSkip[];
}

/** Most problems listed in one refusal; the message gives the total. */
const LISTED_PROBLEMS = 10;

/** Collects parse problems and throws them as one BadInputError. */
export class Problems {
  readonly list: string[] = [];
  constructor(readonly what: string) {}
  add(problem: string): void {
    this.list.push(problem);
  }
  get count(): number {
    return this.list.length;
  }
  throwIfAny(): void {
    const n = this.list.length;
    if (n === 0) return;
    const shown = this.list.slice(0, LISTED_PROBLEMS).map((p) => `  ${p}`).join("\n");
    const more = n > LISTED_PROBLEMS ? `\n  … and ${n - LISTED_PROBLEMS} more` : "";
    const head = n === 1 ? `1 problem in ${this.what}` : `${n} problems in ${this.what}`;
    throw new BadInputError(`${head}; nothing was imported, fix them and import again:\n${shown}${more}`);
  }
}

/** A value as it appears in a message: JSON, cut to 60 characters. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Adds a problem when `name` is not a valid label; true when it is one. */
export function checkLabel(name: string, at: string, problems: Problems): boolean {
  const problem = labelProblem(name);
  if (problem) problems.add(`${at}: ${problem}`);
  return problem === null;
}

/** A stated image size: both positive integers, or neither given. Adds a problem otherwise. */
export function imageSize(
  width: unknown,
  height: unknown,
  at: string,
  problems: Problems,
): { width: number | null; height: number | null } {
  const absent = (v: unknown) => v === undefined || v === null || v === "";
  if (absent(width) && absent(height)) return { width: null, height: null };
  const w = typeof width === "string" ? Number(width) : width;
  const h = typeof height === "string" ? Number(height) : height;
  if (!Number.isInteger(w) || !Number.isInteger(h) || (w as number) <= 0 || (h as number) <= 0) {
    problems.add(`${at}: width ${show(width)} and height ${show(height)} must be positive whole pixels`);
    return { width: null, height: null };
  }
  return { width: w as number, height: h as number };
}
