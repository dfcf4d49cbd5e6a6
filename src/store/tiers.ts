/**
 * The two tiers of frame storage, read as one: the local store (RustFS) and the archive (AWS S3, keys prefixed
 * with aws_s3.prefix). `readFrame` is the one implementation of "a frame's bytes from whichever tier holds it",
 * used by eviction, the HTTP API and exports alike; `openTiers` is the one place that opens the catalog and both
 * stores from a config.
 */
import type { Catalog, Tier } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/open.ts";
import type { Config } from "../config.ts";
import { archiveStore, localStore } from "../filter/loader.ts";
import type { StoragePlugin } from "../plugin.ts";

export interface TierStores {
  local: StoragePlugin;
  /** The archive; null when none is configured or reachable. */
  archive: StoragePlugin | null;
  /** aws_s3.prefix: the archive key is this + the local key. */
  archivePrefix: string;
}

/**
 * A frame's bytes from whichever tier holds it: the archive first when its tier is "archive", else the local
 * store first, then the other tier (a row in "archiving" may already have lost its local object). Null only when
 * every store answered "no such object"; a store that fails throws.
 */
export async function readFrame(stores: TierStores, key: string, tier?: Tier): Promise<Uint8Array | null> {
  const fromLocal = () => stores.local.get(key);
  const fromArchive = () =>
    stores.archive ? stores.archive.get(stores.archivePrefix + key) : Promise.resolve(null);
  const order = tier === "archive" ? [fromArchive, fromLocal] : [fromLocal, fromArchive];
  for (const get of order) {
    const bytes = await get();
    if (bytes) return bytes;
  }
  return null;
}

/** `readFrame` with the tier looked up in the catalog. */
export async function fetchFrame(
  key: string,
  stores: TierStores & { catalog: Catalog },
): Promise<Uint8Array | null> {
  return readFrame(stores, key, (await stores.catalog.get(key))?.tier);
}

export interface OpenTiers extends TierStores {
  catalog: Catalog;
  /** Closes the catalog and both stores. */
  close(): Promise<void>;
}

/**
 * Opens the catalog, the local store and (unless `archive: false`) the archive a config names. The stores are
 * not `open()`ed (no bucket creation or self-test): commands that write call that themselves.
 */
export async function openTiers(config: Config, options: { archive?: boolean } = {}): Promise<OpenTiers> {
  const local = await localStore(config);
  const archive = options.archive === false ? null : await archiveStore(config);
  const catalog = await openCatalog(config);
  return {
    catalog,
    local,
    archive,
    archivePrefix: config.aws_s3.prefix,
    async close() {
      await catalog.close();
      local.close();
      archive?.close();
    },
  };
}
