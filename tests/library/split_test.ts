/** Train/val/test splits by robot and time block (src/library/split.ts): parsing, grouping, determinism, ratios. */
import assert from "node:assert/strict";
import {
  blockKey,
  parseSplitRatios,
  planSplit,
  type SplitFrame,
  SplitPlanner,
  splitSpec,
} from "../../src/library/split.ts";
import { mulberry32 } from "../../dev/random.ts";

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const MIN = 60_000;

/** Frames of a few robots every 20 s over `hours`, some inside clips. */
function fleet(hours: number, robots = ["reachy-001", "reachy-002", "bracket-003"]): SplitFrame[] {
  const out: SplitFrame[] = [];
  for (const [r, robotId] of robots.entries()) {
    for (let t = 0; t < hours * 3600_000; t += 20_000) {
      const ts = T0 + t + r * 7_000;
      // A 25-minute clip every 2 hours, crossing block edges.
      const inClip = (t % (2 * 3600_000)) >= 55 * MIN && (t % (2 * 3600_000)) < 80 * MIN;
      out.push({
        robotId,
        timestampMs: ts,
        clipIds: inClip ? [r * 1000 + Math.floor(t / (2 * 3600_000))] : [],
      });
    }
  }
  return out;
}

Deno.test("split ratios: names, shares that add up to 1, canonical order; refusals name the fix", () => {
  assert.deepEqual(parseSplitRatios("val=0.2, train=0.8"), [
    { name: "train", ratio: 0.8 },
    { name: "val", ratio: 0.2 },
  ]);
  assert.deepEqual(parseSplitRatios("train=0.7,val=0.2,test=0.1").map((r) => r.name), [
    "train",
    "val",
    "test",
  ]);
  assert.deepEqual(parseSplitRatios("train=1"), [{ name: "train", ratio: 1 }]);
  assert.throws(() => parseSplitRatios("train=0.8,val=0.1"), /add up to 0\.9, not 1: make them add up to 1/);
  assert.throws(
    () => parseSplitRatios("train=0.8,valid=0.2"),
    /names split "valid": the splits are train, val, test/,
  );
  assert.throws(() => parseSplitRatios("train=0.5,train=0.5"), /names split train twice/);
  assert.throws(() => parseSplitRatios("train=1,val=0"), /share "0" of val is not above 0/);
  assert.throws(() => parseSplitRatios("train"), /part "train" is not NAME=SHARE/);
  assert.throws(() => parseSplitRatios(""), /is empty/);
  assert.throws(() => splitSpec("train=1", { blockMinutes: 0 }), /not a number of minutes above 0/);
  assert.throws(() => splitSpec("train=1", { seed: 1.5 }), /not a whole number/);
});

Deno.test("no (robot, time block) and no clip in two splits; ratios close; figures per split", () => {
  const frames = fleet(24);
  const spec = splitSpec("train=0.7,val=0.2,test=0.1", { seed: 42, blockMinutes: 10 });
  const plan = planSplit(frames, spec);
  const byBlock = new Map<string, Set<string>>();
  const byClip = new Map<number, Set<string>>();
  const perSplit: Record<string, number> = {};
  for (const f of frames) {
    const s = plan.splitOf(f);
    perSplit[s] = (perSplit[s] ?? 0) + 1;
    const b = blockKey(f.robotId, f.timestampMs, 10);
    byBlock.set(b, (byBlock.get(b) ?? new Set()).add(s));
    for (const c of f.clipIds) byClip.set(c, (byClip.get(c) ?? new Set()).add(s));
  }
  const leaks = [...byBlock].filter(([, s]) => s.size > 1).map(([b]) => b);
  assert.deepEqual(leaks, [], "a (robot, block) in two splits");
  assert.deepEqual([...byClip].filter(([, s]) => s.size > 1), [], "a clip in two splits");
  const total = frames.length;
  console.log(
    `  ${total} frames, ${byBlock.size} (robot, 10-min block)s, ${byClip.size} clips -> ` +
      JSON.stringify(plan.figures) + `; no block or clip in two splits`,
  );
  assert.deepEqual(
    Object.fromEntries(Object.entries(plan.figures).map(([k, v]) => [k, v!.frames])),
    perSplit,
    "the planned figures are what splitOf gives",
  );
  for (const r of spec.ratios) {
    const share = perSplit[r.name] / total;
    assert.ok(Math.abs(share - r.ratio) < 0.02, `${r.name}: ${share} vs ${r.ratio}`);
  }
});

Deno.test("deterministic: same seed same split whatever the order; another seed another split", () => {
  const frames = fleet(6);
  const spec = splitSpec("train=0.8,val=0.2", { seed: 7, blockMinutes: 5 });
  const a = planSplit(frames, spec);
  const shuffled = frames.slice();
  const rnd = mulberry32(3);
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = rnd() % (i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const b = planSplit(shuffled, spec);
  const c = planSplit(frames, { ...spec, seed: 8 });
  const of = (p: typeof a) => frames.map((f) => p.splitOf(f)).join("");
  assert.equal(of(a), of(b), "order of frames does not matter");
  assert.notEqual(of(a), of(c), "another seed moves blocks");
  assert.deepEqual(a.figures, b.figures);
});

Deno.test("a clip crossing block edges joins those blocks; frames not planned still get a fixed split", () => {
  const spec = splitSpec("train=0.5,val=0.5", { seed: 1, blockMinutes: 10 });
  const planner = new SplitPlanner(spec);
  // Blocks 0..5 of one robot; a clip covering the end of block 1 and the start of block 2.
  const frames: SplitFrame[] = [];
  for (let m = 0; m < 60; m++) {
    frames.push({ robotId: "r", timestampMs: T0 + m * MIN, clipIds: m >= 18 && m <= 22 ? [9] : [] });
  }
  for (const f of frames) planner.add(f);
  const plan = planner.plan();
  const block1 = frames.filter((f) => blockKey("r", f.timestampMs, 10) === blockKey("r", T0 + 10 * MIN, 10));
  const block2 = frames.filter((f) => blockKey("r", f.timestampMs, 10) === blockKey("r", T0 + 20 * MIN, 10));
  const splits = new Set([...block1, ...block2].map((f) => plan.splitOf(f)));
  assert.equal(splits.size, 1, "blocks 1 and 2 (joined by the clip) share a split");
  // A frame arriving later in a known block gets that block's split; one in a new block a fixed one.
  assert.equal(plan.splitOf({ robotId: "r", timestampMs: T0 + 15 * MIN + 1, clipIds: [] }), [...splits][0]);
  const late = { robotId: "r", timestampMs: T0 + 600 * MIN, clipIds: [] };
  assert.equal(plan.splitOf(late), plan.splitOf(late));
  assert.ok(["train", "val"].includes(plan.splitOf(late)));
  // A single split takes everything.
  const one = planSplit(frames, splitSpec("train=1"));
  assert.deepEqual(one.figures, { train: { frames: 60, groups: 5 } });
});
