/**
 * The catalog contract as tests: every backend runs this suite with a factory of fresh, empty catalogs
 * (`catalogSuite("sqlite", () => new SqliteCatalog(":memory:"))`). Nothing here knows a backend.
 */
import assert from "node:assert/strict";
import {
  type Catalog,
  COPY_TABLES,
  type CopyTable,
  type FrameRow,
  LeaseLostError,
} from "../../src/catalog/catalog.ts";
import { BadInputError, NotFoundError } from "../../src/errors.ts";
import { frameRow, T0 } from "../support/rows.ts";

/** Frames of robot r1 one second apart (seq = index) and of r2, with hashes of two lengths. */
function rows(): FrameRow[] {
  const r1 = Array.from({ length: 10 }, (_, i) => ({
    ...frameRow("r1", T0 + i * 1000, i),
    partition: 0,
    offset: 100 + i,
    hash: new Uint8Array(32).fill(i),
  }));
  const r2 = Array.from({ length: 4 }, (_, i) => ({
    ...frameRow("r2", T0 + i * 1000, i),
    partition: 1,
    offset: 7 + i,
    hash: new Uint8Array(8).fill(i),
  }));
  return [...r1, ...r2];
}

export function catalogSuite(backend: string, open: () => Catalog | Promise<Catalog>): void {
  const test = (name: string, fn: (catalog: Catalog, all: FrameRow[]) => Promise<void>) =>
    Deno.test(`catalog contract (${backend}): ${name}`, async () => {
      const catalog = await open();
      const all = rows();
      await catalog.upsertMany(all);
      try {
        await fn(catalog, all);
      } finally {
        await catalog.close();
      }
    });

  test("rows come back as written; an upsert of the same key replaces the row", async (catalog, all) => {
    assert.equal(await catalog.frameCount(), all.length);
    assert.deepEqual(await catalog.get(all[3].key), all[3]);
    assert.equal(await catalog.get("frames/none/x.jpg"), null);
    await catalog.upsert({ ...all[3], size: 999 });
    assert.equal((await catalog.get(all[3].key))?.size, 999);
    assert.equal(await catalog.frameCount(), all.length);
    assert.deepEqual((await catalog.all()).map((r) => r.key), all.map((r) => r.key).sort());
  });

  test(
    "newest is by capture time; lastStoredFrom is by Kafka offset on the partition",
    async (catalog, all) => {
      assert.equal((await catalog.newest("r1"))?.key, all[9].key);
      // A frame from a later offset with an older capture time (a clock that went back).
      const late = { ...frameRow("r1", T0 - 60_000, 0), partition: 0, offset: 500 };
      await catalog.upsert(late);
      assert.equal((await catalog.newest("r1"))?.key, all[9].key);
      assert.equal((await catalog.lastStoredFrom("r1", 0))?.key, late.key);
      assert.equal(await catalog.lastStoredFrom("r1", 1), null);
      assert.equal((await catalog.lastStoredFrom("r2", 1))?.offset, 10);
    },
  );

  test("keys between two keys come in key order", async (catalog, all) => {
    const sorted = all.map((r) => r.key).sort();
    assert.deepEqual(await catalog.keysBetween(sorted[2], sorted[5]), sorted.slice(2, 6));
  });

  test("tiers: oldest local first, pinned frames last, totals per tier", async (catalog, all) => {
    const r1 = all.slice(0, 10);
    await catalog.labels().addLabels({ keys: [r1[0].key] }, ["keep"]);
    assert.equal(await catalog.isPinned(r1[0].key), true);
    assert.equal(await catalog.isPinned(r1[1].key), false);
    const unpinned = await catalog.oldestLocalUnpinned(3);
    assert.ok(!unpinned.some((r) => r.key === r1[0].key));
    const pinnedLast = await catalog.oldestLocalPinnedLast(all.length);
    assert.equal(pinnedLast.at(-1)?.key, r1[0].key);
    await catalog.setTier(r1[1].key, "archive", T0);
    await catalog.setTier(r1[2].key, "archiving", T0);
    assert.deepEqual((await catalog.inTier("archive", 10)).map((r) => r.key), [r1[1].key]);
    const t = await catalog.totals();
    assert.equal(t.archive.frames, 1);
    assert.equal(t.archiving.frames, 1);
    assert.equal(t.local.frames, all.length - 2);
    assert.equal(t.local.bytes, all.filter((_, i) => i !== 1 && i !== 2).reduce((n, r) => n + r.size, 0));
    await catalog.remove(r1[1].key);
    assert.equal(await catalog.get(r1[1].key), null);
  });

  test("search pages in capture order, counts, and labels own and from clips", async (catalog, all) => {
    const labels = catalog.labels();
    await labels.addLabels({ keys: [all[2].key, all[3].key] }, ["door"]);
    await labels.createClip({
      robotId: "r1",
      fromMs: T0 + 5000,
      toMs: T0 + 6000,
      name: "hall",
      labels: ["person"],
    });
    assert.equal(await catalog.countFrames({ labels: ["door", "person"] }), 4);
    assert.equal(await catalog.countFrames({ labels: ["door", "person"], allLabels: true }), 0);
    assert.equal(await catalog.countFrames({ robots: ["r2"] }), 4);
    const first = await catalog.findFrames({ robots: ["r1"] }, { order: "oldest", limit: 3 });
    assert.deepEqual(first.map((r) => r.seq), [0, 1, 2]);
    const next = await catalog.findFrames({ robots: ["r1"] }, { order: "oldest", limit: 3, after: first[2] });
    assert.deepEqual(next.map((r) => r.seq), [3, 4, 5]);
    const newest = await catalog.findFrames({}, { order: "newest", limit: 1 });
    assert.equal(newest[0].timestampMs, T0 + 9000);
    const hits = await catalog.withLabels([all[2], all[5]]);
    assert.deepEqual(hits.map((h) => h.labels), [["door"], ["person"]]);
    assert.deepEqual(hits[1].clips.map((c) => c.name), ["hall"]);
    await assert.rejects(() => catalog.countFrames({ labels: ["nope"] }), BadInputError);
  });

  test("the label store: change, rename with merge, delete, clips, and the journal", async (catalog, all) => {
    const labels = catalog.labels({ now: () => T0 });
    const keys = { keys: [all[0].key, all[1].key] };
    assert.deepEqual(await labels.changeLabels(keys, { add: ["a", "b"] }, { author: "ana" }), {
      added: 4,
      removed: 0,
    });
    assert.deepEqual(await labels.changeLabels(keys, { add: ["c"], remove: ["a"] }), {
      added: 2,
      removed: 2,
    });
    assert.equal(await labels.exists("a"), true);
    assert.deepEqual(await labels.labelsOf(all[0].key), ["b", "c"]);
    await labels.renameLabel("c", "b", { merge: true });
    assert.deepEqual(await labels.labelsOf(all[0].key), ["b"]);
    assert.deepEqual(await labels.deleteLabel("b"), { frames: 2, clips: 0 });
    const clip = await labels.createClip({ robotId: "r2", fromMs: T0, toMs: T0 + 1000, name: "dock" });
    assert.equal((await labels.updateClip(clip.id, { addLabels: ["x"] })).labels[0], "x");
    assert.deepEqual((await labels.listClips({ robotId: "r2" })).map((c) => c.id), [clip.id]);
    await labels.deleteClip(clip.id);
    assert.equal(await labels.getClip(clip.id), null);
    await assert.rejects(() => labels.deleteClip(clip.id), NotFoundError);
    await assert.rejects(() => labels.addLabels({ keys: ["frames/none/x.jpg"] }, ["a"]), NotFoundError);
    const journal = await labels.changes();
    assert.deepEqual(journal.map((c) => c.action), [
      "label.add",
      "label.add",
      "label.remove",
      "label.rename",
      "label.delete",
      "clip.create",
      "clip.update",
      "clip.delete",
    ]);
    assert.equal(journal[0].author, "ana");
  });

  test("the similar-frame feed: hash rows by store time, ids and rows by id", async (catalog, all) => {
    const feed = await Array.fromAsync(catalog.hashRows());
    assert.equal(feed.length, all.length);
    assert.deepEqual(new Set(feed.map((r) => r.hash.length)), new Set([32, 8]));
    const r2only = await Array.fromAsync(catalog.hashRows({ filter: { robots: ["r2"] } }));
    assert.equal(r2only.length, 4);
    const id = await catalog.idOf(all[4].key);
    assert.ok(id !== null);
    assert.equal((await catalog.rowsById([id])).get(id)?.key, all[4].key);
    assert.equal(await catalog.idOf("frames/none/x.jpg"), null);
    const later = await Array.fromAsync(catalog.hashRows({ sinceStoredMs: Number.MAX_SAFE_INTEGER }));
    assert.equal(later.length, 0);
  });

  test("robot summaries, timelines and neighbouring frames", async (catalog, all) => {
    const summaries = await catalog.robotSummaries();
    assert.deepEqual(summaries.map((s) => [s.robotId, s.frames, s.firstMs, s.lastMs]), [
      ["r1", 10, T0, T0 + 9000],
      ["r2", 4, T0, T0 + 3000],
    ]);
    assert.equal(await catalog.robotSummary("r9"), null);
    const buckets = await catalog.timeline("r1", T0, T0 + 9000, 5000);
    assert.equal(buckets.reduce((n, b) => n + b.frames, 0), 10);
    assert.deepEqual(await catalog.adjacentKeys("r1", all[4]), { previous: all[3].key, next: all[5].key });
    assert.deepEqual(await catalog.adjacentKeys("r1", all[0]), { previous: null, next: all[1].key });
  });

  test("identity: recorded once, differences named", async (catalog) => {
    assert.equal(await catalog.identity(), null);
    const mine = { topic: "t", endpoint: "http://s3", bucket: "b", prefix: "frames/" };
    assert.deepEqual(await catalog.bind(mine), []);
    assert.deepEqual(await catalog.identity(), mine);
    assert.deepEqual(await catalog.bind({ ...mine, bucket: "other" }), ["bucket"]);
    await catalog.ping();
  });

  test(
    "a lease has one holder; a new holder gets a larger token that fences the old one",
    async (catalog, all) => {
      const a = await catalog.claimLease("evictor", "host-a", 60_000);
      assert.ok(a);
      assert.equal(await catalog.claimLease("evictor", "host-b", 60_000), null);
      const renewed = await catalog.claimLease("evictor", "host-a", 60_000);
      assert.equal(renewed?.token, a.token);
      const fenceA = { lease: "evictor", token: a.token };
      await catalog.setTier(all[0].key, "archiving", 1, fenceA);
      assert.equal((await catalog.get(all[0].key))?.tier, "archiving");
      // Released: another holder takes it at once, with a larger token; the old token changes nothing.
      await catalog.releaseLease("evictor", "host-a");
      const b = await catalog.claimLease("evictor", "host-b", 60_000);
      assert.ok(b && b.token > a.token);
      assert.equal((await catalog.lease("evictor"))?.holder, "host-b");
      await assert.rejects(catalog.setTier(all[0].key, "archive", 2, fenceA), LeaseLostError);
      assert.equal((await catalog.get(all[0].key))?.tier, "archiving");
      await catalog.setTier(all[0].key, "archive", 3, { lease: "evictor", token: b.token });
      assert.equal((await catalog.get(all[0].key))?.tier, "archive");
      // A fenced change of a frame that is not there is no change, as without a fence.
      await catalog.setTier("frames/none/x.jpg", "archive", 4, { lease: "evictor", token: b.token });
    },
  );

  test("a lease that runs out can be taken by another holder", async (catalog) => {
    const a = await catalog.claimLease("evictor", "host-a", 1000);
    assert.ok(a);
    assert.equal(await catalog.claimLease("evictor", "host-b", 1000), null);
    await new Promise((r) => setTimeout(r, 1300));
    const b = await catalog.claimLease("evictor", "host-b", 1000);
    assert.ok(b && b.token === a.token + 1);
    assert.equal(await catalog.lease("other"), null);
  });

  test("a live lease is taken at once from a holder named as dead, and only from that one", async (catalog) => {
    const a = await catalog.claimLease("evictor", "host:1:a", 60_000);
    assert.ok(a);
    assert.equal(await catalog.claimLease("evictor", "host:2:b", 60_000, "host:9:other"), null);
    const b = await catalog.claimLease("evictor", "host:2:b", 60_000, "host:1:a");
    assert.ok(b && b.token === a.token + 1 && b.holder === "host:2:b");
  });

  test("concurrent claims of a free lease give it to exactly one holder", async (catalog) => {
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) => catalog.claimLease("evictor", `host-${i}`, 60_000)),
    );
    assert.equal(claims.filter((c) => c !== null).length, 1);
  });

  test("a copy carries boxes, review statuses and the label set with their ids", async (catalog, all) => {
    const labels = catalog.labels();
    await labels.defineLabel("person", { color: "#123456", hotkey: 3 });
    const boxes = await labels.addBoxes([
      { key: all[0].key, label: "person", x: 1, y: 2, w: 3, h: 4, imageWidth: 64, imageHeight: 48 },
      {
        key: all[1].key,
        label: "car",
        x: 0.25,
        y: 0.5,
        w: 0.125,
        h: 0.5,
        unit: "norm",
        imageWidth: 64,
        imageHeight: 48,
        confidence: 0.625,
        source: "model:m",
      },
    ]);
    await labels.setReview([all[0].key], "reviewed", { author: "ana" });
    // The newest box deleted: its id lives on only in the journal, and undo acts on journalled ids.
    const [gone] = await labels.addBoxes([{ ...boxes[0], x: 9 }]);
    await labels.deleteBoxes([gone.id]);
    const copy = await open();
    try {
      await copy.upsertMany(all);
      for (const table of Object.keys(COPY_TABLES) as CopyTable[]) {
        await copy.pasteRows(table, await catalog.copyRows(table, 0, 1000));
        assert.equal(await copy.countRows(table), await catalog.countRows(table), table);
      }
      assert.equal(await copy.countRows("boxes"), 2);
      const copied = copy.labels();
      assert.deepEqual(await copied.getBox(boxes[1].id), boxes[1]);
      assert.deepEqual(await copied.list(), await labels.list());
      assert.deepEqual(
        await copied.reviews([all[0].key, all[1].key]),
        await labels.reviews([all[0].key, all[1].key]),
      );
      // New rows in the copy get ids after the copied ones and after every id the copied journal names.
      const [more] = await copied.addBoxes([{ ...boxes[0], x: 5 }]);
      assert.ok(more.id > gone.id, `new box ${more.id} must come after the deleted box ${gone.id}`);
    } finally {
      await copy.close();
    }
  });

  test("status: put replaces the state and time of a name; unknown names are null; bad input refused", async (catalog) => {
    assert.equal(await catalog.status("evictor"), null);
    await catalog.putStatus(
      "evictor",
      { state: "moving", archived: 12, since: null, tiers: { local: 1 } },
      T0,
    );
    assert.deepEqual(await catalog.status("evictor"), {
      state: { state: "moving", archived: 12, since: null, tiers: { local: 1 } },
      updatedMs: T0,
    });
    await catalog.putStatus("evictor", { state: "idle" }, T0 + 1000);
    assert.deepEqual(await catalog.status("evictor"), { state: { state: "idle" }, updatedMs: T0 + 1000 });
    await catalog.putStatus("other", {}, T0 + 5);
    assert.deepEqual(await catalog.status("other"), { state: {}, updatedMs: T0 + 5 });
    assert.deepEqual((await catalog.status("evictor"))?.state, { state: "idle" }, "names are apart");
    await assert.rejects(catalog.putStatus("", {}, T0), BadInputError);
    await assert.rejects(
      catalog.putStatus("x", [] as unknown as Record<string, unknown>, T0),
      /must be an object/,
    );
    await assert.rejects(catalog.putStatus("x", {}, 1.5), /whole number/);
  });

  test(
    "a copy carries collections and status with their ids; new collections come after journalled ids",
    async (catalog, all) => {
      const labels = catalog.labels();
      const clips = [];
      for (let i = 0; i < 3; i++) {
        clips.push(
          await labels.createClip({
            robotId: "r1",
            fromMs: T0 + i * 1000,
            toMs: T0 + i * 1000,
            name: `c${i}`,
          }),
        );
      }
      const kept = await labels.createCollection({ name: "kept", clipIds: [clips[2].id, clips[0].id] });
      // The newest collection deleted: its id lives on only in the journal.
      const gone = await labels.createCollection({ name: "gone", clipIds: [clips[1].id] });
      await labels.deleteCollection(gone.id);
      await catalog.putStatus("evictor", { state: "paused", since: T0 }, T0 + 7);
      const copy = await open();
      try {
        await copy.upsertMany(all);
        for (const table of Object.keys(COPY_TABLES) as CopyTable[]) {
          await copy.pasteRows(table, await catalog.copyRows(table, 0, 1000));
          assert.equal(await copy.countRows(table), await catalog.countRows(table), table);
        }
        assert.equal(await copy.countRows("collection_clips"), 2);
        const copied = copy.labels();
        assert.deepEqual(await copied.listCollections(), [kept]);
        assert.deepEqual(await copy.status("evictor"), {
          state: { state: "paused", since: T0 },
          updatedMs: T0 + 7,
        });
        const more = await copied.createCollection({ name: "more" });
        assert.ok(more.id > gone.id, `new collection ${more.id} must come after the deleted ${gone.id}`);
      } finally {
        await copy.close();
      }
    },
  );
}
