/**
 * The dataset formats end to end on a SQLite catalog and JPEGs in memory (no servers): boxes in both units, a
 * model's unaccepted box, whole-frame labels from the frame and from a clip, two robots, a split; each export read
 * back by Datumaro (COCO, YOLO, CVAT) and pycocotools, and compared with the catalog. The stack test
 * (export_formats.stack_test.ts) does the same with real frames from S3, the archive and the HTTP API.
 */
import assert from "node:assert/strict";
import type { Box, FrameRow } from "../../src/catalog/catalog.ts";
import { boxNormalised, boxPixels } from "../../src/catalog/boxes.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { type ExportFormat, exportFrames, frameTags, READ_AHEAD } from "../../src/library/export.ts";
import { imageName } from "../../src/library/image_names.ts";
import { searchAll } from "../../src/library/search.ts";
import { blockKey, splitSpec } from "../../src/library/split.ts";
import { flatImageName, keyOfFlatName } from "../../src/library/formats/yolo.ts";
import { greyJpeg } from "../support/images.ts";
import { frameRow, T0 } from "../support/rows.ts";
import { checkExport } from "../support/python.ts";

const TOL = 1e-6;
const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= TOL, `${what}: ${a} vs ${b}`);
/**
 * Datumaro keeps shape coordinates as float32 rounded to 0.01 px (COORDINATE_ROUNDING_DIGITS = 2 in
 * datumaro/components/annotation.py) and gives a box's size as the difference of two rounded corners: what it
 * reads is compared within that resolution. pycocotools and the files themselves are compared within 1e-6.
 */
const dmNear = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 0.0101 + Math.abs(b) * 2.4e-7, `${what}: Datumaro ${a} vs ${b}`);

interface Bed {
  dir: string;
  catalog: SqliteCatalog;
  rows: FrameRow[];
  jpegs: Map<string, Uint8Array>;
  close(): Promise<void>;
}

/** 24 frames of two robots (two image sizes), 4 minutes apart; boxes, labels and a clip on some. */
async function bed(): Promise<Bed> {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-formats-" });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  const rows: FrameRow[] = [];
  const jpegs = new Map<string, Uint8Array>();
  for (let i = 0; i < 24; i++) {
    const robot = i % 2 ? "reachy-001" : "bracket__002"; // a robot id with "__" in it (flat YOLO names)
    const row = frameRow(robot, T0 + i * 240_000, i);
    const [w, h] = robot === "reachy-001" ? [64, 48] : [80, 60];
    const jpeg = greyJpeg(w, h, (x, y) => (x * (i + 1) + y * 7) % 256);
    row.size = jpeg.length;
    rows.push(row);
    jpegs.set(row.key, jpeg);
  }
  await catalog.upsertMany(rows);
  const labels = catalog.labels();
  const size = (r: FrameRow) =>
    r.robotId === "reachy-001" ? { imageWidth: 64, imageHeight: 48 } : { imageWidth: 80, imageHeight: 60 };
  await labels.addBoxes(
    rows.flatMap((r, i) =>
      i % 3 === 2 ? [] : [
        { key: r.key, label: "person", x: 1.25 + i, y: 2.5, w: 10.125, h: 20.0625, ...size(r) },
        {
          key: r.key,
          label: i % 2 ? "door" : "forklift",
          x: 0.1 + i / 100,
          y: 0.2,
          w: 0.3,
          h: 1 / 3,
          unit: "norm" as const,
          ...size(r),
        },
      ]
    ),
    { author: "ann" },
  );
  // A model's box nobody accepted (left out of COCO, YOLO, CVAT), and one accepted.
  const [proposed] = await labels.addBoxes([
    {
      key: rows[0].key,
      label: "ghost",
      x: 0,
      y: 0,
      w: 5,
      h: 5,
      ...size(rows[0]),
      source: "model:yolo8",
      confidence: 0.4,
    },
  ]);
  const [taken] = await labels.addBoxes([
    {
      key: rows[1].key,
      label: "person",
      x: 3,
      y: 4,
      w: 5,
      h: 6,
      ...size(rows[1]),
      source: "model:yolo8",
      confidence: 0.9,
    },
  ]);
  await labels.acceptBoxes({ ids: [taken.id] });
  assert.equal(proposed.accepted, false);
  await labels.addLabels({ keys: [rows[3].key, rows[4].key] }, ["night"]);
  await labels.createClip({
    robotId: "reachy-001",
    fromMs: T0 + 4 * 240_000,
    toMs: T0 + 9 * 240_000,
    name: "dock",
    labels: ["docking"],
  });
  return {
    dir,
    catalog,
    rows,
    jpegs,
    async close() {
      await catalog.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** What the catalog says each exported frame holds. */
async function expected(b: Bed) {
  const hits = await Array.fromAsync(searchAll(b.catalog, {}));
  return new Map(hits.map((h) => [h.frame.key, {
    hit: h,
    boxes: h.boxes.filter((x) => x.accepted),
    tags: frameTags(h),
  }]));
}

const classesOf = (boxes: Box[]) => [...new Set(boxes.map((b) => b.label))].sort();

Deno.test("COCO, YOLO and CVAT exports as Datumaro and pycocotools read them: counts, classes, boxes, tags, split", async (t) => {
  const b = await bed();
  try {
    const want = await expected(b);
    const allBoxes = [...want.values()].flatMap((w) => w.boxes);
    const classes = classesOf(allBoxes);
    assert.deepEqual(classes, ["door", "forklift", "person"], "ghost (unaccepted) is no class");
    const fetch = (key: string) => Promise.resolve(b.jpegs.get(key) ?? null);
    const split = splitSpec("train=0.5,val=0.25,test=0.25", { seed: 3, blockMinutes: 10 });
    const run = (format: ExportFormat, out: string, withSplit = true) =>
      exportFrames(b.catalog, `${b.dir}/${out}`, { format, fetch, split: withSplit ? split : null });

    const splitOf = new Map<string, string>();
    await t.step("coco", async () => {
      const summary = await run("coco", "coco");
      assert.equal(summary.frames, 24);
      assert.equal(summary.boxes, allBoxes.length);
      assert.equal(summary.unaccepted, 1);
      assert.deepEqual(summary.classes, classes);
      const dm = await checkExport(["datumaro", "coco_instances"], `${b.dir}/coco`, "unit-coco-datumaro");
      assert.deepEqual(dm.classes, classes);
      assert.equal(dm.items, 24);
      assert.deepEqual(dm.subsets, summary.perSplit);
      for (const item of dm.item_list) {
        const key = `frames/${item.id}.jpg`;
        const w = want.get(key)!;
        assert.ok(w, `Datumaro item ${item.id} is a frame`);
        assert.ok(item.image_exists, item.id);
        splitOf.set(key, item.subset);
        assert.equal(item.boxes.length, w.boxes.length, key);
        for (const box of w.boxes) {
          const px = boxPixels(box);
          const found = item.boxes.find((x: { label: string; x: number; y: number }) =>
            x.label === box.label && Math.abs(x.x - px.x) <= 0.011 && Math.abs(x.y - px.y) <= 0.011
          );
          assert.ok(found, `${key}: ${JSON.stringify(box)} in ${JSON.stringify(item.boxes)}`);
          dmNear(found.x, px.x, "x");
          dmNear(found.y, px.y, "y");
          dmNear(found.w, px.w, "w");
          dmNear(found.h, px.h, "h");
        }
      }
      const coco = await checkExport(["pycocotools"], `${b.dir}/coco`, "unit-coco-pycocotools");
      assert.deepEqual(Object.keys(coco.splits).sort(), Object.keys(summary.perSplit).sort());
      for (const [name, s] of Object.entries(coco.splits)) {
        assert.deepEqual(s.categories, classes.map((n, i) => ({ id: i + 1, name: n })));
        assert.equal(s.images, summary.perSplit[name]);
        for (const img of s.image_list) {
          const w = want.get(img.key)!;
          assert.equal(img.file_name, imageName(img.key));
          assert.deepEqual(img.labels, w.tags, `whole-frame labels of ${img.key}`);
          assert.ok(img.image_exists);
          // Exact: a box stored in pixels comes back unchanged, a normalised one within 1e-6 of one conversion.
          const got = s.boxes.filter((x: { file_name: string }) => x.file_name === img.file_name);
          assert.equal(got.length, w.boxes.length, img.key);
          for (const box of w.boxes) {
            const px = boxPixels(box);
            const found = got.find((x: { label: string; bbox: number[] }) =>
              x.label === box.label && Math.abs(x.bbox[0] - px.x) <= TOL && Math.abs(x.bbox[1] - px.y) <= TOL
            );
            assert.ok(found, `${img.key}: ${JSON.stringify(box)} in ${JSON.stringify(got)}`);
            if (box.unit === "px") assert.deepEqual(found.bbox, [box.x, box.y, box.w, box.h]);
            else found.bbox.forEach((v: number, i: number) => near(v, [px.x, px.y, px.w, px.h][i], "bbox"));
          }
        }
      }
    });

    await t.step("yolo", async () => {
      const summary = await run("yolo", "yolo");
      const yaml = await Deno.readTextFile(`${b.dir}/yolo/data.yaml`);
      assert.match(yaml, /^train: images\/train$/m);
      assert.match(yaml, /^names:\n {2}0: "door"\n {2}1: "forklift"\n {2}2: "person"\n/m);
      const dm = await checkExport(["datumaro", "yolo"], `${b.dir}/yolo`, "unit-yolo-datumaro");
      assert.deepEqual(dm.classes, classes);
      assert.equal(dm.items, 24);
      assert.deepEqual(dm.subsets, summary.perSplit);
      for (const item of dm.item_list) {
        const key = keyOfFlatName(`${item.id}.jpg`)!;
        assert.equal(flatImageName(key), `${item.id}.jpg`);
        const w = want.get(key)!;
        assert.ok(w, `Datumaro item ${item.id} is a frame`);
        assert.equal(item.subset, splitOf.get(key), "the same split as COCO");
        assert.equal(item.boxes.length, w.boxes.length);
        for (const box of w.boxes) {
          const px = boxPixels(box);
          const found = item.boxes.find((x: { label: string; x: number; y: number }) =>
            x.label === box.label && Math.abs(x.x - px.x) <= 0.011 && Math.abs(x.y - px.y) <= 0.011
          );
          assert.ok(found, `${key}: ${JSON.stringify(box)} in ${JSON.stringify(item.boxes)}`);
          dmNear(found.x, px.x, "x");
          dmNear(found.y, px.y, "y");
          dmNear(found.w, px.w, "w");
          dmNear(found.h, px.h, "h");
        }
      }
      // The numbers of the label files (as float() reads them, before Datumaro rounds): 1e-6 of one conversion.
      assert.equal(dm.raw.length, allBoxes.length);
      for (const line of dm.raw) {
        const key = keyOfFlatName(line.file)!;
        const n = want.get(key)!.boxes.map((x) => ({ label: x.label, ...boxNormalised(x) })).find((x) =>
          classes.indexOf(x.label) === line.class && Math.abs(x.x + x.w / 2 - line.xc) <= TOL &&
          Math.abs(x.y + x.h / 2 - line.yc) <= TOL
        );
        assert.ok(n, `${line.file}: ${JSON.stringify(line)}`);
        near(line.w, n.w, "w");
        near(line.h, n.h, "h");
      }
      // The label file of a normalised box holds its fractions (centre = left + half the width).
      const key = b.rows[1].key;
      const norm = want.get(key)!.boxes.find((x) => x.unit === "norm")!;
      const n = boxNormalised(norm);
      const text = await Deno.readTextFile(
        `${b.dir}/yolo/labels/${splitOf.get(key)}/${flatImageName(key).replace(/\.jpg$/, ".txt")}`,
      );
      assert.ok(text.includes(`0 ${n.x + n.w / 2} ${n.y + n.h / 2} ${n.w} ${n.h}\n`), text);
    });

    await t.step("cvat", async () => {
      const summary = await run("cvat", "cvat");
      const dm = await checkExport(["datumaro", "cvat"], `${b.dir}/cvat`, "unit-cvat-datumaro");
      const tagNames = [...new Set([...want.values()].flatMap((w) => w.tags))];
      assert.deepEqual(dm.classes, [...new Set([...classes, ...tagNames])].sort());
      assert.equal(dm.items, 24);
      assert.deepEqual(dm.subsets, summary.perSplit);
      for (const item of dm.item_list) {
        const key = `frames/${item.id}.jpg`;
        const w = want.get(key)!;
        assert.equal(item.subset, splitOf.get(key), "the same split as COCO");
        assert.deepEqual(item.tags, w.tags);
        assert.equal(item.boxes.length, w.boxes.length);
        for (const box of w.boxes) {
          const px = boxPixels(box);
          const found = item.boxes.find((x: { label: string; x: number; y: number }) =>
            x.label === box.label && Math.abs(x.x - px.x) <= 0.011 && Math.abs(x.y - px.y) <= 0.011
          );
          assert.ok(found, `${key}: ${JSON.stringify(box)}`);
          dmNear(found.x, px.x, "x");
          dmNear(found.y, px.y, "y");
          dmNear(found.w, px.w, "w");
          dmNear(found.h, px.h, "h");
        }
      }
      // The corners in the XML (as float() reads them, before Datumaro rounds): 1e-6.
      assert.equal(dm.raw.length, allBoxes.length);
      for (const c of dm.raw) {
        const box = want.get(`frames/${c.image}`)!.boxes.find((x) =>
          x.label === c.label && Math.abs(boxPixels(x).x - c.xtl) <= TOL &&
          Math.abs(boxPixels(x).y - c.ytl) <= TOL
        );
        assert.ok(box, JSON.stringify(c));
        const px = boxPixels(box);
        near(c.xbr, px.x + px.w, "xbr");
        near(c.ybr, px.y + px.h, "ybr");
        assert.equal(c.source, box.source === "human" ? "manual" : "auto");
        if (box.unit === "px") assert.deepEqual([c.xtl, c.ytl], [box.x, box.y]);
      }
      // Without a split: one annotations.xml that Datumaro reads as one subset.
      await run("cvat", "cvat-one", false);
      const one = await checkExport(["datumaro", "cvat"], `${b.dir}/cvat-one`, "unit-cvat-one-datumaro");
      assert.deepEqual(one.subsets, { annotations: 24 });
    });

    await t.step("the split: no (robot, 10-minute block) and no clip in two splits", () => {
      const blocks = new Map<string, Set<string>>();
      for (const [key, s] of splitOf) {
        const row = want.get(key)!.hit.frame;
        const block = blockKey(row.robotId, row.timestampMs, 10);
        blocks.set(block, (blocks.get(block) ?? new Set()).add(s));
      }
      assert.deepEqual([...blocks].filter(([, s]) => s.size > 1), []);
      const clip = [...want.values()].filter((w) => w.hit.clips.length).map((w) =>
        splitOf.get(w.hit.frame.key)
      );
      assert.equal(new Set(clip).size, 1, "the clip's frames share a split");
    });
  } finally {
    await b.close();
  }
});

Deno.test("Label Studio tasks: image URLs, rectangles in percent, choices, predictions; the config lists the classes", async () => {
  const b = await bed();
  try {
    const want = await expected(b);
    const fetch = () => Promise.reject(new Error("Label Studio exports read no image"));
    await exportFrames(b.catalog, `${b.dir}/ls`, {
      format: "label-studio",
      fetch,
      server: "http://frames.test:8080/",
    });
    const tasks = JSON.parse(await Deno.readTextFile(`${b.dir}/ls/tasks.json`));
    assert.equal(tasks.length, 24);
    const config = await Deno.readTextFile(`${b.dir}/ls/label_config.xml`);
    for (const c of ["door", "forklift", "person", "ghost"]) {
      assert.ok(config.includes(`<Label value="${c}"/>`), c);
    }
    assert.ok(config.includes(`<Choice value="docking"/>`) && config.includes(`<Choice value="night"/>`));
    for (const task of tasks) {
      const w = want.get(task.data.key)!;
      assert.equal(
        task.data.image,
        `http://frames.test:8080/api/frames/${encodeURIComponent(task.data.key)}/image`,
      );
      const results = task.annotations?.[0]?.result ?? [];
      const rects = results.filter((r: { type: string }) => r.type === "rectanglelabels");
      assert.equal(rects.length, w.boxes.length);
      for (const box of w.boxes) {
        const r = rects.find((x: { id: string }) => x.id === `fb${box.id}`);
        const n = boxNormalised(box);
        near(r.value.x, n.x * 100, "x%");
        near(r.value.y, n.y * 100, "y%");
        near(r.value.width, n.w * 100, "w%");
        near(r.value.height, n.h * 100, "h%");
        assert.deepEqual(r.value.rectanglelabels, [box.label]);
        assert.deepEqual([r.original_width, r.original_height], [box.imageWidth, box.imageHeight]);
      }
      const choices = results.find((r: { type: string }) => r.type === "choices");
      assert.deepEqual(choices?.value.choices ?? [], w.tags);
      const unaccepted = w.hit.boxes.filter((x) => !x.accepted);
      assert.equal(task.predictions?.[0]?.result.length ?? 0, unaccepted.length);
      if (unaccepted.length) assert.equal(task.predictions[0].model_version, "yolo8");
    }
  } finally {
    await b.close();
  }
});

Deno.test("read-ahead: at most READ_AHEAD + 1 fetches in flight, frames written in order, the first failure in order named", async () => {
  const b = await bed();
  try {
    let inFlight = 0, most = 0;
    const delays = [30, 5, 20, 1, 15, 8];
    const fetch = async (key: string) => {
      inFlight++;
      most = Math.max(most, inFlight);
      const i = b.rows.findIndex((r) => r.key === key);
      await new Promise((r) => setTimeout(r, delays[i % delays.length]));
      inFlight--;
      return b.jpegs.get(key)!;
    };
    const summary = await exportFrames(b.catalog, `${b.dir}/ahead`, { format: "yolo", fetch });
    assert.equal(summary.frames, 24);
    assert.equal(most, READ_AHEAD + 1);
    // COCO image ids follow capture order although the fetches finished out of order.
    await exportFrames(b.catalog, `${b.dir}/ahead-coco`, { format: "coco", fetch });
    const doc = JSON.parse(await Deno.readTextFile(`${b.dir}/ahead-coco/annotations/instances_default.json`));
    assert.deepEqual(doc.images.map((i: { key: string }) => i.key), b.rows.map((r) => r.key));
    // Frame 3 fails for good, frames after it (already fetched ahead) do not: the error names frame 3.
    const failing = (key: string) => key === b.rows[2].key ? Promise.reject(new Error("boom")) : fetch(key);
    await assert.rejects(
      () =>
        exportFrames(b.catalog, `${b.dir}/ahead-fail.tar`, {
          format: "coco",
          fetch: failing,
          retryDelaysMs: [5],
        }),
      /frame 3 of 24 \(.*\) could not be read after 2 attempts: boom/,
    );
    await assert.rejects(() => Deno.stat(`${b.dir}/ahead-fail.tar.partial`), Deno.errors.NotFound);
    assert.equal(inFlight, 0, "fetches in flight are waited for when the export stops");
  } finally {
    await b.close();
  }
});
