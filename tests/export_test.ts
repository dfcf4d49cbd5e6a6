/**
 * Export against the real S3 server of the local stack: frames put with the rustfs plugin (and one archived
 * with s3_archive), catalog rows and labels, exported to a directory and to a tar file that the system `tar`
 * reads back as an independent check.
 */
import assert from "node:assert/strict";
import { Catalog, type FrameRow } from "../src/catalog.ts";
import { exportFileName, exportFrames, tarHeader, tierFetcher } from "../src/export.ts";
import { Labels } from "../src/labels.ts";
import { loadStorage } from "../src/plugin_loader.ts";
import type { StoragePlugin } from "../src/plugin.ts";
import { spawnDeno } from "../tools/processes.ts";
import { stackEndpoints, stackUp } from "../tools/stack.ts";
import { greyJpeg } from "./support/images.ts";
import { frameRow, T0 } from "./support/rows.ts";

/** Only S3 is needed here: start the stack's S3 server when nothing answers on its port. */
async function ensureS3(): Promise<string> {
  const endpoint = stackEndpoints().s3Endpoint;
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(endpoint).port) })).close();
  } catch {
    await stackUp(["s3"]);
  }
  return endpoint;
}

async function tar(args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command("tar", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `tar ${args.join(" ")}: ${text}`);
  return text;
}

async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await filesUnder(dir, path));
    else out.push(path);
  }
  return out.sort();
}

const LONG = "a-very-long-label-name-to-push-the-tar-path-past-100-bytes-xx"; // 61 characters
const ROBOT = "reachy-with-a-rather-long-robot-identifier-001"; // 46 characters

Deno.test("export labelled frames to a directory and to a tar, from both tiers", async () => {
  const endpoint = await ensureS3();
  const bucket = `export-${crypto.randomUUID().slice(0, 8)}`;
  const local = await loadStorage("rustfs", { endpoint, bucket });
  const archive = await loadStorage("s3_archive", {
    endpoint,
    bucket: `${bucket}-archive`,
    accessKey: "rustfsadmin",
    secretKey: "rustfsadmin",
    createBucket: true,
  });
  await local.open();
  await archive.open();
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-export-test-" });
  const catalog = new Catalog(`${dir}/catalog.sqlite`);
  try {
    // Six frames, each its own JPEG. f0: door; f1: door + person; f2, f3: in a clip labelled person (f3 is
    // archived: only in the archive bucket); f4: unlabelled; f5: other (not exported); f6 (long names): LONG.
    const rows: FrameRow[] = [
      frameRow("r1", T0, 0),
      frameRow("r1", T0 + 1000, 1),
      frameRow("r2", T0 + 2000, 2),
      frameRow("r2", T0 + 3000, 3, { tier: "archive" }),
      frameRow("r2", T0 + 4000, 4),
      frameRow("r1", T0 + 5000, 5),
      frameRow(ROBOT, T0 + 6000, 6),
    ];
    const jpegs = rows.map((_, i) => greyJpeg(64, 48, (x, y) => (x * (i + 1) + y * 3) % 256));
    for (const [i, row] of rows.entries()) {
      row.size = jpegs[i].length;
      if (row.tier === "archive") await archive.put(`archive/${row.key}`, jpegs[i]);
      else await local.put(row.key, jpegs[i], { contentType: "image/jpeg" });
    }
    catalog.upsertMany(rows);
    const labels = new Labels(catalog);
    labels.addLabels({ keys: [rows[0].key, rows[1].key] }, ["door"]);
    labels.addLabels({ keys: [rows[1].key] }, ["person"]);
    labels.createClip({
      robotId: "r2",
      fromMs: T0 + 2000,
      toMs: T0 + 3500,
      name: "corridor",
      labels: ["person"],
    });
    labels.addLabels({ keys: [rows[5].key] }, ["other"]);
    labels.addLabels({ keys: [rows[6].key] }, [LONG]);

    const fetch = tierFetcher({ local, archive, archivePrefix: "archive/" });
    const name = (i: number) => exportFileName(rows[i]);
    const expected = [
      `door/${name(0)}`,
      `door/${name(1)}`,
      `person/${name(1)}`,
      `person/${name(2)}`,
      `person/${name(3)}`,
      `${LONG}/${name(6)}`,
    ];
    const bodyOf = new Map(
      expected.map((p) => [p, jpegs[rows.findIndex((r) => p.endsWith(exportFileName(r)))]]),
    );
    assert.equal(name(1), "r1_20260218T090001000Z_000001.jpg");

    // To a directory.
    const progress: number[] = [];
    const summary = await exportFrames(catalog, `${dir}/out`, {
      labels: ["door", "person", LONG],
      fetch,
      progress: (p) => progress.push(p.frames),
    });
    assert.deepEqual(
      { files: summary.files, frames: summary.frames, total: summary.total, missing: summary.missing },
      { files: 6, frames: 5, total: 5, missing: 0 },
    );
    assert.deepEqual(summary.perLabel, { door: 2, person: 3, [LONG]: 1 });
    assert.equal(progress.at(-1), 5, "progress ends with the full count");
    assert.deepEqual(await filesUnder(`${dir}/out`), [...expected, "metadata.jsonl"].sort());
    for (const p of expected) assert.deepEqual(await Deno.readFile(`${dir}/out/${p}`), bodyOf.get(p), p);
    const meta = (await Deno.readTextFile(`${dir}/out/metadata.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(meta.map((m) => m.file_name).sort(), [...expected].sort());
    const m1 = meta.find((m) => m.file_name === `person/${name(1)}`);
    assert.deepEqual(m1, {
      file_name: `person/${name(1)}`,
      label: "person",
      robot_id: "r1",
      capture_time: "2026-02-18T09:00:01.000Z",
      timestamp_ms: T0 + 1000,
      seq: 1,
      key: rows[1].key,
      tier: "local",
      labels: ["door", "person"],
      clips: [],
    });
    const m3 = meta.find((m) => m.file_name === `person/${name(3)}`);
    assert.deepEqual([m3.tier, m3.labels, m3.clips], ["archive", ["person"], ["corridor"]]);
    await assert.rejects(
      () => exportFrames(catalog, `${dir}/out`, { labels: ["door"], fetch }),
      /output directory .* is not empty/,
    );

    // To a tar, read back by the system tar.
    const tarPath = `${dir}/set.tar`;
    const tarSummary = await exportFrames(catalog, tarPath, { labels: ["door", "person", LONG], fetch });
    assert.equal(tarSummary.files, 6);
    assert.equal((await Deno.stat(tarPath)).size % 512, 0);
    await assert.rejects(() => Deno.stat(`${tarPath}.partial`), Deno.errors.NotFound);
    const listed = (await tar(["-tf", tarPath])).trim().split("\n");
    assert.deepEqual(
      listed.filter((l) => !l.endsWith("/")).sort(),
      [...expected, "metadata.jsonl"].sort(),
    );
    assert.deepEqual(listed.filter((l) => l.endsWith("/")).sort(), ["door/", "person/", `${LONG}/`].sort());
    await Deno.mkdir(`${dir}/untar`);
    await tar(["-xf", tarPath], `${dir}/untar`);
    for (const p of expected) assert.deepEqual(await Deno.readFile(`${dir}/untar/${p}`), bodyOf.get(p), p);
    const tarMeta = (await Deno.readTextFile(`${dir}/untar/metadata.jsonl`)).trim().split("\n");
    assert.deepEqual(tarMeta.map((l) => JSON.parse(l)), meta, "the same metadata lines");
    // Capture times are the files' modification times.
    assert.equal(
      (await Deno.stat(`${dir}/untar/door/${name(1)}`)).mtime?.getTime(),
      Math.floor((T0 + 1000) / 1000) * 1000,
    );

    // A robot and time filter; a frame missing from every store is reported and left out.
    await local.delete(rows[0].key);
    const missing: string[] = [];
    const partial = await exportFrames(catalog, `${dir}/r1.tar`, {
      labels: ["door"],
      robots: ["r1"],
      fromMs: T0,
      toMs: T0 + 1000,
      fetch,
      onMissing: (row) => missing.push(row.key),
    });
    assert.deepEqual(missing, [rows[0].key]);
    assert.deepEqual([partial.files, partial.missing], [1, 1]);
    assert.deepEqual((await tar(["-tf", `${dir}/r1.tar`])).trim().split("\n"), [
      "door/",
      `door/${name(1)}`,
      "metadata.jsonl",
    ]);
    await assert.rejects(
      () => exportFrames(catalog, `${dir}/x.tar`, { labels: ["nope"], fetch }),
      /unknown label/,
    );
    // A failing fetch removes the partial tar.
    await assert.rejects(
      () =>
        exportFrames(catalog, `${dir}/fail.tar`, {
          labels: ["person"],
          fetch: () => Promise.reject(new Error("boom")),
        }),
      /boom/,
    );
    await assert.rejects(() => Deno.stat(`${dir}/fail.tar.partial`), Deno.errors.NotFound);
    await assert.rejects(() => Deno.stat(`${dir}/fail.tar`), Deno.errors.NotFound);
  } finally {
    catalog.close();
    await emptyBucket(local);
    await emptyBucket(archive);
    local.close();
    archive.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function emptyBucket(store: StoragePlugin): Promise<void> {
  for await (const o of store.list()) await store.delete(o.key);
}

Deno.test("tar headers: ustar fields, checksum, long paths split into prefix and name", () => {
  const h = tarHeader("door/x.jpg", 1234, 1_700_000_000_000);
  const text = (from: number, len: number) =>
    new TextDecoder().decode(h.subarray(from, from + len)).replace(/\0+$/, "");
  assert.equal(text(0, 100), "door/x.jpg");
  assert.equal(text(124, 12), (1234).toString(8).padStart(11, "0"));
  assert.equal(text(136, 12), (1_700_000_000).toString(8).padStart(11, "0"));
  assert.equal(text(257, 6), "ustar");
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  assert.equal(parseInt(text(148, 7), 8), sum);
  const long = tarHeader(`${"d".repeat(120)}/${"f".repeat(90)}.jpg`, 0, 0);
  assert.equal(new TextDecoder().decode(long.subarray(345, 345 + 120)), "d".repeat(120));
  assert.throws(() => tarHeader("x".repeat(300), 0, 0), /too long for a ustar archive/);
});

Deno.test("deno task export writes a tar with progress on stderr", async () => {
  const endpoint = await ensureS3();
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-export-cli-" });
  const bucket = `export-cli-${crypto.randomUUID().slice(0, 8)}`;
  const config = `${dir}/config.toml`;
  await Deno.writeTextFile(
    config,
    `[rustfs]\nendpoint = "${endpoint}"\nbucket = "${bucket}"\n[catalog]\ndata_dir = "${dir}/data"\n`,
  );
  const local = await loadStorage("rustfs", { endpoint, bucket });
  await local.open();
  const catalog = new Catalog(`${dir}/data/catalog.sqlite`);
  try {
    const rows = [frameRow("r1", T0, 0), frameRow("r1", T0 + 1000, 1)];
    for (const row of rows) await local.put(row.key, greyJpeg(16, 16, () => 128));
    catalog.upsertMany(rows);
    new Labels(catalog).addLabels({ keys: [rows[1].key] }, ["door"]);
    const child = spawnDeno("export", "tools/export.ts", [
      "--label",
      "door",
      "--out",
      `${dir}/out.tar`,
      "--config",
      config,
    ]);
    const code = await child.exited;
    const out = child.lines.join("\n");
    assert.equal(code, 0, out);
    assert.match(out, /^ {2}1\/1 frames, 1 files, [\d.]+ MB, 0 missing/m);
    assert.match(out, new RegExp(`^exported 1 files \\(door 1\\) from 1 frames to ${dir}/out.tar$`, "m"));
    assert.deepEqual((await tar(["-tf", `${dir}/out.tar`])).trim().split("\n"), [
      "door/",
      `door/${exportFileName(rows[1])}`,
      "metadata.jsonl",
    ]);
  } finally {
    catalog.close();
    await emptyBucket(local);
    local.close();
    await Deno.remove(dir, { recursive: true });
  }
});
