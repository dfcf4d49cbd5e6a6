/** The catalog on the real S3 server: the consumer's rows, and a rebuild from the bucket that reproduces them. */
import assert from "node:assert/strict";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { Pipeline } from "../../src/consume/pipeline.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { memoryLogger } from "../../src/log.ts";
import { loadFilter, loadStorage } from "../../src/filter/loader.ts";
import { reindex } from "../../src/store/reindex.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import { fakeBatch } from "../support/fakes.ts";
import { greyJpeg, readSamples } from "../support/images.ts";
import { ensureStack, isolatedConfig } from "../support/stack.ts";
import { freshPostgresCatalog } from "../support/postgres.ts";

const T0 = Date.UTC(2026, 1, 18, 9, 0, 0);

/** The facts a rebuild can know (not when a row was written). */
const facts = (r: FrameRow) => ({ ...r, tierChangedMs: 0, storedMs: 0, hash: r.hash ? [...r.hash] : null });

Deno.test("reindex from the bucket reproduces the consumer's catalog, into SQLite and into PostgreSQL", async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("reindex");
  const storage = await loadStorage("rustfs", {
    endpoint: config.rustfs.endpoint,
    bucket: config.rustfs.bucket,
  });
  await storage.open();
  const dir = await Deno.makeTempDir();
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  try {
    const pipeline = new Pipeline({
      config,
      log: memoryLogger(),
      storage,
      catalog,
      filter: await createSceneFilter(config, (s) => loadFilter(s, ".")),
      now: () => T0 + 3600_000,
    });
    // Two robots, alternating still frames and scene changes.
    const scenes = [
      ...readSamples().slice(0, 4),
      ...[20, 120, 220].map((v) => greyJpeg(320, 240, (x) => (x < 160 ? v : 255 - v))),
    ];
    const messages = scenes.flatMap((jpeg, i) =>
      ["r-a", "r-b"].map((robot, j) => {
        const ts = T0 + i * 1000 + j;
        return {
          offset: String(2 * i + j),
          key: `${robot}:${ts}`,
          value: encodeFrame(ts, i, jpeg),
          timestampMs: ts,
        };
      })
    );
    await pipeline.handleBatch(fakeBatch(messages));
    const written = await catalog.all();
    assert.ok(written.length >= 6, `rows ${written.length}`);
    for (const row of written) {
      const head = await storage.head(row.key);
      assert.equal(head?.size, row.size, "the row's size is the object's");
      assert.equal(head?.etag, row.etag, "the row's etag is the object's");
    }

    // The same rebuild into either backend.
    for (const rebuilt of [new SqliteCatalog(`${dir}/rebuilt.sqlite`), await freshPostgresCatalog()]) {
      try {
        const counts = await reindex({
          local: storage,
          catalog: rebuilt,
          localPrefix: "frames/",
          archivePrefix: "archive/",
        });
        assert.equal(counts.local, written.length);
        assert.deepEqual((await rebuilt.all()).map(facts), written.map(facts), rebuilt.where);
      } finally {
        await rebuilt.close();
      }
    }
  } finally {
    await catalog.close();
    storage.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(path);
  }
});
