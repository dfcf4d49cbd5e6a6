/** Storage plugins against the real S3-compatible server of the local stack. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ServiceError } from "../../src/errors.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { objectKey } from "../../src/key.ts";
import { newestStored } from "../../src/consume/resume.ts";
import { readMetadata, s3Store } from "../../src/store/s3.ts";
import { DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { bucketName, ensureStack } from "../support/stack.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY, stackEndpoints } from "../../tools/stack.ts";

const ENDPOINT = stackEndpoints().s3Endpoint;

for (const plugin of ["rustfs", "s3_archive"] as const) {
  Deno.test(`${plugin} plugin: open, put, head, get, list, delete on a real S3 server`, async () => {
    await ensureStack();
    const bucket = bucketName(plugin.replace("_", "-"));
    const options = plugin === "rustfs" ? { endpoint: ENDPOINT, bucket } : {
      endpoint: ENDPOINT,
      bucket,
      accessKey: "rustfsadmin",
      secretKey: "rustfsadmin",
      createBucket: true,
    };
    const store = await loadStorage(plugin, options);
    try {
      await store.open(); // creates the bucket and runs the self-test
      await store.open(); // and again: idempotent
      assert.ok((await store.buckets()).includes(bucket));
      const body = new Uint8Array(200_000).map((_, i) => i % 251);
      await store.put("frames/a/1.jpg", body, {
        contentType: "image/jpeg",
        metadata: { "robot-id": "a", seq: "1" },
      });
      const head = await store.head("frames/a/1.jpg");
      assert.equal(head?.size, body.length);
      assert.deepEqual(head?.metadata, { "robot-id": "a", seq: "1" });
      assert.ok(head?.etag && /^[0-9a-f]{32}$/.test(head.etag), `etag ${head?.etag}`);
      assert.deepEqual(await store.get("frames/a/1.jpg"), body);
      // read(): bytes and info from one GET, as eviction moves a frame.
      const read = await store.read!("frames/a/1.jpg");
      assert.deepEqual(read?.body, body);
      assert.equal(read?.info.size, body.length);
      assert.equal(read?.info.etag, head?.etag);
      assert.deepEqual(read?.info.metadata, { "robot-id": "a", seq: "1" });
      assert.equal(await store.read!("frames/a/none.jpg"), null);
      // Content-MD5: the right one is accepted, a wrong one refused and nothing replaced (400 BadDigest from
      // S3Proxy and AWS, 500 InternalError from RustFS: either, the outcome is what counts).
      const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("base64");
      await store.put("frames/a/1.jpg", body, {
        contentMd5: md5(body),
        metadata: { "robot-id": "a", seq: "1" },
      });
      await assert.rejects(
        store.put("frames/a/1.jpg", body.subarray(1), { contentMd5: md5(body) }),
        (e: Error) => e instanceof ServiceError && /BadDigest|InternalError/.test(e.message),
      );
      assert.equal((await store.head("frames/a/1.jpg"))?.size, body.length);
      await store.put("frames/a/2.jpg", body.subarray(0, 10));
      await store.put("frames/b/1.jpg", body.subarray(0, 10));
      const keys: string[] = [];
      for await (const o of store.list({ prefix: "frames/a/" })) keys.push(o.key);
      assert.deepEqual(keys, ["frames/a/1.jpg", "frames/a/2.jpg"]);
      const after: string[] = [];
      for await (const o of store.list({ prefix: "frames/", startAfter: "frames/a/1.jpg", limit: 1 })) {
        after.push(o.key);
      }
      assert.deepEqual(after, ["frames/a/2.jpg"]);
      await store.delete("frames/a/1.jpg");
      await store.delete("frames/a/1.jpg"); // deleting a missing object is fine
      assert.equal(await store.head("frames/a/1.jpg"), null);
      assert.equal(await store.get("frames/a/1.jpg"), null);
      for await (const o of store.list()) await store.delete(o.key);
    } finally {
      store.close();
    }
  });
}

Deno.test("a PUT to an S3-compatible server, sent past the SDK's middleware, stores what the SDK reads back", async () => {
  await ensureStack();
  const bucket = bucketName("direct-put");
  const options = {
    name: "direct",
    endpoint: ENDPOINT,
    region: "us-east-1",
    bucket,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    forcePathStyle: true,
    timeoutMs: 10_000,
    createBucket: true,
  };
  const store = s3Store(options);
  const sdk = new S3Client({
    endpoint: ENDPOINT,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
  });
  // Reserved and non-ASCII characters in keys, as robot ids and file names may bring them.
  const keys = [
    "frames/r 1/2026-01-01/a+b=c&d;e.jpg",
    "frames/\u00fc/\u00e9 (1)!*'~$@,.jpg",
    "frames/r/x%2Fy.jpg",
  ];
  const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
  try {
    await store.open();
    for (const [i, key] of keys.entries()) {
      const body = new Uint8Array(150_000 + i).map((_, j) => (j * 31 + i) % 256);
      const metadata = { "robot-id": "r 1", note: "gr\u00fc\u00dfe", seq: String(i) };
      const put = await store.put(key, body, { contentType: "image/jpeg", metadata });
      assert.deepEqual(put, { etag: md5(body) });
      const out = await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      assert.equal(out.ContentType, "image/jpeg");
      assert.deepEqual(readMetadata(out.Metadata), metadata);
      assert.deepEqual(await out.Body!.transformToByteArray(), body);
    }
    const listed: string[] = [];
    for await (const o of store.list()) listed.push(o.key);
    assert.deepEqual(listed, [...keys].sort());
    // A conditional put finds the object there and keeps it; Content-MD5 is checked by the server.
    const first = await store.get(keys[0]);
    assert.deepEqual(await store.put(keys[0], new Uint8Array(3), { ifAbsent: true }), { exists: true });
    assert.deepEqual(await store.get(keys[0]), first);
    await assert.rejects(
      store.put(keys[1], new Uint8Array(5), {
        contentMd5: createHash("md5").update("other").digest("base64"),
      }),
      (e: Error) => e instanceof ServiceError && /BadDigest/.test(e.message) && !e.retriable,
    );
    // A missing bucket is named as such (the error answer's XML Code), not as a failing server.
    const missing = s3Store({ ...options, bucket: `${bucket}-none`, createBucket: false });
    await assert.rejects(missing.put("frames/r/1.jpg", new Uint8Array(1)), (e: Error) => {
      assert.ok(e instanceof ServiceError);
      assert.equal(e.retriable, false);
      assert.match(e.message, /does not exist/);
      return true;
    });
    missing.close();
  } finally {
    for (const key of keys) {
      await sdk.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {});
    }
    await sdk.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    sdk.destroy();
    store.close();
  }
});

Deno.test("listing pages through more than 1000 objects", async () => {
  await ensureStack();
  const store = await loadStorage("rustfs", { endpoint: ENDPOINT, bucket: bucketName("paging") });
  try {
    await store.open();
    const keys = Array.from({ length: 1100 }, (_, i) => `k/${String(i).padStart(5, "0")}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, new Uint8Array([1]))));
    }
    let n = 0;
    for await (const _ of store.list({ prefix: "k/" })) n++;
    assert.equal(n, 1100);
  } finally {
    store.close();
  }
});

Deno.test("deleteMany: one DeleteObjects per 1000 keys, an answer per key, missing keys count as deleted", async () => {
  await ensureStack();
  const store = await loadStorage("rustfs", { endpoint: ENDPOINT, bucket: bucketName("delete-many") });
  try {
    await store.open();
    // 1001 keys: two requests. Only some exist; deleting the others is fine too.
    const keys = Array.from({ length: 1001 }, (_, i) => `d/${String(i).padStart(5, "0")}.jpg`);
    const existing = [keys[0], keys[1], keys[500], keys[999], keys[1000]];
    for (const k of existing) await store.put(k, new Uint8Array([1, 2, 3]));
    await store.put("d/kept.jpg", new Uint8Array([4]));
    const results = await store.deleteMany!(keys);
    assert.deepEqual(results.map((r) => r.key), keys, "one result per key, in order");
    assert.deepEqual(results.filter((r) => r.error !== undefined), [], "every key is gone");
    for (const k of existing) assert.equal(await store.head(k), null, `${k} deleted`);
    assert.equal((await store.head("d/kept.jpg"))?.size, 1, "other keys are left alone");
    assert.deepEqual(await store.deleteMany!([]), []);
  } finally {
    store.close();
  }
});

Deno.test("the newest stored frame of a robot is found by binary search", async () => {
  await ensureStack();
  const store = await loadStorage("rustfs", { endpoint: ENDPOINT, bucket: bucketName("newest") });
  try {
    await store.open();
    const t = Date.UTC(2026, 1, 18, 9, 0, 0);
    assert.equal(await newestStored(store, "frames/", "r1", t + 86400000), null);
    for (
      const [robot, ts, seq] of [["r1", t, 1], ["r1", t + 86400000 * 3 + 5, 9], ["r1", t + 1000, 2], [
        "r10",
        t + 9e9,
        3,
      ]] as const
    ) {
      await store.put(objectKey("frames/", robot, ts, seq), new Uint8Array([1]));
    }
    const newest = await newestStored(store, "frames/", "r1", t);
    assert.deepEqual(newest, {
      key: objectKey("frames/", "r1", t + 86400000 * 3 + 5, 9),
      timestampMs: t + 86400000 * 3 + 5,
      seq: 9,
    });
  } finally {
    store.close();
  }
});

Deno.test("an unreachable or refusing S3 server is a clear ServiceError", async (t) => {
  await t.step("nothing listening", async () => {
    const store = await loadStorage("rustfs", {
      endpoint: "http://127.0.0.1:1",
      bucket: "x-bucket",
      timeoutMs: 2000,
    });
    await assert.rejects(() => store.open(), (e: unknown) => {
      assert.ok(e instanceof ServiceError);
      assert.equal(e.retriable, true);
      assert.match(e.message, /http:\/\/127\.0\.0\.1:1 bucket x-bucket unreachable/);
      return true;
    });
    store.close();
  });
  await t.step("wrong secret", async () => {
    await ensureStack();
    const store = await loadStorage("rustfs", {
      endpoint: ENDPOINT,
      bucket: "camera-frames",
      secretKey: "wrong",
    });
    await assert.rejects(() => store.open(), {
      message: /refused the credentials .*check the access and secret keys/,
    });
    store.close();
  });
});

Deno.test("reading from a bucket that does not exist is an error naming the bucket, not a missing object", async () => {
  await ensureStack();
  const { s3Endpoint } = stackEndpoints();
  const store = await loadStorage("rustfs", {
    endpoint: s3Endpoint,
    bucket: `no-such-bucket-${crypto.randomUUID().slice(0, 8)}`,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
  });
  try {
    await assert.rejects(
      () => store.get("frames/r/2026-01-01/x.jpg"),
      /bucket no-such-bucket-.* does not exist/,
    );
  } finally {
    store.close();
  }
});
