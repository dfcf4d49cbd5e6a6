/**
 * CVAT for images 1.1 (XML), as CVAT dumps a task and Datumaro's `cvat` format reads it:
 *
 *   annotations.xml            without a split: every frame
 *   train.xml, val.xml, ...    with a split: one task file per split (Datumaro names the subset after the file)
 *   images/<image name>        the frames, one folder for all splits (CVAT and Datumaro look there)
 *
 *   <annotations><version>1.1</version>
 *     <meta><task><name/><size/><mode>annotation</mode>...<labels><label><name/><attributes/></label>...</labels>
 *     </task><dumped/></meta>
 *     <image id="0" name="reachy-001/2026-11-30/....jpg" width="1920" height="1080">
 *       <box label="person" source="manual" occluded="0" xtl="" ytl="" xbr="" ybr="" z_order="0"></box>
 *       <tag label="door_open" source="manual"></tag>
 *     </image>
 *   </annotations>
 *
 * Boxes are corners in pixels (`xtl = x`, `xbr = x + w`, from `boxPixels`: exact for a box stored in pixels).
 * `source` is CVAT's: `manual` for people's boxes, `file` for imported ones, `auto` for a model's (accepted) box.
 * Whole-frame labels (own and clips') are tags. The labels of the task are the box classes and the tag labels, in
 * class order (ClassList: sorted by name).
 */
import { boxPixels } from "../../catalog/boxes.ts";
import type { Box } from "../../catalog/catalog.ts";
import { type DatasetFrame, decimal, xmlEscape } from "./common.ts";

/** The one task file of an export without a split. */
export const CVAT_DEFAULT_FILE = "annotations.xml";

/** Path of the task file of a split. */
export function cvatAnnotationPath(split: string | null): string {
  return split ? `${split}.xml` : CVAT_DEFAULT_FILE;
}

/** Path of a frame's image (all splits share the folder). */
export function cvatImagePath(frame: Pick<DatasetFrame, "name">): string {
  return `images/${frame.name}`;
}

/** CVAT's `source` of a box. */
export function cvatSource(source: string): string {
  return source === "human" ? "manual" : source === "import" ? "file" : "auto";
}

function box(b: Box): string {
  const { x, y, w, h } = boxPixels(b);
  return `    <box label="${xmlEscape(b.label)}" source="${cvatSource(b.source)}" occluded="0" ` +
    `xtl="${decimal(x)}" ytl="${decimal(y)}" xbr="${decimal(x + w)}" ybr="${decimal(y + h)}" z_order="0">` +
    `</box>\n`;
}

/** The `<image>` element of a frame, `id` its 0-based position in the file. */
export function cvatImage(frame: DatasetFrame, id: number): string {
  return `  <image id="${id}" name="${
    xmlEscape(frame.name)
  }" width="${frame.width}" height="${frame.height}">\n` +
    frame.boxes.map(box).join("") +
    frame.tags.map((t) => `    <tag label="${xmlEscape(t)}" source="manual"></tag>\n`).join("") +
    `  </image>\n`;
}

/** Everything before the first `<image>`: the version and the task's meta (name, size, labels, dates). */
export function cvatHead(
  task: { name: string; size: number; labels: readonly string[]; nowIso: string },
): string {
  const when = task.nowIso.replace("Z", "+00:00");
  const labels = task.labels.map((l) =>
    `        <label>\n          <name>${
      xmlEscape(l)
    }</name>\n          <attributes>\n          </attributes>\n` +
    `        </label>\n`
  ).join("");
  return `<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n` +
    `    <task>\n      <id>0</id>\n      <name>${
      xmlEscape(task.name)
    }</name>\n      <size>${task.size}</size>\n` +
    `      <mode>annotation</mode>\n      <overlap>0</overlap>\n      <bugtracker></bugtracker>\n` +
    `      <created>${when}</created>\n      <updated>${when}</updated>\n` +
    `      <start_frame>0</start_frame>\n      <stop_frame>${Math.max(0, task.size - 1)}</stop_frame>\n` +
    `      <frame_filter></frame_filter>\n      <z_order>False</z_order>\n      <labels>\n${labels}      </labels>\n` +
    `    </task>\n    <dumped>${when}</dumped>\n  </meta>\n`;
}

/** After the last `<image>`. */
export const cvatTail = `</annotations>\n`;

/** A whole task file at once (tests and small exports). */
export function cvatDocument(
  frames: DatasetFrame[],
  task: { name: string; labels: readonly string[]; nowIso: string },
): string {
  return cvatHead({ ...task, size: frames.length }) + frames.map((f, i) => cvatImage(f, i)).join("") +
    cvatTail;
}
