/**
 * Acceptance of the plugin seam: a user's filter plugin whose `bits` are 64 long (a dHash, not the built-in 256-bit
 * aHash), loaded from a folder outside the project, stores frames through the consumer's pipeline, and
 * similar-frame search finds them (before the seam: 0 of 3 indexed, since the index assumed 32-byte hashes).
 */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { resolveConfig } from "../../src/config.ts";
import { Pipeline } from "../../src/consume/pipeline.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { memoryLogger } from "../../src/log.ts";
import { loadFilter } from "../../src/filter/loader.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import { hashBytesOf, JpegHasher, SimilarFrames } from "../../src/library/similar.ts";
import { fakeBatch, MemoryStore } from "../support/fakes.ts";
import { greyJpeg, readSamples } from "../support/images.ts";

const T0 = Date.UTC(2026, 1, 18, 9, 39, 32, 518);

Deno.test("a user filter plugin with 64-bit bits: its frames are found by similar-frame search", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-user-" });
  await Deno.copyFile(new URL("../fixtures/plugins/dhash.ts", import.meta.url), `${dir}/dhash.ts`);
  const config = resolveConfig(`[filter]\nprimary = "./dhash.ts"\noptions = { threshold = 10 }\n`, {
    baseDir: dir,
  });
  // Three scenes a dHash tells apart: a real frame, brightness falling to the right (every bit set) and rising
  // to the right (none set).
  const scenes = [
    readSamples()[0],
    greyJpeg(320, 240, (x) => 255 - (x * 255) / 320),
    greyJpeg(320, 240, (x) => (x * 255) / 320),
  ];
  const catalog = new SqliteCatalog(":memory:");
  const store = new MemoryStore();
  const pipeline = new Pipeline({
    config,
    log: memoryLogger(),
    storage: store,
    filter: await createSceneFilter(config, (s) => loadFilter(s, config.baseDir)),
    catalog,
    sleep: () => Promise.resolve(),
    now: () => T0 + 60_000,
  });
  const hasher = await JpegHasher.fromConfig(config);
  try {
    await pipeline.handleBatch(fakeBatch(scenes.map((jpeg, i) => ({
      offset: String(i),
      key: `r1:${T0 + i * 1000}`,
      value: encodeFrame(T0 + i * 1000, i, jpeg),
      timestampMs: T0 + i * 1000,
    }))));
    const rows = await catalog.all();
    assert.equal(rows.length, 3, "three scenes stored");
    assert.ok(
      rows.every((r) => r.filter === "dhash" && r.hash?.length === 8),
      "64-bit hashes in the catalog",
    );

    // The server's way of loading the index: the configured filter is no aHash, so the rows give the length.
    assert.equal(hashBytesOf(config.filter), undefined);
    const similar = await SimilarFrames.load(catalog, { hashBytes: hashBytesOf(config.filter) });
    assert.equal(similar.size, 3, "all 3 rows indexed");
    assert.deepEqual([...similar.sizes()], [[64, 3]]);
    for (const [i, jpeg] of scenes.entries()) {
      const upload = await hasher.hash(jpeg);
      assert.equal(upload.length, 8, "an upload is hashed by the user's plugin");
      const hits = await similar.nearest(upload, { k: 3 });
      assert.equal(hits.length, 3);
      assert.deepEqual([hits[0].frame.seq, hits[0].distance], [i, 0], `scene ${i} is its own nearest frame`);
    }
    const byKey = await similar.nearestToKey(rows.find((r) => r.seq === 1)!.key, { k: 1 });
    assert.equal(byKey.length, 1);
    assert.notEqual(byKey[0].frame.seq, 1, "the frame itself is left out");

    // Even an index whose main length is the 256-bit aHash's keeps the 64-bit rows, in an index of their own.
    const aHashSized = await SimilarFrames.load(catalog, { hashBytes: 32 });
    assert.equal(aHashSized.size, 0);
    assert.equal(aHashSized.skipped, 3, "counted, not silently dropped");
    assert.deepEqual(
      (await aHashSized.nearest(await hasher.hash(scenes[2]), { k: 1 })).map((
        h,
      ) => [h.frame.seq, h.distance]),
      [[2, 0]],
    );
  } finally {
    await hasher.close();
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
  }
});
