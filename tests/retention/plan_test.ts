/** Eviction's decisions (src/retention/plan.ts) and the ETag checks of a move (src/retention/move.ts): pure. */
import assert from "node:assert/strict";
import { isMd5Etag, md5Hex } from "../../src/store/content.ts";
import {
  afterFreeing,
  bytesAbove,
  diskPercent,
  evictionSettings,
  nextBackoff,
  planEviction,
  triggerProblem,
  type Usage,
} from "../../src/retention/plan.ts";
import { settings } from "../support/eviction_settings.ts";

const GB = 1e9;
const disk = (usedBytes: number, availBytes: number): Usage => ({
  disk: { usedBytes, availBytes },
  localBytes: 0,
});

Deno.test("decision: disk percent as df (used / (used + available)), threshold, target, hard limit", () => {
  const s = settings({ watch_path: "/data" });
  // Reserved blocks are neither used nor available: 80 used + 15 avail (+5 reserved) is 84.2 %, as df says.
  assert.equal(diskPercent({ usedBytes: 80, availBytes: 15 }).toFixed(1), "84.2");
  assert.equal(planEviction(disk(79.9 * GB, 20.1 * GB), s).evict, false);
  const at = planEviction(disk(80 * GB, 20 * GB), s);
  assert.equal(at.evict, true);
  assert.equal(at.bytesToFree, 10 * GB); // back to 70 % of 100 GB
  assert.equal(at.hardLimit, false);
  assert.match(at.reasons[0], /disk 80\.0% >= 80%/);
  const hard = planEviction(disk(96 * GB, 4 * GB), s);
  assert.equal(hard.hardLimit, true);
  assert.equal(hard.bytesToFree, 26 * GB);
  // Without a watch_path the disk is not a trigger even when measured.
  assert.equal(planEviction(disk(99 * GB, 1 * GB), settings({ max_bytes: 1000 })).evict, false);
});

Deno.test("decision: max_bytes budget works as a virtual disk of that size (80 -> 70 %, hard at 95 %)", () => {
  const s = settings({ max_bytes: 1000 });
  const at = (localBytes: number) => planEviction({ disk: null, localBytes }, s);
  assert.equal(at(799).evict, false);
  assert.deepEqual([at(800).evict, at(800).bytesToFree, at(800).hardLimit], [true, 100, false]);
  assert.deepEqual([at(950).bytesToFree, at(950).hardLimit], [250, true]);
  assert.equal(at(1200).bytesToFree, 500);
  assert.equal(at(0).percent, 0);
});

Deno.test("decision: hysteresis: freeing the planned bytes lands on the target, and nothing happens below the threshold", () => {
  const s = settings({ watch_path: "/data", max_bytes: 5000 });
  const usage: Usage = { disk: { usedBytes: 8600, availBytes: 1400 }, localBytes: 3000 };
  const plan = planEviction(usage, s);
  assert.equal(plan.bytesToFree, 1600); // the disk needs more than the budget (3000 < 4000)
  const after = planEviction(afterFreeing(usage, plan.bytesToFree), s);
  assert.equal(after.evict, false);
  assert.equal(after.percent.toFixed(1), "70.0");
  // Between target and threshold (75 %): no eviction, however long it stays there.
  assert.equal(planEviction({ disk: { usedBytes: 7500, availBytes: 2500 }, localBytes: 0 }, s).evict, false);
  // Both triggers: either fires, the larger need wins.
  const budgetOnly = planEviction({ disk: { usedBytes: 7000, availBytes: 3000 }, localBytes: 4200 }, s);
  assert.deepEqual([budgetOnly.evict, budgetOnly.bytesToFree, budgetOnly.hardLimit], [true, 700, false]);
  const both = planEviction({ disk: { usedBytes: 8500, availBytes: 1500 }, localBytes: 4200 }, s);
  assert.deepEqual([both.evict, both.bytesToFree, both.hardLimit], [true, 1500, false]);
  assert.equal(both.reasons.length, 2);
  assert.equal(bytesAbove({ disk: { usedBytes: 9000, availBytes: 1000 }, localBytes: 0 }, s, 80), 1000);
});

Deno.test("decision: trigger problems, backoff, ETag kinds, watch_path resolution", () => {
  assert.match(triggerProblem(settings()) ?? "", /no trigger/);
  assert.equal(triggerProblem(settings({ max_bytes: 1 })), null);
  assert.equal(triggerProblem(settings({ watch_path: "/" })), null);
  const waits: number[] = [];
  for (let w = 0, i = 0; i < 9; i++) waits.push(w = nextBackoff(w, 1000, 60000));
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  assert.equal(isMd5Etag(md5Hex(new Uint8Array([1, 2]))), true);
  assert.equal(isMd5Etag("d41d8cd98f00b204e9800998ecf8427e-2"), false);
  assert.equal(isMd5Etag(undefined), false);
  const cfg = { baseDir: "/srv/fb", eviction: settings({ watch_path: "data" }) };
  assert.equal(evictionSettings(cfg).watch_path, "/srv/fb/data");
  assert.equal(evictionSettings({ ...cfg, eviction: settings({ watch_path: "/x" }) }).watch_path, "/x");
});
