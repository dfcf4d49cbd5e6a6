/**
 * The real servers the integration tests share: the project's own stack (Kafka + S3Proxy on loopback), started
 * once when not already running (`.ci/run` starts it before the tests; a developer's stack is reused as it is).
 * Each test gets its own topic, bucket and consumer group so tests never see each other's frames.
 */
import { stackUp } from "../../tools/stack.ts";
import { type Config, resolveConfig } from "../../src/config.ts";
import { openAdmin } from "../../src/kafka.ts";
import { createLogger } from "../../src/log.ts";

let started: Promise<void> | null = null;

async function answers(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

export function ensureStack(): Promise<void> {
  started ??= (async () => {
    // Servers already answering (the project's stack, or Kafka and RustFS from docker compose) are used as they
    // are; only what is missing is started.
    const missing = [
      !(await answers(9092)) && "kafka" as const,
      !(await answers(9000)) && "s3" as const,
    ].filter((s) => s !== false);
    if (missing.length) await stackUp(missing);
  })();
  return started;
}

/** A config (as TOML text and resolved) with a fresh topic, bucket and group. */
export async function isolatedConfig(
  name: string,
  extra = "",
): Promise<{ toml: string; path: string; config: Config }> {
  const id = `${name}-${crypto.randomUUID().slice(0, 8)}`;
  const toml = `
[kafka]
brokers = "127.0.0.1:9092"
topic = "test.${id}"
group_id = "group-${id}"
[rustfs]
endpoint = "http://127.0.0.1:9000"
bucket = "${id.toLowerCase()}"
[consumer]
stats_interval_secs = 1
[producer]
stats_interval_secs = 1
${extra}`;
  const path = await Deno.makeTempFile({ prefix: "frame-bucket-", suffix: ".toml" });
  await Deno.writeTextFile(path, toml);
  const config = resolveConfig(toml);
  return { toml, path, config };
}

export const quietLog = createLogger({ level: "error", format: "text" });

/** Creates the config's topic. */
export async function createTopic(config: Config, partitions = 3): Promise<void> {
  const admin = await openAdmin(config.kafka, quietLog);
  try {
    await admin.ensureTopic(partitions, config.kafka.max_message_bytes);
  } finally {
    await admin.close();
  }
}
