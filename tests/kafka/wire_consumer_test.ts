/**
 * The wire consumer's pure parts: record-batch decoding (codecs, control batches, aborted transactions, a batch cut
 * off at the end of a fetch) and the group protocol's encodings and round-robin assignment, checked against
 * kafkajs' own code.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import snappy from "snappyjs";
import { MemberAssignment, MemberMetadata } from "kafkajs/src/consumer/assignerProtocol.js";
import RoundRobinAssigner from "kafkajs/src/consumer/assigners/roundRobinAssigner/index.js";
import { concatBytes } from "../../src/bytes.ts";
import { xerialSnappy } from "../support/bytes.ts";
import { resolveConfig } from "../../src/config.ts";
import { ServiceError } from "../../src/errors.ts";
import { RequestWriter, writeRecordBatch } from "../../src/ingest/kafka_wire.ts";
import type { OutgoingMessage } from "../../src/kafka/client.ts";
import {
  decodeAssignment,
  decodeMemberMetadata,
  decodeRecords,
  encodeAssignment,
  encodeMemberMetadata,
  roundRobinAssign,
  unsnappy,
} from "../../src/kafka/wire_consumer.ts";

const text = new TextEncoder();

function sample(count: number, tag: string, size = 100): OutgoingMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `robot-${tag}:${i}`,
    value: text.encode(`${tag}${i}:`.padEnd(size + i, "x")),
    timestampMs: 1_700_000_000_000 + i * 10,
  }));
}

/**
 * One record batch as the broker stores it: the producer's own encoder, then the fields a broker sets (base
 * offset) and those a transactional producer sets (producer id, transactional and control bits).
 */
async function batch(
  messages: OutgoingMessage[],
  baseOffset: number,
  options: {
    compression?: "none" | "gzip" | "snappy";
    producerId?: number;
    transactional?: boolean;
    control?: boolean;
  } = {},
): Promise<Uint8Array> {
  const w = new RequestWriter();
  await writeRecordBatch(w, messages, options.compression ?? "none");
  const bytes = concatBytes(w.parts()).slice(4); // the records field's length first
  const view = new DataView(bytes.buffer);
  view.setInt32(0, Math.floor(baseOffset / 0x1_0000_0000));
  view.setUint32(4, baseOffset >>> 0);
  let attributes = view.getInt16(21);
  if (options.transactional) attributes |= 0x10;
  if (options.control) attributes |= 0x20;
  view.setInt16(21, attributes);
  if (options.producerId !== undefined) {
    view.setInt32(43, 0);
    view.setUint32(47, options.producerId);
  }
  return bytes;
}

const plain = (m: { offset: string; key: string | null; value: Uint8Array | null; timestampMs: number }) => ({
  offset: m.offset,
  key: m.key,
  value: m.value && new Uint8Array(m.value),
  timestampMs: m.timestampMs,
});

const expected = (messages: OutgoingMessage[], first: number) =>
  messages.map((m, i) => ({
    offset: String(first + i),
    key: m.key,
    value: m.value,
    timestampMs: m.timestampMs,
  }));

Deno.test("record batches: every codec decodes to the same messages; uncompressed values are views", async (t) => {
  for (const compression of ["none", "gzip", "snappy"] as const) {
    await t.step(compression, async () => {
      const messages = sample(5, compression);
      const records = concatBytes([await batch(messages, 40, { compression })]);
      const decoded = decodeRecords(records, 40);
      assert.deepEqual(decoded.messages.map(plain), expected(messages, 40));
      assert.equal(decoded.next, 45);
      for (const m of decoded.messages) {
        assert.equal(Object.getPrototypeOf(m.value), Uint8Array.prototype, "a plain Uint8Array");
        if (compression === "none") {
          assert.equal(m.value!.buffer, records.buffer, "a view of the fetch answer");
        }
      }
    });
  }
});

Deno.test("record batches: messages before the position are dropped, also inside a compressed batch", async () => {
  const messages = sample(6, "p");
  const records = concatBytes([
    await batch(messages.slice(0, 3), 100),
    await batch(messages.slice(3), 103, { compression: "gzip" }),
  ]);
  assert.deepEqual(decodeRecords(records, 104).messages.map((m) => m.offset), ["104", "105"]);
  assert.deepEqual(decodeRecords(records, 0).messages.map((m) => m.offset), [
    "100",
    "101",
    "102",
    "103",
    "104",
    "105",
  ]);
});

Deno.test("record batches: a batch cut off at the end of a fetch is ignored", async () => {
  const a = await batch(sample(2, "a"), 0);
  const b = await batch(sample(3, "b", 5000), 2);
  for (const cut of [1, 11, 12, 60, b.length - 1]) {
    const decoded = decodeRecords(concatBytes([a, b.subarray(0, cut)]), 0);
    assert.deepEqual(decoded.messages.map((m) => m.offset), ["0", "1"], `cut after ${cut} bytes`);
    assert.equal(decoded.next, 2, "the position stays at the cut-off batch");
  }
  assert.deepEqual(decodeRecords(b.subarray(0, 30), 2), { messages: [], next: 2 });
});

Deno.test("record batches: control batches and aborted transactions are skipped; the position steps over them", async () => {
  const committed = sample(2, "committed");
  const abortedOnes = sample(2, "aborted");
  const records = concatBytes([
    await batch(committed, 10, { producerId: 7, transactional: true }),
    await batch(sample(1, "marker"), 12, { producerId: 7, transactional: true, control: true }),
    await batch(abortedOnes, 13, { producerId: 8, transactional: true }),
    await batch(sample(1, "marker"), 15, { producerId: 8, transactional: true, control: true }),
    await batch(sample(1, "later"), 16, { producerId: 8, transactional: true }), // a later, committed transaction
  ]);
  const decoded = decodeRecords(records, 10, [{ producerId: 8, firstOffset: 13 }]);
  assert.deepEqual(decoded.messages.map((m) => m.key), [
    "robot-committed:0",
    "robot-committed:1",
    "robot-later:0",
  ]);
  const onlyControl = decodeRecords(concatBytes([await batch(sample(1, "m"), 30, { control: true })]), 30);
  assert.deepEqual(onlyControl, { messages: [], next: 31 });
});

Deno.test("record batches: lz4 and zstd are refused with the fix", async () => {
  const bytes = await batch(sample(1, "z"), 0);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  for (const [codec, name] of [[3, "lz4"], [4, "zstd"]] as const) {
    view.setInt16(21, codec);
    assert.throws(() => decodeRecords(bytes, 0, [], "partition 3 of t"), (error: Error) => {
      assert.ok(error instanceof ServiceError);
      assert.match(error.message, new RegExp(`partition 3 of t holds ${name}-compressed batches`));
      assert.match(error.message, /kafka\.compression\) to none, gzip or snappy/);
      return true;
    });
  }
});

Deno.test("snappy: raw blocks and xerial framing (Java client, kafkajs' snappy codec) both decode", () => {
  const data = text.encode("frame ".repeat(5000));
  assert.deepEqual(unsnappy(snappy.compress(data)), data);
  assert.deepEqual(unsnappy(xerialSnappy(snappy.compress, data, [10000])), data);
});

Deno.test("group protocol: member metadata and assignments are kafkajs' bytes, both ways", () => {
  const ours = encodeMemberMetadata(["camera.frames"]);
  const theirs = MemberMetadata.encode({ version: 0, topics: ["camera.frames"] });
  assert.deepEqual(ours, new Uint8Array(theirs));
  assert.deepEqual(decodeMemberMetadata(new Uint8Array(theirs)), ["camera.frames"]);

  const assignment = new Map([["camera.frames", [0, 3, 6]]]);
  const encoded = encodeAssignment(assignment);
  const kafkajsEncoded = MemberAssignment.encode({ version: 0, assignment: { "camera.frames": [0, 3, 6] } });
  assert.deepEqual(encoded, new Uint8Array(kafkajsEncoded));
  assert.deepEqual(MemberAssignment.decode(Buffer.from(encoded))?.assignment, { "camera.frames": [0, 3, 6] });
  assert.deepEqual(decodeAssignment(new Uint8Array(kafkajsEncoded)), assignment);
  // A member the leader gave nothing gets empty bytes (kafkajs) or an empty assignment (us).
  assert.deepEqual(decodeAssignment(new Uint8Array(0)), new Map());
  assert.deepEqual(decodeAssignment(null), new Map());
  assert.deepEqual(decodeAssignment(encodeAssignment(new Map())), new Map());
});

Deno.test("group protocol: the round-robin assignment is kafkajs' RoundRobinAssigner's", async (t) => {
  const cases: [string, string[], number[]][] = [
    ["one member", ["consumer-a"], [0, 1, 2]],
    ["two members, 12 partitions", ["m-b", "m-a"], [...Array(12).keys()]],
    ["more members than partitions", ["z", "y", "x", "w"], [0, 1]],
    ["partitions in the metadata's order", ["b", "a", "c"], [2, 0, 1, 5, 4, 3]],
    ["ids that sort differently by case", ["Zed-1", "alpha-2", "Beta-3"], [0, 1, 2, 3, 4]],
  ];
  for (const [name, members, partitions] of cases) {
    await t.step(name, async () => {
      const cluster = {
        findTopicPartitionMetadata: () => partitions.map((partitionId) => ({ partitionId })),
      };
      const assigner = RoundRobinAssigner({ cluster });
      const theirs = await assigner.assign({
        members: members.map((memberId) => ({ memberId })),
        topics: ["t"],
      });
      const ours = roundRobinAssign(members, [{ topic: "t", partitions }]);
      const theirsDecoded = new Map(
        theirs.map((a: { memberId: string; memberAssignment: Buffer }) => [
          a.memberId,
          MemberAssignment.decode(a.memberAssignment)?.assignment.t,
        ]),
      );
      assert.deepEqual(new Map([...ours].map(([id, topics]) => [id, topics.get("t")])), theirsDecoded);
      // And the bytes each member receives decode to the same partitions.
      for (const a of theirs as { memberId: string; memberAssignment: Buffer }[]) {
        assert.deepEqual(
          decodeAssignment(encodeAssignment(ours.get(a.memberId)!)),
          decodeAssignment(new Uint8Array(a.memberAssignment)),
        );
      }
    });
  }
});

Deno.test("config: kafka.consumer_client picks the consumer's client (wire by default, env KAFKA_CONSUMER_CLIENT)", () => {
  assert.equal(resolveConfig("").kafka.consumer_client, "wire");
  assert.equal(resolveConfig('[kafka]\nconsumer_client = "kafkajs"').kafka.consumer_client, "kafkajs");
  assert.equal(
    resolveConfig("", { env: { KAFKA_CONSUMER_CLIENT: "kafkajs" } }).kafka.consumer_client,
    "kafkajs",
  );
  assert.throws(
    () => resolveConfig('[kafka]\nconsumer_client = "librdkafka"'),
    /kafka\.consumer_client = "librdkafka" is not one of kafkajs, wire/,
  );
});
