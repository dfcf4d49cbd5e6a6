/**
 * `deno task compare a.jpg b.jpg [--hash-size N] [--resize area|nearest] [--config PATH]`
 * `deno task compare --camera [--delay N] [--url URL]`
 *
 * Compares two frames with the consumer's own filter (the same plugin, settings and code path), in the original
 * phash_compare.py's format, and says which side of the threshold the pair falls on.
 */
import { mjpegFrames, sleep, withQuery } from "../src/ingest/camera.ts";
import { parseCli, runMain } from "../src/main/cli.ts";
import { type FilterSettings, loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { loadFilter } from "../src/filter/loader.ts";

const USAGE = `usage: deno task compare A.jpg B.jpg [--hash-size N] [--resize area|nearest] [--config PATH]
       deno task compare --camera [--delay SECONDS] [--url STREAM_URL]

Prints the distance between two frames as the consumer's filter computes it.
  --hash-size N    aHash grid side (default filter.phash_hash_size, 16)
  --resize MODE    area (default) or nearest (the original's sampling)
  --camera         grab two frames from the camera instead of reading files
  --delay SECONDS  seconds between the two camera frames (default 2)
  --url URL        camera stream (default stream.url)`;

async function grab(url: string): Promise<Uint8Array> {
  const log = createLogger({ level: "warn", format: "text" });
  for await (const frame of mjpegFrames(url, { maxPartBytes: 16 * 1024 * 1024, readTimeoutMs: 10000, log })) {
    return frame.jpeg;
  }
  throw new Error(`camera at ${url} closed the stream before sending a frame`);
}

runMain(async () => {
  const { values, positionals } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    "hash-size": { type: "string" },
    resize: { type: "string" },
    camera: { type: "boolean" },
    delay: { type: "string" },
    url: { type: "string" },
  });
  const config = await loadConfig(values.config);
  const settings: FilterSettings = { ...config.filter };
  if (values["hash-size"] !== undefined) settings.phash_hash_size = Number(values["hash-size"]);
  if (values.resize !== undefined) settings.resize = values.resize as FilterSettings["resize"];
  const filter = await loadFilter(settings, config.baseDir);

  let a: Uint8Array, b: Uint8Array;
  let names: [string, string];
  if (values.camera) {
    const delay = values.delay === undefined ? 2 : Number(values.delay);
    if (!Number.isFinite(delay) || delay < 0) {
      throw new RangeError(`--delay ${values.delay} must be seconds >= 0`);
    }
    const url = withQuery(values.url ?? config.stream.url, {
      quality: config.stream.quality,
      fps: config.stream.fps,
    });
    console.log(`Grabbing two frames ${delay} s apart from ${url}`);
    a = await grab(url);
    await sleep(delay * 1000);
    b = await grab(url);
    names = ["first frame", "second frame"];
  } else {
    if (positionals.length !== 2) {
      throw new RangeError(`expected two JPEG files, got ${positionals.length}\n\n${USAGE}`);
    }
    names = [positionals[0], positionals[1]];
    [a, b] = await Promise.all(names.map((f) => Deno.readFile(f)));
  }
  const sa = await filter.signature(a), sb = await filter.signature(b);
  const distance = filter.distance(sa, sb);
  let threshold: string;
  if (filter.name === "ahash") {
    const side = settings.phash_hash_size, bits = side * side;
    console.log(`Hash size:  ${side}x${side} = ${bits} bits`);
    console.log(`Hamming distance: ${distance} / ${bits}  (${(100 * distance / bits).toFixed(1)}%)`);
    threshold = String(settings.phash_threshold);
  } else {
    console.log(`Filter: ${filter.name}`);
    console.log(`Distance: ${distance.toFixed(4)}`);
    threshold = filter.name === "histogram" ? String(settings.histogram_threshold) : "the plugin's";
  }
  console.log(
    filter.accepts(distance)
      ? `Above the threshold (${threshold}): the consumer would accept both frames as distinct.`
      : `At or below the threshold (${threshold}): the consumer would reject ${names[1]} as the same scene.`,
  );
  await filter.close?.();
});
