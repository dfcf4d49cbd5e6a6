/**
 * Real frames stored in a local store with their catalog rows, as the consumer leaves them (object first, then
 * the row with the put's ETag): the starting point of the retention and storage-health tests.
 */
import type { Catalog } from "../../src/catalog/catalog.ts";
import { objectKey } from "../../src/key.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { md5Hex } from "../../src/store/content.ts";
import { readSamples, withComment } from "./images.ts";

export interface StoredFrame {
  key: string;
  size: number;
  md5: string;
}

/**
 * Stores frames `first` .. `first + count - 1` of reachy-001, one a second from 2026-02-18 09:00 UTC, each a
 * real sample made unique by a JPEG comment (its key), and records them in the local tier at `clockMs`.
 */
export async function storeLocalFrames(
  local: StoragePlugin,
  catalog: Catalog,
  options: { count: number; first?: number; clockMs?: number },
): Promise<StoredFrame[]> {
  const samples = readSamples();
  const t0 = Date.UTC(2026, 1, 18, 9);
  const first = options.first ?? 0;
  const clock = options.clockMs ?? 1;
  return await Promise.all(Array.from({ length: options.count }, async (_, n) => {
    const seq = first + n;
    const timestampMs = t0 + seq * 1000;
    const key = objectKey("frames/", "reachy-001", timestampMs, seq);
    const body = withComment(samples[seq % samples.length], key);
    const { etag } = await local.put(key, body, {
      contentType: "image/jpeg",
      metadata: { seq: String(seq) },
    });
    await catalog.upsert({
      key,
      robotId: "reachy-001",
      timestampMs,
      seq,
      size: body.length,
      etag: etag ?? null,
      filter: "ahash",
      distance: 31,
      hash: null,
      tier: "local",
      tierChangedMs: clock,
      storedMs: clock,
    });
    return { key, size: body.length, md5: md5Hex(body) };
  }));
}
