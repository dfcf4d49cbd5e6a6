/**
 * Space this process deleted from the watched disk that the disk does not show as free yet.
 *
 * RustFS and MinIO free a deleted object's disk space only when a background trash sweep runs (about every five
 * minutes), so `statfs` lags the deletes. Measured from scratch every round, the disk trigger would then see usage
 * still over the threshold and evict again, round after round, until the sweep: the local buffer empties. The
 * ledger keeps the bytes deleted by this process (each entry with its time) and estimates how many of them the
 * disk has not reflected yet, from two measurements taken at every round's start:
 *
 *   not yet freed now = not yet freed before + (disk used now - before) - (catalog's local bytes now - before)
 *
 * (between two measurements the disk grows by the frames written and shrinks by the deletes it has reflected,
 * while the catalog grows by the same frames and shrinks by every delete; objects deleted without a catalog
 * change, the sweep's leftovers, count as deletes separately). The estimate is kept between 0 and the bytes of
 * the entries younger than `lagMs`: a delete older than that is taken as freed, whatever the disk says, so an
 * error of the estimate (other data growing on the same disk) can hold eviction back for at most that long. The
 * eviction plan subtracts the estimate from the disk's used bytes; the byte budget (`eviction.max_bytes`), counted
 * from the catalog, needs none of this.
 */

interface Entry {
  atMs: number;
  bytes: number;
}

export class FreedLedger {
  readonly lagMs: number;
  #entries: Entry[] = [];
  /** Bytes deleted since the last measurement that the catalog's local bytes did not drop by. */
  #uncounted = 0;
  #last: { usedBytes: number; localBytes: number } | null = null;
  #pending = 0;

  /** `lagMs`: how long the disk may take to show a delete; 0 turns the ledger off (every delete counts as shown). */
  constructor(lagMs: number) {
    this.lagMs = Math.max(0, lagMs);
  }

  /**
   * Notes `bytes` deleted from the local store at `nowMs`; `counted`: the catalog's local bytes dropped with them
   * (archived or dropped frames), false for objects the catalog did not count as local (leftovers of archived
   * frames).
   */
  deleted(bytes: number, nowMs: number, counted = true): void {
    if (this.lagMs === 0 || bytes <= 0) return;
    this.#entries.push({ atMs: nowMs, bytes });
    if (!counted) this.#uncounted += bytes;
  }

  /** Bytes of the deletes younger than the bound. */
  recentBytes(nowMs: number): number {
    this.#expire(nowMs);
    return this.#entries.reduce((n, e) => n + e.bytes, 0);
  }

  /** The estimate of the last `observe`. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Takes a measurement (read the catalog's local bytes first, then the disk, with no delete of this process in
   * flight) and returns the bytes deleted by this process that the disk does not show as free yet.
   */
  observe(usedBytes: number, localBytes: number, nowMs: number): number {
    const recent = this.recentBytes(nowMs);
    let estimate: number;
    if (this.#last === null) {
      // Nothing to compare with: the recent deletes are taken as not shown yet.
      estimate = recent;
    } else {
      estimate = this.#pending + this.#uncounted + (usedBytes - this.#last.usedBytes) -
        (localBytes - this.#last.localBytes);
    }
    this.#pending = Math.max(0, Math.min(recent, Math.round(estimate)));
    this.#last = { usedBytes, localBytes };
    this.#uncounted = 0;
    return this.#pending;
  }

  #expire(nowMs: number): void {
    const oldest = nowMs - this.lagMs;
    let drop = 0;
    while (drop < this.#entries.length && this.#entries[drop].atMs <= oldest) drop++;
    if (drop > 0) this.#entries.splice(0, drop);
  }
}
