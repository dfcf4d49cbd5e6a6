/**
 * `deno task bench s3-put [--puts N] [--rounds R] [--handlers node,lean]`: what the S3 client costs per request
 * on the consumer's hot path, with the SDK's default request handler (@smithy/node-http-handler over Deno's
 * node:http) and with frame-bucket's own (src/store/http_handler.ts, HTTP/1.1 on Deno's sockets), side by side.
 *
 * Each handler gets a store made by `s3Store` (src/store/s3.ts) exactly as the storage plugins make it, on a
 * scratch bucket of the S3 server (the stack's unless --endpoint), deleted at the end; the only difference is
 * the request handler the S3 client is built with. Per handler and round: N PUTs of the real 1080p sample
 * frames (~180 KB, the ten reachy-001 frames in turn, keys of their own), 8 in flight as the consumer stores
 * robots concurrently, then N GETs and N HEADs of them, each phase timed on its own with `process.cpuUsage()`
 * (this process: the SDK, the handler and the garbage they make; not the server). Handlers alternate within each
 * round so that both see the same machine. One JSON line per handler and round, e.g.
 *   {"bench":"s3-put","handler":"lean","round":1,"puts":600,"ms_per_put_cpu":0.61,"puts_per_s":812,
 *    "gets":600,"ms_per_get_cpu":..,"gets_per_s":..,"heads":600,"ms_per_head_cpu":..,"heads_per_s":..,"rss_mb":..}
 * and a last line with each handler's medians. rss_mb is the whole process's after the round, so with both
 * handlers in one process it mixes them; `--handlers lean` (or node) alone gives one handler's own figure.
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { s3Store } from "../src/store/s3.ts";
import { LeanHttpHandler } from "../src/store/http_handler.ts";
import { mapLimited } from "../src/map_limited.ts";
import type { StoragePlugin } from "../src/plugin.ts";
import { readSamples } from "../dev/samples.ts";
import { ensureServers, S3_ACCESS_KEY, S3_SECRET_KEY, stackEndpoints } from "../tools/stack.ts";
import { median } from "./stats.ts";

export const USAGE =
  `usage: deno task bench s3-put [--puts N] [--rounds R] [--concurrency C] [--handlers node,lean]
                              [--endpoint URL]

PUTs N real 1080p frames (C in flight) through s3Store with each request handler in turn, then GETs and HEADs
them; one JSON line per handler and round (CPU ms per request of this process, requests/s, RSS), then medians.
  --puts N          requests per phase (default 600)
  --rounds R        rounds; the handlers alternate within each (default 3)
  --concurrency C   requests in flight (default 8)
  --handlers LIST   node (the SDK's default, @smithy/node-http-handler), lean (src/store/http_handler.ts);
                    default node,lean
  --endpoint URL    the S3 server (default: the stack's, started when nothing answers)
  --phases LIST     which of put,get,head to run (default all; GET and HEAD need the PUTs)
  --warmup N        requests per phase and handler in an unreported round 0 (default 150; 0: none)`;

type HandlerName = "node" | "lean";

interface HandlerLike {
  handle: (...args: never[]) => unknown;
  httpHandlerConfigs?: () => unknown;
}

interface HandlerClass {
  new (options?: unknown): HandlerLike;
  create(instanceOrOptions?: unknown): HandlerLike;
}

/**
 * The SDK's own handler class, NodeHttpHandler, as the S3 client builds it: its static `create` is what the
 * client calls on its `requestHandler` option (an instance is used as it is, options make a NodeHttpHandler).
 */
function nodeHandlerClass(): HandlerClass {
  const probe = new S3Client({ region: "us-east-1" });
  const handler = probe.config.requestHandler as unknown as HandlerLike;
  probe.destroy();
  const type = handler.constructor as unknown as HandlerClass;
  if (type.name !== "NodeHttpHandler" || typeof type.create !== "function") {
    throw new Error(`the S3 client's default request handler is ${type.name}, not NodeHttpHandler`);
  }
  return type;
}

/**
 * `s3Store(options)` with its S3 client built on the named handler, whatever src/store/s3.ts passes as
 * `requestHandler` (options or a handler instance; either's timeouts carry over): `create` is swapped for the
 * client's construction only.
 */
function storeWith(
  handler: HandlerName,
  options: Parameters<typeof s3Store>[0],
): { store: StoragePlugin; made: HandlerLike } {
  const NodeHttpHandler = nodeHandlerClass();
  const original = NodeHttpHandler.create;
  let made: HandlerLike | null = null;
  NodeHttpHandler.create = (given?: unknown) => {
    const settings = typeof (given as HandlerLike)?.handle === "function"
      ? (given as HandlerLike).httpHandlerConfigs?.()
      : given;
    made = handler === "node"
      ? new NodeHttpHandler(settings)
      : new LeanHttpHandler(settings as ConstructorParameters<typeof LeanHttpHandler>[0]);
    return made;
  };
  try {
    const store = s3Store(options);
    if (!made) {
      throw new Error("the S3 client did not build its request handler through NodeHttpHandler.create");
    }
    return { store, made };
  } finally {
    NodeHttpHandler.create = original;
  }
}

interface Phase {
  count: number;
  cpuMs: number;
  perS: number;
}

/** Runs `work` on every index, `concurrency` at a time: CPU ms per request of this process, and requests/s. */
async function phase(n: number, concurrency: number, work: (i: number) => Promise<unknown>): Promise<Phase> {
  const indexes = Array.from({ length: n }, (_, i) => i);
  const cpu = process.cpuUsage();
  const t = performance.now();
  await mapLimited(indexes, concurrency, work);
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  return { count: n, cpuMs: (used.user + used.system) / 1000 / n, perS: n / seconds };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

export async function benchS3Put(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      puts: { type: "string", default: "600" },
      rounds: { type: "string", default: "3" },
      concurrency: { type: "string", default: "8" },
      handlers: { type: "string", default: "node,lean" },
      endpoint: { type: "string" },
      phases: { type: "string", default: "put,get,head" },
      warmup: { type: "string", default: "150" },
    },
  });
  const n = Number(values.puts);
  const phases = new Set(values.phases.split(",").map((p) => p.trim()));
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  const warmup = Number(values.warmup);
  const handlers = values.handlers.split(",").map((h) => h.trim()) as HandlerName[];
  for (const h of handlers) {
    if (h !== "node" && h !== "lean") throw new Error(`unknown handler ${JSON.stringify(h)} (node or lean)`);
  }
  if (!(n > 0 && rounds > 0 && concurrency > 0)) {
    throw new Error("--puts, --rounds and --concurrency must be > 0");
  }
  let endpoint = values.endpoint;
  if (!endpoint) {
    await ensureServers();
    endpoint = stackEndpoints().s3Endpoint;
  }
  const frames = readSamples();
  const bucket = `bench-s3-put-${crypto.randomUUID().slice(0, 8)}`;
  const options = {
    name: "bench",
    endpoint,
    region: "us-east-1",
    bucket,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    forcePathStyle: true,
    timeoutMs: 10_000,
    createBucket: true,
  };
  console.error(
    `s3-put: ${n} requests per phase, ${concurrency} in flight, ${rounds} rounds, bucket ${bucket}`,
  );
  const results: Record<string, Array<Record<string, number>>> = {};
  try {
    // Round 0 is a warm-up, not reported: the SDK's code is compiled by whichever handler runs first, which would
    // otherwise make that handler's first round look slower.
    for (let round = warmup > 0 ? 0 : 1; round <= rounds; round++) {
      // Alternate which handler goes first, so neither always runs on a warmer (or more fragmented) process.
      const order = round % 2 === 1 ? handlers : [...handlers].reverse();
      for (const handler of order) {
        const count = round === 0 ? warmup : n;
        const { store, made } = storeWith(handler, options);
        try {
          await store.open();
          const key = (i: number) => `${handler}/${round}/${String(i).padStart(5, "0")}.jpg`;
          const line: Record<string, number> = {};
          // PUTs first: GET and HEAD read what they wrote back, checking the size.
          const requests: [string, (i: number) => Promise<number | undefined>][] = [
            ["put", async (i) => {
              await store.put(key(i), frames[i % frames.length], { contentType: "image/jpeg" });
              return frames[i % frames.length].length;
            }],
            ["get", async (i) => (await store.get(key(i)))?.length],
            ["head", async (i) => (await store.head(key(i)))?.size],
          ];
          for (const [name, request] of requests) {
            if (name !== "put" && !phases.has(name)) continue;
            const timed = await phase(count, concurrency, async (i) => {
              if ((await request(i)) !== frames[i % frames.length].length) {
                throw new Error(`${name.toUpperCase()} ${key(i)}: wrong size`);
              }
            });
            Object.assign(line, {
              [`${name}s`]: count,
              [`ms_per_${name}_cpu`]: round2(timed.cpuMs),
              [`${name}s_per_s`]: Math.round(timed.perS),
            });
          }
          line.rss_mb = Math.round(Deno.memoryUsage().rss / 2 ** 20);
          if (round === 0) continue;
          (results[handler] ??= []).push(line);
          const handlerName = made instanceof LeanHttpHandler ? "lean" : made.constructor.name;
          console.log(JSON.stringify({ bench: "s3-put", handler, class: handlerName, round, ...line }));
        } finally {
          store.close();
        }
      }
    }
    const summary: Record<string, Record<string, number>> = {};
    for (const [handler, lines] of Object.entries(results)) {
      summary[handler] = Object.fromEntries(
        Object.keys(lines[0]).map((field) => [field, round2(median(lines.map((l) => l[field])))]),
      );
    }
    if (summary.node && summary.lean) {
      const less: Record<string, number> = {};
      for (const op of ["put", "get", "head"]) {
        const field = `ms_per_${op}_cpu`;
        if (field in summary.node) less[op] = round2(100 * (1 - summary.lean[field] / summary.node[field]));
      }
      summary.lean_vs_node_cpu_less_pct = less;
    }
    console.log(JSON.stringify({ bench: "s3-put", medians: summary }));
  } finally {
    // The scratch bucket goes, whatever happened above.
    const { store } = storeWith("node", options);
    const client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
    });
    try {
      const left: string[] = [];
      for await (const item of store.list()) left.push(item.key);
      if (left.length > 0) await store.deleteMany!(left);
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    } catch (error) {
      console.error(`s3-put: could not delete the scratch bucket ${bucket}: ${error}`);
    } finally {
      store.close();
      client.destroy();
    }
  }
}
