/**
 * `deno task consume [--config PATH]`: the consumer group member that filters frames and stores the new ones.
 */
import { parseCli, runMain, untilSignal } from "./cli.ts";
import { Catalog, catalogPath } from "./catalog.ts";
import { type Config, type FilterSettings, loadConfig } from "./config.ts";
import { Pipeline } from "./consumer.ts";
import { messageOf, ServiceError } from "./errors.ts";
import { type FrameConsumer, openAdmin, openConsumer } from "./kafka.ts";
import { createLogger, type Logger } from "./log.ts";
import { archiveStore, filterFromSpec, filterSpec, localStore } from "./plugin_loader.ts";
import { FilterPool, pooled } from "./filter_pool.ts";
import { createSceneFilter } from "./scene_filter.ts";
import { consumerMetrics, evictionLines, startMetricsServer } from "./metrics.ts";
import { evictionSettings, Evictor, triggerProblem } from "./eviction.ts";
import type { FilterPlugin, StoragePlugin } from "./plugin.ts";

const USAGE = `usage: deno task consume [--config PATH]

Reads camera frames from Kafka, drops redundant ones with the per-robot filter and stores the rest.
  --config PATH   config file (default: ./config.toml, built-in defaults when absent)
Stops cleanly on Ctrl-C / SIGTERM: in-flight stores finish and offsets are committed.`;

/**
 * Builds each filter once on the main thread (to check it and for the cheap distance and accepts) and runs its
 * signatures in a pool of `consumer.filter_workers` workers, one pool per distinct filter set-up.
 */
function workerFilters(config: Config): (settings: FilterSettings) => Promise<FilterPlugin> {
  const pools = new Map<string, FilterPool>();
  return async (settings) => {
    const spec = filterSpec(settings, config.baseDir);
    const plugin = await filterFromSpec(spec);
    if (config.consumer.filter_workers === 0) return plugin;
    const id = JSON.stringify(spec);
    let pool = pools.get(id);
    if (!pool) pools.set(id, pool = new FilterPool(spec, config.consumer.filter_workers));
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
  });
  evictor.start();
  return evictor;
}

runMain(async () => {
  const { values } = parseCli(USAGE, { config: { type: "string", short: "c" } });
  const config = await loadConfig(values.config);
  const log = createLogger(config.logging);
  const filter = await createSceneFilter(config, workerFilters(config));
  const storage = await localStore(config);
  const overrides = Object.entries(config.filter.robots).map(([id]) => `${id}: ${filter.filterOf(id).name}`);
  log.info(
    `consumer starting: config ${config.source}; kafka ${
      config.kafka.brokers.join(",")
    } topic ${config.kafka.topic} ` +
      `group ${config.kafka.group_id}; filter ${
        filter.filterOf("").name
      } (threshold ${config.filter.phash_threshold}` +
      `/${config.filter.phash_hash_size ** 2} bits, resize ${config.filter.resize})` +
      (overrides.length ? `, per robot ${overrides.join(", ")}` : "") +
      `; store ${config.rustfs.endpoint} bucket ${config.rustfs.bucket} prefix ${config.rustfs.prefix}` +
      `; catalog ${catalogPath(config)}`,
  );
  await storage.open();

  const admin = await openAdmin(config.kafka, log);
  const topic = await admin.describeTopic().finally(() => admin.close());
  if (!topic) {
    throw new ServiceError("kafka", `topic ${config.kafka.topic} does not exist: run \`deno task topic\``, {
      retriable: false,
    });
  }

  const catalog = new Catalog(catalogPath(config));
  const metrics = consumerMetrics();
  const pipeline = new Pipeline({ config, log, storage, filter, catalog, metrics });
  metrics.registry.collect(() => pipeline.counters.toPrometheus());
  const healthAdmin = await openAdmin(config.kafka, log);
  const server = startMetricsServer(config, log, config.metrics.consumer_port, metrics.registry, [
    {
      name: "kafka",
      check: async () => {
        if (!(await healthAdmin.describeTopic())) throw new Error(`topic ${config.kafka.topic} is missing`);
      },
    },
    { name: "s3", check: async () => void (await storage.head(".frame-bucket-health")) },
  ]);
  const consumer = await openConsumer(config.kafka, log, { onRebalance: (p) => pipeline.onAssignment(p) });
  const evictor = await startEviction(config, log, storage, catalog, consumer);
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
  await server?.close();
  await healthAdmin.close().catch(() => {});
  log.info(`[stats] final: ${pipeline.counters.line()}`);
  storage.close();
  catalog.close();
  await filter.close();
  return 0;
});
