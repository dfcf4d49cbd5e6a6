/**
 * Export of a search, a clip or a collection as one file to watch or to replay: an MP4 video (formats/mp4.ts,
 * H.264 by ffmpeg) with a sidecar JSON naming each frame, or an MCAP log (formats/mcap.ts) for Foxglove and ROS
 * tooling. Planned like the dataset formats (`planExport` in export.ts: the same filter, clip and collection
 * selection, parts), and fed by the same reader (`exportItems`: frames oldest first, a page of the catalog at a
 * time, a few fetched ahead, from whichever tier holds them, a failing store retried), so memory stays bounded
 * however many frames a robot-day has: one frame in hand, the MCAP writer's current chunk, ffmpeg's encoder.
 *
 * Files (`exportMedia`, the CLI): written as `<out>.partial`, renamed when complete, removed on failure. MP4: the
 * video at `<name>.mp4` and the sidecar at `<name>.frames.json` (see `Mp4Sidecar`). MCAP: `<name>.mcap`.
 * Streams (`openMediaStream`, the HTTP API): MCAP as the writer produces it; MP4 as fragmented MP4 from ffmpeg's
 * stdout. Either runs up to its first frame before it returns, so a store that is down fails before a response
 * starts. The MP4 sidecar of a stream comes from the catalog alone (`mp4SidecarFromCatalog`: no image read).
 *
 * Frames no store holds are left out and counted as missing, as in the dataset formats: the MP4 shows the frame
 * before for longer (the sidecar lists them with `missing: true`); MCAP has no image for them, and their
 * `/R/frames` record says `missing: true`. When none of the matching frames can be read, or none matches, the
 * export fails: there is no empty video.
 */
import { McapWriter } from "@mcap/core";
import { concatBytes } from "../bytes.ts";
import type { Catalog, Clip, FrameRow } from "../catalog/catalog.ts";
import { BadInputError, messageOf } from "../errors.ts";
import {
  type ExportCounts,
  type ExportItem,
  exportItems,
  type ExportOptions,
  type ExportPlan,
  type ExportSummary,
  type FetchFrame,
  newCounts,
  progressOf,
  Spool,
} from "./export.ts";
import { describeSelection } from "./export_selection.ts";
import { jpegSize } from "./image_size.ts";
import { FixedRate, HOLD_MS, Mp4Encoder, VideoClock } from "./formats/mp4.ts";
import {
  clipMetadata,
  collectionMetadata,
  COMPRESSED_IMAGE_SCHEMA,
  compressedImage,
  FRAME_SCHEMA,
  frameRecord,
  IMAGE_ANNOTATIONS_SCHEMA,
  imageAnnotations,
  nanos,
  topics,
} from "./formats/mcap.ts";

const encoder = new TextEncoder();
const iso = (ms: number) => new Date(ms).toISOString();

/** One frame in the MP4 sidecar. */
export interface Mp4FrameRecord {
  key: string;
  robot: string;
  seq: number;
  /** Capture time, ISO 8601 UTC, and in ms since the epoch. */
  captured: string;
  captured_ms: number;
  /** The part of the video (index into `parts`). */
  part: number;
  /** When the frame appears in the video (ms from its start); null when it does not (missing, or replaced). */
  video_ms: number | null;
  /** The first video frame (0-based) showing it; null when none does. */
  video_frame: number | null;
  /** No store held the frame: it is not in the video (the frame before stays longer). */
  missing?: true;
  /** Fixed rate only: replaced by the next frame within one frame period, so never shown. */
  dropped?: true;
}

/** A part of the video: a clip, or a robot's frames of a search. */
export interface Mp4Part {
  robot: string | null;
  clip: { id: number; name: string } | null;
  /** Frames of the part in the video (missing ones not counted). */
  frames: number;
  /** First and last capture time of its frames in the video. */
  first_ms: number | null;
  last_ms: number | null;
  /** Where it plays in the video (ms). */
  video_from_ms: number | null;
  video_to_ms: number | null;
}

/** The sidecar JSON of an MP4: `frames` in capture order within each part, parts in playing order. */
export interface Mp4Sidecar {
  video: string;
  selection: string | null;
  /** Null: variable frame rate (each frame at its capture time). */
  fps: number | null;
  /** How long the last frame of a part stays (ms). */
  hold_ms: number;
  /** Frames in the video (fixed rate: including the repeats that hold frames). */
  video_frames: number;
  duration_ms: number;
  /** Catalogued frames handled, and how many of them no store held. */
  frames_total: number;
  missing: number;
  parts: Mp4Part[];
  frames: Mp4FrameRecord[];
}

export interface MediaOptions {
  fetch: FetchFrame;
  retryDelaysMs?: number[];
  readAhead?: number;
  /** Called after every frame. */
  onFrame?: (counts: ExportCounts) => void;
  onMissing?: (row: FrameRow) => void;
  /** The ffmpeg to run (default: `ffmpeg` on PATH). */
  ffmpeg?: string;
  /** Time of the export (MCAP metadata; default now). */
  nowMs?: number;
}

/** Refuses an export that would write no frame. */
function checkNotEmpty(plan: ExportPlan): void {
  if (plan.total === 0) {
    throw new BadInputError(
      `nothing to export as ${plan.format}: no frame matches${
        describeSelection(plan.selection) ? ` in ${describeSelection(plan.selection)}` : ""
      }`,
    );
  }
}

// ------------------------------------------------------------------------------------------------------- MP4

/** A video in the making: frames placed on the clock, handed to the encoder, recorded for the sidecar. */
class Mp4Run {
  readonly clock = new VideoClock();
  readonly rate: FixedRate<{ data: Uint8Array | undefined; record: Mp4FrameRecord }> | null;
  readonly parts: Mp4Part[];
  encoder: Mp4Encoder | null = null;
  videoFrames = 0;
  /** Records not yet written: a frame at a fixed rate waits until it is known to be shown. */
  readonly #queue: { record: Mp4FrameRecord; done: boolean }[] = [];
  readonly #records: Spool | null;
  #part = -1;

  constructor(
    readonly plan: ExportPlan,
    records: Spool | null,
    readonly start: (width: number, height: number) => Promise<Mp4Encoder> | null,
  ) {
    this.rate = plan.fps === null ? null : new FixedRate(plan.fps);
    this.#records = records;
    this.parts = plan.parts.map((p) => ({
      robot: p.robot,
      clip: p.clip ? { id: p.clip.id, name: p.clip.name } : null,
      frames: 0,
      first_ms: null,
      last_ms: null,
      video_from_ms: null,
      video_to_ms: null,
    }));
  }

  async #flush(): Promise<void> {
    while (this.#queue.length && this.#queue[0].done) {
      const { record } = this.#queue.shift()!;
      const json = JSON.stringify(record);
      await this.#records?.append(this.#records.lines ? `,\n  ${json}` : `  ${json}`);
    }
  }

  /** Hands a frame (the bytes; undefined in a dry run, null when missing) to the video. */
  async add(item: ExportItem): Promise<void> {
    const row = item.hit.frame;
    const record: Mp4FrameRecord = {
      key: row.key,
      robot: row.robotId,
      seq: row.seq,
      captured: iso(row.timestampMs),
      captured_ms: row.timestampMs,
      part: item.part,
      video_ms: null,
      video_frame: null,
    };
    if (item.data === null) {
      record.missing = true;
      this.#queue.push({ record, done: true });
      return await this.#flush();
    }
    if (item.data && !this.encoder && this.start) {
      const { width, height } = jpegSize(item.data);
      this.encoder = await this.start(width, height);
    }
    const videoMs = this.clock.place(item.part, row.timestampMs);
    const part = this.parts[item.part];
    if (item.part !== this.#part) {
      this.#part = item.part;
      part.video_from_ms = videoMs;
      part.first_ms = row.timestampMs;
    }
    part.frames++;
    part.last_ms = row.timestampMs;
    part.video_to_ms = this.clock.endMs;
    const entry = { record, done: false };
    this.#queue.push(entry);
    if (!this.rate) {
      record.video_ms = videoMs;
      record.video_frame = this.videoFrames++;
      entry.done = true;
      if (item.data) await this.encoder!.frame(item.data, videoMs);
    } else {
      const shown = this.rate.push({ data: item.data, record }, videoMs, (dropped) => {
        dropped.record.dropped = true;
        this.#done(dropped.record);
      });
      for (const s of shown) await this.#show(s.frame, s.slot, s.until);
    }
    await this.#flush();
  }

  #done(record: Mp4FrameRecord): void {
    const entry = this.#queue.find((e) => e.record === record);
    if (entry) entry.done = true;
  }

  /** Hands ffmpeg a frame for each video frame it fills, `slot` to `until - 1`. */
  async #show(
    frame: { data: Uint8Array | undefined; record: Mp4FrameRecord },
    slot: number,
    until: number,
  ): Promise<void> {
    frame.record.video_frame = slot;
    frame.record.video_ms = this.rate!.slotMs(slot);
    this.#done(frame.record);
    if (!frame.data) return;
    for (let k = slot; k < until; k++) await this.encoder!.frame(frame.data, this.rate!.slotMs(k));
  }

  /** Places the last frames; the number of video frames and the duration. */
  async end(): Promise<{ videoFrames: number; durationMs: number }> {
    if (!this.rate) {
      await this.#flush();
      return { videoFrames: this.videoFrames, durationMs: this.clock.endMs };
    }
    const { last, slots } = this.rate.finish(this.clock.endMs);
    if (last) await this.#show(last.frame, last.slot, last.until);
    await this.#flush();
    this.videoFrames = slots;
    return { videoFrames: slots, durationMs: Math.round(slots * 1000 / this.rate.fps) };
  }

  /** The sidecar's pieces: the head as text, the spooled frame records, the tail. */
  sidecarParts(video: string, counts: ExportCounts, durationMs: number): (string | Spool)[] {
    const head = {
      video,
      selection: describeSelection(this.plan.selection),
      fps: this.plan.fps,
      hold_ms: HOLD_MS,
      video_frames: this.videoFrames,
      duration_ms: durationMs,
      frames_total: counts.frames,
      missing: counts.missing,
      parts: this.parts,
    };
    const text = JSON.stringify(head, null, 1);
    const records = this.#records!;
    return [`${text.slice(0, -2)},\n "frames": [\n`, records, "\n ]\n}\n"];
  }
}

/** Writes text and spooled pieces to a file. */
async function writeParts(path: string, parts: (string | Spool)[]): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const writer = file.writable.getWriter();
    for (const part of parts) {
      if (typeof part === "string") await writer.write(encoder.encode(part));
      else for await (const chunk of part.chunks()) await writer.write(chunk);
    }
    await writer.close();
  } catch (error) {
    try {
      file.close();
    } catch {
      // closed by the writer
    }
    throw error;
  }
}

/** The sidecar's path for a video path (`clip.mp4` -> `clip.frames.json`). */
export function sidecarPath(video: string): string {
  return `${video.replace(/\.mp4$/i, "")}.frames.json`;
}

const baseName = (path: string) => path.slice(path.lastIndexOf("/") + 1);

async function mp4File(
  catalog: Catalog,
  plan: ExportPlan,
  out: string,
  o: MediaOptions,
  counts: ExportCounts,
): Promise<{ sidecar: string; videoFrames: number; durationMs: number }> {
  if (!/\.mp4$/i.test(out)) {
    throw new BadInputError(`an MP4 export writes a file: name it NAME.mp4, not ${out}`);
  }
  const partial = `${out}.partial`;
  const sidecar = sidecarPath(out);
  const records = await Spool.create("mp4-frames");
  const run = new Mp4Run(
    plan,
    records,
    (width, height) =>
      Mp4Encoder.start({ width, height, fps: plan.fps, output: { file: partial }, ffmpeg: o.ffmpeg }),
  );
  try {
    for await (const item of exportItems(catalog, plan, o.fetch, o.retryDelaysMs, o.readAhead)) {
      count(item, counts, o);
      await run.add(item);
      o.onFrame?.(counts);
    }
    const { videoFrames, durationMs } = await run.end();
    await run.encoder!.finish();
    counts.files = 2;
    await writeParts(`${sidecar}.partial`, run.sidecarParts(baseName(out), counts, durationMs));
    await Deno.rename(partial, out);
    await Deno.rename(`${sidecar}.partial`, sidecar);
    return { sidecar, videoFrames, durationMs };
  } catch (error) {
    await run.encoder?.abort();
    await Deno.remove(partial).catch(() => {});
    await Deno.remove(`${sidecar}.partial`).catch(() => {});
    throw error;
  } finally {
    await records.remove();
  }
}

/** Counts a frame in. */
function count(item: ExportItem, counts: ExportCounts, o: Pick<MediaOptions, "onMissing">): void {
  counts.frames++;
  if (item.data === null) {
    counts.missing++;
    if (counts.missingKeys.length < 20) counts.missingKeys.push(item.hit.frame.key);
    o.onMissing?.(item.hit.frame);
  } else if (item.data) counts.bytes += item.data.length;
}

/**
 * The MP4 sidecar of a plan from the catalog alone (no image is read: a frame no store holds is listed as if it
 * were in the video), as the HTTP API serves it next to a streamed video.
 */
export async function mp4SidecarFromCatalog(
  catalog: Catalog,
  plan: ExportPlan,
  video: string,
): Promise<Uint8Array> {
  checkNotEmpty(plan);
  const records = await Spool.create("mp4-frames");
  try {
    const run = new Mp4Run(plan, records, () => null);
    const counts = newCounts(plan);
    for await (const item of exportItems(catalog, plan, null)) {
      counts.frames++;
      await run.add(item);
    }
    const { durationMs } = await run.end();
    const chunks: Uint8Array[] = [];
    for (const part of run.sidecarParts(video, counts, durationMs)) {
      if (typeof part === "string") chunks.push(encoder.encode(part));
      else for await (const c of part.chunks()) chunks.push(c.slice());
    }
    return concatBytes(chunks);
  } finally {
    await records.remove();
  }
}

/** A fragmented MP4 streamed from ffmpeg, fed in the background (see `openMediaStream`). */
async function mp4Stream(
  catalog: Catalog,
  plan: ExportPlan,
  o: MediaOptions & { onEnd?: (counts: ExportCounts, error?: unknown) => void },
  counts: ExportCounts,
): Promise<ReadableStream<Uint8Array>> {
  let started!: (encoder: Mp4Encoder) => void;
  const first = new Promise<Mp4Encoder>((resolve) => started = resolve);
  const run = new Mp4Run(plan, null, async (width, height) => {
    const enc = await Mp4Encoder.start({
      width,
      height,
      fps: plan.fps,
      output: { stream: true },
      ffmpeg: o.ffmpeg,
    });
    started(enc);
    return enc;
  });
  let stopped = false;
  const feeding = (async () => {
    try {
      for await (const item of exportItems(catalog, plan, o.fetch, o.retryDelaysMs, o.readAhead)) {
        if (stopped) throw new Error("the client went away before the end");
        count(item, counts, o);
        await run.add(item);
        o.onFrame?.(counts);
      }
      await run.end();
      await run.encoder!.finish();
      counts.files = 1;
    } catch (error) {
      await run.encoder?.abort();
      throw error;
    }
  })();
  feeding.catch(() => {});
  let ended = false;
  const end = (error?: unknown) => {
    if (ended) return;
    ended = true;
    o.onEnd?.(counts, error);
  };
  // Nothing is returned before the first frame is in the encoder's hands, or the export failed.
  let encoder: Mp4Encoder | null;
  try {
    encoder = await Promise.race([first, feeding.then(() => null)]);
    if (!encoder) throw new Error("the MP4 export ended before its first frame"); // checked not empty
  } catch (error) {
    end(error);
    throw error;
  }
  const reader = encoder.output!.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await reader.read();
        if (!next.done) return controller.enqueue(next.value);
        await feeding;
        end();
        controller.close();
      } catch (error) {
        // A failure after the first bytes can only cut the stream short (the client sees a transfer error).
        const failure = await feeding.then(() => error, (e) => e);
        end(failure);
        controller.error(`export cut short: ${messageOf(failure)}`);
      }
    },
    async cancel() {
      stopped = true;
      await encoder!.abort();
      await feeding.catch(() => {});
      end(new Error("the client went away before the end"));
    },
  }, { highWaterMark: 0 });
}

// ------------------------------------------------------------------------------------------------------ MCAP

/** Bytes handed to McapWriter, kept until the generator passes them on. */
class Collector {
  #position = 0n;
  chunks: Uint8Array[] = [];

  write(buffer: Uint8Array): Promise<void> {
    // The writer reuses its buffers: keep a copy.
    this.chunks.push(buffer.slice());
    this.#position += BigInt(buffer.length);
    return Promise.resolve();
  }

  position(): bigint {
    return this.#position;
  }

  take(): Uint8Array[] {
    const out = this.chunks;
    this.chunks = [];
    return out;
  }
}

/** Chunk size of the MCAP writer: a few full-HD JPEGs per chunk. */
export const MCAP_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The bytes of an MCAP of the plan, as the writer produces them (see formats/mcap.ts for the topics). Nothing is
 * yielded before the first frame is in hand.
 */
export async function* mcapBytes(
  catalog: Catalog,
  plan: ExportPlan,
  o: MediaOptions,
  counts: ExportCounts,
): AsyncGenerator<Uint8Array> {
  const out = new Collector();
  const writer = new McapWriter({
    writable: out,
    useChunks: true,
    useChunkIndex: true,
    useMessageIndex: true,
    useStatistics: true,
    useSummaryOffsets: true,
    useMetadataIndex: true,
    chunkSize: MCAP_CHUNK_BYTES,
  });
  await writer.start({ profile: "", library: "frame-bucket" });
  const imageSchema = await writer.registerSchema(COMPRESSED_IMAGE_SCHEMA);
  const annotationSchema = await writer.registerSchema(IMAGE_ANNOTATIONS_SCHEMA);
  const frameSchema = await writer.registerSchema(FRAME_SCHEMA);
  const channels = new Map<string, { camera: number; annotations: number; frames: number; seq: number }>();
  const channelsOf = async (robot: string) => {
    let c = channels.get(robot);
    if (!c) {
      const t = topics(robot);
      const meta = new Map([["robot", robot]]);
      c = {
        camera: await writer.registerChannel({
          schemaId: imageSchema,
          topic: t.camera,
          messageEncoding: "protobuf",
          metadata: meta,
        }),
        annotations: await writer.registerChannel({
          schemaId: annotationSchema,
          topic: t.annotations,
          messageEncoding: "protobuf",
          metadata: meta,
        }),
        frames: await writer.registerChannel({
          schemaId: frameSchema,
          topic: t.frames,
          messageEncoding: "json",
          metadata: meta,
        }),
        seq: 0,
      };
      channels.set(robot, c);
    }
    return c;
  };
  const clips = new Map<number, Clip | null>(plan.selection.clips.map((c) => [c.id, c]));
  for await (const item of exportItems(catalog, plan, o.fetch, o.retryDelaysMs, o.readAhead)) {
    count(item, counts, o);
    const { frame: row, boxes } = item.hit;
    const c = await channelsOf(row.robotId);
    const time = nanos(row.timestampMs);
    const sequence = ++c.seq;
    for (const ref of item.hit.clips) {
      if (!clips.has(ref.id)) clips.set(ref.id, await catalog.labels().getClip(ref.id));
    }
    if (item.data) {
      await writer.addMessage({
        channelId: c.camera,
        sequence,
        logTime: time,
        publishTime: time,
        data: compressedImage(row.timestampMs, `${row.robotId}/camera`, item.data),
      });
      await writer.addMessage({
        channelId: c.annotations,
        sequence,
        logTime: time,
        publishTime: time,
        data: imageAnnotations(row.timestampMs, boxes),
      });
      counts.boxes += boxes.length;
    }
    await writer.addMessage({
      channelId: c.frames,
      sequence,
      logTime: time,
      publishTime: time,
      data: frameRecord({
        key: row.key,
        robot: row.robotId,
        seq: row.seq,
        captured: iso(row.timestampMs),
        labels: item.hit.labels,
        own_labels: item.hit.directLabels,
        clips: item.hit.clips,
        status: item.hit.status,
        boxes: boxes.length,
        ...(item.data === null ? { missing: true } : {}),
      }),
    });
    o.onFrame?.(counts);
    for (const chunk of out.take()) yield chunk;
  }
  if (counts.frames === 0) checkNotEmpty({ ...plan, total: 0 });
  const selection = describeSelection(plan.selection);
  await writer.addMetadata({
    name: "frame-bucket.export",
    metadata: new Map([
      ["created", iso(o.nowMs ?? Date.now())],
      ["selection", selection ?? "search"],
      ["filter", JSON.stringify(plan.filter)],
      ["frames", String(counts.frames)],
      ["missing", String(counts.missing)],
      ["missing_keys", JSON.stringify(counts.missingKeys)],
    ]),
  });
  if (plan.selection.collection) {
    await writer.addMetadata({ name: "collection", metadata: collectionMetadata(plan.selection.collection) });
  }
  for (const clip of clips.values()) {
    if (clip) await writer.addMetadata({ name: "clip", metadata: clipMetadata(clip) });
  }
  await writer.end();
  counts.files = 1;
  for (const chunk of out.take()) yield chunk;
}

// ------------------------------------------------------------------------------------------------ entry points

/**
 * Exports a planned MP4 or MCAP to the file `out` (`.mp4` or `.mcap`; see the module comment). Throws (and
 * removes what it wrote) when a store keeps failing, ffmpeg fails, or no matching frame is in any store.
 */
export async function exportMedia(
  catalog: Catalog,
  plan: ExportPlan,
  out: string,
  options: ExportOptions & { ffmpeg?: string },
): Promise<ExportSummary> {
  checkNotEmpty(plan);
  const started = performance.now();
  const counts = newCounts(plan);
  let lastReport = started;
  const progress = () => progressOf(counts, started);
  const o: MediaOptions = {
    fetch: options.fetch,
    retryDelaysMs: options.retryDelaysMs,
    readAhead: options.readAhead,
    onMissing: options.onMissing,
    ffmpeg: options.ffmpeg,
    nowMs: options.nowMs,
    onFrame: () => {
      if (performance.now() - lastReport >= 1000) {
        lastReport = performance.now();
        options.progress?.(progress());
      }
    },
  };
  let video: { sidecar: string; videoFrames: number; durationMs: number } | null = null;
  if (plan.format === "mp4") {
    video = await mp4File(catalog, plan, out, o, counts);
  } else {
    if (!/\.mcap$/i.test(out)) {
      throw new BadInputError(`an MCAP export writes a file: name it NAME.mcap, not ${out}`);
    }
    const partial = `${out}.partial`;
    let file: Deno.FsFile | null = null;
    try {
      for await (const chunk of mcapBytes(catalog, plan, o, counts)) {
        file ??= await Deno.open(partial, { write: true, create: true, truncate: true });
        let done = 0;
        while (done < chunk.length) done += await file.write(chunk.subarray(done));
      }
      file!.close();
      file = null;
      await Deno.rename(partial, out);
    } catch (error) {
      try {
        file?.close();
      } catch {
        // closed
      }
      await Deno.remove(partial).catch(() => {});
      throw error;
    }
  }
  const summary = progress();
  options.progress?.(summary);
  return {
    ...summary,
    out,
    as: "file",
    format: plan.format,
    classes: [],
    ...(video
      ? { sidecar: video.sidecar, videoFrames: video.videoFrames, durationMs: video.durationMs }
      : {}),
  };
}

export interface MediaStreamOptions {
  fetch: FetchFrame;
  retryDelaysMs?: number[];
  nowMs?: number;
  ffmpeg?: string;
  onProgress?: (counts: ExportCounts) => void;
  onEnd?: (summary: ExportCounts & { error?: unknown }) => void;
}

/**
 * A planned MP4 (fragmented) or MCAP as a stream for the HTTP API: runs up to the first frame before it returns
 * (throws, nothing sent, when a store fails before that), then produces bytes as the reader pulls them.
 */
export async function openMediaStream(
  catalog: Catalog,
  plan: ExportPlan,
  o: MediaStreamOptions,
): Promise<ReadableStream<Uint8Array>> {
  checkNotEmpty(plan);
  const counts = newCounts(plan);
  const media: MediaOptions = {
    fetch: o.fetch,
    retryDelaysMs: o.retryDelaysMs,
    ffmpeg: o.ffmpeg,
    nowMs: o.nowMs,
    onFrame: (c) => o.onProgress?.(c),
  };
  if (plan.format === "mp4") {
    return await mp4Stream(catalog, plan, {
      ...media,
      onEnd: (c, error) => o.onEnd?.({ ...c, ...(error === undefined ? {} : { error }) }),
    }, counts);
  }
  const it = mcapBytes(catalog, plan, media, counts);
  let ended = false;
  const end = (error?: unknown) => {
    if (ended) return;
    ended = true;
    o.onEnd?.({ ...counts, ...(error === undefined ? {} : { error }) });
  };
  let first: IteratorResult<Uint8Array> | null;
  try {
    first = await it.next();
  } catch (error) {
    end(error);
    throw error;
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = first ?? await it.next();
      } catch (error) {
        end(error);
        controller.error(`export cut short: ${messageOf(error)}`);
        return;
      }
      first = null;
      if (next.done) {
        end();
        controller.close();
      } else controller.enqueue(next.value);
    },
    async cancel() {
      await it.return(undefined);
      end(new Error("the client went away before the end"));
    },
  }, { highWaterMark: 0 });
}
