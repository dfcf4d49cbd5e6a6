/**
 * Boxes as pure code, shared by both catalog backends (src/catalog/sqlite_labels.ts, postgres_labels.ts): the
 * checks of a new box and of a change to one, the two unit conversions exports use, the one SELECT that reads
 * boxes with their class name, and the mapping of its rows to `Box`.
 *
 * A box keeps the four numbers in the unit it was given (pixels of the frame or fractions of its size) together
 * with the frame's size: an export in the same unit writes them back unchanged, one in the other unit converts
 * with one multiplication or division (`boxPixels`, `boxNormalised`), so nothing drifts through repeated saves.
 */
import { BadInputError, NotFoundError } from "../errors.ts";
import type { Box, BoxInput, BoxUnit, BoxUpdate } from "./catalog.ts";
import { checkLabel } from "./rules.ts";

/** How far (in the box's unit) a rectangle may stick out of the frame: rounding of a conversion, not more. */
export const BOX_TOLERANCE = 1e-9;

/** Most boxes in one `addBoxes` call (one transaction, one journal entry): pre-label imports send batches. */
export const MAX_BOXES_PER_CALL = 10_000;

/** `human`, `import` or `model:NAME` with NAME 1–64 characters of letters, digits, `.`, `_`, `-`. */
const SOURCE = /^(human|import|model:[A-Za-z0-9._-]{1,64})$/;

/** A new box, checked: what the backends insert (`author` and times are theirs to add). */
export interface CheckedBox {
  key: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  unit: BoxUnit;
  imageWidth: number;
  imageHeight: number;
  confidence: number | null;
  source: string;
  accepted: boolean;
}

/** The source of a box (default `human`); refuses anything but `human`, `import` and `model:NAME`. */
export function checkSource(source: string | undefined | null): string {
  if (source === undefined || source === null) return "human";
  if (typeof source !== "string" || !SOURCE.test(source)) {
    throw new BadInputError(
      `box source ${JSON.stringify(source)} is not allowed: use "human", "import" or "model:NAME" ` +
        `(NAME 1-64 letters, digits, '.', '_' or '-', e.g. "model:yolov8n")`,
    );
  }
  return source;
}

/** True for a model's prediction: such boxes start unaccepted, until a person accepts them. */
export function isModelSource(source: string): boolean {
  return source.startsWith("model:");
}

/** The unit of a box (default px). */
export function checkUnit(unit: string | undefined | null): BoxUnit {
  if (unit === undefined || unit === null) return "px";
  if (unit !== "px" && unit !== "norm") {
    throw new BadInputError(
      `box unit ${
        JSON.stringify(unit)
      } is unknown: use "px" (pixels) or "norm" (fractions 0..1 of the frame)`,
    );
  }
  return unit;
}

/** The frame's size in pixels: positive whole numbers. */
export function checkImageSize(width: number, height: number): void {
  for (const [name, v] of [["width", width], ["height", height]] as const) {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw new BadInputError(
        `image ${name} ${v} is not a positive whole number of pixels: give the frame's size as stored`,
      );
    }
  }
}

/** A model's score: null (none) or a number in [0, 1]. */
export function checkConfidence(confidence: number | null | undefined): number | null {
  if (confidence === undefined || confidence === null) return null;
  if (typeof confidence !== "number" || !Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
    throw new BadInputError(
      `box confidence ${confidence} is not in [0, 1]: give a score between 0 and 1, or none`,
    );
  }
  return confidence;
}

/**
 * Refuses a rectangle that is not inside the frame: every number finite, width and height above zero, the left
 * and top edges at or after 0 and the right and bottom edges at or before the frame's size (pixels) or 1 (norm).
 */
export function checkRect(
  rect: { x: number; y: number; w: number; h: number },
  unit: BoxUnit,
  imageWidth: number,
  imageHeight: number,
): void {
  for (const name of ["x", "y", "w", "h"] as const) {
    const v = rect[name];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new BadInputError(`box ${name} ${v} is not a finite number: give x, y, w and h as numbers`);
    }
  }
  for (const name of ["w", "h"] as const) {
    if (rect[name] <= 0) {
      throw new BadInputError(
        `box ${name === "w" ? "width" : "height"} ${rect[name]} is not above 0: draw a box of some size`,
      );
    }
  }
  const what = unit === "px" ? "px" : "(normalised)";
  for (
    const [edge, start, size, limit, dim] of [
      ["x", rect.x, rect.w, unit === "px" ? imageWidth : 1, "width"],
      ["y", rect.y, rect.h, unit === "px" ? imageHeight : 1, "height"],
    ] as const
  ) {
    const sizeName = edge === "x" ? "w" : "h";
    if (start < -BOX_TOLERANCE) {
      throw new BadInputError(
        `box ${edge} ${start} is before the frame's edge: keep the box inside the frame (${edge} >= 0)`,
      );
    }
    if (start + size > limit + BOX_TOLERANCE) {
      throw new BadInputError(
        `box ${edge} ${start} + ${sizeName} ${size} = ${
          start + size
        } is beyond the frame's ${dim} ${limit} ${what}: ` +
          `keep the box inside the frame (${edge} + ${sizeName} <= ${limit})`,
      );
    }
  }
}

/** A new box checked and completed with its defaults (unit px, source human; a model's box unaccepted). */
export function checkBoxInput(input: BoxInput): CheckedBox {
  if (typeof input !== "object" || input === null) throw new BadInputError("a box must be an object");
  if (typeof input.key !== "string" || input.key === "") throw new BadInputError("a box needs a frame key");
  const label = checkLabel(input.label);
  const unit = checkUnit(input.unit);
  checkImageSize(input.imageWidth, input.imageHeight);
  checkRect(input, unit, input.imageWidth, input.imageHeight);
  const confidence = checkConfidence(input.confidence);
  const source = checkSource(input.source);
  return {
    key: input.key,
    label,
    x: input.x,
    y: input.y,
    w: input.w,
    h: input.h,
    unit,
    imageWidth: input.imageWidth,
    imageHeight: input.imageHeight,
    confidence,
    source,
    accepted: !isModelSource(source),
  };
}

/** The boxes of one `addBoxes` call, checked: at least one, at most MAX_BOXES_PER_CALL. */
export function checkBoxInputs(inputs: BoxInput[]): CheckedBox[] {
  if (!Array.isArray(inputs) || inputs.length === 0) throw new BadInputError("no boxes given");
  if (inputs.length > MAX_BOXES_PER_CALL) {
    throw new BadInputError(
      `${inputs.length} boxes in one call; at most ${MAX_BOXES_PER_CALL} are allowed: send them in batches`,
    );
  }
  return inputs.map(checkBoxInput);
}

/** Box ids of a request: whole numbers, each once, at least one. */
export function checkBoxIds(ids: number[]): number[] {
  if (!Array.isArray(ids) || ids.length === 0) throw new BadInputError("no box ids given");
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id <= 0) {
      throw new BadInputError(`box id ${id} is not a positive whole number`);
    }
  }
  return [...new Set(ids)];
}

/** The refusal of a box id that does not exist. */
export function unknownBox(id: number): NotFoundError {
  return new NotFoundError(`no box ${id}`);
}

/** Refuses `ids` unless every one was found, naming the first few missing. */
export function checkBoxesFound(ids: number[], found: ReadonlySet<number>): void {
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length === 1) throw unknownBox(missing[0]);
  if (missing.length) {
    throw new NotFoundError(
      `${missing.length} box ids not in the catalog: ${missing.slice(0, 5).join(", ")}${
        missing.length > 5 ? ", ..." : ""
      }`,
    );
  }
}

/**
 * A box after `update`, checked: the class, the rectangle (all four numbers, in `rect.unit`, default px, against
 * the frame's size kept with the box) and acceptance; fields left out are kept. An update changing nothing is
 * refused (a client bug, not a change worth a journal entry).
 */
export function boxAfterUpdate(
  before: Box,
  update: BoxUpdate,
): Pick<Box, "label" | "x" | "y" | "w" | "h" | "unit" | "accepted"> {
  if (typeof update !== "object" || update === null) {
    throw new BadInputError("a box update must be an object");
  }
  if (update.label === undefined && update.rect === undefined && update.accepted === undefined) {
    throw new BadInputError(
      "nothing to change on the box: give a label, a rectangle (x, y, w, h) or accepted",
    );
  }
  const label = update.label === undefined ? before.label : checkLabel(update.label);
  let { x, y, w, h, unit } = before;
  if (update.rect !== undefined) {
    if (typeof update.rect !== "object" || update.rect === null) {
      throw new BadInputError("a box's rectangle needs x, y, w and h");
    }
    unit = checkUnit(update.rect.unit);
    checkRect(update.rect, unit, before.imageWidth, before.imageHeight);
    ({ x, y, w, h } = update.rect);
  }
  if (update.accepted !== undefined && typeof update.accepted !== "boolean") {
    throw new BadInputError(`accepted ${JSON.stringify(update.accepted)} is not true or false`);
  }
  return { label, x, y, w, h, unit, accepted: update.accepted ?? before.accepted };
}

/** A box's rectangle in pixels: as stored for a px box, times the frame's size for a normalised one. */
export function boxPixels(box: Pick<Box, "x" | "y" | "w" | "h" | "unit" | "imageWidth" | "imageHeight">): {
  x: number;
  y: number;
  w: number;
  h: number;
} {
  if (box.unit === "px") return { x: box.x, y: box.y, w: box.w, h: box.h };
  return {
    x: box.x * box.imageWidth,
    y: box.y * box.imageHeight,
    w: box.w * box.imageWidth,
    h: box.h * box.imageHeight,
  };
}

/** A box's rectangle as fractions of the frame: as stored for a normalised box, divided for a px one. */
export function boxNormalised(
  box: Pick<Box, "x" | "y" | "w" | "h" | "unit" | "imageWidth" | "imageHeight">,
): {
  x: number;
  y: number;
  w: number;
  h: number;
} {
  if (box.unit === "norm") return { x: box.x, y: box.y, w: box.w, h: box.h };
  return {
    x: box.x / box.imageWidth,
    y: box.y / box.imageHeight,
    w: box.w / box.imageWidth,
    h: box.h / box.imageHeight,
  };
}

// ------------------------------------------------------------------------------------------------ rows

/**
 * Boxes with their class name, in the column names `boxFromRow` reads; plain SQL both backends run (add a WHERE
 * and an ORDER BY). `accepted` is 0/1 in SQLite and a boolean in PostgreSQL: `boxFromRow` takes either.
 */
export const BOX_SELECT =
  `SELECT b.id, b.key, l.name AS label, b.x, b.y, b.w, b.h, b.unit, b.image_w, b.image_h,
  b.confidence, b.source, b.accepted, b.author, b.created_ms, b.updated_ms
  FROM boxes b JOIN labels l ON l.id = b.label_id`;

/** A Box from a row of BOX_SELECT (numbers may arrive as strings or bigints from a driver). */
export function boxFromRow(r: Record<string, unknown>): Box {
  return {
    id: Number(r.id),
    key: String(r.key),
    label: String(r.label),
    x: Number(r.x),
    y: Number(r.y),
    w: Number(r.w),
    h: Number(r.h),
    unit: r.unit as BoxUnit,
    imageWidth: Number(r.image_w),
    imageHeight: Number(r.image_h),
    confidence: r.confidence === null || r.confidence === undefined ? null : Number(r.confidence),
    source: String(r.source),
    accepted: r.accepted === true || r.accepted === 1 || r.accepted === 1n || r.accepted === "1" ||
      r.accepted === "t",
    author: r.author === null || r.author === undefined ? null : String(r.author),
    createdMs: Number(r.created_ms),
    updatedMs: Number(r.updated_ms),
  };
}

/** Boxes grouped by frame key, each frame's in id order (what `boxesOf` and `withLabels` hand out). */
export function boxesByKey(boxes: Box[]): Map<string, Box[]> {
  const out = new Map<string, Box[]>();
  for (const b of [...boxes].sort((a, b) => a.id - b.id)) {
    const list = out.get(b.key);
    if (list) list.push(b);
    else out.set(b.key, [b]);
  }
  return out;
}

/** The journal target of a change to boxes or reviews: the key when they are all on one frame, else `frames`. */
export function keysTarget(keys: Iterable<string>): string {
  const unique = new Set(keys);
  return unique.size === 1 ? [...unique][0] : "frames";
}
