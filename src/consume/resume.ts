/**
 * Finds a robot's newest stored frame, the reference its filter resumes from after a restart or a rebalance.
 *
 * Stores of one robot complete in order (see pipeline.ts), so the stored frames of a robot are always a prefix of
 * the frames its filter accepted. Resuming from the newest stored frame, and skipping replayed frames that are not
 * newer, makes the filter take exactly the decisions it took before the interruption: a frame accepted but not
 * yet stored when the process died is accepted again, and the last scene is not stored twice.
 *
 * Object keys sort by capture time, so the newest key is found by binary search over time with S3's StartAfter
 * (about 42 one-key listings) instead of listing every frame of the robot.
 */
import { objectKey, parseObjectKey } from "../key.ts";
import type { StoragePlugin } from "../plugin.ts";

export interface StoredRef {
  key: string;
  timestampMs: number;
  seq: number;
  /** Kafka partition and offset of the message the frame came from, when known. */
  partition?: number | null;
  offset?: number | null;
}

/** The reference with the Kafka position its object's metadata records (objects stored since it was kept). */
export async function withKafkaPosition(storage: StoragePlugin, ref: StoredRef): Promise<StoredRef> {
  const meta = (await storage.head(ref.key))?.metadata ?? {};
  const partition = Number(meta["kafka-partition"]);
  const offset = Number(meta["kafka-offset"]);
  if (!meta["kafka-partition"] || !Number.isInteger(partition) || !Number.isInteger(offset)) return ref;
  return { ...ref, partition, offset };
}

/** The key prefix of every frame of `robotId` captured at `timestampMs` (any sequence number). */
function timePrefix(prefix: string, robotId: string, timestampMs: number): string {
  const key = objectKey(prefix, robotId, timestampMs, 0);
  return key.slice(0, key.lastIndexOf("_") + 1);
}

/** The newest stored frame of a robot, or null when it has none. `horizonMs` bounds the search from above. */
export async function newestStored(
  storage: StoragePlugin,
  prefix: string,
  robotId: string,
  horizonMs: number,
): Promise<StoredRef | null> {
  const robotPrefix = `${prefix}${robotId}/`;
  const anyAtOrAfter = async (t: number) => {
    // StartAfter is exclusive: "…Z_" sorts before every key of that millisecond, so they count.
    for await (
      const _ of storage.list({ prefix: robotPrefix, startAfter: timePrefix(prefix, robotId, t), limit: 1 })
    ) {
      return true;
    }
    return false;
  };
  if (!(await anyAtOrAfter(0))) return null;
  let lo = 0; // some key is at or after lo
  let hi = Math.max(horizonMs, 1); // no key is at or after hi (checked below, widened when not)
  while (await anyAtOrAfter(hi)) hi *= 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await anyAtOrAfter(mid)) lo = mid;
    else hi = mid;
  }
  let newest: StoredRef | null = null;
  for await (
    const item of storage.list({ prefix: robotPrefix, startAfter: timePrefix(prefix, robotId, lo) })
  ) {
    const parsed = parseObjectKey(item.key);
    if (parsed && parsed.robotId === robotId && (!newest || isAfter(parsed, newest))) {
      newest = { key: item.key, timestampMs: parsed.timestampMs, seq: parsed.seq };
    }
  }
  return newest;
}

/** True when frame a comes after frame b (capture time, then sequence number). */
export function isAfter(
  a: { timestampMs: number; seq: number },
  b: { timestampMs: number; seq: number },
): boolean {
  return a.timestampMs > b.timestampMs || (a.timestampMs === b.timestampMs && a.seq > b.seq);
}
