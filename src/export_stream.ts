/**
 * The export of src/export.ts (ImageFolder layout: `<label>/<robot>_<time>_<seq>.jpg` plus `metadata.jsonl`) as
 * a ustar stream instead of a file, for the HTTP API: entries are produced as the reader pulls them, one frame
 * fetched at a time, so a download starts at once and memory stays bounded however many frames match. The
 * metadata lines are spooled to a temporary file and sent as the last entry (only then is it known which frames
 * no store held). A reader that goes away cancels the stream; the spool file is removed either way.
 */
import type { Catalog } from "./catalog.ts";
import { exportFileName, type FetchFrame, metadataRecord, tarHeader } from "./export.ts";
import { searchFrames } from "./search.ts";

export interface ExportStreamOptions {
  /** At least one label; a frame is written once per requested label it matches. */
  labels: string[];
  robots?: string[];
  fromMs?: number;
  toMs?: number;
  fetch: FetchFrame;
  /** Time of the folder and metadata entries (default: now). */
  nowMs?: number;
  /** Called once the stream has ended (complete, failed or cancelled). */
  onEnd?: (summary: { frames: number; files: number; missing: number; error?: unknown }) => void;
}

const BLOCK = 512;
const encoder = new TextEncoder();

function padding(size: number): Uint8Array {
  const rest = size % BLOCK;
  return new Uint8Array(rest ? BLOCK - rest : 0);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

async function* entries(catalog: Catalog, o: ExportStreamOptions): AsyncGenerator<Uint8Array> {
  const labels = [...new Set(o.labels)];
  const nowMs = o.nowMs ?? Date.now();
  const spool = await Deno.makeTempFile({ prefix: "frame-bucket-http-export-", suffix: ".jsonl" });
  const summary: { frames: number; files: number; missing: number; error?: unknown } = {
    frames: 0,
    files: 0,
    missing: 0,
  };
  let meta: Deno.FsFile | null = await Deno.open(spool, { write: true, truncate: true });
  try {
    const folders = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = searchFrames(catalog, {
        labels,
        robots: o.robots,
        fromMs: o.fromMs,
        toMs: o.toMs,
        order: "oldest",
        limit: 200,
        cursor,
      });
      cursor = page.nextCursor;
      for (const hit of page.hits) {
        const row = hit.frame;
        const data = await o.fetch(row.key, row);
        summary.frames++;
        if (!data) {
          summary.missing++;
          continue;
        }
        const name = exportFileName(row);
        for (const label of labels) {
          if (!hit.labels.includes(label)) continue;
          if (!folders.has(label)) {
            folders.add(label);
            yield tarHeader(`${label}/`, 0, nowMs, "5");
          }
          const path = `${label}/${name}`;
          yield tarHeader(path, data.length, row.timestampMs);
          yield data;
          yield padding(data.length);
          const line = JSON.stringify(metadataRecord(
            path,
            label,
            row,
            hit.labels,
            hit.clips.map((c) => c.name),
          )) +
            "\n";
          await writeAll(meta, encoder.encode(line));
          summary.files++;
        }
      }
    } while (cursor);
    meta.close();
    meta = null;
    const size = (await Deno.stat(spool)).size;
    yield tarHeader("metadata.jsonl", size, nowMs);
    const input = await Deno.open(spool, { read: true });
    try {
      let left = size;
      while (left > 0) {
        const chunk = new Uint8Array(Math.min(64 * 1024, left));
        const n = await input.read(chunk);
        if (n === null) throw new Error(`the metadata spool ended ${left} bytes early`);
        left -= n;
        yield chunk.subarray(0, n);
      }
    } finally {
      input.close();
    }
    yield padding(size);
    yield new Uint8Array(2 * BLOCK);
  } catch (error) {
    summary.error = error;
    throw error;
  } finally {
    meta?.close();
    await Deno.remove(spool).catch(() => {});
    o.onEnd?.(summary);
  }
}

/**
 * The export as a byte stream. Check the request first (labels exist: `countFrames`), since once the stream has
 * started an error can only cut it short.
 */
export function exportTarStream(catalog: Catalog, options: ExportStreamOptions): ReadableStream<Uint8Array> {
  if (new Set(options.labels).size === 0) throw new RangeError("name at least one label to export");
  return ReadableStream.from(entries(catalog, options));
}
