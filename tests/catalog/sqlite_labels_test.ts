/**
 * The label store on SQLite: the shared label suite (tests/catalog/label_suite.ts) on a catalog file, the
 * catalog's migrations to schema v2 (labels, clips and the journal) and v5 (boxes, reviews, the label set), the
 * undo cap on a real span, and the query plan of the review-status search.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Catalog } from "../../src/catalog/catalog.ts";
import { UNDO_KEY_CAP } from "../../src/catalog/rules.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { filterSql } from "../../src/catalog/sqlite_search.ts";
import { undoChange } from "../../src/catalog/undo.ts";
import { frameRow, T0 } from "../support/rows.ts";
import { labelSuite, type RawSql } from "./label_suite.ts";

/**
 * A fresh catalog in a file of its own (not ":memory:": the suite looks at the tables through a second
 * connection), removed with its folder when the catalog is closed.
 */
async function open(): Promise<Catalog> {
  const dir = await Deno.makeTempDir({ prefix: "labels-" });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  const close = catalog.close.bind(catalog);
  catalog.close = async () => {
    await close();
    await Deno.remove(dir, { recursive: true });
  };
  return catalog;
}

/** A second connection to the catalog's file. */
function sql(catalog: Catalog): RawSql {
  const db = new DatabaseSync((catalog as SqliteCatalog).path);
  return {
    query: (text, params = []) =>
      Promise.resolve().then(() => db.prepare(text).all(...params as never[]) as Record<string, unknown>[]),
    close: () => Promise.resolve(db.close()),
  };
}

labelSuite("sqlite", open, sql);

Deno.test("a v1 catalog is migrated to v2 in place, keeping its rows", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/catalog.sqlite`;
  // The v1 schema exactly as the first catalog wrote it.
  const v1 = new DatabaseSync(path);
  v1.exec(`
    CREATE TABLE frames (key TEXT PRIMARY KEY, robot_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, seq INTEGER NOT NULL,
      size INTEGER NOT NULL, etag TEXT, filter TEXT NOT NULL, distance REAL, hash BLOB,
      tier TEXT NOT NULL CHECK (tier IN ('local', 'archiving', 'archive')), tier_changed_ms INTEGER NOT NULL,
      stored_ms INTEGER NOT NULL);
    CREATE INDEX frames_tier_time ON frames (tier, ts_ms, seq);
    CREATE INDEX frames_robot_time ON frames (robot_id, ts_ms, seq);
    PRAGMA user_version = 1;`);
  v1.prepare(
    "INSERT INTO frames VALUES ('frames/a/x.jpg', 'a', 5, 1, 10, NULL, 'ahash', NULL, x'00ff', 'local', 1, 1)",
  )
    .run();
  v1.close();
  const catalog = new SqliteCatalog(path);
  try {
    const raw = new DatabaseSync(path);
    const version = raw.prepare("PRAGMA user_version").get() as { user_version: number };
    // v2 brought labels, clips and the journal; later versions (v3: Kafka offsets) migrate on from there.
    assert.ok(Number(version.user_version) >= 2, `schema version ${version.user_version}`);
    assert.equal((await catalog.get("frames/a/x.jpg"))?.robotId, "a");
    assert.deepEqual([...(await catalog.get("frames/a/x.jpg"))!.hash!], [0, 255]);
    const tables =
      (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
        name: string;
      }[]).map((t) => t.name);
    for (const t of ["changes", "clip_labels", "clips", "frame_labels", "frames", "labels"]) {
      assert.ok(tables.includes(t), `table ${t} in ${tables}`);
    }
    await catalog.labels().addLabels({ keys: ["frames/a/x.jpg"] }, ["kept"]);
  } finally {
    await catalog.close();
  }
  // Opening again is a no-op, and the label is still there.
  const again = new SqliteCatalog(path);
  assert.deepEqual(await again.labels().labelsOf("frames/a/x.jpg"), ["kept"]);
  await again.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a v4 catalog is migrated to v5 (boxes, reviews, label set) in place, keeping its labels", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/catalog.sqlite`;
  // A catalog as v4 left it: open one, then drop what v5 added and set the version back.
  const made = new SqliteCatalog(path);
  await made.upsert(frameRow("r1", T0, 0));
  await made.labels().addLabels({ keys: [frameRow("r1", T0, 0).key] }, ["kept"]);
  await made.close();
  const v4 = new DatabaseSync(path);
  v4.exec(`DROP TABLE boxes; DROP TABLE reviews; DROP TABLE label_set; DROP INDEX changes_undo;
    PRAGMA user_version = 4;`);
  v4.close();
  const catalog = new SqliteCatalog(path);
  try {
    const raw = new DatabaseSync(path);
    assert.equal(
      Number((raw.prepare("PRAGMA user_version").get() as { user_version: number }).user_version),
      6,
      "and on to v6",
    );
    raw.close();
    const labels = catalog.labels();
    assert.deepEqual(await labels.labelsOf(frameRow("r1", T0, 0).key), ["kept"]);
    const [b] = await labels.addBoxes([{
      key: frameRow("r1", T0, 0).key,
      label: "kept",
      x: 1,
      y: 1,
      w: 1,
      h: 1,
      imageWidth: 2,
      imageHeight: 2,
    }]);
    assert.equal((await labels.getBox(b.id))?.label, "kept");
    assert.equal((await labels.defineLabel("kept", { hotkey: 1 })).hotkey, 1);
    assert.equal(await labels.setReview([b.key], "reviewed"), 1);
  } finally {
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a v5 catalog is migrated to v6 (collections, status) in place, keeping its clips", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/catalog.sqlite`;
  const made = new SqliteCatalog(path);
  await made.upsert(frameRow("r1", T0, 0));
  const clip = await made.labels().createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: "kept" });
  await made.close();
  const v5 = new DatabaseSync(path);
  v5.exec(`DROP TABLE collections; DROP TABLE collection_clips; DROP TABLE status; PRAGMA user_version = 5;`);
  v5.close();
  const catalog = new SqliteCatalog(path);
  try {
    const raw = new DatabaseSync(path);
    assert.equal(
      Number((raw.prepare("PRAGMA user_version").get() as { user_version: number }).user_version),
      6,
    );
    raw.close();
    const labels = catalog.labels();
    assert.equal((await labels.getClip(clip.id))?.name, "kept");
    const collection = await labels.createCollection({ name: "w47", clipIds: [clip.id] });
    assert.deepEqual((await labels.getCollection(collection.id))?.clipIds, [clip.id]);
    await catalog.putStatus("evictor", { state: "idle" }, T0);
    assert.equal((await catalog.status("evictor"))?.updatedMs, T0);
  } finally {
    await catalog.close();
  }
  // Opening again is a no-op.
  const again = new SqliteCatalog(path);
  assert.equal((await again.labels().listCollections()).length, 1);
  await again.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("label store (sqlite): a change to more than UNDO_KEY_CAP frames keeps no keys, and undo refuses it", async () => {
  const catalog = new SqliteCatalog(":memory:");
  try {
    const n = UNDO_KEY_CAP + 1;
    await catalog.upsertMany(Array.from({ length: n }, (_, i) => frameRow("r1", T0 + i, i)));
    const labels = catalog.labels();
    const span = { robotId: "r1", fromMs: T0, toMs: T0 + n };
    assert.equal(await labels.addLabels(span, ["all"]), n);
    const [add] = await labels.changes({ newest: true, limit: 1 });
    assert.equal(add.detail.addedKeys, undefined);
    await assert.rejects(
      undoChange(labels, add.id),
      /too large to undo, remove the labels with a span instead/,
    );
    // Deleting the label: its frames are not listed either, so undo refuses that too.
    await labels.deleteLabel("all");
    const [deletion] = await labels.changes({ newest: true, limit: 1 });
    assert.equal(deletion.detail.keys, undefined);
    await assert.rejects(undoChange(labels, deletion.id), /more than 10000 frames or boxes/);
    // One frame fewer is listed in full.
    assert.equal(await labels.addLabels({ ...span, toMs: T0 + n - 2 }, ["most"]), n - 1);
    const [most] = await labels.changes({ newest: true, limit: 1 });
    assert.equal((most.detail.addedKeys as Record<string, string[]>).most.length, UNDO_KEY_CAP);
    await undoChange(labels, most.id);
    assert.equal(await catalog.countFrames({ labels: ["most"] }), 0);
  } finally {
    await catalog.close();
  }
});

Deno.test("search by review status and no label walks the time index (no scan of all labelled frames first)", async () => {
  const dir = await Deno.makeTempDir();
  await new SqliteCatalog(`${dir}/c.sqlite`).close();
  const raw = new DatabaseSync(`${dir}/c.sqlite`);
  try {
    // The plan SQLite picks for a newest-first page with both filters, on a catalog's schema.
    const { where, params } = filterSql(raw, { status: ["unlabelled", "reviewed"], noLabel: true });
    const plan = (raw.prepare(
      `EXPLAIN QUERY PLAN SELECT f.key FROM frames f WHERE ${where}
       ORDER BY f.ts_ms DESC, f.seq DESC, f.key DESC LIMIT 50`,
    ).all(...params) as { detail: string }[]).map((r) => r.detail);
    assert.ok(plan.some((d) => /SCAN f USING (COVERING )?INDEX frames_time/.test(d)), plan.join("\n"));
    assert.ok(!plan.some((d) => /TEMP B-TREE/.test(d)), plan.join("\n"));
    assert.ok(plan.some((d) => /SEARCH b USING (COVERING )?INDEX boxes_key/.test(d)), plan.join("\n"));
    assert.ok(plan.some((d) => /SEARCH r USING PRIMARY KEY/.test(d)), plan.join("\n"));
  } finally {
    raw.close();
    await Deno.remove(dir, { recursive: true });
  }
});
