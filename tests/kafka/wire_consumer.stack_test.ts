/**
 * The consumer's own Kafka client (src/kafka/wire_consumer.ts) against the stack's broker: draining, commits and
 * resuming, sharing a group with other wire consumers and with kafkajs ones, compressed batches, pause/resume and
 * start-up failures. Each test has its own topic and group and deletes its topic at the end.
 */
import assert from "node:assert/strict";
import type { Config } from "../../src/config.ts";
import {
  type FrameConsumer,
  type IncomingBatch,
  openAdmin,
  openConsumer,
  openProducer,
  type OutgoingMessage,
} from "../../src/kafka/client.ts";
import { partitionForRobot } from "../../src/kafka/partitioner.ts";
import { openWireConsumer } from "../../src/kafka/wire_consumer.ts";
import { memoryLogger } from "../../src/log.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";

type KafkaConfig = Config["kafka"];

/** Generous bound for waits on progress: a busy shared broker may take seconds per rebalance. */
const PATIENCE_MS = 90_000;

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

/** Waits until `done()` holds, polling; fails naming `what` after PATIENCE_MS. */
async function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  const start = Date.now();
  while (!(await done())) {
    if (Date.now() - start > PATIENCE_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A topic of its own with `partitions` partitions; `cleanup` deletes it. */
async function scratch(name: string, partitions: number, kafka: Record<string, unknown> = {}) {
  await ensureStack();
  const { path, config } = await isolatedConfig(name, { kafka });
  await createTopic(config, partitions);
  return {
    config: config.kafka,
    async cleanup() {
      const admin = await openAdmin(config.kafka, quietLog);
      try {
        await admin.deleteTopic();
      } finally {
        await admin.close();
        await Deno.remove(path).catch(() => {});
      }
    },
  };
}

/** A robot id whose frames go to `partition` (the producers pick the partition from the robot id). */
function robotOn(partition: number, partitions: number): string {
  for (let i = 0;; i++) if (partitionForRobot(`robot-${i}`, partitions) === partition) return `robot-${i}`;
}

/** `perPartition` messages on each partition, with values of varied sizes and content. */
function messages(partitions: number, perPartition: number, tag = "m"): OutgoingMessage[] {
  const out: OutgoingMessage[] = [];
  const now = Date.now();
  for (let p = 0; p < partitions; p++) {
    const robot = robotOn(p, partitions);
    for (let i = 0; i < perPartition; i++) {
      const value = new Uint8Array(1 + ((i * 7919 + p * 104729) % 50_000));
      for (let b = 0; b < value.length; b += 97) value[b] = (b + i + p) & 0xff;
      value[0] = i & 0xff;
      out.push({ key: `${robot}:${tag}-${p}-${i}`, value, timestampMs: now + i });
    }
  }
  return out;
}

async function produce(config: KafkaConfig, list: OutgoingMessage[]): Promise<void> {
  const producer = await openProducer(config, quietLog);
  try {
    for (let i = 0; i < list.length; i += 20) await producer.send(list.slice(i, i + 20));
  } finally {
    await producer.close();
  }
}

interface Seen {
  partition: number;
  offset: number;
  key: string | null;
  value: Uint8Array | null;
  timestampMs: number;
  highWatermark: string;
}

/** Runs `consumer`, resolving every message and recording it in `seen` (values copied: views die with the batch). */
async function collect(consumer: FrameConsumer, seen: Seen[], concurrency = 4): Promise<void> {
  await consumer.run(async (batch: IncomingBatch) => {
    for (const m of batch.messages) {
      if (!batch.isActive()) break;
      seen.push({
        partition: batch.partition,
        offset: Number(m.offset),
        key: m.key,
        value: m.value && new Uint8Array(m.value), // a copy, and a plain Uint8Array (kafkajs gives Buffers)
        timestampMs: m.timestampMs,
        highWatermark: batch.highWatermark,
      });
      batch.resolveOffset(m.offset);
    }
    await batch.heartbeat();
  }, { partitionsConcurrently: concurrency });
}

async function committed(config: KafkaConfig): Promise<Map<number, string>> {
  const admin = await openAdmin(config, quietLog);
  try {
    return await admin.groupOffsets(config.group_id);
  } finally {
    await admin.close();
  }
}

/** Each (partition, offset) once, and every sent message among them with the same bytes. */
/** A new wire consumer of the group takes every message of `sent`, each exactly once, and stops. */
async function drainAll(config: KafkaConfig, sent: OutgoingMessage[]): Promise<Seen[]> {
  const seen: Seen[] = [];
  const consumer = await openWireConsumer(config, quietLog);
  try {
    await collect(consumer, seen);
    await until("every message", () => seen.length >= sent.length);
  } finally {
    await consumer.stop();
  }
  assertExactlyOnce(seen, sent);
  return seen;
}

function assertExactlyOnce(seen: Seen[], sent: OutgoingMessage[]): void {
  const ids = seen.map((s) => `${s.partition}/${s.offset}`);
  assert.equal(new Set(ids).size, ids.length, "no message delivered twice");
  assert.equal(seen.length, sent.length, "every message delivered");
  const byKey = new Map(seen.map((s) => [s.key, s]));
  for (const m of sent) {
    const got = byKey.get(m.key);
    assert.ok(got, `${m.key} delivered`);
    assert.deepEqual(got.value, m.value, `${m.key}: the same bytes`);
  }
}

test("drains a topic from the beginning: the same bytes, offsets in order per partition, the high watermark", async () => {
  const { config, cleanup } = await scratch("wire-drain", 3);
  try {
    const sent = messages(3, 25);
    // One frame near the fetch limit's size, so an answer spans many socket reads.
    sent.push({
      key: `${robotOn(1, 3)}:big`,
      value: new Uint8Array(3 * 1024 * 1024).fill(7),
      timestampMs: 1,
    });
    await produce(config, sent);
    const seen = await drainAll(config, sent);
    for (let p = 0; p < 3; p++) {
      const mine = seen.filter((s) => s.partition === p);
      const count = sent.filter((m) => partitionForRobot(m.key.split(":")[0], 3) === p).length;
      assert.deepEqual(
        mine.map((s) => s.offset),
        [...Array(count).keys()],
        `partition ${p}: offsets 0.. in order`,
      );
      assert.equal(mine.at(-1)?.highWatermark, String(count), `partition ${p}: high watermark`);
      for (const s of mine) {
        const m = sent.find((x) => x.key === s.key)!;
        assert.equal(s.timestampMs, m.timestampMs, `${s.key}: the record timestamp`);
      }
    }
  } finally {
    await cleanup();
  }
});

test("a fetch answer is freed once its batches are handled: a value kept past its batch reads empty, never other bytes", async () => {
  const { config, cleanup } = await scratch("wire-free", 2);
  const consumer = await openWireConsumer(config, quietLog);
  try {
    const sent = messages(2, 10);
    await produce(config, sent);
    const kept: { value: Uint8Array; copy: Uint8Array }[] = [];
    await consumer.run(async (batch) => {
      for (const m of batch.messages) {
        kept.push({ value: m.value!, copy: m.value!.slice() });
        batch.resolveOffset(m.offset);
      }
      await Promise.resolve();
    }, { partitionsConcurrently: 2 });
    await until("every message handled", () => kept.length >= sent.length);
    // The last batch's answer is freed just after its handler returned.
    await until("the answers freed", () => kept.every((k) => k.value.byteLength === 0));
    for (const k of kept) {
      assert.equal((k.value.buffer as ArrayBuffer).detached, true);
      assert.ok(
        sent.some((m) => m.value.length === k.copy.length && m.value.every((b, i) => b === k.copy[i])),
      );
    }
  } finally {
    await consumer.stop();
    await cleanup();
  }
});

test("a batch larger than a partition's share of a fetch comes through whole while the other partitions are full", async () => {
  // The default budget is 9 MiB and a partition's share a quarter of it: three 2.5 MiB frames on partition 1
  // make one 7.5 MiB batch, which no share holds, between partitions with more small frames (~7 MB each) than
  // a share, so that partition 1 is not the only one with data when its batch is asked for.
  const { config, cleanup } = await scratch("wire-consumer-large-batch", 3);
  try {
    const robot = robotOn(1, 3);
    const now = Date.now();
    const big: OutgoingMessage[] = Array.from({ length: 3 }, (_, i) => {
      const value = new Uint8Array(2.5 * 1024 * 1024 + i);
      for (let b = 0; b < value.length; b += 251) value[b] = (b + i) & 0xff;
      return { key: `${robot}:big-${i}`, value, timestampMs: now + i };
    });
    const small = messages(3, 300, "small");
    await produce(config, [...small.slice(0, 300), ...big, ...small.slice(300)]);
    await drainAll(config, [...small, ...big]);
  } finally {
    await cleanup();
  }
});

test("commits resolved offsets; a new member resumes after the last resolved one, also after stop() mid-batch", async () => {
  const { config, cleanup } = await scratch("wire-commit", 1);
  try {
    const sent = messages(1, 30);
    await produce(config, sent);
    // First member: resolves offsets 0..9 and keeps the rest unresolved; the periodic commit takes them.
    const first = await openWireConsumer(config, quietLog);
    let seenFirst = 0;
    await first.run(async (batch) => {
      for (const m of batch.messages) {
        if (Number(m.offset) >= 10) break;
        seenFirst++;
        batch.resolveOffset(m.offset);
      }
      await Promise.resolve();
    }, { partitionsConcurrently: 1 });
    await until("offset 10 committed while running", async () => (await committed(config)).get(0) === "10");
    await first.stop();
    assert.ok(seenFirst >= 10);

    // Second member: resolves 10..14, then stops in the middle of its batch (the rest of it unresolved).
    const second = await openWireConsumer(config, quietLog);
    const secondOffsets: number[] = [];
    let stopping: Promise<void> | null = null;
    await second.run(async (batch) => {
      for (const m of batch.messages) {
        secondOffsets.push(Number(m.offset));
        if (Number(m.offset) === 15) {
          stopping ??= second.stop(); // not awaited here: stop() waits for this very batch
          break;
        }
        batch.resolveOffset(m.offset);
      }
      await Promise.resolve();
    }, { partitionsConcurrently: 1 });
    await until("the second member stopping", () => stopping !== null);
    await stopping;
    assert.equal(secondOffsets[0], 10, "the second member starts after the last resolved offset");
    assert.equal((await committed(config)).get(0), "15", "stop() committed what was resolved, nothing more");

    // Third member: gets exactly 15..29.
    const rest: Seen[] = [];
    const third = await openWireConsumer(config, quietLog);
    try {
      await collect(third, rest);
      await until("the rest", () => rest.length >= 15);
    } finally {
      await third.stop();
    }
    assert.deepEqual(rest.map((s) => s.offset), [...Array(15).keys()].map((i) => i + 15));
    assert.equal((await committed(config)).get(0), "30");
  } finally {
    await cleanup();
  }
});

test("two wire consumers split the partitions; when one stops the other takes all and continues from the commits", async () => {
  const { config, cleanup } = await scratch("wire-split", 4, { session_timeout_ms: 6000 });
  const seen: Seen[] = [];
  const assignments = { a: [] as number[], b: [] as number[] };
  const a = await openWireConsumer(config, quietLog, { onRebalance: (p) => assignments.a = p });
  const b = await openWireConsumer(config, quietLog, { onRebalance: (p) => assignments.b = p });
  try {
    const firstRound = messages(4, 10, "a");
    await produce(config, firstRound);
    await collect(a, seen);
    await collect(b, seen);
    await until(
      "both members holding partitions",
      () => assignments.a.length === 2 && assignments.b.length === 2,
    );
    assert.deepEqual([...assignments.a, ...assignments.b].sort(), [0, 1, 2, 3]);
    await until("the first round", () => seen.length >= firstRound.length);
    await a.stop();
    await until("b holding every partition", () => assignments.b.length === 4);
    const secondRound = messages(4, 10, "b");
    await produce(config, secondRound);
    await until("the second round", () => seen.length >= firstRound.length + secondRound.length);
    await b.stop();
    assertExactlyOnce(seen, [...firstRound, ...secondRound]);
  } finally {
    await a.stop();
    await b.stop();
    await cleanup();
  }
});

for (const leader of ["kafkajs", "wire"] as const) {
  test(`a kafkajs consumer and a wire consumer share a group (rolling upgrade; the ${leader} one leads)`, async () => {
    const { config, cleanup } = await scratch(`wire-mixed-${leader}`, 4, { session_timeout_ms: 6000 });
    const seen: Seen[] = [];
    const assignments = { kafkajs: [] as number[], wire: [] as number[] };
    const consumers: FrameConsumer[] = [];
    try {
      const sent = messages(4, 10);
      await produce(config, sent);
      const open = {
        kafkajs: () => openConsumer(config, quietLog, { onRebalance: (p) => assignments.kafkajs = p }),
        wire: () => openWireConsumer(config, quietLog, { onRebalance: (p) => assignments.wire = p }),
      };
      const follower = leader === "kafkajs" ? "wire" : "kafkajs";
      const first = await open[leader]();
      consumers.push(first);
      await collect(first, seen);
      const second = await open[follower]();
      consumers.push(second);
      await collect(second, seen);
      await until(
        "both members holding two partitions",
        () => assignments.kafkajs.length === 2 && assignments.wire.length === 2,
      );
      assert.deepEqual([...assignments.kafkajs, ...assignments.wire].sort(), [0, 1, 2, 3]);
      await until("every message", () => seen.length >= sent.length);
      for (const c of consumers.splice(0)) await c.stop();
      assertExactlyOnce(seen, sent);
    } finally {
      for (const c of consumers) await c.stop();
      await cleanup();
    }
  });
}

for (const compression of ["gzip", "snappy"] as const) {
  test(`${compression} batches written by kafkajs' producer decode to the same bytes`, async () => {
    const { config, cleanup } = await scratch(`wire-${compression}`, 2, { compression });
    try {
      const sent = messages(2, 15);
      // Text-like values, so that the codec really compresses them.
      sent.push({
        key: `${robotOn(0, 2)}:text`,
        value: new TextEncoder().encode("frame ".repeat(20000)),
        timestampMs: 5,
      });
      await produce(config, sent);
      await drainAll(config, sent);
    } finally {
      await cleanup();
    }
  });
}

test("pause() stops deliveries and resume() restarts them; heartbeats keep the membership through a long pause", async () => {
  const { config, cleanup } = await scratch("wire-pause", 2, { session_timeout_ms: 6000 });
  try {
    const before = messages(2, 5, "before");
    await produce(config, before);
    const seen: Seen[] = [];
    let joins = 0;
    const consumer = await openWireConsumer(config, quietLog, { onRebalance: () => joins++ });
    try {
      await collect(consumer, seen);
      await until("the first messages", () => seen.length >= before.length);
      consumer.pause();
      const during = messages(2, 5, "during");
      await produce(config, during);
      // Longer than the session timeout: only heartbeats keep the member in the group.
      await new Promise((r) => setTimeout(r, 9000));
      assert.equal(seen.length, before.length, "nothing delivered while paused");
      assert.equal(joins, 1, "the membership held (no rejoin)");
      consumer.resume();
      await until("the messages sent during the pause", () => seen.length >= before.length + during.length);
      assert.equal(joins, 1);
      assertExactlyOnce(seen, [...before, ...during]);
    } finally {
      await consumer.stop();
    }
  } finally {
    await cleanup();
  }
});

test("an unknown topic and an unreachable broker fail with a message naming them", async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("wire-missing"); // its topic is never created
  try {
    await assert.rejects(
      () => openWireConsumer(config.kafka, quietLog),
      (error: Error) => {
        assert.match(
          error.message,
          new RegExp(`topic ${config.kafka.topic.replaceAll(".", "\\.")} does not exist`),
        );
        assert.match(error.message, /deno task topic/);
        return true;
      },
    );
    const log = memoryLogger();
    await assert.rejects(
      () => openWireConsumer({ ...config.kafka, brokers: ["127.0.0.1:1"], connect_timeout_ms: 1000 }, log),
      (error: Error) => {
        assert.match(error.message, /cannot reach the Kafka broker at 127\.0\.0\.1:1/);
        assert.match(error.message, /kafka\.brokers/);
        return true;
      },
    );
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});

test("lost connections are opened again and consuming goes on without a gap, logged once", async () => {
  const { config, cleanup } = await scratch("wire-reconnect", 2);
  const sockets = new Set<Deno.Conn>();
  const connect = async (hostname: string, port: number) => {
    const conn = await Deno.connect({ hostname, port });
    sockets.add(conn);
    return conn;
  };
  const log = memoryLogger("debug");
  const consumer = await openWireConsumer(config, log, { connect });
  try {
    const first = messages(2, 10, "before");
    await produce(config, first);
    const seen: Seen[] = [];
    await collect(consumer, seen);
    await until("the first messages", () => seen.length >= first.length);
    // Every socket of the consumer dies at once (a broker restart, a network blip).
    for (const conn of sockets) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    sockets.clear();
    const second = messages(2, 10, "after");
    await produce(config, second);
    await until("the messages sent after the loss", () => seen.length >= first.length + second.length);
    assertExactlyOnce(seen, [...first, ...second]);
    await until("the offsets committed", async () => {
      const offsets = await committed(config);
      return offsets.get(0) === "20" && offsets.get(1) === "20";
    });
    const warnings = log.lines.filter((l) => / WARN /.test(l));
    assert.ok(warnings.length <= 3, `one warning per trouble, not per retry:\n${warnings.join("\n")}`);
  } finally {
    await consumer.stop();
    await cleanup();
  }
});

test("a batch whose handler throws is fetched again from the last resolved offset after a backoff", async () => {
  const { config, cleanup } = await scratch("wire-throw", 1);
  const log = memoryLogger("debug");
  const consumer = await openWireConsumer(config, log);
  try {
    const sent = messages(1, 12);
    await produce(config, sent);
    const delivered: number[] = [];
    let failed = false;
    await consumer.run(async (batch) => {
      for (const m of batch.messages) {
        delivered.push(Number(m.offset));
        if (Number(m.offset) === 5 && !failed) {
          failed = true;
          throw new Error("store exploded");
        }
        batch.resolveOffset(m.offset);
      }
      await Promise.resolve();
    }, { partitionsConcurrently: 1 });
    await until("every message resolved", () => delivered.at(-1) === 11);
    // 0..5, the failure at 5, then 5..11 again: nothing skipped, nothing before 5 again.
    assert.deepEqual(delivered, [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11]);
    assert.ok(
      log.lines.some((l) =>
        /handling a batch of partition 0 .* failed \(store exploded\); fetching again from offset 5/.test(l)
      ),
      log.lines.join("\n"),
    );
  } finally {
    await consumer.stop();
    await cleanup();
  }
});
