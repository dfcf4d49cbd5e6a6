/**
 * The Kafka protocol pieces frame-bucket's own clients share: the wire producer (src/ingest/kafka_wire.ts) and the
 * wire consumer (src/kafka/wire_consumer.ts). Requests are written with `RequestWriter` (a frame is attached, not
 * copied), answers read with `ResponseReader` (views into the answer's buffer), and `BrokerConnection` sends
 * requests in order over one TCP connection and matches answers by correlation id. Only non-flexible request
 * versions are used (no tagged fields), which every Kafka broker from 0.11 to 4.x serves for the APIs we need.
 */
import { messageOf, ServiceError } from "../errors.ts";
import { crc32c } from "./crc32c.ts";

export const API_PRODUCE = 0;
export const API_FETCH = 1;
export const API_LIST_OFFSETS = 2;
export const API_METADATA = 3;
export const API_OFFSET_COMMIT = 8;
export const API_OFFSET_FETCH = 9;
export const API_FIND_COORDINATOR = 10;
export const API_JOIN_GROUP = 11;
export const API_HEARTBEAT = 12;
export const API_LEAVE_GROUP = 13;
export const API_SYNC_GROUP = 14;
export const API_VERSIONS = 18;
/** How long a request waits for its answer by default before the connection is given up. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Answers larger than this are a broken stream, not an answer to anything we ask. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Names of the broker error codes our clients meet (the rest are reported by number). */
export const KAFKA_ERRORS: Record<number, string> = {
  [-1]: "UNKNOWN_SERVER_ERROR",
  1: "OFFSET_OUT_OF_RANGE",
  2: "CORRUPT_MESSAGE",
  3: "UNKNOWN_TOPIC_OR_PARTITION",
  5: "LEADER_NOT_AVAILABLE",
  6: "NOT_LEADER_OR_FOLLOWER",
  7: "REQUEST_TIMED_OUT",
  10: "MESSAGE_TOO_LARGE",
  13: "NETWORK_EXCEPTION",
  14: "COORDINATOR_LOAD_IN_PROGRESS",
  15: "COORDINATOR_NOT_AVAILABLE",
  16: "NOT_COORDINATOR",
  17: "INVALID_TOPIC_EXCEPTION",
  18: "RECORD_LIST_TOO_LARGE",
  19: "NOT_ENOUGH_REPLICAS",
  20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
  22: "ILLEGAL_GENERATION",
  23: "INCONSISTENT_GROUP_PROTOCOL",
  24: "INVALID_GROUP_ID",
  25: "UNKNOWN_MEMBER_ID",
  26: "INVALID_SESSION_TIMEOUT",
  27: "REBALANCE_IN_PROGRESS",
  28: "INVALID_COMMIT_OFFSET_SIZE",
  29: "TOPIC_AUTHORIZATION_FAILED",
  30: "GROUP_AUTHORIZATION_FAILED",
  35: "UNSUPPORTED_VERSION",
  74: "FENCED_LEADER_EPOCH",
  75: "UNKNOWN_LEADER_EPOCH",
  76: "UNSUPPORTED_COMPRESSION_TYPE",
  79: "MEMBER_ID_REQUIRED",
  82: "FENCED_INSTANCE_ID",
  87: "INVALID_RECORD",
  100: "UNKNOWN_TOPIC_ID",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A broker's error code as `NAME (code)`. */
export function errorName(code: number): string {
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
export function varintBytes(n: number): number {
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
    return decoder.decode(this.take(n));
  }

  /** The next `n` bytes, as a view. */
  take(n: number): Uint8Array {
    const at = this.#need(n);
    return this.bytes.subarray(at, at + n);
  }

  /** Position of the next byte to read. */
  get at(): number {
    return this.#at;
  }

  /** Bytes left to read. */
  get left(): number {
    return this.bytes.length - this.#at;
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    this.#need(n);
  }

  /** Kafka BYTES (int32 length, -1 for null), as a view. */
  bytesField(): Uint8Array | null {
    const n = this.int32();
    return n < 0 ? null : this.take(n);
  }

  /** A zigzag varint (Kafka's varint and varlong), as a safe integer. */
  varint(): number {
    let z = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.bytes[this.#need(1)];
      z += (b & 0x7f) * scale;
      if (b < 0x80) return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      scale *= 0x80;
    }
    throw new SyntaxError(`Kafka answer has a varint longer than 10 bytes at ${this.#at - 10}`);
  }

  /** An ARRAY: its length, then `item` for each element. */
  array<T>(item: () => T): T[] {
    const n = this.int32();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
}

/** What a connection needs from a socket; Deno.TcpConn, or a stand-in in tests. */
export type Socket = Pick<Deno.Conn, "read" | "write" | "close">;

export type Connect = (host: string, port: number) => Promise<Socket>;

export const tcpConnect: Connect = async (hostname, port) => {
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

  /**
   * Reads answers. Small answers are read together into one scratch buffer and copied out (the scratch is reused);
   * an answer that does not fit in what was read gets one buffer of its announced size, takes the bytes already
   * read, and the socket then reads straight into it, so a multi-MiB fetch answer is copied once at most and never
   * re-grown. The answer's buffer is the caller's: readers keep views of it (fetched record values).
   */
  async #readLoop(): Promise<void> {
    const scratch = new Uint8Array(64 * 1024);
    const view = new DataView(scratch.buffer);
    let filled = 0;
    try {
      while (true) {
        const n = await this.#socket.read(scratch.subarray(filled));
        if (n === null) throw new Error(`Closed connection: ${this.where} closed it`);
        filled += n;
        let at = 0;
        while (filled - at >= 4) {
          const size = view.getInt32(at);
          if (size < 4 || size > MAX_RESPONSE_BYTES) {
            throw new Error(`${this.where} sent an answer of ${size} bytes: not the Kafka protocol`);
          }
          const answer = new Uint8Array(size);
          const have = Math.min(size, filled - at - 4);
          answer.set(scratch.subarray(at + 4, at + 4 + have));
          at += 4 + have;
          for (let got = have; got < size;) {
            const m = await this.#socket.read(answer.subarray(got));
            if (m === null) throw new Error(`Closed connection: ${this.where} closed it`);
            got += m;
          }
          this.#deliver(answer);
        }
        // Less than a size field left: keep it at the start for the next read.
        scratch.copyWithin(0, at, filled);
        filled -= at;
      }
    } catch (error) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Hands an answer (correlation id first) to the request waiting for it. */
  #deliver(answer: Uint8Array): void {
    const id = new DataView(answer.buffer, answer.byteOffset, 4).getInt32(0);
    const waiter = this.#pending.get(id);
    if (!waiter) throw new Error(`${this.where} answered request ${id}, which nobody asked`);
    this.#pending.delete(id);
    waiter.resolve(new ResponseReader(answer.subarray(4)));
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
    this.#fail(new Error(`Closed connection: the client closed its connection to ${this.where}`));
  }
}

/** An error code a broker answered with. */
export class BrokerError extends Error {
  constructor(readonly code: number, where: string) {
    super(`the broker answered ${errorName(code)} for ${where}`);
    this.name = "BrokerError";
  }
}

/** Metadata v1 is the oldest with what frame-bucket reads; v4 can refuse to auto-create the topic. */
export const METADATA_VERSIONS = [1, 4] as const;

/** A broker of the cluster, as Metadata names it. */
export interface BrokerAddress {
  host: string;
  port: number;
}

/** A "host:port" of kafka.brokers (an IPv6 host in brackets) as host and port. */
export function brokerAddress(address: string): BrokerAddress {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(address.slice(colon + 1)) };
}

/** A broker too old for the consumer's own client (Kafka 2.3 serves every request version it uses). */
export function tooOldForWireConsumer(conn: BrokerConnection, what: string): ServiceError {
  return new ServiceError(
    "kafka",
    `the Kafka broker at ${conn.where} does not serve ${what}: frame-bucket's wire consumer needs Kafka 2.3 or ` +
      `newer; set kafka.consumer_client = "kafkajs"`,
    { retriable: false },
  );
}

/** One topic of a Metadata answer: its error code and its partitions with their leaders. */
export interface TopicPartitions {
  error: number;
  name: string | null;
  partitions: { error: number; partition: number; leader: number }[];
}

/**
 * Asks `conn` for the metadata of one topic (Metadata `version`, one of METADATA_VERSIONS, never creating the
 * topic): the cluster's brokers by id, and the topic as the broker knows it (null when the answer leaves it out).
 */
export async function requestMetadata(
  conn: BrokerConnection,
  version: number,
  topic: string,
): Promise<{ brokers: Map<number, BrokerAddress>; topic: TopicPartitions | null }> {
  const r = await conn.request(API_METADATA, version, (w) => {
    w.int32(1).string(topic);
    if (version >= 4) w.int8(0); // allow_auto_topic_creation: false
  });
  if (version >= 3) r.int32(); // throttle_time_ms
  const brokers = new Map<number, BrokerAddress>();
  r.array(() => {
    const id = r.int32();
    brokers.set(id, { host: r.string() ?? "", port: r.int32() });
    r.string(); // rack
  });
  if (version >= 2) r.string(); // cluster_id
  r.int32(); // controller_id
  const topics = r.array((): TopicPartitions => {
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
  return { brokers, topic: topics.find((t) => t.name === topic) ?? null };
}

/** ListOffsets v1 is the oldest with one offset per partition; v5 adds the leader epoch. */
export const LIST_OFFSETS_VERSIONS = [1, 5] as const;

/** One partition of a ListOffsets answer: its error code and the offset found. */
export interface ListedOffset {
  partition: number;
  error: number;
  offset: number;
}

/**
 * Asks `conn` (the partitions' leader) where each of `partitions` of `topic` is at `timestamp`: -2 for the log's
 * start, -1 for its end. `readCommitted` picks the isolation level (v2+): true stops the end at the last stable
 * offset, as a READ_COMMITTED consumer sees it.
 */
export async function requestListOffsets(
  conn: BrokerConnection,
  version: number,
  topic: string,
  partitions: number[],
  timestamp: number,
  readCommitted: boolean,
): Promise<ListedOffset[]> {
  const r = await conn.request(API_LIST_OFFSETS, version, (w) => {
    w.int32(-1); // replica_id: a client
    if (version >= 2) w.int8(readCommitted ? 1 : 0);
    w.int32(1).string(topic).int32(partitions.length);
    for (const partition of partitions) {
      w.int32(partition);
      if (version >= 4) w.int32(-1); // current_leader_epoch
      w.int64(timestamp);
    }
  });
  if (version >= 2) r.int32(); // throttle_time_ms
  const out: ListedOffset[] = [];
  r.array(() => {
    r.string(); // topic
    r.array(() => {
      const partition = r.int32();
      const error = r.int16();
      r.int64(); // timestamp
      const offset = r.int64();
      if (version >= 4) r.int32(); // leader_epoch
      out.push({ partition, error, offset });
    });
  });
  return out;
}
