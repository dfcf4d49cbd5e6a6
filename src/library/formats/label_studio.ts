/**
 * Label Studio tasks (JSON) and the labelling config that goes with them:
 *
 *   tasks.json          an array of tasks, one per frame
 *   label_config.xml    `<View>` with `<Image name="image">`, `<RectangleLabels name="label">` (the classes) and,
 *                       when frames have whole-frame labels, `<Choices name="tags" choice="multiple">`
 *
 * A task's image is a URL of frame-bucket's API, `{server}/api/frames/{key}/image` (the key percent-encoded as one
 * segment), so Label Studio shows the frame from whichever tier holds it and no image is copied. `data` also
 * carries `key`, `robot_id`, `capture_time` and `split` (when the export has one).
 *
 *   {"data": {"image": URL, "key", "robot_id", "capture_time"},
 *    "annotations": [{"result": [RECT..., CHOICES], "ground_truth": false}],         accepted boxes and tags
 *    "predictions": [{"model_version": NAME, "score", "result": [RECT...]}]}          a model's unaccepted boxes
 *
 * A rectangle is Label Studio's `rectanglelabels` result: `x`, `y`, `width`, `height` in percent of the image
 * (`boxNormalised` times 100: one conversion), `rotation` 0, `original_width`/`original_height` in pixels, `id`
 * `fb<box id>` (so a re-import can tell frame-bucket's boxes). Boxes people made, imported boxes and accepted
 * model boxes are the annotation; unaccepted model boxes are predictions, one per model, with their scores.
 */
import { boxNormalised } from "../../catalog/boxes.ts";
import type { Box } from "../../catalog/catalog.ts";
import { captureTime, type DatasetFrame, xmlEscape } from "./common.ts";

/** The control names of label_config.xml that results refer to. */
export const LS_IMAGE = "image";
export const LS_RECTANGLES = "label";
export const LS_TAGS = "tags";

export const LS_TASKS_FILE = "tasks.json";
export const LS_CONFIG_FILE = "label_config.xml";

/** The URL frame-bucket serves a frame's JPEG at, for a server at `base` (e.g. `http://127.0.0.1:8080`). */
export function frameImageUrl(base: string, key: string): string {
  return `${base.replace(/\/+$/, "")}/api/frames/${encodeURIComponent(key)}/image`;
}

/** A box as a `rectanglelabels` result. */
export function lsRectangle(box: Box): Record<string, unknown> {
  const { x, y, w, h } = boxNormalised(box);
  return {
    id: `fb${box.id}`,
    type: "rectanglelabels",
    from_name: LS_RECTANGLES,
    to_name: LS_IMAGE,
    original_width: box.imageWidth,
    original_height: box.imageHeight,
    image_rotation: 0,
    value: {
      x: x * 100,
      y: y * 100,
      width: w * 100,
      height: h * 100,
      rotation: 0,
      rectanglelabels: [box.label],
    },
    ...(box.confidence === null ? {} : { score: box.confidence }),
  };
}

/** The whole-frame labels as a `choices` result. */
export function lsChoices(tags: string[]): Record<string, unknown> {
  return { id: "fbtags", type: "choices", from_name: LS_TAGS, to_name: LS_IMAGE, value: { choices: tags } };
}

/** The task of a frame. */
export function lsTask(frame: DatasetFrame, server: string): string {
  const result = [...frame.boxes.map(lsRectangle), ...(frame.tags.length ? [lsChoices(frame.tags)] : [])];
  const byModel = new Map<string, Box[]>();
  for (const b of frame.predictions) {
    const model = b.source.startsWith("model:") ? b.source.slice("model:".length) : b.source;
    byModel.set(model, [...byModel.get(model) ?? [], b]);
  }
  const predictions = [...byModel].map(([model, boxes]) => {
    const scores = boxes.map((b) => b.confidence).filter((c): c is number => c !== null);
    return {
      model_version: model,
      ...(scores.length ? { score: scores.reduce((s, c) => s + c, 0) / scores.length } : {}),
      result: boxes.map(lsRectangle),
    };
  });
  return JSON.stringify({
    data: {
      [LS_IMAGE]: frameImageUrl(server, frame.key),
      key: frame.key,
      robot_id: frame.row.robotId,
      capture_time: captureTime(frame.row),
      ...(frame.split ? { split: frame.split } : {}),
    },
    ...(result.length ? { annotations: [{ result, ground_truth: false }] } : {}),
    ...(predictions.length ? { predictions } : {}),
  });
}

/**
 * The labelling config: the image, the classes as rectangle labels, and the whole-frame labels as multiple
 * choices (left out when there are none). Label Studio needs at least one rectangle label: with no class at all,
 * `fallback` (the label set's labels) is offered instead.
 */
export function lsLabelConfig(
  classes: readonly string[],
  tags: readonly string[],
  fallback: readonly string[] = [],
): string {
  const rect = classes.length ? classes : fallback;
  const lines = [
    `<View>`,
    `  <Image name="${LS_IMAGE}" value="$${LS_IMAGE}" zoom="true"/>`,
    `  <RectangleLabels name="${LS_RECTANGLES}" toName="${LS_IMAGE}">`,
    ...rect.map((c) => `    <Label value="${xmlEscape(c)}"/>`),
    `  </RectangleLabels>`,
  ];
  if (tags.length) {
    lines.push(`  <Choices name="${LS_TAGS}" toName="${LS_IMAGE}" choice="multiple" showInline="true">`);
    for (const t of tags) lines.push(`    <Choice value="${xmlEscape(t)}"/>`);
    lines.push(`  </Choices>`);
  }
  lines.push(`</View>`);
  return lines.join("\n") + "\n";
}
