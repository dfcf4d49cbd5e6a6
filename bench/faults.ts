/**
 * `deno task bench faults [--outage SECONDS] [--only NAME]`: runs the fault scenarios of dev/faults.ts against
 * the local stack and prints one JSON line per fault, then a table.
 */
import { parseArgs } from "node:util";
import { type FaultResult, runFaults, SCENARIOS } from "../dev/faults.ts";

export const USAGE = `usage: deno task bench faults [--outage SECONDS] [--only NAME ...]

Runs each fault scenario against the local stack (started when needed) and prints one JSON line per fault,
then a table. --outage sets the Kafka/S3 outage and slow-S3 period (default 20 s).
faults: ${Object.keys(SCENARIOS).join("; ")}`;

export async function benchFaults(args: string[]): Promise<FaultResult[]> {
  const { values } = parseArgs({
    args,
    options: { outage: { type: "string", default: "20" }, only: { type: "string", multiple: true } },
  });
  const outageSeconds = Number(values.outage);
  if (!(outageSeconds > 0)) {
    throw new RangeError(`--outage ${values.outage} must be a positive number of seconds`);
  }
  const names = values.only?.length ? values.only : Object.keys(SCENARIOS);
  const results = await runFaults(names, { outageSeconds, say: (l) => console.error(l) });
  for (const r of results) console.log(JSON.stringify(r));
  console.log("");
  console.log(table(results));
  return results;
}

export function table(results: FaultResult[]): string {
  const head = [
    "fault",
    "produced",
    "dropped*",
    "stored",
    "lost",
    "dupes",
    "recover s",
    "quiet s**",
    "prod RSS MB",
    "cons RSS MB",
  ];
  const rows = results.map((r) => [
    r.fault,
    String(r.produced),
    String(r.dropped_by_producer),
    String(r.stored),
    String(r.lost),
    String(r.duplicates),
    r.recover_s === null ? "never" : String(r.recover_s),
    String(r.notes.longest_stall_s ?? "-"),
    String(r.producer_peak_rss_mb),
    String(r.consumer_peak_rss_mb),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [
    line(head),
    ...rows.map(line),
    "* dropped: frames the producer's bounded queue let go while Kafka was away (counted, by design)",
    "** quiet: the longest time the recovery and drain waits saw no progress (they give up after 10 minutes of it)",
  ]
    .join("\n");
}
