/**
 * Rebuilds the catalog from the buckets: every frame object in the local store and in the archive becomes a row
 * again, from its key and the metadata the consumer stored with it. For deployments that predate the catalog and
 * after a lost catalog file.
 */
import { mapLimited } from "../map_limited.ts";
import type { Catalog, FrameRow, Tier } from "../catalog/catalog.ts";
import { parseObjectKey } from "../key.ts";
import type { ObjectInfo, StoragePlugin } from "../plugin.ts";

export interface ReindexOptions {
  local: StoragePlugin;
  /** The archive tier, when there is one. */
  archive?: StoragePlugin;
  catalog: Catalog;
  /** rustfs.prefix */
  localPrefix: string;
  /** aws_s3.prefix: archive keys are this + the local key. */
  archivePrefix: string;
  /** Called about every 2 s and at the end. */
  progress?: (counts: ReindexCounts) => void;
  /** Parallel HEAD requests. */
  concurrency?: number;
}

export interface ReindexCounts {
  local: number;
  archive: number;
  /** In both tiers: recorded as "archiving", so eviction verifies the copy again before deleting locally. */
  both: number;
  /** Objects whose key is not a frame key. */
  skipped: number;
  /** Objects per second so far. */
  perSecond: number;
}

function fromHex(hex: string | undefined): Uint8Array | null {
  if (!hex || !/^([0-9a-f]{2})+$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A catalog row from an object's key and metadata; null for keys that are not frames. */
export function rowFromObject(key: string, info: ObjectInfo, tier: Tier): FrameRow | null {
  const parsed = parseObjectKey(key);
  if (!parsed) return null;
  const meta = info.metadata ?? {};
  const distance = meta.distance === undefined || meta.distance === "first" ? null : Number(meta.distance);
  const when = info.lastModified ? Date.parse(info.lastModified) : Date.now();
  const partition = meta["kafka-partition"] ? Number(meta["kafka-partition"]) : NaN;
  const offset = meta["kafka-offset"] ? Number(meta["kafka-offset"]) : NaN;
  const known = Number.isInteger(partition) && Number.isInteger(offset);
  return {
    key,
    robotId: meta["robot-id"] ?? parsed.robotId,
    timestampMs: meta["timestamp-ms"] ? Number(meta["timestamp-ms"]) : parsed.timestampMs,
    seq: meta.seq ? Number(meta.seq) : parsed.seq,
    size: info.size,
    etag: info.etag ?? null,
    filter: meta.filter ?? "unknown",
    distance: Number.isFinite(distance) ? distance : null,
    hash: fromHex(meta.hash),
    tier,
    tierChangedMs: when,
    storedMs: when,
    partition: known ? partition : null,
    offset: known ? offset : null,
  };
}

export async function reindex(options: ReindexOptions): Promise<ReindexCounts> {
  const { local, archive, catalog, localPrefix, archivePrefix } = options;
  const concurrency = options.concurrency ?? 8;
  const started = Date.now();
  let lastProgress = started;
  const counts: ReindexCounts = { local: 0, archive: 0, both: 0, skipped: 0, perSecond: 0 };
  const report = (force = false) => {
    const now = Date.now();
    counts.perSecond = Math.round(
      (counts.local + counts.archive + counts.skipped) / Math.max(0.001, (now - started) / 1000),
    );
    if (force || now - lastProgress > 2000) {
      lastProgress = now;
      options.progress?.(counts);
    }
  };

  // Pages of listed objects are headed in parallel (the metadata is only in HEAD) and written in one transaction.
  const flush = async (store: StoragePlugin, page: ObjectInfo[], tier: Tier, strip: string) => {
    const rows = await mapLimited(page, concurrency, async (item) => {
      const key = item.key.slice(strip.length);
      if (!parseObjectKey(key)) return null;
      const head = await store.head(item.key);
      return head ? rowFromObject(key, { ...item, ...head, key }, tier) : null;
    });
    const kept: FrameRow[] = [];
    for (const row of rows) {
      if (!row) {
        counts.skipped++;
        continue;
      }
      if (tier === "archive") {
        const existing = await catalog.get(row.key);
        if (existing && existing.tier === "local") {
          // In both tiers: keep the local facts, and let eviction verify the copy before deleting locally.
          await catalog.setTier(row.key, "archiving", Date.now());
          counts.both++;
          continue;
        }
        counts.archive++;
      } else {
        counts.local++;
      }
      kept.push(row);
    }
    await catalog.upsertMany(kept);
    report();
  };

  const walk = async (store: StoragePlugin, prefix: string, tier: Tier, strip: string) => {
    let page: ObjectInfo[] = [];
    for await (const item of store.list({ prefix })) {
      page.push(item);
      if (page.length >= 500) {
        await flush(store, page, tier, strip);
        page = [];
      }
    }
    if (page.length) await flush(store, page, tier, strip);
  };

  await walk(local, localPrefix, "local", "");
  if (archive) await walk(archive, archivePrefix + localPrefix, "archive", archivePrefix);
  report(true);
  return counts;
}
