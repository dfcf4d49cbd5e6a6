/**
 * A simulated robot camera daemon, for the demo, tests and benchmarks.
 *
 * Serves `/api/camera/stream` (multipart/x-mixed-replace, one JPEG part per frame with Content-Type and
 * Content-Length) and `/api/camera/frame` (one JPEG), like the Reachy daemon. Generated frames show a
 * deterministic scene (gradient plus coloured shapes, chosen by seed and scene number) that stays still for
 * `stillSeconds` with slight sensor noise, then changes to a clearly different one: a perceptual-hash filter should
 * keep about one frame per scene. With `samplesDir` it cycles through real JPEG files instead.
 *
 *   deno run -A tools/camera.ts --port 8000 --fps 10 [--samples DIR]
 */

import { parseArgs } from "node:util";
import { encode } from "jpeg-js";
import { uniform } from "../dev/random.ts";

export interface CameraOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  hostname?: string;
  width?: number;
  height?: number;
  /** Frames per second of the stream unless the client asks for `?fps=`. */
  fps?: number;
  /** How long a generated scene stays still. */
  stillSeconds?: number;
  seed?: number;
  /** Serve the JPEG files of this folder in name order, cycling, instead of generated frames. */
  samplesDir?: string;
  /** Serve these JPEGs in order, cycling (a benchmark's pre-encoded pool, shared by many cameras). */
  frames?: Uint8Array[];
  /** Multipart boundary of the stream. */
  boundary?: string;
}

export interface Camera {
  /** `http://host:port/api/camera/stream` */
  url: string;
  /** `http://host:port/api/camera/frame` */
  frameUrl: string;
  port: number;
  /** Ends open streams and stops the server. */
  close(): Promise<void>;
  /** JPEGs sent so far, on streams and single-frame requests together. */
  framesServed(): number;
}

/** Noisy variants encoded per scene: enough that consecutive frames differ in bytes, few enough to stay cheap. */
const VARIANTS = 3;
/** Encoded scenes kept; a stream only ever needs the current one, a lagging client the one before. */
const CACHED_SCENES = 4;
const DEFAULT_QUALITY = 80;

const encoder = new TextEncoder();

/** Bytes backed by a plain ArrayBuffer, which is what a Response body accepts. */
type Bytes = Uint8Array<ArrayBuffer>;

/** RGBA pixels of scene `index`: a two-colour gradient and a few rectangles and discs. */
function renderScene(width: number, height: number, seed: number, index: number): Uint8Array {
  const rnd = uniform(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
  const colour = () => [rnd() * 255, rnd() * 255, rnd() * 255];
  const pixels = new Uint8Array(width * height * 4);
  // Alternate dark-to-light directions so that consecutive scenes differ in their coarse brightness layout,
  // which is what a 16x16 average hash sees, not only in colour.
  const [from, to] = index % 2 === 0
    ? [colour().map((c) => c * 0.3), colour()]
    : [colour(), colour().map((c) => c * 0.3)];
  const direction = Math.floor(rnd() * 3); // 0 horizontal, 1 vertical, 2 diagonal
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = direction === 0 ? x / width : direction === 1 ? y / height : (x / width + y / height) / 2;
      const o = (y * width + x) * 4;
      pixels[o] = from[0] + (to[0] - from[0]) * t;
      pixels[o + 1] = from[1] + (to[1] - from[1]) * t;
      pixels[o + 2] = from[2] + (to[2] - from[2]) * t;
      pixels[o + 3] = 255;
    }
  }
  const shapes = 3 + Math.floor(rnd() * 4);
  for (let s = 0; s < shapes; s++) {
    const [r, g, b] = colour();
    const w = width * (0.1 + rnd() * 0.3);
    const h = height * (0.1 + rnd() * 0.3);
    const x0 = rnd() * (width - w);
    const y0 = rnd() * (height - h);
    const disc = rnd() < 0.5;
    for (let y = Math.floor(y0); y < y0 + h; y++) {
      for (let x = Math.floor(x0); x < x0 + w; x++) {
        if (disc) {
          const dx = (x - x0 - w / 2) / (w / 2);
          const dy = (y - y0 - h / 2) / (h / 2);
          if (dx * dx + dy * dy > 1) continue;
        }
        const o = (y * width + x) * 4;
        pixels[o] = r;
        pixels[o + 1] = g;
        pixels[o + 2] = b;
      }
    }
  }
  return pixels;
}

/** The scene with sensor noise of at most ±2 per channel, encoded. */
function encodeVariant(
  base: Uint8Array,
  width: number,
  height: number,
  quality: number,
  seed: number,
): Bytes {
  const rnd = uniform(seed);
  const noisy = new Uint8Array(base.length);
  for (let i = 0; i < base.length; i++) {
    // Alpha stays 255; the encoder ignores it anyway.
    noisy[i] = (i & 3) === 3 ? 255 : Math.min(255, Math.max(0, base[i] + Math.floor(rnd() * 5) - 2));
  }
  // A copy out of the Buffer jpeg-js returns: a small, plain, ArrayBuffer-backed array.
  return new Uint8Array(encode({ data: noisy, width, height }, quality).data);
}

function positive(name: string, value: number, integer: boolean): number {
  if (!(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new RangeError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`);
  }
  return value;
}

async function readSamples(dir: string): Promise<Bytes[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && /\.jpe?g$/i.test(entry.name)) names.push(entry.name);
    }
  } catch (error) {
    throw new Error(
      `cannot read samples folder "${dir}" (${error instanceof Error ? error.message : error})`,
      {
        cause: error,
      },
    );
  }
  if (names.length === 0) {
    throw new Error(`no .jpg files in samples folder "${dir}": point it at a folder of JPEG frames`);
  }
  names.sort();
  return await Promise.all(names.map((n) => Deno.readFile(`${dir}/${n}`)));
}

export async function startCamera(options: CameraOptions = {}): Promise<Camera> {
  const {
    port = 0,
    hostname = "127.0.0.1",
    seed = 1,
    boundary = "frame",
  } = options;
  const width = positive("width", options.width ?? 640, true);
  const height = positive("height", options.height ?? 480, true);
  const defaultFps = positive("fps", options.fps ?? 10, false);
  const stillMs = positive("stillSeconds", options.stillSeconds ?? 3, false) * 1000;
  const samples = options.frames?.length
    ? options.frames.map((f) => (f.buffer instanceof ArrayBuffer ? f as Bytes : new Uint8Array(f)))
    : options.samplesDir === undefined
    ? null
    : await readSamples(options.samplesDir);

  const startedAt = performance.now();
  let served = 0;
  const bases = new Map<number, Uint8Array>();
  const encoded = new Map<string, Bytes[]>();

  /** Frame `n` of the scene showing at `atMs`, encoding it on first use only. */
  function generated(atMs: number, n: number, quality: number): Bytes {
    const scene = Math.floor((atMs - startedAt) / stillMs);
    const key = `${scene}:${quality}`;
    let variants = encoded.get(key);
    if (variants === undefined) {
      variants = [];
      encoded.set(key, variants);
      if (encoded.size > CACHED_SCENES) encoded.delete(encoded.keys().next().value!);
    }
    const v = n % VARIANTS;
    if (variants[v] === undefined) {
      let base = bases.get(scene);
      if (base === undefined) {
        base = renderScene(width, height, seed, scene);
        bases.set(scene, base);
        if (bases.size > CACHED_SCENES) bases.delete(bases.keys().next().value!);
      }
      variants[v] = encodeVariant(base, width, height, quality, seed * 7919 + scene * 31 + v);
    }
    return variants[v];
  }

  function frame(n: number, quality: number): Bytes {
    return samples === null ? generated(performance.now(), n, quality) : samples[n % samples.length];
  }

  const streams = new Set<() => void>();

  function stream(fps: number, quality: number): Response {
    const periodMs = 1000 / fps;
    const begin = performance.now();
    let n = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        stop = () => {
          clearTimeout(timer);
          streams.delete(stop);
          try {
            controller.close();
          } catch {
            // already closed or cancelled
          }
        };
        streams.add(stop);
        const tick = () => {
          // Like a real camera, drop frames for a client that does not keep up instead of queueing them.
          if (controller.desiredSize === null || controller.desiredSize > 0) {
            const jpeg = frame(n, quality);
            const head = encoder.encode(
              `--${boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`,
            );
            const part = new Uint8Array(head.length + jpeg.length + 2);
            part.set(head);
            part.set(jpeg, head.length);
            part.set([0x0d, 0x0a], head.length + jpeg.length);
            controller.enqueue(part);
            served++;
          }
          n++;
          // Scheduled from the stream's start so that the rate does not drift with encoding time.
          timer = setTimeout(tick, Math.max(0, begin + n * periodMs - performance.now()));
        };
        tick();
      },
      cancel() {
        clearTimeout(timer);
        streams.delete(stop);
      },
    });
    return new Response(body, {
      headers: {
        "content-type": `multipart/x-mixed-replace; boundary=${boundary}`,
        "cache-control": "no-cache, no-store",
      },
    });
  }

  let single = 0;
  const server = Deno.serve({ port, hostname, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    const quality = clamp(
      Number(url.searchParams.get("quality") ?? DEFAULT_QUALITY),
      1,
      100,
      DEFAULT_QUALITY,
    );
    if (url.pathname === "/api/camera/stream") {
      return stream(clamp(Number(url.searchParams.get("fps") ?? defaultFps), 0.1, 120, defaultFps), quality);
    }
    if (url.pathname === "/api/camera/frame") {
      const jpeg = frame(single++, quality);
      served++;
      return new Response(jpeg, { headers: { "content-type": "image/jpeg", "cache-control": "no-cache" } });
    }
    return new Response(`not found: ${url.pathname} (try /api/camera/stream or /api/camera/frame)\n`, {
      status: 404,
      headers: { "content-type": "text/plain" },
    });
  });

  // Encode the first scene now, so that the first client does not wait for it.
  if (samples === null) generated(performance.now(), 0, DEFAULT_QUALITY);

  const base = `http://${hostname}:${server.addr.port}`;
  return {
    url: `${base}/api/camera/stream`,
    frameUrl: `${base}/api/camera/frame`,
    port: server.addr.port,
    framesServed: () => served,
    async close() {
      // Streams never end by themselves, and shutdown waits for open responses: end them first.
      for (const stop of [...streams]) stop();
      await server.shutdown();
    },
  };
}

function clamp(value: number, min: number, max: number, fallback: number): number {
  if (!Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      hostname: { type: "string", default: "127.0.0.1" },
      fps: { type: "string", default: "10" },
      width: { type: "string", default: "640" },
      height: { type: "string", default: "480" },
      still: { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
      samples: { type: "string" },
      boundary: { type: "string", default: "frame" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A tools/camera.ts [--port 8000] [--hostname 127.0.0.1] [--fps 10] [--width 640]\n" +
        "         [--height 480] [--still 3] [--seed 1] [--samples DIR] [--boundary frame]",
    );
    Deno.exit(0);
  }
  const number = (name: string, text: string): number => {
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value)) {
      console.error(`--${name} must be a number, got "${text}"`);
      Deno.exit(2);
    }
    return value;
  };
  try {
    const camera = await startCamera({
      port: number("port", values.port),
      hostname: values.hostname,
      fps: number("fps", values.fps),
      width: number("width", values.width),
      height: number("height", values.height),
      stillSeconds: number("still", values.still),
      seed: number("seed", values.seed),
      samplesDir: values.samples,
      boundary: values.boundary,
    });
    console.log(`camera stream: ${camera.url}`);
    console.log(`camera frame:  ${camera.frameUrl}`);
    const stop = async () => {
      await camera.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch (error) {
    console.error(`camera: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
