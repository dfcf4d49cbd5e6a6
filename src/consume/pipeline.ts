/**
 * The consumer stage: Kafka batch -> checks -> per-robot filter -> store -> catalog row -> offset.
 *
 * Within a partition the filter runs in message order (its decision depends on the previous accepted frame),
 * stores run concurrently up to `consumer.store_concurrency`, and offsets are resolved strictly in order, each
 * only once its frame is stored and recorded, or finally refused. So a crash replays from the first frame not yet
 * stored; a replayed frame finds its own object again (same key, same bytes) instead of duplicating.
 *
 * A stored object is never replaced by different bytes: puts are conditional (`If-None-Match: *`, or a HEAD
 * first on stores without it), and a key already holding another frame (a robot whose clock went back, a
 * producer restarted with its sequence at 0) makes the frame go to the same key with `_p{partition}-o{offset}`
 * added. Which frames are replays is known from Kafka offsets kept with each catalog row, not from capture times.
 */
import type { Catalog, FrameRow } from "../catalog/catalog.ts";
import type { Config } from "../config.ts";
import type { ConsumerMetrics } from "../metrics.ts";
import { messageOf, ServiceError } from "../errors.ts";
import { decodeFrame, type Frame } from "../ingest/frame.ts";
import type { IncomingBatch, IncomingMessage } from "../kafka/client.ts";
import { type KeySuffix, MAX_FUTURE_MS, objectKey, parseMessageKey, timestampProblem } from "../key.ts";
import type { Logger } from "../log.ts";
import { jpegProblem } from "../ingest/mjpeg.ts";
import type { Signature, StoragePlugin } from "../plugin.ts";
import { isAfter, newestStored, type StoredRef, withKafkaPosition } from "./resume.ts";
import { rowFromObject } from "../store/reindex.ts";
import type { SceneFilter } from "../filter/scene.ts";
import { Counters } from "./counters.ts";
import { equalBytes, isMd5Etag, md5Hex } from "../store/content.ts";

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

/**
 * Writes catalog rows in groups: rows that arrive within a millisecond or so of each other (stores completing in
 * the same turn of the event loop) go in one `upsertMany`, one transaction instead of one each. Each caller
 * still learns whether its own row was written: a failed group fails every row of it, and each is then retried
 * on its own terms by its caller.
 */
class RowWriter {
  #rows: FrameRow[] = [];
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  constructor(private readonly catalog: Catalog) {}

  write(row: FrameRow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#rows.push(row);
      this.#waiters.push({ resolve, reject });
      this.#timer ??= setTimeout(() => this.#flush(), 1);
    });
  }

  async #flush(): Promise<void> {
    this.#timer = null;
    const rows = this.#rows, waiters = this.#waiters;
    this.#rows = [];
    this.#waiters = [];
    try {
      if (rows.length === 1) await this.catalog.upsert(rows[0]);
      else await this.catalog.upsertMany(rows);
      for (const w of waiters) w.resolve();
    } catch (error) {
      for (const w of waiters) w.reject(error);
    }
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
  /** The plain object key; the frame may end up under a suffixed one (see `#place`). */
  key: string;
  partition: number;
  offset: number;
  body: Uint8Array;
  metadata: Record<string, string>;
  timestampMs: number;
  seq: number;
  filter: string;
  distance: number | null;
  bits: Uint8Array | null;
}

/** How many suffixed keys are tried after the plain one before the store gives up on a frame (and retries). */
const MAX_KEY_TRIES = 8;

function catalogRow(job: StoreJob, key: string, size: number, etag: string | null, nowMs: number): FrameRow {
  return {
    key,
    partition: job.partition,
    offset: job.offset,
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
  /** Per robot: the capture time of the previous frame read, to notice a clock that goes back. */
  readonly #lastCapture = new Map<string, number>();
  /** When a kind of warning was last logged per robot, so a burst of them is one line, not one per frame. */
  readonly #warned = new Map<string, { at: number; since: number }>();
  /** Why the last catalog write failed, while it keeps failing (the /healthz catalog check reads it). */
  #catalogTrouble: string | null = null;
  readonly #rows: RowWriter | null;

  constructor(private readonly deps: PipelineDeps) {
    this.counters = deps.counters ?? new Counters();
    this.#slots = new Slots(deps.config.consumer.store_concurrency);
    this.#now = deps.now ?? Date.now;
    this.#sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#log = deps.log;
    this.#rows = deps.catalog ? new RowWriter(deps.catalog) : null;
  }

  /**
   * Processes one partition's batch; resolves offsets in order as frames become final. Returns only once nothing
   * of the pipeline uses the batch's message values any more (the consumer may free them then).
   */
  async handleBatch(batch: IncomingBatch): Promise<void> {
    // The lag counts this batch as not yet handled, so a consumer that starts far behind knows it at once (the
    // filter pool then starts every worker).
    const first = batch.messages[0];
    if (first) {
      this.deps.metrics?.lag.set(
        { partition: String(batch.partition) },
        Math.max(0, Number(batch.highWatermark) - Number(first.offset)),
      );
    }
    // Signatures (decode + hash, the CPU-heavy part) of the whole batch start now, in parallel when the filter
    // runs in workers; decisions take them in message order, since each depends on the previous one.
    const checked = batch.messages.map((message) => this.#check(message));
    try {
      await this.#handle(batch, checked);
    } finally {
      // After an abandoned frame or a rebalance the rest of the batch is not decided, but its frames may still
      // wait in the filter pool's queue, which reads them when a worker takes them.
      await Promise.allSettled(checked.map((c) => "signature" in c ? c.signature : null));
    }
  }

  async #handle(batch: IncomingBatch, checked: Checked[]): Promise<void> {
    let chain: Promise<void> = Promise.resolve();
    let abandoned = false;
    const touched = new Set<string>();
    for (const [i, message] of batch.messages.entries()) {
      if (!batch.isActive() || abandoned) break;
      const prepared = await this.#prepare(batch, message, checked[i], touched);
      let work: Promise<Outcome>;
      if (typeof prepared === "string") {
        work = Promise.resolve(prepared);
      } else {
        // Backpressure: wait for a free store slot before reading on. Stores of one robot run in order (see
        // resume.ts for why); different robots store concurrently.
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
    this.#lastCapture.delete(robotId);
  }

  /** Null while catalog writes succeed; otherwise why the last one failed (frames wait until it works again). */
  get catalogTrouble(): string | null {
    return this.#catalogTrouble;
  }

  /**
   * Logs a warning at most once a minute per kind and robot; the ones held back meanwhile are counted in the
   * next line. Per-frame trouble (a burst of collisions, a catalog that keeps failing) stays readable this way.
   */
  #warnOnce(kind: string, robotId: string, line: string): void {
    const id = `${kind}\u0000${robotId}`;
    const now = Date.now();
    const last = this.#warned.get(id);
    if (last && now - last.at < 60_000) {
      last.since++;
      return;
    }
    const held = last?.since ? ` (${last.since} more like it since the last such line)` : "";
    this.#warned.set(id, { at: now, since: 0 });
    this.#log.warn(line + held);
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
        // The catalog answers at once: the robot's frame from the highest offset of this partition is the last
        // one stored from it (stores of a robot complete in order, see resume.ts). Rows from before offsets
        // were kept, or of another partition, give the newest by capture time. The object store is the fallback
        // when the catalog has no row for the robot (a new or lost catalog file).
        const row = catalog
          ? ((await catalog.lastStoredFrom(robotId, batch.partition)) ?? (await catalog.newest(robotId)))
          : null;
        let ref: StoredRef | null = row
          ? {
            key: row.key,
            timestampMs: row.timestampMs,
            seq: row.seq,
            partition: row.partition,
            offset: row.offset,
          }
          : await newestStored(storage, config.rustfs.prefix, robotId, this.#now() + 2 * MAX_FUTURE_MS);
        if (ref && !row) {
          ref = await withKafkaPosition(storage, ref);
          // The store has a frame of this robot and the catalog none: a process stopped between the put and the
          // row (or the catalog is new). Replays up to this frame are skipped below, so its row is written now,
          // from the object's metadata, or it would stay unsearchable until the next reconciliation.
          if (catalog) await this.#indexStored(ref.key);
        }
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

  /** Writes the catalog row of a stored object that has none (never over a row that is there). */
  async #indexStored(key: string): Promise<void> {
    const { storage, catalog } = this.deps;
    if (!catalog || (await catalog.get(key))) return;
    const head = await storage.head(key);
    const row = head ? rowFromObject(key, head, "local") : null;
    if (!row || (await catalog.get(key))) return;
    await catalog.upsertMany([row]);
    this.#log.info(`[catalog] ${key}: stored without a row (an interrupted store); recorded now`);
  }

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
    this.#noticeClockJump(robotId, frame.timestampMs, where);
    touched.add(robotId);
    let robots = this.#robotsOf.get(batch.partition);
    if (!robots) this.#robotsOf.set(batch.partition, robots = new Set());
    robots.add(robotId);
    if (!(await this.#resume(batch, robotId))) return "abandoned";
    const resumeFrom = this.#resumeFrom.get(robotId);
    if (resumeFrom && this.#isReplay(robotId, batch.partition, message, frame, resumeFrom)) {
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
      "kafka-partition": String(batch.partition),
      "kafka-offset": String(message.offset),
      "filter": decision.filter,
      "distance": decision.distance === null ? "first" : String(Number(decision.distance.toFixed(6))),
    };
    if (decision.signature.bits) metadata.hash = toHex(decision.signature.bits);
    log.debug(`[consumer] ${where} ${robotId}: accepted ${key} (distance ${metadata.distance})`);
    return {
      robotId,
      key,
      partition: batch.partition,
      offset: Number(message.offset),
      body: frame.jpeg,
      metadata,
      timestampMs: frame.timestampMs,
      seq: frame.seq,
      filter: decision.filter,
      distance: decision.distance,
      bits: decision.signature.bits ?? null,
    };
  }

  /**
   * A frame read after the robot resumed from `ref` was decided before the interruption when it comes from the
   * same partition at an offset not past the reference's. Capture times say nothing here: a robot's clock may
   * have gone back. Only references without a Kafka position (rows and objects from before they were recorded)
   * fall back to comparing capture time and sequence.
   */
  #isReplay(
    robotId: string,
    partition: number,
    message: IncomingMessage,
    frame: Frame,
    ref: StoredRef,
  ): boolean {
    if (
      ref.partition === null || ref.partition === undefined || ref.offset === null || ref.offset === undefined
    ) {
      return !isAfter(frame, ref);
    }
    if (ref.partition !== partition) return false;
    const offset = Number(message.offset);
    if (offset === ref.offset && (frame.timestampMs !== ref.timestampMs || frame.seq !== ref.seq)) {
      // The offset that holds the stored reference carries another frame: the topic was deleted and created
      // again, and the catalog's offsets are of its earlier life. Nothing of the new topic is a replay.
      this.#log.warn(
        `[consumer] ${message.key}: offset ${partition}@${offset} held ${ref.key} before, and holds another ` +
          `frame now (was the topic created again?); offsets recorded earlier are not used to skip replays`,
      );
      this.#resumeFrom.set(robotId, { ...ref, partition: null, offset: null });
      return false;
    }
    return offset <= ref.offset;
  }

  /** Logs and counts a capture time well behind the robot's previous frame (an RTC-less boot, an NTP step). */
  #noticeClockJump(robotId: string, timestampMs: number, where: string): void {
    const previous = this.#lastCapture.get(robotId);
    this.#lastCapture.set(robotId, timestampMs);
    if (previous === undefined) return;
    const back = previous - timestampMs;
    if (back <= this.deps.config.consumer.clock_jump_secs * 1000) return;
    this.counters.robot(robotId).clockJumps++;
    this.#warnOnce(
      "clock",
      robotId,
      `[consumer] ${where} ${robotId}: capture clock went back ${(back / 1000).toFixed(1)} s (from ` +
        `${new Date(previous).toISOString()} to ${
          new Date(timestampMs).toISOString()
        }); frames are judged and ` +
        `kept as usual, a key that is taken gets a _p{partition}-o{offset} suffix`,
    );
  }

  /** Stores the object, then its catalog row, each retried on its own; "stored" once both are done. */
  async #store(batch: IncomingBatch, job: StoreJob): Promise<Outcome> {
    const { storage, config } = this.deps;
    const { key, body } = job;
    const started = performance.now();
    const metrics = this.deps.metrics;
    let delay = 200;
    let placed: { key: string; etag: string | null };
    for (let attempt = 1;; attempt++) {
      try {
        placed = await this.#place(job);
        if (attempt > 1) {
          this.#log.info(`[store:${storage.name}] ${placed.key} stored after ${attempt} attempts`);
        }
        break;
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
    // The row is written after the object and before the offset can be committed: a crash in between replays the
    // frame, which finds its object in place and writes the row then. A failing catalog is retried here, apart
    // from the store, so an object already stored is not sent again.
    if (!(await this.#record(batch, catalogRow(job, placed.key, body.length, placed.etag, this.#now())))) {
      return "abandoned";
    }
    this.counters.robot(job.robotId).stored++;
    metrics?.storeSeconds.observe({ robot: job.robotId }, (performance.now() - started) / 1000);
    metrics?.bytesStored.inc({ robot: job.robotId }, body.length);
    return "stored";
  }

  /** Writes the frame's catalog row, retrying while the catalog fails; false when the batch was lost meanwhile. */
  async #record(batch: IncomingBatch, row: FrameRow): Promise<boolean> {
    const catalog = this.deps.catalog;
    if (!catalog) return true;
    let delay = 200;
    for (let attempt = 1;; attempt++) {
      try {
        await this.#rows!.write(row);
        if (this.#catalogTrouble) {
          this.#log.info(
            `[catalog] ${catalog.where}: writing again (${row.key} recorded after ${attempt} attempts)`,
          );
          this.#catalogTrouble = null;
        }
        return true;
      } catch (raw) {
        const error = raw instanceof ServiceError ? raw : new ServiceError(
          "catalog",
          `catalog ${catalog.where}: recording ${row.key} failed (${messageOf(raw)})`,
          { retriable: true, cause: raw },
        );
        this.#catalogTrouble = error.message;
        this.deps.metrics?.catalogRetries.inc();
        // A failed write on a full disk can leave the WAL holding the space; a checkpoint gives it back once
        // there is room to write the pages into the database file.
        await catalog.checkpoint?.();
        if (!batch.isActive()) {
          this.#log.warn(
            `[catalog] ${row.key} stored but not recorded (${error.message}); it will be replayed`,
          );
          return false;
        }
        this.#warnOnce(
          "catalog",
          "",
          `[catalog] ${error.message}; the frame is stored, its row is retried (every ${
            Math.round(Math.min(delay * 2, this.deps.config.consumer.store_retry_max_ms) / 1000)
          } s at most) and consumption waits`,
        );
        await this.#sleep(delay);
        await batch.heartbeat().catch(() => {});
        delay = Math.min(delay * 2, this.deps.config.consumer.store_retry_max_ms);
      }
    }
  }

  /**
   * Puts the frame at its key without ever replacing a different frame: the plain key first, then
   * `_p{partition}-o{offset}` variants. A key that already holds these bytes (a replay of this very message, or
   * an earlier attempt whose answer was lost) counts as stored. Throws on store trouble (the caller retries).
   */
  async #place(job: StoreJob): Promise<{ key: string; etag: string | null }> {
    const { storage, config, catalog } = this.deps;
    const options = { contentType: "image/jpeg", metadata: job.metadata };
    for (let attempt = 0; attempt < MAX_KEY_TRIES; attempt++) {
      const suffix: KeySuffix | undefined = attempt === 0
        ? undefined
        : { partition: job.partition, offset: job.offset, attempt: attempt - 1 };
      const key = suffix
        ? objectKey(config.rustfs.prefix, job.robotId, job.timestampMs, job.seq, suffix)
        : job.key;
      // The catalog also knows frames that were archived (no local object any more): a key recorded for another
      // message is taken even when the local bucket has nothing there.
      const row = (await catalog?.get(key)) ?? null;
      if (row && row.partition !== null && row.partition !== undefined && row.offset !== null) {
        if (row.partition !== job.partition || row.offset !== job.offset) {
          this.#collided(job, key, `the catalog records it for ${row.partition}@${row.offset}`);
          continue;
        }
      } else if (row && row.tier !== "local" && row.etag && row.etag !== md5Hex(job.body)) {
        this.#collided(job, key, `the catalog records other bytes for it in the ${row.tier} tier`);
        continue;
      }
      if (storage.conditionalPut) {
        const out = await storage.put(key, job.body, { ...options, ifAbsent: true });
        if (!out.exists) return { key, etag: out.etag ?? null };
      } else {
        const existing = await storage.head(key);
        if (!existing) {
          const out = await storage.put(key, job.body, options);
          return { key, etag: out.etag ?? null };
        }
      }
      const same = await this.#holds(key, job.body);
      if (same === "gone") {
        attempt--; // deleted between the put and the look: try the same key again
        continue;
      }
      if (same) return { key, etag: same.etag };
      this.#collided(job, key, "it holds other bytes");
    }
    throw new Error(
      `${job.key} and ${MAX_KEY_TRIES - 1} suffixed keys all hold other frames; retrying (report this: it ` +
        `should not happen)`,
    );
  }

  /** Whether the object at `key` has exactly `body`: its ETag when it is an MD5, else a read-back. */
  async #holds(key: string, body: Uint8Array): Promise<{ etag: string | null } | false | "gone"> {
    const { storage } = this.deps;
    const info = await storage.head(key);
    if (!info) return "gone";
    if (isMd5Etag(info.etag)) {
      return info.etag.toLowerCase() === md5Hex(body) ? { etag: info.etag } : false;
    }
    const back = await storage.get(key);
    if (!back) return "gone";
    return equalBytes(back, body) ? { etag: info.etag ?? null } : false;
  }

  #collided(job: StoreJob, key: string, why: string): void {
    this.counters.robot(job.robotId).collisions++;
    this.#warnOnce(
      "collision",
      job.robotId,
      `[store] ${job.robotId}: ${key} is taken (${why}); the frame from ${job.partition}@${job.offset} goes to a ` +
        `key with a _p${job.partition}-o${job.offset} suffix (a capture clock that went back, or a producer ` +
        `restarted with its sequence at 0)`,
    );
  }
}
