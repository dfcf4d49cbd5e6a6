/**
 * The export of src/library/export.ts (any format: ImageFolder, COCO, YOLO, CVAT, Label Studio) as a tar stream
 * instead of a file, for the HTTP API: entries are produced as the reader pulls them, one frame fetched at a time,
 * so a download starts at once and memory stays bounded however many frames match. The documents (metadata,
 * COCO JSON, CVAT XML, Label Studio tasks) and the missing list are spooled to temporary files and sent last (only
 * then is it known which frames no store held). A reader that goes away cancels the stream; the spool files are
 * removed either way.
 *
 * `openExportStream` runs the export up to its first bytes before it returns: a store that is down, or an export
 * none of whose frames any store holds, fails there, before a response has started (the API answers 502). Once
 * bytes have gone out, a store failure can only cut the stream short (the client sees a transfer error and the
 * tar has no end marker), and `ExportTracker` records the outcome and the progress, which the web UI polls and
 * shows (GET /api/exports/{id}).
 *
 * MP4 and MCAP are streamed by src/library/export_media.ts (`openMediaStream`: the same first-bytes rule, the same
 * progress and end callbacks), and the tracker here records them like the datasets.
 */
import type { Catalog } from "../catalog/catalog.ts";
import { messageOf } from "../errors.ts";
import {
  type ExportCounts,
  exportEntries,
  type ExportFormat,
  type ExportPlan,
  type FetchFrame,
  newCounts,
  TAR_END,
  tarEntry,
} from "./export.ts";

export type { ExportCounts };

export interface ExportStreamOptions {
  fetch: FetchFrame;
  /** Time of the folder and document entries (default: now). */
  nowMs?: number;
  /** Waits before the 2nd, 3rd, ... attempt of a failing fetch (default: export.ts's). */
  retryDelaysMs?: number[];
  /** Called after every frame. */
  onProgress?: (p: ExportCounts) => void;
  /** Called once the stream has ended (complete, failed or cancelled). */
  onEnd?: (summary: ExportCounts & { error?: unknown }) => void;
}

async function* tarStream(
  catalog: Catalog,
  plan: ExportPlan,
  o: ExportStreamOptions,
  counts: ExportCounts,
): AsyncGenerator<Uint8Array> {
  const nowMs = o.nowMs ?? Date.now();
  let error: unknown;
  let complete = false;
  try {
    const entries = exportEntries(catalog, plan, {
      fetch: o.fetch,
      retryDelaysMs: o.retryDelaysMs,
      nowMs,
      onFrame: (c) => o.onProgress?.(c),
    }, counts);
    for await (const entry of entries) yield* tarEntry(entry, nowMs);
    yield TAR_END;
    complete = true;
  } catch (e) {
    error = e;
    throw e;
  } finally {
    // A reader that went away before the end (return() without an error) leaves a cut tar too: not complete.
    const failure = complete ? undefined : error ?? new Error("the client went away before the end");
    o.onEnd?.({ ...counts, ...(failure === undefined ? {} : { error: failure }) });
  }
}

/**
 * Runs the planned export until its first bytes are ready and returns them as a stream. Throws (nothing has been
 * sent) when a store keeps failing before that, or when no matching frame is in any store.
 */
export async function openExportStream(
  catalog: Catalog,
  plan: ExportPlan,
  options: ExportStreamOptions,
): Promise<ReadableStream<Uint8Array>> {
  const it = tarStream(catalog, plan, options, newCounts(plan));
  let first: IteratorResult<Uint8Array> | null = await it.next();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = first ?? await it.next();
      } catch (error) {
        // The HTTP server cuts the response and prints the reason to stderr; onEnd has logged the whole error, so
        // the reason is one line (an Error would be printed with its stack and causes).
        controller.error(`export cut short: ${messageOf(error)}`);
        return;
      }
      first = null;
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await it.return(undefined);
    },
  }, { highWaterMark: 0 });
}

// --------------------------------------------------------------------------------------- what became of exports

export type ExportState = "running" | "complete" | "incomplete" | "failed";

/** What the API reports of an export (GET /api/exports/{id}), for the UI to show after a download. */
export interface ExportStatus {
  id: string;
  state: ExportState;
  /** The dataset format. */
  format: ExportFormat;
  labels: string[];
  total: number;
  frames: number;
  files: number;
  bytes: number;
  missing: number;
  missing_keys: string[];
  /** Boxes written so far. */
  boxes: number;
  /** Frames written per split (or per the format's one set). */
  splits: Record<string, number>;
  error: string | null;
  started: string;
  ended: string | null;
}

/** Ids a client may choose for its export (so it can ask for the outcome of a download it cannot read). */
export const EXPORT_ID = /^[A-Za-z0-9_-]{8,64}$/;

/** The most recent exports' outcomes, kept in memory (the oldest forgotten beyond `keep`). */
export class ExportTracker {
  readonly #exports = new Map<string, ExportStatus>();
  readonly #keep: number;

  constructor(keep = 200) {
    this.#keep = keep;
  }

  /** Records a new export as running; an id used before starts over. */
  start(id: string, labels: string[], total: number, format: ExportFormat = "imagefolder"): ExportStatus {
    const status: ExportStatus = {
      id,
      state: "running",
      format,
      labels,
      total,
      frames: 0,
      files: 0,
      bytes: 0,
      missing: 0,
      missing_keys: [],
      boxes: 0,
      splits: {},
      error: null,
      started: new Date().toISOString(),
      ended: null,
    };
    this.#exports.delete(id);
    this.#exports.set(id, status);
    while (this.#exports.size > this.#keep) this.#exports.delete(this.#exports.keys().next().value!);
    return status;
  }

  /** Copies counts into the export's status. */
  update(status: ExportStatus, counts: ExportCounts): void {
    status.frames = counts.frames;
    status.files = counts.files;
    status.bytes = counts.bytes;
    status.missing = counts.missing;
    status.missing_keys = [...counts.missingKeys];
    status.boxes = counts.boxes;
    status.splits = { ...counts.perSplit };
  }

  /** Marks the end: complete, incomplete (frames missing, listed in MISSING.txt) or failed. */
  end(status: ExportStatus, counts: ExportCounts, error?: unknown): void {
    this.update(status, counts);
    status.ended = new Date().toISOString();
    if (error !== undefined) {
      status.state = "failed";
      status.error = messageOf(error);
    } else status.state = counts.missing ? "incomplete" : "complete";
  }

  get(id: string): ExportStatus | undefined {
    return this.#exports.get(id);
  }
}
