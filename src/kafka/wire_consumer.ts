/**
 * The consumer's own Kafka client: a `FrameConsumer` (src/kafka/client.ts) over plain TCP that speaks the consumer
 * group protocol (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetFetch, OffsetCommit, LeaveGroup) and
 * fetches record batches v2 itself, with the semantics of `openConsumer` (kafkajs). Chosen by
 * `kafka.consumer_client = "wire"`.
 *
 * Why: kafkajs was 38 % of the consumer's allocations and ~8 % of its main-thread CPU (issue 16): per fetch it
 * builds objects for every partition and message and copies every value out of the answer. Here a fetch answer is
 * read into one buffer (src/kafka/wire_protocol.ts) and each message's value is a view of it; the only object per
 * message is the `IncomingMessage` itself.
 *
 * Group compatibility: the member joins with protocol type "consumer" and kafkajs' "RoundRobinAssigner", encodes
 * its subscription and the leader's assignment as kafkajs does (ConsumerProtocol version 0), and assigns exactly as
 * kafkajs' round robin does (members sorted by id, partitions in the broker's metadata order, dealt in turn), so
 * kafkajs and wire consumers can share a group during a rolling upgrade, whoever leads it.
 *
 * Flow: one loop keeps the membership (join, sync, heartbeats every min(3 s, session/3)); on a rebalance it stops
 * fetching, marks every batch of the generation inactive (eager rebalancing gives every partition back), waits for
 * the batches being handled, commits what they resolved, and joins again. Fetching is one request in flight per
 * leader broker for every partition it leads that has no unhandled batch, so at most one batch per partition is
 * held (bounded memory) and a partition's batches are handled one after the other, in offset order. The position
 * of a partition is its last resolved offset + 1 (unresolved messages are fetched again, as with kafkajs'
 * eachBatchAutoResolve: false); resolved positions are committed every second when they moved, on `commit()`,
 * before a rebalance and on `stop()`.
 */
import { gunzipSync } from "node:zlib";
import snappy from "snappyjs";
import type { Config } from "../config.ts";
import { messageOf, ServiceError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { FrameConsumer, IncomingBatch, IncomingMessage } from "./client.ts";
import {
  API_FETCH,
  API_FIND_COORDINATOR,
  API_HEARTBEAT,
  API_JOIN_GROUP,
  API_LEAVE_GROUP,
  API_LIST_OFFSETS,
  API_METADATA,
  API_OFFSET_COMMIT,
  API_OFFSET_FETCH,
  API_SYNC_GROUP,
  brokerAddress,
  BrokerConnection,
  BrokerError,
  type Connect,
  errorName,
  LIST_OFFSETS_VERSIONS,
  METADATA_VERSIONS,
  REQUEST_TIMEOUT_MS,
  requestListOffsets,
  requestMetadata,
  type RequestWriter,
  ResponseReader,
  tcpConnect,
  tooOldForWireConsumer,
} from "./wire_protocol.ts";

type KafkaConfig = Config["kafka"];

// Request versions: the newest non-flexible version of each API (no tagged fields to write or skip) down to the
// oldest with the fields we need; Kafka 4 serves all of these ranges (it dropped only older ones).
const FETCH_VERSIONS = [4, 11] as const;
const OFFSET_COMMIT_VERSIONS = [2, 7] as const;
const OFFSET_FETCH_VERSIONS = [1, 5] as const;
const FIND_COORDINATOR_VERSIONS = [1, 2] as const;
/** v4 is where the broker hands out member ids (MEMBER_ID_REQUIRED); v2 still works against older brokers. */
const JOIN_GROUP_VERSIONS = [2, 5] as const;
const SYNC_GROUP_VERSIONS = [1, 3] as const;
const HEARTBEAT_VERSIONS = [1, 3] as const;
const LEAVE_GROUP_VERSIONS = [1, 2] as const;

/** kafkajs' assigner name and ConsumerProtocol version: what kafkajs members of the group announce. */
export const ASSIGNER = "RoundRobinAssigner";
const PROTOCOL_TYPE = "consumer";
const ASSIGNER_VERSION = 0;
/** As openConsumer: a member has this long to rejoin during a rebalance. */
const REBALANCE_TIMEOUT_MS = 60_000;
/** As openConsumer's maxWaitTimeInMs: how long the broker holds a fetch that has no data. */
const FETCH_MAX_WAIT_MS = 250;
/**
 * The broker's wait when partitions of the same leader are being handled meanwhile: a partition whose batch is done
 * joins the next fetch, and one fetch per leader is in flight, so a long wait on idle partitions would hold it back
 * (drains measured ~6x slower with 250 ms). Partitions with data are answered at once either way.
 */
const FETCH_BUSY_WAIT_MS = 20;
/**
 * A fetch asks each partition for at most 1/FETCH_SPREAD of the budget (but 1 MiB at least), so that one answer
 * carries batches of several partitions. They finish at different times, and each frees room for the next fetch
 * while the others are still handled; a partition allowed the whole budget filled the answer alone, and the
 * workers idled through every fetch (a drain of 20 robots: 601 against 691 frames/s, 3 pairs). A batch larger
 * than the share is not lost: the broker leaves it out of an answer that had room for the share, and the next
 * fetch asks for that partition first and with the whole budget, which the broker answers with the whole batch
 * even beyond every limit (KIP-74: the first batch of the first partition with data).
 */
const FETCH_SPREAD = 4;
const FETCH_SHARE_MIN = 1024 * 1024;
const COMMIT_INTERVAL_MS = 1000;
const BACKOFF_FIRST_MS = 300;
const BACKOFF_MAX_MS = 5000;
/**
 * READ_COMMITTED, as kafkajs' default: transactional producers' aborted batches never reach the pipeline. Our own
 * producers are not transactional, so this costs nothing for them; READ_UNCOMMITTED would hand a foreign
 * transactional producer's aborted frames on as if they were real.
 */
const READ_COMMITTED = 1;
const EARLIEST = -2;

// Broker error codes this client acts on.
const OFFSET_OUT_OF_RANGE = 1;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const ILLEGAL_GENERATION = 22;
const UNKNOWN_MEMBER_ID = 25;
const REBALANCE_IN_PROGRESS = 27;
const MEMBER_ID_REQUIRED = 79;
/** The member must join again (its generation or membership is gone, or the group rebalances). */
const REJOIN = new Set([ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS]);
/** The coordinator moved or is not ready: find it again. */
const COORDINATOR_MOVED = new Set([13, 14, 15, 16]);
/** The partition's leader may be another broker now: read the metadata again. */
const LEADER_MOVED = new Set([3, 5, 6, 13, 74, 75, 100]);
/** Errors no retry cures: the configuration or the broker's ACLs must change. */
const GROUP_REFUSED = new Set([23, 24, 26, 29, 30]);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------------------------
// Record batches

/** A transaction the broker reports aborted in a fetched range: its producer and its first offset. */
export interface AbortedTransaction {
  producerId: number;
  firstOffset: number;
}

/** What one partition's fetched records hold from a given offset on. */
export interface DecodedRecords {
  messages: IncomingMessage[];
  /** The offset after the last complete batch (at least `fromOffset`): where to go on when no message was kept. */
  next: number;
}

/** Compression codecs of a record batch's attributes (bits 0-2). */
const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"];

/** Snappy as the Java client frames it (xerial: magic, version, compat, then length-prefixed blocks). */
const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];

/** Decompresses one snappy payload, raw (kafkajs with our codec, librdkafka) or xerial-framed (Java, kafkajs' docs). */
export function unsnappy(data: Uint8Array): Uint8Array {
  const uncompress = (snappy as { uncompress(b: Uint8Array): Uint8Array }).uncompress;
  const xerial = data.length >= 16 && XERIAL_MAGIC.every((b, i) => data[i] === b);
  if (!xerial) return uncompress(data);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const parts: Uint8Array[] = [];
  let size = 0;
  for (let at = 16; at + 4 <= data.length;) {
    const n = view.getInt32(at);
    at += 4;
    if (n < 0 || at + n > data.length) {
      throw new SyntaxError(`corrupt xerial snappy block of ${n} bytes at ${at}`);
    }
    const part = uncompress(data.subarray(at, at + n));
    parts.push(part);
    size += part.length;
    at += n;
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function decompress(codec: number, bytes: Uint8Array, where: string): Uint8Array {
  // Values are plain Uint8Array views whatever the codec (gunzipSync answers a Buffer).
  if (codec === 1) {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  if (codec === 2) return unsnappy(bytes);
  const name = CODECS[codec] ?? `codec ${codec}`;
  throw new ServiceError(
    "kafka",
    `${where} holds ${name}-compressed batches, which frame-bucket's consumer cannot read: set the producer's ` +
      `compression (kafka.compression) to none, gzip or snappy`,
    { retriable: false },
  );
}

/** The cursor of `varint` below: decoding is synchronous, so one module-level position serves every call. */
let cursor = 0;

/** Reads a zigzag varint at `cursor` in `b` and moves past it. */
function varint(b: Uint8Array): number {
  let z = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const byte = b[cursor++];
    if (byte === undefined) throw new SyntaxError(`record ends inside a varint at ${cursor - 1}`);
    z += (byte & 0x7f) * scale;
    if (byte < 0x80) return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    scale *= 0x80;
  }
  throw new SyntaxError(`varint longer than 10 bytes at ${cursor - 10}`);
}

const int64 = (view: DataView, at: number) => view.getInt32(at) * 0x1_0000_0000 + view.getUint32(at + 4);

/**
 * Decodes the record batches (magic 2) of one partition's fetched records, keeping messages at `fromOffset` and
 * after. Uncompressed values are views of `records` (not copies); keys are decoded to strings. Control batches and
 * batches of aborted transactions are skipped. A batch cut off at the end is ignored: the broker fills a fetch up
 * to its byte limit and may end it inside a batch, which the next fetch returns whole.
 */
export function decodeRecords(
  records: Uint8Array,
  fromOffset: number,
  aborted: AbortedTransaction[] = [],
  where = "the partition",
): DecodedRecords {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const messages: IncomingMessage[] = [];
  let next = fromOffset;
  // Producers whose aborted transaction has begun at or before the batch (the Java client's algorithm).
  const abortedList = aborted.length > 1
    ? [...aborted].sort((a, b) => a.firstOffset - b.firstOffset)
    : aborted;
  let abortedAt = 0;
  const abortedProducers = new Set<number>();
  for (let at = 0; at + 12 <= records.length;) {
    const baseOffset = int64(view, at);
    const end = at + 12 + view.getInt32(at + 8);
    if (end > records.length || end < at + 61) break; // cut off at the end of the fetch
    const magic = view.getInt8(at + 16);
    if (magic !== 2) {
      throw new SyntaxError(
        `${where}: record batch at offset ${baseOffset} has magic ${magic}; only record batches v2 (Kafka 0.11+) ` +
          `are read`,
      );
    }
    const attributes = view.getInt16(at + 21);
    const lastOffset = baseOffset + view.getInt32(at + 23);
    const body = records.subarray(at + 61, end);
    const batchAt = at;
    at = end;
    if (lastOffset + 1 > next) next = lastOffset + 1;
    const producerId = int64(view, batchAt + 43);
    while (abortedAt < abortedList.length && abortedList[abortedAt].firstOffset <= lastOffset) {
      abortedProducers.add(abortedList[abortedAt++].producerId);
    }
    const transactional = (attributes & 0x10) !== 0;
    if ((attributes & 0x20) !== 0) {
      // A control batch (commit or abort marker) ends the producer's transaction: its later batches count again.
      if (transactional) abortedProducers.delete(producerId);
      continue;
    }
    if (transactional && abortedProducers.has(producerId)) continue;
    if (lastOffset < fromOffset) continue;
    const baseTimestamp = int64(view, batchAt + 27);
    const logAppendTime = (attributes & 0x08) !== 0 ? int64(view, batchAt + 35) : -1;
    const count = view.getInt32(batchAt + 57);
    const codec = attributes & 0x07;
    const bytes = codec === 0 ? body : decompress(codec, body, where);
    cursor = 0;
    for (let i = 0; i < count; i++) {
      const length = varint(bytes);
      const recordEnd = cursor + length;
      if (recordEnd > bytes.length) {
        throw new SyntaxError(
          `${where}: record ${i} of the batch at offset ${baseOffset} ends after its batch`,
        );
      }
      cursor++; // record attributes: unused
      const timestampDelta = varint(bytes);
      const offset = baseOffset + varint(bytes);
      const keyLength = varint(bytes);
      let key: string | null = null;
      if (keyLength >= 0) {
        key = decoder.decode(bytes.subarray(cursor, cursor + keyLength));
        cursor += keyLength;
      }
      const valueLength = varint(bytes);
      const value = valueLength < 0 ? null : bytes.subarray(cursor, cursor + valueLength);
      cursor = recordEnd; // headers: unused
      if (offset < fromOffset) continue;
      messages.push({
        offset: String(offset),
        key,
        value,
        timestampMs: logAppendTime >= 0 ? logAppendTime : baseTimestamp + timestampDelta,
      });
    }
  }
  return { messages, next };
}

// ---------------------------------------------------------------------------------------------------------------
// kafkajs' ConsumerProtocol encodings and round-robin assignment

/** A member's subscription (ConsumerProtocol MemberMetadata v0), as kafkajs' MemberMetadata.encode writes it. */
export function encodeMemberMetadata(topics: string[]): Uint8Array {
  const parts: number[] = [];
  const w = new ByteList(parts);
  w.int16(ASSIGNER_VERSION).int32(topics.length);
  for (const topic of topics) w.string(topic);
  w.int32(0); // user data: empty bytes, as kafkajs writes it
  return new Uint8Array(parts);
}

/** The topics of a member's subscription. */
export function decodeMemberMetadata(bytes: Uint8Array): string[] {
  const r = new ResponseReader(bytes);
  r.int16();
  return r.array(() => r.string() ?? "");
}

/** A member's assignment (ConsumerProtocol MemberAssignment v0), as kafkajs' MemberAssignment.encode writes it. */
export function encodeAssignment(assignment: Map<string, number[]>): Uint8Array {
  const parts: number[] = [];
  const w = new ByteList(parts);
  w.int16(ASSIGNER_VERSION).int32(assignment.size);
  for (const [topic, partitions] of assignment) {
    w.string(topic).int32(partitions.length);
    for (const p of partitions) w.int32(p);
  }
  w.int32(0); // user data
  return new Uint8Array(parts);
}

/** Topic -> partitions of an assignment; empty bytes (a member the leader gave nothing) is an empty map. */
export function decodeAssignment(bytes: Uint8Array | null): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (!bytes || bytes.length < 2) return out;
  const r = new ResponseReader(bytes);
  r.int16(); // version: 0 and 1 share the fields we read
  for (
    const { topic, partitions } of r.array(() => ({
      topic: r.string() ?? "",
      partitions: r.array(() => r.int32()),
    }))
  ) {
    out.set(topic, partitions);
  }
  return out;
}

/**
 * kafkajs' RoundRobinAssigner: member ids sorted (JavaScript's default order), every topic's partitions in the
 * order the metadata lists them, dealt to the members in turn. Members that get nothing are absent from the result.
 */
export function roundRobinAssign(
  memberIds: string[],
  topics: { topic: string; partitions: number[] }[],
): Map<string, Map<string, number[]>> {
  const sorted = [...memberIds].sort();
  const out = new Map<string, Map<string, number[]>>();
  let i = 0;
  for (const { topic, partitions } of topics) {
    for (const partition of partitions) {
      const member = sorted[i++ % sorted.length];
      let mine = out.get(member);
      if (!mine) out.set(member, mine = new Map());
      let list = mine.get(topic);
      if (!list) mine.set(topic, list = []);
      list.push(partition);
    }
  }
  return out;
}

/** A few big-endian fields into a number list, for the small ConsumerProtocol blobs. */
class ByteList {
  constructor(private readonly out: number[]) {}
  int16(n: number): this {
    this.out.push((n >> 8) & 0xff, n & 0xff);
    return this;
  }
  int32(n: number): this {
    this.out.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    return this;
  }
  string(s: string): this {
    const bytes = encoder.encode(s);
    this.int16(bytes.length);
    for (const b of bytes) this.out.push(b);
    return this;
  }
}

const writeBytes = (w: RequestWriter, bytes: Uint8Array) => w.int32(bytes.length).raw(bytes);

// ---------------------------------------------------------------------------------------------------------------
// The consumer

/** One assigned partition's state within a generation. */
interface PartitionState {
  partition: number;
  /** The next offset to fetch: last resolved + 1, the committed offset or the log start; -1 until known. */
  next: number;
  /** The group's committed offset (the next to consume), -1 when none. */
  committed: number;
  /** Offsets were resolved since the last commit: `next` is worth committing. */
  resolved: boolean;
  /** In a fetch, or fetched and not yet handled: not fetched again until handled (one batch per partition). */
  busy: boolean;
  /** performance.now() before which the partition is not fetched (after a failure). */
  retryAt: number;
  backoffMs: number;
  /** Bytes of the fetch answer its waiting or running batch keeps alive (its values are views of the answer). */
  held: number;
  /** The broker left its next batch out of a fetch, as larger than its share: the next one asks for it first and
   * with the whole budget (see FETCH_SPREAD). */
  whole: boolean;
}

/** One generation of the membership: what SyncGroup gave this member. */
interface Session {
  generation: number;
  memberId: string;
  parts: Map<number, PartitionState>;
  /** False once the generation is ending (rebalance, stop): nothing more is fetched, batches turn inactive. */
  active: boolean;
  /** Fetch requests rotate which partition comes first, so a backlog on one does not starve the others. */
  rotate: number;
}

interface ReadyBatch {
  session: Session;
  part: PartitionState;
  batch: IncomingBatch;
  /** The fetch answer its messages' values are views of (none when they are all decompressed copies). */
  buffers: ArrayBuffer[];
}

interface Broker {
  host: string;
  port: number;
}

export interface WireConsumerOptions {
  onRebalance?: (assigned: number[]) => void;
  /** Opens a socket; Deno.connect by default. */
  connect?: Connect;
}

/** The next backoff after `ms`: 300 ms doubling to 5 s. */
const nextBackoff = (ms: number) => Math.min(BACKOFF_MAX_MS, ms === 0 ? BACKOFF_FIRST_MS : ms * 2);

class WireConsumer implements FrameConsumer {
  readonly #config: KafkaConfig;
  readonly #log: Logger;
  readonly #onRebalance?: (assigned: number[]) => void;
  readonly #connect: Connect;
  readonly #clientId: string;
  readonly #group: string;
  readonly #topic: string;
  readonly #heartbeatMs: number;
  /** One fetch answer's limit, and the budget of all answers whose batches are waiting or being handled. */
  readonly #maxBytes: number;
  /** Bytes of fetch answers kept alive by batches waiting or being handled (see `PartitionState.held`). */
  #held = 0;
  /** Per buffer that values of fetched messages are views of: how many batches in hand use it (see #release). */
  readonly #leases = new Map<ArrayBuffer, number>();
  readonly #connections = new Map<string, Promise<BrokerConnection>>();

  // Cluster view
  #brokers = new Map<number, Broker>();
  /** Partition -> leader broker id, and the partitions in the broker's metadata order (the assignment's order). */
  #leaders = new Map<number, number>();
  #partitionOrder: number[] = [];
  #metadataStale = false;
  #metadataRefresh: Promise<void> | null = null;
  #metadataBackoff = 0;
  #coordinator: Broker | null = null;

  // Membership
  #memberId = "";
  #session: Session | null = null;
  #lastHeartbeat = 0;
  #heartbeating: { session: Session; promise: Promise<void> } | null = null;
  #commitChain: Promise<void> = Promise.resolve();
  #commitTimer: ReturnType<typeof setInterval> | undefined;

  // Fetching and handling
  #handler: ((batch: IncomingBatch) => Promise<void>) | null = null;
  #concurrency = 1;
  #fetching = new Set<number>();
  #brokerBackoff = new Map<number, number>();
  #ready: ReadyBatch[] = [];
  #handling = new Set<Promise<void>>();
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  #pumpAt = Infinity;
  #paused = false;

  // Lifecycle
  #stopping = false;
  #stopped: Promise<void> | null = null;
  #groupLoop: Promise<void> | null = null;
  #wakers = new Set<() => void>();
  /** Troubles logged in their current episode (logged once until they heal). */
  #troubles = new Set<string>();

  constructor(config: KafkaConfig, log: Logger, options: WireConsumerOptions) {
    this.#config = config;
    this.#log = log.child("kafka");
    this.#onRebalance = options.onRebalance;
    this.#connect = options.connect ?? tcpConnect;
    this.#clientId = `${config.client_id}-consumer`;
    this.#group = config.group_id;
    this.#topic = config.topic;
    this.#heartbeatMs = Math.min(3000, Math.floor(config.session_timeout_ms / 3));
    this.#maxBytes = config.max_message_bytes + 1024 * 1024;
  }

  /** Reads the topic's metadata from a bootstrap broker, so that a missing topic or broker shows at start. */
  async start(): Promise<void> {
    try {
      await this.#refreshMetadata();
    } catch (error) {
      await this.#closeConnections();
      throw this.#failure(error, "connecting the consumer");
    }
  }

  async run(
    handle: (batch: IncomingBatch) => Promise<void>,
    options: { partitionsConcurrently: number },
  ): Promise<void> {
    if (this.#groupLoop) throw new Error("run() was called twice on one consumer");
    if (this.#stopping) throw new ServiceError("kafka", "the consumer is stopped", { retriable: false });
    this.#handler = handle;
    this.#concurrency = Math.max(1, options.partitionsConcurrently);
    // Resolves once the member joined the group for the first time, as kafkajs' consumer.run does.
    const joined = Promise.withResolvers<void>();
    this.#groupLoop = this.#keepMembership(joined);
    this.#commitTimer = setInterval(() => {
      const session = this.#session;
      if (!session || this.#stopping) return;
      this.#commit(session).then(
        () => this.#healed("commit", `committing offsets of group ${this.#group} works again`),
        (error) => this.#trouble("commit", `committing offsets of group ${this.#group}: ${messageOf(error)}`),
      );
    }, COMMIT_INTERVAL_MS);
    await joined.promise;
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#commitTimer);
    clearTimeout(this.#pumpTimer);
    if (this.#session) this.#session.active = false;
    this.#wake();
    // A JoinGroup can wait for the whole rebalance: closing the coordinator connection ends it now.
    if (!this.#session && this.#coordinator) this.#dropConnection("group", this.#coordinator);
    await this.#groupLoop;
    await this.#closeConnections();
  }

  pause(): void {
    this.#paused = true;
    // As kafkajs: fetched batches not yet handed on are dropped (fetched again after resume()); batches being
    // handled finish.
    for (const item of this.#ready) {
      item.part.busy = false;
      this.#release(item);
    }
    this.#ready = [];
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  // ----- connections and metadata

  async #connection(role: "data" | "group", broker: Broker): Promise<BrokerConnection> {
    const key = `${role} ${broker.host}:${broker.port}`;
    const pending = this.#connections.get(key);
    if (pending) {
      const conn = await pending.catch(() => null);
      if (conn && !conn.closed) return conn;
      if (this.#connections.get(key) === pending) this.#connections.delete(key);
    }
    const opened = BrokerConnection.open(
      broker.host,
      broker.port,
      this.#clientId,
      this.#config.connect_timeout_ms,
      this.#connect,
      // A JoinGroup is answered only once the rebalance completes, up to the rebalance timeout.
      role === "group" ? REBALANCE_TIMEOUT_MS + REQUEST_TIMEOUT_MS : REQUEST_TIMEOUT_MS,
    );
    this.#connections.set(key, opened);
    opened.catch(() => {
      if (this.#connections.get(key) === opened) this.#connections.delete(key);
    });
    return await opened;
  }

  #dropConnection(role: "data" | "group", broker: Broker): void {
    const key = `${role} ${broker.host}:${broker.port}`;
    const pending = this.#connections.get(key);
    this.#connections.delete(key);
    pending?.then((c) => c.close(), () => {});
  }

  async #closeConnections(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(), () => {})));
  }

  /** Known brokers first (the cluster's current view), then the configured bootstrap list. */
  #candidates(): Broker[] {
    const seen = new Set<string>();
    const out: Broker[] = [];
    for (const b of this.#brokers.values()) {
      seen.add(`${b.host}:${b.port}`);
      out.push(b);
    }
    for (const address of this.#config.brokers) {
      const { host, port } = brokerAddress(address);
      if (seen.has(`${host}:${port}`)) continue;
      seen.add(`${host}:${port}`);
      out.push({ host, port });
    }
    return out;
  }

  /** Any broker that answers. */
  async #anyBroker(): Promise<BrokerConnection> {
    let last: unknown = null;
    for (const broker of this.#candidates()) {
      try {
        return await this.#connection("data", broker);
      } catch (error) {
        last = error;
      }
    }
    throw last ?? new Error("kafka.brokers is empty");
  }

  /** Reads the topic's brokers, partitions and leaders again (one refresh at a time). */
  #refreshMetadata(): Promise<void> {
    this.#metadataRefresh ??= this.#readMetadata().finally(() => this.#metadataRefresh = null);
    return this.#metadataRefresh;
  }

  async #readMetadata(): Promise<void> {
    let last: unknown = null;
    for (const broker of this.#candidates()) {
      let conn: BrokerConnection;
      try {
        conn = await this.#connection("data", broker);
      } catch (error) {
        last = error;
        continue;
      }
      const version = conn.version(API_METADATA, METADATA_VERSIONS);
      if (version === null) throw tooOldForWireConsumer(conn, "Metadata v1");
      const { brokers, topic } = await requestMetadata(conn, version, this.#topic);
      if (!topic || topic.error === UNKNOWN_TOPIC_OR_PARTITION || topic.partitions.length === 0) {
        throw new BrokerError(UNKNOWN_TOPIC_OR_PARTITION, `topic ${this.#topic} on ${conn.where}`);
      }
      if (topic.error !== 0) throw new BrokerError(topic.error, `topic ${this.#topic} on ${conn.where}`);
      this.#brokers = brokers;
      this.#leaders = new Map(topic.partitions.map((p) => [p.partition, p.leader]));
      this.#partitionOrder = topic.partitions.map((p) => p.partition);
      this.#metadataStale = false;
      return;
    }
    throw last ?? new Error("kafka.brokers is empty");
  }

  // ----- the group

  /** The coordinator's connection, finding the coordinator first when it is not known. */
  async #coordinatorConnection(): Promise<BrokerConnection> {
    if (!this.#coordinator) {
      const conn = await this.#anyBroker();
      const version = conn.version(API_FIND_COORDINATOR, FIND_COORDINATOR_VERSIONS);
      if (version === null) throw tooOldForWireConsumer(conn, "FindCoordinator v1");
      const r = await conn.request(API_FIND_COORDINATOR, version, (w) => {
        w.string(this.#group).int8(0); // key_type: group
      });
      r.int32(); // throttle_time_ms
      const code = r.int16();
      r.string(); // error_message
      r.int32(); // node_id
      const host = r.string() ?? "";
      const port = r.int32();
      if (code !== 0) {
        throw new BrokerError(code, `the coordinator of group ${this.#group} (asked ${conn.where})`);
      }
      this.#coordinator = { host, port };
    }
    return await this.#connection("group", this.#coordinator);
  }

  /**
   * Keeps the membership until stop(): join, sync, heartbeat; on a rebalance, end the generation and join again.
   * `joined` resolves after the first join (run() waits for it) or rejects when the group refuses this member.
   */
  async #keepMembership(joined: PromiseWithResolvers<void>): Promise<void> {
    let backoff = 0;
    let first = true;
    while (!this.#stopping) {
      let session: Session | null = null;
      try {
        session = await this.#join();
        this.#healed("group", `member of group ${this.#group} again`);
        backoff = 0;
        if (first) joined.resolve();
        first = false;
        await this.#stayInGroup(session);
        await this.#endSession(session);
        continue;
      } catch (error) {
        if (session) await this.#endSession(session);
        if (this.#stopping) break;
        const code = error instanceof BrokerError ? error.code : null;
        if (code === UNKNOWN_MEMBER_ID || code === ILLEGAL_GENERATION) this.#memberId = "";
        if (code === REBALANCE_IN_PROGRESS) continue; // join again at once
        if (code === null || COORDINATOR_MOVED.has(code)) this.#coordinator = null;
        const failure = this.#failure(error, `joining group ${this.#group}`);
        if (first && code !== null && GROUP_REFUSED.has(code)) {
          joined.reject(failure);
          first = false;
        }
        this.#trouble("group", `${failure.message}; trying again`);
        backoff = nextBackoff(backoff);
        await this.#sleep(backoff);
      }
    }
    if (first) joined.resolve(); // stopped before joining
    await this.#leave();
  }

  /** JoinGroup (with the member id the broker hands out), SyncGroup, the committed offsets: a new generation. */
  async #join(): Promise<Session> {
    const conn = await this.#coordinatorConnection();
    const joinVersion = conn.version(API_JOIN_GROUP, JOIN_GROUP_VERSIONS);
    const syncVersion = conn.version(API_SYNC_GROUP, SYNC_GROUP_VERSIONS);
    if (joinVersion === null || syncVersion === null) {
      throw tooOldForWireConsumer(conn, "JoinGroup v2 and SyncGroup v1");
    }
    const metadata = encodeMemberMetadata([this.#topic]);
    let joined: {
      generation: number;
      leader: string;
      members: { id: string; metadata: Uint8Array | null }[];
    };
    for (let attempt = 1;; attempt++) {
      const r = await conn.request(API_JOIN_GROUP, joinVersion, (w) => {
        w.string(this.#group).int32(this.#config.session_timeout_ms).int32(REBALANCE_TIMEOUT_MS);
        w.string(this.#memberId);
        if (joinVersion >= 5) w.string(null); // group_instance_id: dynamic membership, as kafkajs
        w.string(PROTOCOL_TYPE).int32(1).string(ASSIGNER);
        writeBytes(w, metadata);
      });
      r.int32(); // throttle_time_ms
      const code = r.int16();
      const generation = r.int32();
      r.string(); // protocol_name
      const leader = r.string() ?? "";
      const memberId = r.string() ?? "";
      const members = r.array(() => {
        const id = r.string() ?? "";
        if (joinVersion >= 5) r.string(); // group_instance_id
        return { id, metadata: r.bytesField() };
      });
      // Since JoinGroup v4 a new member first gets its id from the broker and joins again with it.
      if (code === MEMBER_ID_REQUIRED && attempt === 1) {
        this.#memberId = memberId;
        continue;
      }
      if (code !== 0) throw new BrokerError(code, `group ${this.#group} on ${conn.where}`);
      this.#memberId = memberId;
      joined = { generation, leader, members };
      break;
    }
    const assignments = new Map<string, Uint8Array>();
    if (joined.leader === this.#memberId) {
      // As kafkajs' leader: fresh metadata, then every member gets its share (an empty one included).
      await this.#refreshMetadata();
      const shares = roundRobinAssign(joined.members.map((m) => m.id), [
        { topic: this.#topic, partitions: this.#partitionOrder },
      ]);
      for (const member of joined.members) {
        assignments.set(member.id, encodeAssignment(shares.get(member.id) ?? new Map()));
      }
    }
    const r = await conn.request(API_SYNC_GROUP, syncVersion, (w) => {
      w.string(this.#group).int32(joined.generation).string(this.#memberId);
      if (syncVersion >= 3) w.string(null);
      w.int32(assignments.size);
      for (const [id, bytes] of assignments) writeBytes(w.string(id), bytes);
    });
    r.int32(); // throttle_time_ms
    const code = r.int16();
    const assignment = r.bytesField();
    if (code !== 0) throw new BrokerError(code, `group ${this.#group} on ${conn.where}`);
    this.#lastHeartbeat = performance.now();
    const assigned = decodeAssignment(assignment).get(this.#topic) ?? [];
    this.#log.info(
      `joined group ${this.#group}; partitions of ${this.#topic}: ${assigned.join(", ") || "none"}`,
    );
    this.#onRebalance?.(assigned);
    const session: Session = {
      generation: joined.generation,
      memberId: this.#memberId,
      parts: new Map(),
      active: true,
      rotate: 0,
    };
    for (const partition of assigned) {
      session.parts.set(partition, {
        partition,
        next: -1,
        committed: -1,
        resolved: false,
        busy: false,
        retryAt: 0,
        backoffMs: 0,
        held: 0,
        whole: false,
      });
    }
    if (assigned.length > 0) await this.#fetchCommitted(session);
    if (this.#stopping) session.active = false;
    this.#session = session;
    this.#pump();
    return session;
  }

  /** The group's committed offsets of the session's partitions (OffsetFetch). */
  async #fetchCommitted(session: Session): Promise<void> {
    const conn = await this.#coordinatorConnection();
    const version = conn.version(API_OFFSET_FETCH, OFFSET_FETCH_VERSIONS);
    if (version === null) throw tooOldForWireConsumer(conn, "OffsetFetch v1");
    const r = await conn.request(API_OFFSET_FETCH, version, (w) => {
      w.string(this.#group).int32(1).string(this.#topic).int32(session.parts.size);
      for (const partition of session.parts.keys()) w.int32(partition);
    });
    if (version >= 3) r.int32(); // throttle_time_ms
    const answers: { partition: number; offset: number; error: number }[] = [];
    r.array(() => {
      r.string(); // topic
      r.array(() => {
        const partition = r.int32();
        const offset = r.int64();
        if (version >= 5) r.int32(); // committed_leader_epoch
        r.string(); // metadata
        answers.push({ partition, offset, error: r.int16() });
      });
    });
    const code = version >= 2 ? r.int16() : 0;
    if (code !== 0) throw new BrokerError(code, `the offsets of group ${this.#group} on ${conn.where}`);
    for (const a of answers) {
      if (a.error !== 0) {
        throw new BrokerError(a.error, `the offset of group ${this.#group} on partition ${a.partition}`);
      }
      const part = session.parts.get(a.partition);
      if (!part) continue;
      part.committed = a.offset;
      // No committed offset: from the beginning, as openConsumer's fromBeginning.
      part.next = a.offset >= 0 ? a.offset : -1;
    }
  }

  /** Heartbeats until the generation ends (a rebalance, a lost membership) or stop(). */
  async #stayInGroup(session: Session): Promise<void> {
    let backoff = 0;
    while (!this.#stopping && session.active) {
      const due = this.#lastHeartbeat + this.#heartbeatMs - performance.now();
      if (due > 0) {
        await this.#sleep(due);
        continue;
      }
      try {
        await this.#heartbeat(session);
        this.#healed("heartbeat", `heartbeats to group ${this.#group} answered again`);
        backoff = 0;
      } catch (error) {
        if (!session.active || this.#stopping) return;
        if (error instanceof BrokerError && REJOIN.has(error.code)) return;
        this.#trouble("heartbeat", `heartbeat to group ${this.#group}: ${messageOf(error)}; trying again`);
        backoff = nextBackoff(backoff);
        await this.#sleep(backoff);
      }
    }
  }

  /** Sends a heartbeat when one is due (one at a time); a rebalance or lost membership ends the generation. */
  #heartbeatIfDue(session: Session): Promise<void> {
    if (!session.active || performance.now() < this.#lastHeartbeat + this.#heartbeatMs) {
      return Promise.resolve();
    }
    return this.#heartbeat(session);
  }

  #heartbeat(session: Session): Promise<void> {
    // One heartbeat in flight per generation: the membership loop and batches' heartbeat() share it.
    if (this.#heartbeating?.session !== session) {
      const promise = this.#sendHeartbeat(session).finally(() => {
        if (this.#heartbeating?.promise === promise) this.#heartbeating = null;
      });
      this.#heartbeating = { session, promise };
    }
    return this.#heartbeating.promise;
  }

  async #sendHeartbeat(session: Session): Promise<void> {
    try {
      const conn = await this.#coordinatorConnection();
      const version = conn.version(API_HEARTBEAT, HEARTBEAT_VERSIONS);
      if (version === null) throw tooOldForWireConsumer(conn, "Heartbeat v1");
      const r = await conn.request(API_HEARTBEAT, version, (w) => {
        w.string(this.#group).int32(session.generation).string(session.memberId);
        if (version >= 3) w.string(null);
      });
      r.int32(); // throttle_time_ms
      const code = r.int16();
      this.#lastHeartbeat = performance.now();
      if (code !== 0) throw new BrokerError(code, `the heartbeat of group ${this.#group} on ${conn.where}`);
    } catch (error) {
      this.#groupTrouble(session, error);
      throw error;
    }
  }

  /** Acts on a group request's failure: rejoin, or find the coordinator again. */
  #groupTrouble(session: Session, error: unknown): void {
    const code = error instanceof BrokerError ? error.code : null;
    if (code !== null && REJOIN.has(code)) {
      if (code !== REBALANCE_IN_PROGRESS) this.#memberId = code === UNKNOWN_MEMBER_ID ? "" : this.#memberId;
      if (session.active) {
        this.#log.info(
          `group ${this.#group} generation ${session.generation}: ${
            errorName(code)
          }; finishing in-flight batches, ` +
            `committing and joining again`,
        );
      }
      session.active = false;
      this.#wake();
    } else if (code === null || COORDINATOR_MOVED.has(code)) {
      this.#coordinator = null;
    }
  }

  /**
   * Commits the session's resolved positions that moved (OffsetCommit with its generation and member id). Commits
   * run one at a time; a commit never goes past what was resolved.
   */
  #commit(session: Session): Promise<void> {
    const run = this.#commitChain.then(() => this.#commitNow(session));
    this.#commitChain = run.catch(() => {});
    return run;
  }

  async #commitNow(session: Session): Promise<void> {
    const due = [...session.parts.values()].filter((p) => p.resolved && p.next !== p.committed);
    if (due.length === 0) return;
    const offsets = due.map((p) => p.next);
    try {
      const conn = await this.#coordinatorConnection();
      const version = conn.version(API_OFFSET_COMMIT, OFFSET_COMMIT_VERSIONS);
      if (version === null) throw tooOldForWireConsumer(conn, "OffsetCommit v2");
      const r = await conn.request(API_OFFSET_COMMIT, version, (w) => {
        w.string(this.#group).int32(session.generation).string(session.memberId);
        if (version >= 7) w.string(null); // group_instance_id
        if (version <= 4) w.int64(-1); // retention_time_ms: the broker's default
        w.int32(1).string(this.#topic).int32(due.length);
        due.forEach((p, i) => {
          w.int32(p.partition).int64(offsets[i]);
          if (version >= 6) w.int32(-1); // committed_leader_epoch
          w.string(null); // metadata
        });
      });
      if (version >= 3) r.int32(); // throttle_time_ms
      let failed: BrokerError | null = null;
      r.array(() => {
        r.string(); // topic
        r.array(() => {
          const partition = r.int32();
          const code = r.int16();
          const i = due.findIndex((p) => p.partition === partition);
          if (code !== 0) {
            failed ??= new BrokerError(code, `the offset of partition ${partition} of group ${this.#group}`);
          } else if (i >= 0) {
            due[i].committed = offsets[i];
            if (due[i].next === offsets[i]) due[i].resolved = false;
          }
        });
      });
      if (failed) throw failed;
    } catch (error) {
      this.#groupTrouble(session, error);
      throw this.#failure(error, `committing offsets of group ${this.#group}`);
    }
  }

  /**
   * Ends a generation: no more fetching, every batch of it inactive, then waits for the batches being handled and
   * commits what they resolved, before the partitions may go to another member.
   */
  async #endSession(session: Session): Promise<void> {
    session.active = false;
    this.#ready = this.#ready.filter((item) => {
      if (item.session !== session) return true;
      this.#release(item);
      return false;
    });
    while (this.#handling.size > 0) await Promise.allSettled([...this.#handling]);
    await this.#commit(session).catch((error) =>
      this.#log.warn(
        `committing offsets of group ${this.#group} before leaving its generation: ${messageOf(error)}`,
      )
    );
    if (this.#session === session) this.#session = null;
  }

  async #leave(): Promise<void> {
    if (!this.#memberId || !this.#coordinator) return;
    try {
      const conn = await this.#connection("group", this.#coordinator);
      const version = conn.version(API_LEAVE_GROUP, LEAVE_GROUP_VERSIONS);
      if (version === null) return;
      const r = await conn.request(
        API_LEAVE_GROUP,
        version,
        (w) => {
          w.string(this.#group).string(this.#memberId);
        },
      );
      r.int32(); // throttle_time_ms
      const code = r.int16();
      if (code !== 0 && code !== UNKNOWN_MEMBER_ID) throw new BrokerError(code, `group ${this.#group}`);
      this.#memberId = "";
    } catch (error) {
      // The coordinator notices after kafka.session_timeout_ms instead.
      this.#log.warn(`leaving group ${this.#group}: ${messageOf(error)}`);
    }
  }

  // ----- fetching

  /**
   * A batch is done with (handled, or dropped unhandled): its bytes leave the budget, and a buffer no batch uses
   * any more is freed at once, detached (`transfer(0)`), instead of waiting for a garbage collection. Fetch
   * answers are the consumer's bulk of memory traffic (~38 MB/s at 20 robots x 10 fps of full-HD frames); left to
   * the collector they pile up between collections (bench e2e: resident size in a 20 MB saw-tooth) and cost the
   * forced ones of src/consume/memory.ts. Only views in JavaScript are cut off: a write still in progress in the
   * runtime holds the bytes until it ends. So a handler must not keep a message's value past its batch: the
   * FrameConsumer contract (client.ts) says so.
   */
  #release(item: ReadyBatch): void {
    const part = item.part;
    this.#held -= part.held;
    part.held = 0;
    for (const buffer of item.buffers) {
      const left = (this.#leases.get(buffer) ?? 1) - 1;
      if (left > 0) {
        this.#leases.set(buffer, left);
        continue;
      }
      this.#leases.delete(buffer);
      if (!buffer.detached) buffer.transfer(0);
    }
    item.buffers = [];
  }

  /** Starts what can start: fetches of free partitions (one per leader), start positions, a timer for backoffs. */
  #pump(): void {
    const session = this.#session;
    if (!session || !session.active || this.#paused || this.#stopping || !this.#handler) return;
    if (this.#metadataStale) {
      this.#refreshMetadata().then(
        () => {
          this.#metadataBackoff = 0;
          this.#healed("metadata", `metadata of topic ${this.#topic} read again`);
          this.#pump();
        },
        (error) => {
          this.#trouble(
            "metadata",
            this.#failure(error, `reading the metadata of topic ${this.#topic}`).message,
          );
          this.#metadataBackoff = nextBackoff(this.#metadataBackoff);
          this.#later(this.#metadataBackoff);
        },
      );
      return;
    }
    const now = performance.now();
    const byLeader = new Map<number, PartitionState[]>();
    const unknown: PartitionState[] = [];
    let wakeAt = Infinity;
    for (const part of session.parts.values()) {
      if (part.busy) continue;
      if (part.retryAt > now) {
        wakeAt = Math.min(wakeAt, part.retryAt);
        continue;
      }
      if (part.next < 0) {
        unknown.push(part);
        continue;
      }
      const leader = this.#leaders.get(part.partition) ?? -1;
      if (leader < 0 || !this.#brokers.has(leader)) {
        this.#metadataStale = true;
        part.retryAt = now + BACKOFF_FIRST_MS;
        wakeAt = Math.min(wakeAt, part.retryAt);
        continue;
      }
      let list = byLeader.get(leader);
      if (!list) byLeader.set(leader, list = []);
      list.push(part);
    }
    if (unknown.length > 0) void this.#findStart(session, unknown, null);
    for (const [leader, parts] of byLeader) {
      if (this.#fetching.has(leader)) continue;
      // The budget is full: a batch that is done frees room and pumps again.
      if (this.#held >= this.#maxBytes) break;
      // Partitions in `parts` are free, so any busy one of this leader is being fetched elsewhere or handled.
      const othersBusy = [...session.parts.values()].some((p) =>
        p.busy && this.#leaders.get(p.partition) === leader
      );
      void this.#fetch(session, leader, parts, othersBusy ? FETCH_BUSY_WAIT_MS : FETCH_MAX_WAIT_MS);
    }
    if (wakeAt < Infinity) this.#later(wakeAt - now);
  }

  /** Pumps again after `ms` (one timer, the earliest wins). */
  #later(ms: number): void {
    const at = performance.now() + ms;
    if (this.#pumpTimer !== undefined && this.#pumpAt <= at) return;
    clearTimeout(this.#pumpTimer);
    this.#pumpAt = at;
    this.#pumpTimer = setTimeout(() => {
      this.#pumpTimer = undefined;
      this.#pumpAt = Infinity;
      this.#pump();
    }, Math.max(0, ms));
  }

  /**
   * Sets partitions without a position to the log's start (ListOffsets, earliest), as kafkajs' fromBeginning: no
   * committed offset, or the committed/fetched one is no longer in the log (`outOfRange`: that offset).
   */
  async #findStart(session: Session, parts: PartitionState[], outOfRange: number | null): Promise<void> {
    for (const part of parts) part.busy = true;
    const byLeader = new Map<number, PartitionState[]>();
    for (const part of parts) {
      const leader = this.#leaders.get(part.partition) ?? -1;
      let list = byLeader.get(leader);
      if (!list) byLeader.set(leader, list = []);
      list.push(part);
    }
    await Promise.all([...byLeader].map(async ([leader, list]) => {
      try {
        const broker = this.#brokers.get(leader);
        if (!broker) throw new BrokerError(5, `partitions ${list.map((p) => p.partition).join(", ")}`);
        const conn = await this.#connection("data", broker);
        const version = conn.version(API_LIST_OFFSETS, LIST_OFFSETS_VERSIONS);
        if (version === null) throw tooOldForWireConsumer(conn, "ListOffsets v1");
        const partitions = list.map((p) => p.partition);
        const starts = await requestListOffsets(conn, version, this.#topic, partitions, EARLIEST, true);
        for (const { partition, error: code, offset } of starts) {
          const part = list.find((p) => p.partition === partition);
          if (!part) continue;
          if (code !== 0) {
            if (LEADER_MOVED.has(code)) this.#metadataStale = true;
            this.#retryLater(part);
            this.#trouble(
              `start ${partition}`,
              `finding the start of partition ${partition} of ${this.#topic}: ${
                errorName(code)
              }; trying again`,
            );
            continue;
          }
          this.#healed(`start ${partition}`);
          if (outOfRange !== null) {
            this.#log.warn(
              `partition ${partition} of ${this.#topic}: offset ${outOfRange} is out of range (the log starts at ` +
                `${offset}); consuming from ${offset}`,
            );
          }
          part.next = offset;
          part.resolved = false;
          part.backoffMs = 0;
        }
      } catch (error) {
        if (this.#stopping || !session.active) return;
        this.#metadataStale = true;
        for (const part of list) this.#retryLater(part);
        this.#trouble(
          `start ${leader}`,
          this.#failure(error, `finding where partitions of ${this.#topic} start`).message,
        );
      }
    }));
    for (const part of parts) part.busy = false;
    if (session === this.#session) this.#pump();
  }

  #retryLater(part: PartitionState): void {
    part.backoffMs = nextBackoff(part.backoffMs);
    part.retryAt = performance.now() + part.backoffMs;
  }

  /** One Fetch from `leader` for `parts`; each partition's messages become one batch to handle. */
  async #fetch(session: Session, leader: number, parts: PartitionState[], maxWaitMs: number): Promise<void> {
    this.#fetching.add(leader);
    for (const part of parts) part.busy = true;
    const queued = new Set<PartitionState>();
    const broker = this.#brokers.get(leader)!;
    const where = `${broker.host}:${broker.port}`;
    const first = session.rotate++ % parts.length;
    const rotated = first === 0 ? parts : [...parts.slice(first), ...parts.slice(0, first)];
    const order = [...rotated.filter((p) => p.whole), ...rotated.filter((p) => !p.whole)];
    const share = Math.min(
      this.#maxBytes,
      Math.max(FETCH_SHARE_MIN, Math.floor(this.#maxBytes / FETCH_SPREAD)),
    );
    try {
      const conn = await this.#connection("data", broker);
      const version = conn.version(API_FETCH, FETCH_VERSIONS);
      if (version === null) throw tooOldForWireConsumer(conn, "Fetch v4");
      let room = 0;
      const r = await conn.request(API_FETCH, version, (w) => {
        // The answer may fill what batches in hand leave of the budget. The broker always returns the first batch
        // of the first partition with data even when it is larger than every limit (KIP-74), so a frame of any
        // allowed size gets through, and fetching goes on.
        room = Math.max(1, this.#maxBytes - this.#held);
        w.int32(-1).int32(maxWaitMs).int32(1).int32(room).int8(READ_COMMITTED);
        if (version >= 7) w.int32(0).int32(-1); // no fetch session: every fetch names its partitions
        w.int32(1).string(this.#topic).int32(order.length);
        for (const part of order) {
          w.int32(part.partition);
          if (version >= 9) w.int32(-1); // current_leader_epoch: not checked
          w.int64(part.next);
          if (version >= 5) w.int64(-1); // log_start_offset: a consumer's is -1
          w.int32(part.whole ? this.#maxBytes : share);
        }
        if (version >= 7) w.int32(0); // forgotten topics
        if (version >= 11) w.string(""); // rack_id
      });
      r.int32(); // throttle_time_ms
      if (version >= 7) {
        const code = r.int16();
        r.int32(); // session_id
        if (code !== 0) throw new BrokerError(code, `a fetch from ${where}`);
      }
      this.#brokerBackoff.delete(leader);
      this.#healed(`fetch ${where}`, `fetching from ${where} works again`);
      const topics = r.int32();
      let carried = 0;
      for (let t = 0; t < topics; t++) {
        r.string(); // topic
        const count = r.int32();
        for (let i = 0; i < count; i++) {
          const partition = r.int32();
          const code = r.int16();
          const highWatermark = r.int64();
          const lastStable = r.int64();
          if (version >= 5) r.int64(); // log_start_offset
          const abortedCount = r.int32();
          const aborted: AbortedTransaction[] = [];
          for (let a = 0; a < abortedCount; a++) {
            aborted.push({ producerId: r.int64(), firstOffset: r.int64() });
          }
          if (version >= 11) r.int32(); // preferred_read_replica
          const records = r.bytesField();
          const size = records?.length ?? 0;
          const roomLeft = room - carried;
          carried += size;
          const part = session.parts.get(partition);
          // A generation that ended, or a pause, drops what was fetched: the position stays, so it comes again.
          if (
            !part || !parts.includes(part) || !session.active || session !== this.#session || this.#paused
          ) {
            continue;
          }
          // Committed data, none of it in the answer, though the answer had room for the partition's share: its
          // next batch is larger than the share, which the broker leaves out rather than cut (see FETCH_SPREAD).
          if (size === 0 && code === 0 && lastStable > part.next && roomLeft >= share) part.whole = true;
          this.#fetched(session, part, code, highWatermark, aborted, records, where, queued);
        }
      }
    } catch (error) {
      // Connections closed by stop(), or a generation that ended meanwhile: nothing to retry.
      if (this.#stopping || !session.active) return;
      // A lost connection or an unreadable answer: the leaders may have moved; try again after a backoff.
      this.#metadataStale = true;
      const backoff = nextBackoff(this.#brokerBackoff.get(leader) ?? 0);
      this.#brokerBackoff.set(leader, backoff);
      for (const part of parts) part.retryAt = performance.now() + backoff;
      this.#trouble(
        `fetch ${where}`,
        `${this.#failure(error, `fetching from ${where} (topic ${this.#topic})`).message}; retrying`,
      );
    } finally {
      this.#fetching.delete(leader);
      for (const part of parts) if (!queued.has(part)) part.busy = false;
      this.#dispatch();
      this.#pump();
    }
  }

  /** One partition's part of a fetch answer. */
  #fetched(
    session: Session,
    part: PartitionState,
    code: number,
    highWatermark: number,
    aborted: AbortedTransaction[],
    records: Uint8Array | null,
    where: string,
    queued: Set<PartitionState>,
  ): void {
    const partition = part.partition;
    if (code === OFFSET_OUT_OF_RANGE) {
      const offset = part.next;
      part.next = -1;
      queued.add(part); // busy until #findStart has the log's start (it clears the flag itself)
      void this.#findStart(session, [part], offset);
      return;
    }
    if (code !== 0) {
      if (LEADER_MOVED.has(code)) this.#metadataStale = true;
      this.#retryLater(part);
      this.#trouble(
        `partition ${partition}`,
        `fetching partition ${partition} of ${this.#topic} from ${where}: ${errorName(code)}; trying again`,
      );
      return;
    }
    let decoded: DecodedRecords;
    try {
      decoded = records
        ? decodeRecords(records, part.next, aborted, `partition ${partition} of ${this.#topic}`)
        : { messages: [], next: part.next };
    } catch (error) {
      this.#retryLater(part);
      this.#trouble(`partition ${partition}`, `${messageOf(error)}; trying again`);
      return;
    }
    this.#healed(`partition ${partition}`, `partition ${partition} of ${this.#topic} is fetched again`);
    if (decoded.messages.length === 0) {
      // Only control batches, aborted transactions or records before the position: step over them.
      if (decoded.next > part.next) part.next = decoded.next;
      return;
    }
    part.whole = false;
    queued.add(part);
    part.held = records?.length ?? 0;
    this.#held += part.held;
    // Only the fetch answer is freed early: it is this consumer's own buffer (BrokerConnection reads each answer
    // into one of its own). What a codec decompressed may share its buffer with others (Node's Buffer pool).
    const answer = records?.buffer as ArrayBuffer | undefined;
    const buffers = answer && decoded.messages.some((m) => m.value?.buffer === answer) ? [answer] : [];
    for (const buffer of buffers) this.#leases.set(buffer, (this.#leases.get(buffer) ?? 0) + 1);
    this.#ready.push({
      session,
      part,
      batch: this.#batch(session, part, decoded.messages, highWatermark),
      buffers,
    });
  }

  #batch(
    session: Session,
    part: PartitionState,
    messages: IncomingMessage[],
    highWatermark: number,
  ): IncomingBatch {
    return {
      topic: this.#topic,
      partition: part.partition,
      messages,
      highWatermark: String(highWatermark),
      resolveOffset: (offset) => {
        // Resolves of an ended generation's batches count until its final commit (the session is current until
        // then), never after.
        if (session !== this.#session) return;
        const next = Number(offset) + 1;
        if (next > part.next) {
          part.next = next;
          part.resolved = true;
        }
      },
      heartbeat: () =>
        this.#heartbeatIfDue(session).catch((error) => {
          throw this.#failure(error, `sending a heartbeat to group ${this.#group}`);
        }),
      isActive: () => session.active && !this.#stopping && session === this.#session,
      commit: () => this.#commit(session),
    };
  }

  /** Hands ready batches to the handler, up to `partitionsConcurrently` at once. */
  #dispatch(): void {
    while (this.#handling.size < this.#concurrency && this.#ready.length > 0) {
      const item = this.#ready.shift()!;
      if (!item.session.active || item.session !== this.#session || this.#stopping) {
        item.part.busy = false;
        this.#release(item);
        continue;
      }
      const done: Promise<void> = this.#handle(item).finally(() => {
        this.#handling.delete(done);
        this.#dispatch();
        this.#pump();
      });
      this.#handling.add(done);
    }
  }

  async #handle(item: ReadyBatch): Promise<void> {
    const { session, part, batch } = item;
    const before = part.next;
    try {
      await this.#handler!(batch);
      if (part.next > before || !session.active) {
        part.backoffMs = 0;
        this.#healed(`handle ${part.partition}`);
      } else {
        // Nothing resolved: the same messages come again; not at once, or an always-failing message spins.
        this.#retryLater(part);
      }
    } catch (error) {
      // As kafkajs with a failing eachBatch: nothing is skipped; the partition is fetched again from its last
      // resolved offset after a backoff.
      this.#retryLater(part);
      this.#trouble(
        `handle ${part.partition}`,
        `handling a batch of partition ${part.partition} of ${this.#topic} failed (${messageOf(error)}); ` +
          `fetching again from offset ${part.next} in ${part.backoffMs} ms`,
      );
    } finally {
      part.busy = false;
      this.#release(item);
    }
  }

  // ----- helpers

  /** Sleeps `ms`, or less when woken (a rebalance, stop()). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakers.add(done);
    });
  }

  #wake(): void {
    for (const done of [...this.#wakers]) done();
  }

  /** Logs a trouble once per episode (at warn), later repeats at debug. */
  #trouble(key: string, text: string): void {
    if (this.#troubles.has(key)) {
      this.#log.debug(text);
      return;
    }
    this.#troubles.add(key);
    this.#log.warn(text);
  }

  /** Ends a trouble's episode, saying so when it was logged. */
  #healed(key: string, text?: string): void {
    if (this.#troubles.delete(key) && text) this.#log.info(text);
  }

  /** A failure as a ServiceError naming broker, topic or group and what to do (openConsumer's texts). */
  #failure(error: unknown, doing: string): ServiceError {
    if (error instanceof ServiceError) return error;
    const brokers = this.#config.brokers.join(",");
    if (error instanceof BrokerError) {
      if (error.code === UNKNOWN_TOPIC_OR_PARTITION) {
        return new ServiceError(
          "kafka",
          `topic ${this.#topic} does not exist on ${brokers}: run \`deno task topic\``,
          { retriable: true, cause: error },
        );
      }
      if (error.code === 26) {
        return new ServiceError(
          "kafka",
          `the broker refused kafka.session_timeout_ms = ${this.#config.session_timeout_ms} for group ` +
            `${this.#group} (INVALID_SESSION_TIMEOUT): set it within the broker's group.min/max.session.timeout.ms`,
          { retriable: false, cause: error },
        );
      }
      if (error.code === 23) {
        return new ServiceError(
          "kafka",
          `group ${this.#group} is used by consumers of another protocol or assigner (INCONSISTENT_GROUP_PROTOCOL): ` +
            `give frame-bucket a group of its own (kafka.group_id)`,
          { retriable: false, cause: error },
        );
      }
      if (GROUP_REFUSED.has(error.code)) {
        return new ServiceError(
          "kafka",
          `the broker refused group ${this.#group} or topic ${this.#topic} while ${doing} (${error.message}): ` +
            `check kafka.group_id and the broker's ACLs`,
          { retriable: false, cause: error },
        );
      }
      return new ServiceError("kafka", `Kafka failed while ${doing}: ${error.message}`, {
        retriable: true,
        cause: error,
      });
    }
    if (error instanceof SyntaxError) {
      return new ServiceError("kafka", `Kafka failed while ${doing}: ${error.message}`, {
        retriable: true,
        cause: error,
      });
    }
    return new ServiceError(
      "kafka",
      `cannot reach the Kafka broker at ${brokers} while ${doing} (${messageOf(error)}): start it ` +
        `(\`deno task stack up\`) or set kafka.brokers`,
      { retriable: true, cause: error },
    );
  }
}

/**
 * A `FrameConsumer` over frame-bucket's own Kafka client, with the semantics of `openConsumer` (see the module
 * comment). Fails like openConsumer when the broker cannot be reached or the topic does not exist.
 */
export async function openWireConsumer(
  config: KafkaConfig,
  log: Logger,
  options: WireConsumerOptions = {},
): Promise<FrameConsumer> {
  const consumer = new WireConsumer(config, log, options);
  await consumer.start();
  log.child("kafka").info(`consumer client: wire (src/kafka/wire_consumer.ts), group ${config.group_id}`);
  return consumer;
}
