/**
 * CVAT for images 1.1 (XML) reader: the task files CVAT dumps (`annotations.xml`) and frame-bucket's CVAT export
 * writes (`annotations.xml`, or `train.xml`, `val.xml`, ... with a split).
 *
 *   <annotations><version>1.1</version><meta>...</meta>
 *     <image id="0" name="reachy-001/2026-11-30/....jpg" width="1920" height="1080">
 *       <box label="person" xtl="10" ytl="20" xbr="110" ybr="220" occluded="0" source="manual"/>
 *       <tag label="door_open"/>
 *     </image>
 *   </annotations>
 *
 * An image's `name` is matched to a frame (image name or key). Boxes are corners in pixels: `x = xtl`,
 * `w = xbr - xtl` (one subtraction; a box our export wrote from a pixel box reads back within a unit in the last
 * place, which apply.ts treats as the same box). Tags are whole-frame labels. A rotated box (`rotation` other than
 * 0), polygons, polylines, points, ellipses, masks and cuboids are not boxes: they are left out and listed. The
 * video flavour (`<track>`) is refused: export the task as "CVAT for images 1.1".
 */
import { BadInputError } from "../../errors.ts";
import {
  checkLabel,
  imageSize,
  type ImportedBox,
  type ImportedImage,
  type ImportSkip,
  type ParsedImport,
  Problems,
  show,
} from "./annotations.ts";
import { parseXml, type XmlElement } from "./xml.ts";

/** A CVAT task file: its name (for messages) and its text. */
export interface CvatFile {
  name: string;
  text: string;
}

const SHAPES_NOT_BOXES = new Set(["polygon", "polyline", "points", "ellipse", "mask", "cuboid", "skeleton"]);

/** A coordinate attribute as a number; adds a problem when it is missing or not a number. */
function coordinate(el: XmlElement, attr: string, at: string, problems: Problems): number | null {
  const raw = el.attributes[attr];
  const v = raw === undefined || raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(v)) {
    problems.add(`${at}: ${attr} ${show(raw ?? null)} must be a number (pixels)`);
    return null;
  }
  return v;
}

/** Reads one task file's images into `images`. */
function readFile(file: CvatFile, images: ImportedImage[], skipped: ImportSkip[], problems: Problems): void {
  const root = parseXml(file.text, file.name);
  if (root.name !== "annotations") {
    throw new BadInputError(
      `${file.name} line ${root.line}: the root element is <${root.name}>, not <annotations>: give a CVAT ` +
        `for images 1.1 task file (annotations.xml)`,
    );
  }
  const track = root.children.find((c) => c.name === "track");
  if (track) {
    throw new BadInputError(
      `${file.name} line ${track.line}: <track> is CVAT for video: export the task as "CVAT for images 1.1"`,
    );
  }
  const version = root.children.find((c) => c.name === "version")?.text.trim();
  if (version !== undefined && version !== "" && !version.startsWith("1.")) {
    problems.add(`${file.name}: version ${show(version)} is not CVAT for images 1.x`);
  }
  for (const el of root.children) {
    if (el.name !== "image") continue;
    const at = `${file.name} line ${el.line} <image id=${show(el.attributes.id ?? null)}>`;
    const name = el.attributes.name;
    if (name === undefined || name.trim() === "") {
      problems.add(`${at}: no name attribute (the image's file name)`);
      continue;
    }
    const size = imageSize(el.attributes.width, el.attributes.height, at, problems);
    const boxes: ImportedBox[] = [];
    const tags: string[] = [];
    for (const child of el.children) {
      const where = `${file.name} line ${child.line} <${child.name}>`;
      if (child.name === "box") {
        const label = child.attributes.label ?? "";
        if (label === "") {
          problems.add(`${where}: no label attribute`);
          continue;
        }
        if (!checkLabel(label, where, problems)) continue;
        const xtl = coordinate(child, "xtl", where, problems);
        const ytl = coordinate(child, "ytl", where, problems);
        const xbr = coordinate(child, "xbr", where, problems);
        const ybr = coordinate(child, "ybr", where, problems);
        if (xtl === null || ytl === null || xbr === null || ybr === null) continue;
        if (xbr < xtl || ybr < ytl) {
          problems.add(
            `${where}: the bottom-right corner (${xbr}, ${ybr}) is left of or above the top-left ` +
              `(${xtl}, ${ytl})`,
          );
          continue;
        }
        const rotation = Number(child.attributes.rotation ?? "0");
        if (!Number.isFinite(rotation) || Math.abs(rotation % 360) > 1e-9) {
          skipped.push({
            ref: name,
            reason: `${where}: rotated ${
              show(child.attributes.rotation)
            } degrees; boxes are upright, left out`,
          });
          continue;
        }
        boxes.push({
          label,
          x: xtl,
          y: ytl,
          w: xbr - xtl,
          h: ybr - ytl,
          unit: "px",
          confidence: null,
          at: where,
        });
      } else if (child.name === "tag") {
        const label = child.attributes.label ?? "";
        if (label === "") problems.add(`${where}: no label attribute`);
        else if (checkLabel(label, where, problems) && !tags.includes(label)) tags.push(label);
      } else if (SHAPES_NOT_BOXES.has(child.name)) {
        skipped.push({
          ref: name,
          reason: `${where} (${
            show(child.attributes.label ?? null)
          }): a ${child.name} is not a box, left out`,
        });
      }
    }
    images.push({ refs: [name], at, width: size.width, height: size.height, boxes, tags });
  }
}

/**
 * Parses CVAT for images 1.1 task files. Throws BadInputError naming the file, line and value of every problem
 * (nothing is imported from a file with one).
 */
export function parseCvat(files: CvatFile[]): ParsedImport {
  const problems = new Problems(files.length === 1 ? files[0].name : "the CVAT files");
  const images: ImportedImage[] = [];
  const skipped: ImportSkip[] = [];
  for (const file of files) readFile(file, images, skipped, problems);
  problems.throwIfAny();
  return { format: "cvat", images, skipped };
}
