/**
 * `deno task produce [robot_id] [stream_url] [--config PATH]`: one robot's camera -> Kafka.
 */
import {
  cameraFrames,
  frameUrlFromStreamUrl,
  mjpegFrames,
  polledFrames,
  withQuery,
} from "../ingest/camera.ts";
import { parseCli, runMain, untilSignal } from "./cli.ts";
import { loadConfig } from "../config.ts";
import { ServiceError } from "../errors.ts";
import { HEADER_BYTES } from "../ingest/frame.ts";
import { WireProducer } from "../ingest/kafka_wire.ts";
import { checkRobotId } from "../key.ts";
import { createLogger } from "../log.ts";
import { Registry, startMetricsServer } from "../metrics.ts";
import { FrameSender } from "../ingest/producer.ts";

const USAGE = `usage: deno task produce [robot_id] [stream_url] [--config PATH]

Reads a robot's camera (MJPEG stream or polled JPEGs) and publishes each frame to Kafka.
  robot_id        overrides aws_s3.robot_id (letters, digits, '.', '_', '-')
  stream_url      overrides stream.url
  --config PATH   config file (default: ./config.toml, built-in defaults when absent)
  --metrics-port N  serve /metrics and /healthz on this port (default metrics.producer_port; 0 = off)`;

runMain(async () => {
  const { values, positionals } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    "metrics-port": { type: "string" },
  });
  if (positionals.length > 2) {
    throw new RangeError(`expected at most robot_id and stream_url, got ${positionals.length} arguments`);
  }
  const config = await loadConfig(values.config);
  const robotId = checkRobotId(positionals[0] ?? config.aws_s3.robot_id);
  const streamUrl = positionals[1] ?? config.stream.url;
  try {
    new URL(streamUrl);
  } catch {
    throw new TypeError(
      `stream url ${JSON.stringify(streamUrl)} is not a URL (e.g. http://robot:8000/api/camera/stream)`,
    );
  }
  const log = createLogger(config.logging);
  const query = { quality: config.stream.quality, fps: config.stream.fps };
  const url = config.stream.send_query ? withQuery(streamUrl, query) : streamUrl;
  const frameUrl = config.stream.frame_url || frameUrlFromStreamUrl(streamUrl);
  log.info(
    `producer ${robotId} starting: ${
      config.stream.mode === "mjpeg" ? `stream ${url}` : `polling ${frameUrl}`
    } at ` +
      `${config.stream.fps} fps -> kafka ${config.kafka.brokers.join(",")} topic ${config.kafka.topic} ` +
      `(compression ${config.kafka.compression}, buffer ${config.producer.buffer_frames} frames)`,
  );

  // The producer's own Kafka client, not kafkajs: on the robot every millisecond and megabyte counts
  // (src/ingest/kafka_wire.ts). Reading the topic's metadata also checks the broker is there.
  const kafka = new WireProducer(config.kafka, log);
  const topic = await kafka.topic();
  if (!topic) {
    await kafka.close();
    throw new ServiceError("kafka", `topic ${config.kafka.topic} does not exist: run \`deno task topic\``, {
      retriable: false,
    });
  }
  const sender = new FrameSender({ config, robotId, log, kafka });
  const sending = sender.run();

  const stop = new AbortController();
  const readOptions = {
    maxPartBytes: config.kafka.max_message_bytes - HEADER_BYTES,
    readTimeoutMs: config.stream.read_timeout_secs * 1000,
    signal: stop.signal,
    log,
    // Parts the reader drops (oversized, not a JPEG) never reach offer(); they are counted as refused all the same.
    onReject: (reason: string) => sender.refuse(reason),
  };
  const source = config.stream.mode === "mjpeg"
    ? () => mjpegFrames(url, readOptions)
    : () => polledFrames(frameUrl, { ...readOptions, fps: config.stream.fps });
  const reading = (async () => {
    for await (const frame of cameraFrames(source, { log, signal: stop.signal })) sender.offer(frame);
  })();
  const stats = setInterval(
    () => log.info(`[stats] ${sender.line()}`),
    config.producer.stats_interval_secs * 1000,
  );
  const metricsPort = values["metrics-port"] === undefined
    ? config.metrics.producer_port
    : Number(values["metrics-port"]);
  if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
    throw new RangeError(`--metrics-port ${values["metrics-port"]} must be a port number (0 for none)`);
  }
  const registry = new Registry();
  registry.collect(() => sender.toPrometheus());
  const server = startMetricsServer(config, log, metricsPort, registry, [
    {
      name: "kafka",
      check: async () => {
        if (!(await kafka.topic())) throw new Error(`topic ${config.kafka.topic} is missing`);
      },
    },
    {
      name: "camera",
      check: () => {
        const at = sender.lastFrameAt;
        const limit = config.stream.read_timeout_secs * 1000;
        if (at === null || Date.now() - at > limit) throw new Error(`no frame for over ${limit / 1000} s`);
        return Promise.resolve();
      },
    },
  ]);

  const signal = await untilSignal();
  log.info(`${signal}: stopping the camera reader, sending what is queued`);
  stop.abort();
  await reading.catch(() => {});
  sender.close();
  const drained = await Promise.race([
    sending.then(() => true),
    new Promise((r) => setTimeout(() => r(false), 10000)),
  ]);
  if (!drained) log.warn(`gave up sending ${sender.queued} queued frames after 10 s`);
  clearInterval(stats);
  await server?.close();
  log.info(`[stats] final: ${sender.line()}`);
  await kafka.close();
  return 0;
});
