import assert from "node:assert/strict";
import { resolveConfig } from "../src/config.ts";
import { decodeFrame } from "../src/frame.ts";
import type { FrameProducer, OutgoingMessage } from "../src/kafka.ts";
import { memoryLogger } from "../src/log.ts";
import { captureTime, FrameSender } from "../src/producer.ts";

const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
const T0 = Date.UTC(2026, 1, 18, 9, 39, 32);

/** A Kafka stand-in that records what it was sent and can be "down". */
function fakeKafka() {
  const sent: OutgoingMessage[] = [];
  const state = { down: false, sent };
  const kafka: FrameProducer = {
    send(messages) {
      if (state.down) return Promise.reject(new Error("broker away"));
      sent.push(...messages);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return { kafka, state };
}

function sender(toml = "", kafka = fakeKafka()) {
  const config = resolveConfig(toml);
  const log = memoryLogger();
  const s = new FrameSender({
    config,
    robotId: "reachy-001",
    log,
    kafka: kafka.kafka,
    sleep: () => new Promise((r) => setTimeout(r, 1)),
  });
  return { s, log, state: kafka.state };
}

Deno.test("frames are wrapped, keyed and numbered in order", async () => {
  const { s, state } = sender();
  for (let i = 0; i < 5; i++) assert.equal(s.offer({ jpeg: JPEG, receivedAtMs: T0 + i * 100 }), "queued");
  s.close();
  await s.run();
  assert.deepEqual(state.sent.map((m) => m.key), [0, 1, 2, 3, 4].map((i) => `reachy-001:${T0 + i * 100}`));
  const frames = state.sent.map((m) => decodeFrame(m.value));
  assert.deepEqual(frames.map((f) => f.seq), [0, 1, 2, 3, 4]);
  assert.deepEqual([...frames[0].jpeg], [...JPEG]);
});

Deno.test("the producer holds stream.fps", () => {
  const { s } = sender("[stream]\nfps = 10.0");
  // A camera sending 30 fps for 3 seconds.
  let queued = 0;
  for (let i = 0; i < 90; i++) {
    if (s.offer({ jpeg: JPEG, receivedAtMs: T0 + Math.round(i * 1000 / 30) }) === "queued") queued++;
  }
  assert.ok(queued >= 29 && queued <= 32, `queued ${queued} of 90 at 10 fps over 3 s`);
  assert.equal(s.counts.throttled, 90 - queued);
});

Deno.test("parts that are not JPEGs or too large are refused, logged once and counted", () => {
  const { s, log } = sender("[kafka]\nmax_message_bytes = 1024");
  assert.equal(s.offer({ jpeg: new TextEncoder().encode("<html>404</html>"), receivedAtMs: T0 }), "refused");
  const big = new Uint8Array(2000);
  big.set([0xff, 0xd8]);
  big.set([0xff, 0xd9], 1998);
  assert.equal(s.offer({ jpeg: big, receivedAtMs: T0 + 1000 }), "refused");
  assert.equal(s.counts.refused, 2);
  assert.equal(log.lines.length, 2);
  assert.match(log.lines[0], /not a JPEG/);
  assert.match(log.lines[1], /2000 bytes exceeds kafka\.max_message_bytes \(1024\)/);
});

Deno.test("while the broker is away the queue is bounded and drops the oldest", async () => {
  const { s, state, log } = sender("[producer]\nbuffer_frames = 5\nbatch_frames = 2");
  state.down = true;
  const running = s.run();
  for (let i = 0; i < 20; i++) s.offer({ jpeg: JPEG, receivedAtMs: T0 + i * 100 });
  assert.ok(s.queued <= 5, `queued ${s.queued}`);
  assert.equal(s.counts.dropped, 15);
  assert.ok(log.lines.some((l) => /queue full \(5 frames\), dropping oldest/.test(l)));
  state.down = false;
  s.close();
  await running;
  const seqs = state.sent.map((m) => decodeFrame(m.value).seq);
  assert.equal(seqs.length, 5);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "still in order");
  assert.equal(seqs.at(-1), 19, "the newest frame survives");
});

Deno.test("capture time comes from X-Timestamp when it is plausible", () => {
  assert.equal(
    captureTime({ jpeg: JPEG, receivedAtMs: T0, headers: { "x-timestamp": `${(T0 - 40) / 1000}` } }),
    T0 - 40,
  );
  assert.equal(
    captureTime({ jpeg: JPEG, receivedAtMs: T0, headers: { "x-timestamp": "12.5" } }),
    T0,
    "a camera clock from 1970",
  );
  assert.equal(captureTime({ jpeg: JPEG, receivedAtMs: T0, headers: { "x-timestamp": "soon" } }), T0);
  assert.equal(captureTime({ jpeg: JPEG, receivedAtMs: T0 }), T0);
});
