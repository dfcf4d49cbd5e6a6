/**
 * Label Studio reader: the JSON export of a project (Export -> JSON, or GET /api/projects/{id}/export?exportType=
 * JSON): an array of tasks `{id, data, annotations: [{result, was_cancelled, ground_truth, ...}], predictions}`.
 *
 * The image: `data.key` when present (frame-bucket's export writes it), then the image URL (`data.image`, or the
 * first field holding an image URL or path): frame-bucket's `/api/frames/{key}/image` gives the key, Label
 * Studio's local files `?d=path` the path, any other URL its path, matched by its tail.
 *
 * One annotation per task is imported: the ground truth when one is marked, else the one updated last;
 * cancelled (skipped) annotations never. A task with no annotation says nothing about its frame and is left out
 * (a task whose annotation has no result says the frame has no box). Results:
 * - `rectanglelabels` (or a `rectangle` with a `labels` result of the same id): a box per label, `x`, `y`,
 *   `width`, `height` in percent of the image, stored as fractions (percent / 100); a rotated one is left out;
 * - `choices`: whole-frame labels;
 * - a result id `fb<N>` (our export's) names frame-bucket's box N, so an edited box updates that box;
 * - anything else (polygons, key points, brushes, text) is left out and listed.
 * Predictions (`model_version`, `score`) come in as pre-labels of `model:<model_version>`, unaccepted, with
 * their scores; Label Studio's own project export lists them by id only, and those are left out (noted once).
 * Label Studio's JSON-MIN and CSV exports are refused: export as JSON.
 */
import { BadInputError } from "../../errors.ts";
import {
  checkLabel,
  finite,
  type ImportedBox,
  type ImportedImage,
  type ImportSkip,
  isRecord,
  type ParsedImport,
  Problems,
  show,
} from "./annotations.ts";

const MODEL_CHARS = /[^A-Za-z0-9._-]+/g;
const IMAGE_PATH = /\.(jpe?g|png|bmp|gif|webp|tiff?)(\?|#|$)/i;

/** A model name for `model:NAME` from a Label Studio model_version (invalid characters as '-'). */
export function modelSource(version: unknown): string {
  const name = typeof version === "string" ? version.replace(MODEL_CHARS, "-").replace(/^-+|-+$/g, "") : "";
  return `model:${(name || "label-studio").slice(0, 64)}`;
}

/**
 * The names an image URL gives: frame-bucket's frame key (`/api/frames/{key}/image`), a local-files path
 * (`?d=`), or the URL's path, decoded.
 */
export function urlRefs(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url, "http://relative.invalid/");
  } catch {
    return [url];
  }
  const refs: string[] = [];
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const frame = /\/api\/frames\/([^/]+)\/image\/?$/.exec(parsed.pathname);
  if (frame) refs.push(decode(frame[1]));
  const d = parsed.searchParams.get("d");
  if (d) refs.push(d);
  if (parsed.protocol === "s3:" || parsed.protocol === "gs:" || parsed.protocol === "azure-blob:") {
    refs.push(decode(parsed.pathname.replace(/^\/+/, "")));
  } else if (!frame) refs.push(decode(parsed.pathname));
  return refs.filter((r, i) => r !== "" && refs.indexOf(r) === i);
}

/** The annotation to import from a task's list: the ground truth, else the last updated; null when none. */
function pickAnnotation(
  list: unknown[],
): { annotation: Record<string, unknown>; index: number; of: number } | null {
  const usable = list
    .map((a, index) => ({ a, index }))
    .filter((x): x is { a: Record<string, unknown>; index: number } =>
      isRecord(x.a) && x.a.was_cancelled !== true
    );
  if (usable.length === 0) return null;
  const time = (a: Record<string, unknown>) => {
    const t = Date.parse(String(a.updated_at ?? a.created_at ?? ""));
    return Number.isFinite(t) ? t : -Infinity;
  };
  const truth = usable.filter((x) => x.a.ground_truth === true);
  const pool = truth.length ? truth : usable;
  // The latest; on equal times the later in the list.
  const best = pool.reduce((b, x) => (time(x.a) >= time(b.a) ? x : b));
  return { annotation: best.a, index: best.index, of: usable.length };
}

/** Reads a result list into boxes and tags. */
function readResults(
  results: unknown,
  at: string,
  ref: string,
  source: string | undefined,
  defaultScore: number | null,
  out: { boxes: ImportedBox[]; tags: string[] },
  skipped: ImportSkip[],
  problems: Problems,
): void {
  if (!Array.isArray(results)) {
    problems.add(`${at}: result ${show(results)} must be a list of results`);
    return;
  }
  // A `rectangle` region may get its class from a `labels` result with the same id.
  const labelsById = new Map<string, string[]>();
  for (const r of results) {
    if (isRecord(r) && r.type === "labels" && isRecord(r.value) && Array.isArray(r.value.labels)) {
      labelsById.set(String(r.id), r.value.labels.filter((l): l is string => typeof l === "string"));
    }
  }
  results.forEach((r, i) => {
    const where = `${at} result ${i}${isRecord(r) && r.id !== undefined ? ` (id ${show(r.id)})` : ""}`;
    if (!isRecord(r)) {
      problems.add(`${where}: expected an object {type, value, ...}, got ${show(r)}`);
      return;
    }
    const type = r.type;
    const value = r.value;
    if (type === "choices") {
      if (source) {
        skipped.push({
          ref,
          reason: `${where}: a predicted choice is not a frame label until a person makes it one`,
        });
        return;
      }
      if (!isRecord(value) || !Array.isArray(value.choices)) {
        problems.add(`${where}: a choices result's value needs "choices": [names]`);
        return;
      }
      for (const c of value.choices) {
        if (typeof c !== "string") problems.add(`${where}: choice ${show(c)} must be a name`);
        else if (checkLabel(c, where, problems) && !out.tags.includes(c)) out.tags.push(c);
      }
      return;
    }
    if (type === "labels") return; // read with its rectangle
    if (type !== "rectanglelabels" && type !== "rectangle") {
      skipped.push({ ref, reason: `${where}: a ${show(type)} result is not a box, left out` });
      return;
    }
    if (!isRecord(value)) {
      problems.add(`${where}: value ${show(value)} must be {x, y, width, height, rectanglelabels}`);
      return;
    }
    const labels = type === "rectanglelabels" ? value.rectanglelabels : labelsById.get(String(r.id));
    if (!Array.isArray(labels) || labels.length === 0) {
      if (type === "rectangle") {
        skipped.push({ ref, reason: `${where}: a rectangle without a class (no labels result with its id)` });
      } else problems.add(`${where}: rectanglelabels ${show(labels ?? null)} must name the box's class`);
      return;
    }
    const nums = [value.x, value.y, value.width, value.height];
    if (!nums.every(finite)) {
      problems.add(
        `${where}: x, y, width, height ${show(nums)} must be numbers (percent of the image)`,
      );
      return;
    }
    const [x, y, w, h] = nums as number[];
    if (w < 0 || h < 0) {
      problems.add(`${where}: width ${w} or height ${h} is negative`);
      return;
    }
    const rotation = value.rotation ?? 0;
    if (!finite(rotation) || Math.abs(rotation % 360) > 1e-9) {
      skipped.push({
        ref,
        reason: `${where}: rotated ${show(rotation)} degrees; boxes are upright, left out`,
      });
      return;
    }
    let confidence = defaultScore;
    if (r.score !== undefined && r.score !== null) {
      if (!finite(r.score) || r.score < 0 || r.score > 1) {
        problems.add(`${where}: score ${show(r.score)} must be a number in 0..1`);
        return;
      }
      confidence = r.score;
    }
    const id = typeof r.id === "string" ? /^fb([1-9][0-9]{0,15})$/.exec(r.id) : null;
    for (const label of labels) {
      if (typeof label !== "string") {
        problems.add(`${where}: class ${show(label)} must be a name`);
        continue;
      }
      if (!checkLabel(label, where, problems)) continue;
      out.boxes.push({
        label,
        x: x / 100,
        y: y / 100,
        w: w / 100,
        h: h / 100,
        unit: "norm",
        confidence: source ? confidence : null,
        ...(source ? { source } : {}),
        ...(id && labels.length === 1 ? { boxId: Number(id[1]) } : {}),
        at: where,
      });
    }
  });
}

/** The image URL field of a task's data: `image`, else the first string that looks like an image. */
function imageField(data: Record<string, unknown>): string | null {
  if (typeof data.image === "string" && data.image !== "") return data.image;
  for (const v of Object.values(data)) if (typeof v === "string" && IMAGE_PATH.test(v)) return v;
  return null;
}

/**
 * Parses a Label Studio JSON export (the tasks array; `text` is its parsed JSON). Throws BadInputError naming the
 * file, the task and the value of every problem.
 */
export function parseLabelStudio(json: unknown, file = "Label Studio export"): ParsedImport {
  const tasks = isRecord(json) && Array.isArray(json.tasks) ? json.tasks : json;
  if (!Array.isArray(tasks)) {
    throw new BadInputError(
      `${file} must be Label Studio's JSON export: an array of tasks {data, annotations}, got ${show(json)}`,
    );
  }
  const problems = new Problems(file);
  const images: ImportedImage[] = [];
  const skipped: ImportSkip[] = [];
  let unannotated = 0;
  let predictionIds = 0;
  tasks.forEach((task, i) => {
    const at = `${file} task ${i}${isRecord(task) && task.id !== undefined ? ` (id ${show(task.id)})` : ""}`;
    if (!isRecord(task) || !isRecord(task.data)) {
      if (isRecord(task) && ("annotation_id" in task || "annotator" in task)) {
        throw new BadInputError(
          `${file} is Label Studio's JSON-MIN export, which drops the boxes' ids and sizes: export the project ` +
            `as JSON`,
        );
      }
      problems.add(`${at}: expected a task {data: {image, ...}, annotations: [...]}, got ${show(task)}`);
      return;
    }
    const refs: string[] = [];
    if (typeof task.data.key === "string" && task.data.key !== "") refs.push(task.data.key);
    const url = imageField(task.data);
    if (url) { for (const r of urlRefs(url)) if (!refs.includes(r)) refs.push(r); }
    if (refs.length === 0) {
      problems.add(`${at}: data names no image (no "key", no "image" URL): ${show(task.data)}`);
      return;
    }
    const ref = refs[0];
    const out = { boxes: [] as ImportedBox[], tags: [] as string[] };
    const annotations = task.annotations ?? [];
    if (!Array.isArray(annotations)) {
      problems.add(`${at}: annotations ${show(annotations)} must be a list`);
      return;
    }
    const picked = pickAnnotation(annotations);
    const cancelled = annotations.length - (picked?.of ?? 0);
    if (picked) {
      if (picked.of > 1) {
        skipped.push({
          ref,
          reason: `${at}: ${picked.of} annotations; imported annotations[${picked.index}] (id ${
            show(picked.annotation.id ?? null)
          }, ${
            picked.annotation.ground_truth === true ? "the ground truth" : "updated last"
          }), the others left out`,
        });
      }
      readResults(
        picked.annotation.result ?? [],
        `${at} annotations[${picked.index}]`,
        ref,
        undefined,
        null,
        out,
        skipped,
        problems,
      );
    }
    if (cancelled > 0) {
      skipped.push({ ref, reason: `${at}: ${cancelled} cancelled (skipped) annotation(s) left out` });
    }
    const predictions = task.predictions ?? [];
    if (!Array.isArray(predictions)) {
      problems.add(`${at}: predictions ${show(predictions)} must be a list`);
      return;
    }
    let read = 0;
    predictions.forEach((p, j) => {
      const where = `${at} predictions[${j}]`;
      if (Number.isInteger(p)) {
        // Label Studio's project export lists a task's predictions by id only: nothing to read.
        predictionIds++;
        return;
      }
      if (!isRecord(p)) {
        problems.add(`${where}: expected {model_version, result}, got ${show(p)}`);
        return;
      }
      read++;
      const score = finite(p.score) && p.score >= 0 && p.score <= 1 ? p.score : null;
      readResults(p.result ?? [], where, ref, modelSource(p.model_version), score, out, skipped, problems);
    });
    if (!picked && cancelled === 0) unannotated++;
    if (!picked && read === 0) return;
    images.push({
      refs,
      at,
      width: null,
      height: null,
      boxes: out.boxes,
      tags: out.tags,
      complete: picked !== null,
    });
  });
  problems.throwIfAny();
  if (predictionIds > 0) {
    skipped.push({
      ref: file,
      reason:
        `${predictionIds} prediction(s) given by id only (Label Studio's project export does not include ` +
        `them): left out, the frames' model boxes stay as they are`,
    });
  }
  if (unannotated > 0) {
    skipped.push({
      ref: file,
      reason:
        `${unannotated} task(s) without an annotation: their frames keep their boxes (predictions, if any, ` +
        `are read)`,
    });
  }
  return { format: "label-studio", images, skipped };
}
