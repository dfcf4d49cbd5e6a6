/**
 * Reconciliation: the local bucket against the catalog. Frames stored while the catalog was lost, replaced or
 * failing have objects but no rows; they would be invisible to search and export, and outside the eviction
 * budget (never evicted). This finds them by listing the bucket page by page (1,000 keys a request) and comparing
 * each page with the catalog's keys in the same range, then indexes them from their metadata like reindex does.
 * The cost is bounded: one listing pass, one range query per page, and a HEAD only for objects without a row (at
 * most `maxIndex` per pass; the rest wait for the next pass and stay in the gauge).
 */
import type { Catalog, FrameRow } from "../catalog/catalog.ts";
import { parseObjectKey } from "../key.ts";
import type { ObjectInfo, StoragePlugin } from "../plugin.ts";
import { rowFromObject } from "./reindex.ts";

export interface ReconcileResult {
  /** Frame objects listed in the local bucket. */
  objects: number;
  /** Frame objects that had no catalog row when they were listed. */
  unindexed: number;
  /** Of those, rows written now. */
  indexed: number;
  /** Example keys of unindexed objects (at most 5), for the log line. */
  examples: string[];
  seconds: number;
}

export async function reconcile(
  options: { local: StoragePlugin; catalog: Catalog; prefix: string; maxIndex?: number },
): Promise<ReconcileResult> {
  const { local, catalog, prefix } = options;
  const maxIndex = options.maxIndex ?? 10_000;
  const started = performance.now();
  const result: ReconcileResult = { objects: 0, unindexed: 0, indexed: 0, examples: [], seconds: 0 };
  let page: ObjectInfo[] = [];
  const check = async () => {
    const frames = page.filter((item) => parseObjectKey(item.key) !== null);
    page = [];
    if (frames.length === 0) return;
    result.objects += frames.length;
    const known = new Set(await catalog.keysBetween(frames[0].key, frames[frames.length - 1].key));
    const missing = frames.filter((item) => !known.has(item.key));
    result.unindexed += missing.length;
    const rows: FrameRow[] = [];
    for (const item of missing) {
      if (result.examples.length < 5) result.examples.push(item.key);
      if (result.indexed + rows.length >= maxIndex) continue;
      // The object may have been stored a moment ago and be recorded by the consumer right now, or evicted
      // meanwhile: a row is only written for an object that is still there, and never over a row that is.
      const head = await local.head(item.key);
      const row = head ? rowFromObject(item.key, { ...item, ...head, key: item.key }, "local") : null;
      if (row && !(await catalog.get(item.key))) rows.push(row);
    }
    if (rows.length) {
      const fresh: FrameRow[] = [];
      for (const r of rows) if (!(await catalog.get(r.key))) fresh.push(r);
      await catalog.upsertMany(fresh);
      result.indexed += rows.length;
    }
  };
  for await (const item of local.list({ prefix })) {
    page.push(item);
    if (page.length >= 1000) await check();
  }
  await check();
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
