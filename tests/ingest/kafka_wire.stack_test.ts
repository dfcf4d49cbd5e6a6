/**
 * The producer's own Kafka client (src/ingest/kafka_wire.ts) against the real broker: what it publishes, with each
 * codec, is read back byte for byte by the consumer's client (kafkajs) and by an independent one (kcat, librdkafka)
 * with the same keys, record timestamps and the robot's partition.
 */
import assert from "node:assert/strict";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { WireProducer } from "../../src/ingest/kafka_wire.ts";
import { type IncomingMessage, openConsumer } from "../../src/kafka/client.ts";
import { partitionForRobot } from "../../src/kafka/partitioner.ts";
import { sleep } from "../../src/ingest/camera.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { readSamples } from "../support/images.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";

const hasKcat = await new Deno.Command("kcat", { args: ["-V"], stdout: "null", stderr: "null" }).output()
  .then((o) => o.success, () => false);

for (const compression of ["none", "gzip", "snappy"] as const) {
  Deno.test({
    name:
      `published frames (${compression}) come back byte for byte, keyed and timed, on the robot's partition`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    await ensureStack();
    const { path, config } = await isolatedConfig(`wire-${compression}`, { kafka: { compression } });
    await createTopic(config, 3);
    const samples = readSamples().slice(0, 4);
    const now = Date.now();
    const sent = samples.flatMap((jpeg, i) =>
      ["wire-a", "wire-b", "wire-c"].map((robot, r) => ({
        key: `${robot}:${now + i * 100 + r}`,
        value: encodeFrame(now + i * 100 + r, i, jpeg),
        timestampMs: now + i * 100 + r,
      }))
    );
    const producer = new WireProducer(config.kafka, quietLog);
    try {
      assert.deepEqual(await producer.topic(), { partitions: 3 });
      await producer.send(sent.slice(0, 3));
      await producer.send(sent.slice(3)); // several frames of each robot in one request
    } finally {
      await producer.close();
    }

    const got: (IncomingMessage & { partition: number })[] = [];
    const consumer = await openConsumer(
      { ...config.kafka, group_id: `${config.kafka.group_id}-read` },
      quietLog,
    );
    await consumer.run(async (batch) => {
      for (const m of batch.messages) {
        got.push({ ...m, partition: batch.partition });
        batch.resolveOffset(m.offset);
      }
      await Promise.resolve();
    }, { partitionsConcurrently: 3 });
    for (let waited = 0; got.length < sent.length && waited < 60_000; waited += 100) await sleep(100);
    await consumer.stop();
    await Deno.remove(path).catch(() => {});
    assert.equal(got.length, sent.length);
    for (const m of sent) {
      const back = got.find((g) => g.key === m.key);
      assert.ok(back, `${m.key} came back`);
      assert.deepEqual(new Uint8Array(back.value ?? []), m.value, `${m.key}: the same bytes`);
      assert.equal(back.timestampMs, m.timestampMs, `${m.key}: the record timestamp is the capture time`);
      assert.equal(
        back.partition,
        partitionForRobot(m.key.split(":")[0], 3),
        `${m.key}: the robot's partition`,
      );
    }
    for (const robot of ["wire-a", "wire-b", "wire-c"]) {
      const offsets = got.filter((g) => g.key?.startsWith(robot)).map((g) => g.key);
      assert.deepEqual(offsets, sent.filter((m) => m.key.startsWith(robot)).map((m) => m.key), "in order");
    }
  });
}

Deno.test({
  name: "kcat (librdkafka) reads what the producer's own client wrote",
  ignore: !hasKcat,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("wire-kcat");
  await createTopic(config, 3);
  const jpeg = readSamples()[0];
  const now = Date.now();
  const producer = new WireProducer(config.kafka, quietLog);
  try {
    await producer.send([0, 1, 2].map((i) => ({
      key: `wire-k:${now + i}`,
      value: encodeFrame(now + i, i, jpeg),
      timestampMs: now + i,
    })));
  } finally {
    await producer.close();
    await Deno.remove(path).catch(() => {});
  }
  const out = await new Deno.Command("kcat", {
    args: [
      "-b",
      stackEndpoints().kafkaBrokers[0],
      "-C",
      "-t",
      config.kafka.topic,
      "-e",
      "-q",
      "-f",
      "%p %k %T %S\n",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const partition = partitionForRobot("wire-k", 3);
  assert.deepEqual(
    lines,
    [0, 1, 2].map((i) => `${partition} wire-k:${now + i} ${now + i} ${16 + jpeg.length}`),
  );
});
