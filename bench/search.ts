/**
 * `deno task bench search [--frames N] [--queries N] [--k N] [--seed N] [--robots N] [--max-distance D]`
 *
 * Similar-frame search speed: builds the in-memory hash index (src/library/similar.ts `HashIndex`, the structure the
 * HTTP layer queries) over N synthetic 256-bit aHashes and times top-k queries on one thread.
 *
 * The hashes are seeded and clustered the way a fleet's frames are: scenes (random 256-bit centres, one robot
 * each) revisited over time, each stored frame its scene's hash with 0..24 bits flipped, capture times ten seconds
 * apart per robot. So a query has real near neighbours, as "frames like this one" has.
 *
 * Cases (one JSON line each, on stdout; progress on stderr):
 *  - near:      a stored frame's hash with 0..8 bits flipped (the usual query: a frame or an upload like one);
 *  - random:    uniformly random hashes (no near neighbours, so early rejection rarely helps: the worst case);
 *  - robot_day: near queries restricted to one robot and one day of capture time.
 * Each line: {"frames":1000000,"k":20,"case":"near","queries":200,"p50_ms":..,"p99_ms":..,"max_ms":..,
 * "build_ms":..,"index_mb":..,"rss_mb":..,"checked":3}. `checked` queries of the near case are compared with a
 * brute-force scan (a mismatch stops the bench). Figures are measurements, not assertions.
 */
import { parseArgs } from "node:util";
import { hashDistance, HashIndex } from "../src/library/similar.ts";
import { mulberry32 } from "../dev/random.ts";

export const USAGE =
  `usage: deno task bench search [--frames N] [--queries N] [--k N] [--seed N] [--robots N] [--max-distance D]

Times top-k similar-frame queries over an in-memory index of N synthetic clustered 256-bit aHashes and prints
one JSON line per case (near, random, robot_day) with p50/p99 query time, build time and memory.
  --frames N        hashes in the index (default 1000000)
  --queries N       timed queries per case (default 200, after 20 warm-up queries)
  --k N             results per query (default 20)
  --seed N          generator seed (default 1)
  --robots N        robots the frames belong to (default 20)
  --max-distance D  only results at most D bits away (default: none)`;

function intArg(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} ${value} must be a whole number >= ${min}`);
  }
  return n;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);

export function benchSearch(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      frames: { type: "string" },
      queries: { type: "string" },
      k: { type: "string" },
      seed: { type: "string" },
      robots: { type: "string" },
      "max-distance": { type: "string" },
    },
    strict: true,
  });
  const frames = intArg(values.frames, "frames", 1_000_000, 1);
  const queries = intArg(values.queries, "queries", 200, 1);
  const k = intArg(values.k, "k", 20, 1);
  const seed = intArg(values.seed, "seed", 1, 0);
  const robots = intArg(values.robots, "robots", 20, 1);
  const maxDistance = values["max-distance"] === undefined
    ? undefined
    : intArg(values["max-distance"], "max-distance", 256, 0);
  const next = mulberry32(seed);
  const HASH = 32;

  // Scenes: about 50 stored frames each on average, each scene seen by one robot.
  const scenes = Math.max(1, Math.floor(frames / 50));
  const centres = new Uint8Array(scenes * HASH);
  for (let i = 0; i < centres.length; i++) centres[i] = next() & 0xff;
  const robotIds = Array.from({ length: robots }, (_, i) => `robot-${String(i).padStart(3, "0")}`);
  const T0 = Date.UTC(2026, 0, 1);
  const sceneOf = new Uint32Array(frames);
  const tsOf = new Float64Array(frames);

  console.error(
    `building an index of ${frames} hashes (${scenes} scenes, ${robots} robots, seed ${seed})...`,
  );
  const rssBefore = Deno.memoryUsage().rss;
  const index = new HashIndex(HASH);
  const hash = new Uint8Array(HASH);
  const perRobot = new Float64Array(robots);
  const started = performance.now();
  for (let i = 0; i < frames; i++) {
    const scene = next() % scenes;
    const robot = scene % robots;
    hash.set(centres.subarray(scene * HASH, scene * HASH + HASH));
    const flips = next() % 25;
    for (let f = 0; f < flips; f++) {
      const bit = next() & 255;
      hash[bit >> 3] ^= 0x80 >> (bit & 7);
    }
    const ts = T0 + perRobot[robot]++ * 10_000;
    sceneOf[i] = scene;
    tsOf[i] = ts;
    index.upsert(i + 1, hash, ts, robotIds[robot]);
  }
  const buildMs = performance.now() - started;
  const rss = Deno.memoryUsage().rss;
  console.error(`built in ${Math.round(buildMs)} ms; ${mb(index.bytes)} MB of typed arrays`);

  /** A stored frame's hash (read back from the index's own input: its scene plus fresh flips). */
  const nearQuery = (): { hash: Uint8Array; frame: number } => {
    const frame = next() % frames;
    const scene = sceneOf[frame];
    const q = centres.slice(scene * HASH, scene * HASH + HASH);
    const flips = next() % 9;
    for (let f = 0; f < flips; f++) {
      const bit = next() & 255;
      q[bit >> 3] ^= 0x80 >> (bit & 7);
    }
    return { hash: q, frame };
  };
  const randomQuery = () => ({ hash: new Uint8Array(HASH).map(() => next() & 0xff), frame: next() % frames });

  const cases: {
    name: string;
    make: () => { hash: Uint8Array; frame: number };
    options: (frame: number) => { robots?: string[]; fromMs?: number; toMs?: number };
  }[] = [
    { name: "near", make: nearQuery, options: () => ({}) },
    { name: "random", make: randomQuery, options: () => ({}) },
    {
      name: "robot_day",
      make: nearQuery,
      options: (frame) => {
        const day = Math.floor((tsOf[frame] - T0) / 86_400_000);
        return {
          robots: [robotIds[sceneOf[frame] % robots]],
          fromMs: T0 + day * 86_400_000,
          toMs: T0 + (day + 1) * 86_400_000 - 1,
        };
      },
    },
  ];

  // The index is checked against a brute-force scan on a few near queries (distances, ids, tie order).
  let checked = 0;
  for (let c = 0; c < 3; c++) {
    const { hash: q } = nearQuery();
    const got = index.nearest(q, { k, maxDistance });
    const ref = bruteForce(index, q, k, maxDistance);
    const same = got.length === ref.length &&
      got.every((g, i) => g.id === ref[i].id && g.distance === ref[i].distance);
    if (!same) {
      throw new Error(`index result differs from brute force: ${JSON.stringify({ got, ref }).slice(0, 400)}`);
    }
    checked++;
  }

  for (const { name, make, options } of cases) {
    for (let i = 0; i < 20; i++) {
      const { hash: q, frame } = make();
      index.nearest(q, { k, maxDistance, ...options(frame) });
    }
    const times: number[] = [];
    let found = 0;
    for (let i = 0; i < queries; i++) {
      const { hash: q, frame } = make();
      const opts = { k, maxDistance, ...options(frame) };
      const t = performance.now();
      const result = index.nearest(q, opts);
      times.push(performance.now() - t);
      found += result.length;
    }
    times.sort((a, b) => a - b);
    console.log(JSON.stringify({
      frames,
      k,
      case: name,
      queries,
      p50_ms: round(percentile(times, 0.5)),
      p99_ms: round(percentile(times, 0.99)),
      max_ms: round(times[times.length - 1]),
      mean_results: round(found / queries, 1),
      build_ms: Math.round(buildMs),
      index_mb: mb(index.bytes),
      rss_mb: mb(rss),
      rss_growth_mb: mb(rss - rssBefore),
      checked,
    }));
  }
  return Promise.resolve();
}

/** Reference: every stored hash's distance by the plain per-byte count, sorted by (distance, id). */
function bruteForce(
  index: HashIndex,
  q: Uint8Array,
  k: number,
  maxDistance?: number,
): { id: number; distance: number }[] {
  const all: { id: number; distance: number }[] = [];
  for (let id = 1; id <= index.size; id++) {
    const h = index.hashOf(id);
    if (!h) continue;
    const d = hashDistance(h, q);
    if (maxDistance === undefined || d <= maxDistance) all.push({ id, distance: d });
  }
  all.sort((a, b) => a.distance - b.distance || a.id - b.id);
  return all.slice(0, k);
}
