/**
 * `deno task consume [--config PATH]`: the consumer group member that filters frames and stores the new ones.
 */
import { parseCli, runMain, untilSignal } from "./cli.ts";
import type { Catalog } from "../catalog/catalog.ts";
import { catalogPath, openCatalog } from "../catalog/open.ts";
import { type Config, type FilterSettings, loadConfig } from "../config.ts";
import { Pipeline } from "../consume/pipeline.ts";
import { messageOf, ServiceError } from "../errors.ts";
import type { FrameConsumer } from "../kafka/client.ts";
import { openWireConsumer } from "../kafka/wire_consumer.ts";
import { openWireTopicLookup, type TopicLookup } from "../kafka/wire_admin.ts";
import { guardMemory } from "../consume/memory.ts";
import { createLogger, type Logger } from "../log.ts";
import { archiveStore, describePlugins, filterFromSpec, filterSpec, localStore } from "../filter/loader.ts";
import { FilterPool, pooled, withSignature } from "../filter/pool.ts";
import { keepsInput } from "../filter/input_check.ts";
import { createSceneFilter } from "../filter/scene.ts";
import { type ConsumerMetrics, consumerMetrics, evictionLines, startMetricsServer } from "../metrics.ts";
import { reconcile } from "../store/reconcile.ts";
import { reindex } from "../store/reindex.ts";
import { Evictor } from "../retention/evictor.ts";
import { Leadership } from "../retention/leader.ts";
import { evictionSettings, triggerProblem } from "../retention/plan.ts";
import type { FilterPlugin, StoragePlugin } from "../plugin.ts";

/**
 * The configured Kafka client's topic lookup and consumer. kafkajs is loaded only when it is the configured
 * client: the wire client's consumer does without its modules and admin connection (~5 MB resident).
 */
async function kafkaClient(config: Config, log: Logger): Promise<{
  lookup: () => Promise<TopicLookup>;
  open: typeof openWireConsumer;
}> {
  if (config.kafka.consumer_client === "wire") {
    return { lookup: () => Promise.resolve(openWireTopicLookup(config.kafka)), open: openWireConsumer };
  }
  const { openAdmin, openConsumer } = await import("../kafka/client.ts");
  return { lookup: () => openAdmin(config.kafka, log), open: openConsumer };
}

const USAGE = `usage: deno task consume [--config PATH]

Reads camera frames from Kafka, drops redundant ones with the per-robot filter and stores the rest.
  --config PATH   config file (default: ./config.toml, built-in defaults when absent)
Stops cleanly on Ctrl-C / SIGTERM: in-flight stores finish and offsets are committed.`;

/**
 * Builds each filter once on the main thread (to check it and for the cheap distance and accepts) and runs its
 * signatures in a pool of up to `consumer.filter_workers` workers (one until it is saturated, see pool.ts and
 * `consumer.filter_workers_idle_secs`), one pool per distinct filter set-up.
 */
function workerFilters(
  config: Config,
  pools: Map<string, FilterPool>,
  behind: () => number,
): (settings: FilterSettings) => Promise<FilterPlugin> {
  return async (settings) => {
    const spec = filterSpec(settings, config.baseDir);
    const plugin = await filterFromSpec(spec);
    // On the event loop the plugin reads views of fetch answers, which are freed once their batch is handled:
    // one that keeps its input gets copies.
    if (config.consumer.filter_workers === 0) {
      return await keepsInput(plugin)
        ? withSignature(plugin, (jpeg) => plugin.signature(jpeg.slice()))
        : plugin;
    }
    const id = JSON.stringify(spec);
    let pool = pools.get(id);
    const idleSecs = config.consumer.filter_workers_idle_secs;
    if (!pool) {
      pools.set(
        id,
        pool = new FilterPool(
          spec,
          config.consumer.filter_workers,
          idleSecs > 0 ? { min: 1, idleMs: idleSecs * 1000, behind } : {},
        ),
      );
    }
    return pooled(plugin, pool);
  };
}

/**
 * Runs eviction inside the consumer when a trigger is configured. An unreachable archive does not stop ingest: the
 * evictor backs off and deletes nothing locally until the archive answers; at the hard limit it pauses fetching
 * (Kafka keeps the frames) and resumes once space is freed.
 */
async function startEviction(
  config: Config,
  log: Logger,
  local: StoragePlugin,
  catalog: Catalog,
  consumer: FrameConsumer,
  backlog: () => number | null,
): Promise<Evictor | null> {
  if (!config.eviction.enabled) return null;
  const settings = evictionSettings(config);
  const problem = triggerProblem(settings);
  if (problem) {
    log.info(`[evict] off: ${problem}`);
    return null;
  }
  const archive = await archiveStore(config);
  try {
    await archive.open();
  } catch (error) {
    log.warn(
      `[evict] archive not usable yet (${
        messageOf(error)
      }); eviction retries and deletes nothing until it is`,
    );
  }
  const evictor = new Evictor({
    local,
    archive,
    catalog,
    settings,
    archivePrefix: config.aws_s3.prefix,
    localPrefix: config.rustfs.prefix,
    log,
    onPause: (paused) => paused ? consumer.pause() : consumer.resume(),
    // Moves slow down while the consumer falls behind (src/retention/pace.ts).
    backlog,
    // Every consumer is a candidate; the catalog's lease makes one of them the evictor (src/retention/leader.ts).
    leadership: new Leadership({
      catalog,
      log: log.child("evict"),
      ttlMs: config.eviction.lease_secs * 1000,
    }),
  });
  evictor.start();
  return evictor;
}

/**
 * Checks that the catalog belongs to this deployment and is not an empty stand-in for a lost one. A catalog of
 * another topic or bucket is refused (its Kafka offsets would mark new frames as replays); an empty catalog next
 * to a bucket that holds frames is rebuilt (`catalog.auto_reindex`) or named in a warning, never used silently.
 */
async function checkCatalog(
  config: Config,
  log: Logger,
  catalog: Catalog,
  storage: StoragePlugin,
): Promise<void> {
  const mine = {
    topic: config.kafka.topic,
    endpoint: config.rustfs.endpoint,
    bucket: config.rustfs.bucket,
    prefix: config.rustfs.prefix,
  };
  const known = await catalog.identity();
  const differs = await catalog.bind(mine);
  if (known && differs.some((field) => field !== "endpoint")) {
    throw new ServiceError(
      "catalog",
      `catalog ${catalog.where} belongs to topic ${known.topic}, bucket ${known.bucket} prefix ${known.prefix} at ` +
        `${known.endpoint}, not to this consumer's topic ${mine.topic}, bucket ${mine.bucket} prefix ` +
        `${mine.prefix}: point catalog.data_dir at this deployment's catalog, or move ${catalog.where} away and ` +
        `run \`deno task reindex\` to build one from the bucket`,
      { retriable: false },
    );
  }
  if (known && differs.includes("endpoint")) {
    log.warn(
      `[catalog] ${catalog.where} was written for ${known.endpoint}; this consumer stores into ` +
        `${mine.endpoint} (same bucket ${mine.bucket}): fine if the server moved, otherwise check rustfs.endpoint`,
    );
  }
  if ((await catalog.frameCount()) > 0) return;
  let sample: string | null = null;
  for await (const item of storage.list({ prefix: config.rustfs.prefix, limit: 1 })) sample = item.key;
  if (sample === null) return;
  if (!config.catalog.auto_reindex) {
    log.warn(
      `[catalog] ${catalog.where} is empty but bucket ${config.rustfs.bucket} holds frames (e.g. ${sample}): a lost ` +
        `or replaced catalog? Run \`deno task reindex\` (the consumer may keep running), or set ` +
        `catalog.auto_reindex = true to rebuild at start-up. Until then the reconciliation indexes what it finds.`,
    );
    return;
  }
  log.warn(
    `[catalog] ${catalog.where} is empty but bucket ${config.rustfs.bucket} holds frames: rebuilding it`,
  );
  const counts = await reindex({
    local: storage,
    catalog,
    localPrefix: config.rustfs.prefix,
    archivePrefix: config.aws_s3.prefix,
    progress: (c) => log.info(`[catalog] reindex: ${c.local} local frames so far (${c.perSecond}/s)`),
  });
  log.info(
    `[catalog] rebuilt from the local bucket: ${counts.local} frames (run \`deno task reindex\` for archived ones)`,
  );
}

/**
 * Background care of the catalog: notices the file being deleted or replaced under the running consumer and puts
 * the rows back where others look, and reconciles the bucket with the catalog every
 * `catalog.reconcile_interval_secs` (and once at start-up).
 */
function watchCatalog(
  config: Config,
  log: Logger,
  catalog: Catalog,
  storage: StoragePlugin,
  metrics: ConsumerMetrics,
): () => void {
  const fileTimer = setInterval(async () => {
    try {
      const state = catalog.fileState?.() ?? "same";
      if (state === "same" || !catalog.recoverFile) return;
      log.error(
        `[catalog] ${catalog.where} was ${state} while the consumer had it open: restoring the rows it holds there`,
      );
      const done = await catalog.recoverFile();
      if (done) {
        log.warn(
          `[catalog] ${catalog.where}: ${
            done.state === "deleted"
              ? `written again with the ${done.rows} rows this consumer held`
              : `${done.copied} rows it lacked copied into the new file (now ${done.rows} rows; its labels and ` +
                `clips are its own)`
          }; the reconciliation indexes frames that are still missing`,
        );
        void runReconcile();
      }
    } catch (error) {
      log.error(`[catalog] ${messageOf(error)}; trying again in 2 s`);
    }
  }, 2000);
  let running = false;
  const runReconcile = async () => {
    if (running) return;
    running = true;
    try {
      const r = await reconcile({ local: storage, catalog, prefix: config.rustfs.prefix });
      metrics.catalogUnindexed.set({}, r.unindexed);
      const line = `[catalog] reconciled ${r.objects} frame objects of bucket ${config.rustfs.bucket} with ` +
        `${catalog.where} in ${r.seconds.toFixed(1)} s: ${r.unindexed} without a row`;
      if (r.unindexed > 0) {
        log.warn(`${line} (e.g. ${r.examples.join(", ")}), ${r.indexed} of them indexed now`);
      } else log.info(line);
    } catch (error) {
      log.warn(`[catalog] reconciliation failed (${messageOf(error)}); next try in the next interval`);
    } finally {
      running = false;
    }
  };
  const every = config.catalog.reconcile_interval_secs * 1000;
  const reconcileTimer = every > 0 ? setInterval(() => void runReconcile(), every) : undefined;
  if (every > 0) void runReconcile();
  return () => {
    clearInterval(fileTimer);
    clearInterval(reconcileTimer);
  };
}

runMain(async () => {
  const { values } = parseCli(USAGE, { config: { type: "string", short: "c" } });
  const config = await loadConfig(values.config);
  const log = createLogger(config.logging);
  const pools = new Map<string, FilterPool>();
  const metrics = consumerMetrics();
  // A consumer far behind (a drain after an outage) starts every filter worker as soon as frames queue up.
  const filter = await createSceneFilter(config, workerFilters(config, pools, () => metrics.lag.sum()));
  const storage = await localStore(config);
  log.info(
    `consumer starting: config ${config.source}; kafka ${
      config.kafka.brokers.join(",")
    } topic ${config.kafka.topic} ` +
      `group ${config.kafka.group_id}; ${await describePlugins(config, filter, storage)}` +
      ` prefix ${config.rustfs.prefix}; catalog ${catalogPath(config)}`,
  );
  await storage.open();

  const kafka = await kafkaClient(config, log);
  const admin = await kafka.lookup();
  const topic = await admin.describeTopic().finally(() => admin.close());
  if (!topic) {
    throw new ServiceError("kafka", `topic ${config.kafka.topic} does not exist: run \`deno task topic\``, {
      retriable: false,
    });
  }

  if (!storage.conditionalPut) {
    log.warn(
      `[store:${storage.name}] ${config.rustfs.endpoint} ignores If-None-Match on PUT: the consumer looks with ` +
        `HEAD before each put so that no stored frame is replaced (one request more per frame)`,
    );
  }
  const catalog = await openCatalog(config);
  await checkCatalog(config, log, catalog, storage);
  const memoryGuard = guardMemory({ slackBytes: 8 * 1024 * 1024 });
  const pipeline = new Pipeline({ config, log, storage, filter, catalog, metrics });
  metrics.registry.collect(() => pipeline.counters.toPrometheus());
  metrics.registry.collect(() =>
    [
      "# HELP frame_bucket_filter_workers Filter worker threads running now (they start on a backlog, stop when idle).",
      "# TYPE frame_bucket_filter_workers gauge",
      `frame_bucket_filter_workers ${[...pools.values()].reduce((n, p) => n + p.workers, 0)}`,
    ].join("\n")
  );
  const healthAdmin = await kafka.lookup();
  const server = startMetricsServer(config, log, config.metrics.consumer_port, metrics.registry, [
    {
      name: "kafka",
      check: async () => {
        if (!(await healthAdmin.describeTopic())) throw new Error(`topic ${config.kafka.topic} is missing`);
      },
    },
    { name: "s3", check: async () => void (await storage.head(".frame-bucket-health")) },
    {
      name: "catalog",
      check: async () => {
        await catalog.ping();
        const state = catalog.fileState?.() ?? "same";
        if (state !== "same") throw new Error(`${catalog.where} was ${state} while open; restoring it`);
        if (pipeline.catalogTrouble) throw new Error(pipeline.catalogTrouble);
      },
    },
  ]);
  const stopWatching = watchCatalog(config, log, catalog, storage, metrics);
  const consumer = await kafka.open(config.kafka, log, { onRebalance: (p) => pipeline.onAssignment(p) });
  const evictor = await startEviction(config, log, storage, catalog, consumer, () => metrics.lag.sum());
  if (evictor) metrics.registry.collect(() => evictionLines(evictor.stats()));
  const stats = setInterval(
    () => log.info(`[stats] ${pipeline.counters.line()}${evictor ? `; ${evictor.statsLine()}` : ""}`),
    config.consumer.stats_interval_secs * 1000,
  );
  await consumer.run((batch) => pipeline.handleBatch(batch), {
    partitionsConcurrently: Math.max(1, topic.partitions),
  });

  const signal = await untilSignal();
  log.info(`${signal}: finishing in-flight stores and committing offsets`);
  const forced = setTimeout(() => {
    log.error("shutdown took more than 30 s; exiting without a clean leave");
    Deno.exit(1);
  }, 30000);
  try {
    await evictor?.stop();
    await consumer.stop();
  } catch (error) {
    log.warn(`leaving the group failed: ${messageOf(error)}`);
  }
  clearTimeout(forced);
  clearInterval(stats);
  memoryGuard?.stop();
  stopWatching();
  await server?.close();
  await healthAdmin.close().catch(() => {});
  log.info(`[stats] final: ${pipeline.counters.line()}`);
  storage.close();
  await catalog.close();
  await filter.close();
  return 0;
});
