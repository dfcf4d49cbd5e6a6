/** Small in-memory stand-ins for the pure-logic tests. Anything that claims "stored" is also tested for real. */
import type { IncomingBatch, IncomingMessage } from "../../src/kafka/client.ts";
import { API_VERSION, type ListOptions, type ObjectInfo, type StoragePlugin } from "../../src/plugin.ts";

export class MemoryStore implements StoragePlugin {
  readonly name = "memory";
  readonly apiVersion = API_VERSION;
  readonly bucket = "memory";
  readonly objects = new Map<string, { body: Uint8Array; metadata: Record<string, string> }>();
  /** Puts that fail before the next one succeeds. */
  failPuts = 0;
  puts = 0;

  open() {
    return Promise.resolve();
  }
  put(key: string, body: Uint8Array, options: { metadata?: Record<string, string> } = {}) {
    this.puts++;
    if (this.failPuts > 0) {
      this.failPuts--;
      return Promise.reject(new Error("simulated outage"));
    }
    this.objects.set(key, { body: body.slice(), metadata: options.metadata ?? {} });
    return Promise.resolve({ etag: `etag-${body.length}` });
  }
  get(key: string) {
    return Promise.resolve(this.objects.get(key)?.body ?? null);
  }
  head(key: string): Promise<ObjectInfo | null> {
    const o = this.objects.get(key);
    return Promise.resolve(o ? { key, size: o.body.length, metadata: o.metadata } : null);
  }
  delete(key: string) {
    this.objects.delete(key);
    return Promise.resolve();
  }
  async *list(options: ListOptions = {}) {
    let left = options.limit ?? Infinity;
    for (const key of [...this.objects.keys()].sort()) {
      if (options.prefix && !key.startsWith(options.prefix)) continue;
      if (options.startAfter && key <= options.startAfter) continue;
      if (left-- <= 0) return;
      yield { key, size: this.objects.get(key)!.body.length };
    }
  }
  buckets() {
    return Promise.resolve([this.bucket]);
  }
  close() {}
}

/** A batch of one partition that records which offsets were resolved. */
export function fakeBatch(messages: IncomingMessage[], partition = 0) {
  const resolved: string[] = [];
  let active = true;
  const batch: IncomingBatch & { resolved: string[]; deactivate(): void } = {
    topic: "camera.frames",
    partition,
    messages,
    highWatermark: String(Number(messages.at(-1)?.offset ?? -1) + 1),
    resolved,
    resolveOffset: (o) => void resolved.push(o),
    heartbeat: () => Promise.resolve(),
    isActive: () => active,
    commit: () => Promise.resolve(),
    deactivate: () => void (active = false),
  };
  return batch;
}
