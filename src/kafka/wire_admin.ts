/**
 * The one admin question the consumer asks (does the topic exist, how many partitions, where do they end) over
 * frame-bucket's own Kafka protocol code, so that a consumer on the wire client (`kafka.consumer_client = "wire"`)
 * never loads kafkajs: its modules and its admin connection cost the consumer ~5 MB of resident memory for a
 * question asked at start and by each /health request. Topic creation, deletion and group offsets stay with the
 * kafkajs admin (`openAdmin` in client.ts), which tools use.
 */
import { messageOf, ServiceError } from "../errors.ts";
import type { Config } from "../config.ts";
import type { FrameAdmin, TopicInfo } from "./client.ts";
import {
  API_LIST_OFFSETS,
  API_METADATA,
  brokerAddress,
  BrokerConnection,
  BrokerError,
  type Connect,
  LIST_OFFSETS_VERSIONS,
  METADATA_VERSIONS,
  requestListOffsets,
  requestMetadata,
  tcpConnect,
  tooOldForWireConsumer,
} from "./wire_protocol.ts";

type KafkaConfig = Config["kafka"];

const LATEST = -1;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
/** Right after a topic is created or a broker restarts, partitions may lack a leader for a moment. */
const NO_LEADER_YET = new Set([5, 6, 3]);
const LEADER_WAIT_ATTEMPTS = 20;
const LEADER_WAIT_MS = 500;

/** What the consumer needs of an admin: `describeTopic` and `close`. */
export type TopicLookup = Pick<FrameAdmin, "describeTopic" | "close">;

/**
 * A topic lookup over one connection to the first broker of kafka.brokers that answers (opened on first use and
 * again after a failure). Nothing is asked at open: a broker that is down fails the first `describeTopic`.
 */
export function openWireTopicLookup(config: KafkaConfig, connect: Connect = tcpConnect): TopicLookup {
  const clientId = `${config.client_id}-admin`;
  let bootstrap: BrokerConnection | null = null;

  const open = async (host: string, port: number) =>
    await BrokerConnection.open(host, port, clientId, config.connect_timeout_ms, connect);

  const anyBroker = async (): Promise<BrokerConnection> => {
    if (bootstrap && !bootstrap.closed) return bootstrap;
    let last: unknown = new Error("kafka.brokers is empty");
    for (const address of config.brokers) {
      const { host, port } = brokerAddress(address);
      try {
        bootstrap = await open(host, port);
        return bootstrap;
      } catch (error) {
        last = error;
      }
    }
    throw last;
  };

  const failure = (error: unknown): ServiceError => {
    if (error instanceof ServiceError) return error;
    const doing = `describing topic ${config.topic}`;
    if (error instanceof BrokerError || error instanceof SyntaxError) {
      return new ServiceError("kafka", `Kafka failed while ${doing}: ${error.message}`, {
        retriable: true,
        cause: error,
      });
    }
    return new ServiceError(
      "kafka",
      `cannot reach the Kafka broker at ${config.brokers.join(",")} while ${doing} (${messageOf(error)}): ` +
        "start it (`deno task stack up`) or set kafka.brokers",
      { retriable: true, cause: error },
    );
  };

  /** The newest offset of each partition, asking each partition's leader. */
  const highWatermarks = async (
    conn: BrokerConnection,
    brokers: Map<number, { host: string; port: number }>,
    leaders: Map<number, number>,
  ): Promise<Map<number, string>> => {
    const byLeader = new Map<number, number[]>();
    for (const [partition, leader] of leaders) {
      const list = byLeader.get(leader) ?? [];
      list.push(partition);
      byLeader.set(leader, list);
    }
    const out = new Map<number, string>();
    for (const [leader, partitions] of byLeader) {
      const broker = brokers.get(leader);
      if (!broker) throw new BrokerError(5, `partitions ${partitions.join(", ")} of ${config.topic}`);
      const target = conn.where === `${broker.host}:${broker.port}`
        ? conn
        : await open(broker.host, broker.port);
      try {
        const version = target.version(API_LIST_OFFSETS, LIST_OFFSETS_VERSIONS);
        if (version === null) throw tooOldForWireConsumer(target, "ListOffsets v1");
        // READ_UNCOMMITTED: the log's end, as kafkajs' fetchTopicOffsets reports it.
        for (const p of await requestListOffsets(target, version, config.topic, partitions, LATEST, false)) {
          if (p.error !== 0) {
            throw new BrokerError(p.error, `the end of partition ${p.partition} of ${config.topic}`);
          }
          out.set(p.partition, String(p.offset));
        }
      } finally {
        if (target !== conn) target.close();
      }
    }
    return out;
  };

  const describeOnce = async (): Promise<TopicInfo | null> => {
    const conn = await anyBroker();
    const version = conn.version(API_METADATA, METADATA_VERSIONS);
    if (version === null) throw tooOldForWireConsumer(conn, "Metadata v1");
    const { brokers, topic } = await requestMetadata(conn, version, config.topic);
    if (!topic || topic.error === UNKNOWN_TOPIC_OR_PARTITION) return null;
    if (topic.error !== 0) throw new BrokerError(topic.error, `topic ${config.topic} on ${conn.where}`);
    const leaders = new Map<number, number>();
    for (const p of topic.partitions) {
      if (p.error !== 0 || p.leader < 0) {
        throw new BrokerError(p.error || 5, `partition ${p.partition} of ${config.topic}`);
      }
      leaders.set(p.partition, p.leader);
    }
    return { partitions: leaders.size, highWatermarks: await highWatermarks(conn, brokers, leaders) };
  };

  return {
    async describeTopic() {
      for (let attempt = 1;; attempt++) {
        try {
          return await describeOnce();
        } catch (error) {
          if (!(error instanceof BrokerError)) {
            // A connection that failed is not asked again.
            bootstrap?.close();
            bootstrap = null;
          }
          if (
            error instanceof BrokerError && NO_LEADER_YET.has(error.code) && attempt < LEADER_WAIT_ATTEMPTS
          ) {
            await new Promise((r) => setTimeout(r, LEADER_WAIT_MS));
            continue;
          }
          throw failure(error);
        }
      }
    },
    close() {
      bootstrap?.close();
      bootstrap = null;
      return Promise.resolve();
    },
  };
}
