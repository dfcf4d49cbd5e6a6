/**
 * MP4 (H.264) of stored frames, made by the machine's ffmpeg as a child process.
 *
 * Timing (`VideoClock`, `FixedRate`): a video is parts played one after the other (src/library/export_selection.ts
 * says which). Within a part, a frame appears at its capture time less the part's first capture time, and stays
 * until the next frame, as the scene did (frame-bucket keeps only frames that changed). The last frame of a part
 * stays `HOLD_MS` (1 s), then the next part begins. Times are whole milliseconds, strictly increasing (a frame
 * captured in the same ms as the one before comes 1 ms later).
 * - Variable frame rate (default): every frame is one video frame at exactly that time (an MP4 track in ms).
 * - Fixed rate (`fps`): video frame k at k/fps s shows the latest frame that had appeared by then; a frame is held
 *   (handed to ffmpeg again for each video frame it fills: ffmpeg's own frame repeating guesses at the end of the
 *   stream), and a frame replaced by the next within one frame period is not shown. A long gap costs a decode per
 *   video frame it fills.
 *
 * The encoder (`Mp4Encoder`): frames go to ffmpeg's stdin as a Matroska stream of the stored JPEGs with their
 * video times (formats/matroska.ts), one frame at a time, so memory stays bounded: ffmpeg holds what libx264 needs
 * (preset veryfast: a short look-ahead), this process one frame and a pipe's worth. No B-frames, so every
 * frame's presentation time is its decoding time and the first frame is at 0 (also in a fragmented MP4, which has
 * no edit list). The output is a file (moov atom moved to the front, `+faststart`, so players start at once) or,
 * for the HTTP API, a fragmented MP4 on stdout (fragments at key frames), streamed as it is encoded. The last
 * frame's duration is set through the output rate (-r 1000/HOLD_MS with timestamps passed through as given).
 */
import { ServiceError } from "../../errors.ts";
import { matroskaFrame, matroskaHead } from "./matroska.ts";

/** How long the last frame of a part stays on screen before the next part (or the end). */
export const HOLD_MS = 1000;

/** The video's clock: the time of each frame in the video, part by part (see the module comment). */
export class VideoClock {
  #partStartCapture: number | null = null;
  #partStartVideo = 0;
  #last = -1;
  #end = 0;
  #part = -1;

  /** The video time (ms) of a frame captured at `captureMs` in part `part` (parts in order, from 0). */
  place(part: number, captureMs: number): number {
    if (part !== this.#part) {
      this.#part = part;
      this.#partStartCapture = captureMs;
      this.#partStartVideo = this.#end;
    }
    const at = Math.max(this.#partStartVideo + (captureMs - this.#partStartCapture!), this.#last + 1);
    this.#last = at;
    this.#end = at + HOLD_MS;
    return at;
  }

  /** The end of the video so far: the last frame's time plus HOLD_MS (0 before any frame). */
  get endMs(): number {
    return this.#end;
  }
}

/** A frame placed on a fixed-rate video: shown in video frames `slot` to `until - 1` (frame k at k / fps s). */
export interface Slotted<T> {
  frame: T;
  slot: number;
  until: number;
}

/**
 * Fixed-rate placement: frames come with their video times in order; each is handed back once it is known to be
 * shown (the next frame starts in a later slot), with the slots it fills; a frame replaced within its slot goes
 * to `dropped`. `finish` hands back the last frame, filling the video to its end.
 */
export class FixedRate<T> {
  readonly fps: number;
  #pending: { frame: T; slot: number } | null = null;

  constructor(fps: number) {
    this.fps = fps;
  }

  /** The first slot at or after `videoMs`. */
  slotOf(videoMs: number): number {
    // Rounding guards against 1000/fps not being exact (e.g. 3 fps): 333.33... ms is slot 1, not 2.
    return Math.ceil(Math.round(videoMs * this.fps * 1e6) / 1e9);
  }

  /** The time of a slot, in whole ms (as the frames are handed to ffmpeg). */
  slotMs(slot: number): number {
    return Math.round(slot * 1000 / this.fps);
  }

  push(frame: T, videoMs: number, dropped: (frame: T) => void): Slotted<T>[] {
    const slot = this.slotOf(videoMs);
    const out: Slotted<T>[] = [];
    if (this.#pending) {
      if (this.#pending.slot === slot) dropped(this.#pending.frame);
      else out.push({ ...this.#pending, until: slot });
    }
    this.#pending = { frame, slot };
    return out;
  }

  /** The last frame, filling a video that ends at `endMs`; the number of slots (video frames). */
  finish(endMs: number): { last: Slotted<T> | null; slots: number } {
    const p = this.#pending;
    this.#pending = null;
    if (!p) return { last: null, slots: 0 };
    const slots = Math.max(this.slotOf(endMs), p.slot + 1);
    return { last: { ...p, until: slots }, slots };
  }
}

/** Where the encoded video goes: a file (written as `<file>.partial`, renamed by the caller), or a stream. */
export type Mp4Output = { file: string } | { stream: true };

export interface Mp4EncoderOptions {
  width: number;
  height: number;
  /** Null: variable frame rate (timestamps as given). */
  fps: number | null;
  output: Mp4Output;
  /** The ffmpeg to run (default `ffmpeg` on PATH). */
  ffmpeg?: string;
}

const STDERR_KEEP = 4096;

/** ffmpeg's arguments for an encode (see the module comment). */
export function ffmpegArgs(o: Mp4EncoderOptions): string[] {
  // H.264 in 4:2:0 needs even sizes; a frame of another size is scaled into the first frame's box.
  const w = Math.max(2, o.width - (o.width % 2)), h = Math.max(2, o.height - (o.height % 2));
  const timing = o.fps === null
    ? [
      "-fps_mode",
      "passthrough",
      "-enc_time_base",
      "1:1000",
      "-r",
      `1000/${HOLD_MS}`,
      "-video_track_timescale",
      "1000",
    ]
    : ["-fps_mode", "passthrough", "-r", String(o.fps)]; // time base 1/fps: ms times land on their frames
  const container = "file" in o.output
    ? ["-movflags", "+faststart", "-f", "mp4", "-y", o.output.file]
    : ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"];
  return [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-f",
    "matroska",
    "-i",
    "pipe:0",
    "-map",
    "0:v:0",
    "-vf",
    `scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:-1:-1,setsar=1`,
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "23",
    "-bf",
    "0",
    "-pix_fmt",
    "yuv420p",
    ...timing,
    "-metadata",
    "encoder=frame-bucket",
    ...container,
  ];
}

/** One ffmpeg encode: frames in (`frame`), then `finish`; `abort` stops it. */
export class Mp4Encoder {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: Promise<string>;
  /** The fragmented MP4 as ffmpeg writes it (stream output only). */
  readonly output: ReadableStream<Uint8Array> | null;
  #aborted = false;

  private constructor(child: Deno.ChildProcess, stream: boolean) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.output = stream ? child.stdout : null;
    this.#stderr = (async () => {
      let text = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        text = (text + chunk).slice(-STDERR_KEEP);
      }
      return text.trim();
    })();
  }

  /** Starts ffmpeg and writes the stream's head. Throws a ServiceError when ffmpeg cannot be started. */
  static async start(o: Mp4EncoderOptions): Promise<Mp4Encoder> {
    const ffmpeg = o.ffmpeg ?? "ffmpeg";
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(ffmpeg, {
        args: ffmpegArgs(o),
        stdin: "piped",
        stdout: "file" in o.output ? "null" : "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new ServiceError(
        "ffmpeg",
        `cannot start ${ffmpeg} for the MP4 export (${error}): install ffmpeg (Debian: apt-get install ffmpeg)`,
        { retriable: false, cause: error },
      );
    }
    const encoder = new Mp4Encoder(child, !("file" in o.output));
    await encoder.#write([matroskaHead(o.width, o.height)]);
    return encoder;
  }

  async #write(parts: Uint8Array[]): Promise<void> {
    try {
      for (const p of parts) await this.#stdin.write(p);
    } catch (error) {
      // ffmpeg went away (it failed, or abort killed it): say why, from its own words.
      throw await this.#failure(`ffmpeg stopped reading frames (${error})`);
    }
  }

  async #failure(what: string): Promise<ServiceError> {
    const status = await this.#child.status;
    const said = await this.#stderr;
    return new ServiceError(
      "ffmpeg",
      this.#aborted
        ? "the MP4 export was stopped"
        : `${what}; ffmpeg exited ${status.code}${said ? `: ${said}` : ""}`,
      { retriable: false },
    );
  }

  /** Hands ffmpeg a frame at `timeMs` (ms of video time; with `durationMs`, shown that long). */
  frame(jpeg: Uint8Array, timeMs: number, durationMs?: number): Promise<void> {
    return this.#write(matroskaFrame(jpeg, timeMs, durationMs));
  }

  /** Ends the input and waits for ffmpeg; throws (with ffmpeg's message) when it did not succeed. */
  async finish(): Promise<void> {
    try {
      await this.#stdin.close();
    } catch {
      // reported below from the exit status
    }
    const status = await this.#child.status;
    if (!status.success) throw await this.#failure("ffmpeg could not encode the video");
    await this.#stderr;
  }

  /** Stops ffmpeg (its output is incomplete) and waits for it to go. */
  async abort(): Promise<void> {
    this.#aborted = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#stdin.abort().catch(() => {});
    await this.#child.status;
    if (this.output) await this.output.cancel().catch(() => {});
    await this.#stderr.catch(() => "");
  }

  /** The process id (the benchmark reads its memory). */
  get pid(): number {
    return this.#child.pid;
  }
}
