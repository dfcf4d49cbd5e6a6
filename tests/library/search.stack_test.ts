/** Search: time parsing, filters, labels any/all (own and via clips), order, and keyset pages. */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { countFrames, parseTime, parseTimeRange, searchAll, searchFrames } from "../../src/library/search.ts";
import { spawnDeno } from "../../dev/processes.ts";
import { mulberry32 } from "../../dev/random.ts";
import { frameRow, T0 } from "../support/rows.ts";

Deno.test("parseTime: ISO 8601, compact and epoch ms, in UTC; end of a coarse unit", () => {
  assert.equal(parseTime("1771407376735"), 1771407376735);
  assert.equal(parseTime("2026-02-18"), Date.UTC(2026, 1, 18));
  assert.equal(parseTime("2026-02-18T09:36"), Date.UTC(2026, 1, 18, 9, 36));
  assert.equal(parseTime("2026-02-18T09:36:16Z"), Date.UTC(2026, 1, 18, 9, 36, 16));
  assert.equal(parseTime("2026-02-18 09:36:16.7"), Date.UTC(2026, 1, 18, 9, 36, 16, 700));
  assert.equal(parseTime("2026-02-18T09:36:16.735123Z"), Date.UTC(2026, 1, 18, 9, 36, 16, 735));
  assert.equal(parseTime("2026-02-18T11:36:16+02:00"), Date.UTC(2026, 1, 18, 9, 36, 16));
  assert.equal(parseTime("2026-02-18T04:06:16-0530"), Date.UTC(2026, 1, 18, 9, 36, 16));
  assert.equal(parseTime("20260218T093616735Z"), Date.UTC(2026, 1, 18, 9, 36, 16, 735), "as in object keys");
  assert.equal(parseTime("2026-02-18", "--to", { end: true }), Date.UTC(2026, 1, 19) - 1);
  assert.equal(parseTime("2026-02-18T09:36", "--to", { end: true }), Date.UTC(2026, 1, 18, 9, 37) - 1);
  assert.equal(
    parseTime("2026-02-18T09:36:16.7Z", "--to", { end: true }),
    Date.UTC(2026, 1, 18, 9, 36, 16, 799),
  );
  assert.equal(parseTime("2024-02-29"), Date.UTC(2024, 1, 29), "a leap day");
  assert.equal(parseTime("5", "--to", { end: true }), 5, "ms are exact");
});

Deno.test("parseTime: errors name the flag and the bad value", () => {
  const cases: [string, RegExp][] = [
    [
      "yesterday",
      /^--from "yesterday" is not a time: give ISO 8601 in UTC .* or milliseconds since the epoch/,
    ],
    ["2026-02-30", /^--from "2026-02-30": February 2026 has no day 30$/],
    ["2025-02-29", /February 2025 has no day 29/],
    ["2026-13-01", /^--from "2026-13-01": there is no month 13$/],
    ["2026-02-18T25:00", /25:0:0 is not a time of day/],
    ["2026-02-18T09:36:16+25:00", /bad UTC offset \+25:00/],
    ["2026-02-18+02:00", /a UTC offset needs a time of day/],
    ["18/02/2026", /"18\/02\/2026" is not a time/],
    ["-5", /"-5" is not a time/],
    ["", /"" is not a time/],
    ["1969-12-31", /is before 1970/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => parseTime(value, "--from"),
      (e: Error) => e instanceof RangeError && pattern.test(e.message),
    );
  }
  assert.throws(
    () => parseTimeRange("2026-02-18T10:00Z", "2026-02-18T09:00Z"),
    /--to "2026-02-18T09:00Z" \(2026-02-18T09:00:59.999Z\) is before --from "2026-02-18T10:00Z"/,
  );
  assert.deepEqual(parseTimeRange("2026-02-18", "2026-02-18"), {
    fromMs: Date.UTC(2026, 1, 18),
    toMs: Date.UTC(2026, 1, 19) - 1,
  });
  assert.deepEqual(parseTimeRange(undefined, undefined), { fromMs: undefined, toMs: undefined });
});

/** Robots a (20 frames), b (10), c (5); one frame per second each; some archived; labels and a clip. */
async function fixture() {
  const catalog = new SqliteCatalog(":memory:");
  const rows = [
    ...Array.from(
      { length: 20 },
      (_, i) => frameRow("a", T0 + i * 1000, i, { tier: i < 5 ? "archive" : "local" }),
    ),
    ...Array.from({ length: 10 }, (_, i) => frameRow("b", T0 + i * 1000, i)),
    ...Array.from({ length: 5 }, (_, i) => frameRow("c", T0 + i * 1000, 100 + i)),
  ];
  await catalog.upsertMany(rows);
  const labels = catalog.labels();
  const key = (robot: string, i: number) =>
    rows.find((r) => r.robotId === robot && r.timestampMs === T0 + i * 1000)!.key;
  await labels.addLabels({ keys: [key("a", 1), key("a", 2), key("b", 3)] }, ["door"]);
  await labels.addLabels({ keys: [key("a", 2), key("c", 4)] }, ["person"]);
  // The clip puts "person" on a's frames 10..12 and "hall" too.
  await labels.createClip({
    robotId: "a",
    fromMs: T0 + 10_000,
    toMs: T0 + 12_000,
    name: "corridor",
    labels: ["person", "hall"],
  });
  await labels.addLabels({ keys: [key("a", 11)] }, ["door"]);
  return { catalog, labels, rows, key };
}

const keysOf = (hits: { frame: { key: string } }[]) => hits.map((h) => h.frame.key);

Deno.test("filters: robots, time span, tier; newest or oldest first", async () => {
  const { catalog, key } = await fixture();
  const all = await searchFrames(catalog, { limit: 1000 });
  assert.equal(all.hits.length, 35);
  assert.equal(all.nextCursor, null);
  // Newest first; equal capture times by seq, then key, descending.
  assert.deepEqual(keysOf(all.hits.slice(0, 3)), [key("a", 19), key("a", 18), key("a", 17)]);
  const t = (
    h: { frame: { timestampMs: number; seq: number; key: string } },
  ) => [h.frame.timestampMs, h.frame.seq];
  for (let i = 1; i < all.hits.length; i++) {
    const [ta, sa] = t(all.hits[i - 1]), [tb, sb] = t(all.hits[i]);
    assert.ok(ta > tb || (ta === tb && sa >= sb), `order at ${i}`);
  }
  const oldest = await searchFrames(catalog, { order: "oldest", robots: ["b", "c"], limit: 3 });
  assert.deepEqual(keysOf(oldest.hits), [key("b", 0), key("c", 0), key("b", 1)]);
  const span = await searchFrames(catalog, {
    robots: ["a"],
    fromMs: T0 + 3000,
    toMs: T0 + 5000,
    order: "oldest",
  });
  assert.deepEqual(keysOf(span.hits), [key("a", 3), key("a", 4), key("a", 5)], "both ends inclusive");
  assert.equal(await countFrames(catalog, { tiers: ["archive"] }), 5);
  assert.equal(await countFrames(catalog, { tiers: ["local", "archiving"] }), 30);
  assert.equal(await countFrames(catalog, { robots: ["zzz"] }), 0);
  await assert.rejects(
    async () => await searchFrames(catalog, { tiers: ["cold" as "local"] }),
    /unknown tier "cold"/,
  );
  await assert.rejects(
    async () => await searchFrames(catalog, { limit: 0 }),
    /limit 0 must be a whole number from 1 to 1000/,
  );
  await catalog.close();
});

Deno.test("labels: any or all, own or from a clip; hits carry their labels and clips", async () => {
  const { catalog, key } = await fixture();
  const door = await searchFrames(catalog, { labels: ["door"], order: "oldest" });
  assert.deepEqual(keysOf(door.hits), [key("a", 1), key("a", 2), key("b", 3), key("a", 11)]);
  const person = await searchFrames(catalog, { labels: ["person"], order: "oldest" });
  assert.deepEqual(keysOf(person.hits), [key("a", 2), key("c", 4), key("a", 10), key("a", 11), key("a", 12)]);
  const any = await searchFrames(catalog, { labels: ["door", "hall"], order: "oldest" });
  assert.deepEqual(keysOf(any.hits), [
    key("a", 1),
    key("a", 2),
    key("b", 3),
    key("a", 10),
    key("a", 11),
    key("a", 12),
  ]);
  const all = await searchFrames(catalog, { labels: ["door", "person"], allLabels: true, order: "oldest" });
  assert.deepEqual(keysOf(all.hits), [key("a", 2), key("a", 11)], "a11: door its own, person from the clip");
  const three = await searchFrames(catalog, { labels: ["door", "person", "hall"], allLabels: true });
  assert.deepEqual(keysOf(three.hits), [key("a", 11)]);
  const hit = three.hits[0];
  assert.deepEqual(hit.labels, ["door", "hall", "person"]);
  assert.deepEqual(hit.directLabels, ["door"]);
  assert.deepEqual(hit.clips.map((c) => [c.name, c.labels]), [["corridor", ["hall", "person"]]]);
  const withRobot = await searchFrames(catalog, { labels: ["person"], robots: ["c"] });
  assert.deepEqual(keysOf(withRobot.hits), [key("c", 4)]);
  await assert.rejects(async () => await searchFrames(catalog, { labels: ["dor"] }), /unknown label "dor"/);
  // A frame stored later inside the clip matches the clip's labels.
  const late = frameRow("a", T0 + 11_500, 500);
  await catalog.upsert(late);
  assert.ok(keysOf((await searchFrames(catalog, { labels: ["hall"] })).hits).includes(late.key));
  await catalog.close();
});

Deno.test("pages stay exact while frames arrive between them", async () => {
  for (const order of ["newest", "oldest"] as const) {
    const catalog = new SqliteCatalog(":memory:");
    const rnd = mulberry32(order === "newest" ? 7 : 8);
    // 300 frames of 3 robots, with many equal capture times (ties broken by seq, then key).
    const initial = Array.from(
      { length: 300 },
      (_, i) => frameRow(`r${i % 3}`, T0 + (rnd() % 50) * 1000, i % 4),
    );
    await catalog.upsertMany(initial);
    const before = keysOf(await Array.fromAsync(searchAll(catalog, { order, limit: 1000 })));
    const unique = new Set(initial.map((r) => r.key));
    assert.equal(before.length, unique.size);
    const seen: string[] = [];
    let cursor: string | null = null;
    let arrivals = 0;
    do {
      const page = await searchFrames(catalog, { order, limit: 17, cursor });
      seen.push(...keysOf(page.hits));
      cursor = page.nextCursor;
      // New frames arrive: newer than everything so far (the live case), some of robots not seen yet.
      for (let j = 0; j < 5; j++) {
        await catalog.upsert(frameRow(`r${j}`, T0 + 100_000 + arrivals * 10, 0));
        arrivals++;
      }
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length, "no frame twice");
    if (order === "newest") {
      assert.deepEqual(seen, before, "newest first: exactly the frames there at the first page, in order");
    } else {
      assert.deepEqual(
        seen.slice(0, before.length),
        before,
        "oldest first: the original frames, in order, first",
      );
      assert.ok(seen.slice(before.length).every((k) => !unique.has(k)), "then only arrivals");
    }
    await catalog.close();
  }
});

Deno.test("a cursor only continues the search it came from", async () => {
  const { catalog } = await fixture();
  const first = await searchFrames(catalog, { robots: ["a"], limit: 5 });
  assert.ok(first.nextCursor);
  const second = await searchFrames(catalog, { robots: ["a"], limit: 5, cursor: first.nextCursor });
  assert.equal(second.hits[0].frame.timestampMs, T0 + 14_000);
  // The page size may change between pages; the filters and order may not.
  assert.equal(
    (await searchFrames(catalog, { robots: ["a"], limit: 50, cursor: first.nextCursor })).hits.length,
    15,
  );
  await assert.rejects(
    async () => await searchFrames(catalog, { robots: ["b"], cursor: first.nextCursor }),
    /the cursor belongs to a different search/,
  );
  await assert.rejects(
    async () => await searchFrames(catalog, { robots: ["a"], order: "oldest", cursor: first.nextCursor }),
    /different search/,
  );
  await assert.rejects(
    async () => await searchFrames(catalog, { cursor: "garbage!" }),
    /is not a cursor of this search/,
  );
  await catalog.close();
});

Deno.test("deno task search and deno task label on a catalog", async () => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/config.toml`;
  await Deno.writeTextFile(config, `[catalog]\ndata_dir = "${dir}/data"\n`);
  const catalog = new SqliteCatalog(`${dir}/data/catalog.sqlite`);
  const rows = Array.from({ length: 4 }, (_, i) => frameRow("r1", T0 + i * 1000, i));
  await catalog.upsertMany(rows);
  await catalog.close();
  const run = async (script: string, args: string[]) => {
    const child = spawnDeno(script, script, [...args, "--config", config]);
    const code = await child.exited;
    return { code, out: child.lines.join("\n") };
  };
  let r = await run("tools/label.ts", [
    "add",
    "door",
    "--robot",
    "r1",
    "--from",
    "2026-02-18T09:00:01Z",
    "--to",
    "2026-02-18T09:00:02Z",
    "--author",
    "ana",
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /added 2 frame labels/);
  r = await run("tools/label.ts", [
    "clip",
    "create",
    "--robot",
    "r1",
    "--from",
    String(T0),
    "--to",
    String(T0),
    "--name",
    "start",
    "--label",
    "first",
  ]);
  assert.equal(r.code, 0, r.out);
  r = await run("tools/search.ts", [
    "--label",
    "door",
    "--label",
    "first",
    "--json",
    "--oldest",
    "--limit",
    "2",
  ]);
  assert.equal(r.code, 0, r.out);
  const lines = r.out.split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.slice(0, 2).map((l) => [l.key, l.labels, l.clips.map((c: { name: string }) => c.name)]),
    [
      [rows[0].key, ["first"], ["start"]],
      [rows[1].key, ["door"], []],
    ],
  );
  assert.ok(lines[2].next_cursor, "the next page's cursor as the last line");
  r = await run("tools/search.ts", [
    "--label",
    "door",
    "--label",
    "first",
    "--oldest",
    "--limit",
    "2",
    "--cursor",
    lines[2].next_cursor,
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^KEY +ROBOT +CAPTURED \(UTC\) +TIER +LABELS$/m);
  assert.match(r.out, new RegExp(`^${rows[2].key} +r1 +2026-02-18T09:00:02.000Z +local +door$`, "m"));
  assert.match(r.out, /1 frame; no more pages/);
  r = await run("tools/search.ts", ["--from", "last week"]);
  assert.equal(r.code, 2);
  assert.match(r.out, /^error: --from "last week" is not a time/m);
  r = await run("tools/label.ts", ["log", "--json"]);
  const log = r.out.split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(log.map((c) => [c.action, c.author]), [["clip.create", Deno.env.get("USER") ?? null], [
    "label.add",
    "ana",
  ]]);
  await Deno.remove(dir, { recursive: true });
});
