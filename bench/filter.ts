/**
 * `deno task bench filter [--iterations N] [--samples DIR] [--no-native] [--no-install]`
 *
 * What one frame costs the consumer's filter, against the native floor. The filter is built the way the consumer
 * builds it (`loadFilter` with the default `[filter]` settings, only `primary` and `resize` changed) and timed
 * through `await filter.signature(jpeg)`, so the figure covers the whole path: 1/8-scale DC decode
 * (src/filter/jpeg_dc.ts), resize to the grid (src/filter/downscale.ts) and the hash or histogram.
 *
 * The native floor is libjpeg-turbo decoding the same JPEG straight to 1/8-scale grey (shared/bench/jpeg_floor.c,
 * compiled here with `cc -O2 ... -ljpeg`), measured in the same run on the same machine. It is a decode only, so
 * `ratio_to_native` = filter path / native decode: what the whole filter costs compared with the
 * cheapest possible "JPEG in, tiny grey image out" in C.
 *
 * Cases: the real 1920x1080 samples (the timed loop cycles through all of them) and a 640x480 frame made from the
 * first sample in a temporary directory (ffmpeg, else djpeg + cjpeg); for ahash with resize "area" and "nearest",
 * for histogram with its one mode (always an area mean, printed as "area"); each with the scan loop in WebAssembly
 * (`dc-wasm`, what the consumer runs) and in TypeScript alone (`dc-ts`), side by side. One JSON line per case:
 *
 *   {"filter":"ahash","impl":"dc-wasm","resize":"area","width":1920,"height":1080,"frames":10,"iterations":200,
 *    "ms_per_frame":3.1,"fps_per_core":322,"native_ms":2.4,"ratio_to_native":1.29,"matches_native":true}
 *
 * then one line with the hamming distances of samples 2..10 to sample 1 under both resize modes, computed by the
 * same plugin (`filter.distance` of two `filter.signature`s), next to the default threshold:
 *
 *   {"still_frames":{"area":[..9..],"nearest":[..9..]},"threshold":26,"bits":256}
 *
 * Timing is steady state on one core (JavaScript runs on one thread; jpeg_floor is single-threaded): a warm-up,
 * then three rounds of N frames, and the best round's mean is reported for both sides, which keeps other load on a
 * shared machine from inflating either figure. `fps_per_core` is 1000 / ms_per_frame.
 *
 * When cc or jpeglib.h is missing the bench installs them (`apt-get install -y gcc libjpeg62-turbo-dev`, as root,
 * with `apt-get update` first when the plain install fails), and ffmpeg likewise when neither it nor djpeg/cjpeg is
 * there; everything it does goes to stderr, stdout carries only the JSON lines. `--no-install` forbids apt-get,
 * `--no-native` skips the native side entirely (native_ms, ratio_to_native and matches_native are then null).
 * Derived files live in a temporary directory and are deleted; nothing is written into the repository.
 */
import { parseArgs } from "node:util";
import { resolveConfig } from "../src/config.ts";
import type { FilterSettings } from "../src/config.ts";
import type { ResizeMode } from "../src/filter/downscale.ts";
import { decodeGreyEighth, readJpegInfo, useWasmScan } from "../src/filter/jpeg_dc.ts";
import type { FilterPlugin, Signature } from "../src/plugin.ts";
import { loadFilter } from "../src/filter/loader.ts";
import { sampleFiles, SAMPLES_DIR } from "../dev/samples.ts";

export const USAGE =
  `usage: deno task bench filter [--iterations N] [--samples DIR] [--no-native] [--no-install]

Times the consumer's filter signature path per frame (1080p samples and a 640x480 frame, ahash with resize
area and nearest, histogram) against libjpeg-turbo's 1/8-scale grey decode, and prints one JSON line per case,
then the still-scene distances of samples 2..10 to sample 1.
  --iterations N   frames per timed round (default 200; three rounds, best kept)
  --samples DIR    folder of same-size JPEG frames (default ../shared/samples/reachy-001 from the project root)
  --no-native      skip building and running the native reference (no C compiler needed)
  --no-install     never run apt-get; a missing tool drops what needs it, with a message`;

const ROUNDS = 3;
const WARMUP = 50;
const JPEG_FLOOR_C = new URL("../../shared/bench/jpeg_floor.c", import.meta.url).pathname;

interface Options {
  iterations: number;
  samples: string;
  native: boolean;
  install: boolean;
}

/** One timed case, as printed. */
export interface FilterBenchLine {
  filter: string;
  /** dc-wasm: the scan loop in WebAssembly (what the consumer runs); dc-ts: the TypeScript loop alone. */
  impl: "dc-wasm" | "dc-ts";
  resize: ResizeMode;
  width: number;
  height: number;
  /** Distinct frames the timed loop cycles through. */
  frames: number;
  iterations: number;
  ms_per_frame: number;
  fps_per_core: number;
  native_ms: number | null;
  ratio_to_native: number | null;
  /** The TS decode's first output column agrees with jpeg_floor's checksum on every frame of the case. */
  matches_native: boolean | null;
}

export interface StillFramesLine {
  still_frames: { area: number[]; nearest: number[] };
  threshold: number;
  bits: number;
}

function parseOptions(args: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        iterations: { type: "string", default: "200" },
        samples: { type: "string", default: SAMPLES_DIR },
        "no-native": { type: "boolean", default: false },
        "no-install": { type: "boolean", default: false },
      },
      allowPositionals: false,
      strict: true,
    });
  } catch (error) {
    throw new TypeError(`${(error as Error).message}\n\n${USAGE}`);
  }
  const iterations = Number(parsed.values.iterations);
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`--iterations ${parsed.values.iterations} must be a positive whole number`);
  }
  return {
    iterations,
    samples: parsed.values.samples.replace(/\/$/, ""),
    native: !parsed.values["no-native"],
    install: !parsed.values["no-install"],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// External programs

interface RunResult {
  ok: boolean;
  /** The program does not exist. */
  missing: boolean;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<RunResult> {
  try {
    const out = await new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    return {
      ok: out.success,
      missing: false,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { ok: false, missing: true, stdout: "", stderr: "" };
    throw error;
  }
}

/** Runs apt-get with its output streamed to stderr (stdout stays JSON only). */
async function aptGet(args: string[]): Promise<boolean> {
  console.error(`bench: running apt-get ${args.join(" ")}`);
  try {
    const child = new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    for await (const chunk of child.stdout) {
      for (let done = 0; done < chunk.length;) done += Deno.stderr.writeSync(chunk.subarray(done));
    }
    const status = await child.status;
    if (!status.success) console.error(`bench: apt-get ${args[0]} failed (exit ${status.code})`);
    return status.success;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      console.error("bench: apt-get is not available (not a Debian system?)");
      return false;
    }
    throw error;
  }
}

/** Installs Debian packages: a plain install, then `apt-get update` and a second try. False when not allowed. */
async function install(packages: string[], opts: Options): Promise<boolean> {
  const cmd = `apt-get install -y ${packages.join(" ")}`;
  if (!opts.install) {
    console.error(`bench: --no-install given; not running ${cmd}`);
    return false;
  }
  if (Deno.uid() !== 0) {
    console.error(`bench: installing needs root; run as root or run \`${cmd}\` yourself`);
    return false;
  }
  console.error(`bench: installing ${packages.join(", ")} from Debian`);
  if (await aptGet(["install", "-y", ...packages])) return true;
  return await aptGet(["update"]) && await aptGet(["install", "-y", ...packages]);
}

// ---------------------------------------------------------------------------------------------------------------
// Native reference

/** Compiles jpeg_floor.c into `dir`, installing gcc and libjpeg62-turbo-dev when missing; null when it can't. */
async function buildNative(dir: string, opts: Options): Promise<string | null> {
  try {
    Deno.statSync(JPEG_FLOOR_C);
  } catch {
    console.error(`bench: ${JPEG_FLOOR_C} not found; native_ms will be null`);
    return null;
  }
  const exe = `${dir}/jpeg_floor`;
  const compile = () => run("cc", ["-O2", JPEG_FLOOR_C, "-o", exe, "-ljpeg"]);
  let result = await compile();
  if (!result.ok) {
    const why = result.missing
      ? "no C compiler (cc)"
      : /jpeglib\.h|-ljpeg|cannot find/.test(result.stderr)
      ? "no libjpeg headers or library (jpeglib.h, -ljpeg)"
      : `cc failed: ${result.stderr.trim()}`;
    console.error(`bench: cannot build jpeg_floor: ${why}`);
    if (await install(["gcc", "libjpeg62-turbo-dev"], opts)) result = await compile();
  }
  if (!result.ok) {
    console.error("bench: jpeg_floor not built; native_ms will be null");
    return null;
  }
  return exe;
}

interface NativeFigure {
  /** Best round's mean ms per decode. */
  ms: number;
  /** Sum of the first pixel of each output row, over all runs of that round. */
  checksum: number;
}

async function runNative(exe: string, file: string, runs: number): Promise<NativeFigure> {
  const r = await run(exe, [file, "8", String(runs)]);
  if (!r.ok) throw new Error(`jpeg_floor ${file} failed: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout) as { ms_per_frame: number; checksum: number };
  return { ms: j.ms_per_frame, checksum: j.checksum };
}

/**
 * The native figure for a set of frames: each frame is decoded `runs` times per round, three rounds interleaved
 * over the frames, the best round kept per frame, and the mean of those per-frame figures returned. For the ten
 * 1080p samples that is the mean over all ten files, the same set the TypeScript loop cycles through. Also says
 * whether the TS decoder's first column matches jpeg_floor's checksum on every frame.
 */
async function nativeFor(
  exe: string,
  files: string[],
  bufs: Uint8Array[],
  runs: number,
): Promise<{ ms: number; matches: boolean }> {
  const best = files.map(() => Infinity);
  let matches = true;
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < files.length; i++) {
      const n = await runNative(exe, files[i], runs);
      best[i] = Math.min(best[i], n.ms);
      if (r === 0) matches &&= firstColumnSum(bufs[i]) * runs === n.checksum;
    }
  }
  return { ms: best.reduce((a, b) => a + b, 0) / best.length, matches };
}

function firstColumnSum(jpeg: Uint8Array): number {
  const img = decodeGreyEighth(jpeg);
  let sum = 0;
  for (let y = 0; y < img.height; y++) sum += img.data[y * img.width];
  return sum;
}

// ---------------------------------------------------------------------------------------------------------------
// The 640x480 frame

async function ffmpeg640(src: string, out: string): Promise<RunResult> {
  return await run("ffmpeg", [
    "-loglevel",
    "error",
    "-y",
    "-i",
    src,
    "-vf",
    "scale=640:480",
    "-pix_fmt",
    "yuvj420p",
    "-q:v",
    "3",
    out,
  ]);
}

/** djpeg halves the frame to a binary PPM, we crop its centre to 640x480, cjpeg encodes it (4:2:0, q90). */
async function djpeg640(src: string, dir: string, out: string): Promise<boolean> {
  const ppm = `${dir}/half.ppm`;
  const d = await run("djpeg", ["-scale", "1/2", "-pnm", "-outfile", ppm, src]);
  if (!d.ok) return false;
  const data = Deno.readFileSync(ppm);
  const header = new TextDecoder().decode(data.subarray(0, 32)).match(/^P6\s+(\d+)\s+(\d+)\s+255\s/);
  if (!header) return false;
  const [w, h] = [Number(header[1]), Number(header[2])];
  if (w < 640 || h < 480) return false;
  const body = data.subarray(header[0].length);
  const x0 = (w - 640) >> 1;
  const y0 = (h - 480) >> 1;
  const head = new TextEncoder().encode("P6\n640 480\n255\n");
  const crop = new Uint8Array(head.length + 640 * 480 * 3);
  crop.set(head);
  for (let y = 0; y < 480; y++) {
    const from = ((y0 + y) * w + x0) * 3;
    crop.set(body.subarray(from, from + 640 * 3), head.length + y * 640 * 3);
  }
  Deno.writeFileSync(`${dir}/crop.ppm`, crop);
  return (await run("cjpeg", ["-quality", "90", "-outfile", out, `${dir}/crop.ppm`])).ok;
}

/** Makes a 640x480 JPEG from `src` in `dir`: ffmpeg, else djpeg + cjpeg, else installs ffmpeg. */
async function make640(src: string, dir: string, opts: Options): Promise<string | null> {
  const out = `${dir}/frame_640x480.jpg`;
  const ff = await ffmpeg640(src, out);
  if (ff.ok) return out;
  console.error(
    ff.missing ? "bench: ffmpeg is not installed" : `bench: ffmpeg failed: ${ff.stderr.trim()}`,
  );
  if (await djpeg640(src, dir, out)) {
    console.error("bench: made the 640x480 frame with djpeg + cjpeg (centre crop of the half-size frame)");
    return out;
  }
  if (ff.missing && await install(["ffmpeg"], opts) && (await ffmpeg640(src, out)).ok) return out;
  console.error("bench: no 640x480 frame (needs ffmpeg, or djpeg and cjpeg); its cases are skipped");
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// The filter path

/** The consumer's filter for these settings: the default [filter] table with `primary` and `resize` replaced. */
async function consumerFilter(primary: string, resize: ResizeMode): Promise<FilterPlugin> {
  const config = resolveConfig("");
  const settings: FilterSettings = { ...config.filter, primary, resize };
  return await loadFilter(settings, config.baseDir);
}

/** Best-of-three mean ms per `await filter.signature(jpeg)`, cycling through `frames`, after a warm-up. */
async function timeSignature(
  filter: FilterPlugin,
  frames: Uint8Array[],
  iterations: number,
): Promise<number> {
  let sink = 0;
  const touch = (s: Signature) => {
    const v = s.value as ArrayLike<number>;
    sink += v[0] ?? 0;
  };
  for (let i = 0; i < WARMUP; i++) touch(await filter.signature(frames[i % frames.length]));
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) touch(await filter.signature(frames[i % frames.length]));
    best = Math.min(best, (performance.now() - t0) / iterations);
  }
  if (Number.isNaN(sink)) console.error("bench: NaN signature"); // keeps the results alive
  return best;
}

const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;

/** The same-size frames of `dir`, sorted by name. */
function readSameSizeSamples(
  dir: string,
): { files: string[]; bufs: Uint8Array[]; width: number; height: number } {
  let files: string[];
  try {
    files = sampleFiles(dir);
  } catch (error) {
    throw new Deno.errors.NotFound(`cannot read samples folder ${dir}: ${(error as Error).message}`);
  }
  if (files.length < 2) {
    throw new RangeError(`need at least two .jpg samples in ${dir}, found ${files.length}`);
  }
  const bufs = files.map((f) => Deno.readFileSync(f));
  const { width, height } = readJpegInfo(bufs[0]);
  for (let i = 1; i < bufs.length; i++) {
    const info = readJpegInfo(bufs[i]);
    if (info.width !== width || info.height !== height) {
      throw new RangeError(`${files[i]} is ${info.width}x${info.height}, ${files[0]} is ${width}x${height}`);
    }
  }
  return { files, bufs, width, height };
}

/** Both scan loops, side by side in one run. */
const IMPLS = ["dc-wasm", "dc-ts"] as const;

const CASES: { primary: string; resize: ResizeMode }[] = [
  { primary: "ahash", resize: "area" },
  { primary: "ahash", resize: "nearest" },
  // The histogram always takes an area mean; its settings have no resize, so "area" is what it runs.
  { primary: "histogram", resize: "area" },
];

/**
 * Runs the filter benchmark with command-line style `args`; each output line goes to `emit` (stdout by default).
 * Returns the parsed lines too.
 */
export async function benchFilter(
  args: string[],
  emit: (line: string) => void = (line) => console.log(line),
): Promise<(FilterBenchLine | StillFramesLine)[]> {
  const opts = parseOptions(args);
  const samples = readSameSizeSamples(opts.samples);
  const lines: (FilterBenchLine | StillFramesLine)[] = [];
  const out = (line: FilterBenchLine | StillFramesLine) => {
    lines.push(line);
    emit(JSON.stringify(line));
  };
  const tmp = Deno.makeTempDirSync({ prefix: "bench_filter_" });
  try {
    const native = opts.native ? await buildNative(tmp, opts) : null;
    const sets = [{ files: samples.files, bufs: samples.bufs, width: samples.width, height: samples.height }];
    const small = await make640(samples.files[0], tmp, opts);
    if (small) {
      const buf = Deno.readFileSync(small);
      const info = readJpegInfo(buf);
      sets.push({ files: [small], bufs: [buf], width: info.width, height: info.height });
    }
    const filters = await Promise.all(CASES.map((c) => consumerFilter(c.primary, c.resize)));
    for (const set of sets) {
      // Native once per frame set: the same decode floor for every filter case of that size.
      const nat = native ? await nativeFor(native, set.files, set.bufs, opts.iterations) : null;
      for (let c = 0; c < CASES.length; c++) {
        for (const impl of IMPLS) {
          useWasmScan(impl === "dc-wasm");
          const ms = await timeSignature(filters[c], set.bufs, opts.iterations);
          useWasmScan(true);
          out({
            filter: filters[c].name,
            impl,
            resize: CASES[c].resize,
            width: set.width,
            height: set.height,
            frames: set.bufs.length,
            iterations: opts.iterations,
            ms_per_frame: round(ms, 3),
            fps_per_core: Math.round(1000 / ms),
            native_ms: nat ? round(nat.ms, 3) : null,
            ratio_to_native: nat ? round(ms / nat.ms, 2) : null,
            matches_native: nat ? nat.matches : null,
          });
        }
      }
    }
    out(await stillFrames(samples.bufs));
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
  return lines;
}

/** Distances of frames 2..n to frame 1 through the consumer's ahash plugin, for both resize modes. */
async function stillFrames(bufs: Uint8Array[]): Promise<StillFramesLine> {
  const config = resolveConfig("");
  const distances = async (resize: ResizeMode) => {
    const filter = await consumerFilter("ahash", resize);
    const first = await filter.signature(bufs[0]);
    const d: number[] = [];
    for (let i = 1; i < bufs.length; i++) d.push(filter.distance(first, await filter.signature(bufs[i])));
    return d;
  };
  return {
    still_frames: { area: await distances("area"), nearest: await distances("nearest") },
    threshold: config.filter.phash_threshold,
    bits: config.filter.phash_hash_size ** 2,
  };
}
