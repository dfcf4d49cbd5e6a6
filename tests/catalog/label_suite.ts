/**
 * The label store as tests: labels on frames and robot time spans, rename and merge, clips, the change journal,
 * pinning, the naming rules and the limits. Every backend runs it with a factory of fresh, empty catalogs and a
 * way to reach the catalog's tables directly (`labelSuite("sqlite", open, sql)`); nothing here knows a backend.
 */
import assert from "node:assert/strict";
import type { BoxInput, Catalog, Change, FrameRow, LabelStore } from "../../src/catalog/catalog.ts";
import { labelProblem } from "../../src/catalog/rules.ts";
import { undoChange } from "../../src/catalog/undo.ts";
import { BadInputError, ConflictError, NotFoundError } from "../../src/errors.ts";
import { frameRow, T0 } from "../support/rows.ts";

/** A 20 x 20 px box at (10, 10) on a 640 x 480 frame, with changes. */
function box(key: string, label: string, over: Partial<BoxInput> = {}): BoxInput {
  return { key, label, x: 10, y: 10, w: 20, h: 20, imageWidth: 640, imageHeight: 480, ...over };
}

/** The last journal entry. */
async function last(labels: LabelStore): Promise<Change> {
  return (await labels.changes({ newest: true, limit: 1 }))[0];
}

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

  // ---------------------------------------------------------------------------------------------- boxes

  test("boxes: added, updated, accepted and deleted, each journalled with the boxes as they were and are", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    const [mine, predicted] = await labels.addBoxes([
      box(r1[0].key, "person"),
      box(r1[0].key, "car", {
        x: 0.5,
        y: 0.25,
        w: 0.5,
        h: 0.5,
        unit: "norm",
        confidence: 0.75,
        source: "model:yolo",
      }),
    ], { author: "ana" });
    assert.deepEqual(
      { ...mine, id: 0, createdMs: 0, updatedMs: 0 },
      {
        id: 0,
        key: r1[0].key,
        label: "person",
        x: 10,
        y: 10,
        w: 20,
        h: 20,
        unit: "px",
        imageWidth: 640,
        imageHeight: 480,
        confidence: null,
        source: "human",
        accepted: true,
        author: "ana",
        createdMs: 0,
        updatedMs: 0,
      },
    );
    assert.ok(predicted.id > mine.id);
    assert.equal(mine.createdMs, mine.updatedMs);
    assert.deepEqual(
      [predicted.unit, predicted.x, predicted.confidence, predicted.source, predicted.accepted],
      ["norm", 0.5, 0.75, "model:yolo", false],
    );
    let entry = await last(labels);
    assert.deepEqual([entry.action, entry.target, entry.author], ["box.add", r1[0].key, "ana"]);
    assert.deepEqual(entry.detail, { boxes: [mine, predicted] });
    assert.deepEqual(await labels.getBox(mine.id), mine);
    assert.equal(await labels.getBox(987654), null);

    // Boxes on two frames: the target is `frames`.
    const two = await labels.addBoxes([box(r1[1].key, "person"), box(r1[2].key, "person")]);
    assert.equal((await last(labels)).target, "frames");
    const byKey = await labels.boxesOf([r1[0].key, r1[1].key, r1[5].key]);
    assert.deepEqual([...byKey.keys()].sort(), [r1[0].key, r1[1].key].sort());
    assert.deepEqual(byKey.get(r1[0].key), [mine, predicted]);
    assert.deepEqual(byKey.get(r1[1].key), [two[0]]);

    // A new rectangle (in another unit) and a new class; a model's box is accepted by its frame.
    const moved = await labels.updateBox(
      mine.id,
      { label: "bike", rect: { x: 0.1, y: 0.1, w: 0.2, h: 0.3, unit: "norm" } },
      { author: "bob" },
    );
    assert.deepEqual([moved.label, moved.x, moved.h, moved.unit, moved.author], [
      "bike",
      0.1,
      0.3,
      "norm",
      "ana",
    ]);
    assert.ok(moved.updatedMs > mine.updatedMs);
    entry = await last(labels);
    assert.deepEqual([entry.action, entry.target, entry.author], ["box.update", r1[0].key, "bob"]);
    assert.deepEqual(entry.detail, { before: [mine], after: [moved] });

    assert.equal(await labels.acceptBoxes({ key: r1[0].key }, { author: "cy" }), 1);
    entry = await last(labels);
    assert.equal(entry.action, "box.update");
    assert.deepEqual(entry.detail.before, [predicted]);
    assert.deepEqual((entry.detail.after as { accepted: boolean }[]).map((b) => b.accepted), [true]);
    const entries = (await labels.changes()).length;
    assert.equal(await labels.acceptBoxes({ key: r1[0].key }), 0, "nothing left to accept");
    assert.equal(await labels.acceptBoxes({ ids: [mine.id, predicted.id] }), 0);
    assert.equal((await labels.changes()).length, entries, "accepting nothing journals nothing");
    await assert.rejects(labels.acceptBoxes({ key: "frames/none.jpg" }), NotFoundError);

    assert.deepEqual(
      (await labels.list()).map((l) => [l.name, l.frames, l.boxes, l.color, l.hotkey]),
      [["bike", 0, 1, null, null], ["car", 0, 1, null, null], ["person", 0, 2, null, null]],
    );

    // Deleting: all the ids are there, or nothing is deleted.
    await assert.rejects(labels.deleteBoxes([two[0].id, 987654]), /no box 987654/);
    assert.ok(await labels.getBox(two[0].id));
    await assert.rejects(labels.updateBox(987654, { accepted: true }), NotFoundError);
    assert.equal(await labels.deleteBoxes([two[0].id, two[1].id, two[0].id], { author: "dee" }), 2);
    entry = await last(labels);
    assert.deepEqual([entry.action, entry.target, entry.author], ["box.delete", "frames", "dee"]);
    assert.deepEqual(entry.detail, { boxes: two });
    assert.equal(await labels.getBox(two[0].id), null);
  });

  test("boxes: rectangles outside the frame and bad sources are refused naming the value; nothing is stored", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    const refused: [BoxInput, RegExp][] = [
      [box(r1[0].key, "person", { x: 630 }), /box x 630 \+ w 20 = 650 is beyond the frame's width 640 px/],
      [box(r1[0].key, "person", { y: -3 }), /box y -3 is before the frame's edge/],
      [box(r1[0].key, "person", { w: 0 }), /box width 0 is not above 0/],
      [box(r1[0].key, "person", { unit: "norm" }), /beyond the frame's width 1 \(normalised\)/],
      [box(r1[0].key, "person", { confidence: 2 }), /confidence 2 is not in \[0, 1\]/],
      [box(r1[0].key, "person", { source: "model:a b" }), /box source "model:a b" is not allowed/],
      [box(r1[0].key, "person", { imageWidth: -1 }), /image width -1 is not a positive whole number/],
    ];
    for (const [input, message] of refused) {
      await assert.rejects(labels.addBoxes([box(r1[1].key, "fine"), input]), (e) => {
        assert.ok(e instanceof BadInputError, String(e));
        assert.match(e.message, message);
        return true;
      });
    }
    await assert.rejects(
      labels.addBoxes([box("frames/none.jpg", "person")]),
      /frame key\(s\) not in the catalog/,
    );
    await assert.rejects(labels.addBoxes([]), /no boxes given/);
    const [b] = await labels.addBoxes([box(r1[1].key, "fine")]);
    await assert.rejects(
      labels.updateBox(b.id, { rect: { x: 0, y: 0, w: 641, h: 1 } }),
      /beyond the frame's width/,
    );
    await assert.rejects(labels.updateBox(b.id, {}), /nothing to change on the box/);
    assert.deepEqual(
      (await labels.list()).map((l) => l.name),
      ["fine"],
      "no class of a refused box was created",
    );
    assert.deepEqual((await labels.changes()).map((c) => c.action), ["box.add"]);
  });

  test("boxes: pre-labels (source model:NAME) start unaccepted until a person accepts them", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    const boxes = await labels.addBoxes([
      box(r1[0].key, "car", { source: "model:detr", confidence: 0.4 }),
      box(r1[0].key, "car", { source: "model:detr", confidence: 0.9, x: 100 }),
      box(r1[0].key, "car", { source: "import" }),
    ]);
    assert.deepEqual(boxes.map((b) => b.accepted), [false, false, true]);
    assert.equal(await labels.acceptBoxes({ ids: [boxes[1].id] }), 1);
    assert.deepEqual((await labels.boxesOf([r1[0].key])).get(r1[0].key)!.map((b) => b.accepted), [
      false,
      true,
      true,
    ]);
    assert.equal((await labels.updateBox(boxes[1].id, { accepted: false })).accepted, false, "and back");
  });

  // ---------------------------------------------------------------------------------------------- label set

  test("label set: define with colour and hotkey, change one field, a taken hotkey is a conflict", async ({ fixture }) => {
    const { labels } = await fixture();
    const person = await labels.defineLabel("person", { color: "#FF8800", hotkey: 1 }, { author: "ana" });
    assert.deepEqual({ ...person, id: 0 }, {
      id: 0,
      name: "person",
      frames: 0,
      clips: 0,
      boxes: 0,
      color: "#ff8800",
      hotkey: 1,
    });
    let entry = await last(labels);
    assert.deepEqual([entry.action, entry.target, entry.author], ["label.define", "label:person", "ana"]);
    assert.deepEqual(entry.detail, {
      name: "person",
      created: true,
      before: null,
      after: { color: "#ff8800", hotkey: 1 },
    });
    await assert.rejects(labels.defineLabel("car", { hotkey: 1 }), (e) => {
      assert.ok(e instanceof ConflictError);
      assert.equal(e.message, 'hotkey 1 belongs to "person": clear it there first, or pick another');
      return true;
    });
    assert.equal(await labels.exists("car"), false, "the refused call created nothing");
    assert.equal(
      (await labels.defineLabel("person", { hotkey: null })).color,
      "#ff8800",
      "the colour is kept",
    );
    entry = await last(labels);
    assert.deepEqual(entry.detail, {
      name: "person",
      created: false,
      before: { color: "#ff8800", hotkey: 1 },
      after: { color: "#ff8800", hotkey: null },
    });
    assert.equal((await labels.defineLabel("car", { hotkey: 1 })).hotkey, 1);
    assert.equal((await labels.defineLabel("person", { hotkey: 2 })).hotkey, 2);
    const entries = (await labels.changes()).length;
    await labels.defineLabel("person", { hotkey: 2 });
    await labels.defineLabel("person", {});
    assert.equal(
      (await labels.changes()).length,
      entries,
      "a definition that changes nothing is not journalled",
    );
    await assert.rejects(
      labels.defineLabel("person", { color: "orange" }),
      /colour "orange" is not of the form #rrggbb/,
    );
    await assert.rejects(labels.defineLabel("person", { hotkey: 10 }), /hotkey 10 is not a key 1 to 9/);
    await assert.rejects(labels.defineLabel("a/b", {}), /may not contain '\/'/);
    assert.deepEqual(
      (await labels.list()).map((l) => [l.name, l.color, l.hotkey]),
      [["car", null, 1], ["person", "#ff8800", 2]],
    );
    // Renaming keeps the look; the hotkey follows the label.
    await labels.renameLabel("car", "vehicle");
    assert.equal((await labels.list()).find((l) => l.name === "vehicle")?.hotkey, 1);
  });

  test("label set: defining a new label counts against labels.max_distinct", async ({ openCatalog }) => {
    const catalog = await openCatalog();
    const labels = catalog.labels({ limits: { maxDistinct: 1 } });
    await labels.defineLabel("one", {});
    await assert.rejects(labels.defineLabel("two", { color: "#000000" }), /would make 2 distinct labels/);
    assert.equal((await labels.list()).length, 1);
  });

  test("strict mode: only the label set's labels are used; a typo is refused naming it, the set and the fix", async ({ fixture }) => {
    const { catalog, r1 } = await fixture();
    const labels = catalog.labels({ limits: { strict: true } });
    assert.equal(labels.limits.strict, true);
    const message =
      'label "ldoor_closed" is not in the label set (labels.strict = true): use one of door_closed, person ' +
      "or add it to the set first (Labels page or POST /api/labels)";
    const typo = (e: unknown) => {
      assert.ok(e instanceof BadInputError, String(e));
      assert.equal(e.message, message);
      return true;
    };
    await labels.defineLabel("door_closed", {});
    await labels.defineLabel("person", { hotkey: 1 });
    await assert.rejects(labels.addLabels({ keys: [r1[0].key] }, ["door_closed", "ldoor_closed"]), typo);
    await assert.rejects(labels.changeLabels({ keys: [r1[0].key] }, { add: ["ldoor_closed"] }), typo);
    await assert.rejects(
      labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: "c", labels: ["ldoor_closed"] }),
      typo,
    );
    const clip = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0,
      name: "c",
      labels: ["person"],
    });
    await assert.rejects(labels.updateClip(clip.id, { addLabels: ["ldoor_closed"] }), typo);
    await assert.rejects(labels.addBoxes([box(r1[0].key, "ldoor_closed")]), typo);
    const [b] = await labels.addBoxes([box(r1[0].key, "door_closed")]);
    await assert.rejects(labels.updateBox(b.id, { label: "ldoor_closed" }), typo);
    assert.equal(
      await labels.addLabels({ keys: [r1[0].key] }, ["door_closed"]),
      1,
      "labels of the set are fine",
    );
    // Renaming changes the set deliberately, and is allowed.
    await labels.renameLabel("door_closed", "door-closed");
    assert.deepEqual((await labels.list()).map((l) => l.name), ["door-closed", "person"]);
    assert.deepEqual(
      (await labels.changes()).map((c) => c.action),
      ["label.define", "label.define", "clip.create", "box.add", "label.add", "label.rename"],
    );
    // The same catalog without strict mode creates labels as before.
    assert.equal(await catalog.labels().addLabels({ keys: [r1[0].key] }, ["ldoor_closed"]), 1);
  });

  // ---------------------------------------------------------------------------------------------- review

  test("review status: derived from own labels and boxes, set by a person, cleared back to derived", async ({ fixture }) => {
    const { catalog, labels, r1 } = await fixture();
    const keys = [r1[0].key, r1[1].key, r1[2].key, r1[3].key];
    await labels.addLabels({ keys: [r1[0].key] }, ["door"]);
    await labels.addBoxes([box(r1[1].key, "person")]);
    await labels.createClip({
      robotId: "r1",
      fromMs: T0 + 2000,
      toMs: T0 + 2000,
      name: "c",
      labels: ["hall"],
    });
    const statuses = async () => (await labels.reviews(keys)).map((r) => r.status);
    assert.deepEqual(
      await statuses(),
      ["labelled", "labelled", "unlabelled", "unlabelled"],
      "a clip's label does not make a frame labelled",
    );
    assert.deepEqual((await labels.reviews([r1[0].key]))[0], {
      key: r1[0].key,
      status: "labelled",
      author: null,
      atMs: null,
    });

    assert.equal(await labels.setReview([r1[0].key, r1[3].key], "reviewed", { author: "ana", nowMs: 77 }), 2);
    assert.deepEqual(await statuses(), ["reviewed", "labelled", "unlabelled", "reviewed"]);
    assert.deepEqual((await labels.reviews([r1[3].key]))[0], {
      key: r1[3].key,
      status: "reviewed",
      author: "ana",
      atMs: 77,
    });
    let entry = await last(labels);
    assert.deepEqual([entry.action, entry.target, entry.author], ["review.set", "frames", "ana"]);
    assert.deepEqual(entry.detail, { status: "reviewed", before: { [r1[0].key]: null, [r1[3].key]: null } });

    // Only frames whose status changes count and are journalled.
    assert.equal(await labels.setReview([r1[0].key, r1[1].key], "rejected", { author: "bob" }), 2);
    entry = await last(labels);
    assert.deepEqual(entry.detail, {
      status: "rejected",
      before: { [r1[0].key]: "reviewed", [r1[1].key]: null },
    });
    const entries = (await labels.changes()).length;
    assert.equal(await labels.setReview([r1[0].key], "rejected"), 0);
    assert.equal((await labels.changes()).length, entries);
    assert.equal(await labels.setReview([r1[0].key, r1[3].key], null), 2);
    assert.equal((await last(labels)).target, "frames");
    assert.deepEqual(await statuses(), ["labelled", "rejected", "unlabelled", "unlabelled"]);

    await assert.rejects(labels.setReview(["frames/none.jpg"], "reviewed"), NotFoundError);
    await assert.rejects(labels.setReview([r1[0].key], "labelled" as never), /cannot be set/);
    const hits = await catalog.withLabels([r1[0], r1[1], r1[2]]);
    assert.deepEqual(hits.map((h) => h.status), ["labelled", "rejected", "unlabelled"]);
  });

  // ---------------------------------------------------------------------------------------------- search

  test("search: box classes are labels; status and no-label filters; withLabels gives boxes and status", async ({ fixture }) => {
    const { catalog, labels, r1, r2 } = await fixture();
    await labels.addLabels({ keys: [r1[0].key] }, ["door"]);
    const [b] = await labels.addBoxes([box(r1[1].key, "person"), box(r1[0].key, "person", { x: 50 })]);
    await labels.addBoxes([box(r1[4].key, "car", { source: "model:m" })]);
    await labels.createClip({
      robotId: "r1",
      fromMs: T0 + 2000,
      toMs: T0 + 3000,
      name: "c",
      labels: ["hall"],
    });
    await labels.setReview([r1[5].key], "rejected");
    await labels.setReview([r1[1].key], "reviewed");
    const keys = async (filter: Parameters<Catalog["findFrames"]>[0]) =>
      (await catalog.findFrames(filter, { order: "oldest", limit: 100 })).map((f) => f.key).sort();
    const sorted = (rows: FrameRow[]) => rows.map((r) => r.key).sort();

    assert.deepEqual(await keys({ labels: ["person"] }), sorted([r1[0], r1[1]]));
    assert.deepEqual(await keys({ labels: ["door", "person"], allLabels: true }), [r1[0].key]);
    assert.deepEqual(await keys({ labels: ["person", "hall"], allLabels: true }), []);
    assert.equal(await catalog.countFrames({ labels: ["car"] }), 1, "an unaccepted box's class counts too");

    assert.deepEqual(await keys({ status: ["labelled"] }), sorted([r1[0], r1[4]]));
    assert.deepEqual(await keys({ status: ["reviewed", "rejected"] }), sorted([r1[1], r1[5]]));
    const unlabelled = [...r1.filter((_, i) => ![0, 1, 4, 5].includes(i)), ...r2];
    assert.deepEqual(await keys({ status: ["unlabelled"] }), sorted(unlabelled));
    assert.equal(await catalog.countFrames({ status: ["unlabelled"] }), unlabelled.length);
    assert.equal(
      await catalog.countFrames({ status: ["unlabelled", "labelled", "reviewed", "rejected"] }),
      13,
    );
    assert.equal(await catalog.countFrames({ status: ["unlabelled"], robots: ["r2"] }), 3);
    // No label: no own label, no box and in no labelled clip (a rejected frame without labels has none).
    const none = [...r1.filter((_, i) => ![0, 1, 2, 3, 4].includes(i)), ...r2];
    assert.deepEqual(await keys({ noLabel: true }), sorted(none));
    assert.equal(await catalog.countFrames({ noLabel: true }), none.length);
    assert.equal(await catalog.countFrames({ noLabel: true, status: ["rejected"] }), 1);
    await assert.rejects(
      catalog.countFrames({ status: ["done" as never] }),
      /review status "done" is unknown/,
    );

    // Newest first, page by page, with a status filter.
    const page1 = await catalog.findFrames({ status: ["unlabelled"], robots: ["r1"] }, {
      order: "newest",
      limit: 2,
    });
    const page2 = await catalog.findFrames({ status: ["unlabelled"], robots: ["r1"] }, {
      order: "newest",
      limit: 10,
      after: page1[1],
    });
    assert.deepEqual([...page1, ...page2].map((f) => f.seq), [9, 8, 7, 6, 3, 2]);

    const hits = await catalog.withLabels([r1[0], r1[1], r1[2]]);
    assert.deepEqual(hits.map((h) => h.labels), [["door", "person"], ["person"], ["hall"]]);
    assert.deepEqual(hits.map((h) => h.directLabels), [["door"], [], []]);
    assert.deepEqual(hits[1].boxes, [b]);
    assert.deepEqual(hits[0].boxes.map((x) => x.x), [50]);
    assert.deepEqual(hits.map((h) => h.status), ["labelled", "reviewed", "unlabelled"]);
  });

  test("pinning: a frame with a box is pinned, like a labelled one", async ({ fixture }) => {
    const { catalog, labels, r1 } = await fixture();
    const [b] = await labels.addBoxes([box(r1[0].key, "person")]);
    assert.equal(await catalog.isPinned(r1[0].key), true);
    assert.ok(!(await catalog.oldestLocalUnpinned(100)).some((f) => f.key === r1[0].key));
    const pinnedLast = await catalog.oldestLocalPinnedLast(100);
    assert.equal(pinnedLast[pinnedLast.length - 1].key, r1[0].key);
    await labels.deleteBoxes([b.id]);
    assert.equal(await catalog.isPinned(r1[0].key), false);
  });

  test("rename, merge and delete carry boxes; the journal keeps what undo needs", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.defineLabel("dor", { color: "#112233", hotkey: 4 });
    const [b1] = await labels.addBoxes([box(r1[0].key, "dor")]);
    await labels.renameLabel("dor", "door");
    assert.equal((await labels.getBox(b1.id))?.label, "door");
    assert.deepEqual((await last(labels)).detail, { from: "dor", to: "door", merged: false });

    await labels.addLabels({ keys: [r1[1].key, r1[2].key] }, ["gate"]);
    await labels.addLabels({ keys: [r1[2].key] }, ["door"]);
    const clipA = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0,
      name: "a",
      labels: ["gate"],
    });
    const clipB = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0,
      name: "b",
      labels: ["gate", "door"],
    });
    const [b2] = await labels.addBoxes([box(r1[3].key, "gate")]);
    await labels.defineLabel("gate", { hotkey: 5 });
    await labels.renameLabel("gate", "door", { merge: true, author: "ana" });
    assert.equal((await labels.getBox(b2.id))?.label, "door");
    assert.deepEqual((await last(labels)).detail, {
      from: "gate",
      to: "door",
      merged: true,
      oldKeys: [r1[1].key, r1[2].key],
      bothKeys: [r1[2].key],
      oldClips: [clipA.id, clipB.id],
      bothClips: [clipB.id],
      oldBoxes: [b2.id],
      definition: { color: null, hotkey: 5 },
    });
    assert.deepEqual(
      (await labels.list()).map((l) => [l.name, l.frames, l.clips, l.boxes, l.color, l.hotkey]),
      [["door", 2, 2, 2, "#112233", 4]],
    );

    assert.deepEqual(await labels.deleteLabel("door", { author: "bob" }), { frames: 2, clips: 2 });
    assert.equal(await labels.getBox(b1.id), null);
    assert.equal(await labels.getBox(b2.id), null);
    assert.deepEqual((await labels.boxesOf([r1[0].key, r1[3].key])).size, 0);
    const entry = await last(labels);
    assert.deepEqual([entry.action, entry.target], ["label.delete", "label:door"]);
    assert.deepEqual(entry.detail, {
      name: "door",
      frames: 2,
      clips: 2,
      boxes: 2,
      keys: [r1[1].key, r1[2].key],
      clipIds: [clipA.id, clipB.id],
      deletedBoxes: [
        { ...b1, label: "door" },
        { ...b2, label: "door" },
      ],
      definition: { color: "#112233", hotkey: 4 },
    });
    assert.deepEqual(await labels.list(), []);
    // The hotkey is free again.
    assert.equal((await labels.defineLabel("other", { hotkey: 4 })).hotkey, 4);
  });

  // ---------------------------------------------------------------------------------------------- undo

  test("undo: labels added and removed come off and back; an undo can itself be undone, not twice", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.addLabels({ keys: [r1[0].key] }, ["door"]);
    await labels.addLabels({ keys: [r1[0].key, r1[1].key] }, ["door", "person"], { author: "ana" });
    const add = await last(labels);
    assert.deepEqual(add.detail.addedKeys, { door: [r1[1].key], person: [r1[0].key, r1[1].key] });
    const undone = await undoChange(labels, add.id, { author: "bob" });
    assert.deepEqual(undone.map((c) => [c.action, c.author, c.detail.undoOf]), [
      ["label.remove", "bob", add.id],
      ["label.remove", "bob", add.id],
    ]);
    assert.deepEqual(await labels.labelsOf(r1[0].key), ["door"], "the label it had before stays");
    assert.deepEqual(await labels.labelsOf(r1[1].key), []);
    assert.equal((await labels.undoneBy(add.id))?.id, undone[0].id);
    assert.equal(await labels.undoneBy(undone[0].id), null);
    await assert.rejects(undoChange(labels, add.id), (e) => {
      assert.ok(e instanceof ConflictError);
      assert.equal(e.message, `change #${add.id} was already undone by #${undone[0].id}`);
      return true;
    });
    // Undo of the undo (each of its entries is an ordinary one): the labels it took off come back.
    const redo = await undoChange(labels, undone[1].id);
    assert.deepEqual(redo.map((c) => [c.action, c.detail.undoOf]), [["label.add", undone[1].id]]);
    assert.deepEqual(await labels.labelsOf(r1[1].key), ["person"]);

    // A span's labels.
    await labels.addLabels({ robotId: "r1", fromMs: T0 + 5000, toMs: T0 + 6000 }, ["hall"]);
    const span = await last(labels);
    await labels.removeLabels({ robotId: "r1", fromMs: T0, toMs: T0 + 5000 }, ["hall"]);
    const removal = await last(labels);
    assert.deepEqual(removal.detail.removedKeys, { hall: [r1[5].key] });
    await undoChange(labels, removal.id);
    assert.deepEqual(await labels.labelsOf(r1[5].key), ["hall"]);
    await undoChange(labels, span.id);
    assert.deepEqual(await labels.labelsOf(r1[5].key), []);
    assert.deepEqual(await labels.labelsOf(r1[6].key), []);
    const nothing = await labels.addLabels({ keys: [r1[0].key] }, ["door"]);
    assert.equal(nothing, 0);
    await assert.rejects(undoChange(labels, (await last(labels)).id), /changed nothing: nothing to undo/);
  });

  test("undo: refusals name the entry: unknown, already undone, without undo data, too large", async ({ fixture }) => {
    const { labels, raw, r1 } = await fixture();
    await assert.rejects(undoChange(labels, 424242), (e) => {
      assert.ok(e instanceof NotFoundError);
      assert.equal(e.message, "no change #424242 in the journal");
      return true;
    });
    assert.equal(await labels.change(424242), null);
    // Entries written before undo kept its data, and one too large to list its frames.
    const plant = (action: string, target: string, detail: unknown) =>
      raw.query("INSERT INTO changes (at_ms, author, action, target, detail) VALUES (?, NULL, ?, ?, ?)", [
        T0,
        action,
        target,
        JSON.stringify(detail),
      ]);
    await plant("label.add", r1[0].key, { labels: ["door"], added: 1 });
    await plant("label.add", "robot:r1", { labels: ["door"], robot: "r1", added: 20_000 });
    await plant("label.delete", "label:door", { name: "door", frames: 3, clips: 0 });
    await plant("box.delete", r1[0].key, {});
    const [old, large, deleted, boxes] = await labels.changes();
    assert.deepEqual(await labels.change(old.id), old);
    await assert.rejects(undoChange(labels, old.id), (e) => {
      assert.ok(e instanceof BadInputError);
      assert.equal(
        e.message,
        `change #${old.id} (label.add) cannot be undone: it was written before undo kept what it needs`,
      );
      return true;
    });
    await assert.rejects(
      undoChange(labels, large.id),
      new RegExp(
        `change #${large.id} \\(label.add\\) cannot be undone: it is too large to undo, remove the labels with a span instead`,
      ),
    );
    await assert.rejects(undoChange(labels, deleted.id), BadInputError);
    await assert.rejects(undoChange(labels, boxes.id), BadInputError);
    assert.equal((await labels.changes()).length, 4, "refused undos write nothing");
  });

  test("undo: rename back, and a merge split into the two labels again with frames, clips and boxes", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.addLabels({ keys: [r1[0].key] }, ["dor"]);
    await labels.renameLabel("dor", "door");
    const rename = await last(labels);
    await undoChange(labels, rename.id);
    assert.deepEqual((await labels.list()).map((l) => l.name), ["dor"]);

    await labels.addLabels({ keys: [r1[1].key, r1[2].key] }, ["gate"]);
    await labels.addLabels({ keys: [r1[2].key, r1[3].key] }, ["dor"]);
    const clipA = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0,
      name: "a",
      labels: ["gate"],
    });
    const clipB = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0,
      name: "b",
      labels: ["gate", "dor"],
    });
    const [gateBox, dorBox] = await labels.addBoxes([
      box(r1[4].key, "gate"),
      box(r1[4].key, "dor", { x: 100 }),
    ]);
    await labels.defineLabel("gate", { color: "#abcdef", hotkey: 7 });
    const before = await labels.list();
    await labels.renameLabel("gate", "dor", { merge: true });
    const merge = await last(labels);
    assert.deepEqual((await labels.list()).map((l) => l.name), ["dor"]);

    const undone = await undoChange(labels, merge.id, { author: "ana" });
    assert.ok(undone.length >= 4 && undone.every((c) => c.detail.undoOf === merge.id && c.author === "ana"));
    assert.deepEqual(
      (await labels.list()).map((l) => ({ ...l, id: 0 })),
      before.map((l) => ({ ...l, id: 0 })),
      "frames, clips, boxes, colour and hotkey as before the merge",
    );
    assert.deepEqual(await labels.labelsOf(r1[1].key), ["gate"]);
    assert.deepEqual(await labels.labelsOf(r1[2].key), ["dor", "gate"]);
    assert.deepEqual(await labels.labelsOf(r1[3].key), ["dor"]);
    assert.deepEqual((await labels.getClip(clipA.id))?.labels, ["gate"]);
    assert.deepEqual((await labels.getClip(clipB.id))?.labels, ["dor", "gate"]);
    assert.equal((await labels.getBox(gateBox.id))?.label, "gate");
    assert.equal((await labels.getBox(dorBox.id))?.label, "dor");
  });

  test("undo: a deleted label comes back with its frames, clips, boxes, colour and hotkey", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.defineLabel("person", { color: "#00ff00", hotkey: 2 });
    await labels.addLabels({ keys: [r1[0].key, r1[1].key] }, ["person"]);
    const clip = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0,
      name: "c",
      labels: ["person", "x"],
    });
    const boxes = await labels.addBoxes([
      box(r1[2].key, "person"),
      box(r1[2].key, "person", { source: "model:m", confidence: 0.5, x: 200 }),
      box(r1[3].key, "person", { source: "model:m", confidence: 0.7, x: 300 }),
    ]);
    await labels.acceptBoxes({ ids: [boxes[2].id] });
    await labels.deleteLabel("person");
    const deletion = await last(labels);
    await undoChange(labels, deletion.id);
    assert.deepEqual(
      (await labels.list()).map((l) => [l.name, l.frames, l.clips, l.boxes, l.color, l.hotkey]),
      [["person", 2, 1, 3, "#00ff00", 2], ["x", 0, 1, 0, null, null]],
    );
    assert.deepEqual((await labels.getClip(clip.id))?.labels, ["person", "x"]);
    const back = [...(await labels.boxesOf([r1[2].key, r1[3].key])).values()].flat();
    const strip = (b: (typeof boxes)[number]) => [b.key, b.label, b.x, b.source, b.confidence, b.accepted];
    assert.deepEqual(back.map(strip), [
      [r1[2].key, "person", 10, "human", null, true],
      [r1[2].key, "person", 200, "model:m", 0.5, false],
      [r1[3].key, "person", 300, "model:m", 0.7, true],
    ]);
    // A label made again under that name since blocks the undo.
    await labels.deleteLabel("person");
    const again = await last(labels);
    await labels.addLabels({ keys: [r1[5].key] }, ["person"]);
    await assert.rejects(undoChange(labels, again.id), /label "person" exists again/);
  });

  test("undo: label definitions go back; a new, unused label is deleted again", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.defineLabel("person", { color: "#010203" });
    const created = await last(labels);
    await labels.defineLabel("person", { color: "#040506", hotkey: 3 });
    const changed = await last(labels);
    await undoChange(labels, changed.id);
    assert.deepEqual((await labels.list()).map((l) => [l.name, l.color, l.hotkey]), [[
      "person",
      "#010203",
      null,
    ]]);
    await undoChange(labels, created.id);
    assert.deepEqual(await labels.list(), [], "created and unused: gone");

    await labels.defineLabel("car", { hotkey: 1 });
    const used = await last(labels);
    await labels.addLabels({ keys: [r1[0].key] }, ["car"]);
    await undoChange(labels, used.id);
    assert.deepEqual((await labels.list()).map((l) => [l.name, l.frames, l.hotkey]), [["car", 1, null]]);
  });

  test("undo: clips created, updated and deleted", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    const clip = await labels.createClip({
      robotId: "r1",
      fromMs: T0,
      toMs: T0 + 1000,
      name: "walk",
      labels: ["a"],
    });
    const create = await last(labels);
    assert.equal(create.detail.id, clip.id);
    await labels.updateClip(clip.id, { name: "run", toMs: T0 + 5000, note: "n", labels: ["b"] });
    const update = await last(labels);
    await undoChange(labels, update.id);
    const back = await labels.getClip(clip.id);
    assert.deepEqual(
      [back?.name, back?.fromMs, back?.toMs, back?.note, back?.labels],
      ["walk", T0, T0 + 1000, "", ["a"]],
    );
    await labels.deleteClip(clip.id);
    const deletion = await last(labels);
    assert.equal(deletion.detail.id, clip.id);
    const [recreate] = await undoChange(labels, deletion.id);
    assert.equal(recreate.action, "clip.create");
    const made = (await labels.listClips())[0];
    assert.deepEqual([made.name, made.robotId, made.fromMs, made.toMs, made.labels], [
      "walk",
      "r1",
      T0,
      T0 + 1000,
      ["a"],
    ]);
    assert.deepEqual(await labels.labelsOf(r1[1].key), ["a"]);
    await undoChange(labels, recreate.id);
    assert.deepEqual(await labels.listClips(), []);
    await assert.rejects(undoChange(labels, create.id), NotFoundError, "the clip it made is gone");
  });

  test("undo: boxes added, updated, accepted and deleted", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    const [a, b] = await labels.addBoxes([
      box(r1[0].key, "person"),
      box(r1[0].key, "car", {
        source: "model:m",
        confidence: 0.9,
        x: 0.5,
        y: 0.5,
        w: 0.1,
        h: 0.1,
        unit: "norm",
      }),
    ]);
    const add = await last(labels);
    await labels.updateBox(a.id, { label: "bike", rect: { x: 1, y: 2, w: 3, h: 4 } });
    const update = await last(labels);
    await labels.acceptBoxes({ ids: [b.id] });
    const accept = await last(labels);
    await undoChange(labels, accept.id);
    assert.equal((await labels.getBox(b.id))?.accepted, false);
    await undoChange(labels, update.id);
    const restored = (await labels.getBox(a.id))!;
    assert.deepEqual([restored.label, restored.x, restored.y, restored.w, restored.h], [
      "person",
      10,
      10,
      20,
      20,
    ]);

    await labels.deleteBoxes([a.id, b.id]);
    const deletion = await last(labels);
    const [readd] = await undoChange(labels, deletion.id);
    assert.equal(readd.action, "box.add");
    const back = (await labels.boxesOf([r1[0].key])).get(r1[0].key)!;
    assert.deepEqual(
      back.map((x) => [x.label, x.x, x.unit, x.source, x.confidence, x.accepted]),
      [["person", 10, "px", "human", null, true], ["car", 0.5, "norm", "model:m", 0.9, false]],
    );
    // The boxes the first add made are gone (deleted, then put back under new ids): nothing left to take away.
    await assert.rejects(undoChange(labels, add.id), /none of its boxes is left/);
    await undoChange(labels, readd.id);
    assert.equal((await labels.boxesOf([r1[0].key])).size, 0);
  });

  test("undo: review statuses go back to what each frame had", async ({ fixture }) => {
    const { labels, r1 } = await fixture();
    await labels.setReview([r1[0].key], "rejected");
    await labels.setReview([r1[0].key, r1[1].key, r1[2].key], "reviewed");
    const review = await last(labels);
    const undone = await undoChange(labels, review.id);
    assert.deepEqual(undone.map((c) => c.detail.status).sort(), [null, "rejected"].sort());
    assert.deepEqual(
      (await labels.reviews([r1[0].key, r1[1].key, r1[2].key])).map((r) => r.status),
      ["rejected", "unlabelled", "unlabelled"],
    );
  });

  /** Three clips of r1 (a, b, c) made by the store. */
  async function threeClips(labels: LabelStore) {
    const make = (name: string, i: number) =>
      labels.createClip({ robotId: "r1", fromMs: T0 + i * 1000, toMs: T0 + i * 1000 + 500, name });
    return [await make("a", 0), await make("b", 3), await make("c", 6)];
  }

  test("collections: created, listed, found by id and name, changed and deleted, each journalled", async ({ fixture }) => {
    const { labels } = await fixture(T0 + 5_000_000);
    const [a, b, c] = await threeClips(labels);
    const made = await labels.createCollection(
      { name: "docking attempts, week 47", note: "for the planner team", clipIds: [c.id, a.id, c.id] },
      { author: "ana" },
    );
    assert.deepEqual(
      [made.name, made.note, made.clipIds, made.author],
      ["docking attempts, week 47", "for the planner team", [c.id, a.id], "ana"],
      "in the order given, a repeated clip once",
    );
    assert.equal(typeof made.createdMs, "number");
    assert.deepEqual(await labels.getCollection(made.id), made);
    assert.deepEqual(await labels.collectionByName("docking attempts, week 47"), made);
    assert.equal(await labels.collectionByName("Docking attempts, week 47"), null, "names match exactly");
    assert.equal(await labels.getCollection(made.id + 1000), null);
    const empty = await labels.createCollection({ name: "an empty one" });
    assert.deepEqual([empty.note, empty.clipIds], ["", []]);
    assert.deepEqual((await labels.listCollections()).map((x) => x.name), [
      "an empty one",
      "docking attempts, week 47",
    ]);

    // Reorder, rename, re-note; then add (appended, those already in left where they are) and remove.
    const moved = await labels.updateCollection(made.id, {
      name: "docking, week 47",
      note: "",
      clipIds: [a.id, c.id],
    });
    assert.deepEqual([moved.name, moved.note, moved.clipIds], ["docking, week 47", "", [a.id, c.id]]);
    const edited = await labels.updateCollection(made.id, {
      addClipIds: [b.id, a.id],
      removeClipIds: [c.id],
    });
    assert.deepEqual(edited.clipIds, [a.id, b.id]);
    assert.deepEqual(await labels.getCollection(made.id), edited);

    await labels.deleteCollection(empty.id, { author: "bob" });
    assert.equal(await labels.getCollection(empty.id), null);
    assert.deepEqual((await labels.listCollections()).map((x) => x.id), [made.id]);
    assert.ok(await labels.getClip(a.id), "clips stay when their collection goes");

    const log = await labels.changes({ target: `collection:${made.id}` });
    assert.deepEqual(log.map((x) => [x.action, x.author]), [
      ["collection.create", "ana"],
      ["collection.update", null],
      ["collection.update", null],
    ]);
    assert.deepEqual(log[0].detail, {
      id: made.id,
      collection: { name: "docking attempts, week 47", note: "for the planner team", clipIds: [c.id, a.id] },
    });
    assert.deepEqual(log[2].detail, {
      id: made.id,
      before: { name: "docking, week 47", note: "", clipIds: [a.id, c.id] },
      after: { name: "docking, week 47", note: "", clipIds: [a.id, b.id] },
    });
    assert.deepEqual((await last(labels)).action, "collection.delete");
    assert.deepEqual((await last(labels)).target, `collection:${empty.id}`);
  });

  test("collections: refusals name the value (taken name, unknown clips and ids, bad names); nothing changes", async ({ fixture }) => {
    const { labels } = await fixture();
    const [a, b] = await threeClips(labels);
    const one = await labels.createCollection({ name: "one", clipIds: [a.id] });
    const two = await labels.createCollection({ name: "two" });
    const before = (await labels.changes()).length;
    await assert.rejects(labels.createCollection({ name: "one" }), (e: Error) => {
      assert.ok(e instanceof ConflictError);
      assert.match(e.message, /"one" exists already \(collection \d+\)/);
      return true;
    });
    await assert.rejects(labels.updateCollection(two.id, { name: "one" }), ConflictError);
    await assert.rejects(labels.createCollection({ name: "x", clipIds: [a.id, 9999, 8888] }), (e: Error) => {
      assert.ok(e instanceof NotFoundError);
      assert.match(e.message, /2 clips do not exist: 9999, 8888/);
      return true;
    });
    await assert.rejects(labels.updateCollection(one.id, { addClipIds: [7777] }), /no clip 7777/);
    await assert.rejects(labels.updateCollection(4242, { name: "z" }), NotFoundError);
    await assert.rejects(labels.deleteCollection(4242), /no collection 4242/);
    await assert.rejects(labels.createCollection({ name: "  " }), BadInputError);
    await assert.rejects(labels.createCollection({ name: "a\nb" }), /control character/);
    await assert.rejects(labels.createCollection({ name: "n".repeat(201) }), /at most 200/);
    await assert.rejects(labels.createCollection({ name: "y", clipIds: [1.5] }), /not a clip id/);
    await assert.rejects(
      labels.createCollection({ name: "y", clipIds: "1" as unknown as number[] }),
      /list of clip ids/,
    );
    assert.equal((await labels.changes()).length, before, "a refused change leaves no journal entry");
    assert.deepEqual((await labels.getCollection(one.id))?.clipIds, [a.id]);
    assert.equal(await labels.collectionByName("x"), null);
    // Renaming a collection to its own name is fine; removing a clip that is not in it changes nothing.
    assert.deepEqual(
      (await labels.updateCollection(one.id, { name: "one", removeClipIds: [b.id] })).clipIds,
      [
        a.id,
      ],
    );
  });

  test("collections: deleting a clip takes it out of its collections; undo puts it back in its place", async ({ fixture }) => {
    const { labels } = await fixture();
    const [a, b, c] = await threeClips(labels);
    const first = await labels.createCollection({ name: "first", clipIds: [a.id, b.id, c.id] });
    const second = await labels.createCollection({ name: "second", clipIds: [b.id] });
    const other = await labels.createCollection({ name: "other", clipIds: [a.id] });
    await labels.deleteClip(b.id);
    const deletion = await last(labels);
    assert.deepEqual(deletion.detail.collections, [{ id: first.id, position: 1 }, {
      id: second.id,
      position: 0,
    }]);
    assert.deepEqual((await labels.getCollection(first.id))?.clipIds, [a.id, c.id]);
    assert.deepEqual((await labels.getCollection(second.id))?.clipIds, []);
    assert.deepEqual((await labels.getCollection(other.id))?.clipIds, [a.id]);

    const undone = await undoChange(labels, deletion.id);
    assert.deepEqual(undone.map((x) => x.action), ["clip.create", "collection.update", "collection.update"]);
    const back = (await labels.listClips()).find((x) => x.name === "b")!;
    assert.notEqual(back.id, b.id, "a clip put back gets a new id");
    assert.deepEqual((await labels.getCollection(first.id))?.clipIds, [a.id, back.id, c.id]);
    assert.deepEqual((await labels.getCollection(second.id))?.clipIds, [back.id]);
    assert.deepEqual((await labels.getCollection(other.id))?.clipIds, [a.id]);
    // Undoing the undo deletes the clip again, out of both collections.
    const [again] = await undoChange(labels, undone[0].id);
    assert.equal(again.action, "clip.delete");
    assert.deepEqual((await labels.getCollection(first.id))?.clipIds, [a.id, c.id]);
  });

  test("undo: collections created, updated and deleted", async ({ fixture }) => {
    const { labels } = await fixture();
    const [a, b, c] = await threeClips(labels);
    const made = await labels.createCollection({ name: "w47", note: "n", clipIds: [a.id, b.id] });
    const create = await last(labels);
    await labels.updateCollection(made.id, { name: "w48", note: "", clipIds: [c.id, a.id] });
    const update = await last(labels);
    const [reverse] = await undoChange(labels, update.id);
    assert.equal(reverse.action, "collection.update");
    const back = (await labels.getCollection(made.id))!;
    assert.deepEqual([back.name, back.note, back.clipIds], ["w47", "n", [a.id, b.id]]);
    // A clip deleted since cannot go back in: the others do.
    await labels.updateCollection(made.id, { clipIds: [c.id] });
    const swap = await last(labels);
    await labels.deleteClip(b.id);
    await undoChange(labels, swap.id);
    assert.deepEqual((await labels.getCollection(made.id))?.clipIds, [a.id]);

    await labels.deleteCollection(made.id);
    const deletion = await last(labels);
    const [recreate] = await undoChange(labels, deletion.id);
    assert.equal(recreate.action, "collection.create");
    const again = (await labels.collectionByName("w47"))!;
    assert.deepEqual([again.note, again.clipIds], ["n", [a.id]]);
    assert.notEqual(again.id, made.id, "a collection put back gets a new id");
    await assert.rejects(undoChange(labels, create.id), NotFoundError, "the collection it made is gone");
    await undoChange(labels, recreate.id);
    assert.deepEqual(await labels.listCollections(), []);
    // A name taken since: undo of the delete is refused, naming it.
    await labels.createCollection({ name: "w47" });
    await assert.rejects(undoChange(labels, deletion.id), ConflictError);
  });
}
