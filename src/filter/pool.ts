/**
 * Runs a filter's `signature` (JPEG decode and hash, the consumer's CPU-heavy step) in a pool of workers, so both
 * cores work and the event loop stays free for Kafka and S3 I/O. The pooled filter is the same plugin to the rest
 * of the consumer: distance, accepts and restore stay on the main thread (they are cheap), only signature moves.
 */
import type { FilterPlugin, Signature } from "../plugin.ts";
import type { FilterSpec } from "./loader.ts";

interface Pending {
  resolve: (s: Signature) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  busy: number;
}

const ERRORS: Record<string, new (message: string) => Error> = { SyntaxError, RangeError, TypeError };

export class FilterPool {
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #closed = false;

  constructor(readonly spec: FilterSpec, readonly size: number) {
    for (let i = 0; i < size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    let ready!: () => void, failed!: (e: Error) => void;
    const slot: Slot = { worker, busy: 0, ready: new Promise<void>((a, b) => ((ready = a), (failed = b))) };
    slot.ready.catch(() => {}); // reported through signature() calls
    worker.onmessage = (event: MessageEvent) => {
      const m = event.data;
      if (m.type === "ready") return ready();
      if (m.type === "failed") {
        return failed(new Error(`filter worker could not build ${this.spec.name}: ${m.error}`));
      }
      const pending = this.#pending.get(m.id);
      if (!pending) return;
      this.#pending.delete(m.id);
      slot.busy--;
      if (m.type === "signed") pending.resolve(m.signature);
      else pending.reject(new (ERRORS[m.name] ?? Error)(m.error));
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      failed(new Error(`filter worker crashed: ${event.message}`));
    };
    worker.postMessage({ type: "init", spec: this.spec });
    return slot;
  }

  /** The signature of one JPEG, computed by the least busy worker. */
  async signature(jpeg: Uint8Array): Promise<Signature> {
    if (this.#closed) throw new Error("filter pool is closed");
    const slot = this.#slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    await slot.ready;
    const id = this.#next++;
    slot.busy++;
    return await new Promise<Signature>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // A copy the worker owns: the frame is a view into a Kafka batch (a Node Buffer, whose slice() is a view
      // too, so transferring its buffer would detach the whole batch). ~50 us for a full-HD JPEG.
      const own = new Uint8Array(jpeg.length);
      own.set(jpeg);
      slot.worker.postMessage({ type: "sign", id, jpeg: own }, [own.buffer]);
    });
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#slots) s.worker.terminate();
    for (const p of this.#pending.values()) p.reject(new Error("filter pool closed"));
    this.#pending.clear();
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
