/**
 * Export against the real S3 server of the local stack: frames put with the rustfs plugin (and one archived
 * with s3_archive), catalog rows and labels, exported to a directory and to a tar file that the system `tar`
 * (and, for PAX headers, Python's tarfile) reads back as an independent check. Outages are real too: a store
 * at a closed loopback port, or reached through a TCP proxy of this test that stops forwarding.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { FrameRow, LabelStore } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { ServiceError } from "../../src/errors.ts";
import {
  exportFileName,
  type ExportFilter,
  exportFrames,
  type FetchFrame,
  labelFolder,
  tarHeader,
  tierFetcher,
} from "../../src/library/export.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { openTiers } from "../support/stores.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { searchAll } from "../../src/library/search.ts";
import { startLatencyProxy } from "../../dev/latency_proxy.ts";
import { freePort, spawnDeno } from "../../dev/processes.ts";
import { greyJpeg } from "../support/images.ts";
import { frameRow, T0 } from "../support/rows.ts";
import { ensureS3 } from "../support/stack.ts";
import { sleep } from "../../src/ingest/camera.ts";

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
  const { local, archive } = await openTiers(endpoint, bucket);
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-export-test-" });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
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
    await catalog.upsertMany(rows);
    const labels = catalog.labels();
    await labels.addLabels({ keys: [rows[0].key, rows[1].key] }, ["door"]);
    await labels.addLabels({ keys: [rows[1].key] }, ["person"]);
    await labels.createClip({
      robotId: "r2",
      fromMs: T0 + 2000,
      toMs: T0 + 3500,
      name: "corridor",
      labels: ["person"],
    });
    await labels.addLabels({ keys: [rows[5].key] }, ["other"]);
    await labels.addLabels({ keys: [rows[6].key] }, [LONG]);

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
      "MISSING.txt",
    ]);
    const missingText = await tar(["-xOf", `${dir}/r1.tar`, "MISSING.txt"]);
    assert.match(missingText, /^INCOMPLETE EXPORT: 1 of the 2 matching frames are not in this dataset\./);
    assert.ok(
      missingText.includes(`${rows[0].key}\trobot r1\t2026-02-18T09:00:00.000Z\ttier local\n`),
      missingText,
    );
    await assert.rejects(
      () => exportFrames(catalog, `${dir}/x.tar`, { labels: ["nope"], fetch }),
      /unknown label/,
    );
    // A fetch that keeps failing is tried again, then fails the export with nothing written.
    let calls = 0;
    await assert.rejects(
      () =>
        exportFrames(catalog, `${dir}/fail.tar`, {
          labels: ["person"],
          fetch: () => (calls++, Promise.reject(new Error("boom"))),
          retryDelaysMs: [10],
          readAhead: 0, // one frame at a time, so the calls are counted exactly
        }),
      /frame 1 of 3 \(frames\/r1\/.*, tier local\) could not be read after 2 attempts: boom/,
    );
    assert.equal(calls, 2);
    await assert.rejects(() => Deno.stat(`${dir}/fail.tar.partial`), Deno.errors.NotFound);
    await assert.rejects(() => Deno.stat(`${dir}/fail.tar`), Deno.errors.NotFound);
  } finally {
    await catalog.close();
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
  assert.equal(long.length, 512);
  assert.equal(new TextDecoder().decode(long.subarray(345, 345 + 120)), "d".repeat(120));
  // Too long for ustar, or not ASCII: a PAX extended header ('x') with the path, then the ustar header.
  for (const path of ["x".repeat(300), "漢/a.jpg"]) {
    const pax = tarHeader(path, 7, 0);
    assert.equal(pax.length % 512, 0);
    assert.equal(String.fromCharCode(pax[156]), "x");
    const size = parseInt(new TextDecoder().decode(pax.subarray(124, 135)), 8);
    const record = new TextDecoder().decode(pax.subarray(512, 512 + size));
    assert.equal(record, `${size} path=${path}\n`);
    assert.equal(new TextEncoder().encode(record).length, size, "the record length counts itself");
    assert.equal(String.fromCharCode(pax[pax.length - 512 + 156]), "0");
  }
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
  const catalog = new SqliteCatalog(`${dir}/data/catalog.sqlite`);
  try {
    const rows = [frameRow("r1", T0, 0), frameRow("r1", T0 + 1000, 1)];
    for (const row of rows) await local.put(row.key, greyJpeg(16, 16, () => 128));
    await catalog.upsertMany(rows);
    (await catalog.labels()).addLabels({ keys: [rows[1].key] }, ["door"]);
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
    await catalog.close();
    await emptyBucket(local);
    local.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------------------
// Shared set-up of the tests below: a bucket on the stack's S3 server, a catalog, frames stored and labelled.

interface Bed {
  endpoint: string;
  bucket: string;
  local: StoragePlugin;
  catalog: SqliteCatalog;
  labels: LabelStore;
  /** A second connection to the catalog file, for writing what the API no longer accepts (old labels). */
  raw: DatabaseSync;
  dir: string;
  rows: FrameRow[];
  jpegs: Map<string, Uint8Array>;
  close(): Promise<void>;
}

/** `n` frames of ROBOT, one second apart, each its own JPEG, stored in a new bucket and catalogued. */
async function bed(n: number): Promise<Bed> {
  const endpoint = await ensureS3();
  const bucket = `export-${crypto.randomUUID().slice(0, 8)}`;
  const local = await loadStorage("rustfs", { endpoint, bucket });
  await local.open();
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-export-test-" });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  const rows = Array.from({ length: n }, (_, i) => frameRow(ROBOT, T0 + i * 1000, i));
  const jpegs = new Map<string, Uint8Array>();
  await Promise.all(rows.map(async (row, i) => {
    const jpeg = greyJpeg(32, 24, (x, y) => (x * (i + 2) + y * 5) % 256);
    row.size = jpeg.length;
    jpegs.set(row.key, jpeg);
    await local.put(row.key, jpeg, { contentType: "image/jpeg" });
  }));
  await catalog.upsertMany(rows);
  return {
    endpoint,
    bucket,
    local,
    catalog,
    labels: catalog.labels(),
    raw: new DatabaseSync(catalog.path),
    dir,
    rows,
    jpegs,
    async close() {
      await catalog.close();
      await emptyBucket(local);
      local.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Names in a tar as Python's tarfile reads them (an independent PAX reader), and extracts it to `into`. */
async function pythonTar(path: string, into: string): Promise<string[]> {
  const script = `import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    names = [m.name + ("/" if m.isdir() else "") for m in t.getmembers()]
    t.extractall(sys.argv[2], filter="data")
print(json.dumps(names))`;
  const out = await new Deno.Command("python3", {
    args: ["-c", script, path, into],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

const HAN = "漢".repeat(64); // 64 characters, 192 bytes of UTF-8: the longest label the API accepts
// Labels that Windows cannot take as folder names, each with the folder the export gives it.
const UNSAFE: [string, string][] = [
  ['a:b*?|<>"', "a%3Ab%2A%3F%7C%3C%3E%22"],
  ["CON", "%43ON"],
  ["lpt1.old", "%6Cpt1.old"],
  ["trailing.", "trailing%2E"],
  ["100%", "100%25"],
];

Deno.test("labels that break ustar or Windows: PAX long names and escaped folders, read by GNU tar and Python", async () => {
  const b = await bed(4);
  try {
    // A label made before bidirectional-text controls were refused (the catalog may hold one): its folder is
    // escaped too.
    const BIDI = "exe\u202etxt";
    b.raw.prepare("INSERT INTO labels (name) VALUES (?)").run(BIDI);
    await b.labels.addLabels({ keys: [b.rows[0].key, b.rows[1].key] }, [HAN]);
    for (const [label] of UNSAFE) await b.labels.addLabels({ keys: [b.rows[2].key] }, [label]);
    b.raw.prepare(
      "INSERT INTO frame_labels (key, label_id, created_ms, author) SELECT ?, id, 0, NULL FROM labels WHERE name = ?",
    ).run(b.rows[3].key, BIDI);
    const all = [HAN, ...UNSAFE.map(([l]) => l), BIDI];
    const folderOf = new Map<string, string>([
      [HAN, HAN],
      ...UNSAFE,
      [BIDI, "exe%E2%80%AEtxt"],
    ]);
    for (const [label, folder] of folderOf) assert.equal(labelFolder(label), folder, label);
    const fetch = tierFetcher({ local: b.local, archivePrefix: "archive/" });
    const expected = [
      ...[0, 1].map((i) => `${HAN}/${exportFileName(b.rows[i])}`),
      ...UNSAFE.map(([, folder]) => `${folder}/${exportFileName(b.rows[2])}`),
      `exe%E2%80%AEtxt/${exportFileName(b.rows[3])}`,
    ];
    assert.ok(new TextEncoder().encode(expected[0]).length > 255, "a path beyond ustar's 100 + 155 bytes");

    const tarPath = `${b.dir}/set.tar`;
    const summary = await exportFrames(b.catalog, tarPath, { labels: all, fetch });
    assert.deepEqual([summary.frames, summary.files, summary.missing], [4, expected.length, 0]);
    const folders = [...folderOf.values()].map((f) => `${f}/`);
    // GNU tar lists and extracts the real paths.
    const listed = (await tar(["-tf", tarPath])).trim().split("\n");
    assert.deepEqual(listed.sort(), [...folders, ...expected, "metadata.jsonl"].sort());
    await Deno.mkdir(`${b.dir}/gnu`);
    await tar(["-xf", tarPath], `${b.dir}/gnu`);
    // Python's tarfile too (its "data" filter refuses unsafe members, so this also says none is).
    const py = await pythonTar(tarPath, `${b.dir}/py`);
    assert.deepEqual(py.sort(), listed.sort());
    for (const root of ["gnu", "py"]) {
      assert.deepEqual(await filesUnder(`${b.dir}/${root}`), [...expected, "metadata.jsonl"].sort(), root);
      for (const p of expected) {
        const key = b.rows.find((r) => p.endsWith(exportFileName(r)))!.key;
        assert.deepEqual(await Deno.readFile(`${b.dir}/${root}/${p}`), b.jpegs.get(key), `${root}: ${p}`);
      }
    }
    // metadata.jsonl keeps the labels as they are; file_name is the path in the archive.
    const meta = (await Deno.readTextFile(`${b.dir}/gnu/metadata.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(
      meta.map((m) => [m.label, m.file_name]).sort(),
      expected.map((p) => [[...folderOf].find(([, f]) => p.startsWith(`${f}/`))![0], p]).sort(),
    );

    // The same to a directory.
    await exportFrames(b.catalog, `${b.dir}/out`, { labels: all, fetch });
    assert.deepEqual(await filesUnder(`${b.dir}/out`), [...expected, "metadata.jsonl"].sort());

    // Labels that differ only in case would share a folder on Windows and macOS: refused, naming both.
    await b.labels.addLabels({ keys: [b.rows[0].key] }, ["Door", "door"]);
    await assert.rejects(
      () => exportFrames(b.catalog, `${b.dir}/case.tar`, { labels: ["Door", "door"], fetch }),
      /labels "Door" and "door" differ only in case/,
    );
    assert.equal(await exists(`${b.dir}/case.tar.partial`), false);
  } finally {
    await b.close();
  }
});

Deno.test("search and export of the same filters give the same frames (all labels, tier, robot, span)", async () => {
  const b = await bed(8);
  try {
    const other = frameRow("r2", T0 + 500, 100);
    await b.local.put(other.key, greyJpeg(16, 16, () => 50));
    await b.catalog.upsertMany([other]);
    await b.labels.addLabels({ keys: b.rows.slice(0, 6).map((r) => r.key) }, ["door"]);
    await b.labels.addLabels({ keys: [...b.rows.slice(3, 8).map((r) => r.key), other.key] }, ["person"]);
    // Two of the frames are archived: marked so in the catalog (the export then reads them from the archive
    // first, falling back to the local store, where they still are).
    b.raw.prepare("UPDATE frames SET tier = 'archive' WHERE key IN (?, ?)").run(
      b.rows[4].key,
      b.rows[6].key,
    );
    const fetch = tierFetcher({ local: b.local, archivePrefix: "archive/" });
    const filters: ExportFilter[] = [
      { labels: ["door", "person"] },
      { labels: ["door", "person"], allLabels: true },
      { labels: ["door", "person"], allLabels: true, tiers: ["archive"] },
      { labels: ["person"], tiers: ["local"] },
      { labels: ["person"], robots: ["r2"] },
      { labels: ["door"], fromMs: T0 + 2000, toMs: T0 + 4000 },
      { labels: ["door"], allLabels: true, tiers: ["archiving"] },
    ];
    let n = 0;
    for (const filter of filters) {
      const found = (await Array.fromAsync(searchAll(b.catalog, { ...filter, order: "oldest" }))).map((h) =>
        h.frame.key
      );
      const out = `${b.dir}/f${n++}`;
      const summary = await exportFrames(b.catalog, out, { ...filter, fetch });
      const meta = (await Deno.readTextFile(`${out}/metadata.jsonl`)).split("\n").filter(Boolean).map((l) =>
        JSON.parse(l).key as string
      );
      assert.deepEqual([...new Set(meta)], found, JSON.stringify(filter));
      assert.equal(summary.total, found.length, JSON.stringify(filter));
      assert.equal(summary.frames, found.length, JSON.stringify(filter));
    }
  } finally {
    await b.close();
  }
});

Deno.test("a store that is down: the export fails before writing anything, naming the frame and the store", async () => {
  const b = await bed(3);
  const closed = freePort(); // nothing listens here
  const down = await loadStorage("rustfs", { endpoint: `http://127.0.0.1:${closed}`, bucket: b.bucket });
  try {
    await b.labels.addLabels({ keys: b.rows.map((r) => r.key) }, ["door"]);
    const fetch = tierFetcher({ local: down, archivePrefix: "archive/" });
    for (const out of [`${b.dir}/down.tar`, `${b.dir}/down-dir`]) {
      await assert.rejects(
        () => exportFrames(b.catalog, out, { labels: ["door"], fetch }),
        (error: Error) => {
          assert.ok(error instanceof ServiceError, String(error));
          assert.match(
            error.message,
            new RegExp(
              `^frame 1 of 3 \\(${b.rows[0].key}, tier local\\) could not be read after 3 attempts: .*` +
                `127\\.0\\.0\\.1:${closed}.*unreachable`,
            ),
          );
          return true;
        },
      );
      assert.equal(await exists(out), false, out);
      assert.equal(await exists(`${out}.partial`), false, out);
    }
  } finally {
    down.close();
    await b.close();
  }
});

Deno.test("a store that fails mid-export: the partial tar or directory is removed", async () => {
  const b = await bed(6);
  const proxy = startLatencyProxy({ hostname: "127.0.0.1", port: Number(new URL(b.endpoint).port) }, 0);
  const viaProxy = await loadStorage("rustfs", {
    endpoint: `http://127.0.0.1:${proxy.port}`,
    bucket: b.bucket,
  });
  try {
    await b.labels.addLabels({ keys: b.rows.map((r) => r.key) }, ["door"]);
    const real = tierFetcher({ local: viaProxy, archivePrefix: "archive/" });
    for (
      const [out, existed] of [[`${b.dir}/cut.tar`, false], [`${b.dir}/cut-new`, false], [
        `${b.dir}/cut-empty`,
        true,
      ]] as const
    ) {
      if (existed) await Deno.mkdir(out);
      proxy.down = false;
      let fetched = 0;
      // The store goes away for good after the third frame.
      const fetch: FetchFrame = async (key, row) => {
        const bytes = await real(key, row);
        if (++fetched === 3) {
          proxy.down = true;
          proxy.dropConnections();
        }
        return bytes;
      };
      await assert.rejects(
        // One frame at a time, so "after the third frame" is exact (read-ahead is tested below).
        () =>
          exportFrames(b.catalog, out, { labels: ["door"], fetch, retryDelaysMs: [50, 100], readAhead: 0 }),
        /^ServiceError: frame 4 of 6 \(.*\) could not be read after 3 attempts/,
      );
      assert.equal(fetched, 3);
      assert.equal(await exists(`${out}.partial`), false, out);
      if (existed) assert.deepEqual(await filesUnder(out), [], `${out} is left as it was: empty`);
      else assert.equal(await exists(out), false, out);
    }
  } finally {
    viaProxy.close();
    await proxy.close();
    await b.close();
  }
});

Deno.test("frames no store holds are listed in MISSING.txt; when none is found the export fails", async () => {
  const b = await bed(4);
  try {
    await b.labels.addLabels({ keys: b.rows.map((r) => r.key) }, ["door"]);
    await b.labels.addLabels({ keys: [b.rows[1].key, b.rows[3].key] }, ["gone"]);
    await b.local.delete(b.rows[1].key);
    await b.local.delete(b.rows[3].key);
    const fetch = tierFetcher({ local: b.local, archivePrefix: "archive/" });
    const summary = await exportFrames(b.catalog, `${b.dir}/m.tar`, { labels: ["door"], fetch });
    assert.deepEqual([summary.frames, summary.files, summary.missing], [4, 2, 2]);
    const names = (await tar(["-tf", `${b.dir}/m.tar`])).trim().split("\n");
    assert.equal(names.at(-1), "MISSING.txt", "the last entry");
    const text = await tar(["-xOf", `${b.dir}/m.tar`, "MISSING.txt"]);
    assert.match(text, /^INCOMPLETE EXPORT: 2 of the 4 matching frames are not in this dataset\./);
    for (const i of [1, 3]) assert.ok(text.includes(`${b.rows[i].key}\t`), text);
    await exportFrames(b.catalog, `${b.dir}/m-dir`, { labels: ["door"], fetch });
    assert.equal(await Deno.readTextFile(`${b.dir}/m-dir/MISSING.txt`), text);

    await assert.rejects(
      () => exportFrames(b.catalog, `${b.dir}/none.tar`, { labels: ["gone"], fetch }),
      new RegExp(`none of the 2 matching frames is in any store \\(the first, ${b.rows[1].key}, tier local`),
    );
    assert.equal(await exists(`${b.dir}/none.tar`), false);
    assert.equal(await exists(`${b.dir}/none.tar.partial`), false);
  } finally {
    await b.close();
  }
});

Deno.test("deno task export: exit 1 with the reason when the store is down, cut off mid-export, or frames are missing", async () => {
  const b = await bed(30);
  const proxy = startLatencyProxy({ hostname: "127.0.0.1", port: Number(new URL(b.endpoint).port) }, 0);
  const config = (endpoint: string) =>
    `[rustfs]\nendpoint = "${endpoint}"\nbucket = "${b.bucket}"\n[catalog]\ndata_dir = "${b.dir}"\n`;
  const run = (configPath: string, out: string) =>
    spawnDeno("export", "tools/export.ts", ["--label", "door", "--out", out, "--config", configPath]);
  try {
    await b.labels.addLabels({ keys: b.rows.map((r) => r.key) }, ["door"]);

    // The store is down from the start: nothing is written.
    const closed = freePort();
    await Deno.writeTextFile(`${b.dir}/down.toml`, config(`http://127.0.0.1:${closed}`));
    const down = run(`${b.dir}/down.toml`, `${b.dir}/down.tar`);
    assert.equal(await down.exited, 1, down.lines.join("\n"));
    const message = down.lines.find((l) => l.startsWith("error: "))!;
    assert.match(
      message,
      new RegExp(
        `^error: export to ${b.dir}/down\\.tar failed, and nothing of it was kept: frame 1 of 30 ` +
          `\\(${
            b.rows[0].key
          }, tier local\\) could not be read after 3 attempts: .*127\\.0\\.0\\.1:${closed}`,
      ),
    );
    console.log(`  store down, as the CLI reports it (exit ${await down.exited}): ${message}`);
    assert.equal(await exists(`${b.dir}/down.tar`), false);
    assert.equal(await exists(`${b.dir}/down.tar.partial`), false);

    // The store goes away once the tar has started: the partial tar is removed.
    await Deno.writeTextFile(`${b.dir}/proxy.toml`, config(`http://127.0.0.1:${proxy.port}`));
    proxy.delayMs = 100; // about 0.1 s per frame, so the export is still running when the store goes
    const cut = run(`${b.dir}/proxy.toml`, `${b.dir}/cut.tar`);
    for (let i = 0; !(await exists(`${b.dir}/cut.tar.partial`)); i++) {
      assert.ok(i < 6000, `the export did not start a tar within 60 s: ${cut.lines.join("\n")}`);
      await sleep(10);
    }
    proxy.down = true;
    proxy.dropConnections();
    assert.equal(await cut.exited, 1, cut.lines.join("\n"));
    const cutMessage = cut.lines.find((l) => l.startsWith("error: "))!;
    assert.match(
      cutMessage,
      /failed, and nothing of it was kept: frame \d+ of 30 .* could not be read after 3/,
    );
    console.log(`  store gone mid-export (exit 1): ${cutMessage}`);
    assert.equal(await exists(`${b.dir}/cut.tar`), false);
    assert.equal(await exists(`${b.dir}/cut.tar.partial`), false);

    // A frame whose object is gone: the tar is written with MISSING.txt, and the exit code says so.
    proxy.down = false;
    proxy.delayMs = 0;
    await b.local.delete(b.rows[7].key);
    const missing = run(`${b.dir}/proxy.toml`, `${b.dir}/m.tar`);
    assert.equal(await missing.exited, 1, missing.lines.join("\n"));
    assert.ok(
      missing.lines.includes(
        "INCOMPLETE: 1 of 30 frames are in no store and were left out; they are listed in MISSING.txt in the tar",
      ),
      missing.lines.join("\n"),
    );
    assert.equal((await tar(["-tf", `${b.dir}/m.tar`])).trim().split("\n").at(-1), "MISSING.txt");
  } finally {
    await proxy.close();
    await b.close();
  }
});
