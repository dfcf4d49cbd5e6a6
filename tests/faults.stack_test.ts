/**
 * Faults against the real Kafka broker and S3 server (dev/faults.ts): consumer killed or stopped, broker or S3
 * down for 20 s, slow S3, camera stalls and drops, a group member killed. Each scenario's run is audited against
 * an uninterrupted replay of the topic: no accepted frame may be lost or stored twice. Recovery is awaited for as
 * long as the consumer keeps making progress (dev/faults.ts STALL_MS), so a busy machine makes these slower, not
 * red. The Kafka and S3 outages stop and restart the servers: run this file on a stack of its own, e.g.
 * `FRAME_BUCKET_STACK_DIR=/tmp/fb-faults KAFKA_PORT=19092 S3_PORT=19000 PG_PORT=19432 deno task stack up`, then
 * `deno test -A tests/faults.stack_test.ts` with the same env. The figures of each run (frames, recovery time,
 * memory) are a benchmark's output: `deno task bench faults` prints them as JSON lines and a table.
 */
import assert from "node:assert/strict";
import { type FaultResult, SCENARIOS } from "../dev/faults.ts";
import { ensureStack } from "./support/stack.ts";

const OUTAGE_SECONDS = 20;

function check(r: FaultResult) {
  assert.equal(r.lost, 0, `${r.fault}: accepted frames lost: ${r.notes.lost_keys}`);
  assert.equal(r.duplicates, 0, `${r.fault}: frames stored twice: ${r.notes.extra_keys}`);
  assert.ok(r.recover_s !== null, `${r.fault}: the pipeline stopped recovering: ${r.notes.recover_wait}`);
  assert.ok(r.stored > 0 && r.expected === r.stored, `${r.fault}: stored ${r.stored} of ${r.expected}`);
  assert.equal(
    r.notes.lag_at_end,
    undefined,
    `${r.fault}: consumer stopped catching up: ${r.notes.drain_wait}`,
  );
}

/**
 * A /healthz answer ("STATUS BODY") with the given status in which only `failing` (if any) is not "ok"; every
 * check the consumer runs (kafka, s3, and any added later) must be in it.
 */
function assertHealth(answer: unknown, status: number, failing?: string) {
  const text = String(answer);
  const [code, ...rest] = text.split(" ");
  assert.equal(Number(code), status, `/healthz answered ${text}`);
  const checks: Record<string, string> = JSON.parse(rest.join(" "));
  assert.ok("kafka" in checks && "s3" in checks, `/healthz answered ${text}`);
  for (const [name, result] of Object.entries(checks)) {
    if (name === failing) assert.notEqual(result, "ok", `/healthz names ${name} while it is away: ${text}`);
    else assert.equal(result, "ok", `/healthz answered ${text}`);
  }
}

const options = { sanitizeOps: false, sanitizeResources: false };

for (const [name, run] of Object.entries(SCENARIOS)) {
  Deno.test({ name: `fault: ${name}`, ...options }, async () => {
    await ensureStack();
    const r = await run({ outageSeconds: OUTAGE_SECONDS });
    check(r);
    switch (name) {
      case "consumer SIGTERM":
        assert.equal(r.notes.exit_code, 0, "clean exit");
        assert.ok(Number(r.notes.stop_s) < 30, `stopped in ${r.notes.stop_s} s`);
        assert.equal(r.notes.committed, r.notes.received, "every received message's offset was committed");
        break;
      case "Kafka down":
        // 20 s at 10 fps is 200 frames a robot; the queue holds 100.
        assert.ok(r.dropped_by_producer > 0, "the producer's queue stayed bounded by dropping the oldest");
        // An operator's probe sees the broker named while it is away, and health once it is back.
        assertHealth(r.notes.healthz_during_outage, 503, "kafka");
        assertHealth(r.notes.healthz_after, 200);
        break;
      case "S3 down":
        assertHealth(r.notes.healthz_during_outage, 503, "s3");
        assertHealth(r.notes.healthz_after, 200);
        break;
      case "slow S3 (+1 s per request)":
        assert.ok(Number(r.notes.lag_while_slow) > 20, `consumption slowed: lag ${r.notes.lag_while_slow}`);
        assert.ok(
          Number(r.notes.consumer_rss_mb_while_slow) < 400,
          `memory bounded: ${r.notes.consumer_rss_mb_while_slow} MB`,
        );
        break;
      case "camera stalls, then drops mid-frame":
        assert.ok(
          String(r.notes.stall_reports).split("/").every((n) => Number(n) > 0),
          "each producer noticed the stall",
        );
        break;
    }
  });
}
