/**
 * `deno task label predictions` against the real S3 server of the local stack and a SQLite catalog: the real
 * 1920x1080 samples stored as frames (three local, one only in the archive, one whose object is gone), a COCO
 * results file (image names, and numeric ids through a ground-truth file) and a YOLO label folder imported as
 * model boxes, then the boxes read back from the catalog: exact numbers, unit, image size, source, confidence,
 * unaccepted; skips and a re-run that adds nothing.
 */
import assert from "node:assert/strict";
import type { Box, FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { openTiers } from "../support/stores.ts";
import { imageName } from "../../src/library/image_names.ts";
import { parseTime } from "../../src/library/search.ts";
import { readSamples, sampleFiles } from "../support/images.ts";
import { frameRow } from "../support/rows.ts";
import { bucketName, ensureS3 } from "../support/stack.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;
const ARCHIVE_PREFIX = "archive/";
const ENV = { AWS_ACCESS_KEY_ID: "rustfsadmin", AWS_SECRET_ACCESS_KEY: "rustfsadmin", NO_COLOR: "1" };

/** Runs the label tool; stdout and stderr apart (the summary is the one line on stdout). */
async function label(args: string[], config: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "tools/label.ts", ...args, "--config", config],
    cwd: PROJECT,
    env: ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout).trim(),
    stderr: new TextDecoder().decode(out.stderr).trim(),
  };
}

/** A box as the test compares it. */
const brief = (b: Box) => ({
  label: b.label,
  x: b.x,
  y: b.y,
  w: b.w,
  h: b.h,
  unit: b.unit,
  size: `${b.imageWidth}x${b.imageHeight}`,
  source: b.source,
  confidence: b.confidence,
  accepted: b.accepted,
  author: b.author,
});

Deno.test("deno task label predictions: COCO and YOLO into model boxes on real frames", async () => {
  const endpoint = await ensureS3();
  const bucket = bucketName("prelabels");
  const { local, archive } = await openTiers(endpoint, bucket);
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-prelabels-test-" });
  const config = `${dir}/config.toml`;
  await Deno.writeTextFile(
    config,
    `[catalog]\ndata_dir = "${dir}/data"\n[rustfs]\nendpoint = "${endpoint}"\nbucket = "${bucket}"\n` +
      `[aws_s3]\nbucket = "${bucket}-archive"\nendpoint = "${endpoint}"\nprefix = "${ARCHIVE_PREFIX}"\n`,
  );
  try {
    // Five real frames: 0-2 local, 3 only in the archive, 4 in the catalog with its object gone.
    const jpegs = readSamples().slice(0, 5);
    const rows: FrameRow[] = sampleFiles().slice(0, 5).map((path, i) => {
      const m = /(\d{8}T\d{9}Z)_(\d{6})\.jpg$/.exec(path)!;
      return frameRow("reachy-001", parseTime(m[1]), Number(m[2]), {
        tier: i === 3 ? "archive" : "local",
        size: jpegs[i].length,
      });
    });
    for (const [i, row] of rows.entries()) {
      if (i === 3) await archive.put(ARCHIVE_PREFIX + row.key, jpegs[i]);
      else if (i < 3) await local.put(row.key, jpegs[i], { contentType: "image/jpeg" });
    }
    let catalog = new SqliteCatalog(`${dir}/data/catalog.sqlite`);
    await catalog.upsertMany(rows);
    await catalog.close();
    const name = (i: number) => imageName(rows[i].key);

    // COCO: image names for frames 0 and 1, numeric ids (ground-truth file) for 2, 3, 4 and one unknown image.
    const gt = {
      images: [
        { id: 12, file_name: name(2), width: 1920, height: 1080 },
        { id: 13, file_name: name(3) },
        { id: 14, file_name: name(4) },
        { id: 15, file_name: "reachy-001/2026-02-18/20260218T000000000Z_000001.jpg" },
      ],
      categories: [{ id: 1, name: "person" }, { id: 2, name: "door_closed" }],
    };
    const results = [
      { image_id: name(0), category_id: 1, bbox: [100.25, 200.5, 300.125, 400.75], score: 0.875 },
      { image_id: name(0), category_id: 2, bbox: [1800, 1000, 200, 100], score: 0.5 }, // clipped to 120x80
      { image_id: name(1), category_id: 2, bbox: [0, 0, 1920, 1080], score: 0.3 },
      { image_id: name(1), category_id: 1, bbox: [1920, 10, 20, 20], score: 0.9 }, // outside
      { image_id: 12, category_id: 1, bbox: [10, 20, 30, 40], score: 0.125 },
      { image_id: 13, category_id: 2, bbox: [50, 60, 70, 80], score: 1 },
      { image_id: 14, category_id: 1, bbox: [1, 1, 1, 1], score: 0.1 }, // frame 4: no object
      { image_id: 15, category_id: 1, bbox: [1, 1, 1, 1], score: 0.1 }, // not in the catalog
    ];
    await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(results));
    await Deno.writeTextFile(`${dir}/gt.json`, JSON.stringify(gt));
    let r = await label(
      [
        "predictions",
        "--model",
        "yolov8n",
        "--coco",
        `${dir}/results.json`,
        "--images",
        `${dir}/gt.json`,
        "--author",
        "ann",
      ],
      config,
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.model, "yolov8n");
    assert.equal(summary.boxes, 5);
    assert.equal(summary.frames, 4);
    assert.equal(summary.clipped, 1);
    assert.deepEqual(summary.skipped.map((s: { ref: string }) => s.ref), [
      name(1),
      name(4),
      gt.images[3].file_name,
    ]);
    assert.match(summary.skipped[0].reason, /lies outside the 1920x1080 image/);
    assert.match(summary.skipped[1].reason, /no store holds the JPEG of frames\/reachy-001/);
    assert.match(
      summary.skipped[2].reason,
      /no frame frames\/reachy-001\/2026-02-18\/20260218T000000000Z_000001\.jpg in the catalog/,
    );
    assert.match(r.stderr, /6\/6 frames, 5 boxes on 4 frames, 3 skipped/);
    assert.match(r.stderr, /skipped .*: box 2 of 2 .* lies outside/);

    catalog = new SqliteCatalog(`${dir}/data/catalog.sqlite`);
    let boxes = await catalog.labels().boxesOf(rows.map((row) => row.key));
    await catalog.close();
    const common = { unit: "px", size: "1920x1080", source: "model:yolov8n", accepted: false, author: "ann" };
    assert.deepEqual(boxes.get(rows[0].key)!.map(brief), [
      { ...common, label: "person", x: 100.25, y: 200.5, w: 300.125, h: 400.75, confidence: 0.875 },
      { ...common, label: "door_closed", x: 1800, y: 1000, w: 120, h: 80, confidence: 0.5 },
    ]);
    assert.deepEqual(boxes.get(rows[1].key)!.map(brief), [
      { ...common, label: "door_closed", x: 0, y: 0, w: 1920, h: 1080, confidence: 0.3 },
    ]);
    assert.deepEqual(boxes.get(rows[2].key)!.map(brief), [
      { ...common, label: "person", x: 10, y: 20, w: 30, h: 40, confidence: 0.125 },
    ]);
    assert.deepEqual(boxes.get(rows[3].key)!.map(brief), [
      { ...common, label: "door_closed", x: 50, y: 60, w: 70, h: 80, confidence: 1 },
    ], "the archived frame's size comes from the archive");
    assert.equal(boxes.get(rows[4].key), undefined);

    // Again: nothing new.
    r = await label(
      ["predictions", "--model", "yolov8n", "--coco", `${dir}/results.json`, "--images", `${dir}/gt.json`],
      config,
    );
    assert.equal(r.code, 0, r.stderr);
    const again = JSON.parse(r.stdout);
    assert.equal(again.boxes, 0);
    assert.equal(
      again.skipped.filter((s: { reason: string }) => /already imported/.test(s.reason)).length,
      5,
    );

    // YOLO: a folder of <image name>.txt with its classes file inside; 5 and 6 columns.
    const yolo = `${dir}/yolo`;
    const txt = (i: number) => `${yolo}/${name(i).replace(/\.jpg$/, ".txt")}`;
    await Deno.mkdir(`${yolo}/reachy-001/2026-02-18`, { recursive: true });
    await Deno.writeTextFile(`${yolo}/classes.txt`, "person\nrobot_arm\n");
    await Deno.writeTextFile(txt(0), "1 0.5 0.5 0.25 0.5 0.75\n\n0 0.125 0.25 0.25 0.5\n");
    await Deno.writeTextFile(txt(2), "1 0.95 0.5 0.2 0.2 0.5\n"); // reaches past the right edge: clipped
    r = await label(
      [
        "predictions",
        "--model",
        "detr-r50",
        "--yolo",
        yolo,
        "--classes",
        `${yolo}/classes.txt`,
        "--author",
        "bo",
      ],
      config,
    );
    assert.equal(r.code, 0, r.stderr);
    const y = JSON.parse(r.stdout);
    assert.deepEqual([y.boxes, y.frames, y.clipped, y.skipped], [3, 2, 1, []]);
    assert.match(r.stderr, /read 2 label files under .*: 3 boxes/);
    catalog = new SqliteCatalog(`${dir}/data/catalog.sqlite`);
    boxes = await catalog.labels().boxesOf([rows[0].key, rows[2].key]);
    const journal = await catalog.labels().changes({ newest: true, limit: 10 });
    await catalog.close();
    const norm = { unit: "norm", size: "1920x1080", source: "model:detr-r50", accepted: false, author: "bo" };
    assert.deepEqual(boxes.get(rows[0].key)!.filter((b) => b.source === "model:detr-r50").map(brief), [
      { ...norm, label: "robot_arm", x: 0.375, y: 0.25, w: 0.25, h: 0.5, confidence: 0.75 },
      { ...norm, label: "person", x: 0, y: 0, w: 0.25, h: 0.5, confidence: null },
    ]);
    const clipped = boxes.get(rows[2].key)!.find((b) => b.source === "model:detr-r50")!;
    assert.deepEqual(brief(clipped), {
      ...norm,
      label: "robot_arm",
      x: 0.95 - 0.2 / 2,
      y: 0.5 - 0.2 / 2,
      w: 1 - (0.95 - 0.2 / 2),
      h: 0.2,
      confidence: 0.5,
    });
    // One journal entry per batch, by the author given.
    const adds = journal.filter((c) => c.action === "box.add");
    assert.deepEqual(adds.map((c) => c.author), ["bo", "ann"]);

    // A malformed file is refused whole, naming file, line and value.
    await Deno.writeTextFile(txt(1), "0 0.5 0.5 0.1\n7 0.5 0.5 0.1 0.1\n");
    r = await label(
      ["predictions", "--model", "m", "--yolo", yolo, "--classes", `${yolo}/classes.txt`],
      config,
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: 2 problems in the YOLO labels; nothing was imported/m);
    assert.match(r.stderr, /000311\.txt line 1: 4 columns in "0 0\.5 0\.5 0\.1"/);
    assert.match(r.stderr, /000311\.txt line 2: class 7 is not in the classes list \(2 classes, 0\.\.1\)/);
    r = await label(["predictions", "--model", "bad name", "--coco", `${dir}/results.json`], config);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /model name "bad name" must be 1-64 letters/);
    r = await label(["predictions", "--model", "m", "--yolo", yolo], config);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--yolo DIR needs --classes FILE/);
  } finally {
    local.close();
    archive.close();
    await Deno.remove(dir, { recursive: true });
  }
});
