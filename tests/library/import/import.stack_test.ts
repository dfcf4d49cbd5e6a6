/**
 * Imports against the real stack: real reachy-001 frames in S3 (one only in the archive) with boxes (pixels and
 * fractions, an accepted and an unaccepted model box), frame labels and a labelled clip, exported by `deno task
 * export` in COCO, YOLO, CVAT and Label Studio, and imported back by `deno task import`: nothing changes and nothing
 * is journalled, for each format. Then each export is edited as another tool would (a box moved, one dropped, one
 * drawn, a tag added) and imported through POST /api/import: exactly those changes, and the same files again
 * change nothing.
 */
import assert from "node:assert/strict";
import { boxPixels } from "../../../src/catalog/boxes.ts";
import type { Box } from "../../../src/catalog/catalog.ts";
import { createApp } from "../../../src/server/app.ts";
import { createLogger } from "../../../src/log.ts";
import { flatImageName } from "../../../src/library/formats/yolo.ts";
import { imageName } from "../../../src/library/image_names.ts";
import { stackEndpoints } from "../../../tools/stack.ts";
import { ARCHIVE_PREFIX, REAL, uiFixture } from "../../support/ui_fixture.ts";

const PROJECT = new URL("../../../", import.meta.url).pathname;
const quiet = createLogger({ level: "error", format: "text" });
const enc = encodeURIComponent;

// deno-lint-ignore no-explicit-any
type Json = any;

async function run(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ...args],
    cwd: PROJECT,
    env: { AWS_ACCESS_KEY_ID: "rustfsadmin", AWS_SECRET_ACCESS_KEY: "rustfsadmin", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Every file under `dir` the import of that format reads, as the API takes them. */
async function filesOf(
  dir: string,
  keep: (name: string) => boolean,
): Promise<{ name: string; text: string }[]> {
  const out: { name: string; text: string }[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(`${d}/${e.name}`, name);
      else if (keep(name)) out.push({ name, text: await Deno.readTextFile(`${d}/${e.name}`) });
    }
  };
  await walk(dir, "");
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

const changed = (s: Json) => [s.added, s.updated, s.deleted, s.accepted, s.labels];

Deno.test("exports in COCO, YOLO, CVAT and Label Studio import back unchanged; edited ones change exactly what was edited", async (t) => {
  const f = await uiFixture();
  const app = createApp({ ...f, archivePrefix: ARCHIVE_PREFIX, webDir: null, log: quiet });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const api = async (method: string, path: string, json?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: json === undefined ? {} : { "content-type": "application/json" },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    return { status: r.status, body: await r.json() };
  };
  const work = await Deno.makeTempDir({ prefix: "frame-bucket-import-stack-" });
  const endpoint = stackEndpoints().s3Endpoint;
  const config = `${work}/config.toml`;
  await Deno.writeTextFile(
    config,
    `[catalog]\ndata_dir = "${f.dir}"\n[rustfs]\nendpoint = "${endpoint}"\nbucket = "${f.local.bucket}"\n` +
      `[aws_s3]\nbucket = "${f.archive.bucket}"\nendpoint = "${endpoint}"\nprefix = "${ARCHIVE_PREFIX}"\n` +
      `[server]\nport = ${(server.addr as Deno.NetAddr).port}\n`,
  );
  const lastChange = async () =>
    (await api("GET", "/api/changes?order=newest&limit=1")).body.changes[0]?.id ?? 0;
  const boxesOn = async (key: string) => (await api("GET", `/api/frames/${enc(key)}`)).body.boxes as Json[];
  try {
    // Twelve reachy-001 frames (the fourth only in the archive); every fourth a negative.
    const real = f.rows.filter((r) => r.robotId === REAL).slice(0, 12);
    assert.equal(real[3].tier, "archive");
    const mine = new Map<string, Box[]>();
    for (const [i, row] of real.entries()) {
      if (i % 4 === 2) continue;
      const boxes = [
        { label: "person", x: 100.25 + i * 7, y: 200.5, w: 300.125, h: 400.75 },
        { label: "door", x: 0.1 + i / 1000, y: 0.25, w: 1 / 3, h: 0.125, unit: "norm" },
        ...(i % 3 === 0
          ? [{ label: "person", x: 1500, y: 10, w: 64, h: 64, source: "model:yolov8n", confidence: 0.4 }]
          : []),
      ];
      const r = await api("POST", `/api/frames/${enc(row.key)}/boxes`, { boxes, author: "ann" });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      mine.set(row.key, r.body.boxes);
    }
    // One model box accepted (exported as ground truth), the others left as pre-labels.
    const acceptedModel = mine.get(real[0].key)![2];
    assert.equal((await api("POST", "/api/boxes/accept", { ids: [acceptedModel.id] })).status, 200);
    assert.equal(
      (await api("POST", "/api/frames/labels", { keys: [real[1].key, real[5].key], add: ["night"] })).status,
      200,
    );
    const clip = await api("POST", "/api/clips", {
      robot: REAL,
      from: real[4].timestampMs,
      to: real[7].timestampMs,
      name: "docking run",
      labels: ["docking"],
    });
    assert.equal(clip.status, 201);
    const accepted = [...mine.values()].flat().filter((b) =>
      !b.source.startsWith("model:") || b.id === acceptedModel.id
    );
    const span = [
      "--robot",
      REAL,
      "--from",
      String(real[0].timestampMs),
      "--to",
      String(real[11].timestampMs),
    ];

    /** A fresh export (what the catalog holds now: earlier steps changed it). */
    const exportNow = async (format: string) => {
      const out = `${work}/${format}-${crypto.randomUUID().slice(0, 8)}`;
      const exported = await run([
        "tools/export.ts",
        "--format",
        format,
        "--out",
        out,
        ...span,
        "--config",
        config,
      ]);
      assert.equal(exported.code, 0, exported.stderr);
      return out;
    };

    for (const format of ["coco", "yolo", "cvat", "label-studio"] as const) {
      await t.step(`${format}: our export imported back changes nothing`, async () => {
        const out = `${work}/${format}`;
        const exported = await run([
          "tools/export.ts",
          "--format",
          format,
          "--out",
          out,
          ...span,
          "--config",
          config,
        ]);
        assert.equal(exported.code, 0, exported.stderr);
        const before = await lastChange();
        const dry = await run(["tools/import.ts", "--format", format, out, "--dry-run", "--config", config]);
        assert.equal(dry.code, 0, dry.stderr);
        assert.deepEqual(changed(JSON.parse(dry.stdout)), [0, 0, 0, 0, 0], dry.stderr);
        const back = await run([
          "tools/import.ts",
          "--format",
          format,
          out,
          "--author",
          "roundtrip",
          "--config",
          config,
        ]);
        assert.equal(back.code, 0, back.stderr);
        const summary = JSON.parse(back.stdout);
        assert.deepEqual(changed(summary), [0, 0, 0, 0, 0], back.stderr);
        if (format === "label-studio") {
          // A task without boxes or tags has no annotation: it says nothing, and is noted once.
          const tasks: Json[] = JSON.parse(await Deno.readTextFile(`${out}/tasks.json`));
          assert.equal(summary.frames, tasks.filter((x) => x.annotations || x.predictions).length);
          assert.equal(summary.skipped, tasks.every((x) => x.annotations) ? 0 : 1, back.stderr);
        } else {
          assert.equal(summary.frames, 12, back.stderr);
          assert.equal(summary.skipped, 0, back.stderr);
        }
        // Label Studio's tasks carry the unaccepted pre-labels too (as predictions): found as they are.
        const preLabels = [...mine.values()].flat().length - accepted.length;
        assert.equal(summary.unchanged, accepted.length + (format === "label-studio" ? preLabels : 0));
        assert.equal(await lastChange(), before, "nothing journalled");
      });
    }

    await t.step(
      "coco edited: our box moved in place, a dropped person's box kept, a drawn box added",
      async () => {
        const files = await filesOf(`${work}/coco`, (n) => n.endsWith(".json"));
        const doc = JSON.parse(files[0].text);
        const moved = mine.get(real[0].key)![0];
        const dropped = mine.get(real[1].key)![0];
        doc.annotations = doc.annotations.filter((a: Json) => a.id !== dropped.id);
        const ann = doc.annotations.find((a: Json) => a.id === moved.id);
        ann.bbox[0] += 10;
        const negative = doc.images.find((i: Json) => i.file_name === imageName(real[2].key));
        doc.annotations.push({
          id: 999_999,
          image_id: negative.id,
          category_id: doc.categories.find((c: Json) => c.name === "door").id,
          bbox: [5, 6, 70, 80],
        });
        const edited = [{ name: files[0].name, text: JSON.stringify(doc) }];
        const first = await api("POST", "/api/import", { format: "coco", files: edited });
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.deepEqual(changed(first.body), [1, 1, 0, 0, 0]);
        const movedNow = (await boxesOn(real[0].key)).find((b) => b.id === moved.id);
        assert.deepEqual([movedNow.x, movedNow.source], [moved.x + 10, "human"]);
        assert.ok(
          (await boxesOn(real[1].key)).some((b) => b.id === dropped.id),
          "a person's box is never deleted",
        );
        const drawn = await boxesOn(real[2].key);
        assert.deepEqual(drawn.map((b) => [b.label, b.x, b.y, b.w, b.h, b.source]), [[
          "door",
          5,
          6,
          70,
          80,
          "import",
        ]]);
        const before = await lastChange();
        const again = await api("POST", "/api/import", { format: "coco", files: edited });
        assert.deepEqual(changed(again.body), [0, 0, 0, 0, 0]);
        assert.equal(await lastChange(), before);
        // The drawn box removed in the file: the import's own box goes, nothing else.
        doc.annotations = doc.annotations.filter((a: Json) => a.id !== 999_999);
        const removed = await api("POST", "/api/import", {
          format: "coco",
          files: [{ name: files[0].name, text: JSON.stringify(doc) }],
        });
        assert.deepEqual(changed(removed.body), [0, 0, 1, 0, 0]);
        assert.deepEqual(await boxesOn(real[2].key), []);
      },
    );

    await t.step(
      "yolo edited: a line moved is an import box beside ours, then moved in place; an emptied file clears it",
      async () => {
        const files = await filesOf(
          await exportNow("yolo"),
          (n) => n.endsWith(".txt") || n.endsWith(".yaml"),
        );
        const name = flatImageName(real[8].key).replace(/\.jpg$/, ".txt");
        const i = files.findIndex((x) => x.name.endsWith(name));
        const lines = files[i].text.trim().split("\n");
        const shift = (line: string, dx: number) => {
          const c = line.split(" ");
          c[1] = String(Number(c[1]) + dx);
          return c.join(" ");
        };
        const edit = (text: string) => files.map((x, j) => (j === i ? { ...x, text } : x));
        const first = await api("POST", "/api/import", {
          format: "yolo",
          files: edit([shift(lines[0], 0.01), ...lines.slice(1)].join("\n")),
        });
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.deepEqual(changed(first.body), [1, 0, 0, 0, 0]);
        const added = (await boxesOn(real[8].key)).filter((b) => b.source === "import");
        assert.equal(added.length, 1);
        const second = await api("POST", "/api/import", {
          format: "yolo",
          files: edit([shift(lines[0], 0.02), ...lines.slice(1)].join("\n")),
        });
        assert.deepEqual(changed(second.body), [0, 1, 0, 0, 0]);
        const movedNow = (await boxesOn(real[8].key)).find((b) => b.id === added[0].id);
        assert.ok(Math.abs(movedNow.x - (added[0].x + 0.01)) < 1e-12, `${movedNow.x}`);
        const same = await api("POST", "/api/import", {
          format: "yolo",
          files: edit([shift(lines[0], 0.02), ...lines.slice(1)].join("\n")),
        });
        assert.deepEqual(changed(same.body), [0, 0, 0, 0, 0]);
        const emptied = await api("POST", "/api/import", { format: "yolo", files: edit("") });
        assert.deepEqual(changed(emptied.body), [0, 0, 1, 0, 0]);
        assert.deepEqual((await boxesOn(real[8].key)).map((b) => b.source).sort(), ["human", "human"]);
      },
    );

    await t.step(
      "cvat edited: a box and a tag drawn on a negative; the same file again changes nothing",
      async () => {
        const files = await filesOf(await exportNow("cvat"), (n) => n.endsWith(".xml"));
        const name = imageName(real[10].key);
        const at = files[0].text.indexOf(`name="${name}"`);
        assert.ok(at > 0);
        const close = files[0].text.indexOf("</image>", at);
        const text = files[0].text.slice(0, close) +
          `    <box label="door" source="manual" occluded="0" xtl="10.5" ytl="20.25" xbr="110.5" ybr="220.25" z_order="0"></box>\n` +
          `    <tag label="wet_floor" source="manual"></tag>\n  ` + files[0].text.slice(close);
        const first = await api("POST", "/api/import", {
          format: "cvat",
          files: [{ name: files[0].name, text }],
        });
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.deepEqual(changed(first.body), [1, 0, 0, 0, 1]);
        const [drawn] = await boxesOn(real[10].key);
        const px = boxPixels({ ...drawn, imageWidth: drawn.image_width, imageHeight: drawn.image_height });
        assert.deepEqual([drawn.label, px.x, px.y, px.w, px.h], ["door", 10.5, 20.25, 100, 200]);
        const labels = (await api("GET", `/api/frames/${enc(real[10].key)}`)).body.direct_labels;
        assert.deepEqual(labels, ["wet_floor"]);
        const before = await lastChange();
        const again = await api("POST", "/api/import", {
          format: "cvat",
          files: [{ name: files[0].name, text }],
        });
        assert.deepEqual(changed(again.body), [0, 0, 0, 0, 0]);
        assert.equal(await lastChange(), before);
      },
    );

    await t.step("bad input is refused whole, naming file and line; nothing written", async () => {
      const before = await lastChange();
      const r = await api("POST", "/api/import", {
        format: "cvat",
        files: [{
          name: "annotations.xml",
          text:
            `<annotations>\n<image name="x.jpg" width="1" height="1">\n<box label="door" xtl="q" ytl="0" xbr="1" ybr="1"/></image></annotations>`,
        }],
      });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /annotations\.xml line 3 <box>: xtl "q" must be a number/);
      const unknown = await api("POST", "/api/import", { format: "pascal", files: [] });
      assert.equal(unknown.status, 400);
      assert.match(
        unknown.body.error,
        /format "pascal" is not one the import reads: use coco, yolo, cvat, label-studio/,
      );
      assert.equal(await lastChange(), before);
    });
  } finally {
    await server.shutdown();
    await f.close();
    await Deno.remove(work, { recursive: true });
  }
});
