import assert from "node:assert/strict";
import { guardExternalMemory } from "../../src/consume/memory.ts";

const MiB = 1024 * 1024;

Deno.test("a collection is asked for each time outside memory grew by the slack since the last one", () => {
  let external = 40 * MiB;
  const asked: unknown[] = [];
  const guard = guardExternalMemory({
    slackBytes: 16 * MiB,
    intervalMs: 3_600_000, // the test looks itself
    external: () => external,
    gc: (options) => {
      asked.push(options);
      external = 42 * MiB; // what the collection leaves: the frames really in use
    },
  })!;
  try {
    external = 50 * MiB; // +10 MiB: below the slack
    assert.equal(guard.check(), false);
    external = 57 * MiB; // +17 MiB since the start
    assert.equal(guard.check(), true);
    assert.deepEqual(asked, [{ type: "major", execution: "async" }]);
    // From what the collection left (42 MiB, seen at the next look), the next one comes 16 MiB later.
    assert.equal(guard.check(), false);
    external = 55 * MiB;
    assert.equal(guard.check(), false);
    external = 59 * MiB;
    assert.equal(guard.check(), true);
    assert.equal(guard.collections, 2);
  } finally {
    guard.stop();
  }
});

Deno.test("without V8's gc function (no --expose-gc) the guard does nothing", () => {
  assert.equal(guardExternalMemory({ slackBytes: MiB, gc: null }), null);
});
