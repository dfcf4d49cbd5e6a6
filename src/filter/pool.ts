/**
 * Runs a filter's `signature` (JPEG decode and hash, the consumer's CPU-heavy step) in a pool of workers, so both
 * cores work and the event loop stays free for Kafka and S3 I/O. The pooled filter is the same plugin to the rest
 * of the consumer: distance, accepts and restore stay on the main thread (they are cheap), only signature moves.
 *
 * Frames wait on the main thread, in the order they were asked for, as views into their Kafka fetch response (no
 * copy), and each worker holds at most `PER_WORKER` of them, so the memory handed to workers stays a few frames
 * whatever the size of a fetch (a whole fetch used to be copied out at once), and a worker does not idle waiting
 * for the main thread.
 *
 * A frame reaches its worker in a transfer buffer that the worker hands back with the signature, so the same few
 * buffers carry every frame: one copy per frame into memory that is already there, no buffer allocated per frame
 * and none left for the collectors. The frame itself cannot be transferred: it is a view into a fetch response,
 * and transferring that would detach every other frame of it. Reusing a buffer is only right when the filter
 * keeps nothing of its input between calls; each worker checks that of its plugin when it starts (see worker.ts)
 * and otherwise gets a fresh copy of every frame, which it keeps.
 *
 * The pool can grow and shrink (`PoolOptions`): a worker costs ~28 MB of resident memory under load (its own
 * JavaScript runtime), and at a fleet's live rate one worker keeps up (200 full-HD frames/s keep it busy ~30 % of
 * the time), while a backlog needs every core. So the consumer starts one worker and starts another whenever every
 * running worker was busy (holding frames) for at least `growAt` of each of the last `growAfter` samples (a few
 * seconds: a burst of a live fleet is gone by then), and at once when frames have queued up on the main thread for
 * half a second, or as soon as they queue up while the consumer is far behind in Kafka (`backlog`, `behind`: a
 * drain after an outage, where every second with one worker loses half the work).
 * Frames go to the first worker with room, so a worker that is not needed gets little; one beyond `min` stops
 * once it has had nothing to do for `idleMs`, or once the work of all would have kept one worker fewer busy at
 * most 60 % of the time on average over `idleMs` (bursts spill over to every worker, so an extra one is rarely
 * idle that long).
 */
import type { FilterPlugin, Signature } from "../plugin.ts";
import type { FilterSpec } from "./loader.ts";

/** Frames a worker holds at once: one it works on and a few queued, so it does not idle while the event loop is busy. */
export const PER_WORKER = 4;
/** Transfer buffers grow in steps of this (at least one), so that a slightly larger frame fits one already there. */
const BUFFER_STEP = 256 * 1024;

interface Job {
  jpeg: Uint8Array;
  resolve: (s: Signature) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Whether transfer buffers come back for reuse (the worker's plugin keeps nothing of its input). */
  shared: boolean;
  /** Transfer buffers back from the worker, for the next frames. */
  spare: ArrayBuffer[];
  /** Jobs sent to this worker and not answered yet, by id. */
  busy: Map<number, Job>;
  /** performance.now() since when it has had nothing to do. */
  idleSince: number;
  /** performance.now() since when it has held frames, null while it holds none. */
  busySince: number | null;
  /** Time it held frames since the last sample, not counting the current stretch. */
  busyMs: number;
  /** Out of the pool: stops once it has answered the frames it holds. */
  retiring?: boolean;
}

/** How many workers run when (see the module comment). The defaults keep `size` workers running at all times. */
export interface PoolOptions {
  /** Workers that run even when idle (at least 1; at most the pool's size). Default: the pool's size. */
  min?: number;
  /** Another worker starts (up to the pool's size) when every running one was busy this share of a sample... */
  growAt?: number;
  /** ...in this many samples in a row (default 3). */
  growAfter?: number;
  /**
   * Another also starts at once when this many frames (default 16) waited for a worker and frames have been
   * waiting ever since, for `backlogMs` (default 500): a backlog, which needs every core (a drain after an outage,
   * a consumer catching up), not the seconds of samples that keep a burst of a live fleet from starting one.
   */
  backlog?: number;
  backlogMs?: number;
  /**
   * Messages the consumer is behind the newest ones (its Kafka lag), when known. At `behindAt` (default 1000) or
   * more, `backlog` waiting frames start another worker at once: the lag already says it is a backlog, and the
   * first `backlogMs` of a drain then run on every core too.
   */
  behind?: () => number;
  behindAt?: number;
  /** How often the workers' busy time is looked at. */
  sampleMs?: number;
  /** A worker beyond `min` that has had nothing to do for this long is stopped. */
  idleMs?: number;
}

const ERRORS: Record<string, new (message: string) => Error> = { SyntaxError, RangeError, TypeError };

export class FilterPool {
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #next = 1;
  #closed = false;
  /** Why the workers could not be built, once one failed to (every waiting and later frame is refused so). */
  #failure: Error | null = null;

  readonly #min: number;
  readonly #growAt: number;
  readonly #growAfter: number;
  readonly #backlog: number;
  readonly #backlogMs: number;
  readonly #behind: () => number;
  readonly #behindAt: number;
  /** performance.now() since `backlog` frames waited, with some waiting ever since; null when none waits. */
  #deepSince: number | null = null;
  /** Samples in a row in which every running worker was busy at least `growAt` of the time. */
  #saturatedSamples = 0;
  readonly #idleMs: number;
  #sampleTimer: ReturnType<typeof setInterval> | undefined;
  #sampledAt = performance.now();
  /** Since the pool last changed size: each sample's start time and the workers' busy time summed (in workers). */
  #recent: { at: number; total: number }[] = [];
  /** Workers out of the pool that still answer frames they hold. */
  readonly #retiring = new Set<Slot>();

  constructor(readonly spec: FilterSpec, readonly size: number, options: PoolOptions = {}) {
    this.#min = Math.max(1, Math.min(size, options.min ?? size));
    this.#growAt = options.growAt ?? 0.75;
    this.#growAfter = Math.max(1, options.growAfter ?? 3);
    this.#backlog = Math.max(1, options.backlog ?? 16);
    this.#backlogMs = Math.max(0, options.backlogMs ?? 500);
    this.#behind = options.behind ?? (() => 0);
    this.#behindAt = Math.max(1, options.behindAt ?? 1000);
    this.#idleMs = options.idleMs ?? 30_000;
    for (let i = 0; i < this.#min; i++) this.#slots.push(this.#spawn());
    if (this.#min < size) {
      this.#sampleTimer = setInterval(() => this.#sample(), options.sampleMs ?? 1000);
      // An idle pool must not keep a process alive that is otherwise done.
      Deno.unrefTimer(this.#sampleTimer);
    }
  }

  /** Workers running (or starting) now. */
  get workers(): number {
    return this.#slots.length;
  }

  /** Whether every worker is ready and reuses transfer buffers (not for a plugin that keeps its input). */
  get sharing(): boolean {
    return this.#slots.length > 0 && this.#slots.every((s) => s.ready && s.shared);
  }

  #spawn(): Slot {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    const slot: Slot = {
      worker,
      ready: false,
      shared: false,
      spare: [],
      busy: new Map(),
      idleSince: performance.now(),
      busySince: null,
      busyMs: 0,
    };
    worker.onmessage = (event: MessageEvent) => {
      const m = event.data;
      if (m.type === "ready") {
        slot.ready = true;
        slot.shared = m.shared === true;
        return this.#pump();
      }
      if (m.type === "failed") {
        return this.#fail(new Error(`filter worker could not build ${this.spec.name}: ${m.error}`));
      }
      const job = slot.busy.get(m.id);
      if (!job) return;
      slot.busy.delete(m.id);
      if (slot.busy.size === 0) {
        const now = performance.now();
        slot.idleSince = now;
        if (slot.busySince !== null) slot.busyMs += now - slot.busySince;
        slot.busySince = null;
        if (slot.retiring) {
          slot.worker.terminate();
          this.#retiring.delete(slot);
        }
      }
      if (m.buffer instanceof ArrayBuffer && slot.spare.length < PER_WORKER) slot.spare.push(m.buffer);
      if (m.type === "signed") job.resolve(m.signature);
      else job.reject(new (ERRORS[m.name] ?? Error)(m.error));
      this.#pump();
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      if (!slot.ready) this.#fail(new Error(`filter worker crashed: ${event.message}`));
    };
    worker.postMessage({ type: "init", spec: this.spec });
    return slot;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const job of this.#queue.splice(0)) job.reject(this.#failure);
  }

  /**
   * Looks at how busy the workers were since the last look: starts another when every running one was busy at
   * least `growAt` of the time `growAfter` looks in a row, and stops one beyond `min` when the load is light or it
   * has had nothing to do for `idleMs` (newest first).
   */
  #sample(): void {
    const now = performance.now();
    const span = now - this.#sampledAt;
    this.#sampledAt = now;
    let saturated = !this.#closed && !this.#failure && span > 0;
    let total = 0;
    for (const slot of this.#slots) {
      const busy = slot.busyMs + (slot.busySince !== null ? now - slot.busySince : 0);
      slot.busyMs = 0;
      if (slot.busySince !== null) slot.busySince = now;
      if (!slot.ready || busy < this.#growAt * span) saturated = false;
      total += span > 0 ? busy / span : 0;
    }
    this.#saturatedSamples = saturated ? this.#saturatedSamples + 1 : 0;
    if (this.#saturatedSamples >= this.#growAfter && this.#slots.length < this.size) {
      this.#saturatedSamples = 0;
      this.#slots.push(this.#spawn());
      this.#recent = [];
      return;
    }
    // Frames spill over to every worker in bursts, so a worker beyond `min` is rarely idle for long: it is also
    // stopped once the work of all of them would, on average over the last `idleMs`, have kept one fewer busy at
    // most 60 % of the time (well below `growAt`, so that it does not start again at once). An average, so that
    // a burst now and then (a collection, an S3 hiccup) does not keep an extra worker for good.
    const n = this.#slots.length;
    let light = false;
    if (n > this.#min) {
      this.#recent.push({ at: now - span, total });
      while (this.#recent.length > 1 && now - this.#recent[1].at >= this.#idleMs) this.#recent.shift();
      const covered = now - this.#recent[0].at >= this.#idleMs;
      const mean = this.#recent.reduce((sum, r) => sum + r.total, 0) / this.#recent.length;
      light = covered && mean <= 0.6 * (n - 1);
    } else this.#recent = [];
    for (let i = this.#slots.length - 1; i >= this.#min; i--) {
      const slot = this.#slots[i];
      if (!slot.ready) continue;
      if (light) {
        this.#retire(i);
        break;
      }
      if (slot.busy.size === 0 && now - slot.idleSince >= this.#idleMs) this.#retire(i);
    }
  }

  /** Takes a worker out of the pool: it gets no more frames, and stops once it has answered those it holds. */
  #retire(index: number): void {
    this.#recent = [];
    const [slot] = this.#slots.splice(index, 1);
    if (slot.busy.size === 0) slot.worker.terminate();
    else {
      slot.retiring = true;
      this.#retiring.add(slot);
    }
  }

  /**
   * Hands waiting frames to workers with room: the least busy when the pool has a fixed size, else the first with
   * room, so that a worker the load does not need stays idle and can stop.
   */
  #pump(): void {
    const pack = this.#sampleTimer !== undefined;
    while (this.#queue.length > 0) {
      let slot: Slot | null = null;
      for (const s of this.#slots) {
        if (!s.ready || s.busy.size >= PER_WORKER) continue;
        if (pack) {
          slot = s;
          break;
        }
        if (!slot || s.busy.size < slot.busy.size) slot = s;
      }
      if (!slot) return this.#watchBacklog();
      const job = this.#queue.shift()!;
      const id = this.#next++;
      const length = job.jpeg.length;
      let buffer: ArrayBuffer | undefined;
      if (slot.shared) {
        buffer = slot.spare.pop();
        if (!buffer || buffer.byteLength < length) {
          buffer = new ArrayBuffer(Math.max(1, Math.ceil(length / BUFFER_STEP)) * BUFFER_STEP);
        }
      } else {
        buffer = new ArrayBuffer(length);
      }
      new Uint8Array(buffer, 0, length).set(job.jpeg);
      if (slot.busy.size === 0) slot.busySince = performance.now();
      slot.busy.set(id, job);
      slot.worker.postMessage({ type: "sign", id, buffer, length }, [buffer]);
    }
    this.#deepSince = null;
  }

  /**
   * Starts another worker when a backlog has waited `backlogMs` (see PoolOptions.backlog). The clock starts when
   * `backlog` frames wait and stops only when none does: in a drain the queue swings between a fetch's worth and
   * a few frames, and never runs dry.
   */
  #watchBacklog(): void {
    if (this.#sampleTimer === undefined || this.#slots.length >= this.size || this.#closed || this.#failure) {
      return;
    }
    const now = performance.now();
    if (this.#deepSince === null) {
      if (this.#queue.length < this.#backlog) return;
      this.#deepSince = now;
    }
    if (now - this.#deepSince < this.#backlogMs && this.#behind() < this.#behindAt) return;
    this.#deepSince = null;
    this.#saturatedSamples = 0;
    this.#recent = [];
    this.#slots.push(this.#spawn());
  }

  /** The signature of one JPEG, computed by the first worker with room. */
  signature(jpeg: Uint8Array): Promise<Signature> {
    if (this.#closed) return Promise.reject(new Error("filter pool is closed"));
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<Signature>((resolve, reject) => {
      this.#queue.push({ jpeg, resolve, reject });
      this.#pump();
    });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#sampleTimer);
    const all = [...this.#slots, ...this.#retiring];
    this.#retiring.clear();
    for (const s of all) s.worker.terminate();
    const closed = new Error("filter pool closed");
    for (const job of this.#queue.splice(0)) job.reject(closed);
    for (const s of all) {
      for (const job of s.busy.values()) job.reject(closed);
      s.busy.clear();
    }
  }
}

/** The plugin with its signature computed by `signature` and, when given, `close` in place of its own. */
export function withSignature(
  plugin: FilterPlugin,
  signature: FilterPlugin["signature"],
  close: FilterPlugin["close"] = plugin.close ? () => plugin.close!() : undefined,
): FilterPlugin {
  return {
    name: plugin.name,
    apiVersion: plugin.apiVersion,
    signature,
    distance: (a, b) => plugin.distance(a, b),
    accepts: (d) => plugin.accepts(d),
    restore: plugin.restore ? (bits) => plugin.restore!(bits) : undefined,
    close,
  };
}

/** The plugin with its signature computed in `pool`. */
export function pooled(plugin: FilterPlugin, pool: FilterPool): FilterPlugin {
  return withSignature(plugin, (jpeg) => pool.signature(jpeg), async () => {
    pool.close();
    await plugin.close?.();
  });
}
