/**
 * Export of labelled frames as an image-classification dataset (the ImageFolder layout):
 *
 *   <label>/<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq:06>.jpg      one folder per requested label
 *   metadata.jsonl                                            one JSON line per file
 *
 * A frame matching two requested labels is written to both folders (and has two metadata lines). A metadata
 * line holds `file_name` (relative to the export root, as Hugging Face `datasets` expects), `label` (the folder),
 * `robot_id`, `capture_time` (ISO 8601 UTC), `timestamp_ms`, `seq`, `key`, `tier`, `labels` (all the frame's
 * labels, its own and its clips') and `clips` (names of the clips it lies in).
 *
 * The output is a directory (created; it must be empty or new) or, for a path ending in `.tar`, a POSIX ustar
 * archive written here block by block (written to `<file>.partial` and renamed when complete). Memory stays
 * bounded: frames are read from the catalog a page at a time and fetched, written and dropped one at a time; the
 * metadata of a tar export is spooled to a temporary file and appended as the last entry.
 *
 * Frames come from `fetch(key, row)`, so the HTTP layer can pass its own; `tierFetcher` is the usual one (the
 * local store, or the archive at `aws_s3.prefix + key` for archived frames, each falling back to the other).
 */
import type { Catalog, FrameRow } from "./catalog.ts";
import type { StoragePlugin } from "./plugin.ts";
import { countFrames, type SearchFilter, searchFrames } from "./search.ts";

export type FetchFrame = (key: string, row: FrameRow) => Promise<Uint8Array | null>;

export interface ExportOptions {
  /** Labels to export (at least one); a frame matching any of them is exported, once per matching label. */
  labels: string[];
  robots?: string[];
  fromMs?: number;
  toMs?: number;
  /** Where a frame's bytes come from. */
  fetch: FetchFrame;
  /** Called about once a second and at the end. */
  progress?: (p: ExportProgress) => void;
  /** Called for a frame that no store holds (it is left out, and counted as missing). */
  onMissing?: (row: FrameRow) => void;
  /** Clock for tar entry times of folders and metadata (default: now). */
  nowMs?: number;
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
  /** Files per label folder. */
  perLabel: Record<string, number>;
}

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

/**
 * Fetches a frame from the tier that should hold it: archived frames from the archive store at
 * `archivePrefix + key` first, others from the local store first; either way the other store is the fallback.
 * Without an archive store only the local store is asked.
 */
export function tierFetcher(stores: {
  local: StoragePlugin;
  archive?: StoragePlugin | null;
  archivePrefix: string;
}): FetchFrame {
  return async (key, row) => {
    const fromLocal = () => stores.local.get(key);
    const fromArchive = () => stores.archive ? stores.archive.get(stores.archivePrefix + key) : null;
    const order = row.tier === "archive" ? [fromArchive, fromLocal] : [fromLocal, fromArchive];
    for (const get of order) {
      const bytes = await get();
      if (bytes) return bytes;
    }
    return null;
  };
}

// ------------------------------------------------------------------------------------------------- tar writer

const BLOCK = 512;
const encoder = new TextEncoder();

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

/** Splits a path into ustar's prefix (155 bytes) and name (100 bytes) at a '/'. */
function splitName(path: string): { prefix: Uint8Array; name: Uint8Array } {
  const bytes = encoder.encode(path);
  if (bytes.length <= 100) return { prefix: new Uint8Array(0), name: bytes };
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue;
    const prefix = bytes.subarray(0, i), name = bytes.subarray(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
    if (name.length > 100) break;
  }
  throw new RangeError(`path ${JSON.stringify(path)} is too long for a ustar archive`);
}

/** One ustar header block for a regular file ("0") or a directory ("5"). */
export function tarHeader(path: string, size: number, mtimeMs: number, type: "0" | "5" = "0"): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const { prefix, name } = splitName(path);
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

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/** A streaming ustar writer: entries go straight to the file; nothing is kept but the file handle. */
export class TarWriter {
  #file: Deno.FsFile;
  #bytes = 0;
  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  static async create(path: string): Promise<TarWriter> {
    return new TarWriter(await Deno.open(path, { write: true, create: true, truncate: true }));
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  async #write(data: Uint8Array): Promise<void> {
    await writeAll(this.#file, data);
    this.#bytes += data.length;
  }

  async #pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest) await this.#write(new Uint8Array(BLOCK - rest));
  }

  async directory(path: string, mtimeMs: number): Promise<void> {
    await this.#write(tarHeader(path.endsWith("/") ? path : `${path}/`, 0, mtimeMs, "5"));
  }

  async file(path: string, data: Uint8Array, mtimeMs: number): Promise<void> {
    await this.#write(tarHeader(path, data.length, mtimeMs));
    await this.#write(data);
    await this.#pad(data.length);
  }

  /** Appends a file from disk, streamed in chunks (its size must not change meanwhile). */
  async fileFrom(path: string, source: string, mtimeMs: number): Promise<void> {
    const { size } = await Deno.stat(source);
    await this.#write(tarHeader(path, size, mtimeMs));
    const input = await Deno.open(source, { read: true });
    try {
      const chunk = new Uint8Array(64 * 1024);
      let left = size;
      while (left > 0) {
        const n = await input.read(chunk.subarray(0, Math.min(chunk.length, left)));
        if (n === null) throw new Error(`${source} ended ${left} bytes early`);
        await this.#write(chunk.subarray(0, n));
        left -= n;
      }
    } finally {
      input.close();
    }
    await this.#pad(size);
  }

  /** Writes the end-of-archive marker (two zero blocks) and closes the file. */
  async close(): Promise<void> {
    try {
      await this.#write(new Uint8Array(2 * BLOCK));
    } finally {
      this.#file.close();
    }
  }

  /** Closes without finishing (after a failure). */
  abort(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}

// ------------------------------------------------------------------------------------------------------ sinks

interface Sink {
  folder(label: string): Promise<void>;
  file(path: string, data: Uint8Array, mtimeMs: number): Promise<void>;
  metadata(line: string): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

async function dirSink(dir: string): Promise<Sink> {
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new RangeError(`output directory ${dir} is not empty: choose a new or empty directory`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(dir, { recursive: true });
  const meta = await Deno.open(`${dir}/metadata.jsonl`, { write: true, create: true, truncate: true });
  return {
    folder: (label) => Deno.mkdir(`${dir}/${label}`, { recursive: true }),
    file: (path, data, mtimeMs) =>
      Deno.writeFile(`${dir}/${path}`, data).then(() =>
        Deno.utime(`${dir}/${path}`, new Date(), mtimeMs / 1000)
      ),
    metadata: (line) => writeAll(meta, encoder.encode(line + "\n")),
    finish: () => Promise.resolve(meta.close()),
    abort: () => Promise.resolve(meta.close()),
  };
}

async function tarSink(path: string, nowMs: number): Promise<Sink> {
  const partial = `${path}.partial`;
  const tar = await TarWriter.create(partial);
  const spool = await Deno.makeTempFile({ prefix: "frame-bucket-export-", suffix: ".jsonl" });
  const meta = await Deno.open(spool, { write: true, truncate: true });
  const cleanup = async () => {
    await Deno.remove(spool).catch(() => {});
  };
  return {
    folder: (label) => tar.directory(label, nowMs),
    file: (p, data, mtimeMs) => tar.file(p, data, mtimeMs),
    metadata: (line) => writeAll(meta, encoder.encode(line + "\n")),
    async finish() {
      meta.close();
      try {
        await tar.fileFrom("metadata.jsonl", spool, nowMs);
        await tar.close();
        await Deno.rename(partial, path);
      } finally {
        await cleanup();
      }
    },
    async abort() {
      meta.close();
      tar.abort();
      await Deno.remove(partial).catch(() => {});
      await cleanup();
    },
  };
}

// ----------------------------------------------------------------------------------------------------- export

/**
 * Exports the frames matching `options` (labels any-of, robots, time span) to `out` (a directory, or a `.tar`
 * file). Frames are visited oldest first. Throws on a fetch or write error (a partial tar is removed).
 */
export async function exportFrames(
  catalog: Catalog,
  out: string,
  options: ExportOptions,
): Promise<ExportSummary> {
  const labels = [...new Set(options.labels)];
  if (labels.length === 0) throw new RangeError("name at least one label to export");
  const filter: SearchFilter = {
    labels,
    robots: options.robots,
    fromMs: options.fromMs,
    toMs: options.toMs,
  };
  const total = countFrames(catalog, filter); // also checks the labels exist
  const format = out.endsWith(".tar") ? "tar" : "dir";
  const nowMs = options.nowMs ?? Date.now();
  const sink = format === "tar" ? await tarSink(out, nowMs) : await dirSink(out);
  const started = performance.now();
  const state: ExportProgress = { frames: 0, total, files: 0, bytes: 0, missing: 0, elapsedMs: 0 };
  const perLabel: Record<string, number> = Object.fromEntries(labels.map((l) => [l, 0]));
  const folders = new Set<string>();
  let lastReport = started;
  const report = () => {
    state.elapsedMs = Math.round(performance.now() - started);
    options.progress?.({ ...state });
  };
  try {
    let cursor: string | null = null;
    do {
      const page = searchFrames(catalog, { ...filter, order: "oldest", limit: 200, cursor });
      cursor = page.nextCursor;
      for (const hit of page.hits) {
        const row = hit.frame;
        const data = await options.fetch(row.key, row);
        state.frames++;
        if (!data) {
          state.missing++;
          options.onMissing?.(row);
          continue;
        }
        const name = exportFileName(row);
        const clipNames = hit.clips.map((c) => c.name);
        for (const label of labels) {
          if (!hit.labels.includes(label)) continue;
          if (!folders.has(label)) {
            await sink.folder(label);
            folders.add(label);
          }
          const path = `${label}/${name}`;
          await sink.file(path, data, row.timestampMs);
          await sink.metadata(JSON.stringify(metadataRecord(path, label, row, hit.labels, clipNames)));
          state.files++;
          state.bytes += data.length;
          perLabel[label]++;
        }
        if (performance.now() - lastReport >= 1000) {
          lastReport = performance.now();
          report();
        }
      }
    } while (cursor);
    await sink.finish();
  } catch (error) {
    await sink.abort();
    throw error;
  }
  report();
  return { ...state, out, format, perLabel };
}
