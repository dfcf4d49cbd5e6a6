/**
 * A user's storage plugin chosen by config (`[rustfs] plugin = "./counting_store.ts"`, relative to the config file
 * in a folder outside the project) is type-checked, loaded, opened against the real S3 server and stores the
 * consumer's frames.
 */
import assert from "node:assert/strict";
import { resolveConfig } from "../../src/config.ts";
import { Pipeline } from "../../src/consume/pipeline.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { memoryLogger } from "../../src/log.ts";
import { loadFilter, localStore } from "../../src/filter/loader.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import { ensureStack } from "../support/stack.ts";
import { fakeBatch } from "../support/fakes.ts";
import { readSamples } from "../support/images.ts";
import { stackEndpoints } from "../../tools/stack.ts";

const T0 = Date.UTC(2026, 1, 18, 9, 39, 32, 518);

Deno.test("a user's storage plugin from the config stores the consumer's frames on the real S3 server", async () => {
  await ensureStack();
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-user-" });
  const rustfs = new URL("../../plugins/storage/rustfs.ts", import.meta.url).href;
  const source = await Deno.readTextFile(new URL("../fixtures/plugins/counting_store.ts", import.meta.url));
  await Deno.writeTextFile(
    `${dir}/counting_store.ts`,
    source.replace("../../../plugins/storage/rustfs.ts", rustfs),
  );
  const bucket = `user-store-${crypto.randomUUID().slice(0, 8)}`;
  const config = resolveConfig(
    `[rustfs]\nplugin = "./counting_store.ts"\nendpoint = "${stackEndpoints().s3Endpoint}"\nbucket = "${bucket}"\n`,
    { baseDir: dir, source: `${dir}/config.toml` },
  );
  const storage = await localStore(config);
  try {
    assert.equal(storage.name, "counting");
    await storage.open(); // creates the bucket and runs the built-in's self-test through the wrapper
    const pipeline = new Pipeline({
      config,
      log: memoryLogger(),
      storage,
      filter: await createSceneFilter(config, (s) => loadFilter(s, config.baseDir)),
      sleep: () => Promise.resolve(),
      now: () => T0 + 60_000,
    });
    const [frame] = readSamples();
    await pipeline.handleBatch(fakeBatch([{
      offset: "0",
      key: `r1:${T0}`,
      value: encodeFrame(T0, 7, frame),
      timestampMs: T0,
    }]));
    const keys: string[] = [];
    for await (const o of storage.list({ prefix: config.rustfs.prefix })) keys.push(o.key);
    assert.equal(keys.length, 1);
    assert.deepEqual(await storage.get(keys[0]), frame);
    const { stored } = await import(`file://${dir}/counting_store.ts`);
    assert.equal(stored.get("counting"), 1, "the frame went through the user's put");
    await storage.delete(keys[0]);
  } finally {
    storage.close();
    await Deno.remove(dir, { recursive: true });
  }
});
