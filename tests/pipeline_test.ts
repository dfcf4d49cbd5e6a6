/**
 * End to end on the real servers: two cameras (ffmpeg serving a real MJPEG stream, and the simulated camera),
 * a producer per robot, one consumer that is killed with SIGKILL mid-run and restarted.
 */
import assert from "node:assert/strict";
import { decodeFrame } from "../src/frame.ts";
import { openConsumer } from "../src/kafka.ts";
import { parseMessageKey, parseObjectKey } from "../src/key.ts";
import { loadFilter, loadStorage } from "../src/plugin_loader.ts";
import { createSceneFilter } from "../src/scene_filter.ts";
import { startCamera } from "../tools/camera.ts";
import { freePort, spawnDeno } from "../tools/processes.ts";
import { createTopic, ensureStack, isolatedConfig, lag, quietLog } from "./support/stack.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A live MJPEG stream over HTTP from ffmpeg (one client). Conway's game of life changes every frame, so the filter
 * accepts nearly all of them: many stores in flight when the consumer is killed.
 */
function ffmpegCamera(port: number) {
  const proc = new Deno.Command("ffmpeg", {
    args: [
      ...[
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "life=s=320x240:r=10:ratio=0.3:mold=10,scale=640:480:flags=neighbor",
      ],
      ...["-f", "mpjpeg", "-q:v", "5", "-content_type", "multipart/x-mixed-replace;boundary=ffmpeg"],
      ...["-listen", "1", `http://127.0.0.1:${port}/stream`],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    url: `http://127.0.0.1:${port}/stream`,
    async close() {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
      await proc.status;
    },
  };
}

Deno.test({
  name: "two robots flow camera -> Kafka -> filter -> S3, and a killed consumer loses nothing",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("e2e");
  await createTopic(config, 3);
  const ff = ffmpegCamera(freePort());
  const sim = await startCamera({ port: 0, fps: 10, stillSeconds: 2, seed: 7 });
  const env = { LOG_LEVEL: "debug" };
  const producers = [
    spawnDeno("producer ffcam-1", "src/main_produce.ts", ["ffcam-1", ff.url, "--config", path]),
    spawnDeno("producer sim-2", "src/main_produce.ts", ["sim-2", sim.url, "--config", path]),
  ];
  const consumers = [spawnDeno("consumer 1", "src/main_consume.ts", ["--config", path], { env })];
  try {
    await Promise.all(producers.map((p) => p.waitFor(/connected to camera/, 30000)));
    await consumers[0].waitFor(/accepted .*sim-2/, 30000);
    await sleep(6000);
    consumers[0].kill("SIGKILL");
    await consumers[0].exited;
    const acceptedBeforeKill = consumers[0].lines.map((l) => /: accepted (\S+) \(distance/.exec(l)?.[1])
      .filter((k) => k !== undefined);
    await sleep(2000);
    consumers.push(spawnDeno("consumer 2", "src/main_consume.ts", ["--config", path], { env }));
    await sleep(6000);
    const produced = new Map<string, number>();
    for (const p of producers) {
      await p.stop();
      const final = p.lines.find((l) => /\[stats\] final: /.test(l)) ?? "";
      const m = /final: (\S+) read \d+ sent (\d+)/.exec(final);
      assert.ok(m, `${p.name} printed no final stats line:\n${p.lines.slice(-10).join("\n")}`);
      produced.set(m[1], Number(m[2]));
    }
    for (let i = 0; i < 60 && (await lag(config)) > 0; i++) await sleep(500);
    assert.equal(await lag(config), 0, "the restarted consumer caught up");
    await consumers[1].stop();

    // What is stored, read back through the storage plugin.
    const storage = await loadStorage("rustfs", {
      endpoint: config.rustfs.endpoint,
      bucket: config.rustfs.bucket,
      accessKey: config.rustfs.access_key,
      secretKey: config.rustfs.secret_key,
    });
    const stored = new Set<string>();
    for await (const o of storage.list({ prefix: config.rustfs.prefix })) stored.add(o.key);
    const head = await storage.head([...stored][0]);
    assert.equal(head?.metadata?.filter, "ahash");
    storage.close();

    // Every frame accepted before the kill is stored.
    assert.ok(acceptedBeforeKill.length >= 2, `accepted before kill: ${acceptedBeforeKill}`);
    for (const key of acceptedBeforeKill) {
      assert.ok(stored.has(key), `${key} was accepted before the kill but is not stored`);
    }

    // Nothing is stored twice under different keys: one object per robot and capture time, and per sequence.
    const byTime = new Set<string>(), bySeq = new Set<string>();
    for (const key of stored) {
      const k = parseObjectKey(key);
      assert.ok(k, `stored key ${key} has the wrong shape`);
      assert.ok(
        !byTime.has(`${k.robotId}@${k.timestampMs}`),
        `two objects for ${k.robotId} at ${k.timestampMs}`,
      );
      assert.ok(!bySeq.has(`${k.robotId}#${k.seq}`), `two objects for ${k.robotId} seq ${k.seq}`);
      byTime.add(`${k.robotId}@${k.timestampMs}`);
      bySeq.add(`${k.robotId}#${k.seq}`);
    }

    // Read the whole topic back: each robot sits in one partition, and an uninterrupted filter run over the same
    // messages stores exactly what the interrupted consumers stored.
    const messages = await readTopic(config, [...produced.values()].reduce((a, b) => a + b, 0));
    const partitions = new Map<string, Set<number>>();
    for (const m of messages) {
      const robot = parseMessageKey(m.key).robotId;
      partitions.set(robot, (partitions.get(robot) ?? new Set()).add(m.partition));
    }
    for (const [robot, set] of partitions) {
      assert.equal(set.size, 1, `${robot} spread over partitions ${[...set]}`);
    }
    const filter = await createSceneFilter(config, (s) => loadFilter(s, "."));
    const expected = new Set<string>();
    for (const m of messages) {
      const robot = parseMessageKey(m.key).robotId;
      const frame = decodeFrame(m.value);
      const d = await filter.decide(robot, frame.jpeg);
      if (d.accept) expected.add(`${config.rustfs.prefix}${robot}/${keyTail(frame.timestampMs, frame.seq)}`);
    }
    assert.deepEqual([...stored].sort(), [...expected].sort(), "stored = what an uninterrupted run accepts");

    const report = [...produced.entries()].map(([robot, n]) => {
      const accepted = [...stored].filter((k) => k.includes(`/${robot}/`)).length;
      return `${robot}: produced ${n}, accepted ${accepted}, stored ${accepted}, partition ${
        [...partitions.get(robot)!][0]
      }`;
    });
    console.log(
      `e2e: ${report.join("; ")}; accepted before the SIGKILL ${acceptedBeforeKill.length}, all stored`,
    );
  } finally {
    for (const c of [...producers, ...consumers]) c.kill("SIGKILL");
    await Promise.all([...producers, ...consumers].map((c) => c.exited));
    await ff.close();
    await sim.close();
    await Deno.remove(path);
  }
});

function keyTail(ts: number, seq: number): string {
  const d = new Date(ts).toISOString(); // 2026-02-18T09:39:32.518Z
  const day = d.slice(0, 10);
  const compact = day.replaceAll("-", "") + "T" + d.slice(11, 19).replaceAll(":", "") + d.slice(20, 23) + "Z";
  return `${day}/${compact}_${String(seq).padStart(6, "0")}.jpg`;
}

/** Reads `count` messages of the topic with a fresh group, in partition order. */
async function readTopic(
  config: Awaited<ReturnType<typeof isolatedConfig>>["config"],
  count: number,
): Promise<{ partition: number; offset: number; key: string; value: Uint8Array }[]> {
  const reader = await openConsumer(
    { ...config.kafka, group_id: `${config.kafka.group_id}-verify` },
    quietLog,
  );
  const out: { partition: number; offset: number; key: string; value: Uint8Array }[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  await reader.run(async (batch) => {
    for (const m of batch.messages) {
      out.push({
        partition: batch.partition,
        offset: Number(m.offset),
        key: m.key ?? "",
        value: m.value ?? new Uint8Array(),
      });
      batch.resolveOffset(m.offset);
    }
    if (out.length >= count) done();
    await Promise.resolve();
  }, { partitionsConcurrently: 3 });
  await Promise.race([all, sleep(30000)]);
  await reader.stop();
  assert.equal(out.length, count, "read back every produced message");
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}
