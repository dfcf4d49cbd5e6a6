/**
 * The producer's own Kafka client: the part of the Kafka protocol a camera producer needs (ApiVersions, Metadata,
 * Produce with acks=all, record batches v2) over plain TCP, behind the same `FrameProducer` interface as the
 * kafkajs producer in src/kafka/client.ts.
 *
 * Why not kafkajs here: the producer runs on the robot, beside the robot's own software, so its cost is the
 * robot's. kafkajs copies each frame four to five times into power-of-two buffers (zero-filled) on its way to the
 * socket and loads ~700 KB of JavaScript; with it a producer at 10 fps of full-HD frames used ~1.9 ms of CPU per
 * frame and ~130 MB of memory, against ~0.6 ms and ~65 MB for reading the camera alone (bench/producer.ts). Here a
 * frame is never copied: a request is a list of byte ranges (a small header buffer, the frame as the camera reader
 * produced it, a one-byte trailer) written to the socket one after the other, and the record batch checksum is
 * computed over those ranges.
 *
 * Guarantees, as with kafkajs: a send resolves only when the partition leader and its in-sync replicas have the
 * batch (acks=all); a failure rejects with a ServiceError saying what to do, and the caller's loop retries (the
 * producer queue is bounded, src/ingest/producer.ts). A lost connection is opened again by the next send; after
 * a "not the leader" answer or a lost connection the topic's metadata is read again, so a leader change or a
 * broker restart heals by itself. Frames go to the partition `partitionForRobot` picks from the key's robot id,
 * as the kafkajs producer's partitioner does, so both producers put a robot on the same partition.
 *
 * The protocol pieces (requests, answers, the broker connection) live in src/kafka/wire_protocol.ts, shared with
 * the wire consumer (src/kafka/wire_consumer.ts).
 */
import { concatBytes } from "../bytes.ts";
import type { Config } from "../config.ts";
import { messageOf, ServiceError } from "../errors.ts";
import type { FrameProducer, OutgoingMessage } from "../kafka/client.ts";
import { partitionForRobot, robotOfKey } from "../kafka/partitioner.ts";
import {
  API_METADATA,
  API_PRODUCE,
  brokerAddress,
  BrokerConnection,
  BrokerError,
  type Connect,
  KAFKA_ERRORS,
  METADATA_VERSIONS,
  REQUEST_TIMEOUT_MS,
  requestMetadata,
  RequestWriter,
  type ResponseReader,
  tcpConnect,
  varintBytes,
} from "../kafka/wire_protocol.ts";
import type { Logger } from "../log.ts";

// The protocol pieces moved to src/kafka/wire_protocol.ts (the wire consumer shares them); re-exported for the
// code and tests that import them from here.
export {
  BrokerConnection,
  BrokerError,
  type Connect,
  KAFKA_ERRORS,
  RequestWriter,
  ResponseReader,
  type Socket,
} from "../kafka/wire_protocol.ts";

type KafkaConfig = Config["kafka"];

/** Produce v3..v7 share one request layout and add only fields we skip in the answer; v3 is Kafka 0.11. */
const PRODUCE_VERSIONS = [3, 7] as const;
/** Metadata v4 can refuse auto-creating the topic; v1 is the fallback for brokers without it. */
/** Errors after which the partition's leader may be another broker now: metadata is read again. */
const LEADER_MOVED = new Set([3, 5, 6, 13, 74, 75]);

const COMPRESSION_CODES = { none: 0, gzip: 1, snappy: 2 } as const;

const encoder = new TextEncoder();

/** Appends one record batch (magic 2) of `messages` to the request; returns nothing, patches its own lengths. */
export async function writeRecordBatch(
  w: RequestWriter,
  messages: OutgoingMessage[],
  compression: KafkaConfig["compression"],
): Promise<void> {
  const first = messages[0].timestampMs;
  let max = first;
  for (const m of messages) max = Math.max(max, m.timestampMs);
  const sizeAt = w.here;
  w.int32(0); // the records' byte length, patched below
  const batchStart = w.offset;
  w.int64(0); // baseOffset: the broker assigns offsets
  const lengthAt = w.here;
  w.int32(0); // batchLength, patched below
  const lengthFrom = w.offset;
  w.int32(-1); // partitionLeaderEpoch
  w.int8(2); // magic
  const crcAt = w.here;
  w.int32(0); // crc, patched below
  const crcFrom = w.offset;
  w.int16(COMPRESSION_CODES[compression]); // attributes: codec, create time, not transactional
  w.int32(messages.length - 1); // lastOffsetDelta
  w.int64(first);
  w.int64(max);
  w.int64(-1); // producerId: not idempotent, as the kafkajs producer
  w.int16(-1); // producerEpoch
  w.int32(-1); // baseSequence
  w.int32(messages.length);
  if (compression === "none") {
    writeRecords(w, messages, first);
  } else {
    // Compressed records are one block; JPEG frames do not shrink, so this path copies and nobody minds.
    const plain = new RequestWriter();
    writeRecords(plain, messages, first);
    w.attach(await compress(compression, concatBytes(plain.parts())));
  }
  w.patch32(lengthAt, w.offset - lengthFrom);
  w.patch32(crcAt, w.crcFrom(crcFrom), true);
  w.patch32(sizeAt, w.offset - batchStart);
}

function writeRecords(w: RequestWriter, messages: OutgoingMessage[], firstTimestamp: number): void {
  messages.forEach((m, i) => {
    const key = encoder.encode(m.key);
    const delta = m.timestampMs - firstTimestamp;
    const body = 1 + varintBytes(delta) + varintBytes(i) + varintBytes(key.length) + key.length +
      varintBytes(m.value.length) + m.value.length + 1;
    w.varint(body).int8(0).varint(delta).varint(i).varint(key.length).raw(key).varint(m.value.length);
    w.attach(m.value);
    w.varint(0); // no headers
  });
}

/** gzip and snappy are loaded only when configured: a producer sending JPEGs uncompressed never loads them. */
async function compress(codec: "gzip" | "snappy", bytes: Uint8Array): Promise<Uint8Array> {
  if (codec === "gzip") return (await import("node:zlib")).gzipSync(bytes);
  // One raw snappy block, as src/kafka/client.ts writes it (and as librdkafka does); brokers accept both framings.
  const snappy = (await import("snappyjs")).default as { compress(b: Uint8Array): Uint8Array };
  return snappy.compress(bytes);
}

interface PartitionInfo {
  partition: number;
  leader: number;
  error: number;
}

interface TopicMetadata {
  brokers: Map<number, { host: string; port: number }>;
  /** Null when the broker says the topic does not exist. */
  partitions: PartitionInfo[] | null;
  /** The topic-level error code (0 when fine). */
  error: number;
}

export interface WireProducerOptions {
  /** Opens a socket; Deno.connect by default (tests pass a fake broker's). */
  connect?: Connect;
  /** How long a request may wait for its answer before the connection is given up; 30 s by default. */
  requestTimeoutMs?: number;
}

/** A producer for `config.topic` that speaks the Kafka protocol itself (see the module comment). */
export class WireProducer implements FrameProducer {
  readonly #config: KafkaConfig;
  readonly #log: Logger;
  readonly #connect: Connect;
  readonly #clientId: string;
  readonly #requestTimeoutMs: number;
  readonly #connections = new Map<string, Promise<BrokerConnection>>();
  #metadata: TopicMetadata | null = null;
  #closed = false;

  constructor(config: KafkaConfig, log: Logger, options: WireProducerOptions = {}) {
    this.#config = config;
    this.#log = log.child("kafka");
    this.#connect = options.connect ?? tcpConnect;
    this.#clientId = `${config.client_id}-producer`;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  }

  /** A connection to `host:port`, opened (and its versions learned) on first use and after it broke. */
  async #connection(host: string, port: number): Promise<BrokerConnection> {
    const where = `${host}:${port}`;
    let pending = this.#connections.get(where);
    if (pending) {
      const conn = await pending.catch(() => null);
      if (conn && !conn.closed) return conn;
      if (this.#connections.get(where) === pending) this.#connections.delete(where);
    }
    pending = BrokerConnection.open(
      host,
      port,
      this.#clientId,
      this.#config.connect_timeout_ms,
      this.#connect,
      this.#requestTimeoutMs,
    );
    this.#connections.set(where, pending);
    pending.catch(() => {
      if (this.#connections.get(where) === pending) this.#connections.delete(where);
    });
    return await pending;
  }

  /** The topic's partitions and leaders, from the first bootstrap broker that answers. */
  async #readMetadata(): Promise<TopicMetadata> {
    let last: unknown = null;
    // Known brokers first (they are the cluster's current view), then the configured bootstrap list.
    const known = [...(this.#metadata?.brokers.values() ?? [])].map((b) => `${b.host}:${b.port}`);
    for (const address of [...new Set([...known, ...this.#config.brokers])]) {
      const { host, port } = brokerAddress(address);
      try {
        const conn = await this.#connection(host, port);
        return await this.#metadataFrom(conn);
      } catch (error) {
        last = error;
      }
    }
    throw last ?? new Error("kafka.brokers is empty");
  }

  async #metadataFrom(conn: BrokerConnection): Promise<TopicMetadata> {
    const version = conn.version(API_METADATA, METADATA_VERSIONS);
    if (version === null) throw this.#tooOld(conn, "Metadata v1");
    const { brokers, topic } = await requestMetadata(conn, version, this.#config.topic);
    if (!topic || topic.error === 3) return { brokers, partitions: null, error: topic?.error ?? 3 };
    return {
      brokers,
      partitions: topic.partitions.sort((a, b) => a.partition - b.partition),
      error: topic.error,
    };
  }

  #tooOld(conn: BrokerConnection, what: string): ServiceError {
    return new ServiceError(
      "kafka",
      `the Kafka broker at ${conn.where} does not serve ${what}: frame-bucket needs Kafka 0.11 or newer`,
      { retriable: false },
    );
  }

  /** The topic's partition count, or null when it does not exist (fresh metadata, for start-up and /healthz). */
  async topic(): Promise<{ partitions: number } | null> {
    try {
      this.#metadata = await this.#readMetadata();
    } catch (error) {
      throw this.#failure(error, `reading the metadata of topic ${this.#config.topic}`);
    }
    const p = this.#metadata.partitions;
    return p === null || p.length === 0 ? null : { partitions: p.length };
  }

  /** Connects to a bootstrap broker and reads the topic's metadata, so that an unreachable broker shows at start. */
  async connect(): Promise<void> {
    await this.topic();
  }

  async send(messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    if (this.#closed) {
      throw new ServiceError("kafka", "the producer is closed", { retriable: false });
    }
    const doing = `publishing ${messages.length} frame(s) to ${this.#config.topic}`;
    // One more try at once after a leader move: kafkajs did the same, and a leader election is not an outage.
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#sendOnce(messages);
      } catch (error) {
        const moved = error instanceof BrokerError && LEADER_MOVED.has(error.code);
        if (moved || !(error instanceof BrokerError)) this.#metadata = null;
        if (!moved || attempt >= 2) throw this.#failure(error, doing);
        this.#log.debug(`${messageOf(error)}; reading the metadata again and retrying`);
      }
    }
  }

  async #sendOnce(messages: OutgoingMessage[]): Promise<void> {
    this.#metadata ??= await this.#readMetadata();
    const meta = this.#metadata;
    if (meta.partitions === null || meta.partitions.length === 0) throw new BrokerError(3, "topic");
    // Group by partition, then by leader: one request per broker, as few batches as partitions.
    const byLeader = new Map<number, Map<number, OutgoingMessage[]>>();
    for (const m of messages) {
      const info = meta.partitions[partitionForRobot(robotOfKey(m.key), meta.partitions.length)];
      if (info.leader < 0) throw new BrokerError(5, `partition ${info.partition}`);
      const partitions = byLeader.get(info.leader) ?? new Map<number, OutgoingMessage[]>();
      byLeader.set(info.leader, partitions);
      const list = partitions.get(info.partition) ?? [];
      partitions.set(info.partition, list);
      list.push(m);
    }
    await Promise.all([...byLeader].map(async ([leader, partitions]) => {
      const broker = meta.brokers.get(leader);
      if (!broker) throw new BrokerError(5, `broker ${leader}`);
      const conn = await this.#connection(broker.host, broker.port);
      const version = conn.version(API_PRODUCE, PRODUCE_VERSIONS);
      if (version === null) throw this.#tooOld(conn, "Produce v3 (record batches v2)");
      const r = await conn.request(API_PRODUCE, version, async (w) => {
        w.int16(-1); // transactional_id: null
        w.int16(-1); // acks: all in-sync replicas
        w.int32(REQUEST_TIMEOUT_MS);
        w.int32(1).string(this.#config.topic);
        w.int32(partitions.size);
        for (const [partition, list] of partitions) {
          w.int32(partition);
          await writeRecordBatch(w, list, this.#config.compression);
        }
      });
      for (const topic of r.array(() => ({ name: r.string(), partitions: this.#readProduced(r, version) }))) {
        for (const p of topic.partitions) {
          if (p.error !== 0) throw new BrokerError(p.error, `partition ${p.partition} on ${conn.where}`);
        }
      }
    }));
  }

  #readProduced(r: ResponseReader, version: number): { partition: number; error: number }[] {
    return r.array(() => {
      const p = { partition: r.int32(), error: r.int16() };
      r.int64(); // base_offset
      r.int64(); // log_append_time_ms
      if (version >= 5) r.int64(); // log_start_offset
      return p;
    });
  }

  /** A failure as a ServiceError that says what to do (the texts of src/kafka/client.ts's kafkaError). */
  #failure(error: unknown, doing: string): ServiceError {
    if (error instanceof ServiceError) return error;
    const brokers = this.#config.brokers.join(",");
    if (error instanceof BrokerError) {
      if (error.code === 3) {
        return new ServiceError(
          "kafka",
          `topic ${this.#config.topic} does not exist on ${brokers}: run \`deno task topic\``,
          { retriable: true, cause: error },
        );
      }
      if (error.code === 10 || error.code === 18) {
        return new ServiceError(
          "kafka",
          `the broker refused a batch as too large (${
            KAFKA_ERRORS[error.code]
          }) while ${doing}: the topic's ` +
            `max.message.bytes is below kafka.max_message_bytes; lower that key or raise the topic's limit`,
          { retriable: true, cause: error },
        );
      }
      if (error.code === 2 || error.code === 87) {
        return new ServiceError(
          "kafka",
          `the broker refused a batch as invalid (${
            KAFKA_ERRORS[error.code]
          }) while ${doing}: ${error.message}`,
          { retriable: true, cause: error },
        );
      }
      return new ServiceError("kafka", `Kafka failed while ${doing}: ${error.message}`, {
        retriable: true,
        cause: error,
      });
    }
    const text = messageOf(error);
    return new ServiceError(
      "kafka",
      `cannot reach the Kafka broker at ${brokers} while ${doing} (${text}): start it (\`deno task stack up\`) ` +
        `or set kafka.brokers`,
      { retriable: true, cause: error },
    );
  }

  close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#connections.values()];
    this.#connections.clear();
    return Promise.all(all.map((p) => p.then((c) => c.close(), () => {}))).then(() => {});
  }
}
