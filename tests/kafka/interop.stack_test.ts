/**
 * Interoperability with an independent Kafka client: kcat (librdkafka) reads what our producer wrote, and our
 * consumer stores what kcat wrote with snappy compression.
 */
import assert from "node:assert/strict";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { openProducer } from "../../src/kafka/client.ts";
import { objectKey } from "../../src/key.ts";
import { partitionForRobot } from "../../src/kafka/partitioner.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { spawnDeno } from "../../dev/processes.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { readSamples } from "../support/images.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";

const hasKcat = await new Deno.Command("kcat", { args: ["-V"], stdout: "null", stderr: "null" }).output()
  .then((o) => o.success, () => false);

async function kcat(args: string[]): Promise<string> {
  const out = await new Deno.Command("kcat", {
    args: ["-b", stackEndpoints().kafkaBrokers[0], ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`kcat ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

Deno.test({
  name: "kcat and frame-bucket read each other's frames",
  ignore: !hasKcat,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await ensureStack();
  const { path, config } = await isolatedConfig("interop");
  await createTopic(config, 3);
  const jpeg = readSamples()[0];
  const now = Date.now();
  try {
    await t.step("kcat sees our keys, sizes and the robot's single partition (snappy batches)", async () => {
      // Not the default codec (JPEG does not compress), but one users may pick: librdkafka must read our snappy.
      const producer = await openProducer({ ...config.kafka, compression: "snappy" }, quietLog);
      await producer.send([0, 1, 2, 3, 4].map((i) => ({
        key: `ours-1:${now + i}`,
        value: encodeFrame(now + i, i, jpeg),
        timestampMs: now + i,
      })));
      await producer.close();
      const lines = (await kcat(["-C", "-t", config.kafka.topic, "-e", "-q", "-f", "%p %k %S\n"])).trim()
        .split("\n");
      assert.equal(lines.length, 5);
      const expectedPartition = partitionForRobot("ours-1", 3);
      for (const [i, line] of lines.entries()) {
        assert.equal(line, `${expectedPartition} ours-1:${now + i} ${16 + jpeg.length}`);
      }
    });
    await t.step("our consumer stores a snappy-compressed frame produced by kcat", async () => {
      const file = await Deno.makeTempFile({ suffix: ".frame" });
      await Deno.writeFile(file, encodeFrame(now + 100, 77, jpeg));
      await kcat(["-P", "-t", config.kafka.topic, "-z", "snappy", "-k", `kcat-2:${now + 100}`, file]);
      await Deno.remove(file);
      const consumer = spawnDeno("consumer", "src/main/consume.ts", ["--config", path], {
        env: { LOG_LEVEL: "debug" },
      });
      try {
        await consumer.waitFor(/accepted .*kcat-2/, 30000);
        await consumer.waitFor(/\[stats\].*kcat-2 \[ahash\] received 1 accepted 1 dropped 0 stored 1/, 15000);
      } finally {
        await consumer.stop();
      }
      const store = await loadStorage("rustfs", {
        endpoint: config.rustfs.endpoint,
        bucket: config.rustfs.bucket,
      });
      const stored = await store.get(objectKey("frames/", "kcat-2", now + 100, 77));
      store.close();
      assert.deepEqual(stored, jpeg);
    });
  } finally {
    await Deno.remove(path);
  }
});
