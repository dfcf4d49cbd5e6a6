import assert from "node:assert/strict";
import snappy from "snappyjs";
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import {
  compressionCodec,
  kafkaError,
  kafkaLogText,
  openProducer,
  scheduleCheckPendingRequests,
  snappyDecompress,
} from "../../src/kafka/client.ts";
import { resolveConfig } from "../../src/config.ts";
import { memoryLogger } from "../../src/log.ts";
import { ensureStack, isolatedConfig } from "../support/stack.ts";
import { sleep } from "../../src/ingest/camera.ts";
import { xerialSnappy } from "../support/bytes.ts";

Deno.test("snappy: raw blocks and the Java client's xerial framing both decode", async (t) => {
  const data = new TextEncoder().encode("frame ".repeat(5000));
  await t.step("raw block (librdkafka, kafkajs)", () => {
    assert.deepEqual(snappyDecompress(snappy.compress(data)), data);
  });
  await t.step("xerial framing with two blocks (Java client)", () => {
    const framed = xerialSnappy(snappy.compress, data, [10000]);
    assert.deepEqual(new Uint8Array(snappyDecompress(framed)), data);
  });
  await t.step("a corrupt xerial block length is an error", () => {
    const framed = new Uint8Array(24);
    framed.set([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
    new DataView(framed.buffer).setInt32(16, 1000);
    assert.throws(() => snappyDecompress(framed), SyntaxError);
  });
});

Deno.test("kafkajs request queue: the check timer runs only while requests wait", async (t) => {
  await t.step("kafkajs' RequestQueue uses our scheduler", () => {
    assert.equal(RequestQueue.prototype.scheduleCheckPendingRequests, scheduleCheckPendingRequests);
  });
  const queue = (pending: unknown[], throttledUntil = -1) => {
    const q = {
      pending,
      throttledUntil,
      throttleCheckTimeoutId: null as ReturnType<typeof setTimeout> | null,
      checks: 0,
      checkPendingRequests() {
        q.checks++;
      },
    };
    return q;
  };
  await t.step("an idle queue arms no timer (kafkajs 2.2.4 re-armed one every millisecond)", () => {
    const q = queue([]);
    scheduleCheckPendingRequests.call(q);
    assert.equal(q.throttleCheckTimeoutId, null);
  });
  await t.step("a waiting request is checked again after kafkajs' 10 ms", async () => {
    const q = queue([{}]);
    scheduleCheckPendingRequests.call(q);
    assert.notEqual(q.throttleCheckTimeoutId, null);
    scheduleCheckPendingRequests.call(q); // already armed: no second timer
    await sleep(30);
    assert.equal(q.checks, 1);
    assert.equal(q.throttleCheckTimeoutId, null);
  });
  await t.step("a throttled queue is checked when the broker's throttle ends", async () => {
    const q = queue([{}], Date.now() + 60);
    scheduleCheckPendingRequests.call(q);
    await sleep(30);
    assert.equal(q.checks, 0);
    await sleep(60);
    assert.equal(q.checks, 1);
  });
});

Deno.test("compression codecs round-trip a frame", async (t) => {
  const frame = new TextEncoder().encode("jpeg-ish ".repeat(20000));
  for (const name of ["none", "snappy", "gzip"] as const) {
    await t.step(name, async () => {
      const codec = compressionCodec(name);
      assert.deepEqual(new Uint8Array(await codec.decompress(await codec.compress(frame))), frame);
    });
  }
});

Deno.test("kafkaError: the broker's refusal is told apart from an unreachable broker", async (t) => {
  const config = resolveConfig("").kafka;
  const wrapped = (type: string, message: string) =>
    Object.assign(new Error(message), {
      name: "KafkaJSNumberOfRetriesExceeded",
      originalError: Object.assign(new Error(message), { name: "KafkaJSProtocolError", type }),
    });
  await t.step("a batch refused as corrupt says so, not 'cannot reach'", () => {
    const e = kafkaError(
      config,
      wrapped("CORRUPT_MESSAGE", "failed its CRC checksum"),
      "publishing 1 frame(s)",
    );
    assert.match(e.message, /refused a batch as invalid \(CORRUPT_MESSAGE\) while publishing/);
  });
  await t.step("a frame too large for the topic names both limits", () => {
    const e = kafkaError(config, wrapped("MESSAGE_TOO_LARGE", "too large"), "publishing 1 frame(s)");
    assert.match(e.message, /max\.message\.bytes.*kafka\.max_message_bytes/);
  });
  await t.step("a refused connection is still 'cannot reach'", () => {
    const e = kafkaError(config, new Error("connect ECONNREFUSED 127.0.0.1:9092"), "connecting");
    assert.match(e.message, /cannot reach the Kafka broker at localhost:9092/);
  });
});

Deno.test("kafkajs log entries keep their reason: the error field, nested causes, an Error as the message", async (t) => {
  await t.step("a failed response names the broker's answer (kafkajs' connection.js shape)", () => {
    assert.equal(
      kafkaLogText({
        message: "Response Fetch(key: 1, version: 11)",
        broker: "127.0.0.1:9092",
        clientId: "frame-bucket-consumer",
        error: "The coordinator is loading and hence can't process requests",
        correlationId: 12,
        size: 40,
      }),
      "Response Fetch(key: 1, version: 11): The coordinator is loading and hence can't process requests " +
        "(broker 127.0.0.1:9092)",
    );
  });
  await t.step("an Error with a cause chain and a protocol error code", () => {
    const inner = Object.assign(new Error("This server does not host this topic-partition"), {
      type: "UNKNOWN_TOPIC_OR_PARTITION",
    });
    const outer = Object.assign(new Error("Number of retries exceeded"), { originalError: inner });
    assert.equal(
      kafkaLogText({ message: "Error when calling eachBatch", error: outer, topic: "t", partition: 0 }),
      "Error when calling eachBatch: Number of retries exceeded: " +
        "This server does not host this topic-partition (UNKNOWN_TOPIC_OR_PARTITION)",
    );
  });
  await t.step("an Error passed as the message, and a separate cause", () => {
    assert.equal(
      kafkaLogText({ message: new Error("Connection timeout"), cause: "broker restarting", retryCount: 2 }),
      "Connection timeout: broker restarting",
    );
  });
  await t.step("text already in the message is not repeated", () => {
    assert.equal(
      kafkaLogText({
        message: "Failed to connect to seed broker, trying another broker from the list: Connection timeout",
        error: "Connection timeout",
      }),
      "Failed to connect to seed broker, trying another broker from the list: Connection timeout",
    );
  });
  await t.step("odd shapes still give a line", () => {
    assert.equal(kafkaLogText({ message: "x", error: { code: 7 } }), 'x: {"code":7}');
    assert.equal(kafkaLogText({}), "(kafkajs logged no message)");
  });
});

Deno.test({
  name: "a broker's error answer is logged with its reason (real broker: publishing to a missing topic)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("kafka-log"); // its topic is never created
  const log = memoryLogger();
  const producer = await openProducer(config.kafka, log);
  try {
    await assert.rejects(
      () => producer.send([{ key: "r:1", value: new Uint8Array([1]), timestampMs: Date.now() }]),
      /does not exist/,
    );
  } finally {
    await producer.close();
    await Deno.remove(path);
  }
  const responses = log.lines.filter((l) => /\[kafkajs\] Response Metadata/.test(l));
  assert.ok(responses.length > 0, `kafkajs logged no failed response:\n${log.lines.join("\n")}`);
  for (const line of responses) {
    assert.match(line, /Response Metadata\(key: 3, version: \d+\): .*does not host this topic-partition/);
  }
});
