/**
 * Disk-triggered eviction on a disk whose free space lags deletes by minutes (RustFS's and MinIO's trash sweep):
 * the moves go to the real S3 server of the stack, the disk is the statfs seam over the objects really stored
 * (tests/support/lagging_disk.ts, swept every 5 minutes of a clock the test moves 30 s per round). Over 16 rounds
 * with frames coming in, the bytes evicted stay within 10 % of what a disk without lag would have asked for; the
 * same rounds without the ledger (`free_lag_secs = 0`) show the over-eviction it prevents.
 */
import { storeLocalFrames } from "../support/local_frames.ts";
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { Evictor } from "../../src/retention/evictor.ts";
import { fmtBytes, planEviction } from "../../src/retention/plan.ts";
import { createLogger } from "../../src/log.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY, stackEndpoints } from "../../tools/stack.ts";
import { readSamples } from "../support/images.ts";
import { bucketName, ensureS3 } from "../support/stack.ts";
import { settings } from "../support/eviction_settings.ts";
import { LaggingDisk } from "../support/lagging_disk.ts";

const quiet = createLogger({ level: "error", format: "text", write: () => {} });
const ROUND_MS = 30_000;
const SWEEP_MS = 300_000;
const ROUNDS = 16;
const INITIAL_FRAMES = 300;
const FRAMES_PER_ROUND = 6;

async function store(plugin: "rustfs" | "s3_archive") {
  const common = {
    endpoint: stackEndpoints().s3Endpoint,
    bucket: bucketName(`lag-${plugin === "rustfs" ? "local" : "archive"}`),
    region: "us-east-1",
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
  };
  const s = await loadStorage(plugin, plugin === "rustfs" ? common : { ...common, createBucket: true });
  await s.open();
  return s;
}

async function empty(s: StoragePlugin) {
  const keys: string[] = [];
  for await (const o of s.list()) keys.push(o.key);
  for (let i = 0; i < keys.length; i += 500) await s.deleteMany!(keys.slice(i, i + 500));
  s.close();
}

export interface RoundFigures {
  round: number;
  /** df's Use% of the lagging disk at the round's start. */
  dfPercent: number;
  /** Use% a disk without lag would show. */
  truePercent: number;
  /** What the evictor counted as deleted but not freed yet. */
  pendingBytes: number;
  /** Bytes a disk without lag would have the round free. */
  planned: number;
  evicted: number;
}

/** Runs ROUNDS rounds with frames coming in between them; returns the figures of each round. */
async function rounds(freeLagSecs: number): Promise<RoundFigures[]> {
  const real = await store("rustfs");
  const archive = await store("s3_archive");
  const catalog = new SqliteCatalog(":memory:");
  let clock = 10_000;
  let seq = 0;
  const disk = new LaggingDisk(real, 1, SWEEP_MS, () => clock);
  const put = async (n: number) => {
    await storeLocalFrames(disk, catalog, { count: n, first: seq, clockMs: clock });
    seq += n;
  };
  try {
    await put(INITIAL_FRAMES);
    // A disk the first frames fill to 84 % (it stays under 100 % until the first sweep).
    disk.totalBlocks = Math.ceil(disk.liveBlocks() / 0.84);
    const s = settings({
      watch_path: "/lagging-disk",
      hard_limit_percent: 99,
      batch_size: 16,
      free_lag_secs: freeLagSecs,
    });
    const evictor = new Evictor({
      local: disk,
      archive,
      catalog,
      settings: s,
      archivePrefix: "archive/",
      localPrefix: "frames/",
      log: quiet,
      statfs: disk.statfs,
      now: () => clock,
      concurrency: 2,
      sweep: false,
    });
    const figures: RoundFigures[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      if (round > 1) await put(FRAMES_PER_ROUND);
      const total = disk.totalBlocks * 4096;
      const trueUsed = disk.liveBlocks() * 4096;
      const t = await catalog.totals();
      const lagFree = planEviction({
        disk: { usedBytes: trueUsed, availBytes: total - trueUsed },
        localBytes: t.local.bytes + t.archiving.bytes,
      }, s);
      const dfPercent = (disk.usedBlocks() / disk.totalBlocks) * 100;
      const r = await evictor.runOnce();
      assert.equal(r.failure, null, r.failure ?? "");
      figures.push({
        round,
        dfPercent,
        truePercent: (trueUsed / total) * 100,
        pendingBytes: r.pendingFreeBytes,
        planned: lagFree.bytesToFree,
        evicted: r.archivedBytes,
      });
      clock += ROUND_MS;
    }
    // The catalog and the store agree: every frame the catalog has as local is there, the rest archived.
    const totals = await catalog.totals();
    let localObjects = 0;
    for await (const _ of real.list({ prefix: "frames/" })) localObjects++;
    assert.equal(localObjects, totals.local.frames);
    assert.equal(totals.local.frames + totals.archive.frames, seq);
    return figures;
  } finally {
    await catalog.close();
    await empty(real);
    await empty(archive);
  }
}

function table(name: string, figures: RoundFigures[]): string {
  const lines = [`  ${name}: round  df%   lag-free%  pending    planned     evicted`];
  for (const f of figures) {
    lines.push(
      `  ${" ".repeat(name.length)}  ${String(f.round).padStart(5)}  ${f.dfPercent.toFixed(1).padStart(5)} ${
        f.truePercent.toFixed(1).padStart(9)
      }  ${fmtBytes(f.pendingBytes).padStart(9)}  ${fmtBytes(f.planned).padStart(9)}  ${
        fmtBytes(f.evicted).padStart(9)
      }`,
    );
  }
  const planned = figures.reduce((n, f) => n + f.planned, 0);
  const evicted = figures.reduce((n, f) => n + f.evicted, 0);
  lines.push(
    `  ${name}: total planned ${planned} B (${fmtBytes(planned)}), evicted ${evicted} B (${
      fmtBytes(evicted)
    }), ` +
      `${(((evicted - planned) / planned) * 100).toFixed(1)} %`,
  );
  return lines.join("\n");
}

Deno.test("disk lagging deletes by minutes: consecutive rounds evict what was planned (within 10 %), not more", async () => {
  await ensureS3();
  const frame = readSamples()[0].length;
  const withLedger = await rounds(600);
  console.log(table("ledger (free_lag_secs 600)", withLedger));
  const planned = withLedger.reduce((n, f) => n + f.planned, 0);
  const evicted = withLedger.reduce((n, f) => n + f.evicted, 0);
  assert.ok(planned > 20 * frame, `a plan of ${planned} bytes`);
  assert.ok(
    Math.abs(evicted - planned) <= 0.1 * planned,
    `evicted ${evicted} bytes for ${planned} planned`,
  );
  // Round by round too: never ahead of the plan by more than 10 % and one frame in flight.
  let p = 0, e = 0;
  for (const f of withLedger) {
    p += f.planned;
    e += f.evicted;
    assert.ok(e <= 1.1 * p + frame, `round ${f.round}: ${e} evicted after ${p} planned`);
  }
  // The disk showed the deletes late: some round saw it above the threshold with nothing to evict.
  assert.ok(withLedger.some((f) => f.dfPercent >= 80 && f.evicted === 0 && f.pendingBytes > 0));

  // The same rounds measured from scratch (the behaviour before the ledger) evict far more than planned.
  const without = await rounds(0);
  console.log(table("no ledger (free_lag_secs 0)", without));
  const evictedWithout = without.reduce((n, f) => n + f.evicted, 0);
  const plannedWithout = without.reduce((n, f) => n + f.planned, 0);
  assert.ok(evictedWithout > 1.5 * plannedWithout, `${evictedWithout} evicted for ${plannedWithout} planned`);
});
