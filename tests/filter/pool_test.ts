import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { resolveConfig } from "../../src/config.ts";
import { FilterPool, pooled } from "../../src/filter/pool.ts";
import { filterFromSpec, filterSpec } from "../../src/filter/loader.ts";
import { readSamples } from "../support/images.ts";

const settings = resolveConfig("").filter;

Deno.test("signatures computed in workers equal the in-process ones", async () => {
  const spec = filterSpec(settings, ".");
  const local = await filterFromSpec(spec);
  const pool = new FilterPool(spec, 2);
  const filter = pooled(local, pool);
  try {
    const samples = readSamples();
    const inWorkers = await Promise.all(samples.map((s) => filter.signature(s)));
    for (const [i, s] of samples.entries()) {
      const here = await local.signature(s);
      assert.deepEqual(inWorkers[i].bits, here.bits, `sample ${i}`);
      assert.equal(filter.distance(inWorkers[i], here), 0);
    }
    assert.equal(filter.name, "ahash");
    assert.ok(filter.restore, "restore is kept");
  } finally {
    await filter.close?.();
  }
});

Deno.test("frames that are views into a shared Node Buffer (a Kafka batch) are copied, not detached", async () => {
  const spec = filterSpec(settings, ".");
  const pool = new FilterPool(spec, 1);
  try {
    const [a, b] = readSamples();
    const batch = Buffer.concat([a, b]);
    const first = batch.subarray(0, a.length), second = batch.subarray(a.length);
    const [sa, sb] = await Promise.all([pool.signature(first), pool.signature(second)]);
    assert.equal(batch.length, a.length + b.length, "the batch is still readable");
    assert.equal(sa.bits?.length, 32);
    assert.equal(sb.bits?.length, 32);
  } finally {
    pool.close();
  }
});

Deno.test("a worker's per-frame error keeps its class and message, and the pool keeps working", async () => {
  const spec = filterSpec(settings, ".");
  const pool = new FilterPool(spec, 1);
  try {
    await assert.rejects(() => pool.signature(new Uint8Array([1, 2, 3])), {
      name: "SyntaxError",
      message: /not a JPEG/,
    });
    const ok = await pool.signature(readSamples()[0]);
    assert.equal(ok.bits?.length, 32);
  } finally {
    pool.close();
  }
});

Deno.test("a user's plugin from a path runs in the workers too", async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const spec = filterSpec({
    ...settings,
    primary: "./examples/filters/brightness.ts",
    options: { min_change: 12 },
  }, root);
  const pool = new FilterPool(spec, 1);
  try {
    const s = await pool.signature(readSamples()[0]);
    assert.equal(typeof s.value, "number");
  } finally {
    pool.close();
  }
});
