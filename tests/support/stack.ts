/**
 * The real servers the integration tests share: the project's own stack (Kafka + S3Proxy on loopback), started
 * once when not already running (`.ci/run` starts it before the tests; a developer's stack is reused as it is).
 * Each test gets its own topic, bucket and consumer group so tests never see each other's frames.
 */
import { stackEndpoints, stackUp } from "../../tools/stack.ts";
import type { Config } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { createTopic as createTopicWith } from "../../tools/scratch.ts";

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
    const { kafkaBrokers, s3Endpoint } = stackEndpoints();
    const missing = [
      !(await answers(Number(kafkaBrokers[0].split(":")[1]))) && "kafka" as const,
      !(await answers(Number(new URL(s3Endpoint).port))) && "s3" as const,
    ].filter((s) => s !== false);
    if (missing.length) await stackUp(missing);
  })();
  return started;
}

export { isolatedConfig } from "../../tools/scratch.ts";

export const quietLog = createLogger({ level: "error", format: "text" });

/** Creates the config's topic. */
export function createTopic(config: Config, partitions = 3): Promise<void> {
  return createTopicWith(config, quietLog, partitions);
}
