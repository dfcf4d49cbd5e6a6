/**
 * Similar frames: the k stored frames whose perceptual hash (the `bits` the filter plugin in use gave the
 * consumer, kept in the catalog) is nearest, by hamming distance, to a stored frame or to an uploaded JPEG.
 * Hashes of any length are indexed: each length has an index of its own (a 16x16 aHash is 256 bits, a user's
 * dHash may be 64), and a query is answered by the index of its own length.
 *
 * `HashIndex` keeps every frame's hash packed into 32-bit words in one typed array (8 words for a 16x16 hash),
 * with parallel typed arrays of capture time, robot number and id, and answers a query with one linear scan:
 * XOR, a SWAR popcount whose per-byte counts are summed across words before the one multiply, a bounded
 * max-heap of the k best, and early rejection once the first half of a hash is already further than the
 * current k-th best (or `maxDistance`). Robot and time filters are checked before any bit is compared. On a
 * 2-core machine a top-20 over 1,000,000 frames takes about 8-11 ms at the median (`deno task bench search`).
 *
 * `SimilarFrames` is that index filled from the catalog, kept current incrementally (never rebuilt):
 *  - `add(row)`: the consumer, after `catalog.upsert(row)`, in the same process: findable at once;
 *  - `sync()`: picks up rows other processes stored since the last call (by `stored_ms`, with an overlap so a
 *    row committed late is not missed); `startSync(500)` runs it twice a second, so a frame stored by any
 *    consumer is findable within a second.
 * Results are read back from the catalog (rows and labels); a frame whose row has gone is dropped from the index
 * on the way.
 *
 * `similarFromCatalog` is the cold path: the same top-k over the rows a SQL filter selects (robots, time,
 * labels, tier), streamed from the catalog without an index; the CLI uses it, and it suits narrow filters.
 *
 * Ties in distance are broken by id (the catalog rowid: roughly storage order), so results are deterministic.
 */
import type { Catalog, FrameRow } from "../catalog/catalog.ts";
import { BadInputError, NotFoundError } from "../errors.ts";
import { hamming } from "../filter/hamming.ts";
import type { Config } from "../config.ts";
import type { FilterPlugin } from "../plugin.ts";
import { loadFilter } from "../filter/loader.ts";
import { createSceneFilter, type SceneFilter } from "../filter/scene.ts";
import { checkFilter, type SearchFilter, type SearchHit } from "./search.ts";

export interface NearestOptions {
  /** How many results at most (default 20, at most 10,000). */
  k?: number;
  /** Only frames at most this far (bits). */
  maxDistance?: number;
  /** Only these robots. */
  robots?: string[];
  /** Capture time span, inclusive. */
  fromMs?: number;
  toMs?: number;
}

export interface Neighbour {
  id: number;
  distance: number;
}

export interface SimilarHit extends SearchHit {
  distance: number;
}

const MAX_K = 10_000;

function checkOptions(o: NearestOptions, bits: number): { k: number; maxDistance: number } {
  const k = o.k ?? 20;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new BadInputError(`k ${k} must be from 1 to ${MAX_K}`);
  }
  const maxDistance = o.maxDistance ?? bits;
  if (!Number.isFinite(maxDistance) || maxDistance < 0) {
    throw new BadInputError(`maxDistance ${o.maxDistance} must be a number of bits >= 0`);
  }
  return { k, maxDistance: Math.min(Math.floor(maxDistance), bits) };
}

/** Per-byte bit counts of a 32-bit word (each byte 0..8); summing up to 31 words cannot overflow a byte. */
function byteCounts(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (x + (x >>> 4)) & 0x0f0f0f0f;
}

/** Sum of the four byte counts. */
function total(counts: number): number {
  return Math.imul(counts, 0x01010101) >>> 24;
}

/** A bounded max-heap of the k best (distance, id) pairs; the root is the worst kept. */
class TopK {
  readonly d: Int32Array;
  readonly id: Float64Array;
  size = 0;
  constructor(readonly k: number) {
    this.d = new Int32Array(k);
    this.id = new Float64Array(k);
  }
  /** True when (d, id) is worse than the root, i.e. when it would not be kept by a full heap. */
  worse(d: number, id: number): boolean {
    return d > this.d[0] || (d === this.d[0] && id > this.id[0]);
  }
  push(d: number, id: number): void {
    const hd = this.d, hi = this.id;
    if (this.size < this.k) {
      let j = this.size++;
      while (j > 0) {
        const p = (j - 1) >> 1;
        if (hd[p] > d || (hd[p] === d && hi[p] > id)) break;
        hd[j] = hd[p];
        hi[j] = hi[p];
        j = p;
      }
      hd[j] = d;
      hi[j] = id;
      return;
    }
    if (this.worse(d, id)) return;
    const k = this.k;
    let j = 0;
    for (;;) {
      let c = 2 * j + 1;
      if (c >= k) break;
      if (c + 1 < k && (hd[c + 1] > hd[c] || (hd[c + 1] === hd[c] && hi[c + 1] > hi[c]))) c++;
      if (hd[c] < d || (hd[c] === d && hi[c] < id)) break;
      hd[j] = hd[c];
      hi[j] = hi[c];
      j = c;
    }
    hd[j] = d;
    hi[j] = id;
  }
  /** The kept pairs, best first. */
  sorted(): Neighbour[] {
    const out: Neighbour[] = [];
    for (let i = 0; i < this.size; i++) out.push({ id: this.id[i], distance: this.d[i] });
    return out.sort((a, b) => a.distance - b.distance || a.id - b.id);
  }
}

/** Packs hash bytes into 32-bit words (zero-padded: padding bits never differ, so distances are unchanged). */
export function packHash(
  bytes: Uint8Array,
  words: number,
  into: Uint32Array<ArrayBufferLike> = new Uint32Array(words),
  at = 0,
): Uint32Array<ArrayBufferLike> {
  for (let w = 0; w < words; w++) {
    const b = w * 4;
    into[at + w] = ((bytes[b] ?? 0) << 24 | (bytes[b + 1] ?? 0) << 16 | (bytes[b + 2] ?? 0) << 8 |
      (bytes[b + 3] ?? 0)) >>> 0;
  }
  return into;
}

/** Bits that differ between two equally long hashes (the project's one `hamming`). */
export { hamming as hashDistance } from "../filter/hamming.ts";

/**
 * In-memory index of fixed-size hashes by numeric id. Not thread-safe, and needs none: every call is synchronous.
 */
export class HashIndex {
  readonly hashBytes: number;
  readonly words: number;
  #capacity: number;
  #size = 0;
  #hashes: Uint32Array;
  #ts: Float64Array;
  #robot: Uint16Array;
  #ids: Float64Array;
  /** id -> slot + 1 for small ids (0: absent); larger ids go to #slotMap. */
  #slotOf: Int32Array;
  readonly #slotMap = new Map<number, number>();
  readonly #robots: string[] = [];
  readonly #robotNo = new Map<string, number>();

  constructor(hashBytes = 32, capacity = 1024) {
    if (!Number.isInteger(hashBytes) || hashBytes < 1 || hashBytes > 512) {
      throw new RangeError(`hash size ${hashBytes} bytes must be from 1 to 512`);
    }
    this.hashBytes = hashBytes;
    this.words = Math.ceil(hashBytes / 4);
    this.#capacity = Math.max(16, capacity);
    this.#hashes = new Uint32Array(this.#capacity * this.words);
    this.#ts = new Float64Array(this.#capacity);
    this.#robot = new Uint16Array(this.#capacity);
    this.#ids = new Float64Array(this.#capacity);
    this.#slotOf = new Int32Array(Math.max(16, capacity));
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held by the typed arrays. */
  get bytes(): number {
    return this.#hashes.byteLength + this.#ts.byteLength + this.#robot.byteLength + this.#ids.byteLength +
      this.#slotOf.byteLength;
  }

  get robots(): readonly string[] {
    return this.#robots;
  }

  #slot(id: number): number {
    if (id >= 0 && id < this.#slotOf.length) return this.#slotOf[id] - 1;
    return this.#slotMap.get(id) ?? -1;
  }

  #setSlot(id: number, slot: number): void {
    if (Number.isInteger(id) && id >= 0 && id < 1 << 24) {
      if (id >= this.#slotOf.length) {
        const grown = new Int32Array(Math.min(1 << 24, Math.max(id + 1, this.#slotOf.length * 2)));
        grown.set(this.#slotOf);
        this.#slotOf = grown;
      }
      this.#slotOf[id] = slot + 1;
    } else if (slot < 0) {
      this.#slotMap.delete(id);
    } else {
      this.#slotMap.set(id, slot);
    }
  }

  #grow(): void {
    const cap = this.#capacity * 2;
    const h = new Uint32Array(cap * this.words);
    h.set(this.#hashes);
    this.#hashes = h;
    const ts = new Float64Array(cap);
    ts.set(this.#ts);
    this.#ts = ts;
    const ids = new Float64Array(cap);
    ids.set(this.#ids);
    this.#ids = ids;
    const r = new Uint16Array(cap);
    r.set(this.#robot);
    this.#robot = r;
    this.#capacity = cap;
  }

  #robotNumber(robotId: string): number {
    let n = this.#robotNo.get(robotId);
    if (n === undefined) {
      if (this.#robots.length >= 0xffff) throw new RangeError("more than 65535 robots in one index");
      n = this.#robots.length;
      this.#robots.push(robotId);
      this.#robotNo.set(robotId, n);
    }
    return n;
  }

  has(id: number): boolean {
    return this.#slot(id) >= 0;
  }

  /** The hash kept for an id (unpacked), or null. */
  hashOf(id: number): Uint8Array | null {
    const slot = this.#slot(id);
    if (slot < 0) return null;
    const out = new Uint8Array(this.hashBytes);
    for (let i = 0; i < this.hashBytes; i++) {
      out[i] = this.#hashes[slot * this.words + (i >> 2)] >>> (24 - 8 * (i & 3)) & 0xff;
    }
    return out;
  }

  /** Adds a frame, or replaces what is kept for its id. */
  upsert(id: number, hash: Uint8Array, tsMs: number, robotId: string): void {
    if (hash.length !== this.hashBytes) {
      throw new RangeError(`hash of ${hash.length} bytes does not fit this index (${this.hashBytes} bytes)`);
    }
    let slot = this.#slot(id);
    if (slot < 0) {
      if (this.#size === this.#capacity) this.#grow();
      slot = this.#size++;
      this.#setSlot(id, slot);
      this.#ids[slot] = id;
    }
    packHash(hash, this.words, this.#hashes, slot * this.words);
    this.#ts[slot] = tsMs;
    this.#robot[slot] = this.#robotNumber(robotId);
  }

  /** Removes a frame (the last slot moves into its place); false when it was not there. */
  remove(id: number): boolean {
    const slot = this.#slot(id);
    if (slot < 0) return false;
    const last = --this.#size;
    if (slot !== last) {
      const w = this.words;
      this.#hashes.copyWithin(slot * w, last * w, last * w + w);
      this.#ts[slot] = this.#ts[last];
      this.#robot[slot] = this.#robot[last];
      this.#ids[slot] = this.#ids[last];
      this.#setSlot(this.#ids[slot], slot);
    }
    this.#setSlot(id, -1);
    return true;
  }

  /** The k nearest frames to `hash` (best first), within the options' robots, time span and distance. */
  nearest(hash: Uint8Array, options: NearestOptions = {}, exclude?: number): Neighbour[] {
    if (hash.length !== this.hashBytes) {
      throw new RangeError(
        `a hash of ${hash.length * 8} bits cannot be compared with this index's ${
          this.hashBytes * 8
        }-bit hashes`,
      );
    }
    const { k, maxDistance } = checkOptions(options, this.hashBytes * 8);
    const q = packHash(hash, this.words);
    const heap = new TopK(k);
    let mask: Uint8Array | null = null;
    if (options.robots) {
      mask = new Uint8Array(this.#robots.length);
      for (const r of options.robots) {
        const n = this.#robotNo.get(r);
        if (n !== undefined) mask[n] = 1;
      }
    }
    const from = options.fromMs ?? -Infinity, to = options.toMs ?? Infinity;
    const filtered = mask !== null || from !== -Infinity || to !== Infinity;
    if (this.words === 8) this.#scan8(q, heap, maxDistance, filtered, mask, from, to, exclude);
    else this.#scanAny(q, heap, maxDistance, filtered, mask, from, to, exclude);
    return heap.sorted();
  }

  /** The 256-bit case, unrolled: this loop is the whole cost of a query. */
  #scan8(
    q: Uint32Array,
    heap: TopK,
    maxDistance: number,
    filtered: boolean,
    mask: Uint8Array | null,
    from: number,
    to: number,
    exclude: number | undefined,
  ): void {
    const h = this.#hashes, ts = this.#ts, robot = this.#robot, ids = this.#ids, n = this.#size, k = heap.k;
    const q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3], q4 = q[4], q5 = q[5], q6 = q[6], q7 = q[7];
    // `bound`: a frame further than this cannot be kept (the k-th best once the heap is full, else maxDistance).
    let bound = maxDistance;
    for (let i = 0, o = 0; i < n; i++, o += 8) {
      if (filtered) {
        if (mask !== null && mask[robot[i]] === 0) continue;
        const t = ts[i];
        if (t < from || t > to) continue;
      }
      let d = total(
        byteCounts(h[o] ^ q0) + byteCounts(h[o + 1] ^ q1) + byteCounts(h[o + 2] ^ q2) +
          byteCounts(h[o + 3] ^ q3),
      );
      if (d > bound) continue;
      d += total(
        byteCounts(h[o + 4] ^ q4) + byteCounts(h[o + 5] ^ q5) + byteCounts(h[o + 6] ^ q6) +
          byteCounts(h[o + 7] ^ q7),
      );
      if (d > bound) continue;
      const id = ids[i];
      if (id === exclude) continue;
      if (heap.size === k && heap.worse(d, id)) continue;
      heap.push(d, id);
      if (heap.size === k && heap.d[0] < bound) bound = heap.d[0];
    }
  }

  #scanAny(
    q: Uint32Array,
    heap: TopK,
    maxDistance: number,
    filtered: boolean,
    mask: Uint8Array | null,
    from: number,
    to: number,
    exclude: number | undefined,
  ): void {
    const h = this.#hashes, ts = this.#ts, robot = this.#robot, ids = this.#ids, n = this.#size, k = heap.k;
    const w = this.words;
    let bound = maxDistance;
    outer: for (let i = 0, o = 0; i < n; i++, o += w) {
      if (filtered) {
        if (mask !== null && mask[robot[i]] === 0) continue;
        const t = ts[i];
        if (t < from || t > to) continue;
      }
      let d = 0;
      for (let j = 0; j < w; j += 16) {
        let counts = 0;
        const end = Math.min(w, j + 16);
        for (let x = j; x < end; x++) counts += byteCounts(h[o + x] ^ q[x]);
        d += (counts & 0xff) + ((counts >>> 8) & 0xff) + ((counts >>> 16) & 0xff) + (counts >>> 24);
        if (d > bound) continue outer;
      }
      const id = ids[i];
      if (id === exclude) continue;
      if (heap.size === k && heap.worse(d, id)) continue;
      heap.push(d, id);
      if (heap.size === k && heap.d[0] < bound) bound = heap.d[0];
    }
  }
}

/**
 * Bytes of the configured filter's hash when it is the built-in aHash (ceil(side^2 / 8)); undefined for any other
 * filter, whose length only its rows tell (`SimilarFrames.load` then takes the commonest length in the catalog).
 */
export function hashBytesOf(settings: { phash_hash_size: number; primary?: string }): number | undefined {
  const name = settings.primary?.toLowerCase();
  if (name !== undefined && name !== "phash" && name !== "ahash") return undefined;
  return Math.ceil(settings.phash_hash_size * settings.phash_hash_size / 8);
}

/** Longest hash `HashIndex` takes (bytes); longer hashes are counted in `SimilarFrames.unindexed`. */
const MAX_HASH_BYTES = 512;

/** Rows stored this long before the newest seen are read again by `sync`, for commits that land out of order. */
const SYNC_OVERLAP_MS = 5000;

/** The catalog's frames in one `HashIndex` per hash length, kept current incrementally. */
export class SimilarFrames {
  /** Indexes by hash length in bytes. */
  readonly #indexes = new Map<number, HashIndex>();
  #main: number;
  readonly #catalog: Catalog;
  /** Newest stored_ms seen by load/sync. */
  #syncedMs = -Infinity;
  /**
   * Rows found by `load` whose hash has another length than the main index's (another hash size or filter):
   * indexed in the index of their own length, and found by a query of that length.
   */
  skipped = 0;
  /** Rows whose hash is longer than an index takes (512 bytes): not indexed, counted here. */
  unindexed = 0;

  private constructor(catalog: Catalog, hashBytes: number) {
    this.#catalog = catalog;
    this.#main = hashBytes;
    if (!this.#indexOf(hashBytes)) {
      throw new RangeError(`hash size ${hashBytes} bytes must be from 1 to ${MAX_HASH_BYTES}`);
    }
  }

  /**
   * Loads every frame with a hash from the catalog. The main index (`index`, `size`) is that of `hashBytes`
   * (`hashBytesOf(config.filter)` for the built-in aHash) or, without it, of the commonest hash length in the
   * catalog (32 bytes when there is none yet); hashes of other lengths get indexes of their own.
   */
  static async load(catalog: Catalog, options: { hashBytes?: number } = {}): Promise<SimilarFrames> {
    const self = new SimilarFrames(catalog, options.hashBytes ?? 32);
    await self.#pull(null);
    if (options.hashBytes === undefined) {
      let best = 0;
      for (const [bytes, index] of self.#indexes) {
        if (index.size > best || (index.size === best && bytes === 32)) {
          [best, self.#main] = [index.size, bytes];
        }
      }
    }
    self.skipped = self.total - self.size;
    return self;
  }

  /** The main index (see `load`). */
  get index(): HashIndex {
    return this.#indexOf(this.#main)!;
  }

  /** Frames in the main index. */
  get size(): number {
    return this.index.size;
  }

  /** Frames in all indexes. */
  get total(): number {
    let n = 0;
    for (const index of this.#indexes.values()) n += index.size;
    return n;
  }

  /** Indexed frames by hash length in bits. */
  sizes(): Map<number, number> {
    return new Map([...this.#indexes].filter(([, i]) => i.size > 0).map(([bytes, i]) => [bytes * 8, i.size]));
  }

  /** The index of hashes of `bytes` (made on first use), or null for a length no index takes. */
  #indexOf(bytes: number): HashIndex | null {
    let index = this.#indexes.get(bytes);
    if (!index) {
      if (!Number.isInteger(bytes) || bytes < 1 || bytes > MAX_HASH_BYTES) return null;
      index = new HashIndex(bytes);
      this.#indexes.set(bytes, index);
    }
    return index;
  }

  async #pull(sinceMs: number | null): Promise<number> {
    let n = 0;
    for await (const r of this.#catalog.hashRows(sinceMs === null ? {} : { sinceStoredMs: sinceMs })) {
      if (r.storedMs > this.#syncedMs) this.#syncedMs = r.storedMs;
      const index = this.#indexOf(r.hash.length);
      if (!index) {
        if (sinceMs === null) this.unindexed++;
        continue;
      }
      index.upsert(r.id, r.hash, r.timestampMs, r.robotId);
      n++;
    }
    return n;
  }

  /**
   * Indexes a frame the caller has just written to the catalog (`catalog.upsert(row)` first: the index refers
   * to the catalog row). False when the row has no hash (or one longer than 512 bytes) or is not in the catalog.
   */
  async add(row: FrameRow): Promise<boolean> {
    const index = row.hash ? this.#indexOf(row.hash.length) : null;
    if (!row.hash || !index) return false;
    const id = await this.#catalog.idOf(row.key);
    if (id === null) return false;
    index.upsert(id, row.hash, row.timestampMs, row.robotId);
    if (row.storedMs > this.#syncedMs) this.#syncedMs = row.storedMs;
    return true;
  }

  /** Indexes rows stored (by any process) since the last load/sync; returns how many were read. */
  sync(): Promise<number> {
    return this.#pull(this.#syncedMs === -Infinity ? 0 : this.#syncedMs - SYNC_OVERLAP_MS);
  }

  /** Calls `sync` every `intervalMs` (default 500); returns the function that stops it. */
  startSync(intervalMs = 500): () => void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.sync().catch(() => {
        // The catalog is busy or closing: the next tick tries again.
      }).finally(() => (busy = false));
    }, intervalMs);
    Deno.unrefTimer(timer);
    return () => clearInterval(timer);
  }

  /**
   * The k frames nearest to `hash`, with their rows, labels and distance (best first), from the index of
   * `hash`'s length (none yet: no frames).
   */
  async nearest(hash: Uint8Array, options: NearestOptions = {}, excludeKey?: string): Promise<SimilarHit[]> {
    const index = this.#indexOf(hash.length);
    if (!index) throw new BadInputError(`a hash of ${hash.length * 8} bits is longer than an index takes`);
    let exclude: number | undefined;
    if (excludeKey !== undefined) {
      exclude = (await this.#catalog.idOf(excludeKey)) ?? undefined;
    }
    for (let attempt = 1;; attempt++) {
      const found = index.nearest(hash, options, exclude);
      const rows = await this.#catalog.rowsById(found.map((n) => n.id));
      // Each result is checked against its row: a row deleted since it was indexed is forgotten, a row whose
      // hash differs from the indexed one (rowids renumbered by a VACUUM) is indexed again; then ask again.
      let stale = false;
      for (const n of found) {
        const row = rows.get(n.id);
        if (row?.hash?.length === hash.length && hamming(row.hash, hash) === n.distance) continue;
        stale = true;
        index.remove(n.id);
        rows.delete(n.id);
        if (row?.hash) this.#indexOf(row.hash.length)?.upsert(n.id, row.hash, row.timestampMs, row.robotId);
      }
      if (!stale || attempt === 3) {
        const kept = found.filter((n) => rows.has(n.id));
        const hits = await this.#catalog.withLabels(kept.map((n) => rows.get(n.id)!));
        return hits.map((h, i) => ({ ...h, distance: kept[i].distance }));
      }
    }
  }

  /** The k frames nearest to a stored frame, without the frame itself. RangeError for an unknown key. */
  async nearestToKey(key: string, options: NearestOptions = {}): Promise<SimilarHit[]> {
    const row = await this.#catalog.get(key);
    if (!row) throw new NotFoundError(`no frame ${JSON.stringify(key)} in the catalog`);
    if (!row.hash) throw new BadInputError(`frame ${key} has no perceptual hash (filter ${row.filter})`);
    return this.nearest(row.hash, options, key);
  }
}

/**
 * The cold path: top-k by hamming distance over the catalog rows a search filter selects (plus `maxDistance`),
 * streamed from SQLite without an index. Rows with a hash of another length are skipped.
 */
export async function similarFromCatalog(
  catalog: Catalog,
  hash: Uint8Array,
  options: SearchFilter & { k?: number; maxDistance?: number; excludeKey?: string },
): Promise<SimilarHit[]> {
  const { k, maxDistance } = checkOptions(options, hash.length * 8);
  checkFilter(options);
  const filter: SearchFilter = {
    robots: options.robots,
    fromMs: options.fromMs,
    toMs: options.toMs,
    labels: options.labels,
    allLabels: options.allLabels,
    tiers: options.tiers,
  };
  const words = Math.ceil(hash.length / 4);
  const q = packHash(hash, words);
  const heap = new TopK(k);
  const packed = new Uint32Array(words);
  for await (const r of catalog.hashRows({ filter })) {
    if (r.hash.length !== hash.length || r.key === options.excludeKey) continue;
    packHash(r.hash, words, packed);
    let counts = 0, d = 0;
    for (let w = 0; w < words; w++) {
      counts += byteCounts(packed[w] ^ q[w]);
      if ((w & 15) === 15 || w === words - 1) {
        d += (counts & 0xff) + ((counts >>> 8) & 0xff) + ((counts >>> 16) & 0xff) + (counts >>> 24);
        counts = 0;
      }
    }
    if (d > maxDistance) continue;
    heap.push(d, r.id);
  }
  const found = heap.sorted();
  if (found.length === 0) return [];
  const rows = await catalog.rowsById(found.map((n) => n.id));
  const kept = found.filter((n) => rows.has(n.id));
  return (await catalog.withLabels(kept.map((n) => rows.get(n.id)!))).map((h, i) => ({
    ...h,
    distance: kept[i].distance,
  }));
}

/**
 * Hashes uploaded JPEGs exactly as the consumer does: the filter stage built by `createSceneFilter` with
 * `loadFilter` from the config (per-robot overrides included), and the plugin's `signature(jpeg).bits`.
 */
export class JpegHasher {
  private constructor(private readonly filters: SceneFilter) {}

  static async fromConfig(config: Config): Promise<JpegHasher> {
    return new JpegHasher(await createSceneFilter(config, (s) => loadFilter(s, config.baseDir)));
  }

  /** The filter that would judge this robot's frames (the default filter without a robot). */
  filterOf(robotId = ""): FilterPlugin {
    return this.filters.filterOf(robotId);
  }

  /** The hash bits the consumer would store for `jpeg` as a frame of `robotId`. */
  async hash(jpeg: Uint8Array, robotId = ""): Promise<Uint8Array> {
    const filter = this.filterOf(robotId);
    const signature = await filter.signature(jpeg);
    if (!signature.bits) {
      throw new BadInputError(
        `filter ${filter.name} keeps no hash bits: similarity search needs a hashing filter (phash/ahash)`,
      );
    }
    return signature.bits;
  }

  close(): Promise<void> {
    return this.filters.close();
  }
}
