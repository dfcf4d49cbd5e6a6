/**
 * GET /api/storage (src/server/routes/storage.ts) over a real catalog and the stack's S3 server, with the evictor
 * (src/retention/evictor.ts) recording its state each round: archive unreachable since T while its endpoint is
 * down (and the consumer paused at the hard limit), idle with frames archived once it is back, "not reporting"
 * when the record is stale, and the usage against the thresholds of the config.
 */
import { storeLocalFrames } from "../support/local_frames.ts";
import { archiveAt as archiveOf } from "../support/stores.ts";
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { Evictor } from "../../src/retention/evictor.ts";
import { createApp } from "../../src/server/app.ts";
import { storageHealth } from "../../src/server/routes/storage.ts";
import { SimilarFrames } from "../../src/library/similar.ts";
import { createLogger } from "../../src/log.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { freePort } from "../../dev/processes.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY } from "../../tools/stack.ts";
import { bucketName, ensureS3 } from "../support/stack.ts";
import { settings } from "../support/eviction_settings.ts";

const quiet = createLogger({ level: "error", format: "text", write: () => {} });

/** The archive at `endpoint`, failing fast (1000 ms) so that a dead one is seen quickly. */
const archiveAt = (endpoint: string, bucket: string) => archiveOf(endpoint, bucket, 1000);

async function empty(store: StoragePlugin) {
  const keys: string[] = [];
  for await (const o of store.list()) keys.push(o.key);
  if (keys.length) await store.deleteMany!(keys);
  store.close();
}

Deno.test("GET /api/storage: archive unreachable since T, then idle with frames archived, then not reporting", async () => {
  const endpoint = await ensureS3();
  const local = await loadStorage("rustfs", {
    endpoint,
    bucket: bucketName("storage-local"),
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
  });
  await local.open();
  const archiveBucket = bucketName("storage-archive");
  const real = await archiveAt(endpoint, archiveBucket);
  await real.open();
  const down = await archiveAt(`http://127.0.0.1:${freePort()}`, archiveBucket);
  const catalog = new SqliteCatalog(":memory:");
  try {
    const bytes = (await storeLocalFrames(local, catalog, { count: 20 })).reduce((n, f) => n + f.size, 0);
    // 97 % of the budget: over the hard limit.
    const s = settings({ max_bytes: Math.round(bytes / 0.97), check_interval_secs: 5 });
    const app = createApp({
      catalog,
      local,
      archive: real,
      archivePrefix: "archive/",
      hasher: { hash: () => Promise.resolve(new Uint8Array(32)) },
      similar: await SimilarFrames.load(catalog, { hashBytes: 32 }),
      webDir: null,
      eviction: s,
      log: quiet,
    });
    const storage = async () => {
      const r = await app.handler(new Request("http://127.0.0.1/api/storage"));
      assert.equal(r.status, 200);
      return await r.json();
    };

    const before = await storage();
    assert.equal(before.evictor.state, "never reported");
    assert.deepEqual(before.tiers.local, { frames: 20, bytes });
    assert.equal(before.usage.level, "at hard limit");
    assert.equal(before.usage.budget.percent, 97);

    const makeEvictor = (archive: StoragePlugin) =>
      new Evictor({
        local,
        archive,
        catalog,
        settings: s,
        archivePrefix: "archive/",
        log: quiet,
        sweep: false,
      });
    const started = Date.now();
    const failing = makeEvictor(down);
    const r1 = await failing.runOnce();
    assert.ok(r1.failure);
    const unreachable = await storage();
    console.log(`  archive down: ${JSON.stringify({ ...unreachable.evictor, failure: "…" })}`);
    assert.equal(unreachable.evictor.state, "archive unreachable");
    assert.ok(unreachable.evictor.since_ms >= started && unreachable.evictor.since_ms <= Date.now());
    assert.match(unreachable.evictor.failure, /unreachable|ECONNREFUSED|connect/i);
    assert.equal(unreachable.evictor.paused, true);
    assert.equal(unreachable.evictor.frames_archived, 0);
    assert.equal(unreachable.evictor.thresholds.hard_limit_percent, 95);
    assert.equal(unreachable.tiers.local.frames, 20, "nothing deleted");

    // Back: a round archives the oldest frames down to the target.
    const working = makeEvictor(real);
    const r2 = await working.runOnce();
    assert.equal(r2.failure, null);
    const idle = await storage();
    assert.equal(idle.evictor.state, "idle");
    assert.equal(idle.evictor.since_ms, null);
    assert.equal(idle.evictor.frames_archived, r2.archived);
    assert.equal(idle.evictor.last_round.archived, r2.archived);
    assert.equal(idle.tiers.archive.frames, r2.archived);
    assert.equal(idle.usage.level, "ok");
    assert.ok(idle.usage.budget.percent <= 70, `${idle.usage.budget.percent}%`);

    // Nothing recorded for longer than three checks (at least 90 s): not reporting, the last state kept.
    const later = await storageHealth(catalog, s, Date.now() + 91_000);
    assert.equal(later.evictor.state, "not reporting");
    assert.equal(later.evictor.reported_state, "idle");
  } finally {
    await catalog.close();
    down.close();
    await empty(local);
    await empty(real);
  }
});
