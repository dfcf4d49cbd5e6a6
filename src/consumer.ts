/**
 * The consumer stage: Kafka batch -> checks -> per-robot filter -> store -> offset.
 *
 * Within a partition the filter runs in message order (its decision depends on the previous accepted frame),
 * stores run concurrently up to `consumer.store_concurrency`, and offsets are resolved strictly in order, each
 * only once its frame is stored or finally refused. So a crash replays from the first frame not yet stored,
 * and because object keys are deterministic a replay overwrites instead of duplicating.
 */
import type { Catalog, FrameRow } from "./catalog.ts";
import type { Config } from "./config.ts";
import type { ConsumerMetrics } from "./metrics.ts";
import { messageOf } from "./errors.ts";
import { decodeFrame, type Frame } from "./frame.ts";
import type { IncomingBatch, IncomingMessage } from "./kafka.ts";
import { MAX_FUTURE_MS, objectKey, parseMessageKey, timestampProblem } from "./key.ts";
import type { Logger } from "./log.ts";
import { jpegProblem } from "./mjpeg.ts";
import type { Signature, StoragePlugin } from "./plugin.ts";
import { isAfter, newestStored, type StoredRef } from "./reference.ts";
import type { SceneFilter } from "./scene_filter.ts";
import { Counters } from "./stats.ts";

export interface PipelineDeps {
  config: Config;
  log: Logger;
  storage: StoragePlugin;
  filter: SceneFilter;
  /** Where stored frames are recorded; optional so pure tests can leave it out. */
  catalog?: Catalog;
  /** Latency histograms and lag; optional like the catalog. */
  metrics?: ConsumerMetrics;
  counters?: Counters;
  /** Clock, for implausible-timestamp checks. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** A small counting semaphore: bounds concurrent stores so a slow S3 slows consumption instead of piling up. */
class Slots {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** What happened to one message. */
type Outcome = "stored" | "dropped" | "refused" | "abandoned";

/** A message as read before any decision: refused (with the reason), or a frame with its signature under way. */
type Checked =
  | { skip: string; why: string }
  | { robotId: string; why: string }
  | { robotId: string; frame: Frame; signature: Promise<Signature> };

/** An accepted frame on its way to storage. */
interface StoreJob {
  robotId: string;
  key: string;
  body: Uint8Array;
  metadata: Record<string, string>;
  timestampMs: number;
  seq: number;
  filter: string;
  distance: number | null;
  bits: Uint8Array | null;
}

function catalogRow(job: StoreJob, size: number, etag: string | null, nowMs: number): FrameRow {
  return {
    key: job.key,
    robotId: job.robotId,
    timestampMs: job.timestampMs,
    seq: job.seq,
    size,
    etag,
    filter: job.filter,
    distance: job.distance,
    hash: job.bits,
    tier: "local",
    tierChangedMs: nowMs,
    storedMs: nowMs,
  };
}

export class Pipeline {
  readonly counters: Counters;
  readonly #slots: Slots;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #log: Logger;
  /** Per robot: the newest stored frame found at resume (null: none stored); absent until looked up. */
  readonly #resumeFrom = new Map<string, StoredRef | null>();
  /** Robots seen per partition, so their state can be dropped when the partition moves. */
  readonly #robotsOf = new Map<number, Set<string>>();
  #assigned = new Set<number>();
  /** Per robot: its last store in this batch, so the next one waits for it. */
  readonly #tails = new Map<string, Promise<Outcome>>();

  constructor(private readonly deps: PipelineDeps) {
    this.counters = deps.counters ?? new Counters();
    this.#slots = new Slots(deps.config.consumer.store_concurrency);
    this.#now = deps.now ?? Date.now;
    this.#sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#log = deps.log;
  }

  /** Processes one partition's batch; resolves offsets in order as frames become final. */
  async handleBatch(batch: IncomingBatch): Promise<void> {
    let chain: Promise<void> = Promise.resolve();
    let abandoned = false;
    const touched = new Set<string>();
    // Signatures (decode + hash, the CPU-heavy part) of the whole batch start now, in parallel when the filter
    // runs in workers; decisions below take them in message order, since each depends on the previous one.
    const checked = batch.messages.map((message) => this.#check(message));
    for (const [i, message] of batch.messages.entries()) {
      if (!batch.isActive() || abandoned) break;
      const prepared = await this.#prepare(batch, message, checked[i], touched);
      let work: Promise<Outcome>;
      if (typeof prepared === "string") {
        work = Promise.resolve(prepared);
      } else {
        // Backpressure: wait for a free store slot before reading on. Stores of one robot run in order (see
        // reference.ts for why); different robots store concurrently.
        await this.#slots.take();
        const before = this.#tails.get(prepared.robotId) ?? Promise.resolve<Outcome>("stored");
        work = before.then((previous) =>
          previous === "abandoned" ? "abandoned" : this.#store(batch, prepared)
        )
          .finally(() => this.#slots.give());
        this.#tails.set(prepared.robotId, work);
      }
      // Resolve offsets in message order, each once its own work and all earlier work is final.
      chain = chain.then(async () => {
        const outcome = await work;
        if (outcome === "abandoned" || abandoned) {
          abandoned = true;
          return;
        }
        batch.resolveOffset(message.offset);
      });
      await batch.heartbeat().catch(() => {});
    }
    await chain;
    const last = batch.messages.at(-1);
    if (last) {
      this.deps.metrics?.lag.set(
        { partition: String(batch.partition) },
        Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1),
      );
    }
    if (abandoned || !batch.isActive()) {
      // Frames after an abandoned one were filtered against references that were never stored; forget them so
      // a replay of this partition starts each robot afresh (a possible duplicate scene, never a lost frame).
      for (const robot of touched) this.#forget(robot);
    }
    for (const robot of touched) this.#tails.delete(robot);
  }

  /**
   * Called with this member's partitions after every rebalance. A partition that left or came back may have been
   * worked on by another member meanwhile, so what this process remembers of its robots is stale: they resume
   * from their newest stored frame instead. Partitions kept throughout are untouched (their batches may still be
   * storing).
   */
  onAssignment(partitions: number[]): void {
    const next = new Set(partitions);
    for (const [partition, robots] of this.#robotsOf) {
      if (this.#assigned.has(partition) && next.has(partition)) continue;
      for (const robot of robots) this.#forget(robot);
      this.#robotsOf.delete(partition);
    }
    this.#assigned = next;
  }

  #forget(robotId: string): void {
    this.deps.filter.forget(robotId);
    this.#resumeFrom.delete(robotId);
  }

  /**
   * Resumes a robot's filter from its newest stored frame the first time this process sees the robot (start-up,
   * rebalance, after an abandoned batch). Retries while storage is unreachable: deciding without the reference
   * could drop a frame that was accepted before the interruption.
   */
  async #resume(batch: IncomingBatch, robotId: string): Promise<boolean> {
    if (this.#resumeFrom.has(robotId)) return true;
    const { storage, config, filter, catalog } = this.deps;
    let delay = 200;
    for (let attempt = 1;; attempt++) {
      try {
        // The catalog answers at once; the object store is the fallback when the catalog has no row for the robot
        // (a new or lost catalog file). Either gives a prefix of the robot's accepted frames (see reference.ts).
        const row = catalog?.newest(robotId) ?? null;
        const ref: StoredRef | null = row
          ? { key: row.key, timestampMs: row.timestampMs, seq: row.seq }
          : await newestStored(storage, config.rustfs.prefix, robotId, this.#now() + 2 * MAX_FUTURE_MS);
        if (ref) {
          const plugin = filter.filterOf(robotId);
          try {
            if (row?.hash && plugin.restore && row.filter === plugin.name) {
              filter.remember(robotId, plugin.restore(row.hash));
            } else {
              const bytes = await storage.get(ref.key);
              if (bytes) filter.remember(robotId, await plugin.signature(bytes));
              else this.#log.warn(`[consumer] ${robotId}: newest frame ${ref.key} is not in the local store`);
            }
          } catch (error) {
            this.#log.warn(
              `[consumer] ${robotId}: cannot restore the filter from ${ref.key} (${messageOf(error)})`,
            );
          }
          this.#log.info(
            `[consumer] ${robotId}: resuming after ${ref.key} (from the ${row ? "catalog" : "object store"})`,
          );
        }
        this.#resumeFrom.set(robotId, ref);
        return true;
      } catch (error) {
        if (!batch.isActive()) return false;
        this.#log.warn(
          `[consumer] ${robotId}: cannot look up the newest stored frame (${messageOf(error)}); ` +
            `attempt ${attempt}, retrying in ${delay} ms`,
        );
        await this.#sleep(delay);
        await batch.heartbeat().catch(() => {});
        delay = Math.min(delay * 2, this.deps.config.consumer.store_retry_max_ms);
      }
    }
  }

  /** Checks and filters one message: an outcome when it is final here, or the store job for an accepted frame. */
  /**
   * Reads one message without side effects: its robot and frame, or why it is refused; for a readable frame the
   * filter's signature is started at once.
   */
  #check(message: IncomingMessage): Checked {
    if (message.key === null) {
      return { skip: "no key", why: "message has no key (expected {robot_id}:{timestamp_ms})" };
    }
    let robotId: string;
    try {
      robotId = parseMessageKey(message.key).robotId;
    } catch (error) {
      return { skip: "bad key", why: messageOf(error) };
    }
    let frame;
    try {
      frame = decodeFrame(message.value ?? new Uint8Array(0));
      const problem = timestampProblem(frame.timestampMs, this.#now());
      if (problem) throw new RangeError(problem);
      const notJpeg = jpegProblem(frame.jpeg);
      if (notJpeg) throw new SyntaxError(notJpeg);
    } catch (error) {
      return { robotId, why: messageOf(error) };
    }
    const filter = this.deps.filter.filterOf(robotId);
    const started = performance.now();
    const signature = (async () => await filter.signature(frame.jpeg))();
    signature.then(
      () =>
        this.deps.metrics?.filterSeconds.observe({ robot: robotId }, (performance.now() - started) / 1000),
      () => {}, // reported where the signature is awaited (or never, if the batch stops first)
    );
    return { robotId, frame, signature };
  }

  async #prepare(
    batch: IncomingBatch,
    message: IncomingMessage,
    checked: Checked,
    touched: Set<string>,
  ): Promise<Outcome | StoreJob> {
    // Throughout: "refused" and "dropped" are final (the offset may move past them), "abandoned" is not.
    const where = `${batch.topic}/${batch.partition}@${message.offset}`;
    const log = this.#log;
    if ("skip" in checked) {
      this.counters.skip(checked.skip);
      log.warn(`[consumer] ${where}: ${checked.why}; skipped`);
      return "refused";
    }
    const { robotId } = checked;
    const filter = this.deps.filter.filterOf(robotId);
    const counts = this.counters.robot(robotId, filter.name);
    counts.received++;
    if (!("frame" in checked)) {
      counts.errors++;
      log.warn(`[consumer] ${where} ${robotId}: ${checked.why}; skipped`);
      return "refused";
    }
    const { frame } = checked;
    touched.add(robotId);
    let robots = this.#robotsOf.get(batch.partition);
    if (!robots) this.#robotsOf.set(batch.partition, robots = new Set());
    robots.add(robotId);
    if (!(await this.#resume(batch, robotId))) return "abandoned";
    const resumeFrom = this.#resumeFrom.get(robotId);
    if (resumeFrom && !isAfter(frame, resumeFrom)) {
      // Already decided before an interruption: stored, or dropped against a reference that was stored.
      counts.replayed++;
      return "dropped";
    }
    let decision;
    try {
      decision = this.deps.filter.decideWith(robotId, await checked.signature);
    } catch (error) {
      counts.errors++;
      log.warn(`[filter:${filter.name}] ${where} ${robotId}: ${messageOf(error)}; skipped`);
      return "refused";
    }
    if (!decision.accept) {
      counts.dropped++;
      return "dropped";
    }
    counts.accepted++;
    const key = objectKey(this.deps.config.rustfs.prefix, robotId, frame.timestampMs, frame.seq);
    const metadata: Record<string, string> = {
      "robot-id": robotId,
      "capture-time": new Date(frame.timestampMs).toISOString(),
      "timestamp-ms": String(frame.timestampMs),
      "seq": String(frame.seq),
      "filter": decision.filter,
      "distance": decision.distance === null ? "first" : String(Number(decision.distance.toFixed(6))),
    };
    if (decision.signature.bits) metadata.hash = toHex(decision.signature.bits);
    log.debug(`[consumer] ${where} ${robotId}: accepted ${key} (distance ${metadata.distance})`);
    return {
      robotId,
      key,
      body: frame.jpeg,
      metadata,
      timestampMs: frame.timestampMs,
      seq: frame.seq,
      filter: decision.filter,
      distance: decision.distance,
      bits: decision.signature.bits ?? null,
    };
  }

  /** Stores with backoff until it succeeds or the batch is no longer ours; true when stored. */
  async #store(batch: IncomingBatch, job: StoreJob): Promise<Outcome> {
    const { storage, config } = this.deps;
    const { key, body, metadata } = job;
    const started = performance.now();
    const metrics = this.deps.metrics;
    let delay = 200;
    for (let attempt = 1;; attempt++) {
      try {
        const { etag } = await storage.put(key, body, { contentType: "image/jpeg", metadata });
        // The row is written after the object and before the offset can be committed: a crash in between
        // replays the frame, which rewrites the same object and row.
        this.deps.catalog?.upsert(catalogRow(job, body.length, etag ?? null, this.#now()));
        if (attempt > 1) this.#log.info(`[store:${storage.name}] ${key} stored after ${attempt} attempts`);
        this.counters.robot(job.robotId).stored++;
        metrics?.storeSeconds.observe({ robot: job.robotId }, (performance.now() - started) / 1000);
        metrics?.bytesStored.inc({ robot: job.robotId }, body.length);
        return "stored";
      } catch (error) {
        metrics?.storeRetries.inc({ robot: job.robotId });
        if (!batch.isActive()) {
          this.#log.warn(
            `[store:${storage.name}] ${key} not stored (${messageOf(error)}); stopping, it will be replayed`,
          );
          return "abandoned";
        }
        this.#log.warn(
          `[store:${storage.name}] ${key}: ${messageOf(error)}; attempt ${attempt}, retrying in ${delay} ms`,
        );
        await this.#sleep(delay);
        await batch.heartbeat().catch(() => {});
        delay = Math.min(delay * 2, config.consumer.store_retry_max_ms);
      }
    }
  }
}
