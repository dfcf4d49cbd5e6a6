/**
 * Runs a filter's `signature` (JPEG decode and hash, the consumer's CPU-heavy step) in a pool of workers, so both
 * cores work and the event loop stays free for Kafka and S3 I/O. The pooled filter is the same plugin to the rest
 * of the consumer: distance, accepts and restore stay on the main thread (they are cheap), only signature moves.
 *
 * Frames wait on the main thread, in the order they were asked for, as views into their Kafka fetch response (no
 * copy), and each worker holds at most `PER_WORKER` of them: the memory handed to workers stays a few frames
 * whatever the size of a fetch (a whole fetch used to be copied out at once), and a worker never idles waiting for
 * the main thread. A frame is copied once, when it is sent, into a buffer the worker then owns: the frame itself
 * is a view into a fetch response, which cannot be transferred without detaching every other frame of it. (Handing
 * the buffers back for reuse was measured: the transfers back cost the workers and V8 more than the allocations
 * they save, and a plugin may keep views of its input, as the built-in JPEG reader's table cache does.)
 */
import type { FilterPlugin, Signature } from "../plugin.ts";
import type { FilterSpec } from "./loader.ts";

/** Frames a worker holds at once: one it works on and a few queued, so it does not idle while the event loop is busy. */
export const PER_WORKER = 4;

interface Job {
  jpeg: Uint8Array;
  resolve: (s: Signature) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Jobs sent to this worker and not answered yet, by id. */
  busy: Map<number, Job>;
}

const ERRORS: Record<string, new (message: string) => Error> = { SyntaxError, RangeError, TypeError };

export class FilterPool {
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #next = 1;
  #closed = false;
  /** Why the workers could not be built, once one failed to (every waiting and later frame is refused so). */
  #failure: Error | null = null;

  constructor(readonly spec: FilterSpec, readonly size: number) {
    for (let i = 0; i < size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    const slot: Slot = { worker, ready: false, busy: new Map() };
    worker.onmessage = (event: MessageEvent) => {
      const m = event.data;
      if (m.type === "ready") {
        slot.ready = true;
        return this.#pump();
      }
      if (m.type === "failed") {
        return this.#fail(new Error(`filter worker could not build ${this.spec.name}: ${m.error}`));
      }
      const job = slot.busy.get(m.id);
      if (!job) return;
      slot.busy.delete(m.id);
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

  /** Hands waiting frames to workers with room, least busy first. */
  #pump(): void {
    while (this.#queue.length > 0) {
      let slot: Slot | null = null;
      for (const s of this.#slots) {
        if (s.ready && s.busy.size < PER_WORKER && (!slot || s.busy.size < slot.busy.size)) slot = s;
      }
      if (!slot) return;
      const job = this.#queue.shift()!;
      const id = this.#next++;
      const own = new Uint8Array(job.jpeg.length);
      own.set(job.jpeg);
      slot.busy.set(id, job);
      slot.worker.postMessage({ type: "sign", id, jpeg: own }, [own.buffer]);
    }
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
    for (const s of this.#slots) s.worker.terminate();
    const closed = new Error("filter pool closed");
    for (const job of this.#queue.splice(0)) job.reject(closed);
    for (const s of this.#slots) {
      for (const job of s.busy.values()) job.reject(closed);
      s.busy.clear();
    }
  }
}

/** The plugin with its signature computed in `pool`. */
export function pooled(plugin: FilterPlugin, pool: FilterPool): FilterPlugin {
  return {
    name: plugin.name,
    apiVersion: plugin.apiVersion,
    signature: (jpeg) => pool.signature(jpeg),
    distance: (a, b) => plugin.distance(a, b),
    accepts: (d) => plugin.accepts(d),
    restore: plugin.restore ? (bits) => plugin.restore!(bits) : undefined,
    close: async () => {
      pool.close();
      await plugin.close?.();
    },
  };
}
