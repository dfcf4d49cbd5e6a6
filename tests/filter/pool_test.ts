import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { resolveConfig } from "../../src/config.ts";
import { FilterPool, PER_WORKER, pooled, type PoolOptions } from "../../src/filter/pool.ts";
import { filterFromSpec, type FilterSpec, filterSpec } from "../../src/filter/loader.ts";
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

/** A plugin module (written to a temp folder) whose signature names the worker that computed it, slowly. */
async function whoPlugin(): Promise<{ spec: ReturnType<typeof filterSpec>; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-pool-test-" });
  const contract = new URL("../../src/plugin.ts", import.meta.url).href;
  await Deno.writeTextFile(
    `${dir}/who.ts`,
    `import { API_VERSION } from "${contract}";
const me = crypto.randomUUID();
let inside = 0;
export default () => ({
  name: "who",
  apiVersion: API_VERSION,
  async signature(jpeg: Uint8Array) {
    inside++;
    const most = inside;
    await new Promise((r) => setTimeout(r, 20));
    inside--;
    return { value: { me, most, size: jpeg.length } };
  },
  distance: () => 0,
  accepts: () => true,
});
`,
  );
  return { spec: filterSpec({ ...settings, primary: `${dir}/who.ts`, options: {} }, dir), dir };
}

Deno.test("frames asked for at once are spread over every worker, in bounded numbers", async () => {
  const { spec, dir } = await whoPlugin();
  const pool = new FilterPool(spec, 2);
  try {
    // Both workers up first (the plugin keeps nothing of its input, so they reuse buffers once ready).
    for (let i = 0; i < 200 && !pool.sharing; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(pool.sharing);
    const frames = Array.from({ length: 24 }, (_, i) => new Uint8Array(100 + i));
    const out = await Promise.all(frames.map((f) => pool.signature(f)));
    const values = out.map((s) => s.value as { me: string; most: number; size: number });
    assert.deepEqual(
      values.map((v) => v.size),
      frames.map((f) => f.length),
      "each answer is its own frame's",
    );
    assert.equal(new Set(values.map((v) => v.me)).size, 2, "both workers computed signatures");
    // A worker holds at most PER_WORKER frames at once (the rest wait on the main thread, uncopied).
    assert.ok(Math.max(...values.map((v) => v.most)) <= PER_WORKER);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Sixty frames at 20 ms each, four at a time, in rounds: one worker is busy all the time, so a second one starts;
 * rounds go on until it has answered (however slowly it starts on a busy machine). Returns the workers that
 * answered.
 */
async function growToTwo(pool: FilterPool): Promise<number> {
  const workers = new Set<string>();
  for (let round = 0; round < 200 && workers.size < 2; round++) {
    const out = await Promise.all(
      Array.from({ length: 60 }, (_, i) => pool.signature(new Uint8Array(i + 1))),
    );
    for (const s of out) workers.add((s.value as { me: string }).me);
  }
  return workers.size;
}

Deno.test("an elastic pool runs one worker, starts the others while it is saturated, and stops them when the load is light", async () => {
  const { spec, dir } = await whoPlugin();
  const pool = new FilterPool(spec, 2, { min: 1, sampleMs: 100, growAt: 0.9, idleMs: 300 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    assert.equal(pool.workers, 1);
    await pool.signature(new Uint8Array(10)); // the first worker is ready
    // Now and then a frame (20 ms each, then a pause): the worker is mostly idle, no second one starts.
    for (let i = 0; i < 5; i++) {
      await pool.signature(new Uint8Array(3));
      await sleep(100);
    }
    assert.equal(pool.workers, 1);
    assert.equal(await growToTwo(pool), 2, "the second worker took frames");
    assert.equal(pool.workers, 2);
    // A light load in bursts of six (two spill over to the second worker, which is never idle for long): the
    // work would keep one worker busy far less than 60 % of the time, so the second stops all the same, and
    // every frame is answered.
    for (let i = 0; i < 400 && pool.workers > 1; i++) {
      const burst = await Promise.all(
        Array.from({ length: 6 }, (_, k) => pool.signature(new Uint8Array(k + 1))),
      );
      assert.deepEqual(burst.map((s) => (s.value as { size: number }).size), [1, 2, 3, 4, 5, 6]);
      await sleep(150);
    }
    assert.equal(pool.workers, 1);
    const after = await pool.signature(new Uint8Array(7));
    assert.equal((after.value as { size: number }).size, 7);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an extra worker stops under a light load even when a burst now and then keeps it busy for a moment", async () => {
  const { spec, dir } = await whoPlugin();
  const pool = new FilterPool(spec, 2, { min: 1, sampleMs: 100, growAt: 0.9, idleMs: 800 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    await pool.signature(new Uint8Array(10));
    await growToTwo(pool);
    assert.equal(pool.workers, 2);
    // One frame (20 ms) every 150 ms, and every fourth time a burst of twelve that keeps both workers busy for
    // a sample (more than 60 % of one, every ~0.8 s, and the second worker gets frames): on average the load is
    // far less than one worker's 60 %, so the second stops all the same.
    for (let i = 0; i < 60 && pool.workers > 1; i++) {
      const n = i % 4 === 3 ? 12 : 1;
      await Promise.all(Array.from({ length: n }, (_, k) => pool.signature(new Uint8Array(k + 1))));
      await sleep(150);
    }
    assert.equal(pool.workers, 1);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a short backlog (fewer saturated samples than growAfter) does not start a second worker", async () => {
  const { spec, dir } = await whoPlugin();
  const pool = new FilterPool(spec, 2, { min: 1, sampleMs: 100, growAt: 0.9, growAfter: 8, idleMs: 300 });
  try {
    await pool.signature(new Uint8Array(10)); // the first worker is ready
    // Twelve frames at 20 ms each: the one worker is busy ~240 ms, two or three samples in a row at most.
    const out = await Promise.all(
      Array.from({ length: 12 }, (_, i) => pool.signature(new Uint8Array(i + 1))),
    );
    assert.equal(new Set(out.map((s) => (s.value as { me: string }).me)).size, 1);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(pool.workers, 1);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** An elastic pool of two whose saturation rule would need 100 s: only the backlog rules can grow it in a test. */
function backlogPool(spec: FilterSpec, options: PoolOptions): FilterPool {
  return new FilterPool(spec, 2, {
    min: 1,
    sampleMs: 100,
    growAt: 0.9,
    growAfter: 1000,
    backlog: 8,
    ...options,
  });
}

Deno.test("frames queued up for backlogMs start a second worker without waiting for growAfter samples", async () => {
  const { spec, dir } = await whoPlugin();
  const pool = backlogPool(spec, { backlogMs: 200, idleMs: 60_000 });
  try {
    await pool.signature(new Uint8Array(10)); // the first worker is ready
    // Sixty frames at 20 ms each: 1.2 s of work for one worker, with far more than eight waiting for 200 ms.
    const out = await Promise.all(
      Array.from({ length: 60 }, (_, i) => pool.signature(new Uint8Array(i + 1))),
    );
    assert.deepEqual(
      out.map((s) => (s.value as { size: number }).size),
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    // Started during those frames (the saturation rule would need 1000 samples, 100 s).
    assert.equal(pool.workers, 2);
    // A busy machine may take a while to start it: more rounds until it has taken frames.
    assert.equal(await growToTwo(pool), 2, "the second worker took frames");
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a consumer far behind in Kafka starts the second worker as soon as frames queue up", async () => {
  const { spec, dir } = await whoPlugin();
  let behind = 0;
  // backlogMs long enough that only the lag can start the second worker during this test.
  const pool = backlogPool(spec, {
    backlogMs: 600_000,
    idleMs: 600_000,
    behind: () => behind,
    behindAt: 1000,
  });
  try {
    await pool.signature(new Uint8Array(10)); // the first worker is ready
    const frames = (n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => pool.signature(new Uint8Array(i + 1))));
    // 999 messages behind: not yet a backlog by the lag, and the queue alone waits backlogMs.
    behind = 999;
    await frames(30);
    assert.equal(pool.workers, 1);
    behind = 5000;
    await frames(30);
    assert.equal(pool.workers, 2);
    assert.equal(await growToTwo(pool), 2, "the second worker took frames");
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("frames still waiting when the pool closes are refused, not left hanging", async () => {
  const { spec, dir } = await whoPlugin();
  const pool = new FilterPool(spec, 1);
  try {
    await pool.signature(new Uint8Array(10)); // the worker is ready
    const pending = Array.from({ length: PER_WORKER + 3 }, () => pool.signature(new Uint8Array(10)));
    pool.close();
    const settled = await Promise.allSettled(pending);
    assert.ok(settled.every((s) => s.status === "rejected"));
    await assert.rejects(() => pool.signature(new Uint8Array(10)), /closed/);
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("transfer buffers are reused only for a plugin that keeps nothing of its input", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-pool-test-" });
  const contract = new URL("../../src/plugin.ts", import.meta.url).href;
  // A plugin that remembers a view of the first JPEG it saw and mixes it into every answer.
  await Deno.writeTextFile(
    `${dir}/keeper.ts`,
    `import { API_VERSION } from "${contract}";
let first: Uint8Array | null = null;
export default () => ({
  name: "keeper",
  apiVersion: API_VERSION,
  signature(jpeg: Uint8Array) {
    first ??= jpeg.subarray(0, 64);
    let sum = 0;
    for (const b of first) sum += b;
    return { value: [sum, jpeg.length, jpeg[0], jpeg[jpeg.length - 1]] };
  },
  distance: () => 0,
  accepts: () => true,
});
`,
  );
  const { spec: who, dir: whoDir } = await whoPlugin();
  const keeper = new FilterPool(
    filterSpec({ ...settings, primary: `${dir}/keeper.ts`, options: {} }, dir),
    1,
  );
  const pure = new FilterPool(who, 1);
  try {
    const frames = [7, 9, 11, 13, 15, 17].map((n) => new Uint8Array(1000 + n).fill(n));
    const answers = [];
    for (const f of frames) answers.push((await keeper.signature(f)).value as number[]);
    assert.equal(keeper.sharing, false, "the keeper gets copies it keeps");
    // What it kept is still what it saw: one sum throughout, and every frame read as itself.
    assert.equal(new Set(answers.map((a) => a[0])).size, 1);
    assert.deepEqual(answers.map((a) => a.slice(1)), frames.map((f) => [f.length, f[0], f[0]]));
    await pure.signature(new Uint8Array(10));
    assert.equal(pure.sharing, true, "a plugin that keeps nothing gets its buffers reused");
    // Frames of growing and shrinking sizes through reused buffers: each read as itself.
    for (const n of [10, 300_000, 5, 2_000_000, 70]) {
      const frame = new Uint8Array(n).fill(n & 255);
      assert.equal(((await pure.signature(frame)).value as { size: number }).size, n);
    }
  } finally {
    keeper.close();
    pure.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(whoDir, { recursive: true });
  }
});
