/** Catalog rows for tests that do not need the consumer to have stored anything. */
import type { FrameRow, Tier } from "../../src/catalog/catalog.ts";
import { objectKey } from "../../src/key.ts";

export const T0 = Date.UTC(2026, 1, 18, 9, 0, 0);

/** A stored frame's row (key as the consumer names it), with an optional hash and tier. */
export function frameRow(
  robotId: string,
  timestampMs: number,
  seq: number,
  options: { hash?: Uint8Array | null; tier?: Tier; storedMs?: number; size?: number } = {},
): FrameRow {
  return {
    key: objectKey("frames/", robotId, timestampMs, seq),
    robotId,
    timestampMs,
    seq,
    size: options.size ?? 1000 + seq,
    etag: null,
    filter: options.hash === undefined || options.hash === null ? "histogram" : "ahash",
    distance: null,
    hash: options.hash ?? null,
    tier: options.tier ?? "local",
    tierChangedMs: options.storedMs ?? timestampMs,
    storedMs: options.storedMs ?? timestampMs,
  };
}
