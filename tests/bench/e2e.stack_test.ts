/**
 * `deno task bench e2e` on servers it did not start: like the tests and the demo, it uses a Kafka broker and an S3
 * server that already answer (another checkout's stack, docker compose) instead of refusing their ports. And with
 * two consumers on a PostgreSQL catalog: both share the work, and the latency is read from PostgreSQL.
 */
import assert from "node:assert/strict";
import { stackEndpoints } from "../../tools/stack.ts";
import { ensureStack } from "../support/stack.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

/** Runs `deno task bench e2e ARGS` and returns its JSON line (asserting it exited 0) and its stderr. */
async function benchE2e(args: string[], env: Record<string, string> = {}): Promise<{
  result: Record<string, unknown> & { cores: Record<string, number> };
  stderr: string;
  stdout: string;
}> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "bench/main.ts", "e2e", ...args],
    cwd: PROJECT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `bench e2e failed:\n${stderr.split("\n").slice(-15).join("\n")}`);
  return { result: JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}"), stderr, stdout };
}

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
    const { result, stderr, stdout } = await benchE2e(
      ["--robots", "1", "--fps", "5", "--seconds", "5", "--warmup", "1"],
      {
        FRAME_BUCKET_STACK_DIR: foreignTo,
        KAFKA_PORT: kafkaBrokers[0].split(":")[1],
        S3_PORT: new URL(s3Endpoint).port,
      },
    );
    assert.match(stderr, /kafka\s+using the server that answers at 127\.0\.0\.1:\d+/);
    assert.match(stderr, /s3\s+using the server that answers at http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(result.robots, 1);
    assert.equal(result.consumers, 1);
    assert.equal(result.catalog, "sqlite");
    assert.ok((result.published_per_s as number) > 0 && (result.consumed_per_s as number) > 0, stdout);
    // The latency comes from the catalog's rows of the window.
    assert.ok((result.catalog_rows_window as number) > 0, stdout);
    // The broker's process was found by its listening port (0 would mean no process to measure).
    assert.ok(result.cores.kafka > 0, `Kafka's CPU was not measured: ${JSON.stringify(result.cores)}`);
    assert.deepEqual([...Deno.readDirSync(foreignTo)], [], "nothing was started in the other stack's folder");
  } finally {
    await Deno.remove(foreignTo, { recursive: true });
  }
});

Deno.test({
  name: "bench e2e with two consumers on a PostgreSQL catalog: both consume, latency is read from PostgreSQL",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const { result, stdout } = await benchE2e(
    ["--robots", "3", "--fps", "4", "--seconds", "8", "--warmup", "1"]
      .concat(["--consumers", "2", "--catalog", "postgres"]),
  );
  assert.equal(result.consumers, 2);
  assert.equal(result.catalog, "postgres");
  assert.ok((result.consumed_per_s as number) > 0 && (result.stored_per_s as number) > 0, stdout);
  assert.ok((result.catalog_rows_window as number) > 0, stdout);
  // Three robots on the topic's three partitions (robot-000..002 hash to 2, 0 and 1), split over the two
  // consumers: each stores frames.
  const each = result.stored_per_s_each as number[];
  assert.equal(each.length, 2);
  assert.ok(each.every((n) => n > 0), `a consumer stored nothing: ${stdout}`);
  assert.ok("postgres" in result.cores, JSON.stringify(result.cores));
});
