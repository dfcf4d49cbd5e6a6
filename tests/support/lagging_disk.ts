/**
 * A disk whose free space lags deletes, as RustFS and MinIO behave: a deleted object's space is freed only by a
 * trash sweep every `sweepMs`. It wraps a real storage plugin (objects really go to the S3 server) and answers
 * `statfs` for the evictor's seam from the objects it holds, each rounded up to whole 4 KiB blocks, plus the
 * deleted ones the sweep has not freed yet, on a clock the test moves.
 */
import type { DeleteResult, ObjectInfo, PutOptions, StoragePlugin } from "../../src/plugin.ts";

const BLOCK = 4096;
const blocksOf = (bytes: number) => Math.ceil(bytes / BLOCK);

export class LaggingDisk implements StoragePlugin {
  readonly name = "rustfs";
  readonly apiVersion = 1;
  /** Object key -> blocks on the disk. */
  readonly #live = new Map<string, number>();
  /** Deleted objects' blocks, freed by the first sweep after `atMs`. */
  #trash: { atMs: number; blocks: number }[] = [];
  /** Bytes deleted through this store (sum of object sizes). */
  deletedBytes = 0;

  /**
   * `totalBlocks`: the disk's size; `otherBlocks`: what else it holds; `sweepMs`: the trash sweep's period;
   * `now`: the test's clock.
   */
  constructor(
    readonly target: StoragePlugin,
    public totalBlocks: number,
    readonly sweepMs: number,
    readonly now: () => number,
    readonly otherBlocks = 0,
  ) {}

  get bucket() {
    return this.target.bucket;
  }

  /** Blocks in use as the disk shows them now (objects and the trash not swept yet). */
  usedBlocks(): number {
    this.#sweep();
    let n = this.otherBlocks;
    for (const b of this.#live.values()) n += b;
    for (const t of this.#trash) n += t.blocks;
    return n;
  }

  /** Blocks the objects take: what the disk would show without the trash. */
  liveBlocks(): number {
    let n = this.otherBlocks;
    for (const b of this.#live.values()) n += b;
    return n;
  }

  /** Bytes in the trash, not freed yet. */
  trashBytes(): number {
    this.#sweep();
    return this.#trash.reduce((n, t) => n + t.blocks * BLOCK, 0);
  }

  /** The statfs seam: df's figures of this disk (no reserved blocks). */
  statfs = (_path: string) => {
    const free = Math.max(0, this.totalBlocks - this.usedBlocks());
    return { bsize: BLOCK, blocks: this.totalBlocks, bfree: free, bavail: free };
  };

  #sweep(): void {
    const now = this.now();
    // A sweep runs at every multiple of sweepMs: it frees what was deleted before it.
    const lastSweep = Math.floor(now / this.sweepMs) * this.sweepMs;
    this.#trash = this.#trash.filter((t) => t.atMs >= lastSweep);
  }

  #deleted(key: string, size?: number): void {
    const blocks = this.#live.get(key);
    if (blocks === undefined) return;
    this.#live.delete(key);
    this.#trash.push({ atMs: this.now(), blocks });
    this.deletedBytes += size ?? blocks * BLOCK;
  }

  readonly #sizes = new Map<string, number>();

  open() {
    return this.target.open();
  }
  async put(key: string, body: Uint8Array, options?: PutOptions) {
    const out = await this.target.put(key, body, options);
    if (this.#live.has(key)) this.#deleted(key, this.#sizes.get(key));
    this.#live.set(key, blocksOf(body.length));
    this.#sizes.set(key, body.length);
    return out;
  }
  get(key: string) {
    return this.target.get(key);
  }
  read(key: string): Promise<{ body: Uint8Array; info: ObjectInfo } | null> {
    return this.target.read!(key);
  }
  head(key: string) {
    return this.target.head(key);
  }
  async delete(key: string) {
    await this.target.delete(key);
    this.#deleted(key, this.#sizes.get(key));
  }
  async deleteMany(keys: string[]): Promise<DeleteResult[]> {
    const results = await this.target.deleteMany!(keys);
    for (const r of results) if (r.error === undefined) this.#deleted(r.key, this.#sizes.get(r.key));
    return results;
  }
  list(options?: { prefix?: string; limit?: number; startAfter?: string }) {
    return this.target.list(options);
  }
  buckets() {
    return this.target.buckets();
  }
  close() {
    this.target.close();
  }
}
