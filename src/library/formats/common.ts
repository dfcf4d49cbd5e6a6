/**
 * What the dataset writers of src/library/formats/ share: a frame as the writers see it (its image name and size,
 * the boxes and whole-frame labels to write, its split), the class list with its ids, and number and XML text
 * helpers. The writers are pure: they turn these rows into the text of their format, and export.ts streams it.
 */
import type { Box, FrameRow } from "../../catalog/catalog.ts";
import type { SplitName } from "../split.ts";

/** One frame of a dataset export, as the format writers need it. */
export interface DatasetFrame {
  key: string;
  row: FrameRow;
  /** The image's path inside its images folder: `imageName(key)` (YOLO: the flat name, see yolo.ts). */
  name: string;
  /** Pixel size of the stored JPEG. */
  width: number;
  height: number;
  /** Boxes to write as ground truth (accepted ones), by id. */
  boxes: Box[];
  /** Model boxes not accepted yet (only Label Studio writes them, as predictions). */
  predictions: Box[];
  /** Whole-frame labels: the frame's own labels and those of clips it lies in, sorted. */
  tags: string[];
  /** Null when the export has no split. */
  split: SplitName | null;
}

/**
 * Classes and their ids: the names sorted by code point (so the same set of classes always gets the same ids),
 * COCO ids from 1, YOLO ids from 0, in the same order. A class met only while writing (a box added between the
 * planning pass and the writing pass) is appended after the sorted ones, so ids already written stay right.
 */
export class ClassList {
  readonly #names: string[];
  readonly #ids = new Map<string, number>();

  constructor(names: Iterable<string>) {
    this.#names = [...new Set(names)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.#names.forEach((n, i) => this.#ids.set(n, i));
  }

  /** The names in id order. */
  get names(): readonly string[] {
    return this.#names;
  }

  get size(): number {
    return this.#names.length;
  }

  /** The 0-based id of a class (YOLO, CVAT order), appending it when new. */
  index(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#names.length;
      this.#names.push(name);
      this.#ids.set(name, id);
    }
    return id;
  }

  /** The 1-based COCO category id of a class. */
  cocoId(name: string): number {
    return this.index(name) + 1;
  }
}

/**
 * A number as a plain decimal: the shortest text that reads back as the same double, never in exponent form
 * (Datumaro's YOLO reader takes only digits and a point). Integers stay integers.
 */
export function decimal(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`${n} is not a finite number`);
  const text = String(n);
  const e = text.indexOf("e");
  if (e < 0) return text;
  const sign = text.startsWith("-") ? "-" : "";
  const mantissa = text.slice(sign.length, e);
  const exponent = Number(text.slice(e + 1));
  const digits = mantissa.replace(".", "");
  const point = (mantissa.indexOf(".") < 0 ? mantissa.length : mantissa.indexOf(".")) + exponent;
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Text escaped for an XML attribute value or element content (tabs and line ends kept as references). */
export function xmlEscape(text: string): string {
  return text.replace(/[&<>"'\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`)
    // Characters XML 1.0 cannot hold at all (controls; labels and keys never have them) become U+FFFD.
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "\ufffd");
}

/** The ISO 8601 capture time of a frame. */
export function captureTime(row: FrameRow): string {
  return new Date(row.timestampMs).toISOString();
}
