/**
 * `deno task bench evict [--frames N] [--rev REV ...]`: what moving frames to the archive costs, per frame,
 * measured apart from the consumer and side by side.
 *
 * For each variant (the working tree or a git revision, checked out under /tmp) a local bucket is filled with N
 * frames of the e2e bench's 1080p pool (~180 KB each) and their catalog rows, as the consumer leaves them; then
 * every variant's `deno task evict --once` runs at the same time, with a budget that sends every frame to an
 * archive bucket on the same S3 server. Running together, the variants share whatever else the machine does, so
 * their ratio holds on a busy box where absolute figures drift. One JSON line per variant: frames moved, frames
 * per second, CPU ms per moved frame of the evicting process, requests it made, and a check of the result
 * (every frame in the archive, byte-identical by MD5, nothing left locally, no row outside "archive").
 */
import { PROJECT, removeTrees, revisionTree } from "../dev/revisions.ts";
import { parseArgs } from "node:util";
import { md5Hex } from "../src/store/content.ts";
import { objectKey } from "../src/key.ts";
import { loadStorage } from "../src/filter/loader.ts";
import type { StoragePlugin } from "../src/plugin.ts";
import { SqliteCatalog } from "../src/catalog/sqlite.ts";
import { isolatedConfig } from "../dev/scratch.ts";
import { ensureServers, stackEndpoints, stackPids } from "../tools/stack.ts";
import { framePool } from "./e2e.ts";

export const USAGE = `usage: deno task bench evict [--frames N] [--rev REV ...] [--no-tree] [--keep-worktrees]

Fills a local bucket per variant with N 1080p frames (and catalog rows) and runs every variant's
\`deno task evict --once\` at the same time, moving all of them to an archive bucket on the same S3 server;
prints a JSON line per variant: frames/s, CPU ms per moved frame, and a check that every frame arrived intact.
  --frames N        frames per variant (default 1500)
  --rev REV         also run git revision REV (a worktree under /tmp); repeatable
  --no-tree         leave the working tree out
  --keep-worktrees  leave the worktrees of --rev for the next run`;

function cpuS(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** User + system CPU seconds of a process and its children that ended (utime, stime, cutime, cstime). */
function treeCpuS(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

interface Prepared {
  label: string;
  dir: string;
  commit: string | null;
  configPath: string;
  dataDir: string;
  local: StoragePlugin;
  archive: StoragePlugin;
  catalogPath: string;
  keys: Map<string, string>;
  bytes: number;
}

/** Puts the frames and writes their rows as the consumer does (object first, then the row with the put's ETag). */
async function fill(p: Prepared, pool: Uint8Array[], frames: number): Promise<void> {
  const catalog = new SqliteCatalog(p.catalogPath);
  try {
    const t0 = Date.UTC(2026, 1, 18, 9);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < frames) {
        const i = next++;
        const robotId = `robot-${String(i % 20).padStart(3, "0")}`;
        const timestampMs = t0 + i * 5;
        const key = objectKey("frames/", robotId, timestampMs, i);
        const body = pool[i % pool.length];
        const { etag } = await p.local.put(key, body, {
          contentType: "image/jpeg",
          metadata: { "robot-id": robotId, seq: String(i) },
        });
        p.keys.set(key, md5Hex(body));
        p.bytes += body.length;
        await catalog.upsert({
          key,
          robotId,
          timestampMs,
          seq: i,
          size: body.length,
          etag: etag ?? null,
          filter: "ahash",
          distance: null,
          hash: null,
          tier: "local",
          tierChangedMs: Date.now(),
          storedMs: Date.now(),
        });
      }
    }));
  } finally {
    await catalog.close();
  }
}

async function emptyBucket(store: StoragePlugin): Promise<void> {
  const keys: string[] = [];
  for await (const item of store.list()) keys.push(item.key);
  for (let at = 0; at < keys.length; at += 1000) {
    const chunk = keys.slice(at, at + 1000);
    await (store.deleteMany?.(chunk) ?? Promise.all(chunk.map((k) => store.delete(k))));
  }
}

export async function benchEvict(args: string[]): Promise<Record<string, unknown>[]> {
  const { values } = parseArgs({
    args,
    options: {
      frames: { type: "string", default: "1500" },
      rev: { type: "string", multiple: true, default: [] },
      "no-tree": { type: "boolean", default: false },
      "keep-worktrees": { type: "boolean", default: false },
    },
  });
  const frames = Number(values.frames);
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`--frames ${values.frames} must be >= 1`);
  const sides: { label: string; dir: string; commit: string | null }[] = [];
  if (!values["no-tree"]) sides.push({ label: "tree", dir: PROJECT, commit: null });
  const made: string[] = [];
  for (const rev of values.rev) {
    const { dir, sha: commit } = await revisionTree(rev);
    made.push(dir);
    sides.push({ label: `@${rev}`, dir, commit });
  }
  if (sides.length === 0) throw new RangeError("nothing to run: give --rev or leave out --no-tree");
  await ensureServers(["s3"]);
  const stack = stackEndpoints();
  const say = (l: string) => console.error(l);
  say("building the 1080p frame pool...");
  const pool = framePool();
  const prepared: Prepared[] = [];
  const results: Record<string, unknown>[] = [];
  try {
    for (const side of sides) {
      const id = crypto.randomUUID().slice(0, 8);
      const localBucket = `bench-evict-${id}`;
      const archiveBucket = `bench-evict-archive-${id}`;
      const dataDir = await Deno.makeTempDir({ prefix: "frame-bucket-bench-evict-" });
      const local = await loadStorage("rustfs", { endpoint: stack.s3Endpoint, bucket: localBucket });
      const archive = await loadStorage("s3_archive", {
        endpoint: stack.s3Endpoint,
        bucket: archiveBucket,
        accessKey: stack.accessKey,
        secretKey: stack.secretKey,
        createBucket: true,
      });
      await local.open();
      await archive.open();
      const p: Prepared = {
        ...side,
        configPath: "",
        dataDir,
        local,
        archive,
        catalogPath: `${dataDir}/catalog.sqlite`,
        keys: new Map(),
        bytes: 0,
      };
      prepared.push(p);
      say(`${side.label}: storing ${frames} frames in ${localBucket}`);
      await fill(p, pool, frames);
      // A budget the stored bytes are 90 % of, and a target of 0 %: the one round moves every frame.
      const { path } = await isolatedConfig("bench-evict", {
        rustfs: { bucket: localBucket },
        catalog: { data_dir: dataDir },
        eviction: { max_bytes: Math.ceil(p.bytes / 0.9), threshold_percent: 1, target_percent: 0 },
        aws_s3: { bucket: archiveBucket, endpoint: stack.s3Endpoint, prefix: "archive/" },
      });
      p.configPath = path;
    }
    console.error(`uptime: ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
    const s3Pid = (await stackPids()).s3;
    const s3Cpu0 = s3Pid ? treeCpuS(s3Pid) : 0;
    const started = performance.now();
    const runs = prepared.map(async (p) => {
      const proc = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", "src/main/evict.ts", "--once", "--config", p.configPath],
        cwd: p.dir,
        env: { NO_COLOR: "1", AWS_ACCESS_KEY_ID: stack.accessKey, AWS_SECRET_ACCESS_KEY: stack.secretKey },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Measured from its "starting" line: loading modules and opening the stores are not eviction's cost.
      let cpu = 0, cpu0 = 0, t0 = 0;
      const sampler = setInterval(() => {
        try {
          cpu = cpuS(proc.pid);
        } catch { /* ended */ }
      }, 50);
      let log = "";
      for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) {
        log += chunk;
        if (!t0 && /\[evict\] starting/.test(log)) {
          t0 = performance.now();
          cpu0 = cpuS(proc.pid);
        }
      }
      const status = await proc.status;
      clearInterval(sampler);
      return {
        p,
        log,
        code: status.code,
        cpu: cpu - cpu0,
        seconds: (performance.now() - (t0 || started)) / 1000,
      };
    });
    const done = await Promise.all(runs);
    const s3CpuS = s3Pid ? treeCpuS(s3Pid) - s3Cpu0 : 0;
    for (const { p, log, code, cpu, seconds } of done) {
      if (code !== 0) say(`${p.label}: evict exited ${code}:\n${log.split("\n").slice(-15).join("\n")}`);
      // Every frame in the archive with its bytes (MD5 against what was stored), none left locally.
      let archived = 0, intact = 0;
      for await (const item of p.archive.list({ prefix: "archive/" })) {
        archived++;
        const want = p.keys.get(item.key.slice("archive/".length));
        if (want && item.etag === want) intact++;
      }
      let left = 0;
      for await (const _ of p.local.list({ prefix: "frames/" })) left++;
      const catalog = new SqliteCatalog(p.catalogPath);
      const totals = await catalog.totals();
      await catalog.close();
      const line = {
        variant: p.label,
        ...(p.commit ? { commit: p.commit.slice(0, 12) } : {}),
        frames,
        mb: round(p.bytes / 1e6),
        seconds: round(seconds),
        frames_per_s: round(archived / seconds),
        // CPU of the evicting process from its start line to its last sample (within 50 ms of its end).
        cpu_ms_per_frame: round((cpu * 1000) / Math.max(1, archived), 2),
        archived,
        archive_intact: intact,
        local_left: left,
        rows: {
          archive: totals.archive.frames,
          archiving: totals.archiving.frames,
          local: totals.local.frames,
        },
        exit: code,
      };
      results.push(line);
      console.log(JSON.stringify(line));
    }
    console.log(JSON.stringify({ s3_server_cpu_s_all_variants: round(s3CpuS, 2) }));
    return results;
  } finally {
    for (const p of prepared) {
      await emptyBucket(p.local).catch(() => {});
      await emptyBucket(p.archive).catch(() => {});
      p.local.close();
      p.archive.close();
      await Deno.remove(p.configPath).catch(() => {});
      await Deno.remove(p.dataDir, { recursive: true }).catch(() => {});
    }
    if (!values["keep-worktrees"]) {
      await removeTrees(made);
    }
  }
}
