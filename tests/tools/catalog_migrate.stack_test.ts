/**
 * `deno task catalog migrate`: a single box's SQLite catalog copied into PostgreSQL (frames, labels, clips, the
 * journal, identity), resumed after an interruption, verified by counts; and the copy answers searches as the
 * original does.
 */
import assert from "node:assert/strict";
import { PostgresCatalog } from "../../src/catalog/postgres.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { migrate } from "../../tools/catalog.ts";
import { frameRow, T0 } from "../support/rows.ts";
import { scratchPostgresUrl } from "../support/postgres.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

/** A SQLite catalog with 3 robots x 400 frames, some archived, labels, a clip and a journal. */
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
  return catalog;
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
    assert.deepEqual(await target.labels().list(), await source.labels().list());
    assert.deepEqual(await target.labels().listClips(), await source.labels().listClips());
    assert.deepEqual(
      await target.labels().changes({ limit: 100 }),
      await source.labels().changes({ limit: 100 }),
    );
    for (
      const filter of [{ labels: ["person"] }, { labels: ["walking"] }, { robots: ["r1"], fromMs: T0 + 5000 }]
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

    // New labels and clips get new ids after the copied ones.
    const clip = await target.labels().createClip({ robotId: "r1", fromMs: T0, toMs: T0 + 1, name: "after" });
    assert.ok(clip.id > (await source.labels().listClips())[0].id);
  } finally {
    await source.close();
    await target.close();
    await Deno.remove(dir, { recursive: true });
  }
});
