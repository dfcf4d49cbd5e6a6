/**
 * `deno task bench drain [--robots N] [--frames N] [--rev REV]... [--variant SPEC]... [--pairs N]`: how fast a
 * consumer drains a topic that is already full, and what that costs it.
 *
 * The topic is filled once (N robots x N frames of the e2e frame pool: the real 1080p reachy frames and generated
 * 1080p scenes, a third of the frames new scenes), then each consumer variant in turn drains it from the start as
 * a fresh consumer group into a fresh bucket and a fresh SQLite catalog, on the same Kafka and S3 server. A
 * variant is this tree's consumer, a git revision's (a worktree under /tmp), or either with other Deno/V8 flags or
 * config keys, so before and after are measured in one run, alternating, as `--pairs` rounds. One JSON line per
 * run and one summary line per variant (medians and ranges):
 *
 *   {"variant":"tree","run":1,"frames":3000,"frames_per_s":..,"cpu_ms_per_frame":..,"peak_rss_mb":..,
 *    "objects_stored":..,"objects_not_identical":0,"threads_cpu_ms_per_frame":{..},
 *    "stack_cpu_ms_per_frame":{"kafka":..,"s3":..},"machine_busy_cores":..,"drain_s":..,"load":".."}
 *
 * The drain is timed from the consumer joining the group (start-up and compilation are not in it) until every
 * message was received and every accepted frame stored and recorded; CPU is the consumer process's own over
 * that window (all its threads; the stack's servers are apart, in stack_cpu_ms_per_frame, and the whole machine's
 * busy time in machine_busy_cores), peak RSS the process's high-water mark. The
 * stored objects are listed afterwards and their ETags (MD5s) checked against the frames that were produced.
 */
import { PROJECT, revisionTree } from "../dev/revisions.ts";
import { parseArgs } from "node:util";
import { stringify as stringifyToml } from "smol-toml";
import { resolveConfig } from "../src/config.ts";
import { encodeFrame } from "../src/ingest/frame.ts";
import { openAdmin, openProducer, type OutgoingMessage } from "../src/kafka/client.ts";
import { messageKey } from "../src/key.ts";
import { createLogger } from "../src/log.ts";
import { loadStorage } from "../src/filter/loader.ts";
import { md5Hex } from "../src/store/content.ts";
import { sleep } from "../src/ingest/camera.ts";
import { forEachLine, freePort, taskFlags } from "../dev/processes.ts";
import { ensureServers, stackEndpoints, stackPids } from "../tools/stack.ts";
import { boxCpuS, framePool, procStat, threadCpuS } from "./e2e.ts";
import { type Profile, startProfile, summarize } from "./cpu_profile.ts";
import { median } from "./stats.ts";

export const USAGE =
  `usage: deno task bench drain [--robots N] [--frames N] [--rev REV]... [--variant SPEC]...
                              [--pairs N] [--profile] [--no-tree]

Fills a topic once (N robots x N full-HD frames from the e2e frame pool, a third of them new scenes), then lets
each consumer variant drain it from the start, in turn, and prints one JSON line per run and a summary per variant.
  --robots N       robots (default 20)
  --frames N       frames per robot (default 150)
  --rev REV        also run the consumer of git revision REV (a worktree under /tmp), repeatable
  --variant SPEC   a variant of its own: fields separated by ';': name=LABEL, rev=REV (default: this tree),
                   flags=DENO FLAGS (space-separated, e.g. --v8-flags=--max-semi-space-size=2),
                   env=NAME=VALUE (an environment variable; repeatable within the spec),
                   set=SECTION.KEY=VALUE (a config key; repeatable within the spec), repeatable
  --no-tree        leave this tree's own consumer out (only --rev / --variant ones)
  --pairs N        rounds; each round runs every variant once, the order rotating (default 3)
  --timeout S      give up on a run after S seconds (default 300)
  --log DIR        write each run's consumer output to DIR/run-N.log
  --profile        sample each run's main thread (inspector) over the drain and print the profile's busy time
                   by activity as one more line per run (the profiler costs the run some throughput)`;

const quiet = createLogger({ level: "error", format: "text" });
const say = (line: string) => console.error(line);

export interface Variant {
  name: string;
  /** The tree whose src/main/consume.ts runs (this checkout or a worktree of a revision). */
  dir: string;
  flags: string[];
  /** Environment variables for the consumer. */
  env: Record<string, string>;
  /** Config keys, section -> key -> value. */
  set: Record<string, Record<string, unknown>>;
}

/** A config value from the command line: a number or boolean when it reads as one, else the text. */
function configValue(text: string): unknown {
  if (text === "true" || text === "false") return text === "true";
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

/** Parses `--variant` text (see USAGE); `rev` is resolved by the caller. */
export function parseVariant(
  spec: string,
): { name?: string; rev?: string; flags: string[]; env: Record<string, string>; set: Variant["set"] } {
  const out: ReturnType<typeof parseVariant> = { flags: [], env: {}, set: {} };
  for (const field of spec.split(";").map((f) => f.trim()).filter(Boolean)) {
    const eq = field.indexOf("=");
    const [key, value] = eq < 0 ? [field, ""] : [field.slice(0, eq), field.slice(eq + 1)];
    if (key === "name") out.name = value;
    else if (key === "rev") out.rev = value;
    else if (key === "flags") out.flags.push(...value.split(/\s+/).filter(Boolean));
    else if (key === "env") {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(value);
      if (!m) throw new RangeError(`--variant env=${value}: expected env=NAME=VALUE`);
      out.env[m[1]] = m[2];
    } else if (key === "set") {
      const m = /^([a-z_]+)\.([a-z_]+)=(.*)$/.exec(value);
      if (!m) {
        throw new RangeError(
          `--variant set=${value}: expected set=SECTION.KEY=VALUE, e.g. consumer.filter_workers=1`,
        );
      }
      (out.set[m[1]] ??= {})[m[2]] = configValue(m[3]);
    } else {
      throw new RangeError(
        `--variant field ${JSON.stringify(key)} is unknown: use name=, rev=, flags=, env= or set=`,
      );
    }
  }
  return out;
}

/** Fills the topic: `frames` per robot, 10 fps capture times ending now, robots interleaved as a fleet would. */
async function fill(
  config: ReturnType<typeof resolveConfig>,
  pool: Uint8Array[],
  robots: number,
  frames: number,
): Promise<Set<string>> {
  const producer = await openProducer(config.kafka, quiet);
  const md5s = new Set(pool.map(md5Hex));
  const start = Date.now() - frames * 100 - 60_000;
  try {
    // One producer, messages of one robot in order; a few frames per request (a batch per partition).
    for (let i = 0; i < frames; i += 4) {
      const messages: OutgoingMessage[] = [];
      for (let r = 0; r < robots; r++) {
        const robot = `robot-${String(r).padStart(3, "0")}`;
        for (let k = i; k < Math.min(frames, i + 4); k++) {
          const timestampMs = start + k * 100 + r;
          const jpeg = pool[(r * 7 + k) % pool.length];
          messages.push({
            key: messageKey(robot, timestampMs),
            value: encodeFrame(timestampMs, k, jpeg),
            timestampMs,
          });
        }
      }
      await producer.send(messages);
    }
  } finally {
    await producer.close();
  }
  return md5s;
}

/** System (kernel) CPU seconds of a process's main thread: its socket reads and writes, mostly. */
function mainSysS(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[12]) / 100;
  } catch {
    return 0;
  }
}

/** A process's resident memory now, split: anonymous (heaps, buffers) and file-backed (code), in MB. */
function residentMb(pid: number): { anon: number; file: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    return { anon: round(kb("RssAnon") / 1024, 1), file: round(kb("RssFile") / 1024, 1) };
  } catch {
    return { anon: 0, file: 0 };
  }
}

/** Each family of a /metrics text summed over its labels. */
async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const totals = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m) totals.set(m[1], (totals.get(m[1]) ?? 0) + Number(m[3]));
  }
  return totals;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const load = () => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "";
  }
};

interface RunResult extends Record<string, unknown> {
  variant: string;
  frames_per_s: number;
  cpu_ms_per_frame: number;
  peak_rss_mb: number;
  objects_stored: number;
}

/** One consumer of `variant` draining the topic into a bucket of its own. */
async function drainOnce(
  variant: Variant,
  base: { topic: string; brokers: string; s3: string; total: number; md5s: Set<string> },
  run: number,
  options: { timeoutS: number; profile: boolean; log?: string },
): Promise<{ result: RunResult; profile: Profile | null }> {
  const id = crypto.randomUUID().slice(0, 8);
  const dataDir = await Deno.makeTempDir({ prefix: "frame-bucket-drain-" });
  const metricsPort = freePort();
  const bucket = `drain-${id}`;
  const sections: Record<string, Record<string, unknown>> = {
    kafka: { brokers: base.brokers, topic: base.topic, group_id: `drain-${id}` },
    rustfs: { endpoint: base.s3, bucket },
    catalog: { data_dir: dataDir },
    metrics: { consumer_port: metricsPort },
    consumer: { stats_interval_secs: 60 },
  };
  for (const [section, keys] of Object.entries(variant.set)) {
    sections[section] = { ...sections[section], ...keys };
  }
  const configPath = `${dataDir}/config.toml`;
  await Deno.writeTextFile(configPath, stringifyToml(sections));
  const inspectPort = options.profile ? freePort() : 0;
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      ...(options.profile ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
      ...taskFlags("src/main/consume.ts", variant.dir),
      ...variant.flags,
      "src/main/consume.ts",
      "--config",
      configPath,
    ],
    cwd: variant.dir,
    env: { NO_COLOR: "1", ...variant.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const logFile = options.log
    ? await Deno.open(`${options.log}/run-${run}.log`, { create: true, write: true, truncate: true })
    : null;
  const encoder = new TextEncoder();
  let joined: (() => void) | null = null;
  const joinedP = new Promise<void>((resolve) => (joined = resolve));
  const pump = (stream: ReadableStream<Uint8Array>) =>
    forEachLine(stream, (line) => {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      logFile?.writeSync(encoder.encode(line + "\n"));
      if (/joined group/.test(line)) joined?.();
    });
  const pumps = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  let exited = false;
  const status = proc.status.then((s) => {
    exited = true;
    return s;
  });
  const fail = (why: string) =>
    new Error(`drain run ${run} (${variant.name}): ${why}; its last lines:\n${lines.slice(-20).join("\n")}`);
  try {
    const timeout = sleep(120_000).then(() => "timeout" as const);
    if (
      (await Promise.race([
        joinedP.then(() => "joined" as const),
        status.then(() => "exited" as const),
        timeout,
      ])) !== "joined"
    ) {
      throw fail("the consumer did not join its group");
    }
    const t0 = performance.now();
    const cpu0 = procStat(proc.pid).cpuS;
    const threads0 = threadCpuS(proc.pid);
    const sys0 = mainSysS(proc.pid);
    const servers = await stackPids();
    const serversCpuS = () => ({
      kafka: servers.kafka ? procStat(servers.kafka).cpuS : 0,
      s3: servers.s3 ? procStat(servers.s3).cpuS : 0,
    });
    const stack0 = serversCpuS();
    const box0 = boxCpuS();
    const profiling = options.profile ? await startProfile(inspectPort) : null;
    let m = new Map<string, number>();
    let anonPeak = 0, filePeak = 0;
    for (;;) {
      if (exited) throw fail("the consumer exited during the drain");
      if (performance.now() - t0 > options.timeoutS * 1000) {
        throw fail(`not drained in ${options.timeoutS} s`);
      }
      // Scraping costs the consumer a little: seldom while far from the end, often near it.
      const seen = m.get("frame_bucket_frames_received_total") ?? 0;
      await sleep(seen < base.total * 0.9 ? 250 : 25);
      m = await scrape(metricsPort).catch(() => m);
      const now = residentMb(proc.pid);
      anonPeak = Math.max(anonPeak, now.anon);
      filePeak = Math.max(filePeak, now.file);
      const received = m.get("frame_bucket_frames_received_total") ?? 0;
      const accepted = m.get("frame_bucket_frames_accepted_total") ?? 0;
      const stored = m.get("frame_bucket_frames_stored_total") ?? 0;
      if (received >= base.total && stored >= accepted) break;
    }
    const drainS = (performance.now() - t0) / 1000;
    const { cpuS: cpu1, rssMb } = procStat(proc.pid);
    const threads1 = threadCpuS(proc.pid);
    const sys1 = mainSysS(proc.pid);
    const stack1 = serversCpuS();
    const box1 = boxCpuS();
    const profile = profiling ? await profiling.stop() : null;
    proc.kill("SIGTERM");
    const killer = setTimeout(() => {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
    await status;
    clearTimeout(killer);
    // What the bucket holds, and whether each object is byte for byte one of the frames produced.
    const storage = await loadStorage("rustfs", {
      bucket,
      endpoint: base.s3,
      accessKey: stackEndpoints().accessKey,
      secretKey: stackEndpoints().secretKey,
    });
    let objects = 0, foreign = 0;
    const keys: string[] = [];
    try {
      for await (const item of storage.list({ prefix: "frames/" })) {
        objects++;
        keys.push(item.key);
        if (!item.etag || !base.md5s.has(item.etag.toLowerCase())) foreign++;
      }
      // Clean up: the run's objects and bucket (they are 1,000 x 180 KB per run).
      for (let i = 0; i < keys.length; i += 16) {
        await Promise.all(keys.slice(i, i + 16).map((k) => storage.delete(k)));
      }
    } finally {
      storage.close();
    }
    const frames = base.total;
    const perFrame = (s: number) => round((s * 1000) / frames, 3);
    const result: RunResult = {
      variant: variant.name,
      run,
      frames,
      frames_per_s: round(frames / drainS, 1),
      cpu_ms_per_frame: perFrame(cpu1 - cpu0),
      peak_rss_mb: rssMb,
      // Sampled at each poll during the drain: buffers and heaps (anonymous) apart from code (file-backed).
      rss_sampled_peak_mb: { anon: anonPeak, file: filePeak },
      objects_stored: objects,
      objects_not_identical: foreign,
      accepted: m.get("frame_bucket_frames_accepted_total") ?? 0,
      threads_cpu_ms_per_frame: Object.fromEntries(
        Object.keys(threads1).map((k) => [k, perFrame((threads1[k] ?? 0) - (threads0[k] ?? 0))]),
      ),
      // Of the main thread's: in the kernel (socket reads and writes).
      main_sys_ms_per_frame: perFrame(sys1 - sys0),
      // The stack's servers over the same window (in no other figure), and the machine: a drain that keeps it
      // busy near its core count can only go faster by costing less CPU per frame, here or in the servers.
      stack_cpu_ms_per_frame: {
        kafka: perFrame(stack1.kafka - stack0.kafka),
        s3: perFrame(stack1.s3 - stack0.s3),
      },
      machine_busy_cores: round((box1.busy - box0.busy) / drainS, 2),
      drain_s: round(drainS, 2),
      load: load(),
    };
    return { result, profile };
  } finally {
    if (!exited) {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await status;
    await pumps.catch(() => {});
    logFile?.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

export async function benchDrain(args: string[]): Promise<Record<string, unknown>[]> {
  const { values } = parseArgs({
    args,
    options: {
      robots: { type: "string", default: "20" },
      frames: { type: "string", default: "150" },
      rev: { type: "string", multiple: true, default: [] },
      variant: { type: "string", multiple: true, default: [] },
      "no-tree": { type: "boolean", default: false },
      pairs: { type: "string", default: "3" },
      timeout: { type: "string", default: "300" },
      profile: { type: "boolean", default: false },
      log: { type: "string" },
    },
  });
  const robots = Number(values.robots), frames = Number(values.frames), rounds = Number(values.pairs);
  for (const [name, v] of [["--robots", robots], ["--frames", frames], ["--pairs", rounds]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} ${v} must be a whole number >= 1`);
  }
  const variants: Variant[] = [];
  if (!values["no-tree"]) variants.push({ name: "tree", dir: PROJECT, flags: [], env: {}, set: {} });
  for (const spec of [...values.rev.map((r) => `rev=${r}`), ...values.variant]) {
    const v = parseVariant(spec);
    let dir = PROJECT, label = "tree";
    if (v.rev) {
      const tree = await revisionTree(v.rev);
      dir = tree.dir;
      label = `rev ${tree.sha.slice(0, 7)}`;
    }
    const extras = [
      ...Object.entries(v.env).map(([k, x]) => `${k}=${x}`),
      ...v.flags,
      ...Object.entries(v.set).flatMap(([s, ks]) => Object.entries(ks).map(([k, x]) => `${s}.${k}=${x}`)),
    ];
    variants.push({
      name: v.name ?? [label, ...extras].join(" "),
      dir,
      flags: v.flags,
      env: v.env,
      set: v.set,
    });
  }
  if (!variants.length) throw new RangeError("no consumer to run: drop --no-tree or add --rev / --variant");
  if (new Set(variants.map((v) => v.name)).size !== variants.length) {
    throw new RangeError(
      `two variants have the same name (${variants.map((v) => v.name).join(", ")}): name them`,
    );
  }

  await ensureServers(["kafka", "s3"]);
  const stack = stackEndpoints();
  const id = crypto.randomUUID().slice(0, 8);
  const config = resolveConfig(stringifyToml({
    kafka: { brokers: stack.kafkaBrokers.join(","), topic: `bench.drain-${id}` },
  }));
  say(`building the 1080p frame pool...`);
  const pool = framePool();
  const admin = await openAdmin(config.kafka, quiet);
  const results: Record<string, unknown>[] = [];
  try {
    // As in the e2e benchmark: as many partitions as robots (at least 3).
    await admin.ensureTopic(Math.max(3, robots), config.kafka.max_message_bytes);
    say(`filling ${config.kafka.topic} with ${robots} x ${frames} frames...`);
    const filled = performance.now();
    const md5s = await fill(config, pool, robots, frames);
    say(`filled in ${round((performance.now() - filled) / 1000, 1)} s`);
    const base = {
      topic: config.kafka.topic,
      brokers: stack.kafkaBrokers.join(","),
      s3: stack.s3Endpoint,
      total: robots * frames,
      md5s,
    };
    const byVariant = new Map<string, RunResult[]>(variants.map((v) => [v.name, []]));
    let run = 0;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[(i + r) % variants.length];
        run++;
        say(`run ${run}: ${variant.name} (load ${load()})`);
        const { result, profile } = await drainOnce(variant, base, run, {
          timeoutS: Number(values.timeout),
          profile: values.profile,
          log: values.log,
        });
        console.log(JSON.stringify(result));
        if (profile) {
          const s = summarize(profile, 15);
          console.log(JSON.stringify({
            variant: variant.name,
            run,
            profile_busy_ms_per_frame: round(s.activities.reduce((n, a) => n + a.ms, 0) / base.total, 3),
            activities: s.activities,
            top: s.functions.slice(0, 12).map((f) => ({ fn: f.fn, ms: f.ms, pct: f.pct })),
          }));
          const dir = await Deno.makeTempDir({ prefix: "frame-bucket-drain-profile-" });
          await Deno.writeTextFile(`${dir}/consumer.cpuprofile`, JSON.stringify(profile));
          say(`raw profile: ${dir}/consumer.cpuprofile`);
        }
        results.push(result);
        byVariant.get(variant.name)!.push(result);
      }
    }
    for (const [name, runs] of byVariant) {
      const fields = ["frames_per_s", "cpu_ms_per_frame", "peak_rss_mb"] as const;
      const summary: Record<string, unknown> = { summary: name, runs: runs.length };
      for (const f of fields) {
        const xs = runs.map((x) => x[f]);
        summary[f] = { median: round(median(xs), 3), min: Math.min(...xs), max: Math.max(...xs) };
      }
      summary.objects_stored = [...new Set(runs.map((x) => x.objects_stored))];
      console.log(JSON.stringify(summary));
    }
  } finally {
    await admin.deleteTopic().catch((error) =>
      say(`could not delete ${config.kafka.topic}: ${error.message}`)
    );
    await admin.close();
  }
  return results;
}
