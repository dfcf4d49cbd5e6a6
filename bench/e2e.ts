/**
 * `deno task bench e2e --robots N --fps F --seconds S [--consumers N] [--catalog sqlite|postgres]`: the whole
 * pipeline under a fleet's load on this machine.
 *
 * Simulated cameras serve real MJPEG over HTTP: the real 1080p reachy frames and generated 1080p scenes, in a
 * pattern where about a third of the frames start a new scene, so the filter accepts ~30 %. One producer process
 * per robot, the real broker and S3 server of the local stack, and N consumer processes in one group (each with a
 * config copy and a working folder of its own, as on separate hosts) writing one catalog: a SQLite file they share
 * (one box), or a fresh schema `e2e_<random>` in the stack's PostgreSQL, dropped at the end. Prints one JSON line:
 *
 *   {"robots":20,"fps":10,"seconds":60,"consumers":1,"catalog":"sqlite","published_per_s":..,"consumed_per_s":..,
 *    "stored_per_s":..,"latency_ms":{"p50":..,"p99":..,"max":..},"lag_end":..,"consumer_cpu_s":..,
 *    "consumer_rss_mb":..,"producer_rss_mb":..}
 *
 * Latency is capture-to-stored, from the catalog rows (read through the Catalog interface, either backend) of the
 * frames stored during the measured window. With several consumers the throughput and CPU figures are their sums,
 * the RSS the largest.
 */
import { parseArgs } from "node:util";
import { encode } from "jpeg-js";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";
import type { FramePosition } from "../src/catalog/catalog.ts";
import { catalogTargetOf, openCatalogAt } from "../src/catalog/open.ts";
import { openAdmin } from "../src/kafka/client.ts";
import { createLogger } from "../src/log.ts";
import { sleep } from "../src/ingest/camera.ts";
import { consumerLag } from "../dev/audit.ts";
import { type Camera, startCamera } from "../tools/camera.ts";
import { type Child, freePort, spawnDeno } from "../dev/processes.ts";
import { Rng } from "../dev/random.ts";
import { readSamples } from "../dev/samples.ts";
import { isolatedConfig } from "../dev/scratch.ts";
import { ensureServers, type Service, stackEndpoints, stackPids } from "../tools/stack.ts";
import { loadStorage } from "../src/filter/loader.ts";
import { summarize, takeProfile } from "./cpu_profile.ts";
import { dropSchema, freshSchema, withSchema } from "./catalog.ts";
import { revisionTree } from "../dev/revisions.ts";

export const USAGE =
  `usage: deno task bench e2e [--robots N] [--fps F] [--seconds S] [--consumers N] [--catalog sqlite|postgres]
                            [--compression none|snappy|gzip]

Runs N simulated 1080p cameras, a producer per robot and one or more consumers against the local stack for S
seconds (after a warm-up) and prints one JSON line with throughput, capture-to-stored latency, lag and resource
use.
  --robots N        robots (default 5)
  --consumers N     consumer processes in one group (default 1), each with its own config copy and working
                    folder; the topic gets at least N partitions
  --catalog B       sqlite (default): one SQLite file all consumers share; postgres: a fresh schema e2e_<random>
                    in the stack's PostgreSQL (started when nothing answers), dropped at the end
  --postgres-url U  with --catalog postgres: this server instead of the stack's
  --fps F           frames per second per robot (default 10)
  --seconds S       measured seconds (default 60)
  --warmup S        seconds before measuring (default 10); then up to 60 s more until the consumer's lag is
                    under a quarter second of frames (reported as settle_s)
  --compression C   Kafka compression for the run (default: the config default)
  --local-max-mb M  give the local tier a budget of M MiB (eviction.max_bytes) and an archive bucket on the same
                    S3 server, so eviction runs during the window as on a fleet whose local disk is full
  --metrics-out F   write the consumer's /metrics text at the end of the window to file F
  --consumer-rev R  run the consumer of git revision R (a worktree under /tmp), to compare before and after
  --consumer-flags F  more Deno flags for the consumer (e.g. "--v8-flags=--max-semi-space-size=2")
  --profile         sample the consumer's main thread and the first producer (inspector) during the measured
                    window and print where their time goes, as two more JSON lines`;

const quiet = createLogger({ level: "error", format: "text" });

/**
 * Six generated 1080p scenes: big blocks of contrasting brightness, a different layout per scene, with ±5 levels of
 * seeded sensor noise so that they encode to about the size of a real frame (~180 KB at quality 80; flat blocks
 * alone give 75 KB and would flatter the throughput and any compression codec).
 */
export function sceneFrames(): Uint8Array[] {
  const width = 1920, height = 1080;
  const scenes: Uint8Array[] = [];
  const rng = new Rng(12345);
  for (let s = 0; s < 6; s++) {
    const data = new Uint8Array(width * height * 4);
    // Far apart in aHash terms, so each is a new scene to the filter.
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        const v = ((Math.floor(x / (240 + 40 * s)) + Math.floor(y / (180 + 30 * s)) + s) & 1) ? 210 : 40;
        const n = rng.int(11) - 5;
        data[i] = v + n;
        data[i + 1] = (((v + 60 * s) & 255) >> 1) + 40 + n;
        data[i + 2] = 255 - v + n;
        data[i + 3] = 255;
      }
    }
    scenes.push(new Uint8Array(encode({ data, width, height }, 80).data));
  }
  return scenes;
}

/**
 * The frame pool: runs of three frames, alternating the ten real 1080p frames of reachy-001 (a still scene) and
 * generated scenes (~1/3 new).
 */
export function framePool(real = readSamples(), scenes = sceneFrames()): Uint8Array[] {
  const pool: Uint8Array[] = [];
  for (let i = 0; i < 12; i++) {
    const run = i % 2 === 0
      ? [real[(3 * i) % 10], real[(3 * i + 1) % 10], real[(3 * i + 2) % 10]]
      : [scenes[(i >> 1) % 6]];
    while (run.length < 3) run.push(run[0]);
    pool.push(...run);
  }
  return pool;
}

/** The fields of a /proc/.../stat file after the command name (state is [0], ppid [1], utime [11], stime [12]). */
function statFields(path: string): string[] {
  const stat = Deno.readTextFileSync(path);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** User + system CPU seconds from a /proc/.../stat file (clock ticks of 1/100 s). */
function statCpuS(path: string): number {
  const fields = statFields(path);
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime
}

/**
 * CPU seconds of a server that forks a process per connection (PostgreSQL): the process, its live children, and
 * the children that ended and were waited for (cutime + cstime). 0 without /proc.
 */
function processTreeCpuS(pid: number): number {
  try {
    const own = statFields(`/proc/${pid}/stat`);
    let total = (Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) / 100;
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const f = statFields(`/proc/${entry.name}/stat`);
        if (Number(f[1]) === pid) total += (Number(f[11]) + Number(f[12])) / 100;
      } catch {
        // The process ended while we read it.
      }
    }
    return total;
  } catch {
    return 0;
  }
}

export function procStat(pid: number): { cpuS: number; rssMb: number } {
  try {
    const cpuS = statCpuS(`/proc/${pid}/stat`);
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    return { cpuS, rssMb: Math.round(kb / 102.4) / 10 };
  } catch {
    return { cpuS: 0, rssMb: 0 };
  }
}

/**
 * CPU seconds of a process per kind of thread, from /proc/PID/task: the main thread (the event loop: Kafka, S3,
 * catalog), the filter workers (Deno names their threads worker-N), V8's background threads (GC, compilation) and
 * the rest (the runtime's I/O threads).
 */
export function threadCpuS(pid: number): Record<string, number> {
  const out: Record<string, number> = { main: 0, filter_workers: 0, v8_background: 0, other: 0 };
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const comm = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/comm`).trim();
        const s = statCpuS(`/proc/${pid}/task/${task.name}/stat`);
        const kind = task.name === String(pid)
          ? "main"
          : comm.startsWith("worker-")
          ? "filter_workers"
          : comm.startsWith("V8 ")
          ? "v8_background"
          : "other";
        out[kind] += s;
      } catch {
        // The thread ended while we read it.
      }
    }
  } catch {
    // No /proc: leave zeros.
  }
  return out;
}

/** CPU seconds the whole machine spent busy and in all, from /proc/stat. */
export function boxCpuS(): { busy: number; total: number } {
  try {
    const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    const idle = cpu[3] + (cpu[4] ?? 0);
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Each consumer's /metrics, each family summed over its labels. */
async function scrapeEach(ports: number[]): Promise<Map<string, number>[]> {
  return await Promise.all(ports.map(async (port) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const totals = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (m) totals.set(m[1], (totals.get(m[1]) ?? 0) + Number(m[3]));
    }
    return totals;
  }));
}

/** Metrics summed over the consumers. */
function sumMetrics(each: Map<string, number>[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const m of each) for (const [k, v] of m) totals.set(k, (totals.get(k) ?? 0) + v);
  return totals;
}

const scrape = async (ports: number[]) => sumMetrics(await scrapeEach(ports));

/** A copy of a config file for one consumer: its own working folder and metrics port (another host, in effect). */
async function consumerConfig(
  path: string,
  n: number,
  metricsPort: number,
): Promise<{ path: string; dir: string }> {
  const toml = parseToml(await Deno.readTextFile(path)) as Record<string, Record<string, unknown>>;
  const dir = await Deno.makeTempDir({ prefix: `frame-bucket-e2e-consumer-${n}-` });
  toml.catalog = { ...toml.catalog, data_dir: dir };
  toml.metrics = { ...toml.metrics, consumer_port: metricsPort };
  const file = await Deno.makeTempFile({ prefix: `frame-bucket-e2e-consumer-${n}-`, suffix: ".toml" });
  await Deno.writeTextFile(file, stringifyToml(toml));
  return { path: file, dir };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export async function benchE2e(args: string[]): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args,
    options: {
      robots: { type: "string", default: "5" },
      fps: { type: "string", default: "10" },
      seconds: { type: "string", default: "60" },
      warmup: { type: "string", default: "10" },
      compression: { type: "string" },
      profile: { type: "boolean", default: false },
      "metrics-out": { type: "string" },
      "local-max-mb": { type: "string" },
      "consumer-rev": { type: "string" },
      "consumer-flags": { type: "string" },
      consumers: { type: "string", default: "1" },
      catalog: { type: "string", default: "sqlite" },
      "postgres-url": { type: "string" },
    },
  });
  const robots = Number(values.robots), fps = Number(values.fps), seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  for (const [name, v] of [["--robots", robots], ["--fps", fps], ["--seconds", seconds]] as const) {
    if (!(v > 0)) throw new RangeError(`${name} must be positive`);
  }
  const consumerCount = Number(values.consumers);
  if (!Number.isInteger(consumerCount) || consumerCount < 1) {
    throw new RangeError(`--consumers ${values.consumers} must be a whole number >= 1`);
  }
  const backend = values.catalog;
  if (backend !== "sqlite" && backend !== "postgres") {
    throw new RangeError(`--catalog ${backend} must be sqlite or postgres`);
  }
  if (values["postgres-url"] !== undefined && backend !== "postgres") {
    throw new RangeError("--postgres-url is for --catalog postgres");
  }
  const localMaxMb = values["local-max-mb"] === undefined ? 0 : Number(values["local-max-mb"]);
  if (!(localMaxMb >= 0)) {
    throw new RangeError(`--local-max-mb ${values["local-max-mb"]} must be a size in MiB`);
  }
  // Servers that already answer (this checkout's stack, another's, docker compose) are measured as they are.
  const services: Service[] = ["kafka", "s3"];
  if (backend === "postgres" && values["postgres-url"] === undefined) services.push("postgres");
  await ensureServers(services);
  const say = (l: string) => console.error(l);
  const metricsPorts = Array.from({ length: consumerCount }, () => freePort());
  const stack = stackEndpoints();
  // The catalog every consumer writes: one SQLite file in a folder of its own, or a fresh PostgreSQL schema.
  const pgUrl = values["postgres-url"] ?? stack.postgresUrl;
  const schema = backend === "postgres" ? freshSchema("e2e") : "";
  const sqliteDir = backend === "sqlite"
    ? await Deno.makeTempDir({ prefix: "frame-bucket-e2e-catalog-" })
    : "";
  const catalogUrl = backend === "postgres"
    ? withSchema(pgUrl, schema)
    : `sqlite:${sqliteDir}/catalog.sqlite`;
  const archiveBucket = `bench-archive-${crypto.randomUUID().slice(0, 8)}`;
  if (localMaxMb) {
    const archive = await loadStorage("s3_archive", {
      bucket: archiveBucket,
      endpoint: stack.s3Endpoint,
      accessKey: stack.accessKey,
      secretKey: stack.secretKey,
      createBucket: true,
    });
    await archive.open().finally(() => archive.close());
  }
  const { path, config } = await isolatedConfig("bench-e2e", {
    ...(localMaxMb
      ? {
        eviction: { max_bytes: Math.round(localMaxMb * 1024 * 1024), check_interval_secs: 2 },
        aws_s3: { bucket: archiveBucket, endpoint: stack.s3Endpoint, prefix: "archive/" },
      }
      : {}),
    kafka: values.compression ? { compression: values.compression } : {},
    stream: { fps },
    catalog: { url: catalogUrl },
    metrics: { consumer_port: metricsPorts[0] },
    consumer: { stats_interval_secs: 10 },
    producer: { stats_interval_secs: 10 },
  });
  const admin = await openAdmin(config.kafka, quiet);
  // As many partitions as robots (at least 3), and at least one per consumer (one without a partition idles).
  await admin.ensureTopic(Math.max(3, robots, consumerCount), config.kafka.max_message_bytes)
    .finally(() => admin.close());

  say(`building the 1080p frame pool...`);
  const pool = framePool();
  const cameras: Camera[] = [];
  const producers: Child[] = [];
  const consumers: Child[] = [];
  const scratch: string[] = [config.catalog.data_dir, ...(sqliteDir ? [sqliteDir] : [])];
  // Every frame of the run is captured after this (the catalog's rows of the run are those captured since).
  const runStartMs = Date.now();
  try {
    for (let r = 0; r < robots; r++) {
      const offset = (r * 7) % pool.length;
      cameras.push(
        await startCamera({ port: 0, fps, frames: [...pool.slice(offset), ...pool.slice(0, offset)] }),
      );
    }
    const inspectPort = values.profile ? freePort() : 0;
    // Another revision's consumer (before/after a change), from a worktree of it under /tmp with its own deno.json.
    const consumerTree = values["consumer-rev"] ? await revisionTree(values["consumer-rev"]) : null;
    const consumerScript = consumerTree ? `${consumerTree.dir}/src/main/consume.ts` : "src/main/consume.ts";
    const treeFlags = consumerTree ? ["--config", `${consumerTree.dir}/deno.json`] : [];
    const extraFlags = (values["consumer-flags"] ?? "").split(/\s+/).filter(Boolean);
    say(
      `starting ${consumerCount} consumer${consumerCount > 1 ? "s" : ""}` +
        `${consumerTree ? ` of ${consumerTree.sha.slice(0, 7)}` : ""}, catalog ${backend}`,
    );
    for (let n = 0; n < consumerCount; n++) {
      const own = await consumerConfig(path, n, metricsPorts[n]);
      scratch.push(own.path, own.dir);
      consumers.push(spawnDeno(consumerCount > 1 ? `consumer ${n}` : "consumer", consumerScript, [
        "--config",
        own.path,
      ], {
        env: localMaxMb ? { AWS_ACCESS_KEY_ID: stack.accessKey, AWS_SECRET_ACCESS_KEY: stack.secretKey } : {},
        // The profile is of the first consumer.
        denoFlags: [
          ...treeFlags,
          ...extraFlags,
          ...(values.profile && n === 0 ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
        ],
      }));
    }
    await Promise.all(consumers.map((c) => c.waitFor(/joined group/, 60000)));
    say(`starting ${robots} producers at ${fps} fps`);
    const producerInspectPort = values.profile ? freePort() : 0;
    for (let r = 0; r < robots; r++) {
      producers.push(
        spawnDeno(`producer ${r}`, "src/main/produce.ts", [
          `robot-${String(r).padStart(3, "0")}`,
          cameras[r].url,
          "--config",
          path,
        ], { denoFlags: values.profile && r === 0 ? [`--inspect=127.0.0.1:${producerInspectPort}`] : [] }),
      );
    }
    await Promise.all(producers.map((p) => p.waitFor(/connected to camera/, 60000)));
    say(`warming up for ${warmup} s`);
    await sleep(warmup * 1000);
    // Start-up (20 processes compiling and connecting at once) leaves a backlog; the window is meant to measure
    // the steady state, so it opens once the consumer's own lag gauge (messages behind the newest when it fetched,
    // all partitions) stays under a quarter second of frames for two readings, waiting at most 60 s more (the
    // wait is reported; a pipeline that cannot catch up is measured anyway, and shows it).
    const settleStart = Date.now();
    for (let calm = 0; calm < 2 && Date.now() - settleStart < 60_000;) {
      await sleep(1000);
      const lag = (await scrape(metricsPorts).catch(() => new Map<string, number>())).get(
        "frame_bucket_consumer_lag",
      );
      calm = lag !== undefined && lag <= (robots * fps) / 4 ? calm + 1 : 0;
    }
    const settleS = Math.round((Date.now() - settleStart) / 100) / 10;

    const admin2 = await openAdmin(config.kafka, quiet);
    const highs = async () =>
      [...((await admin2.describeTopic())?.highWatermarks.values() ?? [])].reduce((n, h) => n + Number(h), 0);
    const t0 = Date.now();
    const published0 = await highs();
    const m0Each = await scrapeEach(metricsPorts).catch((error) => {
      throw new Error(
        `cannot read the consumers' /metrics (${error.message}); their last lines:\n` +
          consumers.map((c) => `${c.name}:\n${c.lines.slice(-15).join("\n")}`).join("\n"),
      );
    });
    const m0 = sumMetrics(m0Each);
    const consumersCpuS = () => consumers.reduce((n, c) => n + procStat(c.pid).cpuS, 0);
    const consumersThreads = () => {
      const sum: Record<string, number> = {};
      for (const c of consumers) {
        for (const [kind, s] of Object.entries(threadCpuS(c.pid))) sum[kind] = (sum[kind] ?? 0) + s;
      }
      return sum;
    };
    const cpu0 = consumersCpuS();
    const servers = await stackPids();
    // PostgreSQL serves each connection from a process of its own: its CPU is the server's process tree's.
    const pgPid = backend === "postgres" && values["postgres-url"] === undefined
      ? servers.postgres
      : undefined;
    const groups = (): Record<string, number> => ({
      consumer: consumersCpuS(),
      producers: producers.reduce((n, p) => n + procStat(p.pid).cpuS, 0),
      cameras_and_bench: procStat(Deno.pid).cpuS,
      kafka: servers.kafka ? procStat(servers.kafka).cpuS : 0,
      s3: servers.s3 ? procStat(servers.s3).cpuS : 0,
      ...(backend === "postgres" ? { postgres: pgPid ? processTreeCpuS(pgPid) : 0 } : {}),
    });
    const g0 = groups();
    const t0Threads = consumersThreads();
    const box0 = boxCpuS();
    say(`measuring for ${seconds} s`);
    const profiling = values.profile
      ? Promise.all([
        takeProfile(inspectPort, seconds * 1000),
        takeProfile(producerInspectPort, seconds * 1000),
      ])
      : null;
    await sleep(seconds * 1000);
    const profiles = await profiling;
    const g1 = groups();
    const t1Threads = consumersThreads();
    const box1 = boxCpuS();
    const t1 = Date.now();
    const published1 = await highs();
    const m1Each = await scrapeEach(metricsPorts);
    const m1 = sumMetrics(m1Each);
    const cpu1 = consumersCpuS();
    const consumerRss = Math.max(...consumers.map((c) => procStat(c.pid).rssMb));
    const lagEnd = await consumerLag(config, quiet);
    if (values["metrics-out"]) {
      const text = (await Promise.all(
        metricsPorts.map(async (port) => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
      )).join("\n");
      await Deno.writeTextFile(values["metrics-out"], text);
      say(`consumer /metrics at the end written to ${values["metrics-out"]}`);
    }
    await admin2.close();
    const producerRss = Math.max(...producers.map((p) => procStat(p.pid).rssMb));
    const elapsed = (t1 - t0) / 1000;

    // The rows stored in the window, through the catalog's own interface (either backend): every row of this
    // run's catalog, in capture order, page by page, kept when stored between t0 and t1.
    const latencies: number[] = [];
    const catalog = await openCatalogAt(catalogTargetOf(catalogUrl), { poolSize: 2 });
    try {
      let after: FramePosition | null = null;
      for (;;) {
        const page = await catalog.findFrames({ fromMs: runStartMs }, {
          order: "oldest",
          limit: 1000,
          after,
        });
        for (const f of page) {
          if (f.storedMs >= t0 && f.storedMs <= t1) latencies.push(f.storedMs - f.timestampMs);
        }
        if (page.length < 1000) break;
        const last = page[page.length - 1];
        after = { timestampMs: last.timestampMs, seq: last.seq, key: last.key };
      }
    } finally {
      await catalog.close();
    }
    latencies.sort((a, b) => a - b);
    const delta = (name: string) => ((m1.get(name) ?? 0) - (m0.get(name) ?? 0)) / elapsed;
    const mean = (family: string) => {
      const sum = (m1.get(`${family}_sum`) ?? 0) - (m0.get(`${family}_sum`) ?? 0);
      const count = (m1.get(`${family}_count`) ?? 0) - (m0.get(`${family}_count`) ?? 0);
      return count ? Math.round((sum / count) * 10000) / 10 : 0;
    };
    const perCore = (a: Record<string, number>, b: Record<string, number>) =>
      Object.fromEntries(Object.keys(a).map((k) => [k, Math.round((b[k] - a[k]) / elapsed * 100) / 100]));
    const result = {
      robots,
      fps,
      seconds,
      consumers: consumerCount,
      catalog: backend,
      settle_s: settleS,
      compression: config.kafka.compression,
      published_per_s: Math.round((published1 - published0) / elapsed * 10) / 10,
      consumed_per_s: Math.round(delta("frame_bucket_frames_received_total") * 10) / 10,
      stored_per_s: Math.round(delta("frame_bucket_frames_stored_total") * 10) / 10,
      // How the work was shared.
      ...(consumerCount > 1
        ? {
          stored_per_s_each: m1Each.map((m, i) =>
            Math.round(
              ((m.get("frame_bucket_frames_stored_total") ?? 0) -
                (m0Each[i].get("frame_bucket_frames_stored_total") ?? 0)) / elapsed * 10,
            ) / 10
          ),
        }
        : {}),
      ...(localMaxMb
        ? {
          evicted_per_s: Math.round(delta("frame_bucket_frames_evicted_total") * 10) / 10,
          // Times the local tier reached the hard limit in the window, pausing the consumer (eviction behind).
          consumer_pauses: Math.round(delta("frame_bucket_consumer_pauses_total") * elapsed),
          local_percent_end: m1.get("frame_bucket_local_usage_percent") ?? null,
        }
        : {}),
      latency_ms: {
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        max: latencies.at(-1) ?? 0,
      },
      lag_end: lagEnd,
      catalog_rows_window: latencies.length,
      consumer_cpu_s: Math.round((cpu1 - cpu0) * 10) / 10,
      // All the consumer's threads (event loop, filter workers, V8's) per frame it received in the window.
      consumer_cpu_ms_per_frame: Math.round(
        (cpu1 - cpu0) * 1000 /
          Math.max(
            1,
            (m1.get("frame_bucket_frames_received_total") ?? 0) -
              (m0.get("frame_bucket_frames_received_total") ?? 0),
          ) *
          1000,
      ) / 1000,
      // Means over the window from the consumer's histograms: filter = queueing for a worker + decode + hash.
      filter_ms_mean: mean("frame_bucket_filter_seconds"),
      store_ms_mean: mean("frame_bucket_store_seconds"),
      // Peak resident memory (VmHWM) of the consumer (the largest one's, with several).
      consumer_rss_mb: consumerRss,
      producer_rss_mb: producerRss,
      // Cores used during the window, per process group and for the whole machine (all its processes).
      consumer_threads_cores: perCore(t0Threads, t1Threads),
      cores: {
        ...perCore(g0, g1),
        machine_busy: Math.round((box1.busy - box0.busy) / elapsed * 100) / 100,
        machine_total: Math.round((box1.total - box0.total) / elapsed * 100) / 100,
      },
    };
    console.log(JSON.stringify(result));
    if (profiles) {
      console.log(JSON.stringify({ consumer_main_thread_profile: summarize(profiles[0], 30) }));
      console.log(JSON.stringify({ producer_0_profile: summarize(profiles[1], 30) }));
      // The raw profiles open in Chrome DevTools (Performance, "Load profile") for a flame chart.
      const dir = await Deno.makeTempDir({ prefix: "frame-bucket-profiles-" });
      await Deno.writeTextFile(`${dir}/consumer.cpuprofile`, JSON.stringify(profiles[0]));
      await Deno.writeTextFile(`${dir}/producer-0.cpuprofile`, JSON.stringify(profiles[1]));
      say(`raw profiles written to ${dir}/ (consumer.cpuprofile, producer-0.cpuprofile)`);
    }
    return result;
  } finally {
    await Promise.all(producers.map((p) => p.stop(5000)));
    await Promise.all(consumers.map((c) => c.stop(10000)));
    for (const c of cameras) await c.close();
    await Deno.remove(path).catch(() => {});
    for (const p of scratch) await Deno.remove(p, { recursive: true }).catch(() => {});
    if (schema) {
      await dropSchema(pgUrl, schema).catch((error) =>
        say(`could not drop schema ${schema}: ${error instanceof Error ? error.message : error}`)
      );
    }
    // A run leaves ~36 MB a second of frames on the broker and a few GB in the buckets: gone at the end, so that
    // runs do not fill the stack's disk (one did, and took the shared broker down).
    await cleanUp(config.kafka, [
      ["rustfs", { endpoint: stack.s3Endpoint, bucket: config.rustfs.bucket }],
      ...(localMaxMb
        ? [["s3_archive", {
          endpoint: stack.s3Endpoint,
          bucket: archiveBucket,
          accessKey: stack.accessKey,
          secretKey: stack.secretKey,
        }] as [string, Record<string, unknown>]]
        : []),
    ]).catch((error) => say(`cleaning up: ${error instanceof Error ? error.message : error}`));
  }
}

/** Deletes the run's topic and every object of its buckets. */
async function cleanUp(
  kafka: Parameters<typeof openAdmin>[0],
  buckets: [string, Record<string, unknown>][],
): Promise<void> {
  const admin = await openAdmin(kafka, quiet);
  await admin.deleteTopic().finally(() => admin.close());
  for (const [plugin, options] of buckets) {
    const store = await loadStorage(plugin, options);
    try {
      // Listed first, deleted after: deleting while paging through a listing may skip keys.
      const keys: string[] = [];
      for await (const item of store.list()) keys.push(item.key);
      for (let at = 0; at < keys.length; at += 1000) {
        const chunk = keys.slice(at, at + 1000);
        await (store.deleteMany?.(chunk) ?? Promise.all(chunk.map((k) => store.delete(k))));
      }
    } finally {
      store.close();
    }
  }
}
