/**
 * `deno task bench catalog` on a small SQLite catalog: one JSON line per measure in the documented shape, the
 * fleet's rows as the consumer writes them, and nothing left behind.
 */
import assert from "node:assert/strict";
import { Fleet, ROBOTS, START_MS, STORED } from "../../bench/catalog.ts";
import { parseObjectKey } from "../../src/key.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

Deno.test("bench catalog --backend sqlite --rows 2000 prints every measure and removes its catalog", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-bench-catalog-test-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "bench/main.ts", "catalog", "--backend", "sqlite", "--rows", "2000"]
        .concat(["--queries", "5", "--dir", dir]),
      cwd: PROJECT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `bench catalog failed:\n${stderr.split("\n").slice(-15).join("\n")}`);
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.measure), [
      "upsert_single",
      "upsert_batched",
      "fill",
      "label",
      "size",
      "search_robot_time",
      "search_label",
      "search_label_robot",
      "count_robot_time",
      "timeline_day",
      "upsert_single_full",
    ]);
    for (const line of lines) {
      assert.equal(line.bench, "catalog");
      assert.equal(line.backend, "sqlite");
      assert.equal(line.rows, 2000);
    }
    const by = Object.fromEntries(lines.map((l) => [l.measure, l]));
    // 500 single + 500 batched + 1000 filled = 2000 rows.
    assert.equal(by.upsert_single.n + by.upsert_batched.n + by.fill.n, 2000);
    for (const m of ["upsert_single", "upsert_batched", "fill", "upsert_single_full"]) {
      assert.ok(by[m].per_s > 0, m);
    }
    for (
      const m of [
        "search_robot_time",
        "search_label",
        "search_label_robot",
        "count_robot_time",
        "timeline_day",
      ]
    ) {
      assert.equal(by[m].n, 5, m);
      assert.ok(by[m].p50_ms >= 0 && by[m].p99_ms >= by[m].p50_ms, JSON.stringify(by[m]));
    }
    // Searches find what was put there: a page of 50 by robot and hour; by label, at least the frames of the
    // labelled clips (2000 rows may hold no run of labelled frames).
    assert.equal(by.search_robot_time.mean_results, 50);
    assert.equal(by.label.clips, 20);
    assert.ok(by.search_label.mean_results > 0);
    assert.ok(by.size.bytes > 0 && by.size.bytes_per_row > 0);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the catalog file is removed at the end");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the bench's fleet: rows in capture order with consumer-shaped keys, ~30 % of 10 fps stored", () => {
  const fleet = new Fleet(7);
  const rows = fleet.take(6000);
  assert.equal(new Set(rows.map((r) => r.key)).size, rows.length);
  for (const r of rows) {
    const parsed = parseObjectKey(r.key);
    assert.ok(parsed, r.key);
    assert.equal(parsed.robotId, r.robotId);
    assert.equal(parsed.timestampMs, r.timestampMs);
    assert.equal(parsed.seq, r.seq);
    assert.equal(r.hash?.length, 32);
    assert.ok(r.storedMs > r.timestampMs);
  }
  // Offsets count every published frame of the robot's partition, so they rise with gaps.
  const robot0 = rows.filter((r) => r.robotId === "robot-000");
  for (let i = 1; i < robot0.length; i++) assert.ok(robot0[i].offset! > robot0[i - 1].offset!);
  assert.equal(new Set(rows.map((r) => r.robotId)).size, ROBOTS);
  const seconds = (fleet.lastMs - START_MS) / 1000;
  const perS = rows.length / seconds;
  assert.ok(Math.abs(perS - ROBOTS * 10 * STORED) < 6, `${perS} rows/s`);
  assert.ok(fleet.labelled.length < rows.length * 0.05);
});
