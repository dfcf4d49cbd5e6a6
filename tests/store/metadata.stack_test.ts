/**
 * User metadata with non-ASCII characters on a real S3 server (the stack's, behind tests/support/s3_fault_proxy.ts
 * to see the headers on the wire): sent as ASCII (percent-encoded), read back as it was; and a server that refuses
 * a put's metadata with 403 is named as refusing the metadata, not the credentials, when the credentials work.
 */
import assert from "node:assert/strict";
import { asciiMetadata, readMetadata } from "../../src/store/s3.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY } from "../../tools/stack.ts";
import { bucketName, ensureS3 } from "../support/stack.ts";
import { s3ErrorAnswer, S3FaultProxy } from "../support/s3_fault_proxy.ts";

const METADATA = {
  "robot-id": "reachy-001",
  note: "café ☕ — 50% done",
  "plain-percent": "50%",
  "looks-encoded": "a%20b",
  "opérateur": "Zoë",
};

Deno.test("metadata: encoded only where needed, read back as written", () => {
  const sent = asciiMetadata(METADATA);
  for (const [k, v] of Object.entries(sent)) assert.match(`${k}: ${v}`, /^[\x20-\x7e]*$/);
  assert.equal(sent["robot-id"], "reachy-001");
  assert.equal(sent["plain-percent"], "50%");
  assert.equal(sent["looks-encoded"], "a%20b");
  assert.deepEqual(readMetadata(sent), METADATA);
  // Servers lowercase names: still read back.
  const lowered = Object.fromEntries(Object.entries(sent).map(([k, v]) => [k.toLowerCase(), v]));
  assert.deepEqual(readMetadata(lowered), METADATA);
});

Deno.test("non-ASCII metadata on a real S3 server: ASCII on the wire, the same text back; a 403 on it is named", async (t) => {
  const endpoint = await ensureS3();
  const proxy = await S3FaultProxy.start(endpoint);
  const store = await loadStorage("rustfs", {
    endpoint: proxy.url,
    bucket: bucketName("metadata"),
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
  });
  try {
    await store.open();
    await t.step("ASCII on the wire, decoded on read", async () => {
      await store.put("frames/m/1.jpg", new Uint8Array([1, 2, 3]), { metadata: METADATA });
      const put = proxy.seen.findLast((r) => r.method === "PUT" && r.path.includes("/frames/m/1.jpg"))!;
      const meta = Object.entries(put.headers).filter(([k]) => k.startsWith("x-amz-meta-"));
      assert.equal(meta.length, Object.keys(METADATA).length);
      for (const [k, v] of meta) assert.match(`${k}: ${v}`, /^[\x20-\x7e]*$/, "header sent as ASCII");
      console.log(`  on the wire: ${meta.map(([k, v]) => `${k}: ${v}`).join("; ")}`);
      assert.deepEqual((await store.head("frames/m/1.jpg"))?.metadata, METADATA);
      assert.deepEqual((await store.read!("frames/m/1.jpg"))?.info.metadata, METADATA);
    });
    await t.step(
      "a server refusing the metadata with 403: named as such, not as bad credentials",
      async () => {
        proxy.onRequest = (x) =>
          x.method === "PUT" && Object.keys(x.headers).some((k) => k.startsWith("x-amz-meta-"))
            ? s3ErrorAnswer(403, "AccessDenied", "Access Denied.")
            : undefined;
        const error = await store.put("frames/m/2.jpg", new Uint8Array([1]), { metadata: METADATA }).then(
          () => null,
          (e: Error) => e,
        );
        assert.ok(error, "the put is refused");
        console.log(`  403 on metadata: ${error.message}`);
        assert.match(error.message, /refused the user metadata of frames\/m\/2\.jpg \(403 AccessDenied\)/);
        assert.match(error.message, /the same credentials work for the bucket/);
        assert.doesNotMatch(error.message, /check the access and secret keys/);
        // Without metadata the same put goes through.
        await store.put("frames/m/2.jpg", new Uint8Array([1]));
        proxy.onRequest = null;
      },
    );
    await t.step("wrong credentials with metadata: still named as credentials", async () => {
      const wrong = await loadStorage("rustfs", {
        endpoint,
        bucket: store.bucket,
        accessKey: S3_ACCESS_KEY,
        secretKey: "wrong",
      });
      try {
        await assert.rejects(
          () => wrong.put("frames/m/3.jpg", new Uint8Array([1]), { metadata: METADATA }),
          /refused the credentials .*check the access and secret keys/,
        );
      } finally {
        wrong.close();
      }
    });
  } finally {
    proxy.onRequest = null;
    const keys: string[] = [];
    for await (const o of store.list()) keys.push(o.key);
    if (keys.length) await store.deleteMany!(keys);
    store.close();
    await proxy.close();
  }
});
