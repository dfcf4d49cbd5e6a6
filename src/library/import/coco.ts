/**
 * COCO instances reader: `{images, annotations, categories}` documents as CVAT, Datumaro, pycocotools and
 * frame-bucket's COCO export (`annotations/instances_<split>.json`) write them.
 *
 * Every entry of `images` is an image of the import, with or without annotations (one without says the frame has
 * no box: a re-import removes the boxes an earlier import put there). Its `file_name` is matched to a frame
 * (image name or key), and `key` first when present (our export writes it); `width`/`height` are checked against
 * the stored JPEG. `labels` (a list of names, which our export writes for whole-frame labels) become frame labels.
 *
 * The annotations are read by src/library/prelabels.ts's `parseCocoResults` (the same rules as pre-labels:
 * `bbox` `[x, y, w, h]` in pixels, `category_id` through `categories`, `image_id` through `images`, an optional
 * `score` as the confidence), so a box reads the same whichever way it comes in. An annotation with an `id` and
 * `attributes.source`, as our export writes them, names the box it was exported from (apply.ts updates that box
 * when it was moved, if it is still on the frame with that source).
 */
import { BadInputError } from "../../errors.ts";
import { parseCocoResults, type Prediction } from "../prelabels.ts";
import {
  checkLabel,
  imageSize,
  type ImportedImage,
  isRecord,
  type ParsedImport,
  Problems,
  show,
} from "./annotations.ts";

/** A COCO document: its file name (for messages) and its parsed JSON. */
export interface CocoDocument {
  name: string;
  json: unknown;
}

function readDocument(doc: CocoDocument, images: ImportedImage[], problems: Problems): void {
  const json = doc.json;
  if (Array.isArray(json)) {
    throw new BadInputError(
      `${doc.name} is a JSON array: a COCO results file (a model's predictions) has no images list; import it ` +
        `as pre-labels (deno task label predictions --coco, POST /api/prelabels) or give the instances file ` +
        `({images, annotations, categories})`,
    );
  }
  if (!isRecord(json) || !Array.isArray(json.images)) {
    throw new BadInputError(
      `${doc.name} is not a COCO instances file: expected an object with "images", "annotations" and ` +
        `"categories", got ${isRecord(json) ? `keys ${show(Object.keys(json).slice(0, 6))}` : show(json)}`,
    );
  }
  const annotations = json.annotations ?? [];
  if (!Array.isArray(annotations)) {
    problems.add(`${doc.name}: annotations must be a list, got ${show(annotations)}`);
    return;
  }
  // The images, by file name (annotations name them through image_id -> file_name).
  const byName = new Map<string, ImportedImage>();
  json.images.forEach((entry, i) => {
    const at = `${doc.name} images[${i}]`;
    if (!isRecord(entry)) {
      problems.add(`${at}: expected {id, file_name, width, height}, got ${show(entry)}`);
      return;
    }
    const name = entry.file_name;
    if (typeof name !== "string" || name.trim() === "") {
      problems.add(`${at}: file_name ${show(name ?? null)} must be the image's file name`);
      return;
    }
    const size = imageSize(entry.width, entry.height, at, problems);
    const tags: string[] = [];
    if (entry.labels !== undefined && entry.labels !== null) {
      if (!Array.isArray(entry.labels) || !entry.labels.every((l) => typeof l === "string")) {
        problems.add(`${at}: labels ${show(entry.labels)} must be a list of label names`);
      } else {
        for (const l of entry.labels as string[]) {
          if (checkLabel(l, at, problems) && !tags.includes(l)) tags.push(l);
        }
      }
    }
    const refs = typeof entry.key === "string" && entry.key !== "" ? [entry.key, name] : [name];
    const image: ImportedImage = {
      refs,
      at: `${at} (id ${show(entry.id ?? null)})`,
      width: size.width,
      height: size.height,
      boxes: [],
      tags,
    };
    const same = byName.get(name);
    if (same) {
      // The same file twice in one document: one image (its boxes and tags together).
      for (const t of tags) if (!same.tags.includes(t)) same.tags.push(t);
      return;
    }
    byName.set(name, image);
    images.push(image);
  });
  if (annotations.length === 0) return;
  let predictions: Prediction[];
  try {
    predictions = parseCocoResults(
      { annotations, images: json.images, categories: json.categories ?? [] },
      { images: json.images, categories: json.categories ?? [] },
    );
  } catch (error) {
    if (!(error instanceof BadInputError)) throw error;
    // The problems found so far first; then the annotations' ("result N" there is annotations[N] here).
    problems.throwIfAny();
    throw new BadInputError(
      `${doc.name}: ${
        error.message.replace("the COCO results", "the annotations").replace(
          /\bresult (\d+)/g,
          "annotations[$1]",
        )
      }`,
    );
  }
  predictions.forEach((p, i) => {
    const at = `${doc.name} annotations[${i}]`;
    if (!checkLabel(p.label, at, problems)) return;
    let image = byName.get(p.ref);
    if (!image) {
      // image_id given as a name that is not in images: an image of its own.
      image = { refs: [p.ref], at, width: null, height: null, boxes: [], tags: [] };
      byName.set(p.ref, image);
      images.push(image);
    }
    // Our export writes the box's id as the annotation's and its source in attributes: together they name it.
    const raw = annotations[i] as Record<string, unknown>;
    const attributes = isRecord(raw.attributes) ? raw.attributes : {};
    const ours = Number.isSafeInteger(raw.id) && (raw.id as number) > 0 &&
      typeof attributes.source === "string";
    image.boxes.push({
      label: p.label,
      x: p.x,
      y: p.y,
      w: p.w,
      h: p.h,
      unit: "px",
      confidence: p.confidence,
      ...(ours ? { boxId: raw.id as number, boxIdSource: attributes.source as string } : {}),
      at,
    });
  });
}

/**
 * Parses COCO instances documents (several: one per split). Throws BadInputError naming the file, the entry and
 * the value of every problem.
 */
export function parseCoco(docs: CocoDocument[]): ParsedImport {
  const problems = new Problems(docs.length === 1 ? docs[0].name : "the COCO files");
  const images: ImportedImage[] = [];
  for (const doc of docs) readDocument(doc, images, problems);
  problems.throwIfAny();
  return { format: "coco", images, skipped: [] };
}
