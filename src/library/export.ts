/**
 * Export of the frames of a search, a clip or a collection (src/library/export_selection.ts) as a dataset, in one
 * of five formats (src/library/formats/ writes each), or as a video or a robotics log (MP4 and MCAP:
 * src/library/export_media.ts, planned here like the others):
 *
 * - `imagefolder` (image classification; the default): `<label folder>/<robot>_<time>_<seq>.jpg`, one folder per
 *   requested label, and `metadata.jsonl` (formats/image_folder.ts). Needs at least one label.
 * - `coco`: `images/<split>/<image name>` and `annotations/instances_<split>.json` (formats/coco.ts).
 * - `yolo`: the Ultralytics layout, `images/<split>/`, `labels/<split>/*.txt`, `data.yaml` (formats/yolo.ts).
 * - `cvat`: CVAT for images 1.1, `images/<image name>` and one task XML per split (formats/cvat.ts).
 * - `label-studio`: `tasks.json` whose images are frame-bucket URLs, and `label_config.xml`
 *   (formats/label_studio.ts); no image is copied, so no store is read.
 *
 * Which frames: the same filter as search (src/library/search.ts): labels (any, or all with `allLabels`), robots,
 * time span, tiers, review status; so a search and an export of the same filter give the same frames. The box
 * formats take a filter without labels too (every matching frame, with boxes or without: a frame without boxes is
 * a negative). Labels pick frames; every accepted box of a picked frame is written, whatever its class (a box left
 * out would teach a detector that its object is background). Boxes a model proposed and nobody accepted yet are
 * left out of COCO, YOLO and CVAT (counted in the summary as `unaccepted`) and written as predictions for Label
 * Studio. Whole-frame labels (the frame's own and its clips') go where the format has a place for them: COCO
 * image `labels`, CVAT tags, Label Studio choices.
 *
 * Classes and ids: the classes of the boxes in the export (or, with `classes: "all"`, every label of the catalog,
 * so ids stay the same from one export to the next), sorted by name (code point order); COCO category ids from 1,
 * YOLO ids from 0. Image names are `imageName(key)` (the key without `frames/`: robot and day stay folders),
 * flattened with `__` for YOLO, whose readers want the images right inside `images/<split>/`.
 *
 * Splits (`split`: src/library/split.ts): train/val(/test) by robot and time block, a clip's frames kept together,
 * deterministic from a seed. The box formats make two passes over the catalog: the first (no store is read)
 * collects the classes and plans the split; the second fetches and writes.
 *
 * An export never looks complete when it is not:
 * - A store that fails (unreachable, an error other than "no such object") is retried twice (0.5 s, then 2 s);
 *   if it still fails, the export fails. A frame that cannot be read before any output exists fails the export
 *   before anything is written (the HTTP API answers 502 before the first byte); later, it aborts: a partial tar
 *   or directory is removed (the HTTP stream is cut, which clients see as an error).
 * - A frame whose object no store holds (the store answered, and has no such object) is left out (with its
 *   boxes) and listed in `MISSING.txt` (key, robot, capture time, tier), the last entry; callers report the count
 *   (the CLI exits 1).
 * - When no matching frame can be read at all, the export fails instead of writing an empty dataset.
 *
 * The output is a directory (it must be empty or new; created when the first frame arrives) or, for a path ending
 * in `.tar`, a POSIX tar written here block by block (to `<file>.partial`, renamed when complete). Paths that do
 * not fit the ustar header (over 100/155 bytes) or are not ASCII get a PAX extended header (`path`, UTF-8), which
 * GNU tar, bsdtar, 7-Zip and Python's tarfile read. Memory stays bounded: frames are read from the catalog a page
 * at a time and fetched (a few ahead, READ_AHEAD, so store latency overlaps), written and dropped one at a time;
 * the JSON and XML documents, metadata and the missing list are spooled to temporary files (the pieces of each
 * document apart) and appended at the end, so 100,000 frames need no more memory than 100.
 *
 * Frames come from `fetch(key, row)`, so the HTTP layer can pass its own; `tierFetcher` is the usual one (the
 * local store, or the archive at `aws_s3.prefix + key` for archived frames, each falling back to the other). A
 * fetch resolves null for "no store holds it" and throws for "a store failed".
 */
import type { Box, Catalog, FrameRow, ReviewStatus, Tier } from "../catalog/catalog.ts";
import { BadInputError, messageOf, ServiceError } from "../errors.ts";
import type { StoragePlugin } from "../plugin.ts";
import { readFrame } from "../store/tiers.ts";
import { imageName } from "./image_names.ts";
import { jpegSize } from "./image_size.ts";
import { countFrames, MAX_LIMIT, type SearchFilter, searchFrames, type SearchHit } from "./search.ts";
import { type SplitName, SplitPlan, SplitPlanner, type SplitSpec } from "./split.ts";
import { ClassList, type DatasetFrame } from "./formats/common.ts";
import {
  describeSelection,
  type ExportPart,
  type ExportSelection,
  mergedParts,
  resolveSelection,
  videoParts,
} from "./export_selection.ts";
import { exportFileName, labelFolder, metadataRecord } from "./formats/image_folder.ts";
import {
  cocoAnnotation,
  cocoAnnotationPath,
  cocoHead,
  cocoImage,
  cocoImagePath,
  cocoMiddle,
  cocoTail,
} from "./formats/coco.ts";
import { dataYaml, flatImageName, yoloImagePath, yoloLabelPath, yoloLabels } from "./formats/yolo.ts";
import { cvatAnnotationPath, cvatHead, cvatImage, cvatImagePath, cvatTail } from "./formats/cvat.ts";
import { LS_CONFIG_FILE, LS_TASKS_FILE, lsLabelConfig, lsTask } from "./formats/label_studio.ts";

export { exportFileName, labelFolder, metadataRecord };

export type FetchFrame = (key: string, row: FrameRow) => Promise<Uint8Array | null>;

/** The formats, as `--format` and `format=` name them. */
export const EXPORT_FORMATS = ["imagefolder", "coco", "yolo", "cvat", "label-studio", "mp4", "mcap"] as const;
export type ExportFormat = typeof EXPORT_FORMATS[number];
/** The formats that write one video or log file instead of a dataset (src/library/export_media.ts). */
export const MEDIA_FORMATS: readonly ExportFormat[] = ["mp4", "mcap"];
export const isMediaFormat = (f: ExportFormat): f is "mp4" | "mcap" => f === "mp4" || f === "mcap";

/** Checks a format name (default imagefolder). */
export function checkFormat(format: string | undefined | null): ExportFormat {
  if (format === undefined || format === null || format === "") return "imagefolder";
  const f = format.toLowerCase().replace(/_/g, "-");
  if ((EXPORT_FORMATS as readonly string[]).includes(f)) return f as ExportFormat;
  if (f === "labelstudio" || f === "ls") return "label-studio";
  if (f === "image-folder") return "imagefolder";
  throw new BadInputError(
    `export format ${JSON.stringify(format)} is unknown: use one of ${EXPORT_FORMATS.join(", ")}`,
  );
}

/** Which frames to export: search's filter. The ImageFolder layout needs at least one label (its folders). */
export interface ExportFilter {
  /** Labels: a frame matching any (all, with `allLabels`) is exported; ImageFolder: one folder per label. */
  labels?: string[];
  /** True: only frames with every one of the labels (as search's all_labels). */
  allLabels?: boolean;
  robots?: string[];
  fromMs?: number;
  toMs?: number;
  /** Only frames in these tiers. */
  tiers?: Tier[];
  /** Only frames whose review status is one of these (e.g. only reviewed frames). */
  status?: ReviewStatus[];
  /** Only the frames of this clip (its robot and span; not with robots, fromMs, toMs). */
  clip?: number;
  /** Only the frames of this collection's clips (not with robots, fromMs, toMs). */
  collection?: number;
}

/** What kind of dataset: format, split, classes, and where Label Studio finds the images. */
export interface DatasetOptions {
  /** Default imagefolder. */
  format?: ExportFormat;
  /** A train/val(/test) split; none: one set (COCO `default`, YOLO `train`, CVAT `annotations.xml`). */
  split?: SplitSpec | null;
  /** "used" (default): the classes of the exported boxes; "all": every label of the catalog. */
  classes?: "used" | "all";
  /** Label Studio: the frame-bucket server its image URLs point at, e.g. `http://127.0.0.1:8080`. */
  server?: string;
  /** MP4: frames per second of a fixed-rate video (frames held until the next); none: capture times (VFR). */
  fps?: number | null;
}

export interface ExportOptions extends ExportFilter, DatasetOptions {
  /** Where a frame's bytes come from. */
  fetch: FetchFrame;
  /** Called about once a second and at the end. */
  progress?: (p: ExportProgress) => void;
  /** Called for a frame that no store holds (it is left out, counted as missing and listed in MISSING.txt). */
  onMissing?: (row: FrameRow) => void;
  /** Clock for tar entry times of folders and documents (default: now). */
  nowMs?: number;
  /** Waits before the 2nd, 3rd, ... attempt of a failing fetch (default 500, 2000 ms). */
  retryDelaysMs?: number[];
  /** Frames fetched ahead of the one being written (default READ_AHEAD; 0: one at a time). */
  readAhead?: number;
}

/** How far an export is. */
export interface ExportCounts {
  /** Frames handled (written or found missing). */
  frames: number;
  /** Frames matching when the export started. */
  total: number;
  /** Image files written (ImageFolder: a frame in two label folders counts twice). */
  files: number;
  /** JPEG bytes written. */
  bytes: number;
  missing: number;
  /** Keys of the first missing frames (at most 20; MISSING.txt lists them all). */
  missingKeys: string[];
  /** Boxes written (ground truth; Label Studio: annotations and predictions). */
  boxes: number;
  /** Model boxes left out because nobody accepted them (COCO, YOLO, CVAT). */
  unaccepted: number;
  /** ImageFolder: files per label. */
  perLabel: Record<string, number>;
  /** Frames written per split (without a split: under the format's one set's name). */
  perSplit: Record<string, number>;
}

export interface ExportProgress extends ExportCounts {
  elapsedMs: number;
}

export interface ExportSummary extends ExportProgress {
  /** The directory or tar file written. */
  out: string;
  /** How it was written (MP4 and MCAP: one file). */
  as: "dir" | "tar" | "file";
  format: ExportFormat;
  /** Class names in id order (box formats). */
  classes: string[];
  /** MP4: the sidecar JSON's path, the frames in the video and its duration. */
  sidecar?: string;
  videoFrames?: number;
  durationMs?: number;
}

/** What an export writes, worked out (and checked) before anything is fetched. */
export interface ExportPlan {
  format: ExportFormat;
  /** The requested labels, each once, in the order given. */
  labels: string[];
  /** ImageFolder: the folder of each label. */
  folders: Map<string, string>;
  filter: SearchFilter;
  /** The clip or collection exported (kind "search" for neither). */
  selection: ExportSelection;
  /** The spans read, in order: one for a search; per clip or merged spans for a clip or collection. */
  parts: ExportPart[];
  /** MP4: a fixed frame rate, or null for capture times. */
  fps: number | null;
  /** Frames matching when the plan was made (MP4: counted once per part they are in). */
  total: number;
  /** Box formats: the classes with their ids. */
  classes: ClassList;
  /** Box formats: the whole-frame labels met by the planning pass, sorted. */
  tags: string[];
  split: SplitPlan | null;
  /** Label Studio: the server of the image URLs. */
  server: string | null;
  /** Label Studio: the label set, offered as rectangle labels when no box has a class. */
  labelSet: string[];
}

/** Name of the list of left-out frames, the last entry of an incomplete export. */
export const MISSING_FILE = "MISSING.txt";
export const METADATA_FILE = "metadata.jsonl";
const DEFAULT_RETRY_DELAYS_MS = [500, 2000];

const encoder = new TextEncoder();

/** Whole-frame labels of a hit: its own and those of the clips it lies in (box classes are not), sorted. */
export function frameTags(hit: SearchHit): string[] {
  return [...new Set([...hit.directLabels, ...hit.clips.flatMap((c) => c.labels)])].sort((a, b) =>
    a < b ? -1 : a > b ? 1 : 0
  );
}

/** The split planner's view of a hit. */
const splitFrame = (hit: SearchHit) => ({
  robotId: hit.frame.robotId,
  timestampMs: hit.frame.timestampMs,
  clipIds: hit.clips.map((c) => c.id),
});

/** Every page of a search, oldest first (the catalog read a page at a time). */
async function* searchPages(catalog: Catalog, filter: SearchFilter): AsyncGenerator<SearchHit[]> {
  let cursor: string | null = null;
  do {
    const page = await searchFrames(catalog, { ...filter, order: "oldest", limit: MAX_LIMIT, cursor });
    cursor = page.nextCursor;
    yield page.hits;
  } while (cursor);
}

/** Every page of every part of a plan, in order, with the part's index. */
async function* planPages(
  catalog: Catalog,
  parts: ExportPart[],
): AsyncGenerator<{ hits: SearchHit[]; part: number }> {
  for (let part = 0; part < parts.length; part++) {
    for await (const hits of searchPages(catalog, parts[part].filter)) yield { hits, part };
  }
}

/**
 * Checks an export's filter and options and works out what it writes. ImageFolder: at least one label, no two
 * folders that differ only in case, every folder name within 255 bytes. Box formats: a first pass over the
 * matching frames (catalog only) collects the classes and whole-frame labels and plans the split. Unknown labels
 * are refused (as search refuses them).
 */
export async function planExport(
  catalog: Catalog,
  filter: ExportFilter,
  options: DatasetOptions = {},
): Promise<ExportPlan> {
  const format = checkFormat(options.format);
  const media = isMediaFormat(format);
  const labels = [...new Set(filter.labels ?? [])];
  const fps = options.fps ?? null;
  if (fps !== null && (format !== "mp4" || !(fps > 0 && fps <= 120))) {
    throw new BadInputError(
      format !== "mp4"
        ? `a frame rate (fps ${fps}) is for MP4 only: leave it out or export --format mp4`
        : `fps ${fps} is not a frame rate: give one from 0 (exclusive) to 120, or none for capture times`,
    );
  }
  if (format === "imagefolder" && labels.length === 0) {
    throw new BadInputError("name at least one label to export");
  }
  if (format === "label-studio" && !options.server) {
    throw new BadInputError(
      "a Label Studio export needs the frame-bucket server its image URLs point at (--server URL, e.g. " +
        "http://127.0.0.1:8080)",
    );
  }
  const search: SearchFilter = {
    labels,
    allLabels: filter.allLabels ?? false,
    robots: filter.robots,
    fromMs: filter.fromMs,
    toMs: filter.toMs,
    tiers: filter.tiers,
    ...(filter.status?.length ? { status: filter.status } : {}),
  };
  const selection = await resolveSelection(catalog, search, filter);
  if (media && options.split) throw new BadInputError(`${format} writes one file: leave out the split`);
  const parts = format === "mp4"
    ? await videoParts(catalog, search, selection)
    : mergedParts(search, selection);
  let total = 0;
  if (parts.length === 0) await countFrames(catalog, search); // checks that the labels exist
  for (const part of parts) total += await countFrames(catalog, part.filter); // also checks the labels
  const folders = format === "imagefolder" ? labelFolders(labels) : new Map<string, string>();
  const needsPass = !media && (format !== "imagefolder" || Boolean(options.split));
  const planner = options.split ? new SplitPlanner(options.split) : null;
  const classNames = new Set<string>();
  const tags = new Set<string>();
  if (needsPass) {
    for await (const { hits } of planPages(catalog, parts)) {
      for (const hit of hits) {
        planner?.add(splitFrame(hit));
        for (const b of hit.boxes) {
          // Label Studio writes unaccepted boxes too (as predictions), so their classes are in its config.
          if (b.accepted || format === "label-studio") classNames.add(b.label);
        }
        for (const t of frameTags(hit)) tags.add(t);
      }
    }
  }
  let labelSet: string[] = [];
  if (options.classes === "all" || format === "label-studio") {
    labelSet = (await catalog.labels().list()).map((l) => l.name);
    if (options.classes === "all") { for (const l of labelSet) classNames.add(l); }
  }
  return {
    format,
    labels,
    folders,
    filter: search,
    selection,
    parts,
    fps,
    total,
    classes: new ClassList(format === "imagefolder" ? [] : classNames),
    tags: [...tags].sort(),
    split: planner ? planner.plan() : null,
    server: options.server ?? null,
    labelSet,
  };
}

/** The folder of each label; refuses names too long once escaped and labels that differ only in case. */
function labelFolders(labels: string[]): Map<string, string> {
  const folders = new Map<string, string>();
  const byFolded = new Map<string, string>();
  for (const label of labels) {
    const folder = labelFolder(label);
    const bytes = encoder.encode(folder).length;
    if (bytes > 255) {
      throw new BadInputError(
        `label ${
          JSON.stringify(label)
        } makes a folder name of ${bytes} bytes once escaped (file systems take ` +
          `255): rename the label (deno task label rename, or POST /api/labels/rename)`,
      );
    }
    const folded = folder.toUpperCase();
    const other = byFolded.get(folded);
    if (other !== undefined) {
      throw new BadInputError(
        `labels ${JSON.stringify(other)} and ${
          JSON.stringify(label)
        } differ only in case, so their folders ` +
          `would be one on Windows and macOS: export them separately, or merge one into the other`,
      );
    }
    byFolded.set(folded, label);
    folders.set(label, folder);
  }
  return folders;
}

// ------------------------------------------------------------------------------------------------- fetching

/**
 * Fetches a frame, trying again after each of `delaysMs` when the fetch throws. Resolves null when no store holds
 * the frame; throws a ServiceError naming the frame when every attempt failed.
 */
async function fetchSteadily(
  fetch: FetchFrame,
  row: FrameRow,
  delaysMs: number[],
  position: string,
): Promise<Uint8Array | null> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fetch(row.key, row);
    } catch (error) {
      if (attempt >= delaysMs.length) {
        throw new ServiceError(
          error instanceof ServiceError ? error.service : "s3",
          `frame ${position} (${row.key}, tier ${row.tier}) could not be read after ${
            attempt + 1
          } attempts: ${messageOf(error)}`,
          { retriable: true, cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delaysMs[attempt]));
    }
  }
}

/** One matching frame and its bytes: null when no store holds it, undefined when the format reads no image. */
export interface ExportItem {
  hit: SearchHit;
  data: Uint8Array | null | undefined;
  /** 1-based position among the matching frames. */
  index: number;
  /** The index of the plan's part the frame was read in. */
  part: number;
}

/** Frames fetched ahead of the one being written (their reads overlap; memory holds at most this many more). */
export const READ_AHEAD = 4;

/**
 * The matching frames, oldest first, each fetched (and retried) before it is yielded, unless `fetch` is null. Up
 * to `readAhead` frames are fetched ahead, so store latency overlaps; they are still yielded (and their failures
 * thrown) in order. Throws a ServiceError when a store keeps failing, or when not one of the matching frames is in
 * any store. Fetches still in flight when the caller stops are awaited (and their results dropped).
 */
export async function* exportItems(
  catalog: Catalog,
  plan: ExportPlan,
  fetch: FetchFrame | null,
  retryDelaysMs: number[] = DEFAULT_RETRY_DELAYS_MS,
  readAhead: number = READ_AHEAD,
): AsyncGenerator<ExportItem> {
  let index = 0, found = 0;
  let firstMissing: FrameRow | null = null;
  const ahead: { hit: SearchHit; index: number; part: number; data: Promise<Uint8Array | null> }[] = [];
  const take = async (): Promise<ExportItem> => {
    const next = ahead.shift()!;
    const data = await next.data;
    if (!data) firstMissing ??= next.hit.frame;
    else found++;
    return { hit: next.hit, data, index: next.index, part: next.part };
  };
  try {
    for await (const { hits, part } of planPages(catalog, plan.parts)) {
      for (const hit of hits) {
        index++;
        if (!fetch) {
          yield { hit, data: undefined, index, part };
          continue;
        }
        const position = `${index} of ${Math.max(index, plan.total)}`;
        const data = fetchSteadily(fetch, hit.frame, retryDelaysMs, position);
        data.catch(() => {}); // handled when its turn comes (or dropped when the caller stops)
        ahead.push({ hit, index, part, data });
        if (ahead.length > readAhead) yield await take();
      }
    }
    while (ahead.length) yield await take();
  } finally {
    await Promise.allSettled(ahead.map((a) => a.data));
  }
  if (fetch && index > 0 && found === 0) {
    throw new ServiceError(
      "s3",
      `none of the ${index} matching frames is in any store (the first, ${firstMissing!.key}, tier ` +
        `${firstMissing!.tier}, is in neither the local bucket nor the archive): check rustfs.bucket, ` +
        `aws_s3.bucket and aws_s3.prefix, or run deno task reindex`,
      { retriable: false },
    );
  }
}

/** One line of MISSING.txt for a frame no store holds. */
export function missingLine(row: FrameRow): string {
  return `${row.key}\trobot ${row.robotId}\t${new Date(row.timestampMs).toISOString()}\ttier ${row.tier}\n`;
}

/** The head of MISSING.txt, above one missingLine per left-out frame. */
export function missingHeader(missing: number, total: number, format: ExportFormat = "imagefolder"): string {
  const listed = format === "imagefolder"
    ? "metadata.jsonl lists only the files that are here."
    : "The dataset's files list only the frames that are here.";
  return `INCOMPLETE EXPORT: ${missing} of the ${total} matching frames are not in this dataset.\n` +
    `The catalog lists them, but neither the local store nor the archive holds their object. ${listed}\n\n`;
}

/** The usual `fetch`: the frame from whichever tier holds it (`readFrame`), in the order its row's tier says. */
export function tierFetcher(stores: {
  local: StoragePlugin;
  archive?: StoragePlugin | null;
  archivePrefix: string;
}): FetchFrame {
  const tiers = { local: stores.local, archive: stores.archive ?? null, archivePrefix: stores.archivePrefix };
  return (key, row) => readFrame(tiers, key, row.tier);
}

// ------------------------------------------------------------------------------------------------ tar format

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 octal digits and a NUL, as ustar wants.
  const text = Math.floor(value).toString(8);
  if (text.length > width - 1) throw new RangeError(`${value} does not fit a ${width}-byte tar field`);
  return text.padStart(width - 1, "0");
}

function put(header: Uint8Array, offset: number, text: string | Uint8Array, width: number): void {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  if (bytes.length > width) {
    throw new RangeError(`tar header field of ${bytes.length} bytes exceeds ${width}`);
  }
  header.set(bytes, offset);
}

/** Splits an ASCII path into ustar's prefix (155 bytes) and name (100 bytes) at a '/', or null when it cannot. */
function splitName(path: string): { prefix: Uint8Array; name: Uint8Array } | null {
  if (!/^[\x20-\x7e]*$/.test(path)) return null; // ustar names have no declared encoding: PAX says UTF-8
  const bytes = encoder.encode(path);
  if (bytes.length <= 100) return { prefix: new Uint8Array(0), name: bytes };
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    const prefix = bytes.subarray(0, i), name = bytes.subarray(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
    if (name.length > 100) break;
  }
  return null;
}

function ustarBlock(
  name: Uint8Array,
  prefix: Uint8Array,
  size: number,
  mtimeMs: number,
  type: string,
): Uint8Array {
  const h = new Uint8Array(BLOCK);
  put(h, 0, name, 100);
  put(h, 100, octal(type === "5" ? 0o755 : 0o644, 8), 8);
  put(h, 108, octal(0, 8), 8);
  put(h, 116, octal(0, 8), 8);
  put(h, 124, octal(size, 12), 12);
  put(h, 136, octal(Math.max(0, mtimeMs / 1000), 12), 12);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = type.charCodeAt(0);
  put(h, 257, "ustar\0", 6);
  put(h, 263, "00", 2);
  put(h, 265, "frame-bucket", 32);
  put(h, 297, "frame-bucket", 32);
  put(h, 345, prefix, 155);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  put(h, 148, `${sum.toString(8).padStart(6, "0")}\0 `, 8);
  return h;
}

/** A PAX record `"<len> <key>=<value>\n"`, where len counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): Uint8Array {
  const body = encoder.encode(` ${key}=${value}\n`);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return encoder.encode(`${len}${new TextDecoder().decode(body)}`);
}

/** The stand-in name old readers without PAX support see: ASCII, within ustar's 100 bytes, same extension. */
function fallbackName(path: string, directory: boolean): Uint8Array {
  const bare = path.replace(/\/$/, "");
  const ascii = bare.slice(bare.lastIndexOf("/") + 1).replace(/[^\x20-\x7e]/g, "_");
  const text = ascii.length > 90 ? ascii.slice(0, 45) + "~" + ascii.slice(-44) : ascii;
  return encoder.encode(`PaxHeaders/${text}${directory ? "/" : ""}`.slice(-99));
}

/**
 * The header of one tar entry, a regular file ("0") or a directory ("5"): one ustar block when the path fits
 * ustar and is ASCII, else a PAX extended header carrying the UTF-8 path, then the ustar block with a stand-in
 * name. The entry's data (padded to 512 bytes) follows.
 */
export function tarHeader(path: string, size: number, mtimeMs: number, type: "0" | "5" = "0"): Uint8Array {
  const split = splitName(path);
  if (split) return ustarBlock(split.name, split.prefix, size, mtimeMs, type);
  const records = paxRecord("path", path);
  const pax = ustarBlock(fallbackName(path, false), new Uint8Array(0), records.length, mtimeMs, "x");
  const out = new Uint8Array(BLOCK * (2 + Math.ceil(records.length / BLOCK)));
  out.set(pax, 0);
  out.set(records, BLOCK);
  out.set(
    ustarBlock(fallbackName(path, type === "5"), new Uint8Array(0), size, mtimeMs, type),
    out.length - BLOCK,
  );
  return out;
}

/** Zero bytes up to the next 512-byte boundary after `size` bytes of entry data. */
export function tarPadding(size: number): Uint8Array {
  const rest = size % BLOCK;
  return new Uint8Array(rest ? BLOCK - rest : 0);
}

/** The end-of-archive marker: two zero blocks. */
export const TAR_END = new Uint8Array(2 * BLOCK);

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

// ------------------------------------------------------------------------------------------------ spool files

/**
 * Lines appended to a temporary file, to be copied out once complete (metadata.jsonl and MISSING.txt go last, so
 * they are spooled instead of kept in memory).
 */
export class Spool {
  #path: string;
  #file: Deno.FsFile | null;
  #size = 0;
  #lines = 0;
  private constructor(path: string, file: Deno.FsFile) {
    this.#path = path;
    this.#file = file;
  }

  static async create(name: string): Promise<Spool> {
    const path = await Deno.makeTempFile({ prefix: `frame-bucket-${name}-` });
    return new Spool(path, await Deno.open(path, { write: true, truncate: true }));
  }

  get size(): number {
    return this.#size;
  }

  get lines(): number {
    return this.#lines;
  }

  async append(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    await writeAll(this.#file!, bytes);
    this.#size += bytes.length;
    this.#lines++;
  }

  /** The spooled bytes, in chunks of at most 64 KiB. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    this.#file?.close();
    this.#file = null;
    const input = await Deno.open(this.#path, { read: true });
    try {
      let left = this.#size;
      while (left > 0) {
        const chunk = new Uint8Array(Math.min(64 * 1024, left));
        const n = await input.read(chunk);
        if (n === null) throw new Error(`the spool file ${this.#path} ended ${left} bytes early`);
        left -= n;
        yield chunk.subarray(0, n);
      }
    } finally {
      input.close();
    }
  }

  async remove(): Promise<void> {
    try {
      this.#file?.close();
    } catch {
      // already closed
    }
    this.#file = null;
    await Deno.remove(this.#path).catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------------ entries

/** What an export writes, in order: folders, image and label files as frames come, documents at the end. */
export type ExportEntry =
  | { kind: "folder"; path: string }
  | { kind: "file"; path: string; data: Uint8Array; mtimeMs: number }
  /** A file made of text and spooled pieces, written whole at the end. */
  | { kind: "document"; path: string; parts: (string | Spool)[] };

/** Bytes of a document's pieces. */
export function documentSize(parts: (string | Spool)[]): number {
  return parts.reduce((s, p) => s + (typeof p === "string" ? encoder.encode(p).length : p.size), 0);
}

/** A fresh set of counts for a plan. */
/** A copy of the counts so far, for a progress report (`started`: performance.now() when the export began). */
export function progressOf(counts: ExportCounts, started: number): ExportProgress {
  return {
    ...counts,
    missingKeys: [...counts.missingKeys],
    perLabel: { ...counts.perLabel },
    perSplit: { ...counts.perSplit },
    elapsedMs: Math.round(performance.now() - started),
  };
}

export function newCounts(plan: ExportPlan): ExportCounts {
  return {
    frames: 0,
    total: plan.total,
    files: 0,
    bytes: 0,
    missing: 0,
    missingKeys: [],
    boxes: 0,
    unaccepted: 0,
    perLabel: Object.fromEntries(plan.labels.map((l) => [l, 0])),
    perSplit: {},
  };
}

/** Spools of one export, removed together. */
class Spools {
  readonly #all: Spool[] = [];
  readonly #named = new Map<string, Spool>();

  async get(name: string): Promise<Spool> {
    let spool = this.#named.get(name);
    if (!spool) {
      spool = await Spool.create(`export-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`);
      this.#named.set(name, spool);
      this.#all.push(spool);
    }
    return spool;
  }

  /** The spool if anything was written to it. */
  peek(name: string): Spool | undefined {
    return this.#named.get(name);
  }

  async remove(): Promise<void> {
    for (const s of this.#all) await s.remove();
  }
}

export interface EntryOptions {
  fetch: FetchFrame;
  retryDelaysMs?: number[];
  /** Frames fetched ahead (default READ_AHEAD). */
  readAhead?: number;
  nowMs?: number;
  /** Called after every frame. */
  onFrame?: (counts: ExportCounts) => void;
  onMissing?: (row: FrameRow) => void;
}

/**
 * The entries of an export, in the order they are written, counting into `counts`. The first entry comes only
 * once the first frame is in hand (a store that is down fails before anything exists). Spool files are removed
 * when the generator ends, however it ends.
 */
export async function* exportEntries(
  catalog: Catalog,
  plan: ExportPlan,
  o: EntryOptions,
  counts: ExportCounts,
): AsyncGenerator<ExportEntry> {
  const nowMs = o.nowMs ?? Date.now();
  const spools = new Spools();
  const missing = await spools.get("missing");
  const format = plan.format;
  const splitNames: (SplitName | null)[] = plan.split ? plan.split.names : [null];
  const made = new Set<string>();
  /** Per split: frames written so far (image ids in COCO and CVAT). */
  const written = new Map<SplitName | null, number>();
  const tagsSeen = new Set<string>(plan.tags);
  try {
    const fetch = format === "label-studio" ? null : o.fetch;
    for await (const item of exportItems(catalog, plan, fetch, o.retryDelaysMs, o.readAhead)) {
      const hit = item.hit, row = hit.frame;
      counts.frames++;
      if (item.data === null) {
        counts.missing++;
        if (counts.missingKeys.length < 20) counts.missingKeys.push(row.key);
        await missing.append(missingLine(row));
        o.onMissing?.(row);
        o.onFrame?.(counts);
        continue;
      }
      const split = plan.split ? plan.split.splitOf(splitFrame(hit)) : null;
      const setName = split ?? defaultSet(format);
      counts.perSplit[setName] = (counts.perSplit[setName] ?? 0) + 1;
      if (format === "imagefolder") {
        yield* imageFolderFrame(item, plan, split, spools, made, counts);
        o.onFrame?.(counts);
        continue;
      }
      const accepted = hit.boxes.filter((b) => b.accepted);
      const unaccepted = hit.boxes.filter((b) => !b.accepted);
      const tags = frameTags(hit);
      for (const t of tags) tagsSeen.add(t);
      const frame = datasetFrame(item, accepted, unaccepted, tags, split, format);
      const n = (written.get(split) ?? 0) + 1;
      written.set(split, n);
      if (format === "label-studio") {
        await appendItem(await spools.get("tasks"), lsTask(frame, plan.server!));
        counts.boxes += accepted.length + unaccepted.length;
        o.onFrame?.(counts);
        continue;
      }
      counts.unaccepted += unaccepted.length;
      counts.boxes += accepted.length;
      const data = item.data!;
      counts.files++;
      counts.bytes += data.length;
      if (format === "coco") {
        yield { kind: "file", path: cocoImagePath(frame), data, mtimeMs: row.timestampMs };
        await appendItem(await spools.get(`coco-images-${split}`), cocoImage(frame, n));
        const annotations = await spools.get(`coco-annotations-${split}`);
        for (const b of accepted) await appendItem(annotations, cocoAnnotation(b, n, plan.classes));
      } else if (format === "yolo") {
        yield { kind: "file", path: yoloImagePath(frame), data, mtimeMs: row.timestampMs };
        yield {
          kind: "file",
          path: yoloLabelPath(frame),
          data: encoder.encode(yoloLabels(accepted, plan.classes)),
          mtimeMs: row.timestampMs,
        };
      } else {
        yield { kind: "file", path: cvatImagePath(frame), data, mtimeMs: row.timestampMs };
        for (const b of accepted) plan.classes.index(b.label);
        await (await spools.get(`cvat-${split}`)).append(cvatImage(frame, n - 1));
      }
      o.onFrame?.(counts);
    }

    // The documents, now that every frame (and so every class and split size) is known.
    const dateCreated = new Date(nowMs).toISOString();
    const selected = describeSelection(plan.selection);
    const filtered = describeFilter(plan.filter);
    const description = `frame-bucket export (${format}) of ${
      selected ? (filtered === "all frames" ? selected : `${selected}; ${filtered}`) : filtered
    }`;
    if (format === "imagefolder") {
      for (const split of splitNames) {
        const spool = spools.peek(`metadata-${split}`) ?? await spools.get(`metadata-${split}`);
        yield { kind: "document", path: split ? `${split}/${METADATA_FILE}` : METADATA_FILE, parts: [spool] };
      }
    } else if (format === "coco") {
      for (const split of splitNames) {
        yield {
          kind: "document",
          path: cocoAnnotationPath(split),
          parts: [
            cocoHead(plan.classes, { description, dateCreated }),
            await spools.get(`coco-images-${split}`),
            cocoMiddle,
            await spools.get(`coco-annotations-${split}`),
            cocoTail,
          ],
        };
      }
    } else if (format === "yolo") {
      // Every split's folders exist, also a split that got no frame (Ultralytics refuses a missing folder).
      for (const split of splitNames) {
        if (written.get(split)) continue;
        const name = split ?? defaultSet(format);
        yield { kind: "folder", path: `images/${name}` };
        yield { kind: "folder", path: `labels/${name}` };
      }
      yield {
        kind: "document",
        path: "data.yaml",
        parts: [dataYaml(plan.classes, plan.split?.names ?? null)],
      };
    } else if (format === "cvat") {
      const labels = [...new Set([...plan.classes.names, ...tagsSeen])].sort((a, b) =>
        a < b ? -1 : a > b ? 1 : 0
      );
      for (const split of splitNames) {
        yield {
          kind: "document",
          path: cvatAnnotationPath(split),
          parts: [
            cvatHead({
              name: split ?? "frame-bucket",
              size: written.get(split) ?? 0,
              labels,
              nowIso: dateCreated,
            }),
            await spools.get(`cvat-${split}`),
            cvatTail,
          ],
        };
      }
    } else {
      yield { kind: "document", path: LS_TASKS_FILE, parts: ["[", await spools.get("tasks"), "]\n"] };
      yield {
        kind: "document",
        path: LS_CONFIG_FILE,
        parts: [lsLabelConfig(plan.classes.names, [...tagsSeen].sort(), plan.labelSet)],
      };
    }
    if (counts.missing) {
      yield {
        kind: "document",
        path: MISSING_FILE,
        parts: [missingHeader(counts.missing, counts.frames, format), missing],
      };
    }
  } finally {
    await spools.remove();
  }
}

/** The name of the one set of an export without a split. */
function defaultSet(format: ExportFormat): string {
  return format === "coco"
    ? "default"
    : format === "cvat"
    ? "annotations"
    : format === "yolo"
    ? "train"
    : "all";
}

/** A filter in words, for the description inside COCO files. */
function describeFilter(f: SearchFilter): string {
  const parts: string[] = [];
  if (f.labels?.length) parts.push(`labels ${f.labels.join(f.allLabels ? " + " : " | ")}`);
  if (f.robots?.length) parts.push(`robots ${f.robots.join(", ")}`);
  if (f.fromMs !== undefined) parts.push(`from ${new Date(f.fromMs).toISOString()}`);
  if (f.toMs !== undefined) parts.push(`to ${new Date(f.toMs).toISOString()}`);
  if (f.tiers?.length) parts.push(`tiers ${f.tiers.join(", ")}`);
  if (f.status?.length) parts.push(`status ${f.status.join(", ")}`);
  return parts.length ? parts.join("; ") : "all frames";
}

/** Appends one element of a JSON array: a comma before every element but the first. */
async function appendItem(spool: Spool, json: string): Promise<void> {
  await spool.append(spool.lines ? `,\n${json}` : json);
}

function datasetFrame(
  item: ExportItem,
  boxes: Box[],
  predictions: Box[],
  tags: string[],
  split: SplitName | null,
  format?: ExportFormat,
): DatasetFrame {
  const row = item.hit.frame;
  let width = 0, height = 0;
  if (item.data) {
    try {
      ({ width, height } = jpegSize(item.data));
    } catch (error) {
      throw new ServiceError(
        "store",
        `frame ${row.key} (tier ${row.tier}) is not a readable JPEG (${
          messageOf(error)
        }): the stored object ` +
          `is damaged; delete the frame or store it again`,
        { retriable: false, cause: error },
      );
    }
  } else {
    // Label Studio reads no image: the boxes know the frame's size.
    const b = boxes[0] ?? predictions[0];
    if (b) ({ imageWidth: width, imageHeight: height } = b);
  }
  return {
    key: row.key,
    row,
    name: format === "yolo" ? flatImageName(row.key) : imageName(row.key),
    width,
    height,
    boxes,
    predictions,
    tags,
    split,
  };
}

/** The files and metadata lines of a frame in the ImageFolder layout. */
async function* imageFolderFrame(
  item: ExportItem,
  plan: ExportPlan,
  split: SplitName | null,
  spools: Spools,
  made: Set<string>,
  counts: ExportCounts,
): AsyncGenerator<ExportEntry> {
  const hit = item.hit, row = hit.frame, data = item.data!;
  const name = exportFileName(row);
  const clipNames = hit.clips.map((c) => c.name);
  const metadata = await spools.get(`metadata-${split}`);
  for (const label of plan.labels) {
    if (!hit.labels.includes(label)) continue;
    const folder = plan.folders.get(label)!;
    const inSplit = `${folder}/${name}`;
    const dir = split ? `${split}/${folder}` : folder;
    if (!made.has(dir)) {
      made.add(dir);
      yield { kind: "folder", path: dir };
    }
    yield { kind: "file", path: `${dir}/${name}`, data, mtimeMs: row.timestampMs };
    await metadata.append(
      JSON.stringify(metadataRecord(inSplit, label, row, hit.labels, clipNames, split)) + "\n",
    );
    counts.files++;
    counts.bytes += data.length;
    counts.perLabel[label]++;
  }
}

// ------------------------------------------------------------------------------------------------------ sinks

/** Where exportFrames writes: a directory or a tar file. Created only once there is something to write. */
interface Sink {
  write(entry: ExportEntry): Promise<void>;
  finish(): Promise<void>;
  /** Removes everything written. */
  abort(): Promise<void>;
}

/** Refuses an output directory that has anything in it, before any frame is fetched. */
async function checkEmptyDir(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new BadInputError(`output directory ${dir} is not empty: choose a new or empty directory`);
    }
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function dirSink(dir: string, existed: boolean): Promise<Sink> {
  await Deno.mkdir(dir, { recursive: true });
  // Everything below the directory is this export's (it was empty or new), so an abort removes it all.
  const made = new Set<string>();
  const dirs = new Set<string>();
  const ensure = async (path: string, isDir: boolean) => {
    made.add(path.split("/")[0]);
    const parent = isDir ? path : path.slice(0, Math.max(0, path.lastIndexOf("/")));
    if (parent && !dirs.has(parent)) {
      await Deno.mkdir(`${dir}/${parent}`, { recursive: true });
      dirs.add(parent);
    }
  };
  return {
    async write(entry) {
      await ensure(entry.path, entry.kind === "folder");
      if (entry.kind === "file") {
        await Deno.writeFile(`${dir}/${entry.path}`, entry.data);
        await Deno.utime(`${dir}/${entry.path}`, new Date(), entry.mtimeMs / 1000);
      } else if (entry.kind === "document") {
        const out = await Deno.open(`${dir}/${entry.path}`, { write: true, create: true, truncate: true });
        try {
          for (const part of entry.parts) {
            if (typeof part === "string") await writeAll(out, encoder.encode(part));
            else for await (const chunk of part.chunks()) await writeAll(out, chunk);
          }
        } finally {
          out.close();
        }
      }
    },
    finish: () => Promise.resolve(),
    async abort() {
      for (const name of made) await Deno.remove(`${dir}/${name}`, { recursive: true }).catch(() => {});
      if (!existed) await Deno.remove(dir).catch(() => {});
    },
  };
}

/** The tar bytes of an entry: header, data, padding (a document's pieces streamed from their spools). */
export async function* tarEntry(entry: ExportEntry, nowMs: number): AsyncGenerator<Uint8Array> {
  if (entry.kind === "folder") {
    yield tarHeader(`${entry.path}/`, 0, nowMs, "5");
  } else if (entry.kind === "file") {
    yield tarHeader(entry.path, entry.data.length, entry.mtimeMs);
    yield entry.data;
    yield tarPadding(entry.data.length);
  } else {
    const size = documentSize(entry.parts);
    yield tarHeader(entry.path, size, nowMs);
    for (const part of entry.parts) {
      if (typeof part !== "string") yield* part.chunks();
      else if (part.length) yield encoder.encode(part);
    }
    yield tarPadding(size);
  }
}

async function tarSink(path: string, nowMs: number): Promise<Sink> {
  const partial = `${path}.partial`;
  const file = await Deno.open(partial, { write: true, create: true, truncate: true });
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  return {
    async write(entry) {
      for await (const bytes of tarEntry(entry, nowMs)) await writeAll(file, bytes);
    },
    async finish() {
      await writeAll(file, TAR_END);
      close();
      await Deno.rename(partial, path);
    },
    async abort() {
      close();
      await Deno.remove(partial).catch(() => {});
    },
  };
}

// ----------------------------------------------------------------------------------------------------- export

/**
 * Exports the frames matching `options` to `out` (a directory, or a `.tar` file) in `options.format`; see the
 * module comment for what is written and how failures show. Frames are visited oldest first. Throws (and removes
 * anything written) when a store keeps failing or when no matching frame is in any store.
 */
export async function exportFrames(
  catalog: Catalog,
  out: string,
  options: ExportOptions,
): Promise<ExportSummary> {
  const plan = await planExport(catalog, options, options);
  if (isMediaFormat(plan.format)) {
    // Imported when used: export_media.ts builds on this module.
    const { exportMedia } = await import("./export_media.ts");
    return await exportMedia(catalog, plan, out, options);
  }
  const as = out.endsWith(".tar") ? "tar" : "dir";
  const existed = as === "dir" ? await checkEmptyDir(out) : false;
  const nowMs = options.nowMs ?? Date.now();
  const started = performance.now();
  const counts = newCounts(plan);
  let lastReport = started;
  const progress = () => progressOf(counts, started);
  let sink: Sink | null = null;
  try {
    const entries = exportEntries(catalog, plan, {
      fetch: options.fetch,
      retryDelaysMs: options.retryDelaysMs,
      readAhead: options.readAhead,
      nowMs,
      onMissing: options.onMissing,
      onFrame: () => {
        if (performance.now() - lastReport >= 1000) {
          lastReport = performance.now();
          options.progress?.(progress());
        }
      },
    }, counts);
    // Nothing is created until the first entry is in hand: a store that is down fails the export with no output.
    for await (const entry of entries) {
      sink ??= as === "tar" ? await tarSink(out, nowMs) : await dirSink(out, existed);
      await sink.write(entry);
    }
    sink ??= as === "tar" ? await tarSink(out, nowMs) : await dirSink(out, existed);
    await sink.finish();
  } catch (error) {
    await (sink as Sink | null)?.abort();
    throw error;
  }
  const summary = progress();
  options.progress?.(summary);
  return { ...summary, out, as, format: plan.format, classes: [...plan.classes.names] };
}
