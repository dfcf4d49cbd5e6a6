/**
 * The fault benchmark's table (`deno task bench faults`): the figures tests/faults.stack_test.ts asserts on are
 * printed there, one row per fault, so a reader sees what each outage cost.
 */
import assert from "node:assert/strict";
import type { FaultResult } from "../../dev/faults.ts";
import { table } from "../../bench/faults.ts";

function result(fault: string, over: Partial<FaultResult> = {}): FaultResult {
  return {
    fault,
    produced: 400,
    dropped_by_producer: 0,
    expected: 40,
    stored: 40,
    lost: 0,
    duplicates: 0,
    recover_s: 3.2,
    producer_peak_rss_mb: 61,
    consumer_peak_rss_mb: 143,
    notes: { longest_stall_s: 11.5 },
    ...over,
  };
}

Deno.test("bench faults table: a header, one aligned row per fault, 'never' for no recovery, the footnotes", () => {
  const lines = table([
    result("consumer SIGKILL"),
    result("Kafka down", { dropped_by_producer: 123, recover_s: null, notes: {} }),
  ]).split("\n");
  assert.equal(lines.length, 5, lines.join("\n"));
  const [head, first, second] = lines;
  assert.match(head, /^fault\s+produced\s+dropped\*\s+stored\s+lost\s+dupes\s+recover s\s+quiet s\*\*/);
  assert.deepEqual(first.split(/\s{2,}/), [
    "consumer SIGKILL",
    "400",
    "0",
    "40",
    "0",
    "0",
    "3.2",
    "11.5",
    "61",
    "143",
  ]);
  assert.deepEqual(second.split(/\s{2,}/), [
    "Kafka down",
    "400",
    "123",
    "40",
    "0",
    "0",
    "never",
    "-",
    "61",
    "143",
  ]);
  // Fault names are padded on the right, figures on the left: every column ends where its header ends.
  assert.ok(lines.slice(0, 3).every((l) => l.length === head.length), lines.join("\n"));
  assert.match(lines[3], /^\* dropped: /);
  assert.match(lines[4], /^\*\* quiet: /);
});
