/**
 * Checks a finished run against the ground truth: reads every message of the topic back, replays the consumer's
 * filter over them without interruption, and compares what that accepts with what the bucket holds, by content:
 * an accepted frame counts as stored only when an object at its key (or at one of its collision keys,
 * `_p{partition}-o{offset}`) has its bytes (the listing's ETag is the MD5 of a single-part upload); with
 * `archive`, objects moved to the archive count as stored too. Used by the
 * end-to-end and fault tests and by `deno task bench faults`.
 */
import type { Config } from "../src/config.ts";
import { decodeFrame } from "../src/ingest/frame.ts";
import { openAdmin, openConsumer } from "../src/kafka/client.ts";
import { objectKey, parseMessageKey } from "../src/key.ts";
import type { Logger } from "../src/log.ts";
import { archiveStore, loadFilter, localStore } from "../src/filter/loader.ts";
import { createSceneFilter } from "../src/filter/scene.ts";
import { sleep } from "../src/ingest/camera.ts";
import { md5Hex } from "../src/store/content.ts";

export interface Audit {
  /** Messages in the topic. */
  messages: number;
  /** Object keys an uninterrupted consumer stores for those messages (where each was found, else its plain key). */
  expected: Set<string>;
  /** Object keys in the bucket. */
  stored: Set<string>;
  /** Expected but not stored: accepted frames that were lost (their plain keys). */
  lost: string[];
  /** Lost frames whose plain key holds other bytes: replaced by, or never stored beside, another frame. */
  overwritten: string[];
  /** Accepted frames found under a collision key. */
  suffixed: number;
  /** Stored but not expected: a frame stored twice under another key, or a scene stored twice. */
  extra: string[];
  /** Partitions each robot's messages were found in. */
  partitions: Map<string, Set<number>>;
}

/** Messages not yet committed by the config's group, summed over partitions. */
export async function consumerLag(config: Config, log: Logger): Promise<number> {
  const admin = await openAdmin(config.kafka, log);
  try {
    const topic = await admin.describeTopic();
    const committed = await admin.groupOffsets(config.kafka.group_id);
    let total = 0;
    for (const [partition, high] of topic?.highWatermarks ?? []) {
      total += Number(high) - Math.max(0, Number(committed.get(partition) ?? "-1"));
    }
    return total;
  } finally {
    await admin.close();
  }
}

/**
 * Waits until the group has committed everything, for as long as the lag keeps shrinking: a slow machine is slow,
 * not a failure. Throws once the lag has not gone down for `stallMs`. Returns 0.
 */
export async function waitForDrain(
  config: Config,
  log: Logger,
  options: { stallMs?: number; pollMs?: number; describe?: () => string } = {},
): Promise<number> {
  const stallMs = options.stallMs ?? 120_000;
  let best = Infinity;
  let progressAt = Date.now();
  for (;;) {
    const lag = await consumerLag(config, log);
    if (lag <= 0) return 0;
    if (lag < best) {
      best = lag;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > stallMs) {
      throw new Error(
        `consumer lag stuck at ${lag} for ${stallMs / 1000} s` +
          (options.describe ? `; ${options.describe()}` : ""),
      );
    }
    await sleep(options.pollMs ?? 500);
  }
}

interface TopicMessage {
  partition: number;
  offset: number;
  key: string;
  value: Uint8Array;
}

/**
 * Reads the whole topic with a fresh group, in partition and offset order. Waits as long as messages keep
 * arriving; fails once none has come for `stallMs`.
 */
export async function readTopic(config: Config, log: Logger, stallMs = 120_000): Promise<TopicMessage[]> {
  const admin = await openAdmin(config.kafka, log);
  const topic = await admin.describeTopic().finally(() => admin.close());
  const total = [...(topic?.highWatermarks.values() ?? [])].reduce((n, h) => n + Number(h), 0);
  const out: TopicMessage[] = [];
  if (total === 0) return out;
  const reader = await openConsumer({
    ...config.kafka,
    group_id: `${config.kafka.group_id}-audit-${Date.now()}`,
  }, log);
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  await reader.run(async (batch) => {
    for (const m of batch.messages) {
      out.push({
        partition: batch.partition,
        offset: Number(m.offset),
        key: m.key ?? "",
        value: m.value ?? new Uint8Array(),
      });
      batch.resolveOffset(m.offset);
    }
    if (out.length >= total) done();
    await Promise.resolve();
  }, { partitionsConcurrently: topic?.partitions ?? 1 });
  let seen = -1;
  let progressAt = Date.now();
  let finished = false;
  all.then(() => (finished = true));
  while (!finished && Date.now() - progressAt < stallMs) {
    if (out.length > seen) {
      seen = out.length;
      progressAt = Date.now();
    }
    await Promise.race([all, sleep(250)]);
  }
  await reader.stop();
  if (out.length < total) {
    throw new Error(
      `read ${out.length} of ${total} messages of ${config.kafka.topic}; none arrived for ${
        stallMs / 1000
      } s`,
    );
  }
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

export async function audit(
  config: Config,
  log: Logger,
  options: { archive?: boolean } = {},
): Promise<Audit> {
  const messages = await readTopic(config, log);
  const filter = await createSceneFilter(config, (s) => loadFilter(s, config.baseDir));
  const accepted: { keys: string[]; md5: string }[] = [];
  const partitions = new Map<string, Set<number>>();
  for (const m of messages) {
    let robotId: string;
    let frame;
    try {
      robotId = parseMessageKey(m.key).robotId;
      frame = decodeFrame(m.value);
    } catch {
      continue; // refused by the consumer too
    }
    partitions.set(robotId, (partitions.get(robotId) ?? new Set()).add(m.partition));
    try {
      if ((await filter.decide(robotId, frame.jpeg)).accept) {
        const keys = [objectKey(config.rustfs.prefix, robotId, frame.timestampMs, frame.seq)];
        for (let attempt = 0; attempt < 7; attempt++) {
          keys.push(
            objectKey(config.rustfs.prefix, robotId, frame.timestampMs, frame.seq, {
              partition: m.partition,
              offset: m.offset,
              attempt,
            }),
          );
        }
        accepted.push({ keys, md5: md5Hex(frame.jpeg) });
      }
    } catch {
      // unreadable JPEG: refused by the consumer too
    }
  }
  const storage = await localStore(config);
  const etags = new Map<string, string>();
  try {
    for await (const o of storage.list({ prefix: config.rustfs.prefix })) {
      etags.set(o.key, (o.etag ?? "").toLowerCase());
    }
  } finally {
    storage.close();
  }
  if (options.archive) {
    // With eviction on, a stored frame may be in the archive instead (under aws_s3.prefix + its key).
    const archive = await archiveStore(config);
    const prefix = config.aws_s3.prefix;
    try {
      for await (const o of archive.list({ prefix: prefix + config.rustfs.prefix })) {
        etags.set(o.key.slice(prefix.length), (o.etag ?? "").toLowerCase());
      }
    } finally {
      archive.close();
    }
  }
  const expected = new Set<string>();
  const lost: string[] = [];
  const overwritten: string[] = [];
  let suffixed = 0;
  for (const frame of accepted) {
    const at = frame.keys.findIndex((k) => etags.get(k) === frame.md5);
    if (at >= 0) {
      expected.add(frame.keys[at]);
      if (at > 0) suffixed++;
      continue;
    }
    expected.add(frame.keys[0]);
    lost.push(frame.keys[0]);
    if (etags.has(frame.keys[0])) overwritten.push(frame.keys[0]);
  }
  const stored = new Set(etags.keys());
  return {
    messages: messages.length,
    expected,
    stored,
    lost,
    overwritten,
    suffixed,
    extra: [...stored].filter((k) => !expected.has(k)),
    partitions,
  };
}
