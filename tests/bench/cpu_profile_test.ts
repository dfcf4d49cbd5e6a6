import assert from "node:assert/strict";
import { activityOf, areaOf, type Profile, summarize } from "../../bench/cpu_profile.ts";

const frame = (functionName: string, url = "", lineNumber = 0) => ({ functionName, url, lineNumber });

Deno.test("cpu profile summary: self time per area and function, activities from whole stacks", async (t) => {
  const profile: Profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 5, 6] },
      { id: 2, callFrame: frame("put", "file:///p/src/s3.ts", 114), children: [3] },
      {
        id: 3,
        callFrame: frame("signRequest", "file:///c/npm/registry.npmjs.org/@smithy/core/1/x.js"),
        children: [4],
      },
      { id: 4, callFrame: frame("op_node_hash_update") },
      { id: 5, callFrame: frame("(garbage collector)") },
      { id: 6, callFrame: frame("(idle)") },
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [4, 4, 3, 5, 6, 6],
    // Each sample weighs the delta that follows it: 4 -> 1000+1000, 3 -> 1000, 5 -> 2000, idle ignored.
    timeDeltas: [0, 1000, 1000, 1000, 2000, 3000, 2000],
  };
  const s = summarize(profile);
  await t.step("areas exclude idle", () => {
    assert.deepEqual(s.areas.map((a) => [a.area, a.ms]), [
      ["runtime (native)", 2],
      ["gc", 2],
      ["npm:@smithy/core", 1],
    ]);
  });
  await t.step("functions carry their callers", () => {
    assert.equal(s.functions[0].fn, "op_node_hash_update");
    assert.match(s.functions[0].via, /^signRequest x\.js:1 < put s3\.ts:115$/);
  });
  await t.step("inclusive time of our functions", () => {
    assert.deepEqual(s.inclusive, [{ fn: "put s3.ts:115", ms: 3, pct: 60 }]);
  });
  await t.step("activities: the S3 path by any frame of its stack, GC by itself", () => {
    assert.deepEqual(s.activities.map((a) => [a.activity, a.ms]), [["s3 client (AWS SDK, HTTP)", 3], [
      "gc",
      2,
    ]]);
  });
  await t.step("area and activity rules", () => {
    assert.equal(areaOf(frame("x", "ext:deno_node/internal/buffer.mjs")), "deno node compat");
    assert.equal(
      areaOf(frame("emit", "ext:deno_node/internal/inspector_network_bridge.js")),
      "profiling overhead",
    );
    assert.equal(
      activityOf([frame("decode", "file:///c/npm/registry.npmjs.org/kafkajs/2.2.4/src/a.js")]),
      "kafka client (src/kafka/, kafkajs)",
    );
    assert.equal(activityOf([frame("run"), frame("upsert", "file:///p/src/catalog.ts")]), "catalog (SQLite)");
  });
});
