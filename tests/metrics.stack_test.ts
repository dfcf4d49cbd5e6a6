import assert from "node:assert/strict";
import { encodeFrame } from "../src/ingest/frame.ts";
import { openProducer } from "../src/kafka/client.ts";
import { Registry, serveMetrics } from "../src/metrics.ts";
import { freePort, spawnDeno } from "../dev/processes.ts";
import { readSamples } from "./support/images.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "./support/stack.ts";
import { sleep } from "../src/ingest/camera.ts";

Deno.test("metrics render in the Prometheus text format", () => {
  const r = new Registry();
  const c = r.counter("x_total", "Things.");
  c.inc({ robot: 'a"b' });
  c.inc({ robot: 'a"b' }, 2);
  r.gauge("y", "Level.").set({}, 5);
  const h = r.histogram("z_seconds", "Time.", [0.1, 1]);
  h.observe({ robot: "r" }, 0.05);
  h.observe({ robot: "r" }, 0.5);
  r.collect(() => "# HELP w_total W.\n# TYPE w_total counter\nw_total 7");
  assert.equal(
    r.render(),
    [
      "# HELP x_total Things.",
      "# TYPE x_total counter",
      'x_total{robot="a\\"b"} 3',
      "# HELP y Level.",
      "# TYPE y gauge",
      "y 5",
      "# HELP z_seconds Time.",
      "# TYPE z_seconds histogram",
      'z_seconds_bucket{robot="r",le="0.1"} 1',
      'z_seconds_bucket{robot="r",le="1"} 2',
      'z_seconds_bucket{robot="r",le="+Inf"} 2',
      'z_seconds_sum{robot="r"} 0.55',
      'z_seconds_count{robot="r"} 2',
      "# HELP w_total W.",
      "# TYPE w_total counter",
      "w_total 7",
      "",
    ].join("\n"),
  );
});

Deno.test("/healthz fails naming the check that failed", async () => {
  let s3Up = true;
  const server = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    checks: [
      { name: "kafka", check: () => Promise.resolve() },
      {
        name: "s3",
        check: () => (s3Up ? Promise.resolve() : Promise.reject(new Error("connection refused"))),
      },
    ],
  });
  try {
    const ok = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { kafka: "ok", s3: "ok" });
    s3Up = false;
    await sleep(5100); // answers are cached for 5 s
    const bad = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(bad.status, 503);
    assert.deepEqual(await bad.json(), { kafka: "ok", s3: "connection refused" });
    const missing = await fetch(`http://127.0.0.1:${server.port}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("/healthz: a check that hangs fails after the deadline, and concurrent probes share one run", async () => {
  let runs = 0;
  const server = serveMetrics({
    hostname: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    checkTimeoutMs: 200,
    checks: [
      {
        name: "kafka",
        check: () => {
          runs++;
          return sleep(1000); // a broker client stuck retrying
        },
      },
    ],
  });
  try {
    const answers = await Promise.all([1, 2, 3].map(() => fetch(`http://127.0.0.1:${server.port}/healthz`)));
    for (const a of answers) {
      assert.equal(a.status, 503);
      assert.deepEqual(await a.json(), { kafka: "no answer within 0.2 s" });
    }
    assert.equal(runs, 1);
    await sleep(900); // let the stuck check end before the sanitizers look
  } finally {
    await server.close();
  }
});

Deno.test({
  name: "the consumer serves per-robot counters, latencies and lag on /metrics",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("metrics");
  await createTopic(config, 1);
  const port = freePort();
  const producer = await openProducer(config.kafka, quietLog);
  const jpeg = readSamples()[0];
  const now = Date.now();
  await producer.send(
    [0, 1, 2].map((i) => ({
      key: `m-1:${now + i}`,
      value: encodeFrame(now + i, i, jpeg),
      timestampMs: now + i,
    })),
  );
  await producer.close();
  const consumer = spawnDeno("consumer", "src/main/consume.ts", ["--config", path], {
    env: { CONSUMER_METRICS_PORT: String(port) },
  });
  try {
    await consumer.waitFor(/\[stats\].*m-1 \[ahash\] received 3 accepted 1 dropped 2 stored 1/, 30000);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /^frame_bucket_frames_received_total\{robot="m-1"\} 3$/m);
    assert.match(text, /^frame_bucket_frames_rejected_total\{robot="m-1"\} 2$/m);
    assert.match(text, /^frame_bucket_frames_stored_total\{robot="m-1"\} 1$/m);
    assert.match(text, new RegExp(`^frame_bucket_bytes_stored_total\\{robot="m-1"\\} ${jpeg.length}$`, "m"));
    assert.match(text, /^frame_bucket_filter_seconds_count\{robot="m-1"\} 3$/m);
    assert.match(text, /^frame_bucket_store_seconds_bucket\{robot="m-1",le="\+Inf"\} 1$/m);
    assert.match(text, /^frame_bucket_consumer_lag\{partition="0"\} 0$/m);
    // Memory, for sizing hosts: the resident figures are the process's, in bytes, the peak never below now.
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
    const peak = Number(/^frame_bucket_resident_memory_peak_bytes (\d+)$/m.exec(text)?.[1]);
    assert.ok(rss > 20 * 1024 * 1024 && peak >= rss * 0.9, `rss ${rss}, peak ${peak}`);
    assert.match(text, /^frame_bucket_heap_bytes\{kind="used"\} \d+$/m);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { kafka: "ok", s3: "ok", catalog: "ok" });
  } finally {
    await consumer.stop();
    await Deno.remove(path);
  }
});
