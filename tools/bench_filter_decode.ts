/**
 * Benchmark of the filter's decode step: decodeGreyEighth (pure TypeScript, DC coefficients only) against the
 * native floor, libjpeg-turbo decoding the same file straight to 1/8-scale grey (shared/bench/jpeg_floor.c),
 * both measured in the same run on the same machine.
 *
 *   deno run -A tools/bench_filter_decode.ts [--iterations N] [--samples DIR]
 *
 * Prints one JSON line per frame size:
 *   {"impl":"dc-ts","width":1920,"height":1080,"ms_per_frame":..,"native_ms":..,"ratio_to_native":..,
 *    "matches_native":true}
 * `matches_native` compares the first output column with the checksum jpeg_floor prints (both compute
 * round(DC * q / 8) + 128). Frames: the first real 1080p sample, and a 640x480 frame made from it in a temporary
 * directory (ffmpeg, or djpeg + cjpeg as a fallback); derived copies are never written into the repository.
 *
 * Each side runs single-threaded: a warm-up, then three rounds of N decodes; the best round's mean is reported
 * for both, which keeps other load on a shared machine from inflating either figure.
 */
import { decodeGreyEighth, readJpegInfo } from "../src/jpeg_dc.ts";

const ROUNDS = 3;
const WARMUP = 50;

interface Args {
  iterations: number;
  samples: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    iterations: 200,
    samples: new URL("../../shared/samples/reachy-001/", import.meta.url).pathname,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--iterations") args.iterations = Number(argv[++i]);
    else if (a === "--samples") args.samples = argv[++i];
    else throw new TypeError(`unknown argument ${a}; usage: [--iterations N] [--samples DIR]`);
  }
  if (!Number.isInteger(args.iterations) || args.iterations < 1) {
    throw new RangeError("--iterations must be a positive integer");
  }
  return args;
}

/** Runs a command; returns its stdout, or null when the program is missing or fails (with a message). */
async function run(cmd: string, args: string[], what: string): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    if (!out.success) {
      console.error(`${what}: ${cmd} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
      return null;
    }
    return new TextDecoder().decode(out.stdout);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      console.error(`${what}: ${cmd} is not installed`);
      return null;
    }
    throw e;
  }
}

/** Compiles jpeg_floor.c into `dir`; null (after saying why) when cc or the libjpeg headers are missing. */
async function buildNative(dir: string): Promise<string | null> {
  const src = new URL("../../shared/bench/jpeg_floor.c", import.meta.url).pathname;
  const exe = `${dir}/jpeg_floor`;
  try {
    Deno.statSync(src);
  } catch {
    console.error(`native reference: ${src} not found; native_ms will be null`);
    return null;
  }
  const ok = await run("cc", ["-O2", src, "-o", exe, "-ljpeg"], "native reference");
  if (ok === null) {
    console.error(
      "native reference: could not build jpeg_floor (needs a C compiler and libjpeg-turbo headers: " +
        "apt-get install -y gcc libjpeg62-turbo-dev); native_ms will be null",
    );
    return null;
  }
  return exe;
}

interface NativeResult {
  ms: number;
  checksum: number;
  runs: number;
}

async function runNative(exe: string, file: string, iterations: number): Promise<NativeResult | null> {
  let best: NativeResult | null = null;
  for (let r = 0; r < ROUNDS; r++) {
    const out = await run(exe, [file, "8", String(iterations)], "native reference");
    if (out === null) return null;
    const j = JSON.parse(out) as { ms_per_frame: number; checksum: number };
    if (!best || j.ms_per_frame < best.ms) {
      best = { ms: j.ms_per_frame, checksum: j.checksum, runs: iterations };
    }
  }
  return best;
}

/** Makes a 640x480 JPEG from `src` in `dir`: ffmpeg scales the whole frame; else djpeg halves it and we crop. */
async function make640(src: string, dir: string): Promise<string | null> {
  const out = `${dir}/frame_640x480.jpg`;
  const ff = await run(
    "ffmpeg",
    ["-loglevel", "error", "-y", "-i", src, "-vf", "scale=640:480", "-pix_fmt", "yuvj420p", "-q:v", "3", out],
    "640x480 frame",
  );
  if (ff !== null) return out;
  // Fallback: djpeg -scale 1/2 to a binary PPM, crop its centre to 640x480, cjpeg it back.
  const ppm = `${dir}/half.ppm`;
  if (await run("djpeg", ["-scale", "1/2", "-pnm", "-outfile", ppm, src], "640x480 frame") === null) {
    return null;
  }
  const d = Deno.readFileSync(ppm);
  const header = new TextDecoder().decode(d.subarray(0, 32)).match(/^P6\s+(\d+)\s+(\d+)\s+255\s/);
  if (!header) return null;
  const [w, h] = [Number(header[1]), Number(header[2])];
  if (w < 640 || h < 480) return null;
  const body = d.subarray(header[0].length);
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
  if (await run("cjpeg", ["-quality", "90", "-outfile", out, `${dir}/crop.ppm`], "640x480 frame") === null) {
    return null;
  }
  return out;
}

function benchTs(buf: Uint8Array, iterations: number): number {
  let sink = 0;
  for (let i = 0; i < WARMUP; i++) sink += decodeGreyEighth(buf).data[0];
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) sink += decodeGreyEighth(buf).data[0];
    best = Math.min(best, (performance.now() - t0) / iterations);
  }
  if (sink < 0) console.error(sink); // keeps the results alive
  return best;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const names = [...Deno.readDirSync(args.samples)].map((e) => e.name).filter((n) => n.endsWith(".jpg"))
    .sort();
  if (names.length === 0) throw new Error(`no .jpg samples in ${args.samples}`);
  const tmp = Deno.makeTempDirSync({ prefix: "bench_filter_decode_" });
  try {
    const native = await buildNative(tmp);
    const first = `${args.samples.replace(/\/$/, "")}/${names[0]}`;
    const files = [first];
    const small = await make640(first, tmp);
    if (small) files.push(small);
    else {console.error(
        "640x480 frame: needs ffmpeg, or djpeg and cjpeg (apt-get install -y libjpeg-turbo-progs)",
      );}
    for (const file of files) {
      const buf = Deno.readFileSync(file);
      const info = readJpegInfo(buf);
      const img = decodeGreyEighth(buf);
      const ms = benchTs(buf, args.iterations);
      const nat = native ? await runNative(native, file, args.iterations) : null;
      // jpeg_floor's checksum: the first pixel of every output row, summed over all its runs.
      let col0 = 0;
      for (let y = 0; y < img.height; y++) col0 += img.data[y * img.width];
      console.log(JSON.stringify({
        impl: "dc-ts",
        width: info.width,
        height: info.height,
        ms_per_frame: round3(ms),
        native_ms: nat ? nat.ms : null,
        ratio_to_native: nat ? round3(ms / nat.ms) : null,
        matches_native: nat ? col0 * nat.runs === nat.checksum : null,
      }));
    }
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

if (import.meta.main) await main();
