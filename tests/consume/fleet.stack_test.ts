/**
 * A fleet on one PostgreSQL catalog, on the real servers: three consumers in one group (separate processes with
 * separate working folders), two API servers, one evictor among the consumers. A consumer and the eviction leader
 * are SIGKILLed mid-run; at the end nothing accepted is lost, nothing is stored twice, and every object has
 * exactly one catalog row in the tier it is in. On the way it measures how long the evictor takes to fail over,
 * and how soon a label made through one server and a frame stored by any consumer are seen through the other.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "smol-toml";
import { PostgresCatalog } from "../../src/catalog/postgres.ts";
import type { Config } from "../../src/config.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { openProducer } from "../../src/kafka/client.ts";
import { messageKey } from "../../src/key.ts";
import { archiveStore, loadStorage, localStore } from "../../src/filter/loader.ts";
import { audit, waitForDrain } from "../../dev/audit.ts";
import { type Child, freePort, spawnDeno } from "../../dev/processes.ts";
import { mulberry32 } from "../../dev/random.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY, stackEndpoints } from "../../tools/stack.ts";
import { greyJpeg } from "../support/images.ts";
import { scratchPostgresUrl } from "../support/postgres.ts";
import { bucketName, createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";
import { sleep } from "../../src/ingest/camera.ts";

/** Outer bound of any wait on a process or a count; generous, a busy CI machine is slow. */
const LIMIT_MS = 180_000;
const ROBOTS = ["fleet-a", "fleet-b", "fleet-c", "fleet-d", "fleet-e", "fleet-f"];
const ENV = { AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY, LOG_LEVEL: "info" };

/** A scene per number (8x8 random blocks): any two differ in about half their aHash bits, so all are stored. */
function scene(n: number): Uint8Array {
  const next = mulberry32(n + 1);
  const cells = Array.from({ length: 64 }, () => next() >>> 24);
  return greyJpeg(320, 240, (x, y) => cells[Math.floor(y / 30) * 8 + Math.floor(x / 40)], 85);
}

/** Publishes `count` frames per robot, 250 ms apart from `base`, scenes numbered from `firstScene`. */
async function publish(config: Config, base: number, count: number, firstScene: number): Promise<void> {
  const producer = await openProducer(config.kafka, quietLog);
  try {
    for (const [r, robot] of ROBOTS.entries()) {
      const messages = [];
      for (let i = 0; i < count; i++) {
        const ts = base + i * 250;
        messages.push({
          key: messageKey(robot, ts),
          value: encodeFrame(
            ts,
            Math.round((ts - Date.UTC(2026, 10, 1)) / 250),
            scene(firstScene + r * 10_000 + i),
          ),
          timestampMs: ts,
        });
      }
      await producer.send(messages);
    }
  } finally {
    await producer.close();
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>): Promise<T> {
  const until = Date.now() + LIMIT_MS;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what} after ${LIMIT_MS / 1000} s`);
    await sleep(50);
  }
}

/** A copy of the config file with a working folder of its own (another host: no local state is shared). */
async function hostConfig(path: string, n: number): Promise<string> {
  const toml = parse(await Deno.readTextFile(path)) as Record<string, Record<string, unknown>>;
  toml.catalog = { ...toml.catalog, data_dir: await Deno.makeTempDir({ prefix: `fleet-host-${n}-` }) };
  const file = await Deno.makeTempFile({ prefix: `fleet-host-${n}-`, suffix: ".toml" });
  await Deno.writeTextFile(file, stringify(toml));
  return file;
}

Deno.test("a fleet on one PostgreSQL catalog: three consumers and two servers; a consumer and the eviction leader SIGKILLed mid-run lose nothing, store nothing twice, and every object has one row", async () => {
  await ensureStack();
  // The archive client of this process (the audit's) finds its credentials where the consumers do.
  Deno.env.set("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY);
  const url = await scratchPostgresUrl("fleet");
  const archiveBucket = bucketName("fleet-archive");
  // A budget of ~150 frames (eviction starts at 80 % of it): phase 1's 240 frames start the evictor, and phase
  // 2 keeps it busy through the kills.
  const perFrame = Array.from({ length: 10 }, (_, i) => scene(i).length).reduce((x, y) => x + y) / 10;
  const { path, config } = await isolatedConfig("fleet", {
    catalog: { url, reconcile_interval_secs: 0 },
    aws_s3: {
      bucket: archiveBucket,
      endpoint: stackEndpoints().s3Endpoint,
      region: "us-east-1",
      prefix: "archive/",
    },
    eviction: {
      max_bytes: Math.round(150 * perFrame),
      check_interval_secs: 0.5,
      lease_secs: 2,
      batch_size: 8,
      hard_limit_percent: 100,
    },
  });
  await createTopic(config, 6);
  const catalog = await PostgresCatalog.open(url);
  const archive = await loadStorage("s3_archive", {
    endpoint: stackEndpoints().s3Endpoint,
    bucket: archiveBucket,
    region: "us-east-1",
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    createBucket: true,
  });
  await archive.open(); // creates the archive bucket
  archive.close();
  const children: Child[] = [];
  const consumer = async (n: number) => {
    const c = spawnDeno(`consumer ${n}`, "src/main/consume.ts", ["--config", await hostConfig(path, n)], {
      env: ENV,
    });
    children.push(c);
    return c;
  };
  const server = async (n: number) => {
    const port = freePort();
    const s = spawnDeno(`server ${n}`, "src/main/serve.ts", [
      "--config",
      await hostConfig(path, 10 + n),
      "--port",
      String(port),
    ], {
      env: ENV,
    });
    children.push(s);
    await s.waitFor(/listening|http:\/\//, LIMIT_MS);
    return { child: s, base: `http://127.0.0.1:${port}` };
  };
  try {
    const consumers = [await consumer(1), await consumer(2), await consumer(3)];
    const [a, b] = [await server(1), await server(2)];

    // Phase 1: 40 frames per robot, then kill a consumer that is not the evictor, and the evictor, mid-run.
    const base = Date.UTC(2026, 10, 30, 8);
    await publish(config, base, 40, 0);
    await waitFor("frames stored by the fleet", async () => (await catalog.frameCount()) >= 60);
    const lease = await waitFor("an evictor among the consumers", async () => {
      const l = await catalog.lease("evictor");
      return l && l.expiresMs > Date.now() && (await catalog.totals()).archive.frames > 0 ? l : undefined;
    });
    const leaderPid = Number(lease.holder.split(":")[1]);
    const leader = consumers.find((c) => c.pid === leaderPid);
    assert.ok(leader, `the lease holder ${lease.holder} is one of the consumers`);
    const other = consumers.find((c) => c !== leader)!;
    other.kill("SIGKILL");
    leader.kill("SIGKILL");
    const killedAt = Date.now();
    const next = await waitFor("another evictor", async () => {
      const l = await catalog.lease("evictor");
      return l && l.token > lease.token && l.expiresMs > Date.now() ? l : undefined;
    });
    const failoverMs = Date.now() - killedAt;
    assert.notEqual(next.holder, lease.holder);
    // A replacement host joins; phase 2 arrives while the group rebalances.
    consumers.push(await consumer(4));
    await publish(config, base + 3_600_000, 40, 100);
    await waitForDrain(config, quietLog, { stallMs: LIMIT_MS });

    // Labels and frames across servers.
    const [row] = await catalog.findFrames({ robots: ["fleet-a"] }, { order: "newest", limit: 1 });
    const labelledAt = Date.now();
    const put = await fetch(`${a.base}/api/frames/labels`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ keys: [row.key], add: ["fleet-check"] }),
    });
    assert.equal(put.status, 200, await put.text());
    await waitFor("the label through server B", async () => {
      const r = await fetch(`${b.base}/api/frames/${encodeURIComponent(row.key)}`);
      const body = await r.json();
      return JSON.stringify(body).includes("fleet-check");
    });
    const labelMs = Date.now() - labelledAt;
    // A frame stored now by whichever consumer holds the robot's partition, found by similarity on both servers.
    const fresh = scene(999_999);
    const ts = base + 7_200_000;
    const producer = await openProducer(config.kafka, quietLog);
    await producer.send([{
      key: messageKey("fleet-c", ts),
      value: encodeFrame(ts, 1, fresh),
      timestampMs: ts,
    }]);
    await producer.close();
    const stored = await waitFor("the fresh frame's row", async () => {
      const [r] = await catalog.findFrames({ robots: ["fleet-c"], fromMs: ts, toMs: ts }, {
        order: "newest",
        limit: 1,
      });
      return r;
    });
    const similarMs: number[] = [];
    for (const s of [a, b]) {
      await waitFor(`the fresh frame by similarity on ${s.base}`, async () => {
        const r = await fetch(`${s.base}/api/similar?k=3`, {
          method: "POST",
          headers: { "content-type": "image/jpeg" },
          body: fresh as Uint8Array<ArrayBuffer>,
        });
        const body = await r.json() as { frames?: { key: string }[] };
        return body.frames?.some((f) => f.key === stored.key);
      });
      similarMs.push(Date.now() - stored.storedMs);
    }

    // Eviction settles (nothing left mid-move), then the audit: local and archive objects against the topic.
    await waitFor("eviction to settle", async () => (await catalog.totals()).archiving.frames === 0);
    for (const c of children) await c.stop();
    const result = await audit(config, quietLog, { archive: true });
    assert.deepEqual(result.lost, [], "accepted frames lost");
    assert.deepEqual(result.extra, [], "frames stored twice or not accepted");
    // Every object has exactly one row, in the tier it is in; every row has its object.
    const local = await localStore(config);
    const arch = await archiveStore(config);
    const inLocal = new Set<string>(), inArchive = new Set<string>();
    for await (const o of local.list({ prefix: config.rustfs.prefix })) inLocal.add(o.key);
    for await (const o of arch.list({ prefix: config.aws_s3.prefix })) {
      inArchive.add(o.key.slice("archive/".length));
    }
    local.close();
    arch.close();
    const rows = await catalog.all();
    const problems: string[] = [];
    for (const r of rows) {
      const where = r.tier === "local" ? inLocal : r.tier === "archive" ? inArchive : null;
      if (!where?.has(r.key)) problems.push(`${r.key}: row says ${r.tier}, object not there`);
    }
    const keys = new Set(rows.map((r) => r.key));
    for (const k of [...inLocal, ...inArchive]) if (!keys.has(k)) problems.push(`${k}: object without a row`);
    for (const k of inLocal) if (inArchive.has(k)) problems.push(`${k}: in both tiers`);
    assert.deepEqual(problems, []);
    assert.equal(rows.length, result.expected.size);
    const t = await catalog.totals();
    console.log(
      `  fleet audit: ${result.messages} messages, ${rows.length} rows (${t.local.frames} local, ${t.archive.frames} ` +
        `archived), lost ${result.lost.length}, extra ${result.extra.length}, rows without objects 0; evictor ` +
        `failover ${failoverMs} ms (lease_secs 2); label A->B ${labelMs} ms; similar after store ${
          similarMs.join(" / ")
        } ms (A / B)`,
    );
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await catalog.close();
  }
});
