/**
 * `deno task catalog migrate`: a single box's SQLite catalog copied into PostgreSQL (frames, labels, clips, boxes,
 * review status, the label set, the journal, identity), resumed after an interruption, verified by counts; the copy
 * answers searches as the original does; and a copy back from PostgreSQL into SQLite.
 */
import assert from "node:assert/strict";
import { type Catalog, REVIEW_STATUSES } from "../../src/catalog/catalog.ts";
import { PostgresCatalog } from "../../src/catalog/postgres.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { ConflictError } from "../../src/errors.ts";
import { migrate } from "../../tools/catalog.ts";
import { frameRow, T0 } from "../support/rows.ts";
import { scratchPostgresUrl } from "../support/postgres.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

/**
 * A SQLite catalog with 3 robots x 400 frames, some archived, labels, a clip, boxes (a person's in pixels, a
 * model's normalised and unaccepted; two deleted, one of them the newest), review status, the label set's colours
 * and hotkeys, and a journal.
 */
async function singleBox(path: string): Promise<SqliteCatalog> {
  const catalog = new SqliteCatalog(path);
  const rows = ["r1", "r2", "r3"].flatMap((robot, k) =>
    Array.from({ length: 400 }, (_, i) => ({
      ...frameRow(robot, T0 + i * 1000 + k, i, { hash: new Uint8Array(32).fill(i % 256) }),
      partition: k,
      offset: i,
      tier: i < 100 ? "archive" as const : "local" as const,
    }))
  );
  await catalog.upsertMany(rows);
  await catalog.bind({ topic: "camera.frames", endpoint: "http://s3", bucket: "b", prefix: "frames/" });
  const labels = catalog.labels();
  await labels.addLabels({ keys: rows.slice(0, 50).map((r) => r.key) }, ["door-open"], { author: "ana" });
  await labels.addLabels({ robotId: "r2", fromMs: T0, toMs: T0 + 20_000 }, ["person"]);
  await labels.createClip({
    robotId: "r3",
    fromMs: T0,
    toMs: T0 + 60_000,
    name: "walk",
    labels: ["walking"],
  });
  await labels.defineLabel("person", { color: "#FF8800", hotkey: 1 });
  await labels.defineLabel("car", { hotkey: 2 });
  const boxes = await labels.addBoxes([
    {
      key: rows[0].key,
      label: "person",
      x: 10.5,
      y: 20,
      w: 100,
      h: 50.25,
      imageWidth: 640,
      imageHeight: 480,
    },
    { key: rows[0].key, label: "car", x: 0, y: 0, w: 1, h: 1, imageWidth: 640, imageHeight: 480 },
    {
      key: rows[1].key,
      label: "car",
      x: 0.1,
      y: 0.2,
      w: 0.3,
      h: 0.4,
      unit: "norm",
      imageWidth: 640,
      imageHeight: 480,
      source: "model:yolo-v8",
      confidence: 0.875,
    },
  ], { author: "ana" });
  await labels.deleteBoxes([boxes[1].id]);
  // The newest box deleted too: its id is only in the journal now.
  const [top] = await labels.addBoxes([
    { key: rows[2].key, label: "car", x: 1, y: 1, w: 2, h: 2, imageWidth: 640, imageHeight: 480 },
  ]);
  await labels.deleteBoxes([top.id]);
  await labels.setReview([rows[0].key, rows[2].key], "reviewed", { author: "bo" });
  await labels.setReview([rows[3].key], "rejected");
  return catalog;
}

/** Keys of the frames the fixture gives boxes and reviews. */
const BOXED = async (catalog: Catalog) => (await catalog.framesAfter("", 4)).map((r) => r.key);

/** What the label side of two catalogs must agree on, new tables included. */
async function sameLabels(a: Catalog, b: Catalog): Promise<void> {
  const [x, y] = [a.labels(), b.labels()];
  assert.deepEqual(await y.list(), await x.list());
  assert.deepEqual(await y.listClips(), await x.listClips());
  assert.deepEqual(await y.changes({ limit: 100 }), await x.changes({ limit: 100 }));
  const keys = await BOXED(a);
  assert.deepEqual(await y.boxesOf(keys), await x.boxesOf(keys));
  assert.deepEqual(await y.reviews(keys), await x.reviews(keys));
  assert.deepEqual(
    await b.withLabels(await b.framesAfter("", 4)),
    await a.withLabels(await a.framesAfter("", 4)),
  );
  for (const status of REVIEW_STATUSES) {
    assert.equal(
      await b.countFrames({ status: [status] }),
      await a.countFrames({ status: [status] }),
      status,
    );
  }
  assert.equal(await b.countFrames({ noLabel: true }), await a.countFrames({ noLabel: true }));
}

Deno.test("catalog migrate copies a SQLite catalog into PostgreSQL, resumes after an interruption, and the copy searches alike", async () => {
  const dir = await Deno.makeTempDir({ prefix: "migrate-" });
  const source = await singleBox(`${dir}/catalog.sqlite`);
  const url = await scratchPostgresUrl("migrate");
  const target = await PostgresCatalog.open(url);
  try {
    // An interrupted run: the first 500 frames (in key order) made it.
    await target.upsertMany(await source.framesAfter("", 500));
    const lines: string[] = [];
    const result = await migrate(source, target, { batch: 200, progress: (l) => lines.push(l) });
    assert.equal(result.frames, 1200);
    assert.equal(result.copiedFrames, 700, "resumed after the 500 frames already there");
    assert.ok(lines.some((l) => l.startsWith("resuming after ")), lines.join("\n"));
    assert.deepEqual(await target.all(), await source.all());
    assert.deepEqual(await target.identity(), await source.identity());
    await sameLabels(source, target);
    assert.deepEqual(
      [result.tables.boxes, result.tables.reviews, result.tables.label_set],
      [2, 3, 2],
      "the new tables are copied",
    );
    for (
      const filter of [
        { labels: ["person"] },
        { labels: ["walking"] },
        { labels: ["car"] },
        { robots: ["r1"], fromMs: T0 + 5000 },
      ]
    ) {
      const page = { order: "newest" as const, limit: 20 };
      assert.deepEqual(
        (await target.findFrames(filter, page)).map((r) => r.key),
        (await source.findFrames(filter, page)).map((r) => r.key),
        JSON.stringify(filter),
      );
    }

    // The command: runs again on a complete copy (nothing to copy), verifies, and prints one JSON line.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "tools/catalog.ts",
        "migrate",
        "--from",
        `sqlite:${dir}/catalog.sqlite`,
        "--to",
        url,
      ],
      cwd: PROJECT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const line = JSON.parse(stdout.trim());
    assert.equal(line.frames, 1200);
    assert.equal(line.copied_frames, 0);
    assert.equal(line.verified, true);
    const u = new URL(url);
    assert.ok(!stdout.includes(`:${u.password}@`), "the password is not printed");

    assert.equal(line.boxes, 2);

    // New clips and boxes get ids after the copied ones; the copied hotkeys are held.
    const clip = await target.labels().createClip({ robotId: "r1", fromMs: T0, toMs: T0 + 1, name: "after" });
    assert.ok(clip.id > (await source.labels().listClips())[0].id);
    const [key] = await BOXED(target);
    const [next] = await target.labels().addBoxes([
      { key, label: "person", x: 0, y: 0, w: 1, h: 1, imageWidth: 640, imageHeight: 480 },
    ]);
    assert.equal(
      next.id,
      5,
      "after the 4 boxes made in SQLite: deleted ones' ids, named in the journal, are not reused",
    );
    await assert.rejects(target.labels().defineLabel("walking", { hotkey: 1 }), ConflictError);
  } finally {
    await source.close();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("catalog migrate copies a PostgreSQL catalog back into SQLite, boxes and reviews included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "migrate-back-" });
  const source = await singleBox(`${dir}/first.sqlite`);
  const url = await scratchPostgresUrl("migrate_back");
  const middle = await PostgresCatalog.open(url);
  const back = new SqliteCatalog(`${dir}/back.sqlite`);
  try {
    await migrate(source, middle);
    // A change made on PostgreSQL travels back too.
    const keys = await BOXED(middle);
    await middle.labels().acceptBoxes({ key: keys[1] });
    await middle.labels().setReview([keys[0]], "rejected");
    const result = await migrate(middle, back);
    assert.equal(result.tables.boxes, 2);
    await sameLabels(middle, back);
    const [modelBox] = (await back.labels().boxesOf([keys[1]])).get(keys[1])!;
    assert.deepEqual([modelBox.source, modelBox.accepted, modelBox.confidence], [
      "model:yolo-v8",
      true,
      0.875,
    ]);
  } finally {
    await source.close();
    await middle.close();
    await back.close();
    await Deno.remove(dir, { recursive: true });
  }
});
