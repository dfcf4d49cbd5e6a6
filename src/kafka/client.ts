/**
 * The one module that knows kafkajs. Producer, consumer and tools talk to the small interfaces below, so the
 * client can be swapped (kafkajs has had no release since 2.2.4) without touching the pipeline.
 */
import {
  type Admin,
  CompressionCodecs,
  CompressionTypes,
  type Consumer,
  type EachBatchPayload,
  type ISocketFactory,
  Kafka,
  type LogEntry,
  logLevel,
  type Producer,
} from "kafkajs";
import snappy from "snappyjs";
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
// Not part of kafkajs' public API: imported to repair its request queue's timer and to replace its record-batch
// checksum (below); the version is pinned in deno.json and the tests check that both replacements took.
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import Connection from "kafkajs/src/network/connection.js";
import "kafkajs/src/protocol/recordBatch/crc32C/index.js";
import { createRequire } from "node:module";
import { crc32c } from "./crc32c.ts";
import type { Config } from "../config.ts";
import { messageOf, ServiceError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { partitionForRobot, robotOfKey } from "./partitioner.ts";

type KafkaConfig = Config["kafka"];

// kafkajs 2.2.4 re-arms a timer after every check of a connection's request queue, even when nothing waits in it,
// and with a negative delay (it fires after 1 ms): each idle connection spins through ~1000 timers a second
// (kafkajs issues #1556, #1704; no release fixes it). Measured here, an idle producer burnt 0.025 of a core, half
// of what a producer at 10 fps costs in all. Requests are only ever queued by push(), which schedules the check
// itself, and a finished request checks the queue too, so the timer is only needed while requests wait: the
// replacement arms it then (after the broker's throttle, or kafkajs' own 10 ms) and not otherwise.
const PENDING_CHECK_MS = 10;
interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
}
export function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const wait = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, wait > 0 ? wait : PENDING_CHECK_MS);
}
const requestQueue = (RequestQueue as { prototype: Record<string, unknown> }).prototype;
if (typeof requestQueue.scheduleCheckPendingRequests !== "function") {
  throw new Error(
    "kafkajs changed: RequestQueue.scheduleCheckPendingRequests is gone; revisit src/kafka/client.ts",
  );
}
requestQueue.scheduleCheckPendingRequests = scheduleCheckPendingRequests;

// kafkajs gathers a response's socket chunks (64 KiB each) in a list until the whole response is there, then
// concatenates them: a fetch of N MiB holds 2N MiB at its peak, and hundreds of chunks wait for the garbage
// collector. The replacement reads the response's size first and copies each chunk into a buffer of that size as it
// arrives (the same bytes copied once, the chunk free at once); a response that lies within one chunk is a view of
// it, as before. What is handed on is the same: the payload after the correlation id, as a Buffer.
interface ConnectionInternals {
  socket: unknown;
  authHandlers: { onSuccess(data: Buffer): void } | null;
  authExpectResponse: boolean;
  requestQueue: { fulfillRequest(r: { size: number; correlationId: number; payload: Buffer }): void };
  /** The response being assembled, on this socket: its buffer and how much of it has arrived. */
  fbResponse?: { socket: unknown; buffer: Buffer; filled: number } | null;
  /** The first bytes of a response's 4-byte size, when a chunk ended inside it. */
  fbSizeBytes?: { socket: unknown; bytes: Buffer } | null;
}
const connection = (Connection as { prototype: Record<string, unknown> }).prototype;
const kafkajsProcessData = connection.processData as (this: ConnectionInternals, data: Buffer) => void;
if (typeof kafkajsProcessData !== "function") {
  throw new Error("kafkajs changed: Connection.processData is gone; revisit src/kafka/client.ts");
}
export function processData(this: ConnectionInternals, rawData: Buffer): void {
  // SASL exchanges (not used by frame-bucket, kept working) go through kafkajs' own code, which keeps chunks.
  if (this.authHandlers) {
    return kafkajsProcessData.call(this, volatile(rawData) ? Buffer.from(rawData) : rawData);
  }
  const socket = this.socket;
  if (this.fbResponse && this.fbResponse.socket !== socket) this.fbResponse = null;
  if (this.fbSizeBytes && this.fbSizeBytes.socket !== socket) this.fbSizeBytes = null;
  let data = rawData;
  while (data.length > 0) {
    const pending = this.fbResponse;
    if (pending) {
      const n = Math.min(data.length, pending.buffer.length - pending.filled);
      pending.buffer.set(data.subarray(0, n), pending.filled);
      pending.filled += n;
      data = data.subarray(n);
      if (pending.filled < pending.buffer.length) return;
      this.fbResponse = null;
      deliver(this, pending.buffer);
      continue;
    }
    if (this.fbSizeBytes || data.length < 4) {
      const head = this.fbSizeBytes ? Buffer.concat([this.fbSizeBytes.bytes, data]) : data;
      if (head.length < 4) {
        this.fbSizeBytes = { socket, bytes: Buffer.from(head) };
        return;
      }
      this.fbSizeBytes = null;
      data = head;
    }
    const size = data.readInt32BE(0);
    if (size < 4) {
      throw new RangeError(`Kafka response of ${size} bytes is too short to hold a correlation id`);
    }
    if (data.length >= 4 + size) {
      // kafkajs decodes a response after this returns: a view of the reused read buffer would change under it.
      const response = data.subarray(4, 4 + size);
      deliver(this, volatile(response) ? Buffer.from(response) : response);
      data = data.subarray(4 + size);
      continue;
    }
    this.fbResponse = { socket, buffer: Buffer.allocUnsafe(size), filled: 0 };
    data = data.subarray(4);
  }
}
function deliver(conn: ConnectionInternals, response: Buffer): void {
  conn.requestQueue.fulfillRequest({
    size: response.length,
    correlationId: response.readInt32BE(0),
    payload: response.subarray(4),
  });
}
connection.processData = processData;

// Every socket read used to allocate a fresh 64 KiB Buffer (a fetch of N MiB made N*16 of them, each garbage as
// soon as copied into its response). Kafka sockets read into one buffer instead (Node's `onread`): processData
// above copies what it keeps before the next read can reuse it, and copies a response that lies within one read.
// The event loop handles one read at a time, so one buffer serves every connection.
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const volatile = (bytes: Uint8Array) => bytes.buffer === READ_BUFFER.buffer;
const KEEP_ALIVE_MS = 60000; // kafkajs' own socket factory's TCP keep-alive

/** kafkajs' `socketFactory`: a plain TCP socket whose reads go through READ_BUFFER to kafkajs' data handler. */
export function readBufferSocket(
  { host, port, ssl, onConnect }: {
    host: string;
    port: number;
    ssl?: tls.ConnectionOptions;
    onConnect: () => void;
  },
): net.Socket {
  // TLS (not configurable in frame-bucket today) as kafkajs' own factory does it: reads into fresh Buffers.
  if (ssl) {
    const secure = tls.connect(
      { host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl },
      onConnect,
    );
    secure.setKeepAlive(true, KEEP_ALIVE_MS);
    return secure;
  }
  const socket: net.Socket = net.connect({
    host,
    port,
    onread: {
      buffer: READ_BUFFER,
      callback: (bytes: number, buffer: Uint8Array) => {
        socket.emit("data", Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      },
    },
  }, onConnect);
  socket.setKeepAlive(true, KEEP_ALIVE_MS);
  return socket;
}

// kafkajs checksums each produced record batch with a byte-at-a-time CRC-32C: 0.4 ms for a 180 KB frame, a fifth
// of a producer's CPU. The record-batch encoder takes the function from the CommonJS module cache when kafkajs
// first produces, so putting ours in that cache entry before then swaps it (3x faster, same result; the broker
// verifies every batch's CRC, so a wrong one could not go unnoticed). If the encoder were already loaded, kafkajs'
// own function stays in use: slower, still correct.
function installCrc32c(): boolean {
  const cache = createRequire(import.meta.url).cache as Record<string, { exports: unknown } | undefined>;
  const paths = Object.keys(cache).filter((p) => p.includes("kafkajs"));
  const crcPath = paths.find((p) => /recordBatch[\\/]crc32C[\\/]index\.js$/.test(p));
  const encoderLoaded = paths.some((p) => /recordBatch[\\/]v0[\\/]index\.js$/.test(p));
  const entry = crcPath === undefined ? undefined : cache[crcPath];
  if (!entry || encoderLoaded) return false;
  entry.exports = (buffer: Uint8Array) => crc32c(buffer);
  return true;
}
/** Whether produced batches are checksummed by src/kafka/crc32c.ts (see installCrc32c). */
export const FAST_CRC32C = installCrc32c();

// Snappy as Kafka writes it: the Java client frames it the xerial way (magic header, then length-prefixed
// blocks), librdkafka and we write one raw block. Reading accepts both.
const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];

export function snappyDecompress(data: Uint8Array): Uint8Array {
  const xerial = data.length >= 16 && XERIAL_MAGIC.every((b, i) => data[i] === b);
  if (!xerial) return snappy.uncompress(data);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const parts: Uint8Array[] = [];
  let at = 16;
  while (at + 4 <= data.length) {
    const size = view.getInt32(at);
    at += 4;
    if (size < 0 || at + size > data.length) throw new SyntaxError("corrupt xerial snappy block");
    parts.push(snappy.uncompress(data.subarray(at, at + size)));
    at += size;
  }
  return Buffer.concat(parts);
}

// A Buffer over the same memory: kafkajs wants Buffers, and a 200 KB frame need not be copied to get one.
const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

CompressionCodecs[CompressionTypes.Snappy] = () => ({
  compress: (encoder: { buffer: Uint8Array }) => Promise.resolve(asBuffer(snappy.compress(encoder.buffer))),
  decompress: (buffer: Uint8Array) => Promise.resolve(asBuffer(snappyDecompress(buffer))),
});

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
} as const;

/** The codec kafkajs uses for `kafka.compression` (identity for "none"), for benchmarks that weigh them. */
export function compressionCodec(name: KafkaConfig["compression"]): {
  compress(bytes: Uint8Array): Promise<Uint8Array>;
  decompress(bytes: Uint8Array): Promise<Uint8Array>;
} {
  if (name === "none") {
    return { compress: (b) => Promise.resolve(b), decompress: (b) => Promise.resolve(b) };
  }
  const codec = (CompressionCodecs[COMPRESSION[name]] as () => {
    compress(encoder: { buffer: Buffer }): Promise<Buffer>;
    decompress(buffer: Buffer): Promise<Buffer>;
  })();
  return {
    compress: (bytes) => codec.compress({ buffer: asBuffer(bytes) }),
    decompress: (bytes) => codec.decompress(asBuffer(bytes)),
  };
}

/**
 * One line for a kafkajs log entry. kafkajs puts the reason beside the message, not in it: a failed response is
 * logged as `Response Fetch(key: 1, version: 11)` with the broker's answer in the entry's `error` field, a crash
 * passes an Error (with its own cause chain) as `error` or as the message itself, and a few entries carry a `cause`.
 * Each distinct text of those is kept, innermost last, with the protocol error code when there is one, so that the
 * line says why, e.g. `Response Metadata(key: 3, version: 6): This server does not host this topic-partition
 * (UNKNOWN_TOPIC_OR_PARTITION) (broker 127.0.0.1:9092)`.
 */
export function kafkaLogText(entry: Record<string, unknown>): string {
  const texts: string[] = [];
  const add = (value: unknown, depth = 0) => {
    if (value === undefined || value === null || value === "" || depth > 5) return;
    if (typeof value !== "object") {
      const text = String(value);
      if (!texts.some((t) => t.includes(text))) texts.push(text);
      return;
    }
    const e = value as {
      message?: unknown;
      name?: unknown;
      type?: unknown;
      cause?: unknown;
      originalError?: unknown;
    };
    let message: string;
    if (typeof e.message === "string" && e.message) message = e.message;
    else if (value instanceof Error) message = value.name;
    else message = jsonOrString(value);
    const type = typeof e.type === "string" && e.type && !message.includes(e.type) ? ` (${e.type})` : "";
    add(message + type, depth);
    add(e.originalError, depth + 1);
    add(e.cause, depth + 1);
  };
  add(entry.message);
  add(entry.error);
  add(entry.cause);
  const broker = typeof entry.broker === "string" && entry.broker ? ` (broker ${entry.broker})` : "";
  return (texts.join(": ") || "(kafkajs logged no message)") + broker;
}

function jsonOrString(value: object): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value); // a cycle
  }
}

function kafkaClient(config: KafkaConfig, log: Logger, clientSuffix: string): Kafka {
  const kafkaLog = log.child("kafkajs");
  return new Kafka({
    clientId: `${config.client_id}-${clientSuffix}`,
    brokers: config.brokers,
    connectionTimeout: config.connect_timeout_ms,
    requestTimeout: 30000,
    // kafkajs retries on its own for about 30 s by default; we keep its retries short and run our own loops with
    // clear log lines and bounded buffers around it.
    retry: { initialRetryTime: 300, retries: 5, maxRetryTime: 5000 },
    logLevel: logLevel.WARN,
    socketFactory: readBufferSocket as unknown as ISocketFactory,
    logCreator: () => (entry: LogEntry) => {
      const text = kafkaLogText(entry.log as unknown as Record<string, unknown>);
      if (entry.level <= logLevel.ERROR) kafkaLog.warn(text);
      else kafkaLog.debug(text);
    },
  });
}

/** Turns a kafkajs failure into a ServiceError that says what to do. */
export function kafkaError(config: KafkaConfig, error: unknown, doing: string): ServiceError {
  if (error instanceof ServiceError) return error;
  const text = messageOf(error);
  const brokers = config.brokers.join(",");
  const name = (error as { name?: string })?.name ?? "";
  const type = (error as { type?: string })?.type ?? "";
  if (type === "UNKNOWN_TOPIC_OR_PARTITION" || /does not host this topic/.test(text)) {
    return new ServiceError(
      "kafka",
      `topic ${config.topic} does not exist on ${brokers}: run \`deno task topic\``,
      { retriable: true, cause: error },
    );
  }
  // kafkajs wraps the broker's answer in retry errors; the innermost one says whether the broker refused the data.
  let root = error as { type?: string; originalError?: unknown; cause?: unknown } | undefined;
  for (let i = 0; i < 5 && root && (root.originalError || root.cause) && !root.type; i++) {
    root = (root.originalError ?? root.cause) as typeof root;
  }
  if (root?.type === "MESSAGE_TOO_LARGE" || root?.type === "RECORD_LIST_TOO_LARGE") {
    return new ServiceError(
      "kafka",
      `the broker refused a batch as too large (${root.type}) while ${doing}: the topic's max.message.bytes is ` +
        `below kafka.max_message_bytes; lower that key or raise the topic's limit`,
      { retriable: true, cause: error },
    );
  }
  if (root?.type === "CORRUPT_MESSAGE" || root?.type === "INVALID_RECORD") {
    return new ServiceError(
      "kafka",
      `the broker refused a batch as invalid (${root.type}) while ${doing}: ${text}`,
      { retriable: true, cause: error },
    );
  }
  if (
    /ECONNREFUSED|Connection error|connect|ENOTFOUND|Closed connection|Connection timeout/i.test(text) ||
    name === "KafkaJSNumberOfRetriesExceeded" || name === "KafkaJSConnectionError" ||
    name === "KafkaJSNonRetriableError" && /connect/i.test(text)
  ) {
    return new ServiceError(
      "kafka",
      `cannot reach the Kafka broker at ${brokers} while ${doing} (${text}): start it (\`deno task stack up\`) ` +
        `or set kafka.brokers`,
      { retriable: true, cause: error },
    );
  }
  return new ServiceError("kafka", `Kafka failed while ${doing}: ${text}`, {
    retriable: (error as { retriable?: boolean })?.retriable ?? true,
    cause: error,
  });
}

export interface TopicInfo {
  partitions: number;
  /** Partition id -> the newest offset (the next one to be written). */
  highWatermarks: Map<number, string>;
}

/** Admin tasks: topic creation and inspection. */
export interface FrameAdmin {
  /** Creates the topic when missing; returns true when it created it. */
  ensureTopic(partitions: number, maxMessageBytes: number): Promise<boolean>;
  /** Partition count and high watermarks, or null when the topic is missing. */
  describeTopic(): Promise<TopicInfo | null>;
  /** Committed offsets of a group on the topic, per partition ("-1" when none). */
  groupOffsets(groupId: string): Promise<Map<number, string>>;
  /** Deletes the topic (benchmarks clean up after themselves); nothing happens when it is missing. */
  deleteTopic(): Promise<void>;
  close(): Promise<void>;
}

export async function openAdmin(config: KafkaConfig, log: Logger): Promise<FrameAdmin> {
  const admin: Admin = kafkaClient(config, log, "admin").admin();
  try {
    await admin.connect();
  } catch (error) {
    throw kafkaError(config, error, "connecting the admin client");
  }
  const describeTopic = async (): Promise<TopicInfo | null> => {
    try {
      const topics = await admin.listTopics();
      if (!topics.includes(config.topic)) return null;
      // Right after the topic was created or the broker restarted, its partitions may have no leader for a
      // moment and the broker answers "does not host this topic-partition": wait that out (up to ~10 s).
      let offsets;
      for (let attempt = 1;; attempt++) {
        try {
          offsets = await admin.fetchTopicOffsets(config.topic);
          break;
        } catch (error) {
          const type = (error as { type?: string })?.type ?? "";
          if (
            attempt >= 20 ||
            !["UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION"].includes(type)
          ) {
            throw error;
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      return {
        partitions: offsets.length,
        highWatermarks: new Map(offsets.map((o) => [o.partition, o.high])),
      };
    } catch (error) {
      throw kafkaError(config, error, `describing topic ${config.topic}`);
    }
  };
  return {
    async ensureTopic(partitions, maxMessageBytes) {
      // Look first: asking to create an existing topic makes the broker answer with an error kafkajs logs loudly.
      if (await describeTopic()) return false;
      try {
        return await admin.createTopics({
          waitForLeaders: true,
          topics: [{
            topic: config.topic,
            numPartitions: partitions,
            replicationFactor: 1,
            configEntries: [{ name: "max.message.bytes", value: String(maxMessageBytes + 1024 * 1024) }],
          }],
        });
      } catch (error) {
        const type = (error as { type?: string })?.type ?? "";
        // Another client created it between our look and our request.
        if (type === "TOPIC_ALREADY_EXISTS") return false;
        // Right after a broker starts, it takes the creation but kafkajs' wait for partition leaders can give up
        // with "does not host this topic-partition"; wait for the topic ourselves (up to ~15 s) before failing.
        if (
          ["UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION"].includes(type)
        ) {
          for (let attempt = 0; attempt < 10; attempt++) {
            if (await describeTopic().catch(() => null)) return true;
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        throw kafkaError(config, error, `creating topic ${config.topic}`);
      }
    },
    describeTopic,
    async groupOffsets(groupId) {
      try {
        const [entry] = await admin.fetchOffsets({ groupId, topics: [config.topic] });
        return new Map((entry?.partitions ?? []).map((p) => [p.partition, p.offset]));
      } catch (error) {
        throw kafkaError(config, error, `fetching offsets of group ${groupId}`);
      }
    },
    async deleteTopic() {
      try {
        await admin.deleteTopics({ topics: [config.topic], timeout: 30000 });
      } catch (error) {
        if ((error as { type?: string })?.type === "UNKNOWN_TOPIC_OR_PARTITION") return;
        throw kafkaError(config, error, `deleting topic ${config.topic}`);
      }
    },
    close: () => admin.disconnect(),
  };
}

/** One message to publish. */
export interface OutgoingMessage {
  key: string;
  value: Uint8Array;
  /** Capture time, also used as the Kafka record timestamp. */
  timestampMs: number;
}

export interface FrameProducer {
  /** Publishes the messages; resolves once the broker acknowledged all of them. */
  send(messages: OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A kafkajs partitioner that hashes only the robot id part of the key, so one robot's frames share a partition.
 */
function robotPartitioner() {
  return ({ partitionMetadata, message }: {
    partitionMetadata: { partitionId: number }[];
    message: { key?: Buffer | string | null };
  }) => {
    const key = message.key == null ? "" : message.key.toString();
    return partitionForRobot(robotOfKey(key), partitionMetadata.length);
  };
}

export async function openProducer(config: KafkaConfig, log: Logger): Promise<FrameProducer> {
  const producer: Producer = kafkaClient(config, log, "producer").producer({
    createPartitioner: robotPartitioner,
    allowAutoTopicCreation: false,
    // One request in flight keeps a robot's frames in order across retries.
    maxInFlightRequests: 1,
  });
  try {
    await producer.connect();
  } catch (error) {
    throw kafkaError(config, error, "connecting the producer");
  }
  return {
    async send(messages) {
      try {
        await producer.send({
          topic: config.topic,
          acks: -1,
          timeout: 30000,
          compression: COMPRESSION[config.compression],
          messages: messages.map((m) => ({
            key: m.key,
            value: Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength),
            timestamp: String(m.timestampMs),
          })),
        });
      } catch (error) {
        throw kafkaError(config, error, `publishing ${messages.length} frame(s) to ${config.topic}`);
      }
    },
    close: () => producer.disconnect(),
  };
}

/** One message as the consumer sees it. */
export interface IncomingMessage {
  offset: string;
  key: string | null;
  /**
   * The record's value: valid until the handler's promise for its batch settles (the wire consumer frees fetch
   * answers then); copy it to keep it longer.
   */
  value: Uint8Array | null;
  /** Kafka record timestamp (ms). */
  timestampMs: number;
}

/** A batch of one partition, with the controls the pipeline needs. */
export interface IncomingBatch {
  topic: string;
  partition: number;
  messages: IncomingMessage[];
  /** The partition's newest offset + 1 when the batch was fetched (for lag). */
  highWatermark: string;
  /** Marks the offset as done; only done offsets are committed. */
  resolveOffset(offset: string): void;
  /** Keeps the group membership alive during long work (store retries). */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or lost the partition: stop work and do not resolve more. */
  isActive(): boolean;
  /** Commits what was resolved so far. */
  commit(): Promise<void>;
}

export interface FrameConsumer {
  /** Runs until stop(); `handle` is called with one partition's batch at a time per partition. */
  run(
    handle: (batch: IncomingBatch) => Promise<void>,
    options: { partitionsConcurrently: number },
  ): Promise<void>;
  /** Finishes in-flight batches, commits resolved offsets and leaves the group. */
  stop(): Promise<void>;
  /** Stops fetching (the group membership and the assigned partitions stay), e.g. while local storage is full. */
  pause(): void;
  /** Fetches again after pause(). */
  resume(): void;
}

export async function openConsumer(
  config: KafkaConfig,
  log: Logger,
  options: { onRebalance?: (assigned: number[]) => void } = {},
): Promise<FrameConsumer> {
  const consumer: Consumer = kafkaClient(config, log, "consumer").consumer({
    groupId: config.group_id,
    // A consumer that dies without leaving is noticed after this long; its partitions then move to the others.
    sessionTimeout: config.session_timeout_ms,
    heartbeatInterval: Math.min(3000, Math.floor(config.session_timeout_ms / 3)),
    rebalanceTimeout: 60000,
    allowAutoTopicCreation: false,
    // A fetch must be able to carry the biggest frame the topic allows, or the consumer stalls on it. One such
    // frame is also all a whole fetch needs to hold: the broker fills it from as many partitions as fit, a fleet's
    // live traffic is far below it, and a backlog is read a fetch at a time anyway. Four times as much (the old
    // setting) drained no measurably faster (bench drain) and added 60-140 MB to the consumer's peak memory.
    maxBytesPerPartition: config.max_message_bytes + 1024 * 1024,
    maxBytes: config.max_message_bytes + 1024 * 1024,
    maxWaitTimeInMs: 250,
    retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 5000 },
  });
  const kafkaLog = log.child("kafka");
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    const assigned = event.payload.memberAssignment[config.topic] ?? [];
    kafkaLog.info(
      `joined group ${config.group_id}; partitions of ${config.topic}: ${assigned.join(", ") || "none"}`,
    );
    options.onRebalance?.(assigned);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    kafkaLog.warn(`consumer crashed (${messageOf(event.payload.error)}); restart: ${event.payload.restart}`);
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [config.topic], fromBeginning: true });
  } catch (error) {
    throw kafkaError(config, error, "connecting the consumer");
  }
  return {
    async run(handle, runOptions) {
      await consumer.run({
        autoCommit: true,
        autoCommitInterval: 1000,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: runOptions.partitionsConcurrently,
        eachBatch: async (payload: EachBatchPayload) => {
          const { batch } = payload;
          await handle({
            topic: batch.topic,
            partition: batch.partition,
            messages: batch.messages.map((m) => ({
              offset: m.offset,
              key: m.key ? m.key.toString() : null,
              value: m.value,
              timestampMs: Number(m.timestamp),
            })),
            resolveOffset: payload.resolveOffset,
            heartbeat: payload.heartbeat,
            highWatermark: batch.highWatermark,
            isActive: () => payload.isRunning() && !payload.isStale(),
            commit: () => payload.commitOffsetsIfNecessary(),
          });
        },
      });
    },
    stop: () => consumer.disconnect(),
    pause: () => consumer.pause([{ topic: config.topic }]),
    resume: () => consumer.resume([{ topic: config.topic }]),
  };
}
