/**
 * The producer stage: camera frames -> checks and throttle -> bounded queue -> Kafka.
 *
 * Reading the camera and publishing run as two loops joined by a queue of at most `producer.buffer_frames`
 * frames. While the broker is away the queue fills and then drops its oldest frames, counting each, so memory
 * stays bounded and the newest scene is what arrives when the broker returns.
 */
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { encodeFrame, HEADER_BYTES, releaseFrame } from "./frame.ts";
import type { FrameProducer, OutgoingMessage } from "../kafka/client.ts";
import { messageKey } from "../key.ts";
import type { Logger } from "../log.ts";
import { counterLines } from "../metrics.ts";
import { jpegProblem } from "./mjpeg.ts";

/** A frame as the camera layer hands it over. */
export interface CameraFrame {
  jpeg: Uint8Array;
  receivedAtMs: number;
  headers?: Record<string, string>;
}

export interface ProducerCounts {
  /** Frames read from the camera. */
  read: number;
  /** Frames skipped to hold stream.fps. */
  throttled: number;
  /** Parts refused: not a JPEG, too large for a Kafka message, or dropped by the camera reader (see refuse()). */
  refused: number;
  /** Frames acknowledged by the broker. */
  sent: number;
  /** Frames dropped from a full queue while the broker was unreachable. */
  dropped: number;
}

/**
 * Capture time of a frame: the camera's `X-Timestamp: <seconds>.<micros>` when present and within a minute of
 * our clock (the daemon runs on the robot, so it is the same clock, just earlier), otherwise the time it arrived.
 */
export function captureTime(frame: CameraFrame): number {
  const stamp = frame.headers?.["x-timestamp"];
  if (stamp && /^\d+(\.\d+)?$/.test(stamp.trim())) {
    const ms = Math.round(Number(stamp) * 1000);
    if (Math.abs(ms - frame.receivedAtMs) < 60_000) return ms;
  }
  return frame.receivedAtMs;
}

interface Queued extends OutgoingMessage {
  seq: number;
}

export interface ProducerDeps {
  config: Config;
  robotId: string;
  log: Logger;
  kafka: FrameProducer;
  sleep?: (ms: number) => Promise<void>;
}

export class FrameSender {
  readonly counts: ProducerCounts = { read: 0, throttled: 0, refused: 0, sent: 0, dropped: 0 };
  readonly #queue: Queued[] = [];
  #inFlight = 0;
  #seq = 0;
  #tokens = 0;
  #lastAt: number | null = null;
  #wake: (() => void) | null = null;
  #closed = false;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #log: Logger;

  constructor(private readonly deps: ProducerDeps) {
    this.#sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#log = deps.log;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Takes one camera frame: throttles, checks, queues. Returns what happened to it. A frame that is not queued
   * gives its buffer back for the next frames (src/ingest/frame.ts), so the caller must not use it afterwards.
   */
  offer(frame: CameraFrame): "queued" | "throttled" | "refused" | "dropped" {
    const outcome = this.#offer(frame);
    if (outcome !== "queued") releaseFrame(frame.jpeg);
    return outcome;
  }

  #offer(frame: CameraFrame): "queued" | "throttled" | "refused" | "dropped" {
    const { config, robotId } = this.deps;
    this.counts.read++;
    // A token bucket holding up to two frames: the average rate stays at stream.fps, while a camera running at
    // exactly that rate is not throttled by network jitter.
    const elapsed = this.#lastAt === null ? Infinity : Math.max(0, frame.receivedAtMs - this.#lastAt);
    this.#lastAt = frame.receivedAtMs;
    this.#tokens = Math.min(2, this.#tokens + elapsed * config.stream.fps / 1000);
    if (this.#tokens < 1) {
      this.counts.throttled++;
      return "throttled";
    }
    const notJpeg = jpegProblem(frame.jpeg);
    if (notJpeg) {
      this.counts.refused++;
      this.#log.warn(`[producer] ${robotId}: ${notJpeg}; not sent`);
      return "refused";
    }
    if (frame.jpeg.length + HEADER_BYTES > config.kafka.max_message_bytes) {
      this.counts.refused++;
      this.#log.warn(
        `[producer] ${robotId}: frame of ${frame.jpeg.length} bytes exceeds kafka.max_message_bytes ` +
          `(${config.kafka.max_message_bytes}); not sent`,
      );
      return "refused";
    }
    this.#tokens -= 1;
    const timestampMs = captureTime(frame);
    const seq = this.#seq++;
    if (this.#queue.length >= config.producer.buffer_frames) {
      this.counts.dropped++;
      if (this.counts.dropped === 1 || this.counts.dropped % 100 === 0) {
        this.#log.warn(
          `[producer] ${robotId}: queue full (${config.producer.buffer_frames} frames), dropping oldest; ` +
            `${this.counts.dropped} dropped so far`,
        );
      }
      // Drop the oldest frame that is not being sent right now, to keep the newest scene; when every queued
      // frame is in flight, the new one is the one to go.
      if (this.#queue.length <= this.#inFlight) return "dropped";
      releaseFrame(this.#queue.splice(this.#inFlight, 1)[0].value);
    }
    this.#queue.push({
      key: messageKey(robotId, timestampMs),
      value: encodeFrame(timestampMs, seq, frame.jpeg),
      timestampMs,
      seq,
    });
    this.#wake?.();
    return "queued";
  }

  /**
   * Counts a part the camera reader dropped before it could be offered (over the size limit, not a JPEG, cut
   * short: the MJPEG parser's reasons and "not-jpeg"), so that frames_refused_total and the stats line cover
   * every part that was never sent, not only those offer() refuses. The reader has already logged it, with the
   * camera's details. A "no-boundary" stream is not a part: the reconnect loop reports that one.
   */
  refuse(reason: string): void {
    if (reason === "no-boundary") return;
    // Read and refused together, as offer() counts its refusals: read = throttled + refused + everything queued.
    this.counts.read++;
    this.counts.refused++;
  }

  /** Publishes queued frames until close() and the queue is empty (or the drain deadline passes). */
  async run(): Promise<void> {
    const { config, kafka, robotId } = this.deps;
    let delay = 500;
    let failingSince = 0;
    let lastWarn = 0;
    while (true) {
      if (this.#queue.length === 0) {
        if (this.#closed) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = null;
        continue;
      }
      const batch = this.#queue.slice(0, config.producer.batch_frames);
      this.#inFlight = batch.length;
      try {
        await kafka.send(batch);
        this.#queue.splice(0, batch.length);
        // Acknowledged, so written: the buffers can take the next frames.
        for (const m of batch) releaseFrame(m.value);
        this.counts.sent += batch.length;
        if (failingSince) {
          this.#log.info(
            `[producer] ${robotId}: Kafka reachable again after ${
              ((Date.now() - failingSince) / 1000).toFixed(1)
            } s; ` +
              `${this.#queue.length} frames queued, ${this.counts.dropped} dropped in all`,
          );
        }
        failingSince = 0;
        delay = 500;
      } catch (error) {
        const now = Date.now();
        if (!failingSince) failingSince = now;
        if (now - lastWarn > 10_000) {
          lastWarn = now;
          this.#log.warn(
            `[producer] ${robotId}: ${
              messageOf(error)
            }; retrying with backoff, ${this.#queue.length} frames queued`,
          );
        }
        if (this.#closed) return;
        await this.#sleep(delay);
        delay = Math.min(delay * 2, 5000);
      } finally {
        this.#inFlight = 0;
      }
    }
  }

  /** Stops taking frames; run() returns once the queue is sent (or at its next failure). */
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  /** Time the last frame was offered (ms since the epoch), for the camera health check. */
  get lastFrameAt(): number | null {
    return this.#lastAt;
  }

  /** The counters as Prometheus families, labelled with the robot id. */
  toPrometheus(): string {
    const robot = [[this.deps.robotId, 0]] as [string, number][];
    const c = this.counts;
    const family = (name: string, help: string, value: number) =>
      counterLines(name, help, "robot", robot.map(([id]) => [id, value]));
    return [
      family("frame_bucket_camera_frames_total", "Frames read from the camera.", c.read),
      family("frame_bucket_frames_sent_total", "Frames acknowledged by Kafka.", c.sent),
      family("frame_bucket_frames_throttled_total", "Frames skipped to hold stream.fps.", c.throttled),
      family("frame_bucket_frames_refused_total", "Parts refused: not a JPEG or too large.", c.refused),
      family(
        "frame_bucket_frames_dropped_total",
        "Frames dropped from the full queue while Kafka was away.",
        c.dropped,
      ),
      `# HELP frame_bucket_producer_queue_frames Frames waiting to be sent.\n` +
      `# TYPE frame_bucket_producer_queue_frames gauge\n` +
      `frame_bucket_producer_queue_frames{robot="${this.deps.robotId}"} ${this.#queue.length}`,
    ].join("\n");
  }

  line(): string {
    const c = this.counts;
    return `${this.deps.robotId} read ${c.read} sent ${c.sent} throttled ${c.throttled} refused ${c.refused} ` +
      `dropped ${c.dropped} queued ${this.#queue.length}`;
  }
}
