/**
 * The real servers the integration tests share: the project's own stack (Kafka + S3Proxy on loopback), started
 * once when not already running (`.ci/run` starts it before the tests; a developer's stack is reused as it is).
 * Each test gets its own topic, bucket and consumer group so tests never see each other's frames.
 */
import { ensureServers, stackEndpoints, stackUp } from "../../tools/stack.ts";
import type { Config } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { createTopic as createTopicWith } from "../../dev/scratch.ts";

let started: Promise<void> | null = null;

/**
 * Servers already answering (the project's stack, another checkout's, or Kafka and RustFS from docker compose) are
 * used as they are; only what is missing is started (tools/stack.ts ensureServers, which `deno task bench` uses
 * too).
 */
export function ensureStack(): Promise<void> {
  started ??= ensureServers().then(() => {});
  return started;
}

/**
 * For tests that need only S3: starts the stack's S3 server when nothing answers on its port; returns its
 * endpoint.
 */
export async function ensureS3(): Promise<string> {
  const endpoint = stackEndpoints().s3Endpoint;
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(endpoint).port) })).close();
  } catch {
    await stackUp(["s3"]);
  }
  return endpoint;
}

/** A bucket name of its own for one test: `name` and a random suffix. */
export const bucketName = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`;

export { isolatedConfig } from "../../dev/scratch.ts";

export const quietLog = createLogger({ level: "error", format: "text" });

/** Creates the config's topic. */
export function createTopic(config: Config, partitions = 3): Promise<void> {
  return createTopicWith(config, quietLog, partitions);
}
