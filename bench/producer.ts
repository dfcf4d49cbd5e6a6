/**
 * `deno task bench producer [--seconds S] [--fps F] [--rev REV ...] [--variant SPEC ...]`: what one robot's
 * producer costs the robot, measured on the real stack with a real MJPEG source.
 *
 * Each variant is a `deno task produce` process reading its own simulated camera (tools/camera.ts serving the e2e
 * bench's 1080p frame pool as MJPEG at F fps) and publishing to a topic of its own on the stack's broker. All
 * variants run at the same time, side by side, so that they share whatever else the machine is doing: on a busy
 * box absolute figures drift between runs, their ratios much less. A variant is the working tree or a git
 * revision (checked out as a worktree under /tmp), optionally with Deno/V8 flags or config overrides, so that a
 * change can be compared with its parent, or a setting with another, in one run.
 *
 * For each variant one JSON line: frames sent in the window (the topic's high watermark), CPU ms per frame (user +
 * system of the process, and split by thread: main, V8 background threads, the rest), RSS (peak over the whole
 * life, the median and last of a per-second sample in the window) and how many of the frames on its topic are
 * byte-identical to a frame the camera served (every one of them should be).
 */
import { forEachLine } from "../dev/processes.ts";
import { PROJECT, removeTrees, revisionTree } from "../dev/revisions.ts";
import { parseArgs } from "node:util";
import { decodeFrame } from "../src/ingest/frame.ts";
import { openAdmin } from "../src/kafka/client.ts";
import { createLogger } from "../src/log.ts";
import { sleep } from "../src/ingest/camera.ts";
import { readTopic } from "../dev/audit.ts";
import { freePort } from "../dev/processes.ts";
import { createTopic, isolatedConfig, type Overrides } from "../dev/scratch.ts";
import { type Camera, startCamera } from "../tools/camera.ts";
import { ensureServers } from "../tools/stack.ts";
import { framePool } from "./e2e.ts";
import { summarize, takeProfile } from "./cpu_profile.ts";

export const USAGE = `usage: deno task bench producer [--seconds S] [--fps F] [--warmup S] [--rev REV ...]
                                 [--variant SPEC ...] [--repeat N] [--profile] [--keep-worktrees]

Runs one producer per variant, side by side, each reading a simulated 1080p MJPEG camera at F fps and publishing
to its own topic on the local stack, and prints one JSON line per variant: frames sent, CPU ms per frame, RSS.
  --seconds S       measured seconds (default 60)
  --fps F           camera and stream.fps (default 10)
  --warmup S        seconds between the camera connection and the window (default 10)
  --rev REV         add a variant: the producer of git revision REV (a worktree under /tmp); with --rev and no
                    --variant, the working tree runs beside it. Repeatable.
  --variant SPEC    add a variant: space-separated tokens, each one of
                      @REV               the producer of git revision REV (default: the working tree)
                      --FLAG[=V]         a flag for \`deno run\`, e.g. --v8-flags=--max-old-space-size=32
                      ENV:NAME=VALUE     an environment variable of the producer process
                      section.key=VALUE  a config override, e.g. kafka.compression=snappy (TOML value)
                    Repeatable; an empty SPEC is the working tree as it is. Default: one variant, the working tree.
  --repeat N        run the whole side-by-side set N times (default 1), a JSON line per variant each time
  --profile         sample each producer's main thread during the window (inspector) and print where its time
                    goes; the inspector costs the process time of its own, so CPU figures of such a run are high
  --keep-worktrees  leave the worktrees of --rev under /tmp for the next run (default: removed at the end)`;

const quiet = createLogger({ level: "error", format: "text" });

interface Variant {
  label: string;
  rev: string | null;
  denoFlags: string[];
  env: Record<string, string>;
  overrides: Overrides;
}

/** Parses a --variant SPEC (see USAGE). */
export function parseVariant(spec: string): Variant {
  const v: Variant = { label: spec.trim() || "tree", rev: null, denoFlags: [], env: {}, overrides: {} };
  for (const token of spec.split(/\s+/).filter(Boolean)) {
    if (token.startsWith("@")) {
      if (token.length === 1) throw new RangeError(`variant "${spec}": "@" needs a revision, e.g. @HEAD~1`);
      v.rev = token.slice(1);
    } else if (token.startsWith("--")) {
      v.denoFlags.push(token);
    } else if (token.startsWith("ENV:")) {
      const eq = token.indexOf("=");
      if (eq < 5) throw new RangeError(`variant "${spec}": write an environment variable as ENV:NAME=VALUE`);
      v.env[token.slice(4, eq)] = token.slice(eq + 1);
    } else {
      const m = /^([a-z_]+)\.([a-z_]+)=(.*)$/.exec(token);
      if (!m) {
        throw new RangeError(
          `variant "${spec}": "${token}" is not @REV, --flag, ENV:NAME=VALUE or section.key=value`,
        );
      }
      const raw = m[3];
      const value = /^-?\d+(\.\d+)?$/.test(raw)
        ? Number(raw)
        : raw === "true" || raw === "false"
        ? raw === "true"
        : raw;
      v.overrides[m[1]] = { ...v.overrides[m[1]], [m[2]]: value };
    }
  }
  return v;
}

/** Fields of /proc/PID/stat after the command name (utime is [11], stime [12]). */
function statFields(path: string): string[] {
  const stat = Deno.readTextFileSync(path);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function cpuS(path: string): number {
  const f = statFields(path);
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds of a process by thread kind: main (the event loop), V8's background threads, the rest. */
function threadCpuS(pid: number): Record<string, number> {
  const out: Record<string, number> = { main: 0, v8_background: 0, other: 0 };
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const comm = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/comm`).trim();
      const kind = task.name === String(pid) ? "main" : comm.startsWith("V8 ") ? "v8_background" : "other";
      out[kind] += cpuS(`/proc/${pid}/task/${task.name}/stat`);
    } catch {
      // The thread ended while we read it.
    }
  }
  return out;
}

/** User + system CPU seconds of the whole process, threads that already ended included. */
function processCpuS(pid: number): number {
  return cpuS(`/proc/${pid}/stat`);
}

/** Resident and peak resident memory of a process, in MB (MiB). */
function memoryMb(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

interface Running {
  variant: Variant;
  commit: string | null;
  camera: Camera;
  topic: string;
  config: Awaited<ReturnType<typeof isolatedConfig>>["config"];
  configPath: string;
  proc: Deno.ChildProcess;
  lines: string[];
  inspectPort: number;
  connectedMs: number;
}

/** Starts a producer with its output kept in `lines` (for the error message when it fails). */
function spawnProducer(
  dir: string,
  variant: Variant,
  robot: string,
  url: string,
  configPath: string,
  inspectPort: number,
): { proc: Deno.ChildProcess; lines: string[]; connected: Promise<void> } {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      ...variant.denoFlags,
      ...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
      "src/main/produce.ts",
      robot,
      url,
      "--config",
      configPath,
    ],
    cwd: dir,
    env: { NO_COLOR: "1", ...variant.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let connected!: () => void;
  const connectedP = new Promise<void>((r) => (connected = r));
  const pump = (stream: ReadableStream<Uint8Array>) =>
    forEachLine(stream, (line) => {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      if (/connected to camera/.test(line)) connected();
    });
  void pump(proc.stdout);
  void pump(proc.stderr);
  const exited = proc.status.then((s) => {
    throw new Error(
      `producer "${variant.label}" exited (${s.code}); last lines:\n${lines.slice(-15).join("\n")}`,
    );
  });
  exited.catch(() => {});
  return { proc, lines, connected: Promise.race([connectedP, exited]) };
}

async function stopProducer(r: Running): Promise<void> {
  try {
    r.proc.kill("SIGTERM");
  } catch {
    return; // already gone
  }
  const timer = setTimeout(() => {
    try {
      r.proc.kill("SIGKILL");
    } catch { /* gone */ }
  }, 15000);
  await r.proc.status;
  clearTimeout(timer);
}

/** One side-by-side run of every variant; returns their result lines. */
async function runOnce(
  variants: { variant: Variant; dir: string; commit: string | null }[],
  pool: Uint8Array[],
  digests: Set<string>,
  opts: { fps: number; seconds: number; warmup: number; profile: boolean },
): Promise<Record<string, unknown>[]> {
  const say = (l: string) => console.error(l);
  const running: Running[] = [];
  const scratch: string[] = [];
  try {
    for (const [i, { variant, dir, commit }] of variants.entries()) {
      const { path, config } = await isolatedConfig("bench-producer", {
        stream: { fps: opts.fps },
        producer: { stats_interval_secs: 10 },
        ...variant.overrides,
      });
      scratch.push(path, config.catalog.data_dir);
      await createTopic(config, quiet, 1);
      const camera = await startCamera({ port: 0, fps: opts.fps, frames: pool });
      const inspectPort = opts.profile ? freePort() : 0;
      const robot = `robot-${String(i).padStart(3, "0")}`;
      const started = performance.now();
      const p = spawnProducer(dir, variant, robot, camera.url, path, inspectPort);
      const r: Running = {
        variant,
        commit,
        camera,
        topic: config.kafka.topic,
        config,
        configPath: path,
        proc: p.proc,
        lines: p.lines,
        inspectPort,
        connectedMs: 0,
      };
      running.push(r);
      void p.connected.then(() => (r.connectedMs = performance.now() - started), () => {});
      await Promise.race([
        p.connected,
        sleep(60000).then(() => {
          throw new Error(`producer "${variant.label}" did not connect to its camera within 60 s`);
        }),
      ]);
    }
    say(`${running.length} producer(s) connected; warming up for ${opts.warmup} s`);
    await sleep(opts.warmup * 1000);

    const watermark = async (r: Running) => {
      const a = await openAdmin(r.config.kafka, quiet);
      try {
        return [...((await a.describeTopic())?.highWatermarks.values() ?? [])].reduce(
          (n, h) => n + Number(h),
          0,
        );
      } finally {
        await a.close();
      }
    };
    const hw0 = await Promise.all(running.map(watermark));
    const cpu0 = running.map((r) => threadCpuS(r.proc.pid));
    const total0 = running.map((r) => processCpuS(r.proc.pid));
    const t0 = performance.now();
    say(`measuring for ${opts.seconds} s`);
    const rss: number[][] = running.map(() => []);
    const sampler = setInterval(() => {
      running.forEach((r, i) => {
        try {
          rss[i].push(memoryMb(r.proc.pid).rss);
        } catch { /* gone; reported below */ }
      });
    }, 1000);
    const profiles = opts.profile
      ? Promise.all(running.map((r) => takeProfile(r.inspectPort, opts.seconds * 1000)))
      : null;
    await sleep(opts.seconds * 1000);
    clearInterval(sampler);
    const cpu1 = running.map((r) => threadCpuS(r.proc.pid));
    const total1 = running.map((r) => processCpuS(r.proc.pid));
    const t1 = performance.now();
    const hw1 = await Promise.all(running.map(watermark));
    const mem = running.map((r) => memoryMb(r.proc.pid));
    const taken = await profiles;
    const elapsed = (t1 - t0) / 1000;
    const results: Record<string, unknown>[] = [];
    for (const r of running) await stopProducer(r);
    for (const [i, r] of running.entries()) {
      // Every message on the variant's topic: the JPEG must be one the camera served, byte for byte, and the
      // sequence numbers must rise.
      const messages = await readTopic(r.config, quiet, 30_000);
      let identical = 0;
      let ordered = true;
      let lastSeq = -1;
      for (const m of messages) {
        const frame = decodeFrame(m.value);
        if (digests.has(await digest(frame.jpeg))) identical++;
        if (frame.seq <= lastSeq) ordered = false;
        lastSeq = frame.seq;
      }
      const frames = hw1[i] - hw0[i];
      const cpu = Object.fromEntries(
        Object.keys(cpu0[i]).map((k) => [k, (cpu1[i][k] - cpu0[i][k]) * 1000 / Math.max(1, frames)]),
      );
      const total = (total1[i] - total0[i]) * 1000 / Math.max(1, frames);
      const sorted = [...rss[i]].sort((a, b) => a - b);
      const line = {
        variant: r.variant.label,
        ...(r.commit ? { commit: r.commit.slice(0, 12) } : {}),
        fps: opts.fps,
        seconds: round(elapsed),
        frames_sent: frames,
        frames_per_s: round(frames / elapsed),
        cpu_ms_per_frame: round(total, 3),
        cpu_ms_per_frame_threads: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v, 3)])),
        cpu_cores: round((total * frames) / 1000 / elapsed, 4),
        rss_mb: {
          peak: round(mem[i].peak),
          steady: round(sorted[Math.floor(sorted.length / 2)] ?? 0),
          end: round(mem[i].rss),
        },
        connect_ms: Math.round(r.connectedMs),
        topic_frames: messages.length,
        topic_frames_identical: identical,
        seq_rising: ordered,
      };
      results.push(line);
      console.log(JSON.stringify(line));
      if (taken) {
        console.log(JSON.stringify({ variant: r.variant.label, profile: summarize(taken[i], 25) }));
      }
    }
    return results;
  } finally {
    await Promise.all(running.map((r) => stopProducer(r)));
    for (const r of running) await r.camera.close();
    // Each variant's topic holds ~2 MB a second of frames: gone at the end, so that runs do not fill the disk.
    for (const r of running) {
      const admin = await openAdmin(r.config.kafka, quiet).catch(() => null);
      await admin?.deleteTopic().catch((e) =>
        console.error(`could not delete topic ${r.topic}: ${e.message}`)
      );
      await admin?.close();
    }
    for (const p of scratch) await Deno.remove(p, { recursive: true }).catch(() => {});
  }
}

async function digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function benchProducer(args: string[]): Promise<Record<string, unknown>[]> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: "string", default: "60" },
      fps: { type: "string", default: "10" },
      warmup: { type: "string", default: "10" },
      rev: { type: "string", multiple: true, default: [] },
      variant: { type: "string", multiple: true, default: [] },
      repeat: { type: "string", default: "1" },
      profile: { type: "boolean", default: false },
      "keep-worktrees": { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds), fps = Number(values.fps), warmup = Number(values.warmup);
  const repeat = Number(values.repeat);
  for (const [name, v] of [["--seconds", seconds], ["--fps", fps]] as const) {
    if (!(v > 0)) throw new RangeError(`${name} must be a positive number`);
  }
  if (!(warmup >= 0)) throw new RangeError(`--warmup ${values.warmup} must be a number of seconds >= 0`);
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`--repeat ${values.repeat} must be >= 1`);
  const specs = [...values.rev.map((r) => `@${r}`), ...values.variant];
  if (values.variant.length === 0) specs.push("");
  const variants = specs.map(parseVariant);
  await ensureServers(["kafka"]);
  const made: string[] = [];
  const resolved = [];
  for (const variant of variants) {
    if (variant.rev === null) {
      resolved.push({ variant, dir: PROJECT, commit: null });
      continue;
    }
    const { dir, sha: commit } = await revisionTree(variant.rev);
    if (!made.includes(dir)) made.push(dir);
    resolved.push({ variant, dir, commit });
  }
  console.error(`building the 1080p frame pool...`);
  const pool = framePool();
  const digests = new Set(await Promise.all(pool.map(digest)));
  const all: Record<string, unknown>[] = [];
  try {
    for (let n = 0; n < repeat; n++) {
      console.error(`uptime: ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
      all.push(...await runOnce(resolved, pool, digests, { fps, seconds, warmup, profile: values.profile }));
    }
  } finally {
    if (!values["keep-worktrees"]) {
      await removeTrees(made);
    }
  }
  return all;
}
