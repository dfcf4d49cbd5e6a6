/**
 * The consumer's fetches are smaller than the biggest frame a topic allows (FETCH_BYTES, src/kafka/client.ts):
 * a bigger frame must still arrive whole, in order, because the broker hands out the first record batch of a
 * fetch whatever its size (KIP-74). Proven on the stack's real broker with the consumer's own client.
 */
import assert from "node:assert/strict";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { WireProducer } from "../../src/ingest/kafka_wire.ts";
import { FETCH_BYTES, type IncomingMessage, openConsumer } from "../../src/kafka/client.ts";
import { sleep } from "../../src/ingest/camera.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";

Deno.test({
  name: "a frame three times the consumer's fetch size arrives whole and in order between small ones",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("fetch-size");
  await createTopic(config, 1);
  const big = new Uint8Array(3 * FETCH_BYTES);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  assert.ok(big.length + 16 <= config.kafka.max_message_bytes, "the topic takes the big frame");
  const now = Date.now();
  const sent = [new Uint8Array([1, 2, 3]), big, new Uint8Array([4, 5, 6])].map((body, i) => ({
    key: `fetch-robot:${now + i}`,
    value: encodeFrame(now + i, i, body),
    timestampMs: now + i,
  }));
  const producer = new WireProducer(config.kafka, quietLog);
  try {
    for (const message of sent) await producer.send([message]); // each its own record batch
  } finally {
    await producer.close();
  }

  const got: IncomingMessage[] = [];
  const consumer = await openConsumer(
    { ...config.kafka, group_id: `${config.kafka.group_id}-big` },
    quietLog,
  );
  await consumer.run(async (batch) => {
    for (const m of batch.messages) {
      got.push({ ...m, value: m.value ? new Uint8Array(m.value) : null });
      batch.resolveOffset(m.offset);
    }
    await Promise.resolve();
  }, { partitionsConcurrently: 1 });
  // Waits as long as messages keep coming; only a broker that stops delivering for two minutes fails it.
  for (let idle = 0, seen = 0; got.length < sent.length && idle < 120_000; idle += 100) {
    if (got.length > seen) [seen, idle] = [got.length, 0];
    await sleep(100);
  }
  await consumer.stop();
  await Deno.remove(path).catch(() => {});
  assert.deepEqual(got.map((m) => m.key), sent.map((m) => m.key));
  for (const [i, m] of sent.entries()) assert.deepEqual(got[i].value, m.value, `${m.key}: the same bytes`);
});
