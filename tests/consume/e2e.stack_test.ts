/**
 * End to end on the real servers: two cameras (ffmpeg serving a real MJPEG stream, and the simulated camera),
 * a producer per robot, one consumer that is killed with SIGKILL mid-run and restarted.
 */
import assert from "node:assert/strict";
import { parseObjectKey } from "../../src/key.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { audit, waitForDrain } from "../../dev/audit.ts";
import { startCamera } from "../../tools/camera.ts";
import { freePort, spawnDeno } from "../../dev/processes.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";
import { sleep } from "../../src/ingest/camera.ts";

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
    spawnDeno("producer ffcam-1", "src/main/produce.ts", ["ffcam-1", ff.url, "--config", path]),
    spawnDeno("producer sim-2", "src/main/produce.ts", ["sim-2", sim.url, "--config", path]),
  ];
  const consumers = [spawnDeno("consumer 1", "src/main/consume.ts", ["--config", path], { env })];
  try {
    await Promise.all(producers.map((p) => p.waitFor(/connected to camera/, 30000)));
    await consumers[0].waitFor(/accepted .*sim-2/, 30000);
    await sleep(6000);
    consumers[0].kill("SIGKILL");
    await consumers[0].exited;
    const acceptedBeforeKill = consumers[0].lines.map((l) => /: accepted (\S+) \(distance/.exec(l)?.[1])
      .filter((k) => k !== undefined);
    await sleep(2000);
    consumers.push(spawnDeno("consumer 2", "src/main/consume.ts", ["--config", path], { env }));
    await sleep(6000);
    const produced = new Map<string, number>();
    for (const p of producers) {
      await p.stop();
      const final = p.lines.find((l) => /\[stats\] final: /.test(l)) ?? "";
      const m = /final: (\S+) read \d+ sent (\d+)/.exec(final);
      assert.ok(m, `${p.name} printed no final stats line:\n${p.lines.slice(-10).join("\n")}`);
      produced.set(m[1], Number(m[2]));
    }
    const lag = await waitForDrain(config, quietLog, {
      describe: () => consumers[1].lines.slice(-20).join("\n"),
    });
    assert.equal(
      lag,
      0,
      `the restarted consumer caught up; its last lines:\n${consumers[1].lines.slice(-20).join("\n")}`,
    );
    await consumers[1].stop();

    // The stored objects carry the filter's metadata.
    const storage = await loadStorage("rustfs", {
      endpoint: config.rustfs.endpoint,
      bucket: config.rustfs.bucket,
    });
    const result = await audit(config, quietLog);
    const head = await storage.head([...result.stored][0]);
    assert.equal(head?.metadata?.filter, "ahash");
    storage.close();
    const { stored, partitions } = result;

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

    // The whole topic read back: each robot sits in one partition, and an uninterrupted filter run over the same
    // messages stores exactly what the interrupted consumers stored.
    assert.equal(
      result.messages,
      [...produced.values()].reduce((a, b) => a + b, 0),
      "every sent frame is in the topic",
    );
    for (const [robot, set] of partitions) {
      assert.equal(set.size, 1, `${robot} spread over partitions ${[...set]}`);
    }
    assert.deepEqual(result.lost, [], "accepted frames lost");
    assert.deepEqual(result.extra, [], "frames stored that an uninterrupted run does not store");

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
