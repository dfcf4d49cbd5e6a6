/**
 * The eviction copy on an archive that answers a refused Content-MD5 with 500 InternalError, as RustFS does,
 * instead of 400 BadDigest: the real S3 server of the stack behind a small fault-injecting proxy
 * (tests/support/s3_fault_proxy.ts). What the archive holds after the failed put decides: no copy or a different
 * one is a refused copy (named, the local frame kept), a matching copy is a put whose answer was wrong (the move
 * completes), and no answer at all is an outage. Never is a local frame deleted on an unverified copy.
 */
import { type StoredFrame, storeLocalFrames } from "../support/local_frames.ts";
import { archiveAt as archiveOf } from "../support/stores.ts";
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import type { Catalog } from "../../src/catalog/catalog.ts";
import { Evictor } from "../../src/retention/evictor.ts";
import { md5Hex } from "../../src/store/content.ts";
import { memoryLogger } from "../../src/log.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY } from "../../tools/stack.ts";
import { bucketName, ensureS3 } from "../support/stack.ts";
import { settings } from "../support/eviction_settings.ts";
import { digestAs500, s3ErrorAnswer, S3FaultProxy } from "../support/s3_fault_proxy.ts";

const PREFIX = "archive/";

/** The archive at `endpoint`, failing fast (3000 ms) so that a dead one is seen quickly. */
const archiveAt = (endpoint: string, bucket: string) => archiveOf(endpoint, bucket, 3000);

async function keysOf(store: StoragePlugin, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list({ prefix })) keys.push(o.key);
  return keys;
}

async function empty(store: StoragePlugin) {
  const keys = await keysOf(store);
  if (keys.length) await store.deleteMany!(keys);
  store.close();
}

/** Frames 0 .. n-1 stored locally with their rows. */
async function fill(local: StoragePlugin, catalog: Catalog, n: number): Promise<StoredFrame[]> {
  return await storeLocalFrames(local, catalog, { count: n });
}

/** The archive key a proxied request is for, or null (bucket operations, other keys). */
function archiveKeyOf(path: string, bucket: string): string | null {
  const p = decodeURIComponent(path.split("?")[0]);
  return p.startsWith(`/${bucket}/${PREFIX}`) ? p.slice(bucket.length + 2) : null;
}

Deno.test("a refused Content-MD5 answered with 500: the archive is checked, no frame deleted on an unverified copy", async (t) => {
  const endpoint = await ensureS3();
  const proxy = await S3FaultProxy.start(endpoint);
  const bucket = bucketName("refused-archive");
  const real = await archiveAt(endpoint, bucket);
  await real.open();
  const archive = await archiveAt(proxy.url, bucket);
  const local = await loadStorage("rustfs", {
    endpoint,
    bucket: bucketName("refused-local"),
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
  });
  await local.open();
  const catalog = new SqliteCatalog(":memory:");
  const answers: number[] = [];
  /** What the S3 server itself answered (before the proxy turned it into a 500). */
  const upstream: string[] = [];
  const log = memoryLogger("debug");
  const evictor = () =>
    new Evictor({
      local,
      archive,
      catalog,
      settings: settings({ max_bytes: 1, batch_size: 1 }), // everything must go
      archivePrefix: PREFIX,
      log,
      concurrency: 1,
      sweep: false,
    });
  const nothingMoved = async (frames: { key: string }[]) => {
    assert.equal((await keysOf(local, "frames/")).length, frames.length, "every local frame is still there");
    for (const f of frames) assert.equal((await catalog.get(f.key))?.tier, "local", f.key);
    assert.deepEqual(await keysOf(real, PREFIX), [], "no copy left in the archive");
  };
  try {
    const frames = await fill(local, catalog, 3);

    await t.step(
      "bytes damaged on the way: the server refuses them with 500, the error names it",
      async () => {
        proxy.onRequest = (x) => {
          if (x.method === "PUT" && archiveKeyOf(x.path, bucket)) {
            x.body = x.body.map((b, i) => i === 100 ? b ^ 1 : b);
          }
        };
        proxy.onAnswer = (x, a) => {
          const out = digestAs500(x, a);
          if (x.method === "PUT" && archiveKeyOf(x.path, bucket)) {
            answers.push(out.status);
            upstream.push(`${a.status} ${new TextDecoder().decode(a.body).match(/<Code>(\w+)/)?.[1]}`);
          }
          return out;
        };
        const e = evictor();
        const r = await e.runOnce();
        console.log(
          `  damaged body: the S3 server answered ${[...new Set(upstream)].join(", ")}, the proxy ${
            [...new Set(answers)].join(", ")
          }; failure: ${r.failure}`,
        );
        assert.ok(answers.length > 0 && answers.every((s) => s === 500), `answers ${answers}`);
        assert.match(r.failure ?? "", /InternalError|500/);
        assert.match(
          r.failure ?? "",
          /holds no copy: it did not keep the bytes sent \(a refused Content-MD5/,
        );
        assert.equal(r.archived, 0);
        assert.equal(e.stats().failing, true);
        assert.ok(
          log.lines.some((l) => /archive .* refusing copies:/.test(l)),
          "logged as refused, not as an outage",
        );
        await nothingMoved(frames);
      },
    );

    await t.step(
      "a corrupt copy kept by the server, answered with 500: the copy is found, deleted, the frame kept",
      async () => {
        proxy.onRequest = null;
        proxy.onAnswer = async (x, a) => {
          const key = x.method === "PUT" ? archiveKeyOf(x.path, bucket) : null;
          if (!key || a.status !== 200) return;
          // The server kept other bytes than it was sent.
          const kept = await real.get(key);
          await real.put(key, kept!.map((b, i) => i === 100 ? b ^ 1 : b), { contentType: "image/jpeg" });
          return s3ErrorAnswer(500, "InternalError", "We encountered an internal error, please try again.");
        };
        const r = await evictor().runOnce();
        console.log(`  corrupt copy kept: failure: ${r.failure}`);
        assert.match(
          r.failure ?? "",
          /holds a DIFFERENT copy \(\d+ bytes, ETag [0-9a-f]{32}, not MD5 [0-9a-f]{32}\), deleted/,
        );
        assert.equal(r.archived, 0);
        await nothingMoved(frames);
      },
    );

    await t.step(
      "stored, but the answer was a 500: the copy is verified (same MD5) and the move completes",
      async () => {
        proxy.onAnswer = (x, a) =>
          x.method === "PUT" && archiveKeyOf(x.path, bucket) && a.status === 200
            ? s3ErrorAnswer(500, "InternalError", "We encountered an internal error, please try again.")
            : a;
        const r = await evictor().runOnce();
        assert.equal(r.failure, null, r.failure ?? "");
        assert.equal(r.archived, frames.length);
        assert.ok(
          log.lines.some((l) => /answered the put with an error .* holds a copy with the same MD5/.test(l)),
        );
        assert.deepEqual(await keysOf(local, "frames/"), []);
        for (const f of frames) {
          assert.equal((await catalog.get(f.key))?.tier, "archive");
          assert.equal(md5Hex((await real.get(PREFIX + f.key))!), f.md5, `archive copy of ${f.key}`);
        }
      },
    );

    await t.step("no answer at all (the proxy gone): an outage, nothing deleted", async () => {
      const more = await fill(local, catalog, 2);
      await proxy.close();
      const e = evictor();
      const r = await e.runOnce();
      assert.match(r.failure ?? "", /unreachable|ECONNREFUSED|connect/i);
      assert.ok(log.lines.some((l) => /archive .* failing:/.test(l)));
      assert.equal((await keysOf(local, "frames/")).length, more.length);
    });
  } finally {
    await proxy.close().catch(() => {});
    await catalog.close();
    archive.close();
    await empty(local);
    await empty(real);
  }
});
