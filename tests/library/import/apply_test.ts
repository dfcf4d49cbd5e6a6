/**
 * applyImport on a real SQLite catalog: frames matched by every kind of name, boxes added with source `import`,
 * re-imports idempotent (nothing written, nothing journalled), a moved box updated in place, a dropped one
 * deleted, people's boxes never touched, pre-labels accepted when confirmed, strict mode, dry runs, skips.
 */
import assert from "node:assert/strict";
import type { Box, Catalog, FrameRow, LabelStore } from "../../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../../src/catalog/sqlite.ts";
import type { ParsedImport } from "../../../src/library/import/annotations.ts";
import { type ApplyDeps, applyImport, candidateKeys } from "../../../src/library/import/apply.ts";
import { parseCoco } from "../../../src/library/import/coco.ts";
import { parseCvat } from "../../../src/library/import/cvat.ts";
import { parseLabelStudio } from "../../../src/library/import/label_studio.ts";
import { parseYolo } from "../../../src/library/import/yolo.ts";
import { flatImageName } from "../../../src/library/formats/yolo.ts";
import { imageName } from "../../../src/library/image_names.ts";
import { frameRow, T0 } from "../../support/rows.ts";

interface World {
  catalog: Catalog;
  store: LabelStore;
  deps: ApplyDeps;
  rows: FrameRow[];
  /** Frames whose size was read from "the store". */
  sized: string[];
  close(): Promise<void>;
}

/** Three frames of reachy-001 (1920x1080, 1920x1080, 640x480) and one with no JPEG. */
async function world(strict = false): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "import-" });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  const rows = [0, 1, 2, 3].map((i) => frameRow("reachy-001", T0 + i * 100, i + 1));
  await catalog.upsertMany(rows);
  const store = catalog.labels({ limits: { strict } });
  const sizes = new Map([
    [rows[0].key, { width: 1920, height: 1080 }],
    [rows[1].key, { width: 1920, height: 1080 }],
    [rows[2].key, { width: 640, height: 480 }],
  ]);
  const sized: string[] = [];
  const deps: ApplyDeps = {
    frame: (key) => catalog.get(key),
    imageSize: (row) => {
      sized.push(row.key);
      return Promise.resolve(sizes.get(row.key) ?? null);
    },
    store,
  };
  return {
    catalog,
    store,
    deps,
    rows,
    sized,
    close: async () => {
      await catalog.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function boxesOf(store: LabelStore, key: string): Promise<Box[]> {
  return (await store.boxesOf([key])).get(key) ?? [];
}

async function journalLength(store: LabelStore): Promise<number> {
  return (await store.changes({ limit: 100_000 })).length;
}

const coco = (images: unknown[], annotations: unknown[]): ParsedImport =>
  parseCoco([{
    name: "instances_default.json",
    json: { categories: [{ id: 1, name: "door" }, { id: 2, name: "person" }], images, annotations },
  }]);

Deno.test("candidate keys: flat YOLO name, key, image name, path tails; nothing outside", () => {
  const key = "frames/reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg";
  const name = imageName(key);
  assert.deepEqual(candidateKeys(key), [key, "frames/2026-11-30/20261130T120000.000Z_000001.jpg"]);
  assert.equal(candidateKeys(name)[0], key);
  assert.equal(candidateKeys(`labels/train/${flatImageName(key).replace(".jpg", ".txt")}`)[0], key);
  assert.ok(candidateKeys(`/tmp/export/images/default/${name}`).includes(key));
  assert.ok(candidateKeys(`labels/reachy-001/2026-11-30/20261130T120000.000Z_000001.txt`).includes(key));
  assert.deepEqual(candidateKeys("../x/../y.jpg").filter((k) => k.includes("..")), []);
});

Deno.test("COCO import: boxes with source import, tags as labels; the same file again changes nothing", async () => {
  const w = await world();
  try {
    const [a, b, c] = w.rows;
    const parsed = coco(
      [
        { id: 1, file_name: imageName(a.key), width: 1920, height: 1080, labels: ["night"] },
        { id: 2, file_name: `images/default/${imageName(b.key)}`, width: 1920, height: 1080 },
        { id: 3, file_name: c.key, width: 640, height: 480 },
        { id: 4, file_name: "reachy-001/2026-11-30/nothing.jpg", width: 1, height: 1 },
      ],
      [
        { id: 1, image_id: 1, category_id: 2, bbox: [10, 20, 30, 40] },
        { id: 2, image_id: 1, category_id: 1, bbox: [1900, 1000, 40, 40] }, // cut to the image
        { id: 3, image_id: 2, category_id: 2, bbox: [0, 0, 1920, 1080] },
      ],
    );
    const first = await applyImport(w.deps, parsed, { author: "ann" });
    assert.deepEqual(
      { ...first, skipped: first.skipped.length },
      {
        format: "coco",
        dryRun: false,
        images: 4,
        frames: 3,
        added: 3,
        updated: 0,
        deleted: 0,
        accepted: 0,
        unchanged: 0,
        clipped: 1,
        labels: 1,
        skipped: 1,
      },
    );
    assert.match(
      first.skipped[0].reason,
      /images\[3\] \(id 4\): no frame in the catalog matches \(tried frames\/reachy-001/,
    );
    const boxes = await boxesOf(w.store, a.key);
    assert.deepEqual(
      boxes.map((x) => [x.label, x.x, x.y, x.w, x.h, x.unit, x.source, x.accepted, x.author]),
      [
        ["person", 10, 20, 30, 40, "px", "import", true, "ann"],
        ["door", 1900, 1000, 20, 40, "px", "import", true, "ann"],
      ],
    );
    assert.deepEqual(await w.store.labelsOf(a.key), ["night"]);
    const entries = await journalLength(w.store);
    const sizedBefore = w.sized.length;
    const again = await applyImport(w.deps, parsed, { author: "ann" });
    assert.deepEqual([
      again.added,
      again.updated,
      again.deleted,
      again.accepted,
      again.labels,
      again.unchanged,
    ], [
      0,
      0,
      0,
      0,
      0,
      3,
    ]);
    assert.equal(await journalLength(w.store), entries, "a re-import writes no journal entry");
    assert.deepEqual((await boxesOf(w.store, a.key)).map((x) => x.id), boxes.map((x) => x.id));
    // Frames with boxes are sized from them, frame c (no box) from its JPEG again.
    assert.deepEqual(w.sized.slice(sizedBefore), [c.key]);
  } finally {
    await w.close();
  }
});

Deno.test("re-import with a moved box: updated in place; a dropped box deleted; people's boxes never touched", async () => {
  const w = await world();
  try {
    const [a] = w.rows;
    const human = (await w.store.addBoxes([
      { key: a.key, label: "person", x: 500, y: 500, w: 10, h: 10, imageWidth: 1920, imageHeight: 1080 },
      { key: a.key, label: "door", x: 1, y: 1, w: 10, h: 10, imageWidth: 1920, imageHeight: 1080 },
    ]))[0];
    const image = { id: 1, file_name: imageName(a.key), width: 1920, height: 1080 };
    await applyImport(
      w.deps,
      coco([image], [
        { image_id: 1, category_id: 2, bbox: [10, 20, 30, 40] },
        { image_id: 1, category_id: 2, bbox: [100, 100, 30, 40] },
        { image_id: 1, category_id: 1, bbox: [1, 1, 10, 10] }, // a person's box: found, not added
      ]),
    );
    const before = await boxesOf(w.store, a.key);
    assert.equal(before.length, 4);
    const [, , p1, p2] = before;
    const entries = await journalLength(w.store);
    const moved = await applyImport(
      w.deps,
      coco([image], [
        { image_id: 1, category_id: 2, bbox: [12, 22, 30, 40] }, // p1 moved by 2 px
        { image_id: 1, category_id: 1, bbox: [1, 1, 10, 10] },
        { image_id: 1, category_id: 1, bbox: [300, 300, 5, 5] }, // new
        // p2 dropped; the person's box (500, 500) is not in the file and stays
      ]),
    );
    assert.deepEqual([moved.added, moved.updated, moved.deleted, moved.unchanged], [1, 1, 1, 1]);
    const after = await boxesOf(w.store, a.key);
    const byId = new Map(after.map((b) => [b.id, b]));
    assert.deepEqual([byId.get(p1.id)!.x, byId.get(p1.id)!.y], [12, 22], "moved box keeps its id");
    assert.equal(byId.has(p2.id), false);
    assert.ok(byId.has(human.id));
    assert.equal(after.length, 4);
    const changes = (await w.store.changes({ afterId: 0, limit: 1000 })).slice(entries);
    assert.deepEqual(changes.map((c) => c.action).sort(), ["box.add", "box.delete", "box.update"]);
    assert.equal(changes.at(-1)!.action, "box.delete", "deletions come after the additions");
    // And once more: nothing.
    const third = await applyImport(
      w.deps,
      coco([image], [
        { image_id: 1, category_id: 2, bbox: [12, 22, 30, 40] },
        { image_id: 1, category_id: 1, bbox: [1, 1, 10, 10] },
        { image_id: 1, category_id: 1, bbox: [300, 300, 5, 5] },
      ]),
    );
    assert.deepEqual([third.added, third.updated, third.deleted, third.unchanged], [0, 0, 0, 3]);
    // An image listed without boxes clears the import's boxes there, not the person's.
    const cleared = await applyImport(w.deps, coco([image], []));
    assert.equal(cleared.deleted, 2);
    assert.deepEqual((await boxesOf(w.store, a.key)).map((b) => b.source), ["human", "human"]);
  } finally {
    await w.close();
  }
});

Deno.test("COCO ids with our attributes.source name the box: a person's box moved in the file moves in place", async () => {
  const w = await world();
  try {
    const [a] = w.rows;
    const [mine] = await w.store.addBoxes([
      { key: a.key, label: "person", x: 10, y: 10, w: 20, h: 20, imageWidth: 1920, imageHeight: 1080 },
    ]);
    const image = { id: 1, file_name: imageName(a.key), width: 1920, height: 1080 };
    const ann = (source: string, x: number) => ({
      id: mine.id,
      image_id: 1,
      category_id: 2,
      bbox: [x, 10, 20, 20],
      attributes: { source },
    });
    // Another source under the same id is not our box: a new import box, the person's box stays.
    const other = await applyImport(w.deps, coco([image], [ann("import", 50)]));
    assert.deepEqual([other.added, other.updated], [1, 0]);
    const moved = await applyImport(w.deps, coco([image], [ann("import", 50), ann("human", 15)]));
    assert.deepEqual([moved.added, moved.updated, moved.deleted, moved.unchanged], [0, 1, 0, 1]);
    const box = (await w.store.getBox(mine.id))!;
    assert.deepEqual([box.x, box.source], [15, "human"]);
    const again = await applyImport(w.deps, coco([image], [ann("import", 50), ann("human", 15)]));
    assert.deepEqual([again.added, again.updated, again.deleted, again.unchanged], [0, 0, 0, 2]);
  } finally {
    await w.close();
  }
});

Deno.test("a frame label a clip already gives the frame is not added as its own", async () => {
  const w = await world();
  try {
    const [a, b] = w.rows;
    await w.store.createClip({
      robotId: a.robotId,
      fromMs: a.timestampMs,
      toMs: a.timestampMs,
      name: "c",
      labels: ["docking"],
    });
    const parsed = coco([
      { id: 1, file_name: imageName(a.key), width: 1920, height: 1080, labels: ["docking"] },
      { id: 2, file_name: imageName(b.key), width: 1920, height: 1080, labels: ["docking"] },
    ], []);
    assert.equal((await applyImport(w.deps, parsed)).labels, 1);
    const added = (await w.store.changes({ newest: true, limit: 1 }))[0];
    assert.deepEqual([added.action, added.target], ["label.add", b.key]);
    assert.equal((await applyImport(w.deps, parsed)).labels, 0);
  } finally {
    await w.close();
  }
});

Deno.test("YOLO and CVAT imports onto the same frames; a size the stored JPEG contradicts is refused per image", async () => {
  const w = await world();
  try {
    const [a, b, c] = w.rows;
    const yolo = parseYolo([
      {
        name: `labels/train/${flatImageName(a.key).replace(".jpg", ".txt")}`,
        text: "0 0.5 0.5 0.25 0.5 0.9\n",
      },
      { name: `labels/val/${flatImageName(c.key).replace(".jpg", ".txt")}`, text: "" },
    ], { classes: ["person"] });
    const y1 = await applyImport(w.deps, yolo);
    assert.deepEqual([y1.frames, y1.added], [2, 1]);
    const [yb] = await boxesOf(w.store, a.key);
    assert.deepEqual([yb.x, yb.y, yb.w, yb.h, yb.unit, yb.confidence], [0.375, 0.25, 0.25, 0.5, "norm", 0.9]);
    assert.equal((await applyImport(w.deps, yolo)).unchanged, 1);

    const cvat = parseCvat([{
      name: "annotations.xml",
      text: `<annotations><version>1.1</version>
<image id="0" name="${
        imageName(b.key)
      }" width="1920" height="1080"><box label="door" xtl="1.5" ytl="2" xbr="11.5" ybr="12"/><tag label="day"/></image>
<image id="1" name="${
        imageName(c.key)
      }" width="1920" height="1080"><box label="door" xtl="1" ytl="2" xbr="3" ybr="4"/></image>
<image id="2" name="${
        imageName(a.key)
      }" width="1920" height="1080"><box label="person" xtl="720" ytl="270" xbr="1200" ybr="810"/></image>
</annotations>`,
    }]);
    const c1 = await applyImport(w.deps, cvat);
    // b: one box and a tag; c: 640x480 stored, the file says 1920x1080: left out; a: the YOLO box in pixels (same box).
    assert.deepEqual([c1.added, c1.unchanged, c1.labels], [1, 1, 1]);
    assert.match(
      c1.skipped.map((s) => s.reason).join("\n"),
      /says 1920x1080 but the stored JPEG of .* is 640x480/,
    );
    assert.deepEqual(await w.store.labelsOf(b.key), ["day"]);
    const again = await applyImport(w.deps, cvat);
    assert.deepEqual([again.added, again.updated, again.deleted, again.labels, again.unchanged], [
      0,
      0,
      0,
      0,
      2,
    ]);
  } finally {
    await w.close();
  }
});

Deno.test("Label Studio import: our ids update boxes, confirmed pre-labels accepted, predictions as model boxes", async () => {
  const w = await world();
  try {
    const [a, b] = w.rows;
    const [mine, pre] = await w.store.addBoxes([
      { key: a.key, label: "person", x: 192, y: 108, w: 192, h: 108, imageWidth: 1920, imageHeight: 1080 },
      {
        key: a.key,
        label: "door",
        x: 0,
        y: 0,
        w: 0.1,
        h: 0.1,
        unit: "norm",
        imageWidth: 1920,
        imageHeight: 1080,
        source: "model:yolo",
        confidence: 0.7,
      },
    ]);
    assert.equal(pre.accepted, false);
    const rect = (id: string, label: string, x: number, y: number, wd: number, h: number) => ({
      id,
      type: "rectanglelabels",
      from_name: "label",
      to_name: "image",
      value: { x, y, width: wd, height: h, rotation: 0, rectanglelabels: [label] },
    });
    const tasks = [
      {
        id: 1,
        data: { image: `http://x/api/frames/${encodeURIComponent(a.key)}/image` },
        annotations: [{
          result: [
            rect(`fb${mine.id}`, "person", 20, 10, 10, 10), // moved in Label Studio (was 10, 10)
            rect("new1", "door", 0, 0, 10, 10), // the pre-label, confirmed
            { id: "c", type: "choices", value: { choices: ["indoor"] } },
          ],
        }],
      },
      {
        id: 2,
        data: { image: `/data/local-files/?d=export/${imageName(b.key)}` },
        predictions: [{ model_version: "detr", score: 0.6, result: [rect("p", "person", 50, 50, 10, 10)] }],
      },
    ];
    const parsed = parseLabelStudio(tasks, "ls.json");
    const first = await applyImport(w.deps, parsed);
    assert.deepEqual([first.updated, first.accepted, first.added, first.labels], [1, 1, 1, 1]);
    const moved = (await w.store.getBox(mine.id))!;
    assert.deepEqual([moved.x, moved.y, moved.w, moved.h, moved.unit, moved.source], [
      0.2,
      0.1,
      0.1,
      0.1,
      "norm",
      "human",
    ]);
    assert.equal((await w.store.getBox(pre.id))!.accepted, true);
    const [predicted] = await boxesOf(w.store, b.key);
    assert.deepEqual([predicted.source, predicted.accepted, predicted.confidence], [
      "model:detr",
      false,
      0.6,
    ]);
    const entries = await journalLength(w.store);
    const again = await applyImport(w.deps, parsed);
    assert.deepEqual([again.added, again.updated, again.accepted, again.deleted, again.labels], [
      0,
      0,
      0,
      0,
      0,
    ]);
    assert.equal(await journalLength(w.store), entries);
  } finally {
    await w.close();
  }
});

Deno.test("strict mode refuses unknown classes before writing; a dry run writes nothing; a bad source refused", async () => {
  const w = await world(true);
  try {
    const [a] = w.rows;
    await w.store.defineLabel("person", {});
    const parsed = coco([{ id: 1, file_name: imageName(a.key), width: 1920, height: 1080 }], [
      { image_id: 1, category_id: 2, bbox: [1, 1, 2, 2] },
      { image_id: 1, category_id: 1, bbox: [1, 1, 2, 2] },
    ]);
    await assert.rejects(() => applyImport(w.deps, parsed), /label "door" is not in the label set/);
    assert.deepEqual(await boxesOf(w.store, a.key), []);
    await w.store.defineLabel("door", {});
    const entries = await journalLength(w.store);
    const dry = await applyImport(w.deps, parsed, { dryRun: true });
    assert.deepEqual([dry.dryRun, dry.added], [true, 2]);
    assert.equal(await journalLength(w.store), entries);
    assert.deepEqual(await boxesOf(w.store, a.key), []);
    await assert.rejects(() => applyImport(w.deps, parsed, { source: "human" }), /not "human"/);
  } finally {
    await w.close();
  }
});
