/**
 * The Label Studio round trip, with Label Studio itself (tests/support/label_studio.ts: the pinned PyPI
 * `label-studio`, run on loopback): real reachy-001 frames in the stack's S3 (one only in the archive) get boxes
 * and a frame label through frame-bucket's API; frame-bucket exports them as Label Studio tasks (GET /api/export
 * ?format=label-studio: tasks.json with image URLs of this server, label_config.xml); a Label Studio project is
 * created with that config and those tasks through its API; there a person adds a rectangle on a frame that had
 * none and moves one of ours; Label Studio's JSON export is imported back (POST /api/import), and the new box is
 * found on the right frame with the right class and its percent coordinates as pixels, the moved box updated in
 * place, nothing else changed. Importing the same export again (deno task import) changes nothing.
 */
import assert from "node:assert/strict";
import { boxPixels } from "../../src/catalog/boxes.ts";
import type { Box } from "../../src/catalog/catalog.ts";
import { createApp } from "../../src/server/app.ts";
import { jpegSize } from "../../src/library/image_size.ts";
import { createLogger } from "../../src/log.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { startLabelStudio } from "../support/label_studio.ts";
import { ARCHIVE_PREFIX, REAL, uiFixture } from "../support/ui_fixture.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;
const quiet = createLogger({ level: "error", format: "text" });
const enc = encodeURIComponent;
const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-6, `${what}: ${a} vs ${b}`);

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("Label Studio round trip: our tasks into a Label Studio project, a box drawn and one moved there, exported, imported back", async () => {
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
    const type = r.headers.get("content-type") ?? "";
    const body = type.includes("json") ? await r.json() : new Uint8Array(await r.arrayBuffer());
    return { status: r.status, body };
  };
  const work = await Deno.makeTempDir({ prefix: "frame-bucket-label-studio-" });
  let ls: Awaited<ReturnType<typeof startLabelStudio>> | null = null;
  try {
    const real = f.rows.filter((r) => r.robotId === REAL);
    // A: a person's box and a model's unaccepted box; B: a box and the frame label "night"; C (archived): nothing.
    const [a, b, , c] = real;
    assert.equal(c.tier, "archive");
    const size = jpegSize(f.jpegs.get(c.key)!);
    assert.deepEqual(size, { width: 1920, height: 1080 });
    const added = async (key: string, boxes: unknown[]) => {
      const r = await api("POST", `/api/frames/${enc(key)}/boxes`, { boxes, author: "ann" });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.boxes as Box[];
    };
    const [person, pre] = await added(a.key, [
      { label: "person", x: 100.25, y: 200.5, w: 300.125, h: 400.75 },
      { label: "door", x: 1500, y: 10, w: 64, h: 64, source: "model:yolov8n", confidence: 0.42 },
    ]);
    await added(b.key, [{ label: "door", x: 0.25, y: 0.5, w: 0.125, h: 0.25, unit: "norm" }]);
    assert.equal((await api("POST", "/api/frames/labels", { keys: [b.key], add: ["night"] })).status, 200);
    // A class nobody used yet, so Label Studio offers it (classes=all).
    assert.equal((await api("POST", "/api/labels", { name: "forklift" })).status, 200);

    // frame-bucket's Label Studio export of A, B and the frame between them, and C.
    const tar = await api(
      "GET",
      `/api/export?format=label-studio&robot=${REAL}&from=${a.timestampMs}&to=${c.timestampMs}&classes=all` +
        `&server=${enc(base)}`,
    );
    assert.equal(tar.status, 200);
    await Deno.writeFile(`${work}/export.tar`, tar.body);
    const untar = await new Deno.Command("tar", { args: ["-xf", `${work}/export.tar`, "-C", work] }).output();
    assert.ok(untar.success, new TextDecoder().decode(untar.stderr));
    const tasks: Json[] = JSON.parse(await Deno.readTextFile(`${work}/tasks.json`));
    const labelConfig = await Deno.readTextFile(`${work}/label_config.xml`);
    assert.equal(tasks.length, 4);
    assert.match(labelConfig, /<Label value="forklift"\/>/);

    // Label Studio: a project with our config and our tasks.
    ls = await startLabelStudio();
    console.log(
      `Label Studio ${ls.version} up on ${ls.url} in ${ls.startSeconds.toFixed(1)} s` +
        (ls.builtTemplate ? " (first start: migrated its template)" : ""),
    );
    const project = await ls.api("POST", "/api/projects", {
      title: "frame-bucket round trip",
      label_config: labelConfig,
    });
    assert.equal(project.status, 201, project.text);
    const projectId = (project.json as Json).id;
    const imported = await ls.api("POST", `/api/projects/${projectId}/import`, tasks);
    assert.equal(imported.status, 201, imported.text);
    assert.equal((imported.json as Json).task_count, 4);
    assert.equal((imported.json as Json).annotation_count, 2);
    assert.equal((imported.json as Json).prediction_count, 1);
    const list = await ls.api("GET", `/api/tasks?project=${projectId}&page_size=100`);
    assert.equal(list.status, 200, list.text);
    const taskOf = new Map<string, Json>(((list.json as Json).tasks as Json[]).map((t) => [t.data.key, t]));
    assert.equal(taskOf.size, 4);

    // There: a person draws a forklift on C, and moves our person box on A 5 % to the right.
    const drawn = await ls.api("POST", `/api/tasks/${taskOf.get(c.key).id}/annotations`, {
      result: [{
        id: "ls-forklift-1",
        type: "rectanglelabels",
        from_name: "label",
        to_name: "image",
        original_width: 1920,
        original_height: 1080,
        image_rotation: 0,
        value: { x: 10, y: 20, width: 30, height: 40, rotation: 0, rectanglelabels: ["forklift"] },
      }],
    });
    assert.equal(drawn.status, 201, drawn.text);
    const taskA = await ls.api("GET", `/api/tasks/${taskOf.get(a.key).id}`);
    const annotationA = (taskA.json as Json).annotations[0];
    const result = (annotationA.result as Json[]).map((r) =>
      r.id === `fb${person.id}` ? { ...r, value: { ...r.value, x: r.value.x + 5 } } : r
    );
    assert.ok(result.some((r) => r.id === `fb${person.id}`), "Label Studio kept our box id");
    const patched = await ls.api("PATCH", `/api/annotations/${annotationA.id}`, { result });
    assert.equal(patched.status, 200, patched.text);

    // Label Studio's JSON export.
    const exported = await ls.api(
      "GET",
      `/api/projects/${projectId}/export?exportType=JSON&download_all_tasks=true`,
    );
    assert.equal(exported.status, 200, exported.text.slice(0, 300));
    const lsTasks = exported.json as Json[];
    assert.equal(lsTasks.length, 4);
    await Deno.writeTextFile(`${work}/label-studio-export.json`, exported.text);
    // Its image URLs are frame-bucket's: they serve the frame's JPEG (C from the archive).
    const exportedC = lsTasks.find((t) => t.data.key === c.key);
    const image = await fetch(exportedC.data.image);
    assert.equal(image.status, 200);
    assert.deepEqual(new Uint8Array(await image.arrayBuffer()), f.jpegs.get(c.key));

    // Into frame-bucket.
    const before = (await api("GET", "/api/changes?order=newest&limit=1")).body.changes[0].id;
    const back = await api("POST", "/api/import", { format: "label-studio", tasks: lsTasks, author: "ls" });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    console.log(
      `import of Label Studio's export: ${JSON.stringify({ ...back.body, skipped: back.body.skipped })}`,
    );
    assert.deepEqual(
      [
        back.body.frames,
        back.body.added,
        back.body.updated,
        back.body.deleted,
        back.body.accepted,
        back.body.labels,
      ],
      [3, 1, 1, 0, 0, 0],
    );
    // B's box came back as it was; A's pre-label is not in Label Studio's export (predictions by id only) and stays.
    assert.equal(back.body.unchanged, 1);
    assert.match(JSON.stringify(back.body.skipped), /1 prediction\(s\) given by id only/);

    // The box drawn in Label Studio: on C, a forklift, 10/20/30/40 % of 1920x1080 in pixels.
    const frameC = (await api("GET", `/api/frames/${enc(c.key)}`)).body;
    assert.equal(frameC.boxes.length, 1);
    const forklift = frameC.boxes[0];
    assert.deepEqual([forklift.label, forklift.source, forklift.unit, forklift.accepted, forklift.author], [
      "forklift",
      "import",
      "norm",
      true,
      "ls",
    ]);
    const px = boxPixels({
      ...forklift,
      imageWidth: forklift.image_width,
      imageHeight: forklift.image_height,
    });
    near(px.x, 192, "x");
    near(px.y, 216, "y");
    near(px.w, 576, "w");
    near(px.h, 432, "h");
    console.log(
      `found on ${c.key}: ${forklift.label} x=${px.x} y=${px.y} w=${px.w} h=${px.h} px (source ${forklift.source})`,
    );
    // The moved box: the same box, 96 px (5 % of 1920) to the right, its size kept.
    const movedA = (await api("GET", `/api/frames/${enc(a.key)}`)).body.boxes as Json[];
    const moved = movedA.find((x) => x.id === person.id);
    const movedPx = boxPixels({ ...moved, imageWidth: moved.image_width, imageHeight: moved.image_height });
    near(movedPx.x, 100.25 + 96, "moved x");
    near(movedPx.y, 200.5, "moved y");
    near(movedPx.w, 300.125, "moved w");
    assert.equal(moved.source, "human");
    const stillPre = movedA.find((x) => x.id === pre.id);
    assert.equal(stillPre.accepted, false);
    // B keeps its frame label, once.
    assert.deepEqual((await api("GET", `/api/frames/${enc(b.key)}`)).body.direct_labels, ["night"]);
    const after = (await api("GET", "/api/changes?order=newest&limit=10")).body.changes as Json[];
    const made = after.filter((x) => x.id > before).map((x) => x.action).sort();
    assert.deepEqual(made, ["box.add", "box.update"]);

    // The same export again, by the CLI: nothing changes, nothing is journalled.
    const endpoint = stackEndpoints().s3Endpoint;
    await Deno.writeTextFile(
      `${work}/config.toml`,
      `[catalog]\ndata_dir = "${f.dir}"\n[rustfs]\nendpoint = "${endpoint}"\nbucket = "${f.local.bucket}"\n` +
        `[aws_s3]\nbucket = "${f.archive.bucket}"\nendpoint = "${endpoint}"\nprefix = "${ARCHIVE_PREFIX}"\n`,
    );
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "tools/import.ts",
        "--format",
        "label-studio",
        `${work}/label-studio-export.json`,
        "--config",
        `${work}/config.toml`,
      ],
      cwd: PROJECT,
      env: { AWS_ACCESS_KEY_ID: "rustfsadmin", AWS_SECRET_ACCESS_KEY: "rustfsadmin", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(cli.stdout);
    assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
    const again = JSON.parse(out);
    assert.deepEqual(
      [again.added, again.updated, again.deleted, again.accepted, again.labels, again.unchanged],
      [0, 0, 0, 0, 0, 3],
    );
    const last = (await api("GET", "/api/changes?order=newest&limit=1")).body.changes[0].id;
    assert.equal(last, Math.max(...after.map((x) => x.id)), "a re-import writes no journal entry");
  } finally {
    await ls?.stop();
    await server.shutdown();
    await f.close();
    await Deno.remove(work, { recursive: true });
  }
});
