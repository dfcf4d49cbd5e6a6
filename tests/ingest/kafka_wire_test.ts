/**
 * The producer's own Kafka client (src/ingest/kafka_wire.ts) against a fake broker on loopback that decodes every
 * request it gets the way a broker does (sizes, record batch v2 layout, CRC-32C) and can answer with errors, cut
 * connections or refuse them. What a real broker and an independent client make of our batches is checked by
 * tests/ingest/kafka_wire.stack_test.ts.
 */
import assert from "node:assert/strict";
import { resolveConfig } from "../../src/config.ts";
import { ServiceError } from "../../src/errors.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { FrameSender } from "../../src/ingest/producer.ts";
import { sleep } from "../../src/ingest/camera.ts";
import {
  RequestWriter,
  ResponseReader,
  WireProducer,
  writeRecordBatch,
} from "../../src/ingest/kafka_wire.ts";
import { crc32c } from "../../src/kafka/crc32c.ts";
import { partitionForRobot } from "../../src/kafka/partitioner.ts";
import { memoryLogger } from "../../src/log.ts";

interface Record {
  partition: number;
  offset: number;
  key: string;
  value: Uint8Array;
  timestampMs: number;
}

/** Reads a zigzag varint from `bytes` at `at.i`. */
function varint(bytes: Uint8Array, at: { i: number }): number {
  let z = 0, mul = 1;
  while (true) {
    const b = bytes[at.i++];
    z += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) break;
  }
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Decodes one record batch v2 as a broker validates it; throws on anything off. */
function decodeBatch(bytes: Uint8Array): { records: Omit<Record, "partition" | "offset">[]; codec: number } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(v.getBigInt64(0), 0n, "baseOffset");
  assert.equal(v.getInt32(8), bytes.length - 12, "batchLength");
  assert.equal(v.getInt8(16), 2, "magic");
  assert.equal(v.getUint32(17), crc32c(bytes.subarray(21)), "CRC-32C of attributes..end");
  const attributes = v.getInt16(21);
  const lastOffsetDelta = v.getInt32(23);
  const first = Number(v.getBigInt64(27));
  const max = Number(v.getBigInt64(35));
  assert.equal(v.getBigInt64(43), -1n, "producerId");
  const count = v.getInt32(57);
  assert.equal(lastOffsetDelta, count - 1);
  const codec = attributes & 7;
  assert.equal(codec, 0, "the fake broker reads uncompressed batches only");
  const at = { i: 61 };
  const records = [];
  for (let n = 0; n < count; n++) {
    const length = varint(bytes, at);
    const start = at.i;
    assert.equal(bytes[at.i++], 0, "record attributes");
    const delta = varint(bytes, at);
    assert.equal(varint(bytes, at), n, "offsetDelta");
    const keyLength = varint(bytes, at);
    const key = new TextDecoder().decode(bytes.subarray(at.i, at.i + keyLength));
    at.i += keyLength;
    const valueLength = varint(bytes, at);
    const value = bytes.slice(at.i, at.i + valueLength);
    at.i += valueLength;
    assert.equal(varint(bytes, at), 0, "no headers");
    assert.equal(at.i - start, length, "record length");
    records.push({ key, value, timestampMs: first + delta });
  }
  assert.equal(at.i, bytes.length, "batch ends after its records");
  assert.equal(Math.max(...records.map((r) => r.timestampMs)), max, "maxTimestamp");
  return { records, codec };
}

/** A Kafka broker stand-in: one topic, every partition led by itself. */
function fakeBroker(options: { topic: string; partitions: number }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const conns = new Set<Deno.Conn>();
  const state = {
    port,
    records: [] as Record[],
    requests: [] as { api: number; version: number }[],
    /** Error codes to answer the next produce requests with, in turn. */
    produceErrors: [] as number[],
    /** When true, connections are closed as soon as they open. */
    down: false,
    /** Close the connection instead of answering the next produce request. */
    dropNextProduce: false,
    /** Leave produce requests unanswered. */
    silentProduce: false,
    topicExists: true,
    connections: 0,
  };
  const answer = (conn: Deno.Conn, id: number, body: RequestWriter) => {
    const w = new RequestWriter().int32(0).int32(id);
    for (const part of body.parts()) w.raw(part);
    w.patch32(0, w.offset - 4);
    return conn.write(w.parts()[0]);
  };
  const serve = async (conn: Deno.Conn) => {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await conn.read(chunk);
        if (n === null) return;
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        while (buf.length >= 4) {
          const size = new DataView(buf.buffer, buf.byteOffset).getInt32(0);
          if (buf.length < 4 + size) break;
          const r = new ResponseReader(buf.slice(4, 4 + size));
          buf = buf.slice(4 + size);
          const api = r.int16(), version = r.int16(), id = r.int32();
          r.string(); // client id
          state.requests.push({ api, version });
          const out = new RequestWriter();
          if (api === 18) {
            out.int16(0).int32(3);
            for (const [key, min, max] of [[0, 0, 9], [3, 0, 12], [18, 0, 3]]) {
              out.int16(key).int16(min).int16(max);
            }
          } else if (api === 3) {
            assert.equal(version, 4, "Metadata v4 when the broker has it");
            r.array(() => r.string());
            assert.equal(r.int8(), 0, "no auto-creation of the topic");
            out.int32(0); // throttle
            out.int32(1).int32(0).string("127.0.0.1").int32(port).string(null);
            out.string("fake-cluster").int32(0);
            out.int32(1).int16(state.topicExists ? 0 : 3).string(options.topic).int8(0);
            const count = state.topicExists ? options.partitions : 0;
            out.int32(count);
            for (let p = 0; p < count; p++) {
              out.int16(0).int32(p).int32(0).int32(1).int32(0).int32(1).int32(0);
            }
          } else if (api === 0) {
            assert.equal(version, 7, "the highest Produce version the client speaks");
            assert.equal(r.string(), null, "not transactional");
            assert.equal(r.int16(), -1, "acks=all");
            r.int32();
            if (state.silentProduce) continue;
            if (state.dropNextProduce) {
              state.dropNextProduce = false;
              conn.close();
              return;
            }
            const error = state.produceErrors.shift() ?? 0;
            const topics = r.array(() => {
              const name = r.string()!;
              const parts = r.array(() => {
                const partition = r.int32();
                const batch = r.take(r.int32());
                return { partition, batch };
              });
              return { name, parts };
            });
            out.int32(topics.length);
            for (const t of topics) {
              assert.equal(t.name, options.topic);
              out.string(t.name).int32(t.parts.length);
              for (const p of t.parts) {
                const { records } = decodeBatch(p.batch);
                const base = state.records.filter((x) => x.partition === p.partition).length;
                if (error === 0) {
                  records.forEach((rec, i) =>
                    state.records.push({ ...rec, partition: p.partition, offset: base + i })
                  );
                }
                out.int32(p.partition).int16(error).int64(error ? -1 : base).int64(-1).int64(0);
              }
            }
            out.int32(0); // throttle
          } else {
            throw new Error(`the fake broker got API ${api}`);
          }
          await answer(conn, id, out);
        }
      }
    } catch {
      // connection closed
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  void (async () => {
    for await (const conn of listener) {
      state.connections++;
      if (state.down) {
        conn.close();
        continue;
      }
      conns.add(conn);
      void serve(conn);
    }
  })().catch(() => {});
  return {
    state,
    brokers: [`127.0.0.1:${port}`],
    dropConnections: () => {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      conns.clear();
    },
    close: () => {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      listener.close();
    },
  };
}

const TOPIC = "camera.frames";
const T0 = Date.UTC(2026, 1, 18, 9, 39, 32);

function setup(partitions = 3, toml = "", requestTimeoutMs?: number) {
  const broker = fakeBroker({ topic: TOPIC, partitions });
  const config = resolveConfig(
    `[kafka]\nbrokers = ["${broker.brokers[0]}"]\ntopic = "${TOPIC}"\nconnect_timeout_ms = 1000\n${toml}`,
  );
  const log = memoryLogger();
  const producer = new WireProducer(config.kafka, log, { requestTimeoutMs });
  return { broker, config, producer, log };
}

function frame(robot: string, i: number, size = 1000) {
  const jpeg = new Uint8Array(size).map((_, j) => (j * 31 + i) & 0xff);
  jpeg.set([0xff, 0xd8]);
  jpeg.set([0xff, 0xd9], size - 2);
  const timestampMs = T0 + i * 100;
  return { key: `${robot}:${timestampMs}`, value: encodeFrame(timestampMs, i, jpeg), timestampMs };
}

Deno.test("varints are Kafka's zigzag varints, also past 32 bits", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [-1, [0x01]],
    [1, [0x02]],
    [63, [0x7e]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [300, [0xd8, 0x04]],
    [2 ** 40, [0x80, 0x80, 0x80, 0x80, 0x80, 0x40]],
  ];
  for (const [n, bytes] of cases) {
    assert.deepEqual([...new RequestWriter().varint(n).parts()[0]], bytes, `${n}`);
  }
  const w = new RequestWriter().int64(T0).int64(-1);
  const r = new ResponseReader(w.parts()[0]);
  assert.equal(r.int64(), T0);
  assert.equal(r.int64(), -1);
});

Deno.test("an attached frame is sent as it is, not copied, and the checksum covers it", async () => {
  const m = frame("robot-1", 0, 5000);
  const w = new RequestWriter();
  await writeRecordBatch(w, [m], "none");
  const parts = w.parts();
  assert.ok(parts.some((p) => p === m.value), "the frame's own bytes are one of the ranges written");
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  const { records } = decodeBatch(bytes.subarray(4));
  assert.deepEqual(records[0].value, m.value);
});

Deno.test("frames arrive byte for byte, keyed, timestamped, on the robot's partition, in order", async () => {
  const { broker, producer } = setup(3);
  try {
    const sent = [];
    for (let i = 0; i < 6; i++) sent.push(frame(i % 2 ? "robot-b" : "robot-a", i, 2000 + i * 10));
    await producer.send(sent.slice(0, 1));
    await producer.send(sent.slice(1)); // several frames and two robots in one request
    assert.equal(broker.state.records.length, 6);
    for (const m of sent) {
      const got = broker.state.records.find((r) => r.key === m.key)!;
      assert.deepEqual(got.value, m.value);
      assert.equal(got.timestampMs, m.timestampMs);
      assert.equal(got.partition, partitionForRobot(m.key.split(":")[0], 3));
    }
    const a = broker.state.records.filter((r) => r.key.startsWith("robot-a"));
    const offsets = a.map((r) => r.offset);
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), "a robot's frames in offset order");
    assert.deepEqual(a.map((r) => r.key), sent.filter((m) => m.key.startsWith("robot-a")).map((m) => m.key));
    const produces = broker.state.requests.filter((r) => r.api === 0).length;
    assert.equal(produces, 2, "one request per send");
  } finally {
    await producer.close();
    broker.close();
  }
});

Deno.test("topic() tells the partition count, or null when the topic is missing", async () => {
  const { broker, producer } = setup(5);
  try {
    assert.deepEqual(await producer.topic(), { partitions: 5 });
    broker.state.topicExists = false;
    assert.equal(await producer.topic(), null);
    await assert.rejects(
      producer.send([frame("robot-a", 0)]),
      (e: Error) =>
        e instanceof ServiceError && e.retriable && /does not exist .*deno task topic/.test(e.message),
    );
  } finally {
    await producer.close();
    broker.close();
  }
});

Deno.test("a leader move is healed by reading the metadata again; a lasting error is a ServiceError", async () => {
  const { broker, producer } = setup(1);
  try {
    broker.state.produceErrors.push(6);
    await producer.send([frame("robot-a", 0)]);
    assert.equal(broker.state.records.length, 1, "sent on the second try");
    const metadata = broker.state.requests.filter((r) => r.api === 3).length;
    assert.equal(metadata, 2, "metadata read again after NOT_LEADER_OR_FOLLOWER");

    broker.state.produceErrors.push(6, 6);
    await assert.rejects(
      producer.send([frame("robot-a", 1)]),
      (e: Error) =>
        e instanceof ServiceError && e.retriable && /NOT_LEADER_OR_FOLLOWER \(6\)/.test(e.message),
    );
    broker.state.produceErrors.push(10);
    await assert.rejects(
      producer.send([frame("robot-a", 2)]),
      (e: Error) =>
        e instanceof ServiceError && /too large \(MESSAGE_TOO_LARGE\).*max_message_bytes/.test(e.message),
    );
    await producer.send([frame("robot-a", 3)]);
    assert.equal(broker.state.records.length, 2);
  } finally {
    await producer.close();
    broker.close();
  }
});

Deno.test("a connection the broker drops is opened again by the next send", async () => {
  const { broker, producer } = setup(1);
  try {
    await producer.send([frame("robot-a", 0)]);
    broker.dropConnections();
    await sleep(20);
    await producer.send([frame("robot-a", 1)]);
    broker.state.dropNextProduce = true;
    await assert.rejects(
      producer.send([frame("robot-a", 2)]),
      (e: Error) =>
        e instanceof ServiceError && e.retriable && /cannot reach the Kafka broker/.test(e.message),
    );
    await producer.send([frame("robot-a", 3)]);
    assert.deepEqual(
      broker.state.records.map((r) => r.key.split(":")[1]),
      [0, 1, 3].map((i) => `${T0 + i * 100}`),
    );
    assert.equal(broker.state.connections, 3);
  } finally {
    await producer.close();
    broker.close();
  }
});

Deno.test("an unreachable broker is a retriable ServiceError naming it and the fix", async () => {
  const { broker, producer, config } = setup(1);
  broker.close();
  try {
    await assert.rejects(
      producer.topic(),
      (e: Error) =>
        e instanceof ServiceError && e.retriable &&
        e.message.includes(`cannot reach the Kafka broker at ${config.kafka.brokers[0]}`) &&
        /deno task stack up/.test(e.message),
    );
  } finally {
    await producer.close();
  }
});

Deno.test("with the frame sender: while the broker is away frames wait (bounded), then go out in order", async () => {
  const { broker, producer, config } = setup(1, "[producer]\nbuffer_frames = 5\nbatch_frames = 2");
  const log = memoryLogger();
  const sender = new FrameSender({ config, robotId: "robot-a", log, kafka: producer, sleep: () => sleep(5) });
  const running = sender.run();
  try {
    const jpeg = frame("robot-a", 0).value.subarray(16);
    sender.offer({ jpeg, receivedAtMs: T0 });
    for (let i = 0; i < 100 && sender.counts.sent < 1; i++) await sleep(10);
    assert.equal(sender.counts.sent, 1);
    broker.state.down = true;
    broker.dropConnections();
    for (let i = 1; i <= 20; i++) sender.offer({ jpeg, receivedAtMs: T0 + i * 100 });
    await sleep(50);
    assert.ok(sender.queued <= 5, `queued ${sender.queued}`);
    broker.state.down = false;
    for (let i = 0; i < 300 && sender.queued > 0; i++) await sleep(10);
    assert.equal(sender.queued, 0, "the queue drained once the broker was back");
    const seqs = broker.state.records.map((r) => new DataView(r.value.buffer).getInt32(12));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in order");
    assert.equal(seqs.at(-1), 20, "the newest frame arrived");
    assert.equal(sender.counts.sent + sender.counts.dropped, 21);
    assert.ok(log.lines.some((l) => /cannot reach the Kafka broker/.test(l)), log.lines.join("\n"));
  } finally {
    sender.close();
    await running;
    await producer.close();
    broker.close();
  }
});

Deno.test("a request without an answer fails after the request timeout; the next send opens a new connection", async () => {
  const { broker, producer } = setup(1, "", 300);
  try {
    await producer.send([frame("robot-a", 0)]);
    broker.state.silentProduce = true;
    const started = performance.now();
    await assert.rejects(
      producer.send([frame("robot-a", 1)]),
      (e: Error) =>
        e instanceof ServiceError && e.retriable &&
        /no answer from 127\.0\.0\.1:\d+ within 0\.3 s/.test(e.message),
    );
    assert.ok(performance.now() - started < 2000, "within about the timeout");
    broker.state.silentProduce = false;
    await producer.send([frame("robot-a", 2)]);
    assert.deepEqual(
      broker.state.records.map((r) => r.key.split(":")[1]),
      [0, 2].map((i) => `${T0 + i * 100}`),
    );
    assert.equal(broker.state.connections, 2);
  } finally {
    await producer.close();
    broker.close();
  }
});
