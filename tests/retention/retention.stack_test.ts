/**
 * Eviction inside the consumer, on the real stack: a byte budget for the local tier, an archive that is down at
 * first (the consumer must pause at the hard limit and delete nothing), then comes back (eviction archives the
 * oldest frames, the consumer resumes and catches up). Every accepted frame ends in exactly one tier.
 */
import assert from "node:assert/strict";
import { catalogPath, SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { audit, waitForDrain } from "../../dev/audit.ts";
import { startCamera } from "../../tools/camera.ts";
import { startLatencyProxy } from "../../dev/latency_proxy.ts";
import { spawnDeno } from "../../dev/processes.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";
import { sleep } from "../../src/ingest/camera.ts";

Deno.test({
  name:
    "retention: archive down pauses the consumer at the hard limit; back up, eviction frees space and nothing is lost",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const s3 = stackEndpoints();
  const proxy = startLatencyProxy({ hostname: "127.0.0.1", port: Number(new URL(s3.s3Endpoint).port) }, 0);
  const archiveBucket = `archive-${crypto.randomUUID().slice(0, 8)}`;
  const { path, config } = await isolatedConfig("retention", {
    eviction: {
      max_bytes: 600_000,
      threshold_percent: 60.0,
      target_percent: 40.0,
      hard_limit_percent: 90.0,
      check_interval_secs: 0.5,
      batch_size: 10,
    },
    aws_s3: { bucket: archiveBucket, endpoint: `http://127.0.0.1:${proxy.port}`, prefix: "archive/" },
  });
  const archive = await loadStorage("s3_archive", {
    bucket: archiveBucket,
    endpoint: s3.s3Endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    createBucket: true,
  });
  await archive.open();
  await createTopic(config, 1);
  const camera = await startCamera({ port: 0, fps: 10, stillSeconds: 0.25, seed: 5 });
  const env = { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey };
  proxy.down = true;
  const consumer = spawnDeno("consumer", "src/main/consume.ts", ["--config", path], {
    env: { ...env, LOG_LEVEL: "debug" },
  });
  const producer = spawnDeno("producer", "src/main/produce.ts", ["ret-1", camera.url, "--config", path]);
  try {
    // ~20 KB frames, a new scene every 2-3 frames: the 600 kB budget's hard limit (540 kB) comes within seconds.
    await consumer.waitFor(/PAUSING the consumer/, 60000);
    const local = await loadStorage("rustfs", {
      endpoint: config.rustfs.endpoint,
      bucket: config.rustfs.bucket,
    });
    const catalog = new SqliteCatalog(catalogPath(config));
    await sleep(3000);
    const whilePaused = await catalog.totals();
    assert.equal(whilePaused.archive.frames, 0, "nothing archived while the archive is down");
    let objects = 0;
    for await (const _ of local.list({ prefix: "frames/" })) objects++;
    assert.equal(objects, whilePaused.local.frames + whilePaused.archiving.frames, "nothing deleted locally");
    assert.ok(
      whilePaused.local.bytes + whilePaused.archiving.bytes <= 600_000 * 0.9 + 200_000,
      "consumption paused near the limit",
    );

    proxy.down = false;
    await consumer.waitFor(/resuming the consumer/, 60000);
    await sleep(3000);
    await producer.stop();
    assert.equal(await waitForDrain(config, quietLog), 0, "caught up after resuming");
    await sleep(2000); // a last eviction round
    await consumer.stop();

    const totals = await catalog.totals();
    assert.ok(totals.archive.frames > 0, "eviction archived frames once the archive was back");
    assert.ok(totals.local.bytes <= 600_000, `local tier back within budget: ${totals.local.bytes}`);
    // Every accepted frame is in exactly one tier.
    const result = await audit(config, quietLog);
    const archived = new Set<string>();
    for await (const o of archive.list({ prefix: "archive/" })) archived.add(o.key.slice("archive/".length));
    const lost = [...result.expected].filter((k) => !result.stored.has(k) && !archived.has(k));
    const both = [...result.stored].filter((k) => archived.has(k));
    assert.deepEqual(lost, [], "accepted frames in neither tier");
    assert.deepEqual(both, [], "frames in both tiers after eviction settled");
    for (const row of await catalog.all()) {
      assert.equal(row.tier === "archive", archived.has(row.key), `${row.key} is where its row says`);
    }
    console.log(
      `retention: ${result.expected.size} accepted, ${archived.size} archived, ${result.stored.size} local, ` +
        `${lost.length} lost, pause and resume seen`,
    );
    await catalog.close();
    local.close();
  } finally {
    producer.kill("SIGKILL");
    consumer.kill("SIGKILL");
    await Promise.all([producer.exited, consumer.exited]);
    await camera.close();
    await proxy.close();
    archive.close();
    await Deno.remove(path);
  }
});
