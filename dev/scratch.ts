/**
 * Throw-away pipeline settings for tests and benchmarks: a fresh topic, bucket and consumer group on the local
 * stack (its ports from KAFKA_PORT and S3_PORT, as `deno task stack` reads them), so runs never see each other's
 * frames.
 */
import { stringify } from "smol-toml";
import { type Config, resolveConfig } from "../src/config.ts";
import { openAdmin } from "../src/kafka/client.ts";
import type { Logger } from "../src/log.ts";
import { stackEndpoints } from "../tools/stack.ts";

export type Overrides = Record<string, Record<string, unknown>>;

/** Writes a config file with a fresh topic, bucket and group (plus `overrides`) and resolves it. */
export async function isolatedConfig(
  name: string,
  overrides: Overrides = {},
): Promise<{ path: string; config: Config }> {
  const id = `${name}-${crypto.randomUUID().slice(0, 8)}`.toLowerCase();
  const stack = stackEndpoints();
  const base: Overrides = {
    kafka: { brokers: stack.kafkaBrokers.join(","), topic: `test.${id}`, group_id: `group-${id}` },
    rustfs: { endpoint: stack.s3Endpoint, bucket: id },
    consumer: { stats_interval_secs: 1 },
    // Each run its own catalog: runs reuse robot ids, and a catalog row from another run's bucket would be a
    // wrong reference for the filter.
    catalog: { data_dir: await Deno.makeTempDir({ prefix: "frame-bucket-data-" }) },
    producer: { stats_interval_secs: 1 },
    // Several consumers run at once in tests: no fixed metrics port (tests that want /metrics pick a free one).
    metrics: { consumer_port: 0 },
  };
  for (const [section, keys] of Object.entries(overrides)) base[section] = { ...base[section], ...keys };
  const toml = stringify(base);
  const path = await Deno.makeTempFile({ prefix: "frame-bucket-", suffix: ".toml" });
  await Deno.writeTextFile(path, toml);
  return { path, config: resolveConfig(toml, { source: path, baseDir: Deno.cwd() }) };
}

/** Creates the config's topic. */
export async function createTopic(config: Config, log: Logger, partitions = 3): Promise<void> {
  const admin = await openAdmin(config.kafka, log);
  try {
    await admin.ensureTopic(partitions, config.kafka.max_message_bytes);
  } finally {
    await admin.close();
  }
}
