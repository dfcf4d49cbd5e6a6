/**
 * The label store as tests: labels on frames and robot time spans, rename and merge, clips, the change journal,
 * pinning, the naming rules and the limits. Every backend runs it with a factory of fresh, empty catalogs and a
 * way to reach the catalog's tables directly (`labelSuite("sqlite", open, sql)`); nothing here knows a backend.
 */
import assert from "node:assert/strict";
import type { Catalog, FrameRow, LabelStore } from "../../src/catalog/catalog.ts";
import { labelProblem } from "../../src/catalog/rules.ts";
import { frameRow, T0 } from "../support/rows.ts";

/**
 * Plain SQL on a catalog's own tables, behind the label store's back: what tests use to look at columns the
 * contract does not return and to plant rows that today's rules would refuse. `?` marks a parameter on every
 * backend; a statement that is not a query returns [].
 */
export interface RawSql {
  query(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export function labelSuite(
  backend: string,
  open: () => Promise<Catalog>,
  sql: (catalog: Catalog) => RawSql,
): void {
  interface Context {
    /** Ten frames of robot r1 one second apart, and three of r2; the store's clock counts up from `now`. */
    fixture(now?: number): Promise<{
      catalog: Catalog;
      labels: LabelStore;
      r1: FrameRow[];
      r2: FrameRow[];
      raw: RawSql;
    }>;
    /** A fresh, empty catalog. */
    openCatalog(): Promise<Catalog>;
  }
  /** A test whose catalogs and connections are closed when it ends, passed or failed. */
  const test = (name: string, fn: (context: Context) => Promise<void>) =>
    Deno.test(`label store (${backend}): ${name}`, async () => {
      const closing: (() => Promise<void>)[] = [];
      const openCatalog = async () => {
        const catalog = await open();
        closing.push(() => catalog.close());
        return catalog;
      };
      const fixture = async (now = T0 + 3600_000) => {
        const catalog = await openCatalog();
        const r1 = Array.from({ length: 10 }, (_, i) => frameRow("r1", T0 + i * 1000, i));
        const r2 = Array.from({ length: 3 }, (_, i) => frameRow("r2", T0 + i * 1000, i));
        await catalog.upsertMany([...r1, ...r2]);
        let clock = now;
        const labels = catalog.labels({ now: () => clock++ });
        const raw = sql(catalog);
        closing.push(() => raw.close());
        return { catalog, labels, r1, r2, raw };
      };
      try {
        await fn({ fixture, openCatalog });
      } finally {
        for (const close of closing.reverse()) await close();
      }
    });

  test("labels on one frame, a list of keys and a robot's time span", async ({ fixture }) => {
    const { labels, r1, r2, raw } = await fixture();
    assert.equal(await labels.addLabels({ keys: [r1[0].key] }, ["door"], { author: "ana" }), 1);
    assert.equal(
      await labels.addLabels({ keys: [r1[0].key] }, ["door"], { author: "bob" }),
      0,
      "already there",
    );
    assert.equal(await labels.addLabels({ keys: [r1[1].key, r1[2].key, r1[1].key] }, ["door", "person"]), 4);
    // r1's frames from second 5 to 7 inclusive: 3 frames; r2 untouched.
    assert.equal(await labels.addLabels({ robotId: "r1", fromMs: T0 + 5000, toMs: T0 + 7000 }, ["hall"]), 3);
    assert.deepEqual(await labels.labelsOf(r1[1].key), ["door", "person"]);
    assert.deepEqual(await labels.labelsOf(r1[6].key), ["hall"]);
    assert.deepEqual(await labels.labelsOf(r2[0].key), []);
    assert.deepEqual(
      (await labels.list()).map((l) => [l.name, l.frames, l.clips]),
      [["door", 3, 0], ["hall", 3, 0], ["person", 2, 0]],
    );
    // The first author and time stay with an existing pair.
    const [who] = await raw.query("SELECT author FROM frame_labels WHERE key = ?", [r1[0].key]) as {
      author: string;
    }[];
    assert.equal(who.author, "ana");

    assert.equal(await labels.removeLabels({ keys: [r1[1].key] }, ["door"]), 1);
    assert.deepEqual(await labels.labelsOf(r1[1].key), ["person"]);
    assert.equal(await labels.removeLabels({ robotId: "r1", fromMs: T0, toMs: T0 + 60_000 }, ["hall"]), 3);

    // Unknown keys are refused before anything changes; so are bad names, unknown labels and empty spans.
    await assert.rejects(
      async () => await labels.addLabels({ keys: [r1[3].key, "frames/nope.jpg"] }, ["x"]),
      /1 frame key\(s\) not in the catalog: "frames\/nope.jpg"/,
    );
    assert.deepEqual(await labels.labelsOf(r1[3].key), []);
    assert.ok(!(await labels.list()).some((l) => l.name === "x"), "the refused label was not created");
    await assert.rejects(
      async () => await labels.addLabels({ keys: [r1[3].key] }, ["a/b"]),
      /may not contain '\/'/,
    );
    await assert.rejects(
      async () => await labels.removeLabels({ keys: [r1[3].key] }, ["never"]),
      /unknown label "never"/,
    );
    await assert.rejects(
      async () => await labels.addLabels({ robotId: "r1", fromMs: T0 + 10, toMs: T0 }, ["x"]),
      /time span ends .* before it starts/,
    );
    assert.equal(labelProblem(" door"), 'label " door" starts or ends with white space');
    assert.equal(labelProblem(".."), 'label ".." is not allowed');
    assert.equal(
      labelProblem("x".repeat(65)),
      `label "${"x".repeat(65)}" is 65 characters long (at most 64)`,
    );
    assert.equal(labelProblem("Tür offen"), null);
  });

  test("rename a label everywhere; merge only when asked", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.addLabels({ keys: [r1[0].key] }, ["dor"]);
    await labels.createClip({
      robotId: "r1",
      fromMs: T0 + 4000,
      toMs: T0 + 5000,
      name: "c",
      labels: ["dor"],
    });
    await labels.renameLabel("dor", "door", { author: "ana" });
    assert.deepEqual(await labels.labelsOf(r1[0].key), ["door"]);
    assert.deepEqual(await labels.labelsOf(r1[4].key), ["door"], "the clip's label is renamed too");
    await labels.addLabels({ keys: [r1[1].key] }, ["gate"]);
    await assert.rejects(async () => await labels.renameLabel("gate", "door"), /label "door" already exists/);
    await labels.renameLabel("gate", "door", { merge: true });
    assert.deepEqual((await labels.list()).map((l) => [l.name, l.frames, l.clips]), [["door", 2, 1]]);
    await assert.rejects(async () => await labels.renameLabel("gate", "x"), /unknown label "gate"/);
  });

  test("clip labels apply to every frame of the robot inside the span, also frames stored later", async ({ fixture }) => {
    const { catalog, labels, r1, r2 } = await fixture();
    const clip = await labels.createClip(
      {
        robotId: "r1",
        fromMs: T0 + 2000,
        toMs: T0 + 4000,
        name: "walk",
        note: "hallway",
        labels: ["walk", "hall"],
      },
      { author: "ana" },
    );
    assert.deepEqual(clip.labels, ["hall", "walk"]);
    assert.equal(clip.author, "ana");
    assert.deepEqual(await labels.labelsOf(r1[1].key), []);
    for (const i of [2, 3, 4]) assert.deepEqual(await labels.labelsOf(r1[i].key), ["hall", "walk"]);
    assert.deepEqual(await labels.labelsOf(r1[5].key), []);
    assert.deepEqual(
      await labels.labelsOf(r2[2].key),
      [],
      "another robot at the same time is not in the clip",
    );
    const late = frameRow("r1", T0 + 3500, 99);
    await catalog.upsert(late);
    assert.deepEqual(await labels.labelsOf(late.key), ["hall", "walk"]);

    const updated = await labels.updateClip(clip.id, {
      toMs: T0 + 5000,
      addLabels: ["run"],
      removeLabels: ["hall"],
    });
    assert.deepEqual(updated.labels, ["run", "walk"]);
    assert.equal(updated.note, "hallway");
    assert.deepEqual(await labels.labelsOf(r1[5].key), ["run", "walk"]);
    assert.deepEqual((await labels.updateClip(clip.id, { labels: ["x"], name: "renamed" })).labels, ["x"]);
    assert.deepEqual((await labels.listClips({ label: "x" })).map((c) => c.name), ["renamed"]);
    assert.deepEqual(await labels.listClips({ robotId: "r2" }), []);
    await assert.rejects(
      async () => await labels.updateClip(clip.id, { fromMs: T0 + 9000 }),
      /before it starts/,
    );
    await assert.rejects(async () => await labels.updateClip(999, { name: "x" }), /no clip 999/);
    await labels.deleteClip(clip.id);
    assert.deepEqual(await labels.labelsOf(r1[3].key), []);
    assert.equal(await labels.getClip(clip.id), null);
    await assert.rejects(
      async () => await labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: " " }),
      /needs a name/,
    );
    await assert.rejects(
      async () => await labels.createClip({ robotId: "../x", fromMs: T0, toMs: T0, name: "n" }),
      /may only hold letters/,
    );
  });

  test("every change is journalled with author and time, and the journal is append-only", async ({ fixture }) => {
    const { labels, r1, raw } = await fixture(T0 + 10_000_000);
    await labels.addLabels({ keys: [r1[0].key] }, ["door"], { author: "ana" });
    await labels.addLabels({ keys: [r1[1].key, r1[2].key] }, ["door"], { author: "bob" });
    await labels.addLabels({ robotId: "r1", fromMs: T0, toMs: T0 + 1000 }, ["pair"]);
    await labels.removeLabels({ keys: [r1[0].key] }, ["door"], { author: "ana", nowMs: 42 });
    await labels.renameLabel("pair", "two", { author: "cy" });
    const clip = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0 + 1,
      name: "c",
      labels: ["two"],
    });
    await labels.updateClip(clip.id, { note: "n" }, { author: "dee" });
    await labels.deleteClip(clip.id, { author: "dee" });
    await labels.deleteLabel("two", { author: "ed" });

    const log = await labels.changes();
    assert.deepEqual(
      log.map((c) => [c.action, c.target, c.author]),
      [
        ["label.add", r1[0].key, "ana"],
        ["label.add", "frames", "bob"],
        ["label.add", "robot:r1", null],
        ["label.remove", r1[0].key, "ana"],
        ["label.rename", "label:pair", "cy"],
        ["clip.create", `clip:${clip.id}`, null],
        ["clip.update", `clip:${clip.id}`, "dee"],
        ["clip.delete", `clip:${clip.id}`, "dee"],
        ["label.delete", "label:two", "ed"],
      ],
    );
    assert.equal(log[0].atMs, T0 + 10_000_000, "the time of the change");
    assert.equal(log[3].atMs, 42);
    assert.ok(log.every((c, i) => i === 0 || c.id > log[i - 1].id));
    assert.deepEqual(log[1].detail, {
      labels: ["door"],
      keys: [r1[1].key, r1[2].key],
      added: 2,
      addedKeys: { door: [r1[1].key, r1[2].key] },
    });
    assert.deepEqual(log[2].detail, {
      labels: ["pair"],
      robot: "r1",
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 1000).toISOString(),
      added: 2,
      addedKeys: { pair: [r1[0].key, r1[1].key] },
    });
    assert.deepEqual(log[3].detail, { labels: ["door"], removed: 1, removedKeys: { door: [r1[0].key] } });
    assert.deepEqual(log[4].detail, { from: "pair", to: "two", merged: false });
    assert.equal((log[6].detail.before as { note: string }).note, "");
    assert.equal((log[6].detail.after as { note: string }).note, "n");
    assert.deepEqual(log[8].detail, {
      name: "two",
      frames: 2,
      clips: 0,
      boxes: 0,
      keys: [r1[0].key, r1[1].key],
      clipIds: [],
      deletedBoxes: [],
      definition: { color: null, hotkey: null },
    });
    assert.deepEqual((await labels.changes({ target: `clip:${clip.id}` })).map((c) => c.action), [
      "clip.create",
      "clip.update",
      "clip.delete",
    ]);
    assert.deepEqual((await labels.changes({ newest: true, limit: 1 })).map((c) => c.action), [
      "label.delete",
    ]);
    assert.deepEqual((await labels.changes({ afterId: log[7].id })).map((c) => c.action), ["label.delete"]);
    // A refused change leaves no journal entry.
    await assert.rejects(async () => await labels.deleteLabel("nope"));
    assert.equal((await labels.changes()).length, log.length);
    await assert.rejects(raw.query("UPDATE changes SET author = 'mallory'"), /append-only/);
    await assert.rejects(raw.query("DELETE FROM changes"), /append-only/);
  });

  test("labelled frames are pinned; eviction's queries put them last", async ({ fixture }) => {
    const { catalog, labels, r1, r2 } = await fixture();
    await labels.addLabels({ keys: [r1[0].key] }, ["keep"]);
    await labels.createClip({
      robotId: "r1",
      fromMs: T0 + 1000,
      toMs: T0 + 2000,
      name: "labelled",
      labels: ["keep"],
    });
    await labels.createClip({ robotId: "r1", fromMs: T0 + 3000, toMs: T0 + 3000, name: "no labels" });
    await catalog.setTier(r1[9].key, "archive", T0);
    assert.equal(await catalog.isPinned(r1[0].key), true, "own label");
    assert.equal(await catalog.isPinned(r1[1].key), true, "labelled clip");
    assert.equal(await catalog.isPinned(r1[2].key), true, "labelled clip, inclusive end");
    assert.equal(await catalog.isPinned(r1[3].key), false, "a clip without labels does not pin");
    assert.equal(await catalog.isPinned(r2[0].key), false);
    assert.equal(await catalog.isPinned("frames/unknown.jpg"), false);

    const unpinned = (await catalog.oldestLocalUnpinned(100)).map((r) => r.key);
    const expectUnpinned = [r1[3], r2[0], r1[4], r2[1], r2[2], r1[5], r1[6], r1[7], r1[8]]
      .sort((a, b) => a.timestampMs - b.timestampMs || a.seq - b.seq)
      .map((r) => r.key);
    assert.deepEqual(unpinned, expectUnpinned);
    assert.deepEqual((await catalog.oldestLocalUnpinned(2)).map((r) => r.key), expectUnpinned.slice(0, 2));
    // Pinned last: all unpinned local frames by age, then the pinned ones by age; archived frames never.
    assert.deepEqual(
      (await catalog.oldestLocalPinnedLast(100)).map((r) => r.key),
      [...expectUnpinned, r1[0].key, r1[1].key, r1[2].key],
    );
    assert.deepEqual((await catalog.oldestLocalPinnedLast(10)).map((r) => r.key), [
      ...expectUnpinned,
      r1[0].key,
    ]);
    // The existing query is unchanged: plain age order over local frames.
    assert.deepEqual((await catalog.oldestLocal(3)).map((r) => r.key), [r1[0].key, r2[0].key, r1[1].key]);
    await labels.removeLabels({ keys: [r1[0].key] }, ["keep"]);
    assert.equal(await catalog.isPinned(r1[0].key), false);
  });

  test("label names: bidirectional controls and line separators refused; Windows-only trouble allowed", async ({ fixture }) => {
    assert.match(
      labelProblem("invoice\u202Etxt.exe")!,
      /contains the invisible control character U\+202E \(bidirectional text or a line separator\)/,
    );
    for (const ch of ["\u200E", "\u200F", "\u202A", "\u2066", "\u2069", "\u061C", "\u2028", "\u2029"]) {
      assert.ok(labelProblem(`a${ch}b`), `U+${ch.codePointAt(0)!.toString(16)}`);
    }
    assert.match(labelProblem("a\u0085b")!, /control characters/, "C1 controls too");
    // Characters only Windows refuses in file names are fine as labels: export escapes them in folder names.
    for (const ok of ["CON", "a:b", "what?", "x*y|z", "漢".repeat(64), "trailing.", "👩‍💻 at desk"]) {
      assert.equal(labelProblem(ok), null, ok);
    }
    // A label made before the rule (in an older catalog) can still be taken off, renamed and deleted.
    const { labels, r1, raw } = await fixture();
    await raw.query("INSERT INTO labels (name) VALUES (?)", ["old\u202Ename"]);
    await raw.query(
      "INSERT INTO frame_labels (key, label_id, created_ms, author) SELECT ?, id, 0, NULL FROM labels WHERE name = ?",
      [r1[0].key, "old\u202Ename"],
    );
    await assert.rejects(
      async () => await labels.addLabels({ keys: [r1[1].key] }, ["old\u202Ename"]),
      /U\+202E/,
    );
    assert.equal(await labels.removeLabels({ keys: [r1[0].key] }, ["old\u202Ename"]), 1);
    await labels.renameLabel("old\u202Ename", "old-name");
    assert.deepEqual((await labels.list()).map((l) => l.name), ["old-name"]);
    await assert.rejects(async () => await labels.renameLabel("old-name", "new\u2067name"), /U\+2067/);
    assert.deepEqual(await labels.deleteLabel("old-name"), { frames: 0, clips: 0 });
  });

  test("one call names at most labels.max_per_request labels; the catalog holds at most max_distinct", async ({ openCatalog }) => {
    const catalog = await openCatalog();
    const rows = Array.from({ length: 3 }, (_, i) => frameRow("r1", T0 + i * 1000, i));
    await catalog.upsertMany(rows);
    const labels = catalog.labels({ limits: { maxPerRequest: 5, maxDistinct: 8 } });
    const names = (n: number, prefix = "l") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    const journal = async () => (await labels.changes()).length;
    await assert.rejects(
      async () => await labels.addLabels({ keys: [rows[0].key] }, names(6)),
      /^RangeError: 6 labels to add in one request; at most 5 are allowed \(labels\.max_per_request\): send them in several requests, or raise labels\.max_per_request$/,
    );
    await assert.rejects(
      async () => await labels.removeLabels({ keys: [rows[0].key] }, names(6)),
      /6 labels to remove/,
    );
    await assert.rejects(
      async () =>
        await labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0 + 1, name: "c", labels: names(6) }),
      /6 labels on the clip/,
    );
    assert.equal((await labels.list()).length, 0, "nothing was created");
    assert.equal(await journal(), 0);

    assert.equal(await labels.addLabels({ keys: [rows[0].key] }, names(5)), 5);
    assert.equal(await labels.addLabels({ keys: [rows[1].key] }, names(3, "m")), 3); // 8 distinct: the cap
    await assert.rejects(
      async () => await labels.addLabels({ keys: [rows[2].key] }, ["l0", "new-one"]),
      /^RangeError: 1 new label\(s\) \("new-one"\) would make 9 distinct labels, over labels\.max_distinct \(8\): use existing labels, delete unused ones, or raise labels\.max_distinct$/,
    );
    assert.deepEqual(await labels.labelsOf(rows[2].key), [], "the refused call changed nothing, l0 included");
    await assert.rejects(
      async () =>
        await labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0 + 1, name: "c", labels: ["z"] }),
      /would make 9 distinct labels/,
    );
    assert.equal((await labels.listClips()).length, 0);
    // Existing labels never count against the cap; deleting one makes room.
    assert.equal(await labels.addLabels({ keys: [rows[2].key] }, ["l0", "l1", "m2"]), 3);
    await labels.deleteLabel("m2");
    assert.equal(await labels.addLabels({ keys: [rows[2].key] }, ["new-one"]), 1);
    assert.equal((await labels.list()).length, 8);
  });
}
