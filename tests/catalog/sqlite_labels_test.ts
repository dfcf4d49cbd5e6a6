/**
 * The label store on SQLite: the shared label suite (tests/catalog/label_suite.ts) on a catalog file, and the
 * catalog's migration to schema v2 (labels, clips and the journal).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Catalog } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
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
