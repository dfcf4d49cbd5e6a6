/** The command-line tools as a user runs them: output formats, and start-up errors that name the fix. */
import assert from "node:assert/strict";
import { loadStorage } from "../../src/filter/loader.ts";
import { startCamera } from "../../tools/camera.ts";
import { spawnDeno } from "../../dev/processes.ts";
import { stackDown, stackUp } from "../../tools/stack.ts";
import { sampleFiles } from "../support/images.ts";
import { ensureStack, isolatedConfig } from "../support/stack.ts";

async function run(script: string, args: string[], env: Record<string, string> = {}) {
  const child = spawnDeno(script, script, args, { env });
  const code = await child.exited;
  return { code, out: child.lines.join("\n") };
}

Deno.test("deno task compare prints the original phash_compare lines", async (t) => {
  const [a, , , , , , , , , j] = sampleFiles();
  await t.step("two still frames", async () => {
    const { code, out } = await run("tools/phash_compare.ts", [a, j]);
    assert.equal(code, 0, out);
    assert.match(out, /^Hash size: {2}16x16 = 256 bits$/m);
    assert.match(out, /^Hamming distance: \d+ \/ 256 {2}\(\d+\.\d%\)$/m);
    assert.match(
      out,
      /^At or below the threshold \(26\): the consumer would reject .* as the same scene\.$/m,
    );
  });
  await t.step("--hash-size 8", async () => {
    const { out } = await run("tools/phash_compare.ts", [a, j, "--hash-size", "8"]);
    assert.match(out, /^Hash size: {2}8x8 = 64 bits$/m);
  });
  await t.step("a file that is not a JPEG", async () => {
    const { code, out } = await run("tools/phash_compare.ts", [
      a,
      new URL("../../deno.json", import.meta.url).pathname,
    ]);
    assert.notEqual(code, 0);
    assert.match(out, /^error: not a JPEG/m);
  });
  await t.step("--camera grabs two frames", async () => {
    const camera = await startCamera({ port: 0, fps: 10, stillSeconds: 60 });
    try {
      const { code, out } = await run("tools/phash_compare.ts", [
        "--camera",
        "--delay",
        "0.2",
        "--url",
        camera.url,
      ]);
      assert.equal(code, 0, out);
      assert.match(out, /Hamming distance: \d+ \/ 256/);
      assert.match(out, /would reject second frame as the same scene/);
    } finally {
      await camera.close();
    }
  });
});

Deno.test("start-up errors name the problem and the fix", async (t) => {
  await ensureStack();
  const { path } = await isolatedConfig("cli");
  await t.step("consumer: topic missing", async () => {
    const { code, out } = await run("src/main/consume.ts", ["--config", path]);
    assert.equal(code, 1, out);
    assert.match(out, /error: topic test\.cli-\S+ does not exist: run `deno task topic`/);
  });
  await t.step("producer: topic missing", async () => {
    const { code, out } = await run("src/main/produce.ts", [
      "r1",
      "http://127.0.0.1:1/stream",
      "--config",
      path,
    ]);
    assert.equal(code, 1, out);
    assert.match(out, /does not exist: run `deno task topic`/);
  });
  await t.step("producer: broker unreachable", async () => {
    const { code, out } = await run("src/main/produce.ts", ["r1", "--config", path], {
      KAFKA_BROKERS: "127.0.0.1:1",
    });
    assert.equal(code, 1, out);
    assert.match(
      out,
      /error: cannot reach the Kafka broker at 127\.0\.0\.1:1 .*deno task stack up.* or set kafka\.brokers/,
    );
  });
  await t.step("consumer: broker unreachable", async () => {
    const { code, out } = await run("src/main/consume.ts", ["--config", path], {
      KAFKA_BROKERS: "127.0.0.1:1",
    });
    assert.equal(code, 1, out);
    assert.match(out, /error: cannot reach the Kafka broker at 127\.0\.0\.1:1 .*deno task stack up/);
  });
  await t.step("consumer: S3 endpoint unreachable", async () => {
    const { code, out } = await run("src/main/consume.ts", ["--config", path], {
      RUSTFS_ENDPOINT: "http://127.0.0.1:1",
    });
    assert.equal(code, 1, out);
    assert.match(out, /error: http:\/\/127\.0\.0\.1:1 bucket \S+ unreachable/);
  });
  await t.step("unknown config key", async () => {
    const bad = await Deno.makeTempFile({ suffix: ".toml" });
    await Deno.writeTextFile(bad, "[filter]\nphash_treshold = 20\n");
    const { code, out } = await run("src/main/consume.ts", ["--config", bad]);
    assert.equal(code, 2);
    assert.match(
      out,
      /^error: .*unknown key filter\.phash_treshold \(known in \[filter\]: primary, phash_threshold/m,
    );
    assert.doesNotMatch(out, / {4}at /, "no stack trace");
    await Deno.remove(bad);
  });
  await t.step("missing config file", async () => {
    const { code, out } = await run("src/main/consume.ts", ["--config", "/nonexistent.toml"]);
    assert.equal(code, 2);
    assert.match(out, /^error: cannot read config file \/nonexistent\.toml/m);
  });
  await t.step("unknown filter", async () => {
    const bad = await Deno.makeTempFile({ suffix: ".toml" });
    await Deno.writeTextFile(bad, '[filter]\nprimary = "dhash"\n');
    const { code, out } = await run("src/main/consume.ts", ["--config", bad]);
    assert.equal(code, 2);
    assert.match(out, /unknown filter "dhash" in filter\.primary: use one of phash, ahash, histogram/);
    await Deno.remove(bad);
  });
  await t.step("bad robot id", async () => {
    const { code, out } = await run("src/main/produce.ts", ["../etc", "--config", path]);
    assert.equal(code, 2);
    assert.match(out, /robot id "\.\.\/etc" may only hold letters, digits/);
  });
  await Deno.remove(path);
});

Deno.test({
  name: "deno task topic right after the broker starts creates a usable topic",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("fresh-broker");
  try {
    // `deno task stack up && deno task topic` on a new machine: the broker takes the creation before its
    // partitions have leaders, which kafkajs' own wait used to report as "topic does not exist".
    await stackDown(["kafka"]);
    await stackUp(["kafka"]);
    const created = await run("tools/topic.ts", ["--config", path]);
    assert.equal(created.code, 0, created.out);
    assert.match(created.out, new RegExp(`created topic ${config.kafka.topic} with 12 partitions`));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("deno task topic is idempotent and deno task check prints the original format", async () => {
  await ensureStack();
  const { path, config } = await isolatedConfig("tools");
  try {
    const first = await run("tools/topic.ts", ["--config", path, "--partitions", "2"]);
    assert.match(first.out, new RegExp(`created topic ${config.kafka.topic} with 2 partitions`));
    const second = await run("tools/topic.ts", ["--config", path]);
    assert.match(second.out, new RegExp(`topic ${config.kafka.topic} already exists with 2 partitions`));

    const store = await loadStorage("rustfs", {
      endpoint: config.rustfs.endpoint,
      bucket: config.rustfs.bucket,
    });
    await store.open();
    await store.put("frames/reachy-001/2026-02-18/20260218T093616735Z_000008.jpg", new Uint8Array(187721));
    await store.put("frames/reachy-001/2026-02-19/20260219T093616882Z_000009.jpg", new Uint8Array(1000));
    await store.put(
      "frames/bracketbot-001/2026-02-18/20260218T093617030Z_000010.jpg",
      new Uint8Array(185412),
    );
    store.close();
    const all = await run("tools/check_bucket.ts", ["--config", path]);
    assert.equal(all.code, 0, all.out);
    assert.match(all.out, new RegExp(`^Buckets: \\[.*'${config.rustfs.bucket}'.*\\]$`, "m"));
    assert.match(all.out, new RegExp(`^Objects in ${config.rustfs.bucket}: 3$`, "m"));
    assert.match(all.out, /^Total size: 374,133 bytes \(0\.36 MB\)$/m);
    assert.match(
      all.out,
      /^ {2}frames\/reachy-001\/2026-02-18\/20260218T093616735Z_000008\.jpg {2}\(187,721 bytes\)$/m,
    );
    const day = await run("tools/check_bucket.ts", [
      "--config",
      path,
      "--robot",
      "reachy-001",
      "--date",
      "2026-02-18",
    ]);
    assert.match(day.out, /Objects in \S+\/frames\/reachy-001\/2026-02-18\/: 1$/m);
    const limited = await run("tools/check_bucket.ts", ["--config", path, "--limit", "1"]);
    assert.equal(limited.out.split("\n").filter((l) => l.startsWith("  frames/")).length, 1);
    const bad = await run("tools/check_bucket.ts", [
      "--config",
      path,
      "--date",
      "18.02.2026",
      "--robot",
      "r",
    ]);
    assert.match(bad.out, /--date 18\.02\.2026 must look like 2026-02-18/);
  } finally {
    await Deno.remove(path);
  }
});
