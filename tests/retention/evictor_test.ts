/**
 * Eviction's batches and pace without servers: in-memory stores that behave like S3 where it matters here (ETags
 * are MD5s, Content-MD5 is checked, DeleteObjects answers per key) and a SQLite catalog in memory. The same
 * paths against the real S3 server are in eviction.stack_test.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { objectKey } from "../../src/key.ts";
import { memoryLogger } from "../../src/log.ts";
import {
  API_VERSION,
  type DeleteResult,
  type ObjectInfo,
  type PutOptions,
  type StoragePlugin,
} from "../../src/plugin.ts";
import { Evictor } from "../../src/retention/evictor.ts";
import { MovePace } from "../../src/retention/pace.ts";
import type { Usage } from "../../src/retention/plan.ts";
import { md5Hex } from "../../src/store/content.ts";
import { sleep } from "../../src/ingest/camera.ts";
import { settings } from "../support/eviction_settings.ts";

const ARCHIVE = "archive/";

interface StoredObject {
  body: Uint8Array;
  etag: string;
  metadata: Record<string, string>;
}

/** An S3-like store in memory. */
class S3ishStore implements StoragePlugin {
  readonly apiVersion = API_VERSION;
  readonly bucket: string;
  readonly objects = new Map<string, StoredObject>();
  readonly calls = { put: 0, get: 0, delete: 0, deleteMany: 0, deleteManyKeys: 0 };
  /** Content-MD5 values the puts carried. */
  readonly md5s: string[] = [];
  /** Most puts seen in flight at once. */
  maxPutsInFlight = 0;
  #putsInFlight = 0;
  /** Keys a deleteMany reports as failed (AccessDenied), once each. */
  failDeletes = new Set<string>();
  /** Whether puts store damaged bytes (and tag them with their own MD5), as a broken server might. */
  damage = false;
  /** ETags that look like MD5s but are not (as under SSE-KMS). */
  fakeEtags = false;
  putDelayMs = 0;
  deleteMany?: (keys: string[]) => Promise<DeleteResult[]>;

  constructor(readonly name: string, withDeleteMany = true) {
    this.bucket = name;
    if (withDeleteMany) {
      this.deleteMany = (keys) => {
        this.calls.deleteMany++;
        this.calls.deleteManyKeys += keys.length;
        return Promise.resolve(keys.map((key) => {
          if (this.failDeletes.delete(key)) return { key, error: "AccessDenied: simulated" };
          this.objects.delete(key);
          return { key };
        }));
      };
    }
  }

  open() {
    return Promise.resolve();
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}) {
    this.calls.put++;
    this.#putsInFlight++;
    this.maxPutsInFlight = Math.max(this.maxPutsInFlight, this.#putsInFlight);
    try {
      if (this.putDelayMs) await sleep(this.putDelayMs);
      if (options.contentMd5) {
        this.md5s.push(options.contentMd5);
        if (Buffer.from(options.contentMd5, "base64").toString("hex") !== md5Hex(body)) {
          throw new Error(`BadDigest: the Content-MD5 you specified did not match what we received (${key})`);
        }
      }
      const kept = this.damage ? body.map((b, i) => (i === 100 ? b ^ 1 : b)) : body.slice();
      const etag = this.fakeEtags ? crypto.randomUUID().replaceAll("-", "") : md5Hex(kept);
      this.objects.set(key, { body: kept, etag, metadata: options.metadata ?? {} });
      return { etag };
    } finally {
      this.#putsInFlight--;
    }
  }

  get(key: string) {
    this.calls.get++;
    return Promise.resolve(this.objects.get(key)?.body ?? null);
  }

  read(key: string) {
    this.calls.get++;
    const o = this.objects.get(key);
    return Promise.resolve(
      o ? { body: o.body, info: { key, size: o.body.length, etag: o.etag, metadata: o.metadata } } : null,
    );
  }

  head(key: string): Promise<ObjectInfo | null> {
    const o = this.objects.get(key);
    return Promise.resolve(o ? { key, size: o.body.length, etag: o.etag, metadata: o.metadata } : null);
  }

  delete(key: string) {
    this.calls.delete++;
    this.objects.delete(key);
    return Promise.resolve();
  }

  async *list(options: { prefix?: string } = {}) {
    for (const [key, o] of [...this.objects].sort()) {
      if (options.prefix && !key.startsWith(options.prefix)) continue;
      yield { key, size: o.body.length, etag: o.etag };
    }
  }

  buckets() {
    return Promise.resolve([this.bucket]);
  }

  close() {}
}

const T0 = Date.UTC(2026, 1, 18, 9);

/** `n` frames of two robots stored as the consumer stores them: object first, then the row with the put's ETag. */
async function fill(local: S3ishStore, catalog: SqliteCatalog, n: number, size = 2000): Promise<FrameRow[]> {
  const rows: FrameRow[] = [];
  for (let i = 0; i < n; i++) {
    const robotId = i % 2 ? "robot-b" : "robot-a";
    const timestampMs = T0 + i * 100;
    const key = objectKey("frames/", robotId, timestampMs, i);
    const body = new Uint8Array(size).map((_, j) => (j * 13 + i) & 0xff);
    const { etag } = await local.put(key, body, { metadata: { "robot-id": robotId } });
    const row: FrameRow = {
      key,
      robotId,
      timestampMs,
      seq: i,
      size,
      etag: etag ?? null,
      filter: "ahash",
      distance: null,
      hash: null,
      tier: "local",
      tierChangedMs: timestampMs,
      storedMs: timestampMs,
    };
    await catalog.upsert(row);
    rows.push(row);
  }
  local.calls.put = 0;
  local.md5s.length = 0;
  return rows;
}

function catalogUsage(catalog: SqliteCatalog): () => Promise<Usage> {
  return async () => {
    const t = await catalog.totals();
    return { disk: null, localBytes: t.local.bytes + t.archiving.bytes };
  };
}

function evictor(
  local: S3ishStore,
  archive: S3ishStore,
  catalog: SqliteCatalog,
  maxBytes: number,
  extra: Partial<ConstructorParameters<typeof Evictor>[0]> = {},
) {
  return new Evictor({
    local,
    archive,
    catalog,
    settings: settings({ max_bytes: maxBytes, batch_size: 10 }),
    archivePrefix: ARCHIVE,
    localPrefix: "frames/",
    log: memoryLogger(),
    usage: catalogUsage(catalog),
    sweep: false,
    ...extra,
  });
}

Deno.test("a round copies a batch, then deletes its local objects in one request; rows archive, bytes identical", async () => {
  const local = new S3ishStore("local");
  const archive = new S3ishStore("archive");
  const catalog = new SqliteCatalog(":memory:");
  try {
    const rows = await fill(local, catalog, 40);
    // 40 frames of 2000 bytes against a budget of 40 frames' worth / 0.9: 90 %, evict down to 70 %.
    const r = await evictor(local, archive, catalog, Math.round(40 * 2000 / 0.9)).runOnce();
    assert.equal(r.failure, null);
    const moved = rows.filter((row) => archive.objects.has(ARCHIVE + row.key));
    assert.equal(moved.length, r.archived);
    assert.ok(r.archived >= 8 && r.archived <= 12, `archived ${r.archived}`);
    for (const row of moved) {
      assert.equal(local.objects.has(row.key), false, `${row.key} deleted locally`);
      assert.equal((await catalog.get(row.key))?.tier, "archive");
    }
    // The oldest ones, byte for byte.
    assert.deepEqual(moved.map((row) => row.key), rows.slice(0, moved.length).map((row) => row.key));
    for (const row of moved) {
      assert.equal(md5Hex(archive.objects.get(ARCHIVE + row.key)!.body), row.etag);
    }
    assert.equal(local.calls.delete, 0, "no single deletes");
    assert.equal(local.calls.deleteMany, Math.ceil(r.archived / 10), "one DeleteObjects per batch of 10");
    // The Content-MD5 of each copy was the local object's ETag (which the archive checked against the bytes).
    assert.deepEqual(
      archive.md5s.map((m) => Buffer.from(m, "base64").toString("hex")),
      moved.map((row) => row.etag),
    );
  } finally {
    await catalog.close();
  }
});

Deno.test("a key DeleteObjects does not delete stays 'archiving' with its verified copy; the next round finishes it", async () => {
  const local = new S3ishStore("local");
  const archive = new S3ishStore("archive");
  const catalog = new SqliteCatalog(":memory:");
  try {
    const rows = await fill(local, catalog, 40);
    const refused = rows[3].key;
    local.failDeletes.add(refused);
    const log = memoryLogger();
    const e = evictor(local, archive, catalog, Math.round(40 * 2000 / 0.9), { log });
    const first = await e.runOnce();
    assert.equal(first.failure, null);
    assert.equal((await catalog.get(refused))?.tier, "archiving");
    assert.ok(local.objects.has(refused), "the local object is still there");
    assert.ok(archive.objects.has(ARCHIVE + refused), "and so is its verified archive copy");
    assert.ok(
      log.lines.some((l) => /1 of 10 local objects not deleted .*AccessDenied/.test(l)),
      log.lines.join("\n"),
    );
    const second = await e.runOnce();
    assert.equal(second.failure, null);
    assert.equal((await catalog.get(refused))?.tier, "archive");
    assert.equal(local.objects.has(refused), false);
    assert.equal(second.recovered, 1);
  } finally {
    await catalog.close();
  }
});

Deno.test("a local store without deleteMany deletes key by key", async () => {
  const local = new S3ishStore("local", false);
  const archive = new S3ishStore("archive");
  const catalog = new SqliteCatalog(":memory:");
  try {
    await fill(local, catalog, 20);
    const r = await evictor(local, archive, catalog, Math.round(20 * 2000 / 0.9)).runOnce();
    assert.equal(r.failure, null);
    assert.ok(r.archived > 0);
    assert.equal(local.calls.delete, r.archived);
    assert.equal(local.objects.size, 20 - r.archived);
  } finally {
    await catalog.close();
  }
});

Deno.test("a copy the archive damaged is never verified: nothing is deleted locally and the row goes back to local", async () => {
  const local = new S3ishStore("local");
  const archive = new S3ishStore("archive");
  archive.damage = true;
  const catalog = new SqliteCatalog(":memory:");
  try {
    const rows = await fill(local, catalog, 20);
    const r = await evictor(local, archive, catalog, Math.round(20 * 2000 / 0.9)).runOnce();
    assert.match(r.failure ?? "", /ETag .* != MD5/);
    assert.equal(r.archived, 0);
    assert.equal(local.objects.size, 20, "every local object is still there");
    assert.equal(local.calls.deleteMany + local.calls.delete, 0);
    for (const row of rows) assert.equal((await catalog.get(row.key))?.tier, "local");
  } finally {
    await catalog.close();
  }
});

Deno.test("tags that look like MD5s but are not: the archive refuses them once, then the mover hashes the bytes", async () => {
  const local = new S3ishStore("local");
  local.fakeEtags = true;
  const archive = new S3ishStore("archive");
  const catalog = new SqliteCatalog(":memory:");
  try {
    await fill(local, catalog, 20);
    const e = evictor(local, archive, catalog, Math.round(20 * 2000 / 0.9));
    const first = await e.runOnce();
    assert.match(first.failure ?? "", /BadDigest/);
    assert.equal(local.objects.size, 20, "nothing deleted");
    // The failure backs off; the next attempt after it hashes the bytes and goes through.
    await sleep(1100);
    const second = await e.runOnce();
    assert.equal(second.failure, null);
    assert.ok(second.archived > 0);
    assert.equal((await catalog.totals()).archiving.frames, 0);
  } finally {
    await catalog.close();
  }
});

Deno.test("pace: one more copy in flight per calm interval, half as many under strain, all at the hard limit", () => {
  let clock = 0;
  let backlog: number | null = 100;
  const pace = new MovePace({
    min: 1,
    max: 6,
    start: 2,
    intervalMs: 1000,
    backlog: () => backlog,
    now: () => clock,
  });
  pace.start();
  pace.stop(); // the sampler is not needed: lateness is reported by hand below
  const step = (ms = 1000) => {
    clock += ms;
    pace.tick(0);
    return pace.limit;
  };
  assert.equal(pace.limit, 2);
  assert.equal(step(500), 2, "not before the interval");
  assert.deepEqual([step(), step(), step(), step(), step()], [3, 4, 5, 6, 6]);
  assert.equal(pace.reason, "calm");
  pace.noteLoopDelay(80);
  assert.equal(step(), 3);
  assert.equal(pace.reason, "loop delay");
  backlog = 130; // +30: the noise of fetch batches
  assert.equal(step(), 4);
  backlog = 400; // the consumer falls behind
  assert.equal(step(), 2);
  assert.equal(pace.reason, "backlog");
  backlog = 480;
  assert.equal(step(), 1);
  assert.equal(step(), 2, "a steady backlog is no strain");
  backlog = 300;
  assert.equal(step(), 3, "nor a falling one");
  pace.tick(1);
  assert.equal(pace.limit, 6);
  assert.equal(pace.reason, "hard limit");
  backlog = null;
  assert.equal(step(), 6, "no backlog known: the loop alone decides");
  assert.throws(() => new MovePace({ min: 0 }), RangeError);
});

Deno.test("pace: strain never takes it below a floor that rises with usage towards the hard limit", () => {
  let clock = 0;
  const pace = new MovePace({ min: 1, max: 9, start: 2, intervalMs: 1000, now: () => clock });
  const strained = (urgency: number) => {
    clock += 1000;
    pace.noteLoopDelay(500);
    pace.tick(urgency);
    return pace.limit;
  };
  assert.equal(strained(0), 1, "at the threshold strain halves it down to min");
  assert.equal(strained(0.5), 5, "half way to the hard limit: at least half way to max");
  assert.equal(pace.reason, "usage");
  assert.equal(strained(0.75), 7);
  assert.equal(strained(0.1), 3, "halved, and the floor is lower again");
});

Deno.test("the evictor keeps fewer copies in flight while the consumer's backlog grows", async () => {
  const run = async (growing: boolean) => {
    const local = new S3ishStore("local");
    const archive = new S3ishStore("archive");
    archive.putDelayMs = 5;
    const catalog = new SqliteCatalog(":memory:");
    let clock = T0;
    let backlog = 0;
    try {
      await fill(local, catalog, 60);
      // Just over the threshold (far from the hard limit, where the pace's floor would rise), down to 10 %.
      const maxBytes = Math.round(60 * 2000 / 0.805);
      const e = evictor(local, archive, catalog, maxBytes, {
        settings: settings({ max_bytes: maxBytes, batch_size: 20, target_percent: 10 }),
        // Every reading of the clock moves it on, so that every completed copy may adjust the pace.
        now: () => (clock += 400),
        backlog: () => (growing ? (backlog += 500) : 0),
      });
      const r = await e.runOnce();
      assert.equal(r.failure, null);
      assert.ok(r.archived >= 40, `archived ${r.archived}`);
      return archive.maxPutsInFlight;
    } finally {
      await catalog.close();
    }
  };
  const calm = await run(false);
  const strained = await run(true);
  assert.ok(calm >= 5, `calm: up to ${calm} copies in flight`);
  assert.ok(strained <= 2, `backlog growing: at most ${strained} in flight`);
});
