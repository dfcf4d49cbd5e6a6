/**
 * Stored means stored and findable, on the real servers: a robot clock that goes back, a catalog deleted under a
 * running consumer or lost between runs, a catalog on a full disk, a read-only catalog folder.
 */
import assert from "node:assert/strict";
import { catalogPath, SqliteCatalog } from "../../src/catalog/sqlite.ts";
import type { Config } from "../../src/config.ts";
import { encodeFrame } from "../../src/ingest/frame.ts";
import { openProducer } from "../../src/kafka/client.ts";
import { messageKey } from "../../src/key.ts";
import { localStore } from "../../src/filter/loader.ts";
import { audit, waitForDrain } from "../../dev/audit.ts";
import { type Child, freePort, spawnDeno } from "../../dev/processes.ts";
import { mulberry32 } from "../../dev/random.ts";
import { greyJpeg } from "../support/images.ts";
import { createTopic, ensureStack, isolatedConfig, quietLog } from "../support/stack.ts";
import { canMountTmpfs, mountTmpfs, unmountTmpfs } from "../support/tmpfs.ts";
import { sleep } from "../../src/ingest/camera.ts";

/** Outer bound for a process to print an expected line; generous, a busy CI machine is slow. */
const LINE_MS = 120_000;

/** A deterministic scene per number: 8x8 random blocks, so any two differ in about half their aHash bits. */
function scene(n: number): Uint8Array {
  const next = mulberry32(n + 1);
  const cells = Array.from({ length: 64 }, () => next() >>> 24);
  return greyJpeg(320, 240, (x, y) => cells[Math.floor(y / 30) * 8 + Math.floor(x / 40)], 85);
}

/** Publishes frames of one robot: `count` scenes from `firstScene`, capture times `base + i * stepMs`, seq from `firstSeq`. */
async function publish(
  config: Config,
  robot: string,
  frames: { base: number; stepMs: number; count: number; firstSeq: number; firstScene: number },
): Promise<void> {
  const producer = await openProducer(config.kafka, quietLog);
  try {
    const messages = [];
    for (let i = 0; i < frames.count; i++) {
      const ts = frames.base + i * frames.stepMs;
      messages.push({
        key: messageKey(robot, ts),
        value: encodeFrame(ts, frames.firstSeq + i, scene(frames.firstScene + i)),
        timestampMs: ts,
      });
    }
    await producer.send(messages);
  } finally {
    await producer.close();
  }
}

function consumer(name: string, path: string): Child {
  return spawnDeno(name, "src/main/consume.ts", ["--config", path], { env: { LOG_LEVEL: "info" } });
}

/** Objects in the local bucket with their entity tags. */
async function objects(config: Config): Promise<Map<string, string>> {
  const store = await localStore(config);
  const out = new Map<string, string>();
  try {
    for await (const o of store.list({ prefix: config.rustfs.prefix })) out.set(o.key, o.etag ?? "");
  } finally {
    store.close();
  }
  return out;
}

/** Every object has a catalog row with its entity tag, and every row an object. */
async function assertCatalogMatches(config: Config, stored: Map<string, string>): Promise<void> {
  const catalog = new SqliteCatalog(catalogPath(config));
  try {
    const rows = await catalog.all();
    assert.deepEqual(
      rows.map((r) => r.key).sort(),
      [...stored.keys()].sort(),
      "catalog rows = bucket objects",
    );
    for (const row of rows) assert.equal(row.etag, stored.get(row.key), `${row.key}: row and object agree`);
  } finally {
    await catalog.close();
  }
}

Deno.test({
  name:
    "a robot clock that goes back never replaces a stored frame, and a restart judges by offset, not time",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("clock-reset");
  await createTopic(config, 3);
  const robot = "rtc-less";
  const base = Date.UTC(2026, 10, 29, 8, 0, 0);
  const first = consumer("consumer 1", path);
  let second: Child | undefined;
  try {
    await first.waitFor(/joined group|partitions assigned|assigned/i, LINE_MS);
    // Boot 1: 20 scenes 400 ms apart. Boot 2 (producer restarted, clock reset to the same base, seq from 0 again):
    // 20 other scenes with the very same keys.
    await publish(config, robot, { base, stepMs: 400, count: 20, firstSeq: 0, firstScene: 0 });
    await waitForDrain(config, quietLog, { describe: () => first.lines.slice(-10).join("\n") });
    await publish(config, robot, { base, stepMs: 400, count: 20, firstSeq: 0, firstScene: 100 });
    await waitForDrain(config, quietLog, { describe: () => first.lines.slice(-10).join("\n") });
    await first.stop();
    // Later, with the consumer stopped, the clock runs 4 s after the first base (inside boot 1's span).
    await publish(config, robot, {
      base: base + 4000,
      stepMs: 400,
      count: 20,
      firstSeq: 20,
      firstScene: 200,
    });
    second = consumer("consumer 2", path);
    await waitForDrain(config, quietLog, { describe: () => second!.lines.slice(-10).join("\n") });
    await second.stop();

    const result = await audit(config, quietLog);
    const stored = await objects(config);
    console.log(
      `clock reset: ${result.messages} produced, ${result.expected.size} accepted, ${stored.size} stored, ` +
        `${result.suffixed} under suffixed keys, ${result.overwritten.length} overwritten, ${result.lost.length} lost`,
    );
    assert.equal(result.messages, 60);
    assert.equal(result.expected.size, 60, "every scene is new to the filter");
    assert.deepEqual(result.lost, [], "no accepted frame lost");
    assert.deepEqual(result.overwritten, [], "no stored frame replaced by other bytes");
    assert.deepEqual(result.extra, [], "nothing stored that was not accepted");
    assert.equal(result.suffixed, 20, "boot 2's frames went to suffixed keys");
    assert.ok(
      [...stored.keys()].some((k) => /Z_000000_p\d+-o20\.jpg$/.test(k)),
      `suffixed key for offset 20: ${[...stored.keys()].slice(0, 3)}`,
    );
    await assertCatalogMatches(config, stored);
    // The jump back at the second boot was noticed: logged once, with its size.
    const jumps = first.lines.filter((l) => /capture clock went back/.test(l));
    assert.equal(jumps.length, 1, jumps.join("\n"));
    assert.match(jumps[0], /rtc-less: capture clock went back 7\.6 s/);
    // The restarted consumer replayed nothing it had decided and dropped no new frame as a replay.
    const final = second.lines.find((l) => /\[stats\] final: /.test(l)) ?? "";
    assert.doesNotMatch(final, /replayed/, final);
    assert.match(final, /stored 20\b/, final);
  } finally {
    first.kill("SIGKILL");
    second?.kill("SIGKILL");
    await first.exited;
    await second?.exited;
  }
});

Deno.test({
  name: "a catalog deleted under the running consumer is written again, a lost one is named and rebuilt",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("catalog-lost", { catalog: { reconcile_interval_secs: 0 } });
  await createTopic(config, 3);
  const file = catalogPath(config);
  const children: Child[] = [];
  try {
    const one = consumer("consumer 1", path);
    children.push(one);
    await one.waitFor(/joined group|assigned/i, LINE_MS);
    await publish(config, "cat-1", {
      base: Date.UTC(2026, 10, 29, 9),
      stepMs: 200,
      count: 20,
      firstSeq: 0,
      firstScene: 0,
    });
    await waitForDrain(config, quietLog, { describe: () => one.lines.slice(-10).join("\n") });
    // Deleted while open: the consumer notices and writes the file again from its open connection.
    await Deno.remove(file);
    await one.waitFor(/written again with the \d+ rows/, LINE_MS);
    await publish(config, "cat-1", {
      base: Date.UTC(2026, 10, 29, 10),
      stepMs: 200,
      count: 20,
      firstSeq: 20,
      firstScene: 20,
    });
    await waitForDrain(config, quietLog, { describe: () => one.lines.slice(-10).join("\n") });
    await one.stop();
    let stored = await objects(config);
    assert.equal(stored.size, 40);
    await assertCatalogMatches(config, stored);
    console.log(`catalog deleted while running: ${stored.size} objects, ${stored.size} rows`);

    // Lost between runs: the next consumer says so, names reindex, and its reconciliation indexes the frames.
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(file + suffix).catch(() => {});
    const tomlWithReconcile = (await Deno.readTextFile(path)).replace(
      /reconcile_interval_secs = 0/,
      "reconcile_interval_secs = 3600",
    );
    await Deno.writeTextFile(path, tomlWithReconcile);
    const two = consumer("consumer 2", path);
    children.push(two);
    const warning = await two.waitFor(/is empty but bucket .* holds frames/, LINE_MS);
    assert.match(warning, /deno task reindex/);
    assert.match(await two.waitFor(/reconciled \d+ frame objects/, LINE_MS), /40 without a row/);
    await two.stop();
    await assertCatalogMatches(config, stored);

    // With catalog.auto_reindex the start-up rebuilds it.
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(file + suffix).catch(() => {});
    await Deno.writeTextFile(
      path,
      tomlWithReconcile.replace(/\[catalog\]/, "[catalog]\nauto_reindex = true"),
    );
    const three = consumer("consumer 3", path);
    children.push(three);
    assert.match(await three.waitFor(/rebuilt from the local bucket/, LINE_MS), /40 frames/);
    await three.stop();
    stored = await objects(config);
    await assertCatalogMatches(config, stored);

    // A catalog of another bucket is refused, naming both.
    const other = await isolatedConfig("catalog-foreign", { catalog: { data_dir: config.catalog.data_dir } });
    await createTopic(other.config, 1);
    const four = consumer("consumer 4", other.path);
    children.push(four);
    assert.equal(await four.exited, 1);
    assert.match(four.lines.join("\n"), /belongs to topic .*catalog-lost.*not to this consumer's topic/);
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited));
  }
});

/** Mounts a tmpfs of `size` at a fresh folder (the tests that call this are ignored where it cannot). */
async function tmpfs(size: string, readOnly = false): Promise<{ dir: string; unmount(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-tmpfs-" });
  const mounted = await mountTmpfs(dir, size, { readOnly });
  if (!mounted.ok) await Deno.remove(dir);
  assert.ok(mounted.ok, `mount a ${size} tmpfs: ${mounted.text}`);
  return {
    dir,
    async unmount() {
      await unmountTmpfs(dir);
      await Deno.remove(dir).catch(() => {});
    },
  };
}

const NO_TMPFS = !await canMountTmpfs();

Deno.test({
  name:
    "a catalog on a full disk is named, fails /healthz, does not re-send objects, and recovers once freed",
  ignore: NO_TMPFS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  // Room for the catalog (schema v6 is ~145 KB), its WAL while rows wait, and a little to spare once freed: at
  // 1 MiB the WAL of the waiting rows alone filled what the filler left, so the disk was still full after it.
  const disk = await tmpfs("2m");
  await ensureStack();
  const port = freePort();
  const { path, config } = await isolatedConfig("catalog-full", {
    catalog: { data_dir: disk.dir, reconcile_interval_secs: 0 },
    metrics: { consumer_port: port },
    consumer: { store_retry_max_ms: 1000 },
  });
  await createTopic(config, 3);
  let c: Child | undefined;
  try {
    c = consumer("consumer", path);
    const proc = c;
    await proc.waitFor(/joined group|assigned/i, LINE_MS);
    // Fill the disk to the last byte.
    const filler = `${disk.dir}/filler`;
    const f = await Deno.open(filler, { write: true, create: true });
    const chunk = new Uint8Array(4096);
    try {
      for (;;) await f.write(chunk);
    } catch { /* ENOSPC: full */ }
    f.close();
    await publish(config, "full-1", {
      base: Date.UTC(2026, 10, 29, 11),
      stepMs: 200,
      count: 30,
      firstSeq: 0,
      firstScene: 0,
    });
    const named = await proc.waitFor(/\[catalog\] catalog .* failed/, LINE_MS);
    assert.match(
      named,
      new RegExp(`catalog ${disk.dir}/catalog.sqlite: recording .* free space on the filesystem`),
    );
    await t.step("/healthz names the catalog", async () => {
      let body = "";
      for (let i = 0; i < 60; i++) {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        body = await r.text();
        if (r.status === 503 && body.includes("catalog")) break;
        await sleep(1000);
      }
      assert.match(body, /"catalog":"catalog .*free space/);
      console.log(`healthz while full: ${body.slice(0, 200)}`);
    });
    const freedAt = Date.now();
    await Deno.remove(filler);
    await waitForDrain(config, quietLog, {
      describe: () =>
        [...Deno.readDirSync(disk.dir)].map((e) => `${e.name} ${Deno.statSync(`${disk.dir}/${e.name}`).size}`)
          .join(", ") + "\n" + proc.lines.filter((l) => !/\[stats\]/.test(l)).slice(-12).join("\n"),
    });
    console.log(
      `catalog full: caught up ${((Date.now() - freedAt) / 1000).toFixed(1)} s after space was freed`,
    );
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    // Checks are cached for up to 5 s.
    let health = await r.text();
    for (let i = 0; i < 30 && !health.includes('"catalog":"ok"'); i++) {
      await sleep(1000);
      health = await (await fetch(`http://127.0.0.1:${port}/healthz`)).text();
    }
    assert.match(health, /"catalog":"ok"/);
    await proc.stop();
    assert.ok(!proc.lines.some((l) => /\[store:/.test(l) && /attempt/.test(l)), "no object was stored twice");
    const stored = await objects(config);
    await assertCatalogMatches(config, stored);
    const wal = await Deno.stat(`${disk.dir}/catalog.sqlite-wal`).catch(() => null);
    assert.ok(!wal || wal.size <= 1024 * 1024 + 64 * 1024, `WAL bounded: ${wal?.size}`);
  } finally {
    c?.kill("SIGKILL");
    await c?.exited;
    await disk.unmount();
  }
});

Deno.test({
  name: "a read-only catalog folder stops the consumer with one line naming the path and the fix",
  ignore: NO_TMPFS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const disk = await tmpfs("1m", true);
  try {
    await ensureStack();
    const { path, config } = await isolatedConfig("catalog-ro", { catalog: { data_dir: disk.dir } });
    await createTopic(config, 1);
    const c = consumer("consumer", path);
    const code = await c.exited;
    const out = c.lines.join("\n");
    assert.notEqual(code, 0);
    assert.match(out, new RegExp(`error: catalog ${disk.dir}/catalog.sqlite: .*writable`));
    assert.doesNotMatch(out, /^\s+at /m, "no stack trace");
  } finally {
    await disk.unmount();
  }
});
