/**
 * `deno task demo [--seconds N] [--config PATH]`: the whole pipeline on one machine, on built-in defaults.
 *
 * Starts the local stack when nothing answers at the configured Kafka and S3 addresses, creates the topic, runs
 * two simulated robot cameras (generated scenes that stay still for a few seconds, then change), a producer per
 * robot and one consumer, for about a minute, then prints what was stored per robot.
 */
import { parseCli, runMain } from "../src/main/cli.ts";
import { type Config, loadConfig } from "../src/config.ts";
import { openAdmin } from "../src/kafka/client.ts";
import { parseObjectKey } from "../src/key.ts";
import { createLogger } from "../src/log.ts";
import { localStore } from "../src/filter/loader.ts";
import { startCamera } from "./camera.ts";
import { type Child, spawnDeno } from "../dev/processes.ts";
import { stackUp } from "./stack.ts";
import { sleep } from "../src/ingest/camera.ts";

const USAGE = `usage: deno task demo [--seconds N] [--config PATH]

Runs two simulated robots through Kafka, the filter and S3 storage, then prints what was stored.
  --seconds N     how long the cameras run (default 60)
  --config PATH   config file (default ./config.toml; the local stack is started when nothing answers)`;

async function answers(hostPort: string): Promise<boolean> {
  const [hostname, port] = [
    hostPort.slice(0, hostPort.lastIndexOf(":")),
    Number(hostPort.slice(hostPort.lastIndexOf(":") + 1)),
  ];
  try {
    const conn = await Deno.connect({ hostname: hostname === "localhost" ? "127.0.0.1" : hostname, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

const isLocal = (host: string) => /^(localhost|127\.0\.0\.1|\[::1\])(:|$)/.test(host);

async function ensureServers(config: Config): Promise<void> {
  const s3 = new URL(config.rustfs.endpoint);
  const s3Host = `${s3.hostname}:${s3.port || (s3.protocol === "https:" ? 443 : 80)}`;
  const kafkaUp = await answers(config.kafka.brokers[0]);
  const s3Up = await answers(s3Host);
  if (kafkaUp && s3Up) {
    console.log(`using Kafka at ${config.kafka.brokers.join(",")} and S3 at ${config.rustfs.endpoint}`);
    return;
  }
  const missing = [!kafkaUp && "kafka", !s3Up && "s3"].filter(Boolean) as ("kafka" | "s3")[];
  const remote = missing.filter((m) => !isLocal(m === "kafka" ? config.kafka.brokers[0] : s3Host));
  if (remote.length) {
    throw new Error(
      `nothing answers at the configured ${remote.join(" and ")} address: start it or fix config.toml`,
    );
  }
  console.log(
    `starting the local stack (${
      missing.join(", ")
    }): the first run fetches Kafka and S3Proxy from Maven Central`,
  );
  await stackUp(missing);
}

function finalStats(child: Child): string {
  return child.lines.findLast((l) => /\[stats\] final: /.test(l)) ?? "";
}

runMain(async () => {
  const { values } = parseCli(USAGE, { config: { type: "string", short: "c" }, seconds: { type: "string" } });
  const seconds = values.seconds === undefined ? 60 : Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new RangeError(`--seconds ${values.seconds} must be a positive number`);
  }
  const config = await loadConfig(values.config);
  const configArgs = config.source && config.source !== "built-in defaults"
    ? ["--config", config.source]
    : [];
  await ensureServers(config);

  const log = createLogger({ level: "warn", format: "text" });
  const admin = await openAdmin(config.kafka, log);
  try {
    if (await admin.ensureTopic(config.kafka.partitions, config.kafka.max_message_bytes)) {
      console.log(`created topic ${config.kafka.topic} with ${config.kafka.partitions} partitions`);
    }
  } finally {
    await admin.close();
  }

  const startedAt = Date.now();
  const robots = [
    { id: "reachy-001", camera: await startCamera({ port: 0, fps: 10, stillSeconds: 4, seed: 1 }) },
    { id: "bracketbot-001", camera: await startCamera({ port: 0, fps: 10, stillSeconds: 7, seed: 2 }) },
  ];
  const consumer = spawnDeno("consumer", "src/main/consume.ts", configArgs);
  const producers = robots.map((r) =>
    spawnDeno(`producer ${r.id}`, "src/main/produce.ts", [r.id, r.camera.url, ...configArgs])
  );
  const children = [consumer, ...producers];
  try {
    await consumer.waitFor(/joined group/, 60000);
    console.log(
      `running two simulated robots for ${seconds} s (cameras at ${
        robots.map((r) => r.camera.url).join(", ")
      })`,
    );
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      await sleep(Math.min(10000, until - Date.now()));
      const line = consumer.lines.findLast((l) => /\[stats\] /.test(l));
      if (line) {
        console.log(
          `  ${Math.round((Date.now() - startedAt) / 1000)} s: ${line.slice(line.indexOf("[stats]") + 8)}`,
        );
      }
    }
    for (const p of producers) await p.stop();
    // Let the consumer finish what the producers sent before stopping it.
    const waitAdmin = await openAdmin(config.kafka, log);
    try {
      for (let i = 0; i < 60; i++) {
        const topic = await waitAdmin.describeTopic();
        const done = await waitAdmin.groupOffsets(config.kafka.group_id);
        const lag = [...(topic?.highWatermarks ?? [])].reduce(
          (n, [p, high]) => n + Number(high) - Math.max(0, Number(done.get(p) ?? 0)),
          0,
        );
        if (lag === 0) break;
        await sleep(500);
      }
    } finally {
      await waitAdmin.close();
    }
    await consumer.stop();
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited));
    for (const r of robots) await r.camera.close();
  }

  const storage = await localStore(config);
  console.log("");
  console.log(`consumer: ${finalStats(consumer).replace(/.*final: /, "")}`);
  console.log("");
  console.log("robot            produced  stored this run  first key");
  try {
    for (const [i, r] of robots.entries()) {
      const sent = /sent (\d+)/.exec(finalStats(producers[i]))?.[1] ?? "?";
      const keys: string[] = [];
      for await (const o of storage.list({ prefix: `${config.rustfs.prefix}${r.id}/` })) {
        const k = parseObjectKey(o.key);
        if (k && k.timestampMs >= startedAt) keys.push(o.key);
      }
      console.log(
        `${r.id.padEnd(16)} ${sent.padStart(8)}  ${String(keys.length).padStart(15)}  ${keys[0] ?? "-"}`,
      );
    }
  } finally {
    storage.close();
  }
  console.log("");
  console.log(
    "see them with `deno task check --robot reachy-001`; compare two with `deno task compare A.jpg B.jpg`",
  );
});
