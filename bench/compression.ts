/**
 * `deno task bench compression`: what each `kafka.compression` codec buys and costs on camera frames.
 *
 * JPEG is already entropy-coded, so a general-purpose codec should find little to squeeze; this prints, per
 * codec, the compressed size relative to the original and the CPU time to compress (paid by every producer) and to
 * decompress (paid by the consumer, and by the broker when it validates a compressed batch), for two sets: the ten
 * real 1080p reachy frames (what cameras send) and the generated 1080p scenes the e2e benchmark mixes in (flat
 * blocks of colour, far more compressible than a camera's picture).
 */
import { parseArgs } from "node:util";
import { compressionCodec } from "../src/kafka/client.ts";
import { readSamples } from "../dev/samples.ts";
import { sceneFrames } from "./e2e.ts";

export const USAGE = `usage: deno task bench compression [--rounds N]

Compresses and decompresses 1080p frames (the real reachy samples, then the e2e benchmark's generated scenes) with
each kafka.compression codec and prints one JSON line per set and codec: bytes after/before, ms per frame to
compress and to decompress.
  --rounds N   passes over the frame pool per codec (default 5)`;

export async function benchCompression(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { rounds: { type: "string", default: "5" } } });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds ${values.rounds} must be >= 1`);
  for (
    const [set, frames] of [["reachy-001 (real)", readSamples()], [
      "generated scenes",
      sceneFrames(),
    ]] as const
  ) {
    await weigh(set, frames, rounds);
  }
}

async function weigh(set: string, frames: Uint8Array[], rounds: number): Promise<void> {
  const original = frames.reduce((n, f) => n + f.length, 0);
  for (const name of ["none", "snappy", "gzip"] as const) {
    const codec = compressionCodec(name);
    // One untimed pass so the JIT has compiled the codec before we time it.
    const packed = await Promise.all(frames.map((f) => codec.compress(f)));
    for (const p of packed) await codec.decompress(p);
    let compressMs = 0, decompressMs = 0, compressed = 0;
    for (let r = 0; r < rounds; r++) {
      for (const frame of frames) {
        let t = performance.now();
        const small = await codec.compress(frame);
        compressMs += performance.now() - t;
        compressed += small.length;
        t = performance.now();
        const back = await codec.decompress(small);
        decompressMs += performance.now() - t;
        if (back.length !== frame.length) throw new Error(`${name}: round trip changed the frame's length`);
      }
    }
    const n = rounds * frames.length;
    console.log(JSON.stringify({
      frames_from: set,
      codec: name,
      frames: frames.length,
      mean_frame_kb: Math.round(original / frames.length / 1024),
      size_ratio: Math.round((compressed / (rounds * original)) * 10000) / 10000,
      compress_ms_per_frame: Math.round((compressMs / n) * 1000) / 1000,
      decompress_ms_per_frame: Math.round((decompressMs / n) * 1000) / 1000,
    }));
  }
}
