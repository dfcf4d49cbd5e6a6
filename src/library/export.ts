/**
 * Export of labelled frames as an image-classification dataset (the ImageFolder layout):
 *
 *   <label folder>/<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq:06>.jpg      one folder per requested label
 *   metadata.jsonl                                                   one JSON line per file
 *   MISSING.txt                                                      only when frames are missing (see below)
 *
 * Which frames: the same filter as search (src/library/search.ts): labels (any, or all with `allLabels`), robots, time
 * span, tiers; so a search and an export of the same filter give the same frames. A frame is written once per
 * requested label it matches (a frame with two of the labels is in both folders, with two metadata lines). A
 * metadata line holds `file_name` (relative to the export root, as Hugging Face `datasets` expects), `label` (the
 * label itself), `robot_id`, `capture_time` (ISO 8601 UTC), `timestamp_ms`, `seq`, `key`, `tier`, `labels` (all
 * the frame's labels, its own and its clips') and `clips` (names of the clips it lies in).
 *
 * Folder names are the labels, made safe for every file system an archive may be unpacked on (`labelFolder`):
 * characters Windows refuses (`<>:"|?*`), its device names (`CON`, `NUL`, `COM1`, ...), a trailing dot or space,
 * and invisible bidirectional-text controls are written as `%XX` escapes of their UTF-8 bytes (and `%` itself as
 * `%25`, so two labels never share a folder). Labels that differ only in case would share a folder on Windows and
 * macOS: such an export is refused, naming them.
 *
 * An export never looks complete when it is not:
 * - A store that fails (unreachable, an error other than "no such object") is retried twice (0.5 s, then 2 s);
 *   if it still fails, the export fails. A frame that cannot be read before any output exists fails the export
 *   before anything is written (the HTTP API answers 502 before the first byte); later, it aborts: a partial tar
 *   or directory is removed (the HTTP stream is cut, which clients see as an error).
 * - A frame whose object no store holds (the store answered, and has no such object) is left out and listed in
 *   `MISSING.txt` (key, robot, capture time, tier), the last entry; callers report the count (the CLI exits 1).
 * - When no matching frame can be read at all, the export fails instead of writing an empty dataset.
 *
 * The output is a directory (it must be empty or new; created when the first frame arrives) or, for a path ending
 * in `.tar`, a POSIX tar written here block by block (to `<file>.partial`, renamed when complete). Paths that do
 * not fit the ustar header (over 100/155 bytes) or are not ASCII get a PAX extended header (`path`, UTF-8), which
 * GNU tar, bsdtar, 7-Zip and Python's tarfile read. Memory stays bounded: frames are read from the catalog a page
 * at a time and fetched, written and dropped one at a time; metadata and the missing list are spooled to
 * temporary files and appended at the end.
 *
 * Frames come from `fetch(key, row)`, so the HTTP layer can pass its own; `tierFetcher` is the usual one (the
 * local store, or the archive at `aws_s3.prefix + key` for archived frames, each falling back to the other). A
 * fetch resolves null for "no store holds it" and throws for "a store failed".
 */
import type { Catalog, FrameRow, Tier } from "../catalog/catalog.ts";
import { BadInputError, messageOf, ServiceError } from "../errors.ts";
import type { StoragePlugin } from "../plugin.ts";
import { readFrame } from "../store/tiers.ts";
import { countFrames, type SearchFilter, searchFrames, type SearchHit, type SearchPage } from "./search.ts";

export type FetchFrame = (key: string, row: FrameRow) => Promise<Uint8Array | null>;

/** Which frames to export: search's filter, with at least one label (the folders). */
export interface ExportFilter {
  /** Labels to export (at least one); a frame is exported once per requested label it matches. */
  labels: string[];
  /** True: only frames with every one of the labels (as search's all_labels). */
  allLabels?: boolean;
  robots?: string[];
  fromMs?: number;
  toMs?: number;
  /** Only frames in these tiers. */
  tiers?: Tier[];
}

export interface ExportOptions extends ExportFilter {
  /** Where a frame's bytes come from. */
  fetch: FetchFrame;
  /** Called about once a second and at the end. */
  progress?: (p: ExportProgress) => void;
  /** Called for a frame that no store holds (it is left out, counted as missing and listed in MISSING.txt). */
  onMissing?: (row: FrameRow) => void;
  /** Clock for tar entry times of folders and metadata (default: now). */
  nowMs?: number;
  /** Waits before the 2nd, 3rd, ... attempt of a failing fetch (default 500, 2000 ms). */
  retryDelaysMs?: number[];
}

export interface ExportProgress {
  /** Frames handled so far (fetched or found missing). */
  frames: number;
  /** Frames matching the filter when the export started. */
  total: number;
  /** Image files written (a frame in two label folders counts twice). */
  files: number;
  /** JPEG bytes written. */
  bytes: number;
  missing: number;
  elapsedMs: number;
}

export interface ExportSummary extends ExportProgress {
  /** The directory or tar file written. */
  out: string;
  format: "dir" | "tar";
  /** Files per label. */
  perLabel: Record<string, number>;
}

/** What an export writes, worked out (and checked) before anything is fetched. */
export interface ExportPlan {
  /** The requested labels, each once, in the order given. */
  labels: string[];
  /** Folder name of each label. */
  folders: Map<string, string>;
  filter: SearchFilter;
  /** Frames matching when the plan was made. */
  total: number;
}

/** Name of the list of left-out frames, the last entry of an incomplete export. */
export const MISSING_FILE = "MISSING.txt";
export const METADATA_FILE = "metadata.jsonl";
const DEFAULT_RETRY_DELAYS_MS = [500, 2000];

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** One line of metadata.jsonl: the file, the label folder it is in, and what is known of the frame. */
export function metadataRecord(
  path: string,
  label: string,
  row: FrameRow,
  labels: string[],
  clips: string[],
) {
  return {
    file_name: path,
    label,
    robot_id: row.robotId,
    capture_time: new Date(row.timestampMs).toISOString(),
    timestamp_ms: row.timestampMs,
    seq: row.seq,
    key: row.key,
    tier: row.tier,
    labels,
    clips,
  };
}

/** `<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq:06>.jpg`: unique per frame, sorts by time within a robot. */
export function exportFileName(row: FrameRow): string {
  const d = new Date(row.timestampMs);
  const stamp = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}T` +
    `${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}` +
    `${pad(d.getUTCMilliseconds(), 3)}Z`;
  return `${row.robotId}_${stamp}_${pad(row.seq, 6)}.jpg`;
}

// -------------------------------------------------------------------------------------------- folder names

const encoder = new TextEncoder();

/** Characters escaped wherever they are: '%' (the escape itself), what Windows refuses, controls, bidi controls. */
const UNSAFE_CHAR =
  // deno-lint-ignore no-control-regex
  /[%<>:"/\\|?*\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/gu;
/** Windows device names, reserved with any extension and in any case. */
const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/iu;

const escapeChar = (ch: string) =>
  Array.from(encoder.encode(ch), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");

/**
 * The folder a label's frames go to: the label itself when every file system takes it as a name, else with the
 * offending characters as `%XX` escapes of their UTF-8 bytes. `%` is always escaped, so the mapping is one to one
 * (two labels never share a folder) and the label can be read back from it.
 */
export function labelFolder(label: string): string {
  let name = label.replace(UNSAFE_CHAR, escapeChar);
  if (DEVICE_NAME.test(name)) name = escapeChar(name[0]) + name.slice(1);
  // Windows drops a trailing dot or space from a name; escaping the last one keeps the name intact.
  const last = name.at(-1);
  if (last === "." || last === " ") name = name.slice(0, -1) + escapeChar(last);
  return name;
}

/**
 * Checks an export's filter and works out its folders: at least one label, every label known (search refuses
 * unknown ones), no two folders that differ only in case, every folder name within 255 bytes.
 */
export async function planExport(catalog: Catalog, filter: ExportFilter): Promise<ExportPlan> {
  const labels = [...new Set(filter.labels)];
  if (labels.length === 0) throw new BadInputError("name at least one label to export");
  const search: SearchFilter = {
    labels,
    allLabels: filter.allLabels ?? false,
    robots: filter.robots,
    fromMs: filter.fromMs,
    toMs: filter.toMs,
    tiers: filter.tiers,
  };
  const total = await countFrames(catalog, search); // also checks that the labels exist
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
  return { labels, folders, filter: search, total };
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

/** One matching frame: its bytes and the files it becomes, or null bytes when no store holds it. */
export interface ExportItem {
  hit: SearchHit;
  data: Uint8Array | null;
  /** `{label, folder, path}` for each requested label the frame matches (none when missing). */
  files: { label: string; folder: string; path: string }[];
  /** 1-based position among the matching frames. */
  index: number;
}

/**
 * The matching frames, oldest first, each fetched (and retried) before it is yielded. Throws a ServiceError when a
 * store keeps failing, or when not one of the matching frames could be found in any store.
 */
export async function* exportItems(
  catalog: Catalog,
  plan: ExportPlan,
  fetch: FetchFrame,
  retryDelaysMs: number[] = DEFAULT_RETRY_DELAYS_MS,
): AsyncGenerator<ExportItem> {
  let cursor: string | null = null;
  let index = 0, found = 0;
  let firstMissing: FrameRow | null = null;
  do {
    const page: SearchPage = await searchFrames(catalog, {
      ...plan.filter,
      order: "oldest",
      limit: 200,
      cursor,
    });
    cursor = page.nextCursor;
    for (const hit of page.hits) {
      index++;
      const position = `${index} of ${Math.max(index, plan.total)}`;
      const data = await fetchSteadily(fetch, hit.frame, retryDelaysMs, position);
      if (!data) {
        firstMissing ??= hit.frame;
        yield { hit, data: null, files: [], index };
        continue;
      }
      found++;
      const name = exportFileName(hit.frame);
      const files = plan.labels.filter((label) => hit.labels.includes(label)).map((label) => {
        const folder = plan.folders.get(label)!;
        return { label, folder, path: `${folder}/${name}` };
      });
      yield { hit, data, files, index };
    }
  } while (cursor);
  if (index > 0 && found === 0) {
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
export function missingHeader(missing: number, total: number): string {
  return `INCOMPLETE EXPORT: ${missing} of the ${total} matching frames are not in this dataset.\n` +
    `The catalog lists them, but neither the local store nor the archive holds their object. ` +
    `metadata.jsonl lists only the files that are here.\n\n`;
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

// ------------------------------------------------------------------------------------------------------ sinks

/** Where exportFrames writes: a directory or a tar file. Created only once there is something to write. */
interface Sink {
  folder(folder: string): Promise<void>;
  file(path: string, data: Uint8Array, mtimeMs: number): Promise<void>;
  /** Appends a file whose text is `head` followed by the spool's bytes. */
  spooled(path: string, head: string, spool: Spool): Promise<void>;
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
  return {
    async folder(folder) {
      await Deno.mkdir(`${dir}/${folder}`, { recursive: true });
      made.add(folder);
    },
    async file(path, data, mtimeMs) {
      await Deno.writeFile(`${dir}/${path}`, data);
      await Deno.utime(`${dir}/${path}`, new Date(), mtimeMs / 1000);
    },
    async spooled(path, head, spool) {
      const out = await Deno.open(`${dir}/${path}`, { write: true, create: true, truncate: true });
      made.add(path);
      try {
        await writeAll(out, encoder.encode(head));
        for await (const chunk of spool.chunks()) await writeAll(out, chunk);
      } finally {
        out.close();
      }
    },
    finish: () => Promise.resolve(),
    async abort() {
      for (const name of made) await Deno.remove(`${dir}/${name}`, { recursive: true }).catch(() => {});
      if (!existed) await Deno.remove(dir).catch(() => {});
    },
  };
}

async function tarSink(path: string, nowMs: number): Promise<Sink> {
  const partial = `${path}.partial`;
  const file = await Deno.open(partial, { write: true, create: true, truncate: true });
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  const write = (data: Uint8Array) => writeAll(file, data);
  return {
    folder: (folder) => write(tarHeader(`${folder}/`, 0, nowMs, "5")),
    async file(p, data, mtimeMs) {
      await write(tarHeader(p, data.length, mtimeMs));
      await write(data);
      await write(tarPadding(data.length));
    },
    async spooled(p, head, spool) {
      const headBytes = encoder.encode(head);
      const size = headBytes.length + spool.size;
      await write(tarHeader(p, size, nowMs));
      await write(headBytes);
      for await (const chunk of spool.chunks()) await write(chunk);
      await write(tarPadding(size));
    },
    async finish() {
      await write(TAR_END);
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
 * Exports the frames matching `options` to `out` (a directory, or a `.tar` file); see the module comment for what
 * is written and how failures show. Frames are visited oldest first. Throws (and removes anything written) when a
 * store keeps failing or when no matching frame is in any store.
 */
export async function exportFrames(
  catalog: Catalog,
  out: string,
  options: ExportOptions,
): Promise<ExportSummary> {
  const plan = await planExport(catalog, options);
  const format = out.endsWith(".tar") ? "tar" : "dir";
  const existed = format === "dir" ? await checkEmptyDir(out) : false;
  const nowMs = options.nowMs ?? Date.now();
  const started = performance.now();
  const state: ExportProgress = {
    frames: 0,
    total: plan.total,
    files: 0,
    bytes: 0,
    missing: 0,
    elapsedMs: 0,
  };
  const perLabel: Record<string, number> = Object.fromEntries(plan.labels.map((l) => [l, 0]));
  const folders = new Set<string>();
  let lastReport = started;
  const report = () => {
    state.elapsedMs = Math.round(performance.now() - started);
    options.progress?.({ ...state });
  };
  const metadata = await Spool.create("export-metadata");
  const missing = await Spool.create("export-missing");
  let sink: Sink | null = null;
  // Nothing is created until the first frame is in hand: a store that is down fails the export with no output.
  const open = async () =>
    sink ??= format === "tar" ? await tarSink(out, nowMs) : await dirSink(out, existed);
  try {
    for await (const item of exportItems(catalog, plan, options.fetch, options.retryDelaysMs)) {
      const row = item.hit.frame;
      state.frames++;
      if (!item.data) {
        state.missing++;
        await missing.append(missingLine(row));
        options.onMissing?.(row);
        continue;
      }
      const target = await open();
      const clipNames = item.hit.clips.map((c) => c.name);
      for (const { label, folder, path } of item.files) {
        if (!folders.has(folder)) {
          await target.folder(folder);
          folders.add(folder);
        }
        await target.file(path, item.data, row.timestampMs);
        await metadata.append(
          JSON.stringify(metadataRecord(path, label, row, item.hit.labels, clipNames)) + "\n",
        );
        state.files++;
        state.bytes += item.data.length;
        perLabel[label]++;
      }
      if (performance.now() - lastReport >= 1000) {
        lastReport = performance.now();
        report();
      }
    }
    const target = await open();
    await target.spooled(METADATA_FILE, "", metadata);
    if (state.missing) {
      await target.spooled(MISSING_FILE, missingHeader(state.missing, state.frames), missing);
    }
    await target.finish();
  } catch (error) {
    await (sink as Sink | null)?.abort();
    throw error;
  } finally {
    await metadata.remove();
    await missing.remove();
  }
  report();
  return { ...state, out, format, perLabel };
}
