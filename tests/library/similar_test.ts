/** Similar frames: the index against brute force, incremental updates, the catalog paths, uploads. */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { resolveConfig } from "../../src/config.ts";
import { Pipeline } from "../../src/consume/pipeline.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { memoryLogger } from "../../src/log.ts";
import { loadFilter } from "../../src/filter/loader.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import {
  hashDistance,
  HashIndex,
  JpegHasher,
  type NearestOptions,
  SimilarFrames,
  similarFromCatalog,
} from "../../src/library/similar.ts";
import { fakeBatch, MemoryStore } from "../support/fakes.ts";
import { greyJpeg, readSamples } from "../support/images.ts";
import { mulberry32 } from "../../dev/random.ts";
import { frameRow, T0 } from "../support/rows.ts";
import { benchSearch } from "../../bench/search.ts";
import { sleep } from "../../src/ingest/camera.ts";

interface Item {
  id: number;
  hash: Uint8Array;
  ts: number;
  robot: string;
}

/** Clustered random hashes: `n` items around `n / 20` centres, 0..30 bits flipped, 4 robots. */
function clustered(n: number, bytes: number, seed: number): Item[] {
  const next = mulberry32(seed);
  const centres = Array.from(
    { length: Math.max(1, n / 20) },
    () => new Uint8Array(bytes).map(() => next() & 255),
  );
  return Array.from({ length: n }, (_, i) => {
    const hash = centres[next() % centres.length].slice();
    for (let f = next() % 31; f > 0; f--) {
      const bit = next() % (bytes * 8);
      hash[bit >> 3] ^= 0x80 >> (bit & 7);
    }
    return { id: 1 + i * 3, hash, ts: T0 + (next() % 10_000) * 1000, robot: `r${next() % 4}` };
  });
}

function bruteForce(items: Item[], q: Uint8Array, o: NearestOptions, exclude?: number) {
  const k = o.k ?? 20;
  return items
    .filter((it) => it.id !== exclude)
    .filter((it) => !o.robots || o.robots.includes(it.robot))
    .filter((it) =>
      (o.fromMs === undefined || it.ts >= o.fromMs) && (o.toMs === undefined || it.ts <= o.toMs)
    )
    .map((it) => ({ id: it.id, distance: hashDistance(it.hash, q) }))
    .filter((r) => o.maxDistance === undefined || r.distance <= o.maxDistance)
    .sort((a, b) => a.distance - b.distance || a.id - b.id)
    .slice(0, k);
}

Deno.test("index results equal a brute-force scan (256-bit and other hash sizes, all filters)", () => {
  for (const bytes of [32, 8, 13]) {
    const items = clustered(3000, bytes, bytes);
    const index = new HashIndex(bytes, 16); // small capacity: grows while filling
    for (const it of items) index.upsert(it.id, it.hash, it.ts, it.robot);
    assert.equal(index.size, items.length);
    const next = mulberry32(99 + bytes);
    const optionSets: NearestOptions[] = [
      {},
      { k: 1 },
      { k: 50 },
      { k: 20, maxDistance: 12 },
      { k: 5000 }, // more than there are
      { robots: ["r1"] },
      { robots: ["r0", "r3"], k: 7 },
      { robots: ["nobody"] },
      { fromMs: T0 + 2_000_000, toMs: T0 + 5_000_000 },
      { robots: ["r2"], fromMs: T0, toMs: T0 + 3_000_000, maxDistance: 40, k: 3 },
      { maxDistance: 0 },
    ];
    for (let qn = 0; qn < 25; qn++) {
      // Half the queries are stored hashes (exact matches and clusters), half random.
      const q = qn % 2
        ? items[next() % items.length].hash.slice()
        : new Uint8Array(bytes).map(() => next() & 255);
      for (const o of optionSets) {
        const exclude = qn % 3 === 0 ? items[qn].id : undefined;
        assert.deepEqual(
          index.nearest(q, o, exclude),
          bruteForce(items, q, o, exclude),
          `${bytes} bytes ${JSON.stringify(o)}`,
        );
      }
    }
    assert.throws(() => index.nearest(new Uint8Array(bytes + 1)), /cannot be compared/);
    assert.throws(() => index.nearest(items[0].hash, { k: 0 }), /k 0 must be from 1/);
  }
});

Deno.test("index: replace, remove and add again; findable at once", () => {
  const items = clustered(500, 32, 5);
  const index = new HashIndex(32);
  for (const it of items) index.upsert(it.id, it.hash, it.ts, it.robot);
  const fresh = new Uint8Array(32).fill(0xa5);
  index.upsert(100_000, fresh, T0, "new-robot");
  assert.deepEqual(index.nearest(fresh, { k: 1 }), [{ id: 100_000, distance: 0 }]);
  assert.deepEqual(index.nearest(fresh, { k: 1, robots: ["new-robot"] }), [{ id: 100_000, distance: 0 }]);
  // Replace an item's hash: found by the new one only.
  index.upsert(items[7].id, fresh, items[7].ts, items[7].robot);
  assert.deepEqual(index.nearest(fresh, { k: 2 }).map((n) => n.id), [items[7].id, 100_000]);
  items[7].hash = fresh;
  // Remove a few (including the last slot), then compare with brute force.
  for (const victim of [items[0], items[250], items[499]]) assert.equal(index.remove(victim.id), true);
  assert.equal(index.remove(items[0].id), false);
  const left = items.filter((_, i) => ![0, 250, 499].includes(i)).concat([
    { id: 100_000, hash: fresh, ts: T0, robot: "new-robot" },
  ]);
  assert.equal(index.size, left.length);
  for (const q of [items[3].hash, items[499].hash, fresh]) {
    assert.deepEqual(index.nearest(q, { k: 30 }), bruteForce(left, q, { k: 30 }));
  }
  assert.deepEqual(index.hashOf(items[3].id), items[3].hash);
  assert.equal(index.hashOf(items[0].id), null);
  // Ids beyond the dense table work too.
  index.upsert(2 ** 40, fresh, T0, "x");
  assert.equal(index.nearest(fresh, { k: 3 }).some((n) => n.id === 2 ** 40), true);
  assert.equal(index.remove(2 ** 40), true);
});

Deno.test("SimilarFrames over the catalog: load, add, sync from another connection, deleted rows", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/catalog.sqlite`;
  const catalog = new SqliteCatalog(path);
  const items = clustered(400, 32, 11);
  const rows = items.map((it, i) => frameRow(it.robot, it.ts, i, { hash: it.hash, storedMs: T0 + i }));
  await catalog.upsertMany(rows);
  await catalog.upsert(frameRow("r0", T0, 9999)); // no hash: not indexed
  await catalog.upsert(frameRow("r0", T0, 9998, { hash: new Uint8Array(8) })); // another hash size: not indexed
  const similar = await SimilarFrames.load(catalog);
  assert.equal(similar.size, 400);
  assert.equal(similar.skipped, 1);

  // By key: the frame itself is left out; the rest equals the cold path over the catalog and brute force.
  const target = rows[17];
  const hits = await similar.nearestToKey(target.key, { k: 10 });
  assert.ok(!hits.some((h) => h.frame.key === target.key));
  const cold = await similarFromCatalog(catalog, target.hash!, { k: 10, excludeKey: target.key });
  assert.deepEqual(hits.map((h) => [h.frame.key, h.distance]), cold.map((h) => [h.frame.key, h.distance]));
  const keyOf = new Map(items.map((it, i) => [it.id, rows[i].key]));
  const ref = bruteForce(items, target.hash!, { k: 10 }, items[17].id);
  // Rows were inserted in item order, so rowid order is item order and ties break the same way.
  assert.deepEqual(hits.map((h) => [h.frame.key, h.distance]), ref.map((r) => [keyOf.get(r.id), r.distance]));

  // Filters pass through; results carry labels.
  (await catalog.labels()).addLabels({ keys: [hits[0].frame.key] }, ["twin"]);
  const r1Only = await similar.nearestToKey(target.key, { k: 5, robots: ["r1"] });
  assert.ok(r1Only.every((h) => h.frame.robotId === "r1"));
  assert.deepEqual((await similar.nearestToKey(target.key, { k: 1 }))[0].labels, ["twin"]);
  assert.deepEqual(
    (await similarFromCatalog(catalog, target.hash!, { k: 3, labels: ["twin"] })).map((h) => h.frame.key),
    [hits[0].frame.key],
    "the cold path combines likeness with label filters",
  );
  await assert.rejects(
    async () => await similar.nearestToKey("frames/none.jpg"),
    /no frame "frames\/none.jpg"/,
  );

  // add(): the consumer's own row, findable at once.
  const mine = frameRow("r9", T0 + 1, 1, { hash: new Uint8Array(32).fill(0x3c), storedMs: T0 + 10_000 });
  await catalog.upsert(mine);
  assert.equal(await similar.add(mine), true);
  assert.deepEqual((await similar.nearest(mine.hash!, { k: 1 })).map((h) => [h.frame.key, h.distance]), [[
    mine.key,
    0,
  ]]);
  assert.equal(await similar.add(frameRow("r9", T0 + 2, 2)), false, "no hash, not indexed");

  // sync(): a row written by another process (another connection to the file), with an older stored time
  // inside the overlap window, is picked up without a reload.
  const other = new SqliteCatalog(path);
  const theirs = frameRow("r8", T0 + 5, 1, { hash: new Uint8Array(32).fill(0xc3), storedMs: T0 + 9_000 });
  other.upsert(theirs);
  assert.deepEqual(await similar.nearest(theirs.hash!, { k: 1, maxDistance: 0 }), []);
  assert.ok(await similar.sync() >= 1);
  assert.deepEqual((await similar.nearest(theirs.hash!, { k: 1 })).map((h) => h.frame.key), [theirs.key]);
  // A row deleted elsewhere disappears from results (and from the index).
  other.remove(theirs.key);
  const after = await similar.nearest(theirs.hash!, { k: 2 });
  assert.ok(!after.some((h) => h.frame.key === theirs.key));
  assert.equal(after.length, 2);
  assert.equal(similar.size, 401);
  // startSync polls twice a second: a frame stored elsewhere is findable within a second.
  const stop = similar.startSync(100);
  const later = frameRow("r8", T0 + 6, 2, { hash: new Uint8Array(32).fill(0x0f), storedMs: T0 + 20_000 });
  other.upsert(later);
  const t0 = performance.now();
  while ((await similar.nearest(later.hash!, { k: 1, maxDistance: 0 })).length === 0) {
    assert.ok(performance.now() - t0 < 1000, "not findable within a second");
    await sleep(20);
  }
  stop();
  other.close();
  await catalog.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an uploaded JPEG is hashed by the consumer's own filter path: same bits as stored", async () => {
  const samples = readSamples();
  const scenes = [
    samples[0],
    greyJpeg(320, 240, (x) => (x < 160 ? 30 : 220)),
    greyJpeg(320, 240, (_, y) => y),
  ];
  // r2 has its own filter settings (an 8x8 hash), as [filter.robots."r2"] allows.
  const config = resolveConfig(`[filter.robots."r2"]\nphash_hash_size = 8\nphash_threshold = 5\n`);
  const catalog = new SqliteCatalog(":memory:");
  const pipeline = new Pipeline({
    config,
    log: memoryLogger(),
    storage: new MemoryStore(),
    filter: await createSceneFilter(config, (s) => loadFilter(s, config.baseDir)),
    catalog,
    sleep: () => Promise.resolve(),
    now: () => T0 + 60_000,
  });
  const messages = scenes.flatMap((jpeg, i) =>
    ["r1", "r2"].map((robot, j) => ({
      offset: String(2 * i + j),
      key: `${robot}:${T0 + i * 1000}`,
      value: encodeFrame(T0 + i * 1000, i, jpeg),
      timestampMs: T0 + i * 1000,
    }))
  );
  await pipeline.handleBatch(fakeBatch(messages));
  const stored = await catalog.all();
  assert.equal(stored.length, 6, "three different scenes per robot");
  const hasher = await JpegHasher.fromConfig(config);
  try {
    for (const row of stored) {
      const jpeg = scenes[row.seq];
      assert.deepEqual(await hasher.hash(jpeg, row.robotId), row.hash, `${row.key}: the consumer's bits`);
    }
    assert.equal((await hasher.hash(scenes[0], "r2")).length, 8);
    const similar = await SimilarFrames.load(catalog); // 256-bit hashes: r1's frames
    assert.equal(similar.size, 3);
    const upload = await hasher.hash(scenes[1]);
    const hits = await similar.nearest(upload, { k: 3 });
    assert.equal(hits[0].frame.key, stored.find((r) => r.robotId === "r1" && r.seq === 1)!.key);
    assert.equal(hits[0].distance, 0);
    const small = await SimilarFrames.load(catalog, { hashBytes: 8 });
    const smallHits = await small.nearest(await hasher.hash(scenes[2], "r2"), { k: 1 });
    assert.deepEqual(smallHits.map((h) => [h.frame.robotId, h.frame.seq, h.distance]), [["r2", 2, 0]]);
    await assert.rejects(() => hasher.hash(new Uint8Array([1, 2, 3])));
  } finally {
    await hasher.close();
    await catalog.close();
  }
  const histogram = await JpegHasher.fromConfig(resolveConfig(`[filter]\nprimary = "histogram"\n`));
  await assert.rejects(() => histogram.hash(scenes[0]), /keeps no hash bits/);
  await histogram.close();
});

Deno.test("bench search runs small and checks itself against brute force", async () => {
  const lines: string[] = [];
  const log = console.log, error = console.error;
  console.log = (line: string) => lines.push(line);
  console.error = () => {};
  try {
    await benchSearch(["--frames", "5000", "--queries", "5", "--k", "7", "--seed", "3"]);
  } finally {
    console.log = log;
    console.error = error;
  }
  const rows = lines.map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => [r.frames, r.k, r.case, r.checked]), [
    [5000, 7, "near", 3],
    [5000, 7, "random", 3],
    [5000, 7, "robot_day", 3],
  ]);
  for (const r of rows) assert.ok(r.p50_ms >= 0 && r.p99_ms >= r.p50_ms && r.build_ms >= 0);
});
