/**
 * The catalog contract and the label store on PostgreSQL: both suites, each test on a fresh schema of its own
 * (tests/support/postgres.ts: the server, and the schema dropped when the test's catalog is closed); and what
 * only a shared server has: several servers changing labels, boxes, the label set and review status at once;
 * the journal's undo cap done in SQL; the schema migration; raw copies of the new tables; index use of filters;
 * and one long sequence of calls run on SQLite and PostgreSQL with every answer, journal entry and read compared.
 */
import assert from "node:assert/strict";
import {
  type BoxInput,
  type Catalog,
  COPY_TABLES,
  type CopyTable,
  type FrameRow,
  type LabelInfo,
} from "../../src/catalog/catalog.ts";
import { PG_SCHEMA_VERSION } from "../../src/catalog/pg_db.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { undoChange } from "../../src/catalog/undo.ts";
import type { PostgresCatalog } from "../../src/catalog/postgres.ts";
import { filterSql, Params } from "../../src/catalog/postgres_search.ts";
import { BadInputError, ConflictError, NotFoundError } from "../../src/errors.ts";
import { catalogSuite } from "./catalog_suite.ts";
import { labelSuite } from "./label_suite.ts";
import { anotherServer, freshPostgresCatalog, postgresSql } from "../support/postgres.ts";
import { frameRow, T0 } from "../support/rows.ts";

catalogSuite("postgres", freshPostgresCatalog);
labelSuite("postgres", freshPostgresCatalog, postgresSql);

/** A fresh catalog with frames r1 0..9 and a second server on it; both closed after `fn`. */
async function twoServers(fn: (a: PostgresCatalog, b: PostgresCatalog, rows: FrameRow[]) => Promise<void>) {
  const a = await freshPostgresCatalog();
  const rows = Array.from({ length: 10 }, (_, i) => frameRow("r1", T0 + i * 1000, i));
  await a.upsertMany(rows);
  const b = await anotherServer(a);
  try {
    await fn(a, b, rows);
  } finally {
    await b.close();
    await a.close();
  }
}

Deno.test("label store (postgres): servers creating labels at once never pass labels.max_distinct", async () => {
  await twoServers(async (a, b, rows) => {
    const limits = { maxDistinct: 10 };
    const stores = [a.labels({ limits }), b.labels({ limits })];
    await stores[0].addLabels({ keys: [rows[0].key] }, ["old"]);
    // 24 calls at once, each creating a label of its own (and one all share), spread over both servers.
    const results = await Promise.allSettled(
      Array.from(
        { length: 24 },
        (_, i) => stores[i % 2].addLabels({ keys: [rows[i % 10].key] }, ["old", `new${i}`]),
      ),
    );
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(results.length - refused.length, 9, "9 new labels fit next to the existing one");
    for (const r of refused) {
      assert.match(String(r.reason), /would make 11 distinct labels, over labels\.max_distinct/);
    }
    assert.equal((await stores[1].list()).length, 10);
    // Each accepted call and nothing else is in the journal, in commit order.
    const journal = await stores[0].changes({ limit: 100 });
    assert.equal(journal.length, 10);
  });
});

Deno.test("label store (postgres): a change that fails halfway leaves nothing, journal included", async () => {
  await twoServers(async (a, b, rows) => {
    const labels = a.labels();
    await labels.addLabels({ keys: [rows[0].key] }, ["keep"]);
    // The add would succeed; the remove names an unknown label: neither happens.
    await assert.rejects(
      b.labels().changeLabels({ keys: [rows[1].key] }, { add: ["new"], remove: ["never"] }),
      NotFoundError,
    );
    assert.deepEqual(await labels.labelsOf(rows[1].key), []);
    assert.equal(await labels.exists("new"), false);
    assert.equal((await labels.changes()).length, 1);
  });
});

Deno.test("label store (postgres): text PostgreSQL cannot hold is bad input or not found, not a server error", async () => {
  await twoServers(async (a, _b, rows) => {
    const labels = a.labels();
    await assert.rejects(
      labels.addLabels({ keys: [rows[0].key] }, ["x"], { author: "a\0b" }),
      (e) => e instanceof BadInputError && /NUL/.test(e.message),
    );
    await assert.rejects(labels.addLabels({ keys: ["frames/a\0b.jpg"] }, ["x"]), NotFoundError);
    await assert.rejects(labels.removeLabels({ keys: [rows[0].key] }, ["a\0b"]), NotFoundError);
    await assert.rejects(
      labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: "c", note: "\0" }),
      BadInputError,
    );
    assert.deepEqual(await labels.labelsOf("a\0b"), []);
    assert.equal(await labels.exists("a\0b"), false);
    assert.deepEqual(await labels.listClips({ label: "a\0b" }), []);
    assert.equal(await labels.getClip(1.5), null);
    await assert.rejects(labels.deleteClip(Number.NaN), NotFoundError);
    assert.deepEqual(await labels.changes(), []);
  });
});

/** A box of class `label` on `key` (a 640x480 frame). */
function box(key: string, label: string, extra: Partial<BoxInput> = {}): BoxInput {
  return { key, label, x: 10, y: 20, w: 100, h: 50, imageWidth: 640, imageHeight: 480, ...extra };
}

Deno.test("label set (postgres): servers giving one hotkey to several labels at once: one gets it, the others are told who has it", async () => {
  await twoServers(async (a, b) => {
    const stores = [a.labels(), b.labels()];
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => stores[i % 2].defineLabel(`class${i}`, { hotkey: 3 })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1, "exactly one label holds key 3");
    const holder = (won[0] as PromiseFulfilledResult<LabelInfo>).value.name;
    for (const r of results.filter((r) => r.status === "rejected")) {
      const reason = (r as PromiseRejectedResult).reason;
      assert.ok(reason instanceof ConflictError, String(reason));
      assert.equal(
        reason.message,
        `hotkey 3 belongs to "${holder}": clear it there first, or pick another`,
      );
    }
    // The refused calls changed nothing: no label, no journal entry.
    const list = await stores[1].list();
    assert.deepEqual(list.map((l) => [l.name, l.hotkey]), [[holder, 3]]);
    assert.equal((await stores[0].changes()).length, 1);
    // Moving the key: clear it, then give it to another label.
    await stores[1].defineLabel(holder, { hotkey: null });
    const moved = await stores[0].defineLabel("other", { hotkey: 3, color: "#AABBCC" });
    assert.deepEqual([moved.hotkey, moved.color], [3, "#aabbcc"]);
  });
});

Deno.test("label set (postgres): labels.max_distinct holds when servers create labels at once by every route", async () => {
  await twoServers(async (a, b, rows) => {
    const limits = { maxDistinct: 8 };
    const stores = [a.labels({ limits }), b.labels({ limits })];
    const calls = Array.from({ length: 30 }, (_, i) => {
      const store = stores[i % 2];
      const key = rows[i % 10].key;
      switch (i % 4) {
        case 0:
          return store.defineLabel(`def${i}`, { color: "#112233" });
        case 1:
          return store.addBoxes([box(key, `box${i}`)]);
        case 2:
          return store.addLabels({ keys: [key] }, [`lab${i}`]);
        default:
          return store.createClip({
            robotId: "r1",
            fromMs: T0,
            toMs: T0 + 1000,
            name: "c",
            labels: [`clip${i}`],
          });
      }
    });
    const results = await Promise.allSettled(calls);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 8);
    for (const r of results.filter((r) => r.status === "rejected")) {
      assert.match(String((r as PromiseRejectedResult).reason), /over labels\.max_distinct \(8\)/);
    }
    assert.equal((await stores[0].list()).length, 8);
  });
});

Deno.test("label store (postgres): strict mode refuses new classes on every server, naming the set; defineLabel adds to it", async () => {
  await twoServers(async (a, b, rows) => {
    await a.labels().defineLabel("door_closed", { hotkey: 1 });
    await a.labels().addLabels({ keys: [rows[0].key] }, ["person"]);
    const strict = b.labels({ limits: { strict: true } });
    const message =
      'label "ldoor_closed" is not in the label set (labels.strict = true): use one of door_closed, person ' +
      "or add it to the set first (Labels page or POST /api/labels)";
    await assert.rejects(strict.addLabels({ keys: [rows[1].key] }, ["ldoor_closed"]), { message });
    await assert.rejects(strict.addBoxes([box(rows[1].key, "ldoor_closed")]), { message });
    await assert.rejects(
      strict.createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: "c", labels: ["ldoor_closed"] }),
      { message },
    );
    const [kept] = await strict.addBoxes([box(rows[1].key, "person")]);
    await assert.rejects(strict.updateBox(kept.id, { label: "ldoor_closed" }), { message });
    assert.deepEqual((await strict.list()).map((l) => l.name), ["door_closed", "person"]);
    await strict.defineLabel("car", {});
    assert.equal((await strict.updateBox(kept.id, { label: "car" })).label, "car");
    // A rename changes the set deliberately: allowed.
    await strict.renameLabel("car", "vehicle");
    assert.deepEqual((await strict.list()).map((l) => [l.name, l.boxes]), [
      ["door_closed", 0],
      ["person", 0],
      ["vehicle", 1],
    ]);
  });
});

Deno.test("label store (postgres): a label deleted while servers add boxes of its class leaves no box without a label", async () => {
  await twoServers(async (a, b, rows) => {
    const [sa, sb] = [a.labels(), b.labels()];
    const raw = postgresSql(a);
    try {
      const work: Promise<unknown>[] = [];
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 6; i++) {
          work.push(sa.addBoxes([box(rows[i].key, "cat"), box(rows[i].key, "dog")]));
        }
        work.push(sb.deleteLabel("cat").catch((e) => assert.ok(e instanceof NotFoundError, String(e))));
        work.push(sb.renameLabel("dog", "hound", { merge: true }).catch(() => {}));
        work.push(sb.renameLabel("hound", "dog", { merge: true }).catch(() => {}));
      }
      await Promise.all(work);
      const orphans = await raw.query(
        "SELECT COUNT(*) AS n FROM boxes b WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.id = b.label_id)",
      );
      assert.equal(Number(orphans[0].n), 0);
      // The counts agree with the boxes, and every box.add of the journal is accounted for.
      const list = await sa.list();
      const total = list.reduce((n, l) => n + l.boxes, 0);
      const boxes = [...(await sa.boxesOf(rows.map((r) => r.key))).values()].flat();
      assert.equal(boxes.length, total);
      const journal = await sa.changes({ limit: 1000 });
      const added = journal.filter((c) => c.action === "box.add").length * 2;
      const deleted = journal.filter((c) => c.action === "label.delete")
        .reduce((n, c) => n + Number(c.detail.boxes), 0);
      assert.equal(total, added - deleted);
    } finally {
      await raw.close();
    }
  });
});

Deno.test("label store (postgres): servers reviewing and accepting the same frames at once change each once", async () => {
  await twoServers(async (a, b, rows) => {
    const stores = [a.labels(), b.labels()];
    const keys = rows.map((r) => r.key);
    const boxes = await stores[0].addBoxes(
      keys.map((k) => box(k, "cat", { source: "model:m1", confidence: 0.5 })),
    );
    assert.ok(boxes.every((x) => !x.accepted));
    const reviewed = await Promise.all(
      Array.from({ length: 8 }, (_, i) => stores[i % 2].setReview(keys, "reviewed", { author: `p${i}` })),
    );
    assert.equal(reviewed.reduce((n, x) => n + x, 0), 10);
    const accepted = await Promise.all(
      Array.from({ length: 8 }, (_, i) => stores[i % 2].acceptBoxes({ ids: boxes.map((x) => x.id) })),
    );
    assert.equal(accepted.reduce((n, x) => n + x, 0), 10);
    const journal = await stores[0].changes({ limit: 100 });
    assert.deepEqual(journal.map((c) => c.action), ["box.add", "review.set", "box.update"]);
    assert.deepEqual(
      journal[1].detail.before,
      Object.fromEntries(keys.map((k) => [k, null])),
      "the status before, read under the lock",
    );
    assert.ok((await stores[1].reviews(keys)).every((r) => r.status === "reviewed"));
  });
});

Deno.test("label store (postgres): undo keys of a change over 10,000 frames are left out, up to 10,000 kept", async () => {
  const catalog = await freshPostgresCatalog();
  try {
    const rows = Array.from({ length: 10_001 }, (_, i) => frameRow("big", T0 + i * 10, i));
    await catalog.upsertMany(rows);
    const labels = catalog.labels();
    const last = rows[rows.length - 1].timestampMs;
    assert.equal(await labels.addLabels({ robotId: "big", fromMs: T0, toMs: last - 10 }, ["most"]), 10_000);
    assert.equal(await labels.addLabels({ robotId: "big", fromMs: T0, toMs: last }, ["all"]), 10_001);
    // Two labels of 10,000 + 1 pairs in one call: over the cap together.
    assert.equal(
      await labels.addLabels({ robotId: "big", fromMs: last, toMs: last }, ["most", "one"]),
      2,
    );
    assert.equal(
      await labels.removeLabels({ robotId: "big", fromMs: T0, toMs: last }, ["most"]),
      10_001,
    );
    const [most, all, two, removed] = await labels.changes();
    const keys = (most.detail.addedKeys as Record<string, string[]>).most;
    assert.equal(keys.length, 10_000);
    assert.deepEqual(keys, rows.slice(0, 10_000).map((r) => r.key), "in key order");
    assert.equal(all.detail.addedKeys, undefined);
    assert.deepEqual(two.detail.addedKeys, { most: [rows[10_000].key], one: [rows[10_000].key] });
    assert.equal(removed.detail.removedKeys, undefined);
    assert.equal(removed.detail.removed, 10_001);
  } finally {
    await catalog.close();
  }
});

Deno.test("catalog (postgres): a schema at version 1 with labels is migrated to boxes, reviews and the label set", async () => {
  await twoServers(async (a, _b, rows) => {
    await a.labels().addLabels({ keys: [rows[0].key] }, ["door"], { author: "ana" });
    const raw = postgresSql(a);
    try {
      // Back to what version 1 had.
      await raw.query(
        `DROP TABLE boxes, reviews, label_set, collections, collection_clips, status;
         DROP INDEX changes_undo_of; DELETE FROM schema_version WHERE version >= 2`,
      );
    } finally {
      await raw.close();
    }
    const c = await anotherServer(a);
    try {
      const labels = c.labels();
      assert.deepEqual(await labels.labelsOf(rows[0].key), ["door"]);
      const [added] = await labels.addBoxes([box(rows[1].key, "door")]);
      assert.equal(added.label, "door");
      assert.deepEqual((await labels.list()).map((l) => [l.name, l.frames, l.boxes]), [["door", 1, 1]]);
      const raw2 = postgresSql(a);
      try {
        const v = await raw2.query("SELECT MAX(version) AS v FROM schema_version");
        assert.equal(Number(v[0].v), PG_SCHEMA_VERSION);
      } finally {
        await raw2.close();
      }
    } finally {
      await c.close();
    }
  });
});

Deno.test("catalog (postgres): a schema at version 2 is migrated to 3 (collections, status), keeping its clips", async () => {
  await twoServers(async (a, _b) => {
    const clip = await a.labels().createClip({ robotId: "r1", fromMs: T0, toMs: T0 + 1000, name: "kept" });
    const raw = postgresSql(a);
    try {
      await raw.query(
        "DROP TABLE collections, collection_clips, status; DELETE FROM schema_version WHERE version >= 3",
      );
    } finally {
      await raw.close();
    }
    const c = await anotherServer(a);
    try {
      const labels = c.labels();
      assert.equal((await labels.getClip(clip.id))?.name, "kept");
      const made = await labels.createCollection({ name: "w47", clipIds: [clip.id] });
      assert.deepEqual((await labels.collectionByName("w47"))?.clipIds, [clip.id]);
      assert.equal(made.name, "w47");
      await c.putStatus("evictor", { state: "idle" }, T0);
      assert.deepEqual(await a.status("evictor"), { state: { state: "idle" }, updatedMs: T0 });
      const raw2 = postgresSql(a);
      try {
        const v = await raw2.query("SELECT MAX(version) AS v FROM schema_version");
        assert.equal(Number(v[0].v), 3);
        assert.equal(PG_SCHEMA_VERSION, 3);
      } finally {
        await raw2.close();
      }
    } finally {
      await c.close();
    }
  });
});

Deno.test("label store (postgres): servers creating collections of one name at once: one wins, the others are refused", async () => {
  await twoServers(async (a, b) => {
    const clip = await a.labels().createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: "c" });
    const stores = [a.labels(), b.labels()];
    const results = await Promise.allSettled(
      Array.from(
        { length: 8 },
        (_, i) => stores[i % 2].createCollection({ name: "same", clipIds: [clip.id] }),
      ),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof ConflictError, String(r.reason));
    }
    assert.equal((await stores[1].listCollections()).length, 1);
  });
});

Deno.test("catalog (postgres): boxes, reviews and the label set copy to another catalog as raw rows, ids kept", async () => {
  await twoServers(async (a, _b, rows) => {
    const labels = a.labels();
    await labels.defineLabel("cat", { color: "#ff0000", hotkey: 2 });
    const boxes = await labels.addBoxes([
      box(rows[0].key, "cat"),
      box(rows[1].key, "dog", {
        unit: "norm",
        x: 0.1,
        y: 0.2,
        w: 0.3,
        h: 0.4,
        source: "model:m",
        confidence: 0.25,
      }),
    ]);
    await labels.deleteBoxes([boxes[0].id]);
    await labels.setReview([rows[2].key], "rejected", { author: "ana" });
    const raw = await a.copyRows("boxes", 0, 10);
    assert.deepEqual(
      raw.map((r) => [r.id, r.accepted]),
      [[boxes[1].id, 0]],
      "accepted as 0/1, as SQLite keeps it",
    );
    const copy = await freshPostgresCatalog();
    try {
      for (const table of Object.keys(COPY_TABLES) as CopyTable[]) {
        await copy.pasteRows(table, await a.copyRows(table, 0, 1000));
        assert.equal(await copy.countRows(table), await a.countRows(table), table);
      }
      await copy.upsertMany(rows);
      const there = copy.labels();
      assert.deepEqual(await there.list(), await labels.list());
      assert.deepEqual(await there.boxesOf([rows[1].key]), await labels.boxesOf([rows[1].key]));
      assert.deepEqual(await there.reviews([rows[2].key]), await labels.reviews([rows[2].key]));
      const [next] = await there.addBoxes([box(rows[3].key, "cat")]);
      assert.ok(next.id > boxes[1].id, "new boxes get ids after the copied ones");
      await assert.rejects(there.defineLabel("dog", { hotkey: 2 }), ConflictError);
    } finally {
      await copy.close();
    }
  });
});

Deno.test("search (postgres): status and no-label filters walk the time index, each test on a frame served by an index", async () => {
  const catalog = await freshPostgresCatalog();
  const raw = postgresSql(catalog);
  try {
    const rows = Array.from({ length: 2000 }, (_, i) => frameRow("r1", T0 + i * 1000, i));
    await catalog.upsertMany(rows);
    const labels = catalog.labels();
    await labels.addBoxes(rows.slice(0, 500).map((r) => box(r.key, "cat")));
    await labels.setReview(rows.slice(0, 100).map((r) => r.key), "reviewed");
    await labels.addLabels({ robotId: "r1", fromMs: T0 + 400_000, toMs: T0 + 799_000 }, ["door"]);
    await raw.query("ANALYZE");
    // At this size the planner may hash a whole small table instead of probing it per frame (its right call
    // while the table fits in work_mem); without sequential scans, each probe must find an index to use.
    await raw.query("SET enable_seqscan = off");
    // Newest first, labelled-but-not-reviewed frames: a page walks the time index and probes per frame.
    const page = { order: "newest" as const, limit: 5 };
    assert.deepEqual(
      (await catalog.findFrames({ status: ["labelled"] }, page)).map((r) => r.seq),
      [799, 798, 797, 796, 795],
    );
    assert.equal(await catalog.countFrames({ status: ["unlabelled"] }), 1200);
    assert.equal(await catalog.countFrames({ noLabel: true, status: ["reviewed"] }), 0);
    for (
      const filter of [{ status: ["unlabelled" as const] }, { status: ["labelled" as const] }, {
        noLabel: true,
      }]
    ) {
      const p = new Params();
      const where = await filterSql(
        { query: async (text, values) => ({ rows: await raw.query(text, values), rowCount: null }) },
        filter,
        p,
      );
      assert.deepEqual(p.values, [], "these filters have no parameters");
      const plan = (await raw.query(
        `EXPLAIN SELECT f.key FROM frames f WHERE ${where} ORDER BY f.ts_ms DESC, f.seq DESC, f.key DESC LIMIT 5`,
      )).map((r) => r["QUERY PLAN"]).join("\n");
      assert.match(plan, /Index (Only )?Scan Backward using frames_time/, plan);
      assert.doesNotMatch(plan, /Seq Scan/, plan);
    }
  } finally {
    await raw.close();
    await catalog.close();
  }
});

/**
 * The same calls on both backends (labels, spans, the label set, boxes, review, clips, rename, merge, delete,
 * and undo of most of it), and what each returned or refused, the journal and every read compared. Label ids
 * are left out: a PostgreSQL sequence is not rolled back with a refused change.
 */
async function sameCalls(catalog: Catalog): Promise<unknown[]> {
  const out: unknown[] = [];
  const rows = Array.from({ length: 12 }, (_, i) => frameRow(i < 8 ? "r1" : "r2", T0 + i * 1000, i));
  await catalog.upsertMany(rows);
  let clock = T0 + 1e6;
  const labels = catalog.labels({ now: () => clock++ });
  const k = rows.map((r) => r.key);
  const noId = (v: unknown) => v && typeof v === "object" && "hotkey" in v ? { ...v, id: 0 } : v;
  const call = async (f: () => Promise<unknown>) => {
    try {
      out.push(noId(await f()));
    } catch (e) {
      out.push(`${(e as Error).constructor.name}: ${(e as Error).message}`);
    }
  };
  await call(() => labels.addLabels({ keys: [k[3], k[1], k[1]] }, ["door", "zed"], { author: "a" }));
  await call(() => labels.addLabels({ keys: [k[1], k[2]] }, ["door"]));
  await call(() => labels.addLabels({ robotId: "r1", fromMs: T0, toMs: T0 + 5000 }, ["span"]));
  await call(() =>
    labels.removeLabels({ robotId: "r1", fromMs: T0 + 2000, toMs: T0 + 9000 }, ["span", "door"])
  );
  await call(() => labels.changeLabels({ keys: [k[0]] }, { add: ["x"], remove: ["zed"] }));
  await call(() => labels.defineLabel("door", { color: "#ABCDEF", hotkey: 1 }));
  await call(() => labels.defineLabel("door", { color: "#abcdef" }));
  await call(() => labels.defineLabel("new", { hotkey: 1 }));
  await call(() => labels.defineLabel("new", { hotkey: 2, color: null }));
  await call(() =>
    labels.addBoxes([
      box(k[0], "cat"),
      box(k[0], "door", { source: "model:m", confidence: 0.5 }),
      box(k[9], "cat", { unit: "norm", x: 0.1, y: 0.1, w: 0.2, h: 0.3 }),
    ], { author: "bo" })
  );
  await call(() => labels.updateBox(1, { label: "dog", rect: { x: 5, y: 5, w: 10, h: 10 } }));
  await call(() => labels.acceptBoxes({ key: k[0] }));
  await call(() => labels.acceptBoxes({ ids: [2, 3] }));
  await call(() => labels.setReview([k[0], k[4], k[5]], "reviewed", { author: "r" }));
  await call(() => labels.setReview([k[0], k[6]], "rejected"));
  await call(() => labels.setReview([k[4]], null));
  await call(() =>
    labels.createClip({
      robotId: "r2",
      fromMs: T0 + 8000,
      toMs: T0 + 9000,
      name: "c",
      labels: ["walk", "door"],
    })
  );
  await call(() => labels.updateClip(1, { addLabels: ["cat"], note: "n" }));
  await call(() => labels.renameLabel("cat", "dog", { merge: true }));
  await call(() => labels.renameLabel("dog", "animal"));
  await call(() => labels.deleteLabel("door"));
  await call(() => labels.deleteBoxes([3]));
  await call(() => labels.deleteBoxes([3]));
  for (const id of [1, 3, 4, 6, 9, 10, 11, 12, 14, 15, 17, 18, 19, 20, 21, 22, 21]) {
    await call(() => undoChange(labels, id, { author: "u" }));
  }
  // Collections (after the undo above, whose entry ids stay as they are), a clip deleted out of two and put
  // back, and undo of their changes; the status store.
  const d = await labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0 + 2000, name: "d" });
  const e = await labels.createClip({ robotId: "r2", fromMs: T0 + 8000, toMs: T0 + 8000, name: "e" });
  out.push([d, e]);
  const newest = async () => (await labels.changes({ newest: true, limit: 1 }))[0].id;
  await call(() =>
    labels.createCollection({ name: "w47", note: "n", clipIds: [e.id, d.id, e.id] }, { author: "a" })
  );
  await call(() => labels.createCollection({ name: "w47" }));
  await call(() => labels.createCollection({ name: "x", clipIds: [d.id, 999, 998] }));
  await call(() => labels.updateCollection(1, { name: "w48", addClipIds: [d.id, 997] }));
  await call(() => labels.updateCollection(1, { name: "w48", note: "", clipIds: [d.id, e.id] }));
  const reorder = await newest();
  await call(() => labels.createCollection({ name: "other", clipIds: [e.id] }));
  await call(() => labels.deleteClip(e.id));
  const clipGone = await newest();
  await call(() => undoChange(labels, clipGone));
  await call(() => undoChange(labels, reorder));
  await call(() => labels.deleteCollection(2));
  const collectionGone = await newest();
  await call(() => undoChange(labels, collectionGone));
  await call(() => labels.deleteCollection(2));
  out.push(await labels.listCollections());
  out.push(await labels.collectionByName("w47"));
  await catalog.putStatus("evictor", { state: "moving", n: 3 }, T0);
  await catalog.putStatus("evictor", { state: "idle", nested: { a: [1, null] } }, T0 + 1);
  out.push(await catalog.status("evictor"), await catalog.status("none"));
  out.push(await labels.changes({ limit: 1000 }));
  out.push((await labels.list()).map(noId));
  out.push(await labels.listClips());
  out.push([...(await labels.boxesOf(k)).entries()]);
  out.push(await labels.reviews(k));
  out.push(await catalog.withLabels(await catalog.findFrames({}, { order: "oldest", limit: 100 })));
  for (
    const filter of [
      { status: ["unlabelled" as const] },
      { status: ["labelled" as const, "rejected" as const] },
      { noLabel: true },
      { labels: ["animal"] },
      { labels: ["animal", "span"], allLabels: true },
    ]
  ) {
    out.push((await catalog.findFrames(filter, { order: "newest", limit: 100 })).map((r) => r.key));
    out.push(await catalog.countFrames(filter));
  }
  out.push(await Promise.all(k.map((key) => catalog.isPinned(key))));
  out.push((await catalog.oldestLocalUnpinned(100)).map((r) => r.key));
  return out;
}

Deno.test("label store (postgres): the same calls as on SQLite return, refuse, journal and read the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "same-calls-" });
  const sqlite = new SqliteCatalog(`${dir}/catalog.sqlite`);
  const postgres = await freshPostgresCatalog();
  try {
    const [expected, actual] = [await sameCalls(sqlite), await sameCalls(postgres)];
    assert.equal(actual.length, expected.length);
    for (let i = 0; i < expected.length; i++) assert.deepEqual(actual[i], expected[i], `step ${i}`);
  } finally {
    await sqlite.close();
    await postgres.close();
    await Deno.remove(dir, { recursive: true });
  }
});
