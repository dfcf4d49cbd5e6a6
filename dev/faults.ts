/**
 * Fault scenarios against the real local stack: the pipeline (simulated cameras, a producer per robot, consumers)
 * runs while a fault is injected, then the run is audited against the ground truth (dev/audit.ts).
 * tests/faults.stack_test.ts asserts on the results; `deno task bench faults` prints them as a table.
 */
import type { Config } from "../src/config.ts";
import { type FrameAdmin, openAdmin } from "../src/kafka/client.ts";
import { objectKey } from "../src/key.ts";
import { createLogger } from "../src/log.ts";
import { partitionForRobot } from "../src/kafka/partitioner.ts";
import type { StoragePlugin } from "../src/plugin.ts";
import { loadStorage } from "../src/filter/loader.ts";
import { audit } from "./audit.ts";
import { type Camera, startCamera } from "../tools/camera.ts";
import { startLatencyProxy } from "./latency_proxy.ts";
import { type Child, freePort, spawnDeno } from "./processes.ts";
import { waitOnProgress } from "./progress.ts";
import { isolatedConfig, type Overrides } from "./scratch.ts";
import {
  ensureServers,
  type Service,
  stackDown,
  stackEndpoints,
  stackStatus,
  stackUp,
} from "../tools/stack.ts";
import { sleep } from "../src/ingest/camera.ts";

export interface FaultResult {
  fault: string;
  /** Frames the producers had acknowledged by Kafka. */
  produced: number;
  /** Frames producers dropped from their bounded queue while Kafka was away (by design, counted). */
  dropped_by_producer: number;
  /** Frames an uninterrupted consumer stores for what is in the topic. */
  expected: number;
  stored: number;
  /** Accepted frames missing from the bucket: must be 0. */
  lost: number;
  /** Objects an uninterrupted run would not store (a frame under a second key, a scene twice): must be 0. */
  duplicates: number;
  /** Seconds from the end of the fault until every robot had a frame captured after it stored. */
  recover_s: number | null;
  producer_peak_rss_mb: number;
  consumer_peak_rss_mb: number;
  /** Scenario-specific facts, e.g. how long a SIGTERM took. */
  notes: Record<string, number | string | boolean>;
}

export interface FaultOptions {
  /** Length of a broker or S3 outage. */
  outageSeconds: number;
  /** Progress lines. */
  say?: (line: string) => void;
}

/** Two robots that land on different partitions of a 3-partition topic (2 and 0). */
const ROBOTS = ["reachy-001", "bracketbot-001"];
const PARTITIONS = 3;
const quiet = createLogger({ level: "error", format: "text" });

/**
 * How long a recovery or drain may go without any progress before the run counts as stuck. The longest quiet
 * phases of a healthy run are a restarted consumer starting and waiting out the dead member's session
 * (kafka.session_timeout_ms, 10 s) before the group hands it the partitions, and kafkajs reconnecting after the
 * broker's restart with backoff: at most 12 s in the runs on a 2-core box that also runs the stack (the table's
 * "quiet s" column, notes.longest_stall_s). Ten minutes leaves a machine fifty times slower room, at the price of
 * a stuck run failing after ten minutes instead of at once.
 */
const STALL_MS = 10 * 60_000;
/** A wait that keeps progressing still ends after this long: a safety net, never reached by a healthy run. */
const LIMIT_MS = 60 * 60_000;
/**
 * Start-up of a child (a producer connecting to its camera, a consumer joining the group and deciding its first
 * frame) has no progress figure to watch; a child that fails exits, and waitFor rejects at once. The bound only
 * catches a child that hangs, so it is as generous as STALL_MS.
 */
const START_MS = STALL_MS;

/** Peak resident memory of a process so far (VmHWM), in MB; 0 once it is gone. */
function peakRssMb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 102.4) / 10;
  } catch {
    return 0;
  }
}

/** The running pipeline of one scenario. */
class Run {
  readonly producers: Child[] = [];
  readonly consumers: Child[] = [];
  readonly cameras: Camera[] = [];
  readonly rss = { producer: 0, consumer: 0 };
  /** Facts the waits gather (how long they went without progress, why one gave up), merged into the result. */
  readonly notes: FaultResult["notes"] = {};
  #sampler: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly name: string,
    readonly config: Config,
    readonly path: string,
    readonly say: (l: string) => void,
  ) {}

  sampleRss(): void {
    for (const p of this.producers) this.rss.producer = Math.max(this.rss.producer, peakRssMb(p.pid));
    for (const c of this.consumers) this.rss.consumer = Math.max(this.rss.consumer, peakRssMb(c.pid));
  }

  startSampling(): void {
    this.#sampler = setInterval(() => this.sampleRss(), 500);
  }

  consumer(env: Record<string, string> = {}): Child {
    const c = spawnDeno(`consumer ${this.consumers.length + 1}`, "src/main/consume.ts", [
      "--config",
      this.path,
    ], {
      env: { LOG_LEVEL: "debug", ...env },
    });
    this.consumers.push(c);
    return c;
  }

  async producer(robot: string, url: string): Promise<Child> {
    const p = spawnDeno(`producer ${robot}`, "src/main/produce.ts", [robot, url, "--config", this.path]);
    this.producers.push(p);
    await p.waitFor(/connected to camera/, START_MS);
    return p;
  }

  /**
   * Seconds until every robot has a frame captured after `sinceMs` stored; null when the pipeline stopped moving
   * toward that (see STALL_MS), with the reason in the result's `notes.recover_wait`. Progress is the group's
   * committed offset on each waiting robot's partition rising toward where that partition ended when the wait
   * began (the backlog the consumer has to work through before it reaches frames captured after `sinceMs`), and
   * each robot's recovery.
   */
  async recoveredAfter(sinceMs: number): Promise<number | null> {
    const notes = this.notes;
    const storage = await loadStorage("rustfs", {
      endpoint: stackEndpoints().s3Endpoint,
      accessKey: this.config.rustfs.access_key,
      secretKey: this.config.rustfs.secret_key,
      bucket: this.config.rustfs.bucket,
    });
    const admin = await openAdmin(this.config.kafka, quiet);
    try {
      const partitionOf = new Map(ROBOTS.map((r) => [r, partitionForRobot(r, PARTITIONS)]));
      const target = await highWatermarks(admin);
      const done = new Set<string>();
      const result = await waitOnProgress({
        reached: async () => {
          for (const robot of ROBOTS) {
            if (!done.has(robot) && await storedAfter(storage, this.config.rustfs.prefix, robot, sinceMs)) {
              done.add(robot);
            }
          }
          return done.size === ROBOTS.length ? Math.round((Date.now() - sinceMs) / 100) / 10 : undefined;
        },
        progress: async () => {
          const committed = await admin.groupOffsets(this.config.kafka.group_id);
          return ROBOTS.flatMap((robot) => {
            const p = partitionOf.get(robot)!;
            const at = Math.max(0, Number(committed.get(p) ?? -1));
            return [done.has(robot) ? 1 : 0, Math.min(at, target.get(p) ?? 0)];
          });
        },
        stallMs: STALL_MS,
        limitMs: LIMIT_MS,
      });
      noteStall(notes, result.longestStallMs);
      if (result.gaveUp) {
        notes.recover_wait = `robots recovered: ${[...done].join(", ") || "none"}; ${result.gaveUp}`;
      }
      return result.value ?? null;
    } finally {
      storage.close();
      await admin.close();
    }
  }

  /** Stops producers, lets the consumers drain, audits. */
  async finish(recover: number | null, scenarioNotes: FaultResult["notes"]): Promise<FaultResult> {
    const notes = Object.assign(this.notes, scenarioNotes);
    let produced = 0, dropped = 0;
    for (const p of this.producers) {
      await p.stop();
      const final = p.lines.findLast((l) => /\[stats\] final: /.test(l)) ?? "";
      produced += Number(/ sent (\d+)/.exec(final)?.[1] ?? 0);
      dropped += Number(/ dropped (\d+)/.exec(final)?.[1] ?? 0);
    }
    const lag = await this.drain(notes);
    this.sampleRss();
    for (const c of this.consumers) await c.stop();
    clearInterval(this.#sampler);
    const result = await audit(this.config, quiet);
    if (lag > 0) notes.lag_at_end = lag;
    if (result.lost.length) notes.lost_keys = result.lost.slice(0, 5).join(" ");
    if (result.extra.length) notes.extra_keys = result.extra.slice(0, 5).join(" ");
    return {
      fault: this.name,
      produced,
      dropped_by_producer: dropped,
      expected: result.expected.size,
      stored: result.stored.size,
      lost: result.lost.length,
      duplicates: result.extra.length,
      recover_s: recover,
      producer_peak_rss_mb: this.rss.producer,
      consumer_peak_rss_mb: this.rss.consumer,
      notes,
    };
  }

  /**
   * Waits until the group has committed every message (the producers have stopped, so the end is fixed), for as
   * long as its committed offsets keep rising (see STALL_MS); returns the lag left.
   */
  async drain(notes: FaultResult["notes"]): Promise<number> {
    const admin = await openAdmin(this.config.kafka, quiet);
    try {
      const lagNow = async () => {
        const [high, committed] = await Promise.all([
          highWatermarks(admin),
          admin.groupOffsets(this.config.kafka.group_id),
        ]);
        let lag = 0, at = 0;
        for (const [p, h] of high) {
          const c = Math.max(0, Number(committed.get(p) ?? -1));
          lag += h - c;
          at += c;
        }
        return { lag, at };
      };
      const result = await waitOnProgress({
        reached: async () => ((await lagNow()).lag === 0 ? 0 : undefined),
        progress: async () => [(await lagNow()).at],
        stallMs: STALL_MS,
        limitMs: LIMIT_MS,
        intervalMs: 500,
      });
      noteStall(notes, result.longestStallMs);
      if (result.gaveUp) notes.drain_wait = result.gaveUp;
      return result.value ?? (await lagNow()).lag;
    } finally {
      await admin.close();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sampler);
    for (const c of [...this.producers, ...this.consumers]) c.kill("SIGKILL");
    await Promise.all([...this.producers, ...this.consumers].map((c) => c.exited));
    for (const camera of this.cameras) await camera.close();
    await Deno.remove(this.path).catch(() => {});
  }
}

/** The newest offset + 1 of each partition of the run's topic. */
async function highWatermarks(admin: FrameAdmin): Promise<Map<number, number>> {
  const topic = await admin.describeTopic();
  return new Map([...(topic?.highWatermarks ?? [])].map(([p, h]) => [p, Number(h)]));
}

/**
 * Whether `robot` has a frame captured after `sinceMs` in the bucket: one listing, since keys sort by capture
 * time (frames/{robot}/{date}/{time}Z_{seq}.jpg), so the first key after `{sinceMs + 1}Z_` is such a frame.
 */
async function storedAfter(
  storage: StoragePlugin,
  prefix: string,
  robot: string,
  sinceMs: number,
): Promise<boolean> {
  const first = objectKey(prefix, robot, sinceMs + 1, 0);
  const startAfter = first.slice(0, first.lastIndexOf("_") + 1);
  for await (const _ of storage.list({ prefix: `${prefix}${robot}/`, startAfter, limit: 1 })) return true;
  return false;
}

/** Keeps the longest quiet phase of a run's waits in its notes, to show how much of STALL_MS runs use. */
function noteStall(notes: FaultResult["notes"], ms: number): void {
  notes.longest_stall_s = Math.max(Number(notes.longest_stall_s ?? 0), Math.round(ms / 100) / 10);
}

/**
 * Fails before a fault that stops `svc` unless this checkout's stack runs it: a server someone else started
 * (another checkout's stack, docker compose, colleagues sharing it) is not ours to stop.
 */
async function mustOwn(svc: Service): Promise<void> {
  if ((await stackStatus())[svc]) return;
  const { kafkaBrokers, s3Endpoint } = stackEndpoints();
  const where = svc === "kafka" ? kafkaBrokers[0] : s3Endpoint;
  throw new Error(
    `the ${svc} server at ${where} was not started by this stack (FRAME_BUCKET_STACK_DIR), and this fault stops ` +
      `and restarts it: run the fault scenarios on a stack of their own, e.g. ` +
      `FRAME_BUCKET_STACK_DIR=/tmp/fb-faults KAFKA_PORT=19092 S3_PORT=19000 PG_PORT=19432 deno task stack up (and the same env ` +
      `for the test or the benchmark)`,
  );
}

/**
 * The consumer's /healthz as "STATUS BODY", once its 5 s answer cache has expired; what an operator's probe sees
 * during and after an outage.
 */
async function healthz(port: number): Promise<string> {
  await sleep(5500);
  try {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(10000) });
    return `${response.status} ${(await response.text()).trim()}`;
  } catch (error) {
    return `no answer: ${(error as Error).message}`;
  }
}

/** Sets up cameras, topic and (unless told otherwise) producers and one consumer, then runs `body`. */
async function scenario(
  name: string,
  options: FaultOptions,
  overrides: Overrides,
  body: (run: Run) => Promise<{ recover: number | null; notes?: FaultResult["notes"] }>,
  setup: { cameraUrl?: (run: Run, camera: Camera) => string; stillSeconds?: number } = {},
): Promise<FaultResult> {
  await ensureServers(["kafka", "s3"]);
  const say = options.say ?? (() => {});
  const { path, config } = await isolatedConfig(name, overrides);
  const admin = await openAdmin(config.kafka, quiet);
  try {
    await admin.ensureTopic(3, config.kafka.max_message_bytes);
  } finally {
    await admin.close();
  }
  const run = new Run(name, config, path, say);
  try {
    say(`[${name}] starting two robots`);
    for (const [i, robot] of ROBOTS.entries()) {
      const camera = await startCamera({
        port: 0,
        fps: 10,
        stillSeconds: setup.stillSeconds ?? 0.5 + i * 0.5,
        seed: 11 + i,
      });
      run.cameras.push(camera);
      await run.producer(robot, setup.cameraUrl?.(run, camera) ?? camera.url);
    }
    run.startSampling();
    const outcome = await body(run);
    say(`[${name}] fault over; recovered in ${outcome.recover ?? "never"} s; draining and auditing`);
    return await run.finish(outcome.recover, outcome.notes ?? {});
  } finally {
    await run.close();
  }
}

async function firstConsumer(run: Run, env: Record<string, string> = {}): Promise<Child> {
  const c = run.consumer(env);
  await c.waitFor(/joined group/, START_MS);
  await c.waitFor(/accepted /, START_MS);
  return c;
}

export const SCENARIOS: Record<string, (o: FaultOptions) => Promise<FaultResult>> = {
  "consumer SIGKILL": (o) =>
    scenario("consumer-sigkill", o, {}, async (run) => {
      const c = await firstConsumer(run);
      await sleep(5000);
      c.kill("SIGKILL");
      await c.exited;
      await sleep(2000);
      const restart = Date.now();
      run.consumer();
      const recover = await run.recoveredAfter(restart);
      await sleep(3000);
      return { recover };
    }),

  "consumer SIGTERM": (o) =>
    scenario("consumer-sigterm", o, {}, async (run) => {
      const c = await firstConsumer(run);
      await sleep(5000);
      const t = Date.now();
      const code = await c.stop(60000);
      const stopSeconds = (Date.now() - t) / 1000;
      // Offsets are committed: the group's committed offsets cover every message the consumer received.
      const admin = await openAdmin(run.config.kafka, quiet);
      const committed = await admin.groupOffsets(run.config.kafka.group_id).finally(() => admin.close());
      const final = c.lines.findLast((l) => /\[stats\] final: /.test(l)) ?? "";
      const received = [...final.matchAll(/received (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      const committedTotal = [...committed.values()].reduce((n, o) => n + Math.max(0, Number(o)), 0);
      const restart = Date.now();
      run.consumer();
      const recover = await run.recoveredAfter(restart);
      await sleep(2000);
      return {
        recover,
        notes: {
          exit_code: code,
          stop_s: Math.round(stopSeconds * 10) / 10,
          received,
          committed: committedTotal,
        },
      };
    }),

  "Kafka down": (o) =>
    scenario("kafka-down", o, { producer: { buffer_frames: 100 } }, async (run) => {
      await mustOwn("kafka");
      const port = freePort();
      await firstConsumer(run, { CONSUMER_METRICS_PORT: String(port) });
      await sleep(4000);
      o.say?.(`[kafka-down] stopping Kafka for ${o.outageSeconds} s`);
      await stackDown(["kafka"]);
      const during = await healthz(port);
      await sleep(Math.max(0, o.outageSeconds * 1000 - 5500));
      await stackUp(["kafka"]);
      const back = Date.now();
      const recover = await run.recoveredAfter(back);
      const after = await healthz(port);
      return { recover, notes: { healthz_during_outage: during, healthz_after: after } };
    }),

  "S3 down": (o) =>
    scenario("s3-down", o, {}, async (run) => {
      await mustOwn("s3");
      const port = freePort();
      await firstConsumer(run, { CONSUMER_METRICS_PORT: String(port) });
      await sleep(4000);
      o.say?.(`[s3-down] stopping S3 for ${o.outageSeconds} s`);
      await stackDown(["s3"]);
      const during = await healthz(port);
      await sleep(Math.max(0, o.outageSeconds * 1000 - 5500));
      run.sampleRss();
      const rssDuringOutage = run.rss.consumer;
      await stackUp(["s3"]);
      const back = Date.now();
      const recover = await run.recoveredAfter(back);
      const after = await healthz(port);
      return {
        recover,
        notes: {
          consumer_rss_mb_during_outage: rssDuringOutage,
          healthz_during_outage: during,
          healthz_after: after,
        },
      };
    }),

  "slow S3 (+1 s per request)": (o) => {
    const proxy = startLatencyProxy({
      hostname: "127.0.0.1",
      port: Number(new URL(stackEndpoints().s3Endpoint).port),
    }, 1000);
    return scenario(
      "slow-s3",
      o,
      { rustfs: { endpoint: `http://127.0.0.1:${proxy.port}`, timeout_ms: 30000 } },
      async (run) => {
        await firstConsumer(run);
        // Every frame is a new scene here, so the consumer needs ~20 stores/s but gets ~1 per robot.
        await sleep(o.outageSeconds * 1000);
        run.sampleRss();
        const admin = await openAdmin(run.config.kafka, quiet);
        const topic = await admin.describeTopic();
        const committed = await admin.groupOffsets(run.config.kafka.group_id).finally(() => admin.close());
        const lag = [...(topic?.highWatermarks ?? [])].reduce(
          (n, [p, h]) => n + Number(h) - Math.max(0, Number(committed.get(p) ?? 0)),
          0,
        );
        proxy.delayMs = 0;
        const fast = Date.now();
        const recover = await run.recoveredAfter(fast);
        return { recover, notes: { lag_while_slow: lag, consumer_rss_mb_while_slow: run.rss.consumer } };
      },
      { stillSeconds: 0.1 },
    ).finally(() => proxy.close());
  },

  "camera stalls, then drops mid-frame": (o) => {
    const proxies: ReturnType<typeof startLatencyProxy>[] = [];
    return scenario(
      "camera-stall",
      o,
      { stream: { read_timeout_secs: 2 } },
      async (run) => {
        await firstConsumer(run);
        await sleep(3000);
        for (const p of proxies) p.stalled = true;
        await sleep(6000);
        const stalledLines = run.producers.map((p) => p.lines.filter((l) => /stalled/.test(l)).length);
        for (const p of proxies) {
          p.stalled = false;
          p.dropConnections();
        }
        const back = Date.now();
        const recover = await run.recoveredAfter(back);
        await sleep(2000);
        return { recover, notes: { stall_reports: stalledLines.join("/") } };
      },
      {
        cameraUrl: (_run, camera) => {
          const proxy = startLatencyProxy({ hostname: "127.0.0.1", port: camera.port }, 0);
          proxies.push(proxy);
          return camera.url.replace(`:${camera.port}/`, `:${proxy.port}/`);
        },
      },
    ).finally(() => Promise.all(proxies.map((p) => p.close())));
  },

  "two consumers, one SIGKILLed": (o) =>
    scenario("two-consumers", o, { kafka: { session_timeout_ms: 6000 } }, async (run) => {
      const a = await firstConsumer(run);
      const b = run.consumer();
      await b.waitFor(/joined group/, START_MS);
      await sleep(5000);
      // Kill the member that holds a robot's partition (2 or 0), so its work must move.
      const owns = (c: Child) => {
        const line = c.lines.findLast((l) => /joined group/.test(l)) ?? "";
        return /partitions of \S+: (.*)$/.exec(line)?.[1].split(", ").some((p) => p === "0" || p === "2") ??
          false;
      };
      const victim = owns(b) ? b : a;
      victim.kill("SIGKILL");
      await victim.exited;
      const killed = Date.now();
      const recover = await run.recoveredAfter(killed);
      await sleep(2000);
      return { recover, notes: { killed: victim.name } };
    }),
};

/** Runs the named scenarios (all by default) one after another. */
export async function runFaults(names: string[], options: FaultOptions): Promise<FaultResult[]> {
  const out: FaultResult[] = [];
  for (const name of names) {
    const scenarioFn = SCENARIOS[name];
    if (!scenarioFn) {
      throw new RangeError(`unknown fault ${JSON.stringify(name)}: ${Object.keys(SCENARIOS).join(", ")}`);
    }
    out.push(await scenarioFn(options));
  }
  return out;
}
