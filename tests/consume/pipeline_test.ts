import assert from "node:assert/strict";
import type { Catalog } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { resolveConfig } from "../../src/config.ts";
import { Pipeline } from "../../src/consume/pipeline.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import type { IncomingMessage } from "../../src/kafka/client.ts";
import { objectKey } from "../../src/key.ts";
import { memoryLogger } from "../../src/log.ts";
import { loadFilter } from "../../src/filter/loader.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import { fakeBatch, MemoryStore } from "../support/fakes.ts";
import { greyJpeg, readSamples } from "../support/images.ts";
import { sleep } from "../../src/ingest/camera.ts";

const T0 = Date.UTC(2026, 1, 18, 9, 39, 32, 518);
const samples = readSamples();
const dark = greyJpeg(320, 240, (x, y) => (x < 160 === y < 120 ? 20 : 230));

function message(offset: number, robot: string, ts: number, seq: number, jpeg: Uint8Array): IncomingMessage {
  return {
    offset: String(offset),
    key: `${robot}:${ts}`,
    value: encodeFrame(ts, seq, jpeg),
    timestampMs: ts,
  };
}

async function setup(
  toml = "",
  store = new MemoryStore(),
  sleep = () => Promise.resolve(),
  catalog?: Catalog,
) {
  const config = resolveConfig(toml);
  const log = memoryLogger();
  const filter = await createSceneFilter(config, (s) => loadFilter(s, "."));
  const pipeline = new Pipeline({
    config,
    log,
    storage: store,
    filter,
    catalog,
    sleep,
    now: () => T0 + 60_000,
  });
  return { config, log, store, filter, pipeline };
}

Deno.test("the ten still reachy frames: the first is stored, the rest dropped", async () => {
  const { pipeline, store } = await setup();
  const batch = fakeBatch(samples.map((s, i) => message(i, "reachy-001", T0 + i * 145, 310 + i, s)));
  await pipeline.handleBatch(batch);
  assert.deepEqual([...store.objects.keys()], [
    "frames/reachy-001/2026-02-18/20260218T093932518Z_000310.jpg",
  ]);
  const meta = store.objects.get([...store.objects.keys()][0])!.metadata;
  assert.equal(meta["robot-id"], "reachy-001");
  assert.equal(meta.seq, "310");
  assert.equal(meta.filter, "ahash");
  assert.equal(meta.distance, "first");
  assert.equal(meta.hash.length, 64);
  assert.deepEqual(batch.resolved, samples.map((_, i) => String(i)), "every offset resolved, in order");
  const c = pipeline.counters.robot("reachy-001");
  assert.deepEqual([c.received, c.accepted, c.dropped, c.stored, c.errors], [10, 1, 9, 1, 0]);
});

Deno.test("robots are never compared with each other", async () => {
  const { pipeline, store } = await setup();
  // The same still scene from two robots, interleaved: each robot's first frame is its own.
  const batch = fakeBatch(
    samples.slice(0, 6).map((s, i) => message(i, i % 2 ? "bb-1" : "reachy-001", T0 + i, i, s)),
  );
  await pipeline.handleBatch(batch);
  assert.equal(store.objects.size, 2);
  assert.equal(pipeline.counters.robot("bb-1").stored, 1);
  assert.equal(pipeline.counters.robot("reachy-001").stored, 1);
});

Deno.test("a scene change is stored", async () => {
  const { pipeline, store } = await setup();
  await pipeline.handleBatch(fakeBatch([
    message(0, "r", T0, 0, samples[0]),
    message(1, "r", T0 + 100, 1, samples[1]),
    message(2, "r", T0 + 200, 2, dark),
    message(3, "r", T0 + 300, 3, samples[2]),
  ]));
  assert.deepEqual(
    [...store.objects.keys()].map((k) => k.slice(-11)),
    ["Z_000000.jpg", "Z_000002.jpg", "Z_000003.jpg"].map((k) => k.slice(-11)),
  );
});

/** A real frame's headers with its size patched to 16000x16000, cut right after the scan header. */
function hugeHeader(): Uint8Array {
  const bytes = samples[0].slice();
  for (let i = 2; i < bytes.length - 9; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xc0) {
      new DataView(bytes.buffer).setUint16(i + 5, 16000);
      new DataView(bytes.buffer).setUint16(i + 7, 16000);
    }
    if (bytes[i] === 0xff && bytes[i + 1] === 0xda) {
      const length = (bytes[i + 2] << 8) | bytes[i + 3];
      return new Uint8Array([...bytes.subarray(0, i + 2 + length + 64), 0xff, 0xd9]);
    }
  }
  throw new Error("sample has no SOS");
}

Deno.test("bad messages are counted and skipped, never stored", async (t) => {
  const { pipeline, store, log } = await setup();
  const good = encodeFrame(T0, 1, samples[0]);
  const cases: [string, IncomingMessage, RegExp][] = [
    ["no key", { offset: "0", key: null, value: good, timestampMs: 0 }, /has no key/],
    ["key without ':'", { offset: "1", key: "reachy", value: good, timestampMs: 0 }, /has no ':'/],
    [
      "path traversal robot id",
      { offset: "2", key: `../../x:${T0}`, value: good, timestampMs: 0 },
      /may only hold/,
    ],
    [
      "robot id with a slash",
      { offset: "3", key: `a/b:${T0}`, value: good, timestampMs: 0 },
      /may only hold/,
    ],
    ["empty robot id", { offset: "4", key: `:${T0}`, value: good, timestampMs: 0 }, /robot id is empty/],
    [
      "very long robot id",
      { offset: "5", key: `${"r".repeat(200)}:${T0}`, value: good, timestampMs: 0 },
      /200 characters/,
    ],
    ["non-ASCII robot id", { offset: "6", key: `röbot:${T0}`, value: good, timestampMs: 0 }, /may only hold/],
    [
      "shorter than 16 bytes",
      { offset: "7", key: `r:${T0}`, value: new Uint8Array(9), timestampMs: 0 },
      /9 bytes, shorter/,
    ],
    ["no value", { offset: "8", key: `r:${T0}`, value: null, timestampMs: 0 }, /0 bytes, shorter/],
    ["not a JPEG", {
      offset: "9",
      key: `r:${T0}`,
      value: encodeFrame(T0, 1, new TextEncoder().encode("<html>")),
      timestampMs: 0,
    }, /not a JPEG \(no SOI marker/],
    ["JPEG with garbage after EOI", {
      offset: "13",
      key: `r:${T0}`,
      value: encodeFrame(
        T0,
        1,
        new Uint8Array([...samples[0], ...new TextEncoder().encode("trailing junk!")]),
      ),
      timestampMs: 0,
    }, /14 bytes of garbage after its EOI/],
    ["header-only JPEG (SOI, EOI, nothing else)", {
      offset: "14",
      key: `r:${T0}`,
      value: encodeFrame(T0, 1, new Uint8Array([0xff, 0xd8, 0xff, 0xd9])),
      timestampMs: 0,
    }, /\[filter:ahash\].*(no|missing|before)/],
    ["enormous dimensions with a tiny body", {
      offset: "15",
      key: `r:${T0}`,
      value: encodeFrame(T0, 1, hugeHeader()),
      timestampMs: 0,
    }, /\[filter:ahash\].*(exceeds|needs)/],
    [
      "negative time",
      { offset: "10", key: `r:-5`, value: encodeFrame(-5, 1, samples[0]), timestampMs: 0 },
      /negative/,
    ],
    ["far future", {
      offset: "11",
      key: `r:1`,
      value: encodeFrame(T0 + 400 * 86400000, 1, samples[0]),
      timestampMs: 0,
    }, /future/],
    ["truncated JPEG", {
      offset: "12",
      key: `r:${T0}`,
      value: encodeFrame(T0, 1, new Uint8Array([...samples[0].subarray(0, 3000), 0xff, 0xd9])),
      timestampMs: 0,
    }, /\[filter:ahash\].*truncated JPEG/],
  ];
  for (const [name, msg, pattern] of cases) {
    await t.step(name, async () => {
      const before = log.lines.length;
      const batch = fakeBatch([msg]);
      await pipeline.handleBatch(batch);
      assert.deepEqual(batch.resolved, [msg.offset], "a refused message is final: its offset moves on");
      assert.equal(log.lines.length, before + 1, "logged once");
      assert.match(log.lines.at(-1)!, pattern);
      assert.match(
        log.lines.at(-1)!,
        new RegExp(`camera\\.frames/0@${msg.offset}`),
        "names topic/partition/offset",
      );
    });
  }
  assert.equal(store.objects.size, 0);
  assert.equal(pipeline.counters.skipped.get("no key"), 1);
  assert.equal(pipeline.counters.skipped.get("bad key"), 6);
  assert.equal(pipeline.counters.robot("r").errors, 9);
});

Deno.test("a failing store is retried and the offset waits for it", async () => {
  const store = new MemoryStore();
  store.failPuts = 3;
  const { pipeline, log } = await setup("", store);
  const batch = fakeBatch([message(0, "r", T0, 0, samples[0]), message(1, "r", T0 + 1, 1, dark)]);
  await pipeline.handleBatch(batch);
  assert.equal(store.objects.size, 2);
  assert.equal(store.puts, 5);
  assert.deepEqual(batch.resolved, ["0", "1"]);
  assert.ok(log.lines.some((l) => /attempt 3, retrying/.test(l)));
});

Deno.test("a store abandoned at shutdown leaves its offset unresolved", async () => {
  const store = new MemoryStore();
  store.failPuts = 1000;
  const { pipeline } = await setup("", store, () => sleep(2));
  const batch = fakeBatch([message(0, "r", T0, 0, samples[0]), message(1, "r", T0 + 1, 1, dark)]);
  const running = pipeline.handleBatch(batch);
  setTimeout(() => batch.deactivate(), 20);
  await running;
  assert.deepEqual(batch.resolved, []);
  assert.equal(store.objects.size, 0);
});

Deno.test("after a restart the filter resumes from the newest stored frame", async (t) => {
  const store = new MemoryStore();
  // An earlier run stored frame 0 of the still scene, then died.
  const first = await setup("", store);
  await first.pipeline.handleBatch(fakeBatch([message(0, "r", T0, 0, samples[0])]));
  assert.equal(store.objects.size, 1);

  await t.step("replayed frames up to it are skipped, the still scene is not stored again", async () => {
    const second = await setup("", store);
    const batch = fakeBatch(samples.slice(0, 5).map((s, i) => message(i, "r", T0 + i, i, s)));
    await second.pipeline.handleBatch(batch);
    assert.equal(store.objects.size, 1);
    assert.equal(second.pipeline.counters.robot("r").replayed, 1);
    assert.equal(batch.resolved.length, 5);
  });
  await t.step("a new scene after it is stored", async () => {
    const third = await setup("", store);
    await third.pipeline.handleBatch(fakeBatch([message(7, "r", T0 + 700, 7, dark)]));
    assert.ok(store.objects.has(objectKey("frames/", "r", T0 + 700, 7)));
  });
});

Deno.test("per-robot filter overrides apply to that robot only", async () => {
  const { pipeline, store } = await setup(`[filter.robots."strict"]\nphash_threshold = 0`);
  // With threshold 0 any changed bit counts; the still frames differ by a few bits.
  const batch = fakeBatch(samples.map((s, i) => message(i, "strict", T0 + i, i, s)));
  await pipeline.handleBatch(batch);
  assert.ok(store.objects.size > 1, `stored ${store.objects.size}`);
});

Deno.test("a partition that moved away and back resumes from storage, not from stale memory", async () => {
  const store = new MemoryStore();
  const { pipeline } = await setup("", store);
  pipeline.onAssignment([0, 1]);
  await pipeline.handleBatch(fakeBatch([message(0, "r", T0, 0, samples[0])], 0));
  // Partition 0 goes to another member, which stores a new scene, then comes back.
  pipeline.onAssignment([1]);
  await store.put(objectKey("frames/", "r", T0 + 500, 5), dark);
  pipeline.onAssignment([0, 1]);
  const batch = fakeBatch([message(6, "r", T0 + 600, 6, samples[1])], 0);
  await pipeline.handleBatch(batch);
  // Against the stale reference (sample 0) this still frame would be dropped; against the stored dark frame it
  // is a new scene.
  assert.ok(store.objects.has(objectKey("frames/", "r", T0 + 600, 6)));
});

Deno.test("stored frames get a catalog row, and a restart resumes from the catalog", async () => {
  const store = new MemoryStore();
  const catalog = new SqliteCatalog(":memory:");
  const make = async () => (await setup("", store, undefined, catalog)).pipeline;
  await (await make()).handleBatch(
    fakeBatch([message(0, "r", T0, 0, samples[0]), message(1, "r", T0 + 9, 1, dark)]),
  );
  const rows = await catalog.all();
  assert.equal(rows.length, 2);
  assert.equal(rows[0].tier, "local");
  assert.equal(rows[0].distance, null);
  assert.equal(rows[0].hash?.length, 32);
  assert.equal(rows[1].size, dark.length);
  assert.equal(rows[1].etag, `etag-${dark.length}`);
  // A restarted consumer restores the filter from the row's hash bits: no object fetch, no duplicate scene.
  store.objects.clear();
  const again = await make();
  await again.handleBatch(fakeBatch([message(2, "r", T0 + 20, 2, dark)]));
  assert.equal(store.objects.size, 0, "the still dark scene is not stored again");
  await catalog.close();
});

Deno.test("a frame stored without its row (a consumer killed between the two) gets its row when a consumer resumes from it", async () => {
  const store = new MemoryStore();
  // The first consumer stored the robot's first frame and died before writing the row.
  await (await setup("", store)).pipeline.handleBatch(fakeBatch([message(4, "r", T0, 0, samples[0])], 3));
  const catalog = new SqliteCatalog(":memory:");
  const { pipeline } = await setup("", store, undefined, catalog);
  const batch = fakeBatch(samples.slice(0, 3).map((s, i) => message(4 + i, "r", T0 + i, i, s)), 3);
  await pipeline.handleBatch(batch);
  // The replayed message is skipped (it is stored), and the object is in the catalog, with its Kafka position.
  assert.equal(pipeline.counters.robot("r").replayed, 1);
  assert.equal(store.objects.size, 1);
  const rows = await catalog.all();
  assert.deepEqual(rows.map((r) => [r.key, r.partition, r.offset, r.tier]), [
    [objectKey("frames/", "r", T0, 0), 3, 4, "local"],
  ]);
  await catalog.close();
});

Deno.test("a key that holds other bytes is never overwritten: the frame goes to its _p{partition}-o{offset} key", async () => {
  const { pipeline, store } = await setup();
  await pipeline.handleBatch(fakeBatch([message(0, "r", T0, 0, samples[0])], 2));
  // The producer restarted with its sequence at 0 and the robot's clock reset: same key, another scene.
  await pipeline.handleBatch(fakeBatch([message(1, "r", T0, 0, dark)], 2));
  const plain = objectKey("frames/", "r", T0, 0);
  const suffixed = objectKey("frames/", "r", T0, 0, { partition: 2, offset: 1 });
  assert.ok(suffixed.endsWith("Z_000000_p2-o1.jpg"), suffixed);
  assert.deepEqual([...store.objects.keys()].sort(), [plain, suffixed].sort());
  assert.deepEqual(store.objects.get(plain)!.body, samples[0], "the first frame is still at its key");
  assert.deepEqual(store.objects.get(suffixed)!.body, dark);
  assert.equal(pipeline.counters.robot("r").collisions, 1);
  // A replay of the second message (a restarted consumer) finds its own bytes and stores nothing new.
  const again = await setup("", store);
  await again.pipeline.handleBatch(fakeBatch([message(1, "r", T0, 0, dark)], 2));
  assert.equal(store.objects.size, 2);
});

Deno.test("replays are recognised by Kafka offset: an older capture time at a new offset is judged, not skipped", async () => {
  const catalog = new SqliteCatalog(":memory:");
  const store = new MemoryStore();
  const make = async () => (await setup("", store, undefined, catalog)).pipeline;
  const first = await make();
  await first.handleBatch(
    fakeBatch([message(0, "r", T0 + 5000, 0, samples[0]), message(1, "r", T0 + 6000, 1, dark)]),
  );
  assert.equal((await catalog.lastStoredFrom("r", 0))?.offset, 1);
  // A new process: offset 1 is a replay (decided before), offset 2 is new although its clock went back 6 s.
  const second = await make();
  await second.handleBatch(
    fakeBatch([message(1, "r", T0 + 6000, 1, dark), message(2, "r", T0, 7, samples[0])]),
  );
  const c = second.counters.robot("r");
  assert.equal(c.replayed, 1);
  assert.equal(c.stored, 1, "the frame with the older capture time was judged and stored");
  assert.equal(c.clockJumps, 1);
  await catalog.close();
});

Deno.test("catalog rows of stores that finish together are written as one group; a failed group is retried", async () => {
  const inner = new SqliteCatalog(":memory:");
  const groups: number[] = [];
  let failures = 1;
  // Every Catalog method passes through; the writes are counted, and the first one fails.
  const catalog = new Proxy(inner, {
    get(target, name, receiver) {
      const write = (rows: unknown[]) => {
        groups.push(rows.length);
        if (failures-- > 0) throw new Error("disk I/O error");
      };
      if (name === "upsert") return (row: never) => (write([row]), target.upsert(row));
      if (name === "upsertMany") return (rows: never[]) => (write(rows), target.upsertMany(rows));
      const value = Reflect.get(target, name, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Catalog;
  const { pipeline, log } = await setup("", new MemoryStore(), undefined, catalog);
  // Six robots, one new scene each: six stores that complete in the same turn of the event loop.
  const batch = fakeBatch(["a", "b", "c", "d", "e", "f"].map((r, i) => message(i, r, T0 + i, i, samples[0])));
  await pipeline.handleBatch(batch);
  assert.equal((await inner.all()).length, 6, "every row written");
  assert.equal(groups[0], 6, "the first try was one group of six");
  assert.ok(groups.length < 1 + 6 + 6, `few writes: ${groups.join(", ")}`);
  assert.deepEqual(batch.resolved, ["0", "1", "2", "3", "4", "5"]);
  assert.ok(log.lines.some((l) => /disk I\/O error/.test(l)), "the failure was reported");
  assert.equal(pipeline.catalogTrouble, null, "and is over");
  await inner.close();
});
