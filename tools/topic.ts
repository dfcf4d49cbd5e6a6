/**
 * `deno task topic [--partitions N] [--config PATH]`: creates the frames topic, idempotently, sized for full-HD
 * frames (max.message.bytes above kafka.max_message_bytes).
 */
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { openAdmin } from "../src/kafka/client.ts";
import { createLogger } from "../src/log.ts";

const USAGE = `usage: deno task topic [--partitions N] [--config PATH]

Creates the Kafka topic (kafka.topic) when it is missing; says so when it exists.
  --partitions N  partition count (default kafka.partitions, 12). A partition is read by one consumer of the
                  group at a time, so this caps how many consumers can share the work: give it at least
                  the number of consumer hosts the fleet will need. Adding partitions later moves robots to
                  other partitions (their order across the change is not kept): choose it once.`;

runMain(async () => {
  const { values } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    partitions: { type: "string", short: "p" },
  });
  const config = await loadConfig(values.config);
  const partitions = values.partitions === undefined ? config.kafka.partitions : Number(values.partitions);
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`--partitions ${values.partitions} must be a positive whole number`);
  }
  const admin = await openAdmin(config.kafka, createLogger(config.logging));
  try {
    const created = await admin.ensureTopic(partitions, config.kafka.max_message_bytes);
    const info = await admin.describeTopic();
    const count = info?.partitions ?? partitions;
    console.log(
      created
        ? `created topic ${config.kafka.topic} with ${count} partitions on ${config.kafka.brokers.join(",")}`
        : `topic ${config.kafka.topic} already exists with ${count} partitions` +
          (count !== partitions ? ` (asked for ${partitions}; existing topics are left as they are)` : ""),
    );
  } finally {
    await admin.close();
  }
});
