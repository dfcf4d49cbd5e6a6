import assert from "node:assert/strict";
import { resolveConfig } from "../../src/config.ts";
import { decodeFrame } from "../../src/ingest/frame.ts";
import type { FrameProducer, OutgoingMessage } from "../../src/kafka/client.ts";
import { memoryLogger } from "../../src/log.ts";
import { captureTime, FrameSender } from "../../src/ingest/producer.ts";
import { freePort, spawnDeno } from "../../dev/processes.ts";
import { greyJpeg } from "../support/images.ts";
import { createTopic, ensureStack, isolatedConfig } from "../support/stack.ts";
import { sleep } from "../../src/ingest/camera.ts";

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
    sleep: () => sleep(1),
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

Deno.test("parts the camera reader drops are counted as refused, next to the producer's own refusals", () => {
  const { s } = sender();
  s.refuse("part-too-large");
  s.refuse("not-jpeg");
  s.refuse("no-boundary"); // a stream without delimiters is a failed connection, not a part
  assert.equal(s.counts.refused, 2);
  assert.equal(s.counts.read, 2, "read = throttled + refused + queued, as for offer()");
  assert.match(s.toPrometheus(), /^frame_bucket_frames_refused_total\{robot="reachy-001"\} 2$/m);
  assert.match(s.line(), / refused 2 /);
});

/**
 * A camera on loopback whose first answer (stream mode: first part) is larger than the producer accepts and whose
 * second is not a JPEG; after that it sends a small real JPEG every 100 ms, so the run shows progress.
 */
function badThenGoodCamera(maxPartBytes: number) {
  const good = greyJpeg(32, 24, (x, y) => (x * 7 + y * 3) % 256);
  const oversized = new Uint8Array(maxPartBytes + 4096);
  oversized.set([0xff, 0xd8]);
  oversized.set([0xff, 0xd9], oversized.length - 2);
  const text = new TextEncoder().encode("camera warming up");
  const parts = [{ type: "image/jpeg", body: oversized }, { type: "text/plain", body: text }];
  let polls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname.endsWith("/frame")) {
      const part = parts[polls++] ?? { type: "image/jpeg", body: good };
      return new Response(part.body, { headers: { "content-type": part.type } });
    }
    const encoder = new TextEncoder();
    let timer: ReturnType<typeof setInterval> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (part: { type: string; body: Uint8Array }) => {
          controller.enqueue(
            encoder.encode(
              `--frame\r\nContent-Type: ${part.type}\r\nContent-Length: ${part.body.length}\r\n\r\n`,
            ),
          );
          controller.enqueue(part.body);
          controller.enqueue(encoder.encode("\r\n"));
        };
        for (const part of parts) send(part);
        timer = setInterval(() => {
          // A stream the client dropped may be closed without cancel() (the connection was reset): stop then.
          try {
            send({ type: "image/jpeg", body: good });
          } catch {
            clearInterval(timer);
          }
        }, 100);
      },
      cancel: () => clearInterval(timer),
    });
    return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/api/camera/stream`,
    close: () => server.shutdown(),
  };
}

/** The producer's counter `name` for `robot` from its /metrics, or null when it does not answer yet. */
async function producerCounter(port: number, name: string, robot: string): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = new RegExp(`^${name}\\{robot="${robot}"\\} (\\d+)$`, "m").exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

Deno.test({
  name:
    "the producer counts oversized and non-JPEG camera parts in frames_refused_total (stream and polling)",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await ensureStack();
  for (const mode of ["mjpeg", "polling"] as const) {
    await t.step(mode, async () => {
      const maxMessageBytes = 64 * 1024;
      const { path, config } = await isolatedConfig(`refused-${mode}`, {
        kafka: { max_message_bytes: maxMessageBytes },
        stream: { mode, fps: 10 },
      });
      await createTopic(config, 1);
      const camera = badThenGoodCamera(maxMessageBytes);
      const port = freePort();
      const robot = `refuse-${mode}`;
      const producer = spawnDeno(`producer ${mode}`, "src/main/produce.ts", [
        robot,
        camera.url,
        "--config",
        path,
        "--metrics-port",
        String(port),
      ]);
      try {
        // The bad parts come first, so once good frames are acknowledged both were read: wait for that, for as
        // long as the producer keeps running (a slow machine only makes this slower).
        const exited = producer.exited.then(() => "exited");
        let sent = 0;
        for (let waited = 0; sent < 3; waited += 200) {
          if (await Promise.race([exited, sleep(200)]) === "exited") {
            assert.fail(`the producer exited; last lines:\n${producer.lines.slice(-15).join("\n")}`);
          }
          assert.ok(
            waited < 300_000,
            `no frames sent within 5 minutes:\n${producer.lines.slice(-15).join("\n")}`,
          );
          sent = await producerCounter(port, "frame_bucket_frames_sent_total", robot) ?? 0;
        }
        assert.equal(await producerCounter(port, "frame_bucket_frames_refused_total", robot), 2);
        assert.ok(
          producer.lines.some((l) => /over maxPartBytes/.test(l)),
          "the oversized part was logged with the limit",
        );
      } finally {
        await producer.stop();
        await camera.close();
        await Deno.remove(path).catch(() => {});
      }
      assert.match(producer.lines.findLast((l) => /\[stats\] final: /.test(l)) ?? "", / refused 2 /);
    });
  }
});
