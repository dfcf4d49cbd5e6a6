/**
 * `deno task bench export [--frames N] [--format F] [--tier local|archive] [--out dir|tar] [--split S] [--fps N]`
 *
 * Dataset export throughput as a user meets it: N frames (the real 1080p reachy-001 samples, each stored under
 * its own key and made unique by a JPEG comment) in the stack's S3 server, in the local bucket or only in the
 * archive bucket (at aws_s3.prefix + key, tier `archive`), two boxes on each (one in pixels, one normalised) in a
 * SQLite catalog; then `deno task export --format F` runs as its own process and is timed from start to exit
 * (planning pass, fetching, writing, documents). Its peak resident memory (VmHWM) is read from /proc while it
 * runs, so the figure is the export's alone, not the set-up's.
 *
 * MP4 and MCAP (`--format mp4|mcap`): the frames are one robot's (reachy-001) at its real cadence (the samples'
 * own capture-time gaps, ~145 ms), a robot-day's worth at 10,000 and more; the export writes one .mp4 (and its
 * sidecar) or one .mcap. For MP4 the encoder is ffmpeg, a child of the export: its peak RSS is sampled too
 * (`ffmpeg_peak_rss_mb`; the two together are the export's memory).
 *
 * One JSON line per tier on stdout: {"bench":"export","format":"coco","tier":"local","frames":10000,
 * "boxes":20000,"seconds":..,"frames_per_s":..,"mb_per_s":..,"output_mb":..,"peak_rss_mb":..,"exit":0}.
 * Progress on stderr. Buckets and files are removed afterwards. Figures are measurements, not assertions.
 */
import { parseArgs } from "node:util";
import { SqliteCatalog } from "../src/catalog/sqlite.ts";
import type { BoxInput, FrameRow } from "../src/catalog/catalog.ts";
import { loadStorage } from "../src/filter/loader.ts";
import type { StoragePlugin } from "../src/plugin.ts";
import { objectKey } from "../src/key.ts";
import { checkFormat, EXPORT_FORMATS, isMediaFormat } from "../src/library/export.ts";
import { parseTime } from "../src/library/search.ts";
import { readSamples, sampleFiles } from "../dev/samples.ts";
import { mapLimited } from "../src/map_limited.ts";
import { ensureServers, stackEndpoints } from "../tools/stack.ts";

export const USAGE =
  `usage: deno task bench export [--frames N] [--format F] [--tier local|archive] [--out dir|tar] [--split S]

Stores N real 1080p frames (in the local bucket or only in the archive) with two boxes each, then times
deno task export --format F on them as its own process: frames/s, MB/s and its peak RSS, one JSON line per tier.
  --frames N      frames to export (default 10000)
  --format F      ${EXPORT_FORMATS.join(", ")} (default coco)
  --tier T        local or archive (default: both, one line each)
  --out dir|tar   write a directory or a .tar (default tar)
  --split S       a split, e.g. train=0.8,val=0.2 (default none)
  --fps N         mp4: a fixed frame rate (default: capture times)
  --concurrency N uploads in flight while setting up (default 32)`;

const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const MB = 1024 * 1024;
const say = (line: string) => console.error(line);

/** The frame with a COM segment after SOI naming it: a legal JPEG of its own (as a camera's frames differ). */
function unique(jpeg: Uint8Array, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const out = new Uint8Array(jpeg.length + 4 + payload.length);
  out.set(jpeg.subarray(0, 2), 0);
  out.set([0xff, 0xfe, (payload.length + 2) >> 8, (payload.length + 2) & 0xff], 2);
  out.set(payload, 6);
  out.set(jpeg.subarray(2), 6 + payload.length);
  return out;
}

/** The ids of a process's children (from /proc; none once it is gone). */
function childrenOf(pid: number): number[] {
  try {
    const out: number[] = [];
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`).trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    return [];
  }
}

/** Peak resident set of a process (VmHWM), in MiB; 0 once it is gone. */
function peakRss(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The gaps (ms) between the samples' capture times (from their names), the last one closing the cycle. */
function sampleGaps(): number[] {
  const times = sampleFiles().map((f) => parseTime(/(\d{8}T\d{9}Z)/.exec(f)![1]));
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  return [...gaps, Math.round(gaps.reduce((a, b) => a + b, 0) / gaps.length)];
}

async function du(path: string): Promise<number> {
  const info = await Deno.stat(path);
  if (info.isFile) return info.size;
  let total = 0;
  for await (const e of Deno.readDir(path)) total += await du(`${path}/${e.name}`);
  return total;
}

export async function benchExport(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      frames: { type: "string" },
      format: { type: "string" },
      tier: { type: "string" },
      out: { type: "string" },
      split: { type: "string" },
      concurrency: { type: "string" },
      fps: { type: "string" },
    },
  });
  const frames = Number(values.frames ?? 10_000);
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`--frames ${values.frames} must be >= 1`);
  const format = checkFormat(values.format ?? "coco");
  const tiers = values.tier === undefined ? ["local", "archive"] : [values.tier];
  for (const t of tiers) {
    if (t !== "local" && t !== "archive") throw new RangeError(`--tier ${t} must be local or archive`);
  }
  const media = isMediaFormat(format);
  const asTar = (values.out ?? "tar") === "tar";
  if (!["tar", "dir"].includes(values.out ?? "tar")) {
    throw new RangeError(`--out ${values.out} must be dir or tar`);
  }
  const concurrency = Number(values.concurrency ?? 32);

  await ensureServers(["s3"]);
  const stack = stackEndpoints();
  const samples = readSamples();
  for (const tier of tiers) {
    const id = crypto.randomUUID().slice(0, 8);
    const work = await Deno.makeTempDir({ prefix: "frame-bucket-bench-export-" });
    const local = await loadStorage("rustfs", { endpoint: stack.s3Endpoint, bucket: `bench-export-${id}` });
    const archive = await loadStorage("s3_archive", {
      endpoint: stack.s3Endpoint,
      bucket: `bench-export-${id}-archive`,
      accessKey: stack.accessKey,
      secretKey: stack.secretKey,
      createBucket: true,
    });
    await local.open();
    await archive.open();
    const store: StoragePlugin = tier === "archive" ? archive : local;
    const keys: string[] = [];
    try {
      // Set-up: frames 2 s apart on 4 robots (MP4 and MCAP: one robot at the samples' cadence), stored where the
      // tier says, with two boxes each.
      const t0 = Date.UTC(2026, 10, 30, 8, 0, 0);
      const gaps = sampleGaps();
      const cycle = gaps.reduce((a, b) => a + b, 0);
      const rows: FrameRow[] = [];
      let bytes = 0;
      const started = performance.now();
      await mapLimited(Array.from({ length: frames }, (_, i) => i), concurrency, async (i) => {
        const robot = media ? "reachy-001" : `bench-${i % 4}`;
        const ts = media
          ? t0 + Math.floor(i / gaps.length) * cycle +
            gaps.slice(0, i % gaps.length).reduce((a, b) => a + b, 0)
          : t0 + Math.floor(i / 4) * 2000;
        const key = objectKey("frames/", robot, ts, i);
        const jpeg = unique(samples[i % samples.length], `frame ${i}`);
        await store.put(tier === "archive" ? `archive/${key}` : key, jpeg, { contentType: "image/jpeg" });
        bytes += jpeg.length;
        keys.push(tier === "archive" ? `archive/${key}` : key);
        rows[i] = {
          key,
          robotId: robot,
          timestampMs: ts,
          seq: i,
          size: jpeg.length,
          etag: null,
          filter: "ahash",
          distance: null,
          hash: null,
          tier: tier as "local" | "archive",
          tierChangedMs: ts,
          storedMs: ts,
        };
        if ((i + 1) % 1000 === 0) say(`  stored ${i + 1}/${frames} frames (${tier})`);
      });
      say(
        `  stored ${frames} frames, ${round(bytes / MB)} MB, in ${
          round((performance.now() - started) / 1000)
        } s; cataloguing and boxing`,
      );
      const catalog = new SqliteCatalog(`${work}/data/catalog.sqlite`);
      await catalog.upsertMany(rows);
      const boxes: BoxInput[] = rows.flatMap((r, i) => [
        {
          key: r.key,
          label: ["person", "door", "forklift"][i % 3],
          x: 100.5,
          y: 200.25,
          w: 640,
          h: 360,
          imageWidth: 1920,
          imageHeight: 1080,
        },
        {
          key: r.key,
          label: "person",
          x: 0.5,
          y: 0.5,
          w: 0.25,
          h: 1 / 3,
          unit: "norm",
          imageWidth: 1920,
          imageHeight: 1080,
        },
      ]);
      const labels = catalog.labels();
      for (let i = 0; i < boxes.length; i += 10_000) await labels.addBoxes(boxes.slice(i, i + 10_000));
      await catalog.close();
      const config = `${work}/config.toml`;
      await Deno.writeTextFile(
        config,
        `[catalog]\ndata_dir = "${work}/data"\n[rustfs]\nendpoint = "${stack.s3Endpoint}"\nbucket = "${local.bucket}"\n` +
          `[aws_s3]\nbucket = "${archive.bucket}"\nendpoint = "${stack.s3Endpoint}"\nprefix = "archive/"\n`,
      );

      // The export, as its own process.
      const out = media ? `${work}/export.${format}` : asTar ? `${work}/export.tar` : `${work}/export`;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          new URL("../tools/export.ts", import.meta.url).pathname,
          "--format",
          format,
          "--out",
          out,
          "--config",
          config,
          ...(values.split ? ["--split", values.split] : []),
          ...(values.fps ? ["--fps", values.fps] : []),
        ],
        env: { AWS_ACCESS_KEY_ID: stack.accessKey, AWS_SECRET_ACCESS_KEY: stack.secretKey, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const began = performance.now();
      let peak = 0, ffmpegPeak = 0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, peakRss(child.pid));
        for (const kid of childrenOf(child.pid)) ffmpegPeak = Math.max(ffmpegPeak, peakRss(kid));
      }, 100);
      const result = await child.output();
      clearInterval(sampler);
      const seconds = (performance.now() - began) / 1000;
      const stderr = new TextDecoder().decode(result.stderr).trim();
      if (!result.success) say(`  export exited ${result.code}: ${stderr.split("\n").slice(-3).join(" | ")}`);
      else say(`  ${new TextDecoder().decode(result.stdout).trim()}`);
      const outBytes = result.success ? await du(out) : 0;
      const videoSeconds = format === "mp4" && result.success
        ? JSON.parse(await Deno.readTextFile(`${work}/export.frames.json`)).duration_ms / 1000
        : undefined;
      console.log(JSON.stringify({
        bench: "export",
        format,
        tier,
        out: media ? "file" : asTar ? "tar" : "dir",
        ...(values.fps ? { fps: Number(values.fps) } : {}),
        frames,
        boxes: boxes.length,
        seconds: round(seconds, 2),
        frames_per_s: round(frames / seconds),
        mb_per_s: round(bytes / MB / seconds),
        output_mb: round(outBytes / MB),
        peak_rss_mb: round(peak),
        ...(format === "mp4" ? { ffmpeg_peak_rss_mb: round(ffmpegPeak), video_s: videoSeconds } : {}),
        exit: result.code,
      }));
    } finally {
      say(`  removing the ${keys.length} objects and ${work}`);
      await mapLimited(keys, concurrency, (k) => store.delete(k).catch(() => {}));
      local.close();
      archive.close();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  }
}
