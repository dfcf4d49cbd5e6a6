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
 * computed over those ranges. The consumer keeps kafkajs (fetching, groups, rebalances are a different matter).
 *
 * Guarantees, as with kafkajs: a send resolves only when the partition leader and its in-sync replicas have the
 * batch (acks=all); a failure rejects with a ServiceError saying what to do, and the caller's loop retries (the
 * producer queue is bounded, src/ingest/producer.ts). A lost connection is opened again by the next send; after
 * a "not the leader" answer or a lost connection the topic's metadata is read again, so a leader change or a
 * broker restart heals by itself. Frames go to the partition `partitionForRobot` picks from the key's robot id,
 * as the kafkajs producer's partitioner does, so both producers put a robot on the same partition.
 */
import { concatBytes } from "../bytes.ts";
import type { Config } from "../config.ts";
import { messageOf, ServiceError } from "../errors.ts";
import type { FrameProducer, OutgoingMessage } from "../kafka/client.ts";
import { crc32c } from "../kafka/crc32c.ts";
import { partitionForRobot, robotOfKey } from "../kafka/partitioner.ts";
import type { Logger } from "../log.ts";

type KafkaConfig = Config["kafka"];

const API_PRODUCE = 0;
const API_METADATA = 3;
const API_VERSIONS = 18;
/** Produce v3..v7 share one request layout and add only fields we skip in the answer; v3 is Kafka 0.11. */
const PRODUCE_VERSIONS = [3, 7] as const;
/** Metadata v4 can refuse auto-creating the topic; v1 is the fallback for brokers without it. */
const METADATA_VERSIONS = [1, 4] as const;
const REQUEST_TIMEOUT_MS = 30_000;
/** Answers larger than this are a broken stream, not an answer to anything we ask. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Names of the broker error codes a producer meets (the rest are reported by number). */
export const KAFKA_ERRORS: Record<number, string> = {
  [-1]: "UNKNOWN_SERVER_ERROR",
  2: "CORRUPT_MESSAGE",
  3: "UNKNOWN_TOPIC_OR_PARTITION",
  5: "LEADER_NOT_AVAILABLE",
  6: "NOT_LEADER_OR_FOLLOWER",
  7: "REQUEST_TIMED_OUT",
  10: "MESSAGE_TOO_LARGE",
  13: "NETWORK_EXCEPTION",
  17: "INVALID_TOPIC_EXCEPTION",
  18: "RECORD_LIST_TOO_LARGE",
  19: "NOT_ENOUGH_REPLICAS",
  20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
  29: "TOPIC_AUTHORIZATION_FAILED",
  35: "UNSUPPORTED_VERSION",
  74: "FENCED_LEADER_EPOCH",
  75: "UNKNOWN_LEADER_EPOCH",
  76: "UNSUPPORTED_COMPRESSION_TYPE",
  87: "INVALID_RECORD",
};
/** Errors after which the partition's leader may be another broker now: metadata is read again. */
const LEADER_MOVED = new Set([3, 5, 6, 13, 74, 75]);

const COMPRESSION_CODES = { none: 0, gzip: 1, snappy: 2 } as const;

const encoder = new TextEncoder();

/** A broker's error code as `NAME (code)`. */
function errorName(code: number): string {
  return `${KAFKA_ERRORS[code] ?? "error"} (${code})`;
}

/**
 * A request under construction: fields are written into a small growable buffer; `attach` puts a caller's bytes
 * (a frame) between two stretches of that buffer without copying them. `parts()` gives the byte ranges to write,
 * in order.
 */
export class RequestWriter {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;
  #mark = 0;
  #external = 0;
  readonly #parts: ({ from: number; to: number } | Uint8Array)[] = [];

  /** Bytes written so far, attached ones included: the position of the next byte in the request. */
  get offset(): number {
    return this.#pos + this.#external;
  }

  /** Position of the next byte in the writer's own buffer, for `patch32`. */
  get here(): number {
    return this.#pos;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  int8(n: number): this {
    this.#ensure(1);
    this.#view.setInt8(this.#pos, n);
    this.#pos += 1;
    return this;
  }

  int16(n: number): this {
    this.#ensure(2);
    this.#view.setInt16(this.#pos, n);
    this.#pos += 2;
    return this;
  }

  int32(n: number): this {
    this.#ensure(4);
    this.#view.setInt32(this.#pos, n);
    this.#pos += 4;
    return this;
  }

  /** A signed 64-bit integer from a safe JavaScript integer (timestamps, -1), without a BigInt per call. */
  int64(n: number): this {
    this.#ensure(8);
    this.#view.setInt32(this.#pos, Math.floor(n / 0x1_0000_0000));
    this.#view.setUint32(this.#pos + 4, n >>> 0);
    this.#pos += 8;
    return this;
  }

  /** A zigzag varint (Kafka's varint and varlong), for any safe integer. */
  varint(n: number): this {
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    this.#ensure(10);
    while (z >= 0x80) {
      this.#buf[this.#pos++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    this.#buf[this.#pos++] = z;
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
    return this;
  }

  /** A Kafka STRING (int16 length), or null as length -1. */
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const bytes = encoder.encode(s);
    return this.int16(bytes.length).raw(bytes);
  }

  /** Places `bytes` next in the request without copying them; they must not change until the request is sent. */
  attach(bytes: Uint8Array): this {
    if (bytes.length === 0) return this;
    this.#parts.push({ from: this.#mark, to: this.#pos });
    this.#parts.push(bytes);
    this.#mark = this.#pos;
    this.#external += bytes.length;
    return this;
  }

  /** Overwrites the 32-bit integer at buffer position `at` (a length or checksum written before it was known). */
  patch32(at: number, n: number, unsigned = false): void {
    if (unsigned) this.#view.setUint32(at, n);
    else this.#view.setInt32(at, n);
  }

  /** The request as byte ranges in order. */
  parts(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const p of [...this.#parts, { from: this.#mark, to: this.#pos }]) {
      if (p instanceof Uint8Array) out.push(p);
      else if (p.to > p.from) out.push(this.#buf.subarray(p.from, p.to));
    }
    return out;
  }

  /** CRC-32C of the request's bytes from `offset` (a value of `this.offset`) to the end. */
  crcFrom(offset: number): number {
    let crc = 0;
    let at = 0;
    for (const part of this.parts()) {
      const end = at + part.length;
      if (end > offset) crc = crc32c(at >= offset ? part : part.subarray(offset - at), crc);
      at = end;
    }
    return crc;
  }
}

/** Bytes of a zigzag varint. */
function varintBytes(n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 0x80);
    size++;
  }
  return size;
}

/** Reads a broker's answer. Throws SyntaxError when it ends early. */
export class ResponseReader {
  #at = 0;
  readonly #view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(n: number): number {
    const at = this.#at;
    if (at + n > this.bytes.length) {
      throw new SyntaxError(`Kafka answer ends after ${this.bytes.length} bytes, expected more at ${at}`);
    }
    this.#at += n;
    return at;
  }

  int8(): number {
    return this.#view.getInt8(this.#need(1));
  }

  int16(): number {
    return this.#view.getInt16(this.#need(2));
  }

  int32(): number {
    return this.#view.getInt32(this.#need(4));
  }

  int64(): number {
    const at = this.#need(8);
    return this.#view.getInt32(at) * 0x1_0000_0000 + this.#view.getUint32(at + 4);
  }

  string(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    return new TextDecoder().decode(this.take(n));
  }

  /** The next `n` bytes, as a view. */
  take(n: number): Uint8Array {
    const at = this.#need(n);
    return this.bytes.subarray(at, at + n);
  }

  /** An ARRAY: its length, then `item` for each element. */
  array<T>(item: () => T): T[] {
    const n = this.int32();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
}

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

/** What a connection needs from a socket; Deno.TcpConn, or a stand-in in tests. */
export type Socket = Pick<Deno.Conn, "read" | "write" | "close">;

export type Connect = (host: string, port: number) => Promise<Socket>;

const tcpConnect: Connect = async (hostname, port) => {
  const conn = await Deno.connect({ hostname, port });
  // A request goes out as several writes (header, frame, trailer); without this the last one waits for an ACK.
  conn.setNoDelay(true);
  return conn;
};

/** One broker connection: requests in order, answers matched by correlation id. */
export class BrokerConnection {
  #socket: Socket;
  #nextId = 1;
  #pending = new Map<number, {
    resolve: (r: ResponseReader) => void;
    reject: (e: Error) => void;
    /** performance.now() by which the answer must have come. */
    deadline: number;
  }>();
  /** One timer for every request's deadline (not one per request: a frame costs a timer less). */
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed: Error | null = null;
  readonly #clientId: Uint8Array;
  /** Highest version of each API the broker serves (after `negotiate`). */
  versions = new Map<number, [number, number]>();

  private constructor(
    socket: Socket,
    readonly where: string,
    clientId: string,
    private readonly requestTimeoutMs: number,
  ) {
    this.#socket = socket;
    this.#clientId = encoder.encode(clientId);
    void this.#readLoop();
  }

  static async open(
    host: string,
    port: number,
    clientId: string,
    timeoutMs: number,
    connect: Connect = tcpConnect,
    requestTimeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<BrokerConnection> {
    const where = `${host}:${port}`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const socket = await Promise.race([
      connect(host, port),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Connection timeout after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const conn = new BrokerConnection(socket, where, clientId, requestTimeoutMs);
    try {
      await conn.#negotiate();
    } catch (error) {
      conn.close();
      throw error;
    }
    return conn;
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Learns which API versions the broker serves (ApiVersions v0, which every broker since 0.10 answers). */
  async #negotiate(): Promise<void> {
    const r = await this.request(API_VERSIONS, 0, () => {});
    const code = r.int16();
    const apis = r.array(() => [r.int16(), r.int16(), r.int16()] as const);
    if (code !== 0) throw new Error(`ApiVersions refused: ${errorName(code)}`);
    for (const [key, min, max] of apis) this.versions.set(key, [min, max]);
  }

  /** The highest version of `api` in [lo, hi] the broker serves, or null. */
  version(api: number, [lo, hi]: readonly [number, number]): number | null {
    const range = this.versions.get(api);
    if (!range) return null;
    const v = Math.min(hi, range[1]);
    return v >= lo && v >= range[0] ? v : null;
  }

  /** Sends a request (header v1 and the body `build` writes) and resolves with its answer after the header. */
  async request(
    api: number,
    version: number,
    build: (w: RequestWriter) => void | Promise<void>,
  ): Promise<ResponseReader> {
    if (this.#closed) throw this.#closed;
    const id = this.#nextId++;
    if (this.#nextId > 0x7fffffff) this.#nextId = 1;
    const w = new RequestWriter();
    w.int32(0); // size, patched below
    w.int16(api).int16(version).int32(id).int16(this.#clientId.length).raw(this.#clientId);
    await build(w);
    w.patch32(0, w.offset - 4);
    const answer = new Promise<ResponseReader>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline: performance.now() + this.requestTimeoutMs });
    });
    this.#watch(this.requestTimeoutMs);
    const parts = w.parts();
    this.#writing = this.#writing.then(async () => {
      if (this.#closed) return;
      try {
        for (const part of parts) {
          for (let at = 0; at < part.length;) at += await this.#socket.write(part.subarray(at));
        }
      } catch (error) {
        this.#fail(new Error(`Connection error: writing to ${this.where} failed: ${messageOf(error)}`));
      }
    });
    return await answer;
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(64 * 1024);
    let filled = 0;
    try {
      while (true) {
        if (filled === buf.length) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await this.#socket.read(buf.subarray(filled));
        if (n === null) throw new Error(`Closed connection: ${this.where} closed it`);
        filled += n;
        let at = 0;
        while (filled - at >= 4) {
          const size = new DataView(buf.buffer, at, 4).getInt32(0);
          if (size < 4 || size > MAX_RESPONSE_BYTES) {
            throw new Error(`${this.where} sent an answer of ${size} bytes: not the Kafka protocol`);
          }
          if (filled - at < 4 + size) {
            if (4 + size > buf.length) {
              const bigger = new Uint8Array(4 + size);
              bigger.set(buf.subarray(at, filled));
              buf = bigger;
              filled -= at;
              at = 0;
            }
            break;
          }
          const answer = buf.slice(at + 4, at + 4 + size);
          at += 4 + size;
          const id = new DataView(answer.buffer).getInt32(0);
          const waiter = this.#pending.get(id);
          if (!waiter) throw new Error(`${this.where} answered request ${id}, which nobody asked`);
          this.#pending.delete(id);
          waiter.resolve(new ResponseReader(answer.subarray(4)));
        }
        if (at > 0) {
          buf.copyWithin(0, at, filled);
          filled -= at;
        }
      }
    } catch (error) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Arms the deadline timer unless it runs: when it fires it fails the connection if a request is overdue (its
   * state is unknown then), else waits for the next deadline. Requests answered in time cost no timer of their own.
   */
  #watch(ms: number): void {
    if (this.#watchdog !== undefined || this.#closed) return;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      let next = Infinity;
      for (const waiter of this.#pending.values()) next = Math.min(next, waiter.deadline);
      if (next === Infinity) return;
      const left = next - performance.now();
      if (left > 0) return this.#watch(left);
      this.#fail(new Error(`no answer from ${this.where} within ${this.requestTimeoutMs / 1000} s`));
    }, ms);
  }

  /** Closes the connection for good, rejecting every request still waiting with `error`. */
  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    for (const [id, waiter] of this.#pending) {
      waiter.reject(error);
      this.#pending.delete(id);
    }
  }

  close(): void {
    this.#fail(new Error(`Closed connection: the producer closed its connection to ${this.where}`));
  }
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
      const colon = address.lastIndexOf(":");
      const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
      const port = Number(address.slice(colon + 1));
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
    const r = await conn.request(API_METADATA, version, (w) => {
      w.int32(1).string(this.#config.topic);
      if (version >= 4) w.int8(0); // allow_auto_topic_creation: false, as the kafkajs producer
    });
    if (version >= 3) r.int32(); // throttle_time_ms
    const brokers = new Map<number, { host: string; port: number }>();
    for (
      const b of r.array(() => ({ id: r.int32(), host: r.string() ?? "", port: r.int32(), rack: r.string() }))
    ) {
      brokers.set(b.id, { host: b.host, port: b.port });
    }
    if (version >= 2) r.string(); // cluster_id
    r.int32(); // controller_id
    const topics = r.array(() => {
      const error = r.int16();
      const name = r.string();
      r.int8(); // is_internal
      const partitions = r.array(() => {
        const p = { error: r.int16(), partition: r.int32(), leader: r.int32() };
        r.array(() => r.int32()); // replicas
        r.array(() => r.int32()); // in-sync replicas
        return p;
      });
      return { error, name, partitions };
    });
    const topic = topics.find((t) => t.name === this.#config.topic);
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

/** An error code a broker answered with. */
export class BrokerError extends Error {
  constructor(readonly code: number, where: string) {
    super(`the broker answered ${errorName(code)} for ${where}`);
    this.name = "BrokerError";
  }
}
