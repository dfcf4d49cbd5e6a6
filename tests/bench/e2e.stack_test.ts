/**
 * `deno task bench e2e` on servers it did not start: like the tests and the demo, it uses a Kafka broker and an S3
 * server that already answer (another checkout's stack, docker compose) instead of refusing their ports.
 */
import assert from "node:assert/strict";
import { stackEndpoints } from "../../tools/stack.ts";
import { ensureStack } from "../support/stack.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "bench e2e runs on a Kafka and an S3 server that another stack started, and measures their CPU",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { kafkaBrokers, s3Endpoint } = stackEndpoints();
  // A stack folder of its own, with no servers in it: to this run the servers that answer belong to someone else.
  const foreignTo = await Deno.makeTempDir({ prefix: "frame-bucket-other-stack-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "bench/main.ts", "e2e", "--robots", "1", "--fps", "5"]
        .concat(["--seconds", "5", "--warmup", "1"]),
      cwd: PROJECT,
      env: {
        NO_COLOR: "1",
        FRAME_BUCKET_STACK_DIR: foreignTo,
        KAFKA_PORT: kafkaBrokers[0].split(":")[1],
        S3_PORT: new URL(s3Endpoint).port,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `bench e2e failed:\n${stderr.split("\n").slice(-15).join("\n")}`);
    assert.match(stderr, /kafka\s+using the server that answers at 127\.0\.0\.1:\d+/);
    assert.match(stderr, /s3\s+using the server that answers at http:\/\/127\.0\.0\.1:\d+/);
    const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    assert.equal(result.robots, 1);
    assert.ok(result.published_per_s > 0 && result.consumed_per_s > 0, stdout);
    // The broker's process was found by its listening port (0 would mean no process to measure).
    assert.ok(result.cores.kafka > 0, `Kafka's CPU was not measured: ${JSON.stringify(result.cores)}`);
    assert.deepEqual([...Deno.readDirSync(foreignTo)], [], "nothing was started in the other stack's folder");
  } finally {
    await Deno.remove(foreignTo, { recursive: true });
  }
});
