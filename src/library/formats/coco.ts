/**
 * COCO instances (object detection): one JSON document per split, `annotations/instances_<split>.json` (or
 * `instances_default.json` without a split), the images beside it in `images/<split>/<image name>` (or
 * `images/default/`), the layout Datumaro's `coco_instances` reads and pycocotools loads.
 *
 *   {"info": {...}, "licenses": [], "categories": [{"id", "name", "supercategory"}],
 *    "images": [{"id", "file_name", "width", "height", "key", "robot_id", "capture_time", "labels"}],
 *    "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h], "area", "iscrowd": 0,
 *                     "segmentation": [], "attributes": {"source", "confidence"?}}]}
 *
 * Boxes are in pixels, `[left, top, width, height]` as COCO has them: a box stored in pixels is written exactly
 * as stored, a normalised one converted once (`boxPixels`). Category ids run from 1 in class order
 * (ClassList: sorted by name). An annotation's id is the box's id in the catalog; an image's id its position in
 * the file (from 1). An image's `labels` are its whole-frame labels (own and clips'), which COCO instances has no
 * place for otherwise; `key` is the frame's key.
 *
 * The document is written as pieces (`cocoHead`, the images, `cocoMiddle`, the annotations, `cocoTail`) so an
 * export can spool images and annotations apart and join them at the end without holding them in memory.
 */
import type { Box } from "../../catalog/catalog.ts";
import { boxPixels } from "../../catalog/boxes.ts";
import { captureTime, type ClassList, type DatasetFrame } from "./common.ts";

/** The split name COCO files use when the export has no split (Datumaro's default subset). */
export const COCO_DEFAULT_SPLIT = "default";

/** Path of a split's annotation file. */
export function cocoAnnotationPath(split: string | null): string {
  return `annotations/instances_${split ?? COCO_DEFAULT_SPLIT}.json`;
}

/** Path of a frame's image. */
export function cocoImagePath(frame: Pick<DatasetFrame, "name" | "split">): string {
  return `images/${frame.split ?? COCO_DEFAULT_SPLIT}/${frame.name}`;
}

/** The `images` entry of a frame (`id` its 1-based position in the file). */
export function cocoImage(frame: DatasetFrame, id: number): string {
  return JSON.stringify({
    id,
    file_name: frame.name,
    width: frame.width,
    height: frame.height,
    key: frame.key,
    robot_id: frame.row.robotId,
    capture_time: captureTime(frame.row),
    labels: frame.tags,
  });
}

/** The `annotations` entry of a box on image `imageId`. */
export function cocoAnnotation(box: Box, imageId: number, classes: ClassList): string {
  const { x, y, w, h } = boxPixels(box);
  return JSON.stringify({
    id: box.id,
    image_id: imageId,
    category_id: classes.cocoId(box.label),
    bbox: [x, y, w, h],
    area: w * h,
    iscrowd: 0,
    segmentation: [],
    attributes: { source: box.source, ...(box.confidence === null ? {} : { confidence: box.confidence }) },
  });
}

/** Everything before the first image entry: info, licenses, categories, and the opening of `images`. */
export function cocoHead(classes: ClassList, info: { description: string; dateCreated: string }): string {
  const categories = classes.names.map((name, i) => ({ id: i + 1, name, supercategory: "" }));
  return `{"info":${
    JSON.stringify({
      description: info.description,
      version: "1.0",
      year: Number(info.dateCreated.slice(0, 4)),
      contributor: "frame-bucket",
      date_created: info.dateCreated,
    })
  },"licenses":[],"categories":${JSON.stringify(categories)},"images":[`;
}

/** Between the last image entry and the first annotation. */
export const cocoMiddle = `],"annotations":[`;

/** After the last annotation. */
export const cocoTail = `]}\n`;

/** A whole document at once (tests and small exports): the pieces joined. */
export function cocoDocument(
  frames: DatasetFrame[],
  classes: ClassList,
  info: { description: string; dateCreated: string },
): string {
  const images = frames.map((f, i) => cocoImage(f, i + 1));
  const annotations = frames.flatMap((f, i) => f.boxes.map((b) => cocoAnnotation(b, i + 1, classes)));
  return cocoHead(classes, info) + images.join(",") + cocoMiddle + annotations.join(",") + cocoTail;
}
