/**
 * `deno task bench catalog --backend sqlite|postgres [--rows N] [--url URL]`: the catalog under a fleet's rows.
 *
 * Works on a fresh catalog: a temporary SQLite file, or a fresh PostgreSQL schema `bench_<random>` dropped at the
 * end (also after an error or Ctrl-C). Everything goes through the `Catalog` interface, as the consumer, the API
 * and the tools use it. The rows are the consumer's: 20 robots at 10 fps of which the scene filter keeps ~30 %
 * (so ~60 rows/s for the fleet: 1,000,000 rows are ~4.6 hours, 10,000,000 ~46 hours), each with its object key
 * (src/key.ts `objectKey`), a 32-byte hash, an entity tag, its Kafka partition and offset. They are generated
 * batch by batch, so memory stays bounded at any `--rows`.
 *
 * In order, one JSON line each on stdout (progress on stderr):
 *  - upsert_single:  one `upsert` per row on the empty catalog, awaited one after the other (per_s);
 *  - upsert_batched: `upsertMany` of 1000-row batches (per_s);
 *  - fill:           the rest up to `--rows` with `upsertMany` (per_s, rss_mb);
 *  - label:          ~1 % of the frames labelled `door-open` (runs of consecutive frames of a robot, like a door
 *                    seen open for a while) with `labels().addLabels({keys})` in batches, and 20 clips of 10
 *                    minutes, half labelled `door-open`, half `inspection` (per_s);
 *  - size:           the catalog on disk (SQLite: the file and its WAL; PostgreSQL: `pg_total_relation_size` of
 *                    the schema's tables, indexes and TOAST included), bytes and bytes_per_row;
 *  - search_robot_time: `findFrames({robots: [r], fromMs, toMs})` over a random robot's random hour, newest 50;
 *  - search_label:      `findFrames({labels: ["door-open"]})`, newest 50;
 *  - search_label_robot: the same for one random robot;
 *  - count_robot_time:  `countFrames` of the robot + hour filter;
 *  - timeline_day:      `timeline(robot, from, from + 1 day, 60 s)` over a random day of a random robot;
 *  - upsert_single_full: single upserts again, now on the full catalog (the consumer's steady state).
 * The query measures have p50_ms, p99_ms, max_ms and n (after 10 warm-up queries; a measure stops after --budget
 * seconds once it has 20 queries, so n says how many were timed), e.g.
 *   {"bench":"catalog","backend":"postgres","rows":1000000,"measure":"search_robot_time","p50_ms":..,
 *    "p99_ms":..,"max_ms":..,"n":200}
 *
 * PostgreSQL gets `VACUUM ANALYZE` of the schema's tables after the fill and the labels (what autovacuum does
 * to a table soon after a bulk load), so the queries are planned with statistics, as on a catalog in service;
 * its time is reported in the size line (`vacuum_s`). Figures are measurements, never assertions.
 */
import { parseArgs } from "node:util";
// @ts-types="@types/pg"
import pg from "pg";
import type { Catalog, FrameRow } from "../src/catalog/catalog.ts";
import { openCatalogAt } from "../src/catalog/open.ts";
import { objectKey } from "../src/key.ts";
import { Rng } from "../dev/random.ts";
import { ensureServers, stackEndpoints } from "../tools/stack.ts";

/** The server of `url` when given, else the stack's PostgreSQL (tools/stack.ts), started when nothing answers. */
export async function postgresServer(url: string | undefined): Promise<string> {
  if (url !== undefined) return url;
  await ensureServers(["postgres"]);
  return stackEndpoints().postgresUrl;
}

export const USAGE =
  `usage: deno task bench catalog --backend sqlite|postgres [--rows N] [--url URL] [--queries N] [--seed N]

Fills a fresh catalog (a temporary SQLite file, or a fresh PostgreSQL schema bench_<random> dropped at the end)
with the rows of 20 robots at 10 fps (~30 % of frames stored), ~1 % of them labelled, and prints one JSON line
per measure: single and batched upserts/s, the fill rate, the size on disk per row, p50/p99 of search by robot
and hour, search by label, count, and a day's timeline, and single upserts/s on the full catalog.
  --backend B      sqlite or postgres (default sqlite)
  --rows N         frames in the catalog (default 1000000)
  --url URL        the PostgreSQL server (default: the stack's, started when nothing answers)
  --dir DIR        where the SQLite file goes (default: a new temporary folder, removed at the end)
  --queries N      timed queries per measure (default 200)
  --single N       single upserts on the empty catalog (default 20000; at most a quarter of --rows)
  --batched N      rows upserted in 1000-row batches (default 100000; at most a quarter of --rows)
  --fill-batch N   rows per upsertMany while filling (default 5000)
  --budget S       seconds per query measure: it stops there after at least 20 queries (default 120)
  --seed N         generator seed (default 1)`;

// ------------------------------------------------------------------------------------------------ the fleet

export const ROBOTS = 20;
export const FPS = 10;
/** Share of the captured frames the scene filter keeps (bench e2e's frame pattern: ~1/3 new scenes). */
export const STORED = 0.3;
/** Share of the stored frames labelled `door-open`, in runs of about RUN frames of one robot. */
const LABELLED = 0.01;
const RUN = 30;
const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Where capture times start (2026-01-05 00:00 UTC). */
export const START_MS = Date.UTC(2026, 0, 5);

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The stored frames of a fleet in capture order, as the consumer records them: robot `robot-000`.. at `fps`, each
 * frame kept with probability STORED, its Kafka offset counted over every published frame of its partition (one
 * partition per robot, as bench e2e's topic), stored ~150-400 ms after capture. Seeded: the same seed gives the
 * same rows.
 */
export class Fleet {
  readonly robotIds: string[];
  readonly #rng: Rng;
  readonly #fps: number;
  #tick = 0;
  #robot = 0;
  readonly #offsets: number[];
  readonly #doorLeft: number[];
  #produced = 0;
  /** Keys of the frames to label `door-open`, taken (and emptied) by the caller. */
  labelled: string[] = [];

  constructor(seed: number, robots = ROBOTS, fps = FPS) {
    this.#rng = new Rng(seed);
    this.#fps = fps;
    this.robotIds = Array.from({ length: robots }, (_, i) => `robot-${String(i).padStart(3, "0")}`);
    this.#offsets = new Array(robots).fill(0);
    this.#doorLeft = new Array(robots).fill(0);
  }

  /** Rows produced so far. */
  get produced(): number {
    return this.#produced;
  }

  /** Capture time of the newest frame so far (ms since the epoch). */
  get lastMs(): number {
    return START_MS + Math.floor((this.#tick * 1000) / this.#fps);
  }

  /** The next stored frame. */
  next(): FrameRow {
    const rng = this.#rng;
    for (;;) {
      const r = this.#robot;
      const tick = this.#tick;
      if (++this.#robot === this.robotIds.length) {
        this.#robot = 0;
        this.#tick++;
      }
      const offset = this.#offsets[r]++;
      if (!rng.chance(STORED)) continue;
      const robotId = this.robotIds[r];
      // Robots' clocks are not in step: a few ms apart.
      const timestampMs = START_MS + Math.floor((tick * 1000) / this.#fps) + r * 7;
      const storedMs = timestampMs + 150 + rng.int(250);
      const key = objectKey("", robotId, timestampMs, tick);
      if (this.#doorLeft[r] === 0 && rng.chance(LABELLED / RUN)) this.#doorLeft[r] = RUN / 2 + rng.int(RUN);
      if (this.#doorLeft[r] > 0) {
        this.#doorLeft[r]--;
        this.labelled.push(key);
      }
      this.#produced++;
      return {
        key,
        robotId,
        timestampMs,
        seq: tick,
        size: 150_000 + rng.int(60_000),
        etag: `"${hex(rng.bytes(16))}"`,
        filter: "phash",
        distance: 12 + rng.int(100),
        hash: rng.bytes(32),
        tier: "local",
        tierChangedMs: storedMs,
        storedMs,
        partition: r,
        offset,
      };
    }
  }

  take(n: number): FrameRow[] {
    const rows = new Array<FrameRow>(n);
    for (let i = 0; i < n; i++) rows[i] = this.next();
    return rows;
  }
}

// ------------------------------------------------------------------------------------------------ PostgreSQL

/** `url` with `?schema=NAME` set (any schema it named replaced). */
export function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set("schema", schema);
  return u.toString();
}

/** A fresh schema name: `prefix_` and 8 random hex digits. */
export const freshSchema = (prefix: string) =>
  `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;

/** One connection to the server of `url` (any `?schema=` left out) for work outside the catalog. */
async function adminClient(url: string): Promise<pg.Client> {
  const u = new URL(url);
  u.searchParams.delete("schema");
  const client = new pg.Client({ connectionString: u.toString(), application_name: "frame-bucket-bench" });
  await client.connect();
  return client;
}

/** Drops a schema and everything in it (a bench's fresh schema at its end). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new RangeError(`not a schema name: ${schema}`);
  const client = await adminClient(url);
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** Tables of a schema with their total size on disk (indexes and TOAST included). */
async function schemaBytes(client: pg.Client, schema: string): Promise<number> {
  const r = await client.query(
    `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm')`,
    [schema],
  );
  return Number(r.rows[0].bytes);
}

async function vacuumAnalyze(client: pg.Client, schema: string): Promise<void> {
  const r = await client.query(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r'`,
    [schema],
  );
  for (const row of r.rows) await client.query(`VACUUM ANALYZE ${schema}."${row.relname}"`);
}

// ------------------------------------------------------------------------------------------------ the bench

function intArg(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} ${value} must be a whole number >= ${min}`);
  }
  return n;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const rssMb = () => Math.round(Deno.memoryUsage().rss / 1024 / 1024);

class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

export async function benchCatalog(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      backend: { type: "string", default: "sqlite" },
      rows: { type: "string" },
      url: { type: "string" },
      dir: { type: "string" },
      queries: { type: "string" },
      single: { type: "string" },
      batched: { type: "string" },
      "fill-batch": { type: "string" },
      seed: { type: "string" },
      budget: { type: "string" },
    },
    strict: true,
  });
  const backend = values.backend;
  if (backend !== "sqlite" && backend !== "postgres") {
    throw new RangeError(`--backend ${backend} must be sqlite or postgres`);
  }
  if (values.url !== undefined && backend !== "postgres") {
    throw new RangeError("--url is for --backend postgres");
  }
  if (values.dir !== undefined && backend !== "sqlite") throw new RangeError("--dir is for --backend sqlite");
  const rows = intArg(values.rows, "rows", 1_000_000, 100);
  const queries = intArg(values.queries, "queries", 200, 1);
  const single = Math.min(intArg(values.single, "single", 20_000, 1), Math.floor(rows / 4));
  const batched = Math.min(intArg(values.batched, "batched", 100_000, 1), Math.floor(rows / 4));
  const fillBatch = intArg(values["fill-batch"], "fill-batch", 5000, 1);
  const seed = intArg(values.seed, "seed", 1, 0);
  const budgetS = intArg(values.budget, "budget", 120, 1);
  const say = (line: string) => console.error(line);
  const emit = (measure: string, fields: Record<string, unknown>) =>
    console.log(JSON.stringify({ bench: "catalog", backend, rows, measure, ...fields }));

  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    say("interrupted: cleaning up");
  };
  Deno.addSignalListener("SIGINT", onSignal);
  const check = () => {
    if (interrupted) throw new Interrupted();
  };

  // Where the catalog goes, and how it is removed at the end.
  let sqlitePath = "", tempDir = "", pgUrl = "", schema = "";
  if (backend === "sqlite") {
    tempDir = values.dir ? "" : await Deno.makeTempDir({ prefix: "frame-bucket-bench-catalog-" });
    const dir = values.dir ?? tempDir;
    sqlitePath = `${dir.replace(/\/$/, "")}/bench-catalog-${crypto.randomUUID().slice(0, 8)}.sqlite`;
  } else {
    pgUrl = await postgresServer(values.url);
    schema = freshSchema("bench");
  }
  let catalog: Catalog | null = null;
  let admin: pg.Client | null = null;
  try {
    if (backend === "sqlite") {
      say(`catalog: ${sqlitePath}`);
      catalog = await openCatalogAt({ backend: "sqlite", path: sqlitePath });
    } else {
      try {
        admin = await adminClient(pgUrl);
      } catch (error) {
        throw new Error(
          `cannot connect to PostgreSQL at ${pgUrl.replace(/:[^:@/]*@/, ":***@")} (${
            error instanceof Error ? error.message : error
          }): check the server, or pass --url`,
        );
      }
      say(`catalog: schema ${schema} on ${pgUrl.replace(/:[^:@/]*@/, ":***@")}`);
      catalog = await openCatalogAt({ backend: "postgres", url: withSchema(pgUrl, schema) });
    }
    const fleet = new Fleet(seed);

    // Single upserts, as the consumer records each stored frame.
    {
      const batch = fleet.take(single);
      const t = performance.now();
      for (const row of batch) await catalog.upsert(row);
      const s = (performance.now() - t) / 1000;
      emit("upsert_single", { n: single, seconds: round(s), per_s: Math.round(single / s) });
    }
    check();
    // Batched upserts of 1000 rows (reindex, reconciliation, a migration).
    {
      let s = 0;
      for (let done = 0; done < batched; done += 1000) {
        const batch = fleet.take(Math.min(1000, batched - done));
        const t = performance.now();
        await catalog.upsertMany(batch);
        s += (performance.now() - t) / 1000;
      }
      emit("upsert_batched", { n: batched, batch: 1000, seconds: round(s), per_s: Math.round(batched / s) });
    }
    // The fill.
    {
      const start = fleet.produced;
      const t = performance.now();
      let lastSaid = t;
      while (fleet.produced < rows) {
        check();
        await catalog.upsertMany(fleet.take(Math.min(fillBatch, rows - fleet.produced)));
        const now = performance.now();
        if (now - lastSaid > 5000) {
          lastSaid = now;
          const rate = (fleet.produced - start) / ((now - t) / 1000);
          say(
            `fill: ${fleet.produced} of ${rows} rows (${Math.round(rate)}/s, ~${
              Math.round((rows - fleet.produced) / rate)
            } s to go), rss ${rssMb()} MB`,
          );
        }
      }
      const n = fleet.produced - start;
      const s = (performance.now() - t) / 1000;
      emit("fill", { n, batch: fillBatch, seconds: round(s, 1), per_s: Math.round(n / s), rss_mb: rssMb() });
    }
    const firstMs = START_MS, lastMs = fleet.lastMs;
    say(`capture times span ${round((lastMs - firstMs) / HOUR, 1)} hours`);

    // Labels: ~1 % of frames in runs, then clips.
    const rng = new Rng(seed + 1);
    {
      const labels = catalog.labels();
      const keys = fleet.labelled;
      fleet.labelled = [];
      const t = performance.now();
      let lastSaid = t;
      for (let i = 0; i < keys.length; i += 1000) {
        check();
        await labels.addLabels({ keys: keys.slice(i, i + 1000) }, ["door-open"], { author: "bench" });
        if (performance.now() - lastSaid > 5000) {
          lastSaid = performance.now();
          say(`labels: ${i + 1000} of ${keys.length} frames`);
        }
      }
      const clips = 20;
      for (let c = 0; c < clips; c++) {
        const fromMs = firstMs + rng.int(Math.max(1, lastMs - firstMs - 600_000));
        await labels.createClip({
          robotId: fleet.robotIds[c % fleet.robotIds.length],
          fromMs,
          toMs: fromMs + 600_000,
          name: `bench clip ${c}`,
          labels: [c % 2 === 0 ? "door-open" : "inspection"],
        }, { author: "bench" });
      }
      const s = (performance.now() - t) / 1000;
      emit("label", {
        n: keys.length,
        share: round(keys.length / rows, 4),
        clips,
        seconds: round(s, 1),
        per_s: Math.round(keys.length / s),
      });
    }
    check();

    // Size on disk.
    {
      if (backend === "sqlite") {
        const size = (p: string) => Deno.stat(p).then((s) => s.size, () => 0);
        const [file, wal] = await Promise.all([size(sqlitePath), size(`${sqlitePath}-wal`)]);
        emit("size", {
          bytes: file + wal,
          file_bytes: file,
          wal_bytes: wal,
          bytes_per_row: Math.round((file + wal) / rows),
        });
      } else {
        say("VACUUM ANALYZE of the schema's tables...");
        const t = performance.now();
        await vacuumAnalyze(admin!, schema);
        const vacuumS = round((performance.now() - t) / 1000, 1);
        const bytes = await schemaBytes(admin!, schema);
        emit("size", { bytes, bytes_per_row: Math.round(bytes / rows), vacuum_s: vacuumS });
      }
    }

    // Queries.
    const robot = () => fleet.robotIds[rng.int(fleet.robotIds.length)];
    const window = (width: number) => {
      const fromMs = firstMs + rng.int(Math.max(1, lastMs - firstMs - width));
      return { fromMs, toMs: fromMs + width };
    };
    const time = async (measure: string, query: () => Promise<unknown>) => {
      for (let i = 0; i < Math.min(10, queries); i++) await query();
      const ms: number[] = [];
      let results = 0;
      const started = performance.now();
      for (let i = 0; i < queries; i++) {
        check();
        if (i >= 20 && performance.now() - started > budgetS * 1000) {
          say(`${measure}: stopped after ${i} queries (--budget ${budgetS} s)`);
          break;
        }
        const t = performance.now();
        const r = await query();
        ms.push(performance.now() - t);
        results += Array.isArray(r) ? r.length : typeof r === "number" ? r : 0;
      }
      ms.sort((a, b) => a - b);
      emit(measure, {
        p50_ms: round(percentile(ms, 0.5)),
        p99_ms: round(percentile(ms, 0.99)),
        max_ms: round(ms[ms.length - 1]),
        n: ms.length,
        mean_results: round(results / ms.length, 1),
      });
    };
    const cat = catalog;
    await time("search_robot_time", () => {
      const { fromMs, toMs } = window(HOUR);
      return cat.findFrames({ robots: [robot()], fromMs, toMs }, { order: "newest", limit: 50 });
    });
    await time(
      "search_label",
      () => cat.findFrames({ labels: ["door-open"] }, { order: "newest", limit: 50 }),
    );
    await time(
      "search_label_robot",
      () => cat.findFrames({ robots: [robot()], labels: ["door-open"] }, { order: "newest", limit: 50 }),
    );
    await time("count_robot_time", () => {
      const { fromMs, toMs } = window(HOUR);
      return cat.countFrames({ robots: [robot()], fromMs, toMs });
    });
    await time("timeline_day", async () => {
      const { fromMs, toMs } = window(DAY);
      return (await cat.timeline(robot(), fromMs, toMs, 60_000)).reduce((n, b) => n + b.frames, 0);
    });

    // Single upserts on the full catalog: the consumer's steady state.
    {
      const n = Math.min(5000, single);
      const batch = fleet.take(n);
      const t = performance.now();
      for (const row of batch) await catalog.upsert(row);
      const s = (performance.now() - t) / 1000;
      emit("upsert_single_full", { n, seconds: round(s), per_s: Math.round(n / s) });
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await catalog?.close().catch(() => {});
    await admin?.end().catch(() => {});
    if (backend === "sqlite") {
      if (tempDir) await Deno.remove(tempDir, { recursive: true }).catch(() => {});
      else {
        for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(sqlitePath + suffix).catch(() => {});
      }
    } else if (schema) {
      await dropSchema(pgUrl, schema).then(
        () => say(`dropped schema ${schema}`),
        (error) => say(`could not drop schema ${schema}: ${error instanceof Error ? error.message : error}`),
      );
    }
  }
}
