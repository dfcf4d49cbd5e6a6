/**
 * Metrics in the Prometheus text format, and the small HTTP server that exposes them with a health check.
 *
 * Counters, gauges and histograms with labels, kept in plain maps: the per-frame cost is a map lookup and an add.
 */

import type { Logger } from "./log.ts";

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

interface Series {
  labels: Labels;
  value: number;
}

abstract class Metric {
  protected readonly series = new Map<string, Series>();
  constructor(readonly name: string, readonly help: string, readonly type: string) {}

  protected entry(labels: Labels): Series {
    const id = labelText(labels);
    let s = this.series.get(id);
    if (!s) {
      s = { labels, value: 0 };
      this.series.set(id, s);
    }
    return s;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const s of this.series.values()) lines.push(`${this.name}${labelText(s.labels)} ${s.value}`);
    return lines.join("\n");
  }
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels).value += by;
  }
}

export class Gauge extends Metric {
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }
  set(labels: Labels, value: number): void {
    this.entry(labels).value = value;
  }
  /** The values of every series added up (the consumer's lag over all its partitions, for eviction's pace). */
  sum(): number {
    let total = 0;
    for (const s of this.series.values()) total += s.value;
    return total;
  }
}

export class Histogram {
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}

  observe(labels: Labels, value: number): void {
    const id = labelText(labels);
    let s = this.#series.get(id);
    if (!s) {
      s = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#series.set(id, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      this.buckets.forEach((b, i) =>
        lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(b) })} ${s.counts[i]}`)
      );
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

/** Seconds: from 0.5 ms (a filter on a small frame) to 10 s (a store retried through an outage). */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Renders metrics from state kept elsewhere (e.g. the stats counters), at scrape time: no per-frame cost. */
export interface Collector {
  render(): string;
}

export class Registry {
  readonly #metrics: (Metric | Histogram | Collector)[] = [];
  /** Adds metrics rendered by `render` at each scrape. */
  collect(render: () => string): void {
    this.#metrics.push({ render });
  }
  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.#add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets = LATENCY_BUCKETS): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }
  #add<T extends Metric | Histogram>(m: T): T {
    this.#metrics.push(m);
    return m;
  }
  render(): string {
    return this.#metrics.map((m) => m.render()).join("\n") + "\n";
  }
}

/** Lines for one counter family, one series per entry of `values` (label value -> number). */
export function counterLines(name: string, help: string, label: string, values: [string, number][]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} counter`];
  for (const [v, n] of values) lines.push(`${name}${labelText({ [label]: v })} ${n}`);
  return lines.join("\n");
}

/** The consumer's metrics that are measured per frame; per-robot counts come from the stats counters. */
export function consumerMetrics(registry = new Registry()) {
  return {
    registry,
    filterSeconds: registry.histogram(
      "frame_bucket_filter_seconds",
      "Time from reading a frame to its signature (decode and hash, waiting for a filter worker included).",
    ),
    storeSeconds: registry.histogram(
      "frame_bucket_store_seconds",
      "Time to store one frame, retries included.",
    ),
    storeRetries: registry.counter(
      "frame_bucket_store_retries_total",
      "Store attempts that failed and were retried.",
    ),
    bytesStored: registry.counter(
      "frame_bucket_bytes_stored_total",
      "JPEG bytes confirmed stored, per robot.",
    ),
    lag: registry.gauge("frame_bucket_consumer_lag", "Messages behind the newest, per partition."),
    catalogRetries: registry.counter(
      "frame_bucket_catalog_retries_total",
      "Catalog writes that failed and were retried (the object itself was already stored).",
    ),
    catalogUnindexed: registry.gauge(
      "frame_bucket_catalog_unindexed_objects",
      "Frame objects in the local bucket without a catalog row at the last reconciliation (then indexed).",
    ),
  };
}

export type ConsumerMetrics = ReturnType<typeof consumerMetrics>;

export interface HealthCheck {
  /** Name shown in the /healthz answer, e.g. "kafka". */
  name: string;
  /** Resolves when healthy; throws with the reason otherwise. */
  check: () => Promise<void>;
}

/**
 * Serves `/metrics` and `/healthz` (200 when every check passes, 503 naming the failing ones). Checks run at
 * most every 5 s; a scrape in between gets the last answer, so a busy Prometheus cannot load the broker. A check
 * that takes longer than `checkTimeoutMs` fails with "no answer within N s".
 */
export function serveMetrics(
  options: {
    hostname: string;
    port: number;
    registry: Registry;
    checks: HealthCheck[];
    /** How long a check may take before it counts as failed (default 3000 ms). */
    checkTimeoutMs?: number;
    onError?: (e: unknown) => void;
  },
): { port: number; close(): Promise<void> } {
  let last: { at: number; status: number; body: string } | null = null;
  let running: Promise<{ at: number; status: number; body: string }> | null = null;
  const timeoutMs = options.checkTimeoutMs ?? 3000;
  // A check that does not answer in time fails: a broker that is down can keep a client retrying for many seconds,
  // longer than a probe waits.
  const withDeadline = (c: HealthCheck) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      c.check().then(resolve, reject).finally(() => clearTimeout(timer));
    });
  const runChecks = async () => {
    const results = await Promise.all(options.checks.map(async (c) => {
      try {
        await withDeadline(c);
        return [c.name, "ok"] as const;
      } catch (error) {
        return [c.name, (error as Error).message ?? String(error)] as const;
      }
    }));
    const ok = results.every(([, r]) => r === "ok");
    last = {
      at: Date.now(),
      status: ok ? 200 : 503,
      body: JSON.stringify(Object.fromEntries(results)) + "\n",
    };
    return last;
  };
  const health = () => {
    if (last && Date.now() - last.at < 5000) return Promise.resolve(last);
    // Probes arriving while checks run share that run instead of starting their own.
    running ??= runChecks().finally(() => (running = null));
    return running;
  };
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: () => {},
    onError: (e) => {
      options.onError?.(e);
      return new Response("internal error\n", { status: 500 });
    },
  }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/metrics") {
      return new Response(options.registry.render(), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    }
    if (path === "/healthz") {
      const h = await health();
      return new Response(h.body, { status: h.status, headers: { "content-type": "application/json" } });
    }
    return new Response("not found: try /metrics or /healthz\n", { status: 404 });
  });
  return { port: server.addr.port, close: () => server.shutdown() };
}

/**
 * Starts the metrics server on `port` (0: none). A port in use is a warning, not a failure: several consumers or
 * producers on one machine must not stop each other; give each its own port to scrape them all.
 */
export function startMetricsServer(
  config: { metrics: { hostname: string } },
  log: Logger,
  port: number,
  registry: Registry,
  checks: HealthCheck[],
): { port: number; close(): Promise<void> } | null {
  if (port === 0) return null;
  registry.collect(processLines);
  try {
    const server = serveMetrics({ hostname: config.metrics.hostname, port, registry, checks });
    log.info(`[metrics] serving http://${config.metrics.hostname}:${server.port}/metrics and /healthz`);
    return server;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      log.warn(
        `[metrics] port ${port} is in use: /metrics and /healthz are off for this process (set another port)`,
      );
      return null;
    }
    throw error;
  }
}

/**
 * The process's memory, so that a fleet's hosts can be sized from what a consumer or producer really holds:
 * resident memory now and at its peak (Linux), and the main JavaScript heap with the buffers it owns outside it
 * (frames, sockets). Filter workers have heaps of their own; they are in the resident figures, not the heap ones.
 */
export function processLines(): string {
  const memory = Deno.memoryUsage();
  let peak: number | null = null;
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    if (kb) peak = Number(kb) * 1024;
  } catch {
    // Not Linux, or /proc is not mounted: the peak is left out.
  }
  const lines = [
    "# HELP process_resident_memory_bytes Resident memory of the process.",
    "# TYPE process_resident_memory_bytes gauge",
    `process_resident_memory_bytes ${memory.rss}`,
  ];
  if (peak !== null) {
    lines.push(
      "# HELP frame_bucket_resident_memory_peak_bytes Highest resident memory of the process since it started.",
      "# TYPE frame_bucket_resident_memory_peak_bytes gauge",
      `frame_bucket_resident_memory_peak_bytes ${peak}`,
    );
  }
  lines.push(
    "# HELP frame_bucket_heap_bytes The main JavaScript heap: used and reserved, and memory it owns outside (external).",
    "# TYPE frame_bucket_heap_bytes gauge",
    `frame_bucket_heap_bytes{kind="used"} ${memory.heapUsed}`,
    `frame_bucket_heap_bytes{kind="total"} ${memory.heapTotal}`,
    `frame_bucket_heap_bytes{kind="external"} ${memory.external}`,
  );
  return lines.join("\n");
}

/** Eviction's figures as Prometheus lines (rendered at scrape time from the evictor's own counters). */
export function evictionLines(stats: {
  archived: number;
  archivedBytes: number;
  dropped: number;
  lost: number;
  failures: number;
  paused: boolean;
  pauses?: number;
  lastPercent: number | null;
}): string {
  const one = (name: string, type: string, help: string, value: number) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}`;
  return [
    one("frame_bucket_frames_evicted_total", "counter", "Frames moved to the archive tier.", stats.archived),
    one(
      "frame_bucket_bytes_evicted_total",
      "counter",
      "Bytes moved to the archive tier.",
      stats.archivedBytes,
    ),
    one(
      "frame_bucket_frames_evicted_unarchived_total",
      "counter",
      "Frames deleted without an archive copy (on_archive_failure = drop_oldest).",
      stats.dropped,
    ),
    one(
      "frame_bucket_frames_lost_total",
      "counter",
      "Frames eviction found gone from both tiers.",
      stats.lost,
    ),
    one(
      "frame_bucket_eviction_failures_total",
      "counter",
      "Failed attempts to reach a store.",
      stats.failures,
    ),
    one(
      "frame_bucket_local_usage_percent",
      "gauge",
      "Local usage at the last check, as eviction measures it.",
      stats.lastPercent ?? 0,
    ),
    one(
      "frame_bucket_consumer_paused",
      "gauge",
      "1 while fetching is paused because local storage is full.",
      stats.paused ? 1 : 0,
    ),
    one(
      "frame_bucket_consumer_pauses_total",
      "counter",
      "Times fetching was paused because local storage reached the hard limit.",
      stats.pauses ?? 0,
    ),
  ].join("\n");
}
