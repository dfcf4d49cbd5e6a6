/**
 * Eviction (src/retention/evictor.ts, move.ts, src/main/evict.ts) against the real S3 server of
 * the local stack (the local bucket and the archive bucket are two buckets of the same server): bytes-budget and
 * disk triggers, crash safety under SIGKILL at random points, an unreachable archive, and reading either tier.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { Catalog, FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { Evictor } from "../../src/retention/evictor.ts";
import { md5Hex } from "../../src/store/content.ts";
import { diskPercent, statfsUsage, type Usage } from "../../src/retention/plan.ts";
import { fetchFrame } from "../../src/store/tiers.ts";
import { settings } from "../support/eviction_settings.ts";
import { objectKey } from "../../src/key.ts";
import { createLogger, memoryLogger } from "../../src/log.ts";
import type { ObjectInfo, PutOptions, StoragePlugin } from "../../src/plugin.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { type Child, freePort, spawnDeno } from "../../dev/processes.ts";
import { PostgresCatalog } from "../../src/catalog/postgres.ts";
import { scratchPostgresUrl } from "../support/postgres.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY, stackEndpoints } from "../../tools/stack.ts";
import { isolatedConfig } from "../../dev/scratch.ts";
import { greyJpeg, readSamples, withComment } from "../support/images.ts";
import { bucketName, ensureS3 } from "../support/stack.ts";
import { archiveAt } from "../support/stores.ts";
import { canMountTmpfs, mountTmpfs, unmountTmpfs } from "../support/tmpfs.ts";
import { sleep } from "../../src/ingest/camera.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;
const ARCHIVE_PREFIX = "archive/";
const LOCAL_PREFIX = "frames/";
const quiet = createLogger({ level: "error", format: "text", write: () => {} });

// -------------------------------------------------------------------------------------------------------------
// Pure decisions

Deno.test("decision: statfs of a real directory matches df's Use%", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evict-df-" });
  try {
    const ours = diskPercent(statfsUsage(dir));
    const out = await new Deno.Command("df", { args: ["-P", dir], stdout: "piped" }).output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    const dfPercent = Number(line.split(/\s+/)[4].replace("%", ""));
    // df rounds up to a whole percent.
    assert.ok(Math.abs(Math.ceil(ours) - dfPercent) <= 1, `statfs ${ours.toFixed(2)}% vs df ${dfPercent}%`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// -------------------------------------------------------------------------------------------------------------
// Real S3 helpers

async function localStore(bucket = bucketName("evict-local"), endpoint = stackEndpoints().s3Endpoint) {
  const store = await loadStorage("rustfs", {
    endpoint,
    bucket,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
  });
  await store.open();
  return store;
}

async function archiveStore(bucket = bucketName("evict-archive"), endpoint = stackEndpoints().s3Endpoint) {
  const store = await archiveAt(endpoint, bucket, 2000);
  await store.open();
  return store;
}

let smallBase: Uint8Array[] | null = null;
function smallJpegs(): Uint8Array[] {
  smallBase ??= Array.from(
    { length: 6 },
    (_, k) => greyJpeg(48 + 8 * k, 36, (x, y) => ((x * (k + 3)) ^ (y * 7)) & 255),
  );
  return smallBase;
}

interface Frame {
  key: string;
  body: Uint8Array;
  robotId: string;
  timestampMs: number;
  seq: number;
  metadata: Record<string, string>;
}

/**
 * Frames of several robots with interleaved capture times (robot k every 1000 + 300 k ms), so the globally oldest
 * frames belong to all robots but not evenly.
 */
function makeFrames(
  robots: string[],
  perRobot: number,
  bodies: Uint8Array[],
  startMs = Date.UTC(2026, 1, 18, 9),
) {
  const frames: Frame[] = [];
  robots.forEach((robotId, k) => {
    for (let i = 0; i < perRobot; i++) {
      const timestampMs = startMs + i * (1000 + 300 * k) + 17 * k;
      const key = objectKey(LOCAL_PREFIX, robotId, timestampMs, i);
      frames.push({
        key,
        robotId,
        timestampMs,
        seq: i,
        body: withComment(bodies[(i + k) % bodies.length], key),
        metadata: {
          "robot-id": robotId,
          "capture-time": new Date(timestampMs).toISOString(),
          "timestamp-ms": String(timestampMs),
          seq: String(i),
          filter: "ahash",
          distance: i === 0 ? "first" : "31",
        },
      });
    }
  });
  return frames;
}

/** Stores the frames and writes their rows as the consumer does (object first, then the row with the put's ETag). */
async function storeFrames(local: StoragePlugin, catalog: Catalog, frames: Frame[]): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < frames.length) {
      const f = frames[next++];
      const { etag } = await local.put(f.key, f.body, { contentType: "image/jpeg", metadata: f.metadata });
      const now = Date.now();
      const row: FrameRow = {
        key: f.key,
        robotId: f.robotId,
        timestampMs: f.timestampMs,
        seq: f.seq,
        size: f.body.length,
        etag: etag ?? null,
        filter: "ahash",
        distance: f.seq === 0 ? null : 31,
        hash: null,
        tier: "local",
        tierChangedMs: now,
        storedMs: now,
      };
      await catalog.upsert(row);
    }
  }));
}

async function listSizes(store: StoragePlugin, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of store.list({ prefix })) {
    out.set(o.key.slice(prefix.length - LOCAL_PREFIX.length), o.size);
  }
  return out;
}

const byAge = (a: Frame, b: Frame) => a.timestampMs - b.timestampMs || a.seq - b.seq;

interface TierCheck {
  violations: string[];
  inBoth: number;
  archived: Set<string>;
  local: Set<string>;
}

/**
 * The crash-safety invariant: every frame is in at least one tier (an archive object only counts with the full
 * size), the catalog never claims "archive" without a full archive copy or "local" for a frame only archived,
 * and a frame is in both tiers only while its row says "archiving" (a move in progress) or "archive" (the local
 * delete pending).
 */
async function checkTiers(
  local: StoragePlugin,
  archive: StoragePlugin,
  catalog: Catalog,
  frames: Frame[],
): Promise<TierCheck> {
  const [inLocal, inArchive] = await Promise.all([
    listSizes(local, LOCAL_PREFIX),
    listSizes(archive, ARCHIVE_PREFIX + LOCAL_PREFIX),
  ]);
  const out: TierCheck = { violations: [], inBoth: 0, archived: new Set(), local: new Set() };
  for (const f of frames) {
    const l = inLocal.get(f.key) === f.body.length;
    const a = inArchive.get(f.key) === f.body.length;
    const row = await catalog.get(f.key);
    const bad = (why: string) => out.violations.push(`${f.key}: ${why} (row ${row?.tier ?? "missing"})`);
    if (!row) bad("no catalog row");
    if (!l && !a) bad("in neither tier");
    if (l && a) {
      out.inBoth++;
      if (row && row.tier === "local") bad("in both tiers while the row says local");
    }
    if (!l && a && row?.tier === "local") bad("only archived while the row says local");
    if (l && !a && row?.tier === "archive") bad("the row says archive without an archive copy");
    if (a && !l) out.archived.add(f.key);
    if (l && !a) out.local.add(f.key);
  }
  return out;
}

/** Asserts the end state: each frame in exactly one tier, rows matching, archived copies byte-identical. */
async function assertSettled(
  local: StoragePlugin,
  archive: StoragePlugin,
  catalog: Catalog,
  frames: Frame[],
) {
  const check = await checkTiers(local, archive, catalog, frames);
  assert.deepEqual(check.violations, []);
  assert.equal(check.inBoth, 0, "frames left in both tiers");
  for (const f of frames) {
    const tier = (await catalog.get(f.key))?.tier;
    assert.equal(tier, check.archived.has(f.key) ? "archive" : "local", f.key);
  }
  const archived = frames.filter((f) => check.archived.has(f.key));
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < archived.length) {
      const f = archived[next++];
      const copy = await archive.get(ARCHIVE_PREFIX + f.key);
      assert.ok(copy && md5Hex(copy) === md5Hex(f.body), `archived copy of ${f.key} differs`);
    }
  }));
  return check;
}

async function emptyBuckets(...stores: StoragePlugin[]) {
  for (const store of stores) {
    const keys: string[] = [];
    for await (const o of store.list()) keys.push(o.key);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < keys.length) await store.delete(keys[next++]);
    }));
    store.close();
  }
}

/** A storage plugin whose target can be switched (an archive that comes back), and whose calls can be tampered. */
class Switchable implements StoragePlugin {
  readonly name = "s3_archive";
  readonly apiVersion = 1;
  gets = 0;
  /** Changes what is stored (a corrupting archive). */
  tamper: ((body: Uint8Array) => Uint8Array) | null = null;
  /** Drops Content-MD5 from puts (an archive that does not check it). */
  ignoreMd5 = false;
  /** Replaces ETags (an archive with SSE-KMS or multipart ETags). */
  etag: string | null = null;
  constructor(public target: StoragePlugin) {}
  get bucket() {
    return this.target.bucket;
  }
  open() {
    return this.target.open();
  }
  async put(
    key: string,
    body: Uint8Array,
    options?: PutOptions,
  ) {
    const given = this.ignoreMd5 ? { ...options, contentMd5: undefined } : options;
    const out = await this.target.put(key, this.tamper ? this.tamper(body) : body, given);
    return this.etag ? { etag: this.etag } : out;
  }
  get(key: string) {
    this.gets++;
    return this.target.get(key);
  }
  async head(key: string): Promise<ObjectInfo | null> {
    const info = await this.target.head(key);
    return info && this.etag ? { ...info, etag: this.etag } : info;
  }
  delete(key: string) {
    return this.target.delete(key);
  }
  list(options?: { prefix?: string; limit?: number; startAfter?: string }) {
    return this.target.list(options);
  }
  buckets() {
    return this.target.buckets();
  }
  close() {
    this.target.close();
  }
}

function catalogUsage(catalog: Catalog): () => Promise<Usage> {
  return async () => {
    const t = await catalog.totals();
    return { disk: null, localBytes: t.local.bytes + t.archiving.bytes };
  };
}

// -------------------------------------------------------------------------------------------------------------
// End to end on the real S3 server

Deno.test("bytes budget: the globally oldest frames of all robots move to the archive, byte-identical", async () => {
  await ensureS3();
  const local = await localStore();
  const archive = await archiveStore();
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["reachy-001", "bracketbot-001", "reachy-002"], 30, readSamples());
    await storeFrames(local, catalog, frames);
    const total = frames.reduce((n, f) => n + f.body.length, 0);
    // Target 70 % of max_bytes = half of what is stored: the oldest half has to move.
    const maxBytes = Math.round(total / 2 / 0.7);
    const pauses: boolean[] = [];
    const log = memoryLogger("info");
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: maxBytes, batch_size: 16 }),
      archivePrefix: ARCHIVE_PREFIX,
      localPrefix: LOCAL_PREFIX,
      log,
      onPause: (p) => void pauses.push(p),
    });
    const r = await evictor.runOnce();
    assert.equal(r.failure, null);
    assert.equal(r.lost, 0);
    assert.ok(r.plan?.evict && r.plan.hardLimit, "140 % of max_bytes is over the hard limit");
    // Over the hard limit the consumer is paused while the round archives, and resumed once it is below.
    assert.deepEqual(pauses, [true, false]);
    const check = await assertSettled(local, archive, catalog, frames);
    const sorted = [...frames].sort(byAge);
    const moved = sorted.filter((f) => check.archived.has(f.key));
    assert.equal(moved.length, r.archived);
    // Exactly the oldest r.archived frames, globally.
    assert.deepEqual(moved.map((f) => f.key), sorted.slice(0, r.archived).map((f) => f.key));
    const robotsMoved = new Set(moved.map((f) => f.robotId));
    assert.ok(robotsMoved.size >= 2, `frames of ${[...robotsMoved]} moved`);
    const left = (await catalog.totals()).local.bytes;
    assert.ok(left <= 0.7 * maxBytes, `local ${left} <= 70 % of ${maxBytes}`);
    assert.ok(left > 0.7 * maxBytes - 4 * 200_000, "no more than the in-flight frames beyond the target");
    // Archived copies keep the metadata.
    const head = await archive.head(ARCHIVE_PREFIX + moved[0].key);
    assert.deepEqual(head?.metadata, moved[0].metadata);
    assert.deepEqual((await catalog.totals()).archive.frames, r.archived);
    const s = evictor.stats();
    assert.deepEqual([s.archived, s.lost, s.dropped, s.failures, s.paused], [r.archived, 0, 0, 0, false]);
    console.log(
      `  bytes budget: ${frames.length} frames (${
        (total / 1e6).toFixed(1)
      } MB) of 3 robots, evicted ${r.archived} ` +
        `(archived ${r.archived}, lost ${r.lost}) from robots ${[...robotsMoved].join(", ")}; ` +
        `${r.framesPerSecond.toFixed(1)} frames/s (${(r.archivedBytes / 1e6 / r.seconds).toFixed(1)} MB/s)`,
    );
    console.log(`  stats: ${evictor.statsLine()}`);
    // Below the threshold now: the next check does nothing.
    const again = await evictor.runOnce();
    assert.deepEqual([again.plan?.evict, again.archived], [false, 0]);
  } finally {
    await catalog.close();
    await emptyBuckets(local, archive);
  }
});

Deno.test("disk trigger through the statfs seam: a real watch directory, usage from the stored frames", async () => {
  await ensureS3();
  const local = await localStore();
  const archive = await archiveStore();
  const dir = await Deno.makeTempDir({ prefix: "evict-watch-" });
  const catalog = new SqliteCatalog(`${dir}-catalog.sqlite`);
  // statfs is synchronous: it reads the local bytes through a second connection to the same file.
  const raw = new DatabaseSync(catalog.path);
  const localBytes = () =>
    Number(
      (raw.prepare("SELECT COALESCE(SUM(size), 0) AS n FROM frames WHERE tier = 'local'").get() as {
        n: number;
      })
        .n,
    );
  try {
    const frames = makeFrames(["a", "b"], 25, smallJpegs());
    await storeFrames(local, catalog, frames);
    const total = frames.reduce((n, f) => n + f.body.length, 0);
    // A 4 KiB-block disk of which the frames are 85 %, with 5 % reserved (used / (used + avail) as df).
    const blocks = Math.ceil(total / 0.85 / 4096);
    const seen: string[] = [];
    const statfs = (path: string) => {
      seen.push(path);
      const usedBlocks = Math.ceil(localBytes() / 4096);
      const free = blocks - usedBlocks;
      return { bsize: 4096, blocks, bfree: free, bavail: Math.max(0, free - Math.round(blocks * 0.05)) };
    };
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ watch_path: dir, hard_limit_percent: 99 }),
      archivePrefix: ARCHIVE_PREFIX,
      log: quiet,
      statfs,
    });
    const r = await evictor.runOnce();
    assert.ok(seen.every((p) => p === dir) && seen.length > 0);
    assert.ok(r.plan?.disk?.over, `disk at ${r.plan?.disk?.percent}%`);
    assert.ok(r.archived > 0 && r.lost === 0);
    const after = diskPercent(statfsUsage(dir, statfs));
    assert.ok(after <= 70.5, `disk at ${after.toFixed(1)}% after the round`);
    const check = await assertSettled(local, archive, catalog, frames);
    const sorted = [...frames].sort(byAge);
    assert.deepEqual([...check.archived].sort(), sorted.slice(0, r.archived).map((f) => f.key).sort());
  } finally {
    raw.close();
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
    await emptyBuckets(local, archive);
  }
});

function mainStackLib(): string {
  return `${Deno.env.get("FRAME_BUCKET_STACK_DIR") || `${PROJECT}.stack`}/lib/s3`;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped", cwd: PROJECT })
    .output();
  return {
    ok: out.success,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "disk trigger on a real 16 MiB tmpfs holding a second S3Proxy's data (root with mount rights only)",
  ignore: !await canMountTmpfs(),
  async fn() {
    await ensureS3();
    const root = await Deno.makeTempDir({ prefix: "evict-tmpfs-" });
    const data = `${root}/s3/data`;
    await Deno.mkdir(data, { recursive: true });
    const mounted = await mountTmpfs(data, "16m");
    if (!mounted.ok) await Deno.remove(root, { recursive: true });
    assert.ok(mounted.ok, `mount a 16 MiB tmpfs: ${mounted.text}`);
    const port = freePort();
    const env = {
      FRAME_BUCKET_STACK_DIR: root,
      S3_PORT: String(port),
      KAFKA_PORT: String(freePort()),
      KAFKA_CONTROLLER_PORT: String(freePort()),
    };
    let local: StoragePlugin | null = null;
    const archive = await archiveStore();
    const catalog = new SqliteCatalog(":memory:");
    try {
      // The jars of the running stack (copied, not linked: the JVM writes its class-data archive next to them).
      const lib = mainStackLib();
      try {
        await Deno.mkdir(`${root}/lib/s3`, { recursive: true });
        for await (const e of Deno.readDir(lib)) {
          if (e.name.endsWith(".jar") || e.name === ".fetched") {
            await Deno.copyFile(`${lib}/${e.name}`, `${root}/lib/s3/${e.name}`);
          }
        }
      } catch { /* not there: stack up fetches them */ }
      const up = await run(Deno.execPath(), ["run", "-A", "--quiet", "tools/stack.ts", "up", "s3"], env);
      assert.ok(up.ok, up.text);
      local = await localStore(bucketName("evict-tmpfs"), `http://127.0.0.1:${port}`);
      const s = settings({ watch_path: data, hard_limit_percent: 99 });
      // Fill the tmpfs to about 85 % with 180 KB frames.
      const frames: Frame[] = [];
      const samples = readSamples();
      for (let batch = 0; diskPercent(statfsUsage(data)) < 85 && batch < 20; batch++) {
        const more = makeFrames(
          ["reachy-001", "reachy-002"],
          4,
          samples,
          Date.UTC(2026, 1, 18, 9) + batch * 60_000,
        )
          .map((f) => ({ ...f, body: withComment(f.body, `batch ${batch}`) }));
        await storeFrames(local, catalog, more);
        frames.push(...more);
      }
      const before = diskPercent(statfsUsage(data));
      assert.ok(before >= 80, `tmpfs at ${before.toFixed(1)}%`);
      const evictor = new Evictor({
        local,
        archive,
        catalog,
        settings: s,
        archivePrefix: ARCHIVE_PREFIX,
        log: quiet,
      });
      const r = await evictor.runOnce();
      const after = diskPercent(statfsUsage(data));
      assert.ok(r.archived > 0 && r.failure === null);
      assert.ok(after <= 70.5, `tmpfs at ${after.toFixed(1)}% after archiving ${r.archived} frames`);
      await assertSettled(local, archive, catalog, frames);
      console.log(
        `  tmpfs: ${frames.length} frames filled it to ${before.toFixed(1)}%; archived ${r.archived} ` +
          `(${r.framesPerSecond.toFixed(1)} frames/s); df now ${after.toFixed(1)}%`,
      );
    } finally {
      await catalog.close();
      local?.close();
      await emptyBuckets(archive);
      const down = await run(Deno.execPath(), ["run", "-A", "--quiet", "tools/stack.ts", "down", "s3"], env);
      if (!down.ok) console.log(down.text);
      await unmountTmpfs(data);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("crash safety: src/main/evict.ts --once SIGKILLed at random points never loses a frame", async () => {
  await ensureS3();
  const dataDir = await Deno.makeTempDir({ prefix: "evict-crash-" });
  const archiveBucket = bucketName("evict-crash-archive");
  const archive = await archiveStore(archiveBucket);
  const first = makeFrames(["r1", "r2", "r3"], 60, smallJpegs());
  const perFrame = first.reduce((n, f) => n + f.body.length, 0) / first.length;
  // Budget for ~60 of the 180 frames: eviction has ~110 frames to move at first, and each round adds a few.
  const maxBytes = Math.round((60 * perFrame) / 0.7);
  const { path, config } = await isolatedConfig("evict-crash", {
    aws_s3: {
      bucket: archiveBucket,
      endpoint: stackEndpoints().s3Endpoint,
      prefix: ARCHIVE_PREFIX,
      region: "us-east-1",
    },
    eviction: { max_bytes: maxBytes, batch_size: 8, hard_limit_percent: 100 },
    catalog: { data_dir: dataDir },
    logging: { level: "info" },
  });
  const local = await localStore(config.rustfs.bucket);
  const catalog = new SqliteCatalog(`${dataDir}/catalog.sqlite`);
  const env = { AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, LOG_LEVEL: "info" };
  const frames = [...first];
  try {
    await storeFrames(local, catalog, first);
    const started = Date.now();
    let kills = 0, finished = 0, inBoth = 0, iterations = 0, midMove = 0, windowMs = 150;
    const violations: string[] = [];
    let nextStart = Date.UTC(2026, 1, 18, 12);
    while ((kills < 30 || iterations < 32) && iterations < 60 && Date.now() - started < 40_000) {
      iterations++;
      // The consumer keeps storing newer frames meanwhile.
      const more = makeFrames(["r1", "r2", "r3"], 2, smallJpegs(), nextStart).map((f) => ({
        ...f,
        body: withComment(f.body, `it ${iterations}`),
      }));
      nextStart += 10_000;
      await storeFrames(local, catalog, more);
      frames.push(...more);
      const child = spawnDeno("evict", "src/main/evict.ts", ["--once", "--config", path], { env });
      try {
        await child.waitFor(/\[evict\] starting/, 20_000);
      } catch (error) {
        child.kill("SIGKILL");
        throw error;
      }
      await sleep(Math.random() * windowMs);
      child.kill("SIGKILL");
      const code = await child.exited;
      // The window adapts to how long a run takes on this machine, so that most runs die somewhere mid-way.
      if (code === 0) finished++, windowMs *= 0.7;
      else kills++, windowMs = Math.min(400, windowMs * 1.1);
      const check = await checkTiers(local, archive, catalog, frames);
      violations.push(...check.violations.map((v) => `iteration ${iterations}: ${v}`));
      inBoth += check.inBoth;
      // Killed in the middle of a move: rows left in "archiving" for the next run to finish.
      if ((await catalog.totals()).archiving.frames > 0) midMove++;
    }
    // A clean run finishes everything.
    const child = spawnDeno("evict", "src/main/evict.ts", ["--once", "--config", path], { env });
    const code = await child.exited;
    assert.equal(code, 0, child.lines.slice(-10).join("\n"));
    const summary = child.lines.find((l) => l.startsWith("evicted ")) ?? "";
    const settled = await assertSettled(local, archive, catalog, frames);
    const sorted = [...frames].sort(byAge);
    assert.deepEqual(
      [...settled.archived].sort(),
      sorted.slice(0, settled.archived.size).map((f) => f.key).sort(),
      "the archived frames are the oldest",
    );
    const t = await catalog.totals();
    assert.ok(t.local.bytes <= 0.8 * maxBytes, `local ${t.local.bytes} of ${maxBytes}`);
    console.log(
      `  crash safety: ${iterations} runs (${kills} SIGKILLed at random points, ${midMove} of them mid-move, ${finished} ` +
        `finished first), ` +
        `${violations.length} violations, ${inBoth} frame-observations transiently in both tiers; ` +
        `end: ${settled.archived.size} archived, ${settled.local.size} local, 0 lost of ${frames.length}; ` +
        `final run: ${summary}; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.deepEqual(violations, []);
    assert.ok(kills >= 30, `${kills} kills`);
  } finally {
    await catalog.close();
    await emptyBuckets(local, archive);
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("archive down: nothing deleted locally, pause at the hard limit, resume and finish once it is back", async () => {
  await ensureS3();
  const local = await localStore();
  const real = await archiveStore();
  const down = await archiveAt(`http://127.0.0.1:${freePort()}`, real.bucket, 1000);
  const archive = new Switchable(down);
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a", "b"], 15, smallJpegs());
    await storeFrames(local, catalog, frames);
    const total = frames.reduce((n, f) => n + f.body.length, 0);
    const pauses: boolean[] = [];
    const log = memoryLogger("debug");
    let clock = 1_000_000;
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: Math.round(total / 0.97) }), // 97 %: over the 95 % hard limit
      archivePrefix: ARCHIVE_PREFIX,
      log,
      now: () => clock,
      onPause: (p) => void pauses.push(p),
      backoffInitialMs: 1000,
      backoffMaxMs: 4000,
    });
    const r1 = await evictor.runOnce();
    assert.match(r1.failure ?? "", /unreachable|ECONNREFUSED|connect/i);
    assert.deepEqual(pauses, [true]);
    assert.equal(evictor.stats().paused, true);
    // Nothing deleted, nothing left half-moved.
    assert.equal((await listSizes(local, LOCAL_PREFIX)).size, frames.length);
    assert.equal((await catalog.totals()).local.frames, frames.length);
    // Within the backoff: no attempt; after it: one more, still one warning line for the streak.
    const r2 = await evictor.runOnce();
    assert.equal(r2.backedOff, true);
    clock += 1000;
    const r3 = await evictor.runOnce();
    assert.equal(r3.backedOff, false);
    assert.ok(r3.failure);
    assert.equal(evictor.stats().failures, 2);
    assert.equal(log.lines.filter((l) => / WARN .*failing:/.test(l)).length, 1, log.lines.join("\n"));
    // Paused at the start of the round (over the hard limit), then said loudly why it stays paused.
    assert.equal(log.lines.filter((l) => / ERROR .*archive is unreachable: still PAUSING/.test(l)).length, 1);
    assert.deepEqual(pauses, [true]);
    assert.equal((await listSizes(local, LOCAL_PREFIX)).size, frames.length);
    // The archive is back: after the backoff (2 s now) the round archives and the consumer resumes.
    archive.target = real;
    clock += 2000;
    const r4 = await evictor.runOnce();
    assert.equal(r4.failure, null);
    assert.ok(r4.archived > 0);
    assert.deepEqual(pauses, [true, false]);
    assert.ok(log.lines.some((l) => /works again after/.test(l)));
    assert.equal(evictor.stats().failing, false);
    await assertSettled(local, real, catalog, frames);
    assert.ok((await catalog.totals()).local.bytes <= 0.7 * Math.round(total / 0.97));
  } finally {
    await catalog.close();
    down.close();
    await emptyBuckets(local, real);
  }
});

Deno.test("archive down with on_archive_failure = drop_oldest: the oldest frames are dropped and counted", async () => {
  await ensureS3();
  const local = await localStore();
  const archive = await archiveAt(`http://127.0.0.1:${freePort()}`, "never-reached", 1000);
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a", "b"], 40, smallJpegs());
    await storeFrames(local, catalog, frames);
    const total = frames.reduce((n, f) => n + f.body.length, 0);
    const maxBytes = Math.round(total / 0.97);
    const pauses: boolean[] = [];
    const log = memoryLogger("info");
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: maxBytes, on_archive_failure: "drop_oldest" }),
      archivePrefix: ARCHIVE_PREFIX,
      log,
      onPause: (p) => void pauses.push(p),
    });
    const r = await evictor.runOnce();
    assert.ok(r.failure);
    assert.ok(r.dropped > 0);
    assert.equal(r.archived, 0);
    // Pause only while the round was over the hard limit; dropping brought it under.
    assert.deepEqual(pauses, [true, false]);
    const stats = evictor.stats();
    assert.deepEqual([stats.dropped, stats.lost, stats.paused], [r.dropped, 0, false]);
    assert.equal(log.lines.filter((l) => /DROPPED /.test(l)).length, r.dropped);
    // Dropped: the oldest, gone from the store and from the catalog; the rest untouched.
    const sorted = [...frames].sort(byAge);
    const stored = await listSizes(local, LOCAL_PREFIX);
    for (const [i, f] of sorted.entries()) {
      assert.equal(stored.has(f.key), i >= r.dropped, f.key);
      assert.equal(await catalog.get(f.key) !== null, i >= r.dropped, f.key);
    }
    // Down to the threshold, not to the target: as few frames lost as keeps it under the hard limit for a while.
    const left = (await catalog.totals()).local.bytes;
    assert.ok(left <= 0.8 * maxBytes && left > 0.7 * maxBytes, `${left} of ${maxBytes}`);
    console.log(`  drop_oldest: ${r.dropped} frames dropped (${r.droppedBytes} bytes), lost ${r.lost}`);
  } finally {
    await catalog.close();
    archive.close();
    await emptyBuckets(local);
  }
});

Deno.test("drop_oldest never drops a labelled frame: pinned frames only leave through a verified archive copy", async () => {
  await ensureS3();
  const local = await localStore();
  const archive = await archiveAt(`http://127.0.0.1:${freePort()}`, "never-reached", 1000);
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a", "b"], 40, smallJpegs());
    await storeFrames(local, catalog, frames);
    const oldest = [...frames].sort(byAge).slice(0, 10).map((f) => f.key);
    (await catalog.labels()).addLabels({ keys: oldest }, ["keep"], { author: "test" });
    const total = frames.reduce((n, f) => n + f.body.length, 0);
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: Math.round(total / 0.97), on_archive_failure: "drop_oldest" }),
      archivePrefix: ARCHIVE_PREFIX,
      log: memoryLogger("info"),
    });
    const r = await evictor.runOnce();
    assert.ok(r.dropped > 0, "unlabelled frames were dropped");
    const stored = await listSizes(local, LOCAL_PREFIX);
    for (const key of oldest) {
      assert.ok(stored.has(key), `labelled ${key} was dropped`);
      assert.equal((await catalog.get(key))?.tier, "local");
    }
  } finally {
    await catalog.close();
    archive.close();
    await emptyBuckets(local);
  }
});

Deno.test("verification and recovery: read-back for non-MD5 ETags, a corrupt copy, lost frames, interrupted moves", async () => {
  await ensureS3();
  const local = await localStore();
  const real = await archiveStore();
  const archive = new Switchable(real);
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a", "b"], 6, smallJpegs()).sort(byAge);
    await storeFrames(local, catalog, frames);
    const log = memoryLogger("debug");
    const make = () =>
      new Evictor({
        local,
        archive,
        catalog,
        settings: settings({ max_bytes: 1, batch_size: 1 }), // everything must go
        archivePrefix: ARCHIVE_PREFIX,
        localPrefix: LOCAL_PREFIX,
        log,
        concurrency: 1,
      });

    // Bytes corrupted on the way: the archive itself refuses them (Content-MD5; 400 BadDigest from S3Proxy, 500
    // InternalError from RustFS), nothing is deleted, the row is local again, the error names the refused copy.
    archive.tamper = (b) => b.map((x, i) => (i === 100 ? x ^ 1 : x));
    const refused = await make().runOnce();
    assert.match(refused.failure ?? "", /BadDigest|InternalError/);
    assert.match(refused.failure ?? "", /holds no copy: it did not keep the bytes sent/);
    assert.equal(refused.archived, 0);
    assert.equal((await listSizes(local, LOCAL_PREFIX)).size, frames.length);
    assert.equal((await catalog.get(frames[0].key))?.tier, "local");
    // An archive that ignores Content-MD5 and keeps the corrupt bytes: its ETag gives it away.
    archive.ignoreMd5 = true;
    const bad = await make().runOnce();
    assert.match(bad.failure ?? "", /ETag .* != MD5/);
    assert.equal((await catalog.get(frames[0].key))?.tier, "local");
    assert.equal((await listSizes(local, LOCAL_PREFIX)).size, frames.length);
    archive.tamper = null;
    archive.ignoreMd5 = false;

    // Interrupted moves as a crash leaves them: [1] "archiving" with both copies, [2] "archiving" with the local
    // object already deleted, [3] "archive" with the local object still there. [4] is lost: its object vanished.
    for (const f of frames.slice(1, 4)) {
      await real.put(ARCHIVE_PREFIX + f.key, f.body, { contentType: "image/jpeg", metadata: f.metadata });
    }
    await catalog.setTier(frames[1].key, "archiving", 1);
    await catalog.setTier(frames[2].key, "archiving", 1);
    await local.delete(frames[2].key);
    await catalog.setTier(frames[3].key, "archive", 1);
    await local.delete(frames[4].key);

    // An archive whose ETags are not MD5s (SSE-KMS, multipart): the copy is read back instead.
    archive.etag = "0123456789abcdef-2";
    const evictor = make();
    const r = await evictor.runOnce();
    assert.equal(r.failure, null, r.failure ?? "");
    assert.equal(r.lost, 1);
    assert.ok(log.lines.some((l) => l.includes(`${frames[4].key}: LOST`)));
    assert.equal(await catalog.get(frames[4].key), null);
    assert.ok(archive.gets >= r.archived, `${archive.gets} read-backs for ${r.archived} frames`);
    assert.equal(r.recovered, 3); // [1] moved again, [2] marked, [3] local leftover deleted
    const rest = frames.filter((_, i) => i !== 4);
    const check = await assertSettled(local, real, catalog, rest);
    assert.equal(check.archived.size, rest.length);
    assert.equal(evictor.stats().lost, 1);
  } finally {
    await catalog.close();
    await emptyBuckets(local, real);
  }
});

Deno.test("a local store without read() is moved with head and get", async () => {
  await ensureS3();
  const real = await localStore();
  const local = new Switchable(real); // forwards put/get/head/delete/list, has no read()
  const archive = await archiveStore();
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a"], 4, smallJpegs()).sort(byAge);
    await storeFrames(real, catalog, frames);
    const r = await new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: 1, batch_size: 2 }),
      archivePrefix: ARCHIVE_PREFIX,
      log: quiet,
      concurrency: 2,
    }).runOnce();
    assert.equal(r.failure, null, r.failure ?? "");
    assert.equal(r.archived, frames.length);
    assert.equal(local.gets, frames.length);
    const settled = await assertSettled(real, archive, catalog, frames);
    assert.equal(settled.archived.size, frames.length);
  } finally {
    await catalog.close();
    await emptyBuckets(real, archive);
  }
});

Deno.test("fetchFrame reads a frame from either tier", async () => {
  await ensureS3();
  const local = await localStore();
  const archive = await archiveStore();
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a"], 4, smallJpegs()).sort(byAge);
    await storeFrames(local, catalog, frames);
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: Math.round(frames.reduce((n, f) => n + f.body.length, 0) / 0.7 / 2) }),
      archivePrefix: ARCHIVE_PREFIX,
      log: quiet,
      usage: catalogUsage(catalog), // the usage() seam
      concurrency: 1,
    });
    const r = await evictor.runOnce();
    assert.ok(r.archived >= 1 && r.archived < frames.length);
    const stores = { catalog, local, archive, archivePrefix: ARCHIVE_PREFIX };
    for (const f of frames) {
      const tier = (await catalog.get(f.key))?.tier;
      const got = await evictor.fetchFrame(f.key);
      assert.ok(got && md5Hex(got) === md5Hex(f.body), `${f.key} (${tier})`);
    }
    assert.equal((await catalog.get(frames[0].key))?.tier, "archive");
    assert.equal(await local.get(frames[0].key), null);
    assert.deepEqual(await fetchFrame(frames[0].key, stores), frames[0].body);
    // A row in "archiving" whose local object is already deleted is read from the archive too.
    await catalog.setTier(frames[0].key, "archiving", 1);
    assert.deepEqual(await fetchFrame(frames[0].key, stores), frames[0].body);
    assert.equal(await fetchFrame("frames/a/none.jpg", stores), null);
  } finally {
    await catalog.close();
    await emptyBuckets(local, archive);
  }
});

Deno.test("candidates hook: frames put last (pinned by a label) stay local while others can go", async () => {
  await ensureS3();
  const local = await localStore();
  const archive = await archiveStore();
  const catalog = new SqliteCatalog(":memory:");
  try {
    const frames = makeFrames(["a", "b"], 5, smallJpegs()).sort(byAge);
    await storeFrames(local, catalog, frames);
    const pinned = new Set([frames[0].key, frames[2].key]);
    const total = frames.reduce((n, f) => n + f.body.length, 0);
    const evictor = new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: Math.round(total / 0.7 / 2) }),
      archivePrefix: ARCHIVE_PREFIX,
      log: quiet,
      concurrency: 1,
      candidates: async (limit) => {
        const rows = await catalog.oldestLocal(frames.length);
        return [...rows.filter((r) => !pinned.has(r.key)), ...rows.filter((r) => pinned.has(r.key))]
          .slice(0, limit);
      },
    });
    const r = await evictor.runOnce();
    assert.ok(r.archived >= 3 && r.archived < frames.length - 2, `${r.archived} archived`);
    for (const key of pinned) assert.equal((await catalog.get(key))?.tier, "local", key);
    const unpinned = frames.filter((f) => !pinned.has(f.key));
    assert.deepEqual(
      await Promise.all(unpinned.slice(0, r.archived).map(async (f) => (await catalog.get(f.key))?.tier)),
      Array(r.archived).fill("archive"),
    );
    await assertSettled(local, archive, catalog, frames);
  } finally {
    await catalog.close();
    await emptyBuckets(local, archive);
  }
});

Deno.test("src/main/evict.ts first indexes frame objects the catalog lacks, so its budget counts and moves them", async () => {
  await ensureS3();
  const dataDir = await Deno.makeTempDir({ prefix: "evict-unindexed-" });
  const archiveBucket = bucketName("evict-unindexed-archive");
  const archive = await archiveStore(archiveBucket);
  const frames = makeFrames(["u1", "u2"], 20, smallJpegs());
  const perFrame = frames.reduce((n, f) => n + f.body.length, 0) / frames.length;
  const { path, config } = await isolatedConfig("evict-unindexed", {
    aws_s3: {
      bucket: archiveBucket,
      endpoint: stackEndpoints().s3Endpoint,
      prefix: ARCHIVE_PREFIX,
      region: "us-east-1",
    },
    // A budget for about 20 of the 40 frames.
    eviction: { max_bytes: Math.round((20 * perFrame) / 0.7), hard_limit_percent: 100 },
    catalog: { data_dir: dataDir },
  });
  const local = await localStore(config.rustfs.bucket);
  const catalog = new SqliteCatalog(`${dataDir}/catalog.sqlite`);
  try {
    // Half the frames have rows; the other half were stored while the catalog was lost.
    await storeFrames(local, catalog, frames.slice(0, 20));
    for (const f of frames.slice(20)) {
      await local.put(f.key, f.body, { contentType: "image/jpeg", metadata: f.metadata });
    }
    const env = { AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, LOG_LEVEL: "info" };
    const child = spawnDeno("evict", "src/main/evict.ts", ["--once", "--config", path], { env });
    assert.equal(await child.exited, 0, child.lines.slice(-10).join("\n"));
    assert.ok(
      child.lines.some((l) => /20 frame objects .* had no catalog row/.test(l)),
      child.lines.join("\n"),
    );
    const t = await catalog.totals();
    assert.equal(t.local.frames + t.archive.frames, 40, "every object has a row");
    assert.ok(t.archive.frames >= 10, `eviction moved frames: ${JSON.stringify(t)}`);
  } finally {
    await catalog.close();
    local.close();
    archive.close();
  }
});

Deno.test("one evictor across hosts: two candidates on a PostgreSQL catalog, the leader SIGKILLed again and again, another takes over and no frame is lost", async () => {
  await ensureS3();
  const url = await scratchPostgresUrl("evict_race");
  const archiveBucket = bucketName("evict-race-archive");
  const archive = await archiveStore(archiveBucket);
  const first = makeFrames(["r1", "r2", "r3"], 60, smallJpegs());
  const perFrame = first.reduce((n, f) => n + f.body.length, 0) / first.length;
  const maxBytes = Math.round((60 * perFrame) / 0.7);
  const { path, config } = await isolatedConfig("evict-race", {
    aws_s3: {
      bucket: archiveBucket,
      endpoint: stackEndpoints().s3Endpoint,
      prefix: ARCHIVE_PREFIX,
      region: "us-east-1",
    },
    // Small batches, frequent checks and a short lease: many moves in flight when the leader dies.
    eviction: {
      max_bytes: maxBytes,
      batch_size: 4,
      hard_limit_percent: 100,
      check_interval_secs: 0.3,
      lease_secs: 2,
    },
    catalog: { url },
    logging: { level: "info" },
  });
  const local = await localStore(config.rustfs.bucket);
  const catalog = await PostgresCatalog.open(url);
  const env = { AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, LOG_LEVEL: "info" };
  const frames = [...first];
  const candidates: Child[] = [];
  const candidate = () => {
    const c = spawnDeno(`evict ${candidates.length + 1}`, "src/main/evict.ts", ["--config", path], { env });
    candidates.push(c);
    return c;
  };
  const failovers: number[] = [];
  const violations: string[] = [];
  try {
    await storeFrames(local, catalog, first);
    const started = Date.now();
    const alive = [candidate(), candidate()];
    let nextStart = Date.UTC(2026, 1, 18, 12);
    for (let kill = 1; kill <= 5; kill++) {
      // The consumers keep storing newer frames meanwhile, so there is always something to move.
      const more = makeFrames(["r1", "r2", "r3"], 6, smallJpegs(), nextStart).map((f) => ({
        ...f,
        body: withComment(f.body, `kill ${kill}`),
      }));
      nextStart += 30_000;
      await storeFrames(local, catalog, more);
      frames.push(...more);
      // Wait (on progress, generously) for a leader that is one of ours and alive.
      const holder = await waitFor(async () => {
        const lease = await catalog.lease("evictor");
        const pid = Number(lease?.holder.split(":")[1]);
        return lease && lease.expiresMs > Date.now() && alive.some((c) => c.pid === pid) ? lease : undefined;
      }, 120_000);
      await sleep(100 + Math.random() * 400); // somewhere in the middle of its moves
      const leader = alive.find((c) => c.pid === Number(holder.holder.split(":")[1]))!;
      leader.kill("SIGKILL");
      const killedAt = Date.now();
      await leader.exited;
      alive.splice(alive.indexOf(leader), 1);
      // The invariant is checked with nothing moving: the survivors are stopped (SIGSTOP) while the buckets and
      // rows are read, as if frozen; whatever they were doing is a state a crash could leave too.
      for (const c of alive) c.kill("SIGSTOP");
      const stoppedAt = Date.now();
      const check = await checkTiers(local, archive, catalog, frames);
      violations.push(...check.violations.map((v) => `kill ${kill}: ${v}`));
      for (const c of alive) c.kill("SIGCONT");
      const stoppedMs = Date.now() - stoppedAt;
      const next = await waitFor(async () => {
        const lease = await catalog.lease("evictor");
        return lease && lease.token > holder.token && lease.expiresMs > Date.now() ? lease : undefined;
      }, 120_000);
      failovers.push(Date.now() - killedAt - stoppedMs); // the time the survivors were stopped does not count
      assert.notEqual(next.holder, holder.holder);
      alive.push(candidate()); // a restarted host joins as a candidate again
    }
    for (const c of alive) await c.stop();
    // A last clean round finishes what the kills interrupted.
    const final = spawnDeno("evict", "src/main/evict.ts", ["--once", "--config", path], { env });
    assert.equal(await final.exited, 0, final.lines.slice(-10).join("\n"));
    const settled = await assertSettled(local, archive, catalog, frames);
    assert.deepEqual(violations, []);
    assert.ok(settled.archived.size > 0, "something was archived");
    const t = await catalog.totals();
    assert.ok(
      t.local.bytes <= 0.8 * maxBytes,
      `local ${t.local.bytes} of ${maxBytes}: ${final.lines.slice(-5).join("\n")}`,
    );
    console.log(
      `  evictor failover after SIGKILL of the leader (lease_secs 2): ${
        failovers.map((ms) => `${ms} ms`).join(", ")
      }; ` +
        `${settled.archived.size} archived, ${settled.local.size} local, 0 lost of ${frames.length}; ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    for (const c of candidates) c.kill("SIGKILL");
    await catalog.close();
    await emptyBuckets(local, archive);
    await Deno.remove(path).catch(() => {});
  }
});

/** Polls `probe` every 100 ms until it returns a value; throws after `limitMs` (a generous outer bound). */
async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, limitMs: number): Promise<T> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`gave up after ${limitMs} ms`);
    await sleep(100);
  }
}
