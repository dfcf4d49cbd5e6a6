/**
 * The consumer's topic lookup over frame-bucket's own Kafka protocol code (src/kafka/wire_admin.ts), against the
 * stack's broker and side by side with the kafkajs admin it stands in for.
 */
import assert from "node:assert/strict";
import { openAdmin, openProducer } from "../../src/kafka/client.ts";
import { partitionForRobot } from "../../src/kafka/partitioner.ts";
import { openWireTopicLookup } from "../../src/kafka/wire_admin.ts";
import { ServiceError } from "../../src/errors.ts";
import { freePort } from "../../dev/processes.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

/** A robot id whose frames go to `partition` (the producers pick the partition from the robot id). */
function robotOn(partition: number, partitions: number): string {
  for (let i = 0;; i++) if (partitionForRobot(`robot-${i}`, partitions) === partition) return `robot-${i}`;
}

test("a topic's partitions and their ends: the same answer as the kafkajs admin", async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("wire-admin", {});
  await createTopic(config, 3);
  const admin = await openAdmin(config.kafka, quietLog);
  const lookup = openWireTopicLookup(config.kafka);
  try {
    const producer = await openProducer(config.kafka, quietLog);
    try {
      // Five messages on partition 0 and two on partition 2; partition 1 stays empty.
      const value = new Uint8Array([1, 2, 3]);
      const on = [robotOn(0, 3), robotOn(2, 3)];
      await producer.send(
        [0, 0, 0, 0, 0, 1, 1].map((r, i) => ({ key: `${on[r]}:${1000 + i}`, value, timestampMs: 1000 + i })),
      );
    } finally {
      await producer.close();
    }
    const wire = await lookup.describeTopic();
    const kafkajs = await admin.describeTopic();
    assert.ok(wire && kafkajs);
    assert.equal(wire.partitions, 3);
    assert.deepEqual([...wire.highWatermarks].sort(), [[0, "5"], [1, "0"], [2, "2"]]);
    assert.deepEqual([...wire.highWatermarks].sort(), [...kafkajs.highWatermarks].sort());
    // Asked again on the same connection (each /healthz request asks).
    assert.equal((await lookup.describeTopic())?.partitions, 3);
  } finally {
    await lookup.close();
    await admin.deleteTopic().catch(() => {});
    await admin.close();
    await Deno.remove(path).catch(() => {});
  }
});

test("a topic that does not exist is null, not an error, and the broker does not create it", async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("wire-admin-missing", {});
  const lookup = openWireTopicLookup(config.kafka);
  const admin = await openAdmin(config.kafka, quietLog);
  try {
    assert.equal(await lookup.describeTopic(), null);
    assert.equal(await admin.describeTopic(), null, "still missing after the lookup");
  } finally {
    await lookup.close();
    await admin.close();
    await Deno.remove(path).catch(() => {});
  }
});

test("no broker at kafka.brokers: a retriable service error that names the address and the fix", async () => {
  const { path, config } = await isolatedConfig("wire-admin-down", {});
  const address = `127.0.0.1:${freePort()}`;
  const lookup = openWireTopicLookup({ ...config.kafka, brokers: [address], connect_timeout_ms: 2000 });
  try {
    const error = await lookup.describeTopic().then(() => null, (e) => e);
    assert.ok(error instanceof ServiceError, String(error));
    assert.equal(error.retriable, true);
    assert.match(
      error.message,
      new RegExp(`cannot reach the Kafka broker at ${address}.*deno task stack up`),
    );
  } finally {
    await lookup.close();
    await Deno.remove(path).catch(() => {});
  }
});
