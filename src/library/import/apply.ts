/**
 * Applies a parsed dataset file (coco.ts, yolo.ts, cvat.ts, label_studio.ts) to the catalog: matches each image to
 * a frame, then makes the frame's boxes and labels say what the file says, through the LabelStore (every change
 * journalled, undoable).
 *
 * Matching: each name the file gives an image is tried as a frame key, as an image name (the key without
 * `frames/`), as our YOLO export's flat name (`reachy-001__2026-11-30__....jpg`), and by its tail (a path inside
 * an export folder, a URL's path: the shortest tail that is a frame's image name wins, trying the longest
 * first). An image that matches no frame is skipped and listed with the names tried.
 *
 * Boxes get the import's source: `import` unless the caller names another (`model:NAME`: a tool's predictions,
 * unaccepted pre-labels), or the file names one for a box (a Label Studio prediction: `model:<model_version>`).
 * Boxes reaching outside the image are cut to it (prelabels.ts's `clipToImage`); frame sizes are the stored
 * JPEG's (from a box the frame already has, else read from the store), and a file stating another size for an
 * image with pixel boxes is refused for that image (its boxes would land in the wrong place).
 *
 * Idempotent, and a re-import with changes, per frame:
 * - a box of the file equal to a box the frame has (same class and rectangle within 0.01 px, any source) is that
 *   box: nothing changes (a box our export wrote comes back as the same box). When the frame's box is an
 *   unaccepted pre-label and the file's box is not a prediction (someone confirmed it in the other tool), it is
 *   accepted. A box carrying our id is box N, whatever its rectangle and class: a Label Studio result `fb<N>`, a
 *   COCO annotation `id` N whose `attributes.source` is box N's (both as our exports write them);
 * - a box of the file that differs (moved, resized) from a box of the same source and class the frame has is
 *   that box moved: `updateBox` (one `box.update` journal entry each; the box keeps its id, so undo restores it);
 *   pairs are made nearest centre first;
 * - boxes of the file left over are added (`addBoxes`, one `box.add` entry per batch);
 * - boxes of the import's own source(s) the file no longer has on a frame it describes are deleted
 *   (`deleteBoxes`, one `box.delete` entry per batch), after the additions (an interruption leaves a box too many,
 *   never too few, and running the import again finishes the job). Boxes of other sources (people's, other
 *   models') are never deleted by an import.
 * So importing the same file twice changes nothing the second time, and importing an edited file replaces that
 * source's boxes on the frames it names, leaving the frames it does not name alone.
 *
 * Whole-frame labels (CVAT tags, Label Studio choices, our COCO export's `labels`) are added to the frame's own
 * labels when the frame has them neither as its own nor from a clip it lies in (`addLabels`, one `label.add`
 * entry per label and chunk of frames). Labels carry no source, so an
 * import never takes one off: a label dropped in the other tool stays (take it off in frame-bucket).
 *
 * In strict mode every class and label the file names must be in the label set, checked before anything is
 * written. A dry run does the matching and the planning and writes nothing.
 */
import { mapLimited } from "../../map_limited.ts";
import { boxPixels, checkSource, isModelSource } from "../../catalog/boxes.ts";
import type { Box, BoxInput, BoxUnit, ChangeBy, FrameRow, LabelStore } from "../../catalog/catalog.ts";
import { notInLabelSet } from "../../catalog/rules.ts";
import { BadInputError } from "../../errors.ts";
import { keyOfFlatName } from "../formats/yolo.ts";
import { FRAMES_PREFIX, keyOfImage } from "../image_names.ts";
import type { ImageSize } from "../image_size.ts";
import { clipToImage } from "../prelabels.ts";
import type { ImportedBox, ImportedImage, ImportSkip, ParsedImport } from "./annotations.ts";

/** Two boxes are the same when every edge is within this many pixels (CVAT writes two decimals). */
export const SAME_BOX_PX = 0.01;

/** What `applyImport` needs: the catalog, a frame's size, the label store. The server and the CLI pass theirs. */
export interface ApplyDeps {
  /** The catalog row of a frame; null when the catalog has none. */
  frame(key: string): Promise<FrameRow | null>;
  /**
   * The frame's pixel size from its stored JPEG; null when no store holds it. BadInputError when the bytes are
   * not a readable JPEG (the frame is skipped); anything else stops the import.
   */
  imageSize(row: FrameRow): Promise<ImageSize | null>;
  store: Pick<
    LabelStore,
    | "addBoxes"
    | "updateBox"
    | "deleteBoxes"
    | "acceptBoxes"
    | "boxesOf"
    | "addLabels"
    | "labelsOf"
    | "list"
    | "limits"
  >;
  /** The key prefix image names are relative to (rustfs.prefix; default `frames/`). */
  prefix?: string;
}

export interface ApplyOptions {
  /** Source of the boxes: `import` (default) or `model:NAME`. */
  source?: string;
  author?: string | null;
  /** Plan only: count what would change, write nothing. */
  dryRun?: boolean;
  /** Boxes per addBoxes/deleteBoxes call (one transaction and journal entry each; default 500). */
  batchSize?: number;
  /** Frames looked up and sized at once (default 8). */
  concurrency?: number;
  /** Called after each chunk of frames, and at the end. */
  progress?: (p: ApplyProgress) => void;
  nowMs?: number;
}

export interface ApplyProgress {
  /** Frames done so far of `totalFrames` matched. */
  framesDone: number;
  totalFrames: number;
  added: number;
  updated: number;
  deleted: number;
}

export interface ApplySummary {
  format: string;
  dryRun: boolean;
  /** Images in the file(s). */
  images: number;
  /** Frames they matched. */
  frames: number;
  /** Boxes written new, moved or relabelled (updated), deleted, accepted, and found as they were. */
  added: number;
  updated: number;
  deleted: number;
  accepted: number;
  unchanged: number;
  /** Boxes cut to their image. */
  clipped: number;
  /** (frame, label) pairs added. */
  labels: number;
  skipped: ImportSkip[];
}

/** One box of the file as it will be stored: clipped, with its effective source. */
interface Incoming {
  box: ImportedBox;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  unit: BoxUnit;
  confidence: number | null;
  source: string;
}

/** What to do on one frame. */
export interface FramePlan {
  add: BoxInput[];
  update: {
    id: number;
    label?: string;
    rect?: { x: number; y: number; w: number; h: number; unit: BoxUnit };
    accepted?: boolean;
  }[];
  accept: number[];
  delete: number[];
  unchanged: number;
}

/**
 * The names to try for an image, most specific first: the flat YOLO name, the name as a key or image name, then
 * its tails (dropping leading folders), each as a key. Names that climb out (`..`) give nothing.
 */
export function candidateKeys(ref: string, prefix = FRAMES_PREFIX): string[] {
  const out: string[] = [];
  const push = (k: string | null) => {
    if (k !== null && !out.includes(k)) out.push(k);
  };
  const name = ref.trim().replaceAll("\\", "/");
  push(keyOfFlatName(name, prefix));
  const asKey = (s: string) => {
    try {
      return keyOfImage(s, prefix);
    } catch (error) {
      if (error instanceof BadInputError) return null;
      throw error;
    }
  };
  push(asKey(name));
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  for (let i = 1; i < parts.length - 1; i++) push(asKey(parts.slice(i).join("/")));
  return out;
}

function edges(b: { x: number; y: number; w: number; h: number; unit: BoxUnit }, size: ImageSize) {
  const p = boxPixels({ ...b, imageWidth: size.width, imageHeight: size.height });
  return [p.x, p.y, p.x + p.w, p.y + p.h];
}

function sameRect(a: number[], b: number[]): boolean {
  return a.every((v, i) => Math.abs(v - b[i]) <= SAME_BOX_PX);
}

/**
 * Plans one frame: which of the file's boxes are boxes the frame has (unchanged, or to accept), which move a box
 * of the same source and class, which are new; which of the frame's boxes of `scope` sources go. Pure.
 */
export function planFrame(
  key: string,
  existing: Box[],
  incoming: Incoming[],
  size: ImageSize,
  scope: ReadonlySet<string>,
): FramePlan {
  const plan: FramePlan = { add: [], update: [], accept: [], delete: [], unchanged: 0 };
  const left = new Map(existing.map((b) => [b.id, b]));
  const existingEdges = new Map(existing.map((b) => [b.id, edges(b, size)]));
  const pending: { inc: Incoming; e: number[] }[] = [];
  const confirm = (b: Box, inc: Incoming) => {
    if (!b.accepted && !isModelSource(inc.source)) plan.accept.push(b.id);
    else plan.unchanged++;
  };
  // Our ids first (a Label Studio box our export wrote), then equal boxes, preferring the same source.
  const rest: Incoming[] = [];
  for (const inc of incoming) {
    const byId = inc.box.boxId !== undefined ? left.get(inc.box.boxId) : undefined;
    const b = byId && (inc.box.boxIdSource === undefined || byId.source === inc.box.boxIdSource)
      ? byId
      : undefined;
    if (!b) {
      rest.push(inc);
      continue;
    }
    left.delete(b.id);
    const e = edges(inc, size);
    const moved = !sameRect(existingEdges.get(b.id)!, e);
    const relabelled = b.label !== inc.label;
    const accept = !b.accepted && !isModelSource(inc.source);
    if (!moved && !relabelled) confirm(b, inc);
    else {
      plan.update.push({
        id: b.id,
        ...(relabelled ? { label: inc.label } : {}),
        ...(moved ? { rect: { x: inc.x, y: inc.y, w: inc.w, h: inc.h, unit: inc.unit } } : {}),
        ...(accept ? { accepted: true } : {}),
      });
    }
  }
  for (const inc of rest) {
    const e = edges(inc, size);
    let match: Box | undefined;
    for (const b of left.values()) {
      if (b.label !== inc.label || !sameRect(existingEdges.get(b.id)!, e)) continue;
      if (b.source === inc.source) {
        match = b;
        break;
      }
      match ??= b;
    }
    if (match) {
      left.delete(match.id);
      confirm(match, inc);
    } else pending.push({ inc, e });
  }
  // Moved boxes: a leftover of the file and a leftover box of the same source and class, nearest centres first.
  const movable = [...left.values()].filter((b) => scope.has(b.source));
  const pairs: { d: number; p: number; b: Box }[] = [];
  pending.forEach(({ inc, e }, p) => {
    for (const b of movable) {
      if (b.label !== inc.label || b.source !== inc.source) continue;
      const o = existingEdges.get(b.id)!;
      const d = Math.hypot((e[0] + e[2]) / 2 - (o[0] + o[2]) / 2, (e[1] + e[3]) / 2 - (o[1] + o[3]) / 2);
      pairs.push({ d, p, b });
    }
  });
  pairs.sort((a, b) => a.d - b.d || a.p - b.p || a.b.id - b.b.id);
  const paired = new Set<number>();
  for (const { p, b } of pairs) {
    if (paired.has(p) || !left.has(b.id)) continue;
    paired.add(p);
    left.delete(b.id);
    const inc = pending[p].inc;
    plan.update.push({ id: b.id, rect: { x: inc.x, y: inc.y, w: inc.w, h: inc.h, unit: inc.unit } });
  }
  pending.forEach(({ inc }, p) => {
    if (paired.has(p)) return;
    plan.add.push({
      key,
      label: inc.label,
      x: inc.x,
      y: inc.y,
      w: inc.w,
      h: inc.h,
      unit: inc.unit,
      imageWidth: size.width,
      imageHeight: size.height,
      confidence: inc.confidence,
      source: inc.source,
    });
  });
  for (const b of left.values()) if (scope.has(b.source)) plan.delete.push(b.id);
  return plan;
}

/** A frame and everything the file says about it (several images of the file may name one frame). */
interface FrameWork {
  key: string;
  row: FrameRow;
  images: ImportedImage[];
}

const DEFAULT_BATCH = 500;
const DEFAULT_CONCURRENCY = 8;
/** Frames planned and written together. */
const CHUNK = 256;

/**
 * Applies a parsed import (see the module doc). Returns what changed and what was skipped. A store failure stops
 * it (what was written stays; running it again completes it, adding nothing twice).
 */
export async function applyImport(
  deps: ApplyDeps,
  parsed: ParsedImport,
  options: ApplyOptions = {},
): Promise<ApplySummary> {
  const source = checkSource(options.source ?? "import");
  if (source === "human") {
    throw new BadInputError(
      'an import\'s source is "import" or "model:NAME", not "human": a re-import replaces its own source\'s ' +
        "boxes, and people's boxes are never replaced",
    );
  }
  const prefix = deps.prefix ?? FRAMES_PREFIX;
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
  const dryRun = options.dryRun ?? false;
  const by: ChangeBy = { author: options.author ?? null, nowMs: options.nowMs };
  const summary: ApplySummary = {
    format: parsed.format,
    dryRun,
    images: parsed.images.length,
    frames: 0,
    added: 0,
    updated: 0,
    deleted: 0,
    accepted: 0,
    unchanged: 0,
    clipped: 0,
    labels: 0,
    skipped: [...parsed.skipped],
  };

  // Strict mode: every class and label known, before anything is written.
  if (deps.store.limits.strict) {
    const known = new Set((await deps.store.list()).map((l) => l.name));
    for (const image of parsed.images) {
      for (const name of [...image.boxes.map((b) => b.label), ...image.tags]) {
        if (!known.has(name)) throw notInLabelSet(name, [...known]);
      }
    }
  }

  // Images to frames.
  const rows = new Map<string, Promise<FrameRow | null>>();
  const lookup = (key: string) => {
    let row = rows.get(key);
    if (!row) rows.set(key, row = deps.frame(key));
    return row;
  };
  const matched = await mapLimited(
    parsed.images,
    options.concurrency ?? DEFAULT_CONCURRENCY,
    async (image) => {
      const tried: string[] = [];
      for (const ref of image.refs) {
        for (const key of candidateKeys(ref, prefix)) {
          if (tried.includes(key)) continue;
          tried.push(key);
          const row = await lookup(key);
          if (row) return { image, row };
        }
      }
      return { image, tried };
    },
  );
  const byKey = new Map<string, FrameWork>();
  for (const m of matched) {
    if ("tried" in m) {
      const shown = m.tried!.slice(0, 4).join(", ") + (m.tried!.length > 4 ? ", …" : "");
      summary.skipped.push({
        ref: m.image.refs[0],
        reason: `${m.image.at}: no frame in the catalog matches (tried ${shown || "nothing"})`,
      });
      continue;
    }
    let work = byKey.get(m.row!.key);
    if (!work) byKey.set(m.row!.key, work = { key: m.row!.key, row: m.row!, images: [] });
    work.images.push(m.image);
  }
  const frames = [...byKey.values()];
  summary.frames = frames.length;

  const toAdd: BoxInput[] = [];
  const toDelete: number[] = [];
  const flush = async (all: boolean) => {
    while (toAdd.length >= (all ? 1 : batchSize)) {
      const batch = toAdd.splice(0, batchSize);
      if (!dryRun) await deps.store.addBoxes(batch, by);
      summary.added += batch.length;
    }
    // Deletions only once the additions before them are written.
    if (toAdd.length === 0) {
      while (toDelete.length >= (all ? 1 : batchSize)) {
        const batch = toDelete.splice(0, batchSize);
        if (!dryRun) await deps.store.deleteBoxes(batch, by);
        summary.deleted += batch.length;
      }
    }
  };
  let framesDone = 0;
  const report = () =>
    options.progress?.({
      framesDone,
      totalFrames: frames.length,
      added: summary.added,
      updated: summary.updated,
      deleted: summary.deleted,
    });

  for (let start = 0; start < frames.length; start += CHUNK) {
    const part = frames.slice(start, start + CHUNK);
    const existing = await deps.store.boxesOf(part.map((f) => f.key));
    const sized = await mapLimited(part, options.concurrency ?? DEFAULT_CONCURRENCY, async (f) => {
      // A box the frame has carries the stored JPEG's size (read when it was made): no need to read it again.
      const known = existing.get(f.key)?.[0];
      if (known) return { f, size: { width: known.imageWidth, height: known.imageHeight } as ImageSize };
      try {
        const size = await deps.imageSize(f.row);
        return size ? { f, size } : { f, reason: `no store holds the JPEG of ${f.key}` };
      } catch (error) {
        if (!(error instanceof BadInputError)) throw error;
        return { f, reason: `the JPEG of ${f.key} is unreadable: ${error.message}` };
      }
    });
    const tagged = sized.filter((s) => s.size && s.f.images.some((i) => i.tags.length));
    // A frame's labels as an export writes them: its own and those of clips it lies in (labelsOf gives both; a
    // clip's label added again as the frame's own would make a re-import of our export change something).
    const ownLabels = new Map(
      await mapLimited(
        tagged,
        options.concurrency ?? DEFAULT_CONCURRENCY,
        async (s) => [s.f.key, new Set(await deps.store.labelsOf(s.f.key))] as const,
      ),
    );
    const labelKeys = new Map<string, string[]>();
    const accept: number[] = [];
    const updates: FramePlan["update"] = [];
    for (const s of sized) {
      framesDone++;
      const { f } = s;
      if (!s.size) {
        summary.skipped.push({ ref: f.images[0].refs[0], reason: `${f.images[0].at}: ${s.reason}` });
        continue;
      }
      const size = s.size;
      const incoming: Incoming[] = [];
      const scope = new Set<string>();
      const tags = new Set<string>();
      for (const image of f.images) {
        const hasPixels = image.boxes.some((b) => b.unit === "px");
        if (
          hasPixels && image.width !== null &&
          (image.width !== size.width || image.height !== size.height)
        ) {
          summary.skipped.push({
            ref: image.refs[0],
            reason:
              `${image.at}: the file says ${image.width}x${image.height} but the stored JPEG of ${f.key} is ` +
              `${size.width}x${size.height}; its pixel boxes would land in the wrong place, so the image is left out`,
          });
          continue;
        }
        if (image.complete !== false) scope.add(source);
        for (const t of image.tags) tags.add(t);
        for (const b of image.boxes) {
          const boxSource = b.source ?? source;
          if (b.source) scope.add(b.source);
          const clipped = clipToImage(b, size);
          if (!clipped) {
            summary.skipped.push({
              ref: image.refs[0],
              reason: `${b.at}: ${b.label} ${b.x},${b.y} ${b.w}x${b.h} ${b.unit} has no area inside the ` +
                `${size.width}x${size.height} image, left out`,
            });
            continue;
          }
          if (clipped.x !== b.x || clipped.y !== b.y || clipped.w !== b.w || clipped.h !== b.h) {
            summary.clipped++;
          }
          incoming.push({
            box: b,
            label: b.label,
            ...clipped,
            unit: b.unit,
            confidence: b.confidence,
            source: boxSource,
          });
        }
      }
      const plan = planFrame(f.key, existing.get(f.key) ?? [], incoming, size, scope);
      summary.unchanged += plan.unchanged;
      toAdd.push(...plan.add);
      toDelete.push(...plan.delete);
      accept.push(...plan.accept);
      updates.push(...plan.update);
      if (tags.size) {
        const own = ownLabels.get(f.key);
        for (const t of tags) {
          if (own?.has(t)) continue;
          let keys = labelKeys.get(t);
          if (!keys) labelKeys.set(t, keys = []);
          keys.push(f.key);
        }
      }
    }
    await flush(false);
    for (const u of updates) {
      if (!dryRun) {
        await deps.store.updateBox(u.id, { label: u.label, rect: u.rect, accepted: u.accepted }, by);
      }
      summary.updated++;
    }
    for (let i = 0; i < accept.length; i += batchSize) {
      const ids = accept.slice(i, i + batchSize);
      if (!dryRun) await deps.store.acceptBoxes({ ids }, by);
      summary.accepted += ids.length;
    }
    for (const [label, keys] of labelKeys) {
      summary.labels += dryRun ? keys.length : await deps.store.addLabels({ keys }, [label], by);
    }
    report();
  }
  await flush(true);
  report();
  return summary;
}
