/**
 * `deno task bench <name> [options]`: one entry point for the project's benchmarks.
 *
 * Each benchmark lives in its own module (bench/<name>.ts) exporting a function that takes the remaining
 * arguments and prints JSON lines on stdout (diagnostics on stderr). Benchmarks are measurements, never timed
 * assertions: they report figures and leave judging them to people.
 *
 * To add one, write bench/<name>.ts (exporting USAGE and a run function) and add an entry to BENCHES below.
 */
import { runMain } from "../src/main/cli.ts";

interface Bench {
  summary: string;
  /** Imports the benchmark's module only when it is the one asked for. */
  load: () => Promise<{ usage: string; run: (args: string[]) => Promise<unknown> }>;
}

const BENCHES: Record<string, Bench> = {
  filter: {
    summary:
      "filter signature path per frame (1080p, 640x480; ahash area/nearest, histogram) vs libjpeg-turbo",
    load: async () => {
      const m = await import("./filter.ts");
      return { usage: m.USAGE, run: m.benchFilter };
    },
  },
  faults: {
    summary: "fault scenarios on the real stack: frames produced/stored/lost, recovery time, peak RSS",
    load: async () => {
      const m = await import("./faults.ts");
      return { usage: m.USAGE, run: m.benchFaults };
    },
  },
  e2e: {
    summary:
      "N simulated 1080p cameras -> producers -> Kafka -> consumer -> S3: throughput, latency, lag, CPU, RSS",
    load: async () => {
      const m = await import("./e2e.ts");
      return { usage: m.USAGE, run: m.benchE2e };
    },
  },
  drain: {
    summary:
      "consumers (this tree, --rev REV, flag variants) draining one full topic in turn: frames/s, CPU/frame, RSS",
    load: async () => {
      const m = await import("./drain.ts");
      return { usage: m.USAGE, run: m.benchDrain };
    },
  },
  compression: {
    summary: "kafka.compression codecs on 1080p camera frames: size ratio, compress/decompress ms per frame",
    load: async () => {
      const m = await import("./compression.ts");
      return { usage: m.USAGE, run: m.benchCompression };
    },
  },
  catalog: {
    summary:
      "the catalog (sqlite|postgres) under 1,000,000+ fleet rows: upserts/s, fill rate, size/row, search p50/p99",
    load: async () => {
      const m = await import("./catalog.ts");
      return { usage: m.USAGE, run: m.benchCatalog };
    },
  },
  "pg-clients": {
    summary:
      "npm pg vs npm postgres on the catalog's row shape: single, batched, 8 concurrent inserts, point reads",
    load: async () => {
      const m = await import("./pg_clients.ts");
      return { usage: m.USAGE, run: m.benchPgClients };
    },
  },
  export: {
    summary: "deno task export of 10,000 real boxed frames (datasets, MP4, MCAP), local or archive tier: " +
      "frames/s, MB/s, peak RSS",
    load: async () => {
      const m = await import("./export.ts");
      return { usage: m.USAGE, run: m.benchExport };
    },
  },
  evict: {
    summary:
      "eviction alone: N 1080p frames moved to an archive bucket, revisions side by side: frames/s, CPU/frame",
    load: async () => {
      const m = await import("./evict.ts");
      return { usage: m.USAGE, run: m.benchEvict };
    },
  },
  producer: {
    summary:
      "one robot's producer at 10 fps of 1080p MJPEG for 60 s: CPU ms per frame, RSS; revisions side by side",
    load: async () => {
      const m = await import("./producer.ts");
      return { usage: m.USAGE, run: m.benchProducer };
    },
  },
  "s3-put": {
    summary:
      "the S3 client's request handlers (SDK default vs src/store/http_handler.ts) on 600 real 1080p " +
      "frames: PUT/GET/HEAD CPU ms per request, requests/s, RSS",
    load: async () => {
      const m = await import("./s3_put.ts");
      return { usage: m.USAGE, run: m.benchS3Put };
    },
  },
  search: {
    summary: "similar-frame top-k over 1,000,000 in-memory aHashes: p50/p99, build time, memory",
    load: async () => {
      const m = await import("./search.ts");
      return { usage: m.USAGE, run: m.benchSearch };
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(BENCHES).map((n) => n.length));
  const list = Object.entries(BENCHES).map(([name, b]) => `  ${name.padEnd(width)}  ${b.summary}`).join("\n");
  return `usage: deno task bench <name> [options]   (deno task bench <name> --help for its options)

benchmarks:
${list}`;
}

runMain(async () => {
  const [name, ...rest] = Deno.args;
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  const bench = name === undefined ? undefined : BENCHES[name];
  if (!bench) {
    console.error(
      `${name === undefined ? "name a benchmark to run" : `unknown benchmark ${JSON.stringify(name)}`}\n`,
    );
    console.error(usage());
    return 2;
  }
  const { usage: benchUsage, run } = await bench.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(benchUsage);
    return 0;
  }
  await run(rest);
  return 0;
});
