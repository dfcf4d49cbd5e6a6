/**
 * Dataset exports of real frames, proven by the real tools: the ten reachy-001 samples (1920x1080, stored four
 * times each) and generated frames of a second robot, in the stack's S3 server, five of them only in the archive
 * bucket; boxes (pixels and fractions, a model's unaccepted box), whole-frame labels and a labelled clip put on
 * them through the HTTP API. Each format is exported through the API (a streamed tar) or the CLI (`deno task
 * export`, a directory or a tar), unpacked with the system tar, and read by Datumaro (`coco_instances`, `yolo`,
 * `cvat`) and pycocotools; what they read is compared with the catalog (counts, classes, boxes, tags, splits).
 * Label Studio tasks are checked against the catalog and their image URLs fetched from the server.
 *
 * Set FRAME_BUCKET_CHECK_OUT=/some/dir to keep what each tool printed (JSON).
 */
import assert from "node:assert/strict";
import { boxNormalised, boxPixels } from "../../src/catalog/boxes.ts";
import { createApp } from "../../src/server/app.ts";
import { frameTags } from "../../src/library/export.ts";
import { imageName } from "../../src/library/image_names.ts";
import { searchAll } from "../../src/library/search.ts";
import { blockKey } from "../../src/library/split.ts";
import { flatImageName } from "../../src/library/formats/yolo.ts";
import { jpegSize } from "../../src/library/image_size.ts";
import { createLogger } from "../../src/log.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { ARCHIVE_PREFIX, REAL, SYNTH, uiFixture } from "../support/ui_fixture.ts";
import { assertDatumaroMatches, checkExport, type ExpectedItem } from "../support/python.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;
const TOL = 1e-6;
const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= TOL, `${what}: ${a} vs ${b}`);
const quiet = createLogger({ level: "error", format: "text" });
const enc = encodeURIComponent;

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...options }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function untar(file: string, dir: string) {
  await Deno.mkdir(dir, { recursive: true });
  const r = await run("tar", ["-xf", file, "-C", dir]);
  assert.equal(r.code, 0, r.stderr);
}

Deno.test("exports of real frames from both tiers in COCO, YOLO, CVAT and Label Studio, read by Datumaro and pycocotools", async (t) => {
  const f = await uiFixture();
  // Four more reachy-001 frames go to the archive as the evictor moves them: copied, local object dropped, tier set.
  const real = f.rows.filter((r) => r.robotId === REAL);
  for (const r of [real[10], real[20], real[30], real[39]]) {
    await f.archive.put(ARCHIVE_PREFIX + r.key, f.jpegs.get(r.key)!);
    await f.local.delete(r.key);
    await f.catalog.setTier(r.key, "archive", Date.now());
    r.tier = "archive";
  }
  const app = createApp({ ...f, archivePrefix: ARCHIVE_PREFIX, webDir: null, log: quiet });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const api = async (method: string, path: string, json?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: json === undefined ? {} : { "content-type": "application/json" },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const type = r.headers.get("content-type") ?? "";
    const body = type.includes("json") ? await r.json() : new Uint8Array(await r.arrayBuffer());
    return { status: r.status, headers: r.headers, body };
  };
  const work = await Deno.makeTempDir({ prefix: "frame-bucket-formats-stack-" });
  const config = `${work}/config.toml`;
  const endpoint = stackEndpoints().s3Endpoint;
  await Deno.writeTextFile(
    config,
    `[catalog]\ndata_dir = "${f.dir}"\n[rustfs]\nendpoint = "${endpoint}"\nbucket = "${f.local.bucket}"\n` +
      `[aws_s3]\nbucket = "${f.archive.bucket}"\nendpoint = "${endpoint}"\nprefix = "${ARCHIVE_PREFIX}"\n` +
      `[server]\nport = ${(server.addr as Deno.NetAddr).port}\n`,
  );
  const cli = (args: string[]) =>
    run(Deno.execPath(), ["run", "-A", "--quiet", "tools/export.ts", ...args, "--config", config], {
      cwd: PROJECT,
      env: { AWS_ACCESS_KEY_ID: "rustfsadmin", AWS_SECRET_ACCESS_KEY: "rustfsadmin", NO_COLOR: "1" },
    });
  try {
    // Boxes through the API: every frame but every fifth (negatives), in pixels and in fractions; a model's box
    // nobody accepted on a few; whole-frame labels on some, a labelled clip over an hour of reachy-001.
    for (const [i, row] of f.rows.entries()) {
      if (i % 5 === 4) continue;
      const boxes = row.robotId === REAL
        ? [
          { label: "person", x: 100.25 + i * 7, y: 200.5, w: 300.125, h: 400.75 },
          { label: "door", x: 0.1 + i / 1000, y: 0.25, w: 1 / 3, h: 0.125, unit: "norm" },
          ...(i % 3 === 0
            ? [{ label: "person", x: 1500, y: 10, w: 64, h: 64, source: "model:yolov8n", confidence: 0.42 }]
            : []),
        ]
        : [{ label: "bracket", x: 10.5 + i, y: 20.25, w: 100, h: 50.5 }, {
          label: "door",
          x: 0.5,
          y: 0.5,
          w: 0.25,
          h: 0.5,
          unit: "norm",
        }];
      const r = await api("POST", `/api/frames/${enc(row.key)}/boxes`, { boxes, author: "ann" });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const nights = f.rows.filter((_, i) => i % 7 === 1).map((r) => r.key);
    assert.equal((await api("POST", "/api/frames/labels", { keys: nights, add: ["night"] })).status, 200);
    const clip = await api("POST", "/api/clips", {
      robot: REAL,
      from: real[5].timestampMs,
      to: real[15].timestampMs,
      name: "docking run",
      labels: ["docking"],
    });
    assert.equal(clip.status, 201, JSON.stringify(clip.body));

    // What the catalog holds, per frame.
    const hits = await Array.fromAsync(searchAll(f.catalog, {}));
    assert.equal(hits.length, 52);
    assert.equal(hits.filter((h) => h.frame.tier === "archive").length, 5);
    const truth = new Map(hits.map((h) => {
      const { width, height } = jpegSize(f.jpegs.get(h.frame.key)!);
      return [h.frame.key, {
        hit: h,
        boxes: h.boxes.filter((b) => b.accepted),
        tags: frameTags(h),
        width,
        height,
      }];
    }));
    const accepted = [...truth.values()].flatMap((w) => w.boxes);
    const unaccepted = hits.flatMap((h) => h.boxes.filter((b) => !b.accepted)).length;
    const classes = [...new Set(accepted.map((b) => b.label))].sort();
    assert.deepEqual(classes, ["bracket", "door", "person"]);
    const expectedBy = (id: (key: string) => string) =>
      new Map<string, ExpectedItem>(
        [...truth].map((
          [key, w],
        ) => [id(key), { key, boxes: w.boxes, tags: w.tags, width: w.width, height: w.height }]),
      );
    const split = "train=0.75,val=0.25";
    const splitQuery = `split=${enc(split)}&split_seed=5&split_block_minutes=10`;
    const splitArgs = ["--split", split, "--split-seed", "5", "--split-block-minutes", "10"];
    const splitOf = new Map<string, string>();

    await t.step(
      "COCO through the API (streamed tar), split 75/25: Datumaro coco_instances and pycocotools",
      async () => {
        const r = await api("GET", `/api/export?format=coco&${splitQuery}&export_id=coco-api-0001`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get("content-type"), "application/x-tar");
        assert.match(r.headers.get("content-disposition")!, /filename="frame-bucket-coco-\d{8}T\d{6}Z\.tar"/);
        await Deno.writeFile(`${work}/coco.tar`, r.body as Uint8Array);
        await untar(`${work}/coco.tar`, `${work}/coco`);
        const status = await api("GET", "/api/exports/coco-api-0001");
        assert.deepEqual(
          [status.body.state, status.body.format, status.body.frames, status.body.files, status.body.boxes],
          ["complete", "coco", 52, 52, accepted.length],
        );
        const dm = await checkExport(["datumaro", "coco_instances"], `${work}/coco`, "stack-coco-datumaro");
        console.log(
          `  Datumaro ${dm.version} coco_instances: ${dm.items} items ${JSON.stringify(dm.subsets)}, ` +
            `classes ${JSON.stringify(dm.classes)}, ${dm.boxes} boxes`,
        );
        assert.deepEqual(dm.classes, classes);
        assert.deepEqual(dm.subsets, status.body.splits);
        assert.equal(dm.boxes, accepted.length);
        assertDatumaroMatches(dm, expectedBy((key) => imageName(key).replace(/\.jpg$/, "")));
        for (const item of dm.item_list) splitOf.set(`frames/${item.id}.jpg`, item.subset);

        const coco = await checkExport(["pycocotools"], `${work}/coco`, "stack-coco-pycocotools");
        let boxes = 0, images = 0;
        for (const [name, s] of Object.entries(coco.splits)) {
          console.log(
            `  pycocotools ${coco.version} instances_${name}.json: ${s.images} images, ${s.annotations} ` +
              `annotations, categories ${JSON.stringify(s.categories)}`,
          );
          assert.deepEqual(s.categories, classes.map((n, i) => ({ id: i + 1, name: n })));
          images += s.images;
          boxes += s.annotations;
          for (const img of s.image_list) {
            const w = truth.get(img.key)!;
            assert.equal(img.file_name, imageName(img.key));
            assert.equal(splitOf.get(img.key), name);
            assert.deepEqual([img.width, img.height], [w.width, w.height]);
            assert.deepEqual(img.labels, w.tags, img.key);
            assert.ok(img.image_exists, img.file_name);
            const got = s.boxes.filter((b) => b.file_name === img.file_name);
            assert.equal(got.length, w.boxes.length, img.key);
            for (const box of w.boxes) {
              const px = boxPixels(box);
              const found = got.find((b) =>
                b.label === box.label && Math.abs(b.bbox[0] - px.x) <= TOL &&
                Math.abs(b.bbox[1] - px.y) <= TOL
              );
              assert.ok(found, `${img.key}: ${JSON.stringify(box)}`);
              // Stored in pixels: unchanged; stored in fractions: one multiplication.
              if (box.unit === "px") assert.deepEqual(found.bbox, [box.x, box.y, box.w, box.h]);
              else found.bbox.forEach((v, i) => near(v, [px.x, px.y, px.w, px.h][i], "bbox"));
              near(found.area, px.w * px.h, "area");
            }
          }
        }
        assert.deepEqual([images, boxes], [52, accepted.length]);
      },
    );

    await t.step(
      "YOLO through the CLI to a directory, the same split: Datumaro yolo (Ultralytics layout)",
      async () => {
        const r = await cli(["--format", "yolo", "--out", `${work}/yolo`, ...splitArgs]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /^exported 52 frames \(train \d+, val \d+\) with \d+ boxes of 3 classes as yolo to /,
        );
        assert.match(r.stderr, new RegExp(`note: ${unaccepted} model boxes nobody accepted were left out`));
        const yaml = await Deno.readTextFile(`${work}/yolo/data.yaml`);
        assert.match(
          yaml,
          /^train: images\/train\nval: images\/val\nnc: 3\nnames:\n {2}0: "bracket"\n {2}1: "door"\n {2}2: "person"\n/m,
        );
        const dm = await checkExport(["datumaro", "yolo"], `${work}/yolo`, "stack-yolo-datumaro");
        console.log(
          `  Datumaro ${dm.version} yolo: ${dm.items} items ${JSON.stringify(dm.subsets)}, classes ` +
            `${JSON.stringify(dm.classes)}, ${dm.boxes} boxes`,
        );
        assert.deepEqual(dm.classes, classes);
        assertDatumaroMatches(dm, expectedBy((key) => flatImageName(key).replace(/\.jpg$/, "")));
        for (const item of dm.item_list) {
          const key = [...truth.keys()].find((k) => flatImageName(k) === `${item.id}.jpg`)!;
          assert.equal(item.subset, splitOf.get(key), `${key}: the same split as COCO`);
        }
        // The label files' numbers (as float() reads them): 1e-6 of the stored box.
        assert.equal(dm.raw.length, accepted.length);
        for (const line of dm.raw) {
          const key = [...truth.keys()].find((k) =>
            line.file.endsWith(flatImageName(k).replace(/\.jpg$/, ".txt"))
          )!;
          const n = truth.get(key)!.boxes.map((b) => ({ label: b.label, ...boxNormalised(b) })).find((b) =>
            classes.indexOf(b.label) === line.class && Math.abs(b.x + b.w / 2 - line.xc) <= TOL &&
            Math.abs(b.y + b.h / 2 - line.yc) <= TOL
          );
          assert.ok(n, JSON.stringify(line));
          near(line.w, n.w, "w");
          near(line.h, n.h, "h");
        }
      },
    );

    await t.step("CVAT through the CLI to a tar, the same split: Datumaro cvat, with tags", async () => {
      const r = await cli(["--format", "cvat", "--out", `${work}/cvat.tar`, ...splitArgs]);
      assert.equal(r.code, 0, r.stderr);
      await untar(`${work}/cvat.tar`, `${work}/cvat`);
      const dm = await checkExport(["datumaro", "cvat"], `${work}/cvat`, "stack-cvat-datumaro");
      console.log(
        `  Datumaro ${dm.version} cvat: ${dm.items} items ${JSON.stringify(dm.subsets)}, labels ` +
          `${JSON.stringify(dm.classes)}, ${dm.boxes} boxes, ${dm.tags} tags`,
      );
      assert.deepEqual(dm.classes, ["bracket", "docking", "door", "night", "person"]);
      assert.equal(dm.tags, [...truth.values()].reduce((s, w) => s + w.tags.length, 0));
      assertDatumaroMatches(dm, expectedBy((key) => imageName(key).replace(/\.jpg$/, "")), { tags: true });
      for (const item of dm.item_list) assert.equal(item.subset, splitOf.get(`frames/${item.id}.jpg`));
      for (const c of dm.raw) {
        const box = truth.get(`frames/${c.image}`)!.boxes.find((b) =>
          b.label === c.label && Math.abs(boxPixels(b).x - c.xtl) <= TOL &&
          Math.abs(boxPixels(b).y - c.ytl) <= TOL
        )!;
        assert.ok(box, JSON.stringify(c));
        const px = boxPixels(box);
        near(c.xbr, px.x + px.w, "xbr");
        near(c.ybr, px.y + px.h, "ybr");
      }
    });

    await t.step("the split: frames per split, no (robot, 10-minute block) and no clip in two splits", () => {
      const per: Record<string, number> = {};
      const blocks = new Map<string, Set<string>>();
      for (const [key, s] of splitOf) {
        per[s] = (per[s] ?? 0) + 1;
        const row = truth.get(key)!.hit.frame;
        const block = blockKey(row.robotId, row.timestampMs, 10);
        blocks.set(block, (blocks.get(block) ?? new Set()).add(s));
      }
      const inClip = [...truth.values()].filter((w) => w.hit.clips.length).map((w) =>
        splitOf.get(w.hit.frame.key)
      );
      console.log(
        `  split train=0.75,val=0.25 seed 5, 10-minute blocks: ${
          JSON.stringify(per)
        } frames; ${blocks.size} ` +
          `(robot, block)s, ${[...blocks].filter(([, s]) => s.size > 1).length} in two splits; the clip's ` +
          `${inClip.length} frames all in ${[...new Set(inClip)].join(", ")}`,
      );
      assert.deepEqual([...blocks].filter(([, s]) => s.size > 1), []);
      assert.equal(new Set(inClip).size, 1);
      assert.equal(per.train + per.val, 52);
    });

    await t.step(
      "Label Studio through the API: tasks with this server's image URLs, boxes in percent",
      async () => {
        const r = await api("GET", `/api/export?format=label-studio&robot=${REAL}&export_id=ls-api-00001`);
        assert.equal(r.status, 200);
        await Deno.writeFile(`${work}/ls.tar`, r.body as Uint8Array);
        await untar(`${work}/ls.tar`, `${work}/ls`);
        const tasks = JSON.parse(await Deno.readTextFile(`${work}/ls/tasks.json`));
        assert.equal(tasks.length, 40);
        const config = await Deno.readTextFile(`${work}/ls/label_config.xml`);
        assert.match(
          config,
          /<RectangleLabels name="label" toName="image">\n {4}<Label value="door"\/>\n {4}<Label value="person"\/>/,
        );
        let predictions = 0;
        for (const task of tasks) {
          const w = truth.get(task.data.key)!;
          assert.equal(task.data.image, `${base}/api/frames/${enc(task.data.key)}/image`);
          const rects = (task.annotations?.[0]?.result ?? []).filter((x: { type: string }) =>
            x.type === "rectanglelabels"
          );
          assert.equal(rects.length, w.boxes.length);
          for (const box of w.boxes) {
            const rect = rects.find((x: { id: string }) => x.id === `fb${box.id}`);
            const n = boxNormalised(box);
            near(rect.value.x, n.x * 100, "x%");
            near(rect.value.y, n.y * 100, "y%");
            near(rect.value.width, n.w * 100, "width%");
            near(rect.value.height, n.h * 100, "height%");
            assert.deepEqual([rect.original_width, rect.original_height], [1920, 1080]);
          }
          predictions += task.predictions?.[0]?.result.length ?? 0;
        }
        assert.equal(predictions, unaccepted);
        // The URLs serve the frames, archived ones too.
        for (const row of [real[0], real[10], real[39]]) {
          const task = tasks.find((x: { data: { key: string } }) => x.data.key === row.key);
          const image = await fetch(task.data.image);
          assert.equal(image.status, 200);
          assert.deepEqual(new Uint8Array(await image.arrayBuffer()), f.jpegs.get(row.key), row.key);
        }
      },
    );

    await t.step("GET /api/export refuses a bad format, split or label before anything is sent", async () => {
      const refusals: [string, RegExp][] = [
        ["format=voc", /format "voc" must be one of imagefolder, coco, yolo, cvat, label-studio/],
        ["format=coco&split=train%3D0.8%2Cval%3D0.1", /shares add up to 0\.9, not 1/],
        [
          "format=yolo&split=train%3D1&split_block_minutes=0",
          /split_block_minutes "0" must be a whole number from 1/,
        ],
        ["format=coco&label=nope", /unknown label "nope"/],
        ["format=imagefolder", /name at least one label to export/],
      ];
      for (const [query, message] of refusals) {
        const r = await api("GET", `/api/export?${query}`);
        assert.equal(r.status, 400, query);
        assert.match(r.body.error, message, query);
      }
    });

    await t.step(
      "a frame no store holds: COCO without it and MISSING.txt, exit 1; Datumaro reads the rest",
      async () => {
        const gone = f.rows.find((r) => r.robotId === SYNTH)!;
        await f.local.delete(gone.key);
        const r = await cli(["--format", "coco", "--out", `${work}/coco-missing`]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /INCOMPLETE: 1 of 52 frames are in no store and were left out/);
        const missing = await Deno.readTextFile(`${work}/coco-missing/MISSING.txt`);
        assert.match(missing, /^INCOMPLETE EXPORT: 1 of the 52 matching frames are not in this dataset\./);
        assert.ok(missing.includes(gone.key));
        const dm = await checkExport(
          ["datumaro", "coco_instances"],
          `${work}/coco-missing`,
          "stack-coco-missing-datumaro",
        );
        assert.deepEqual(dm.subsets, { default: 51 });
        const want = expectedBy((key) => imageName(key).replace(/\.jpg$/, ""));
        want.delete(imageName(gone.key).replace(/\.jpg$/, ""));
        assertDatumaroMatches(dm, want);
      },
    );
  } finally {
    await server.shutdown();
    await f.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
