import assert from "node:assert/strict";
import { guardMemory, mallocTrim } from "../../src/consume/memory.ts";

const MiB = 1024 * 1024;

Deno.test("a collection is asked for each time heap plus outside memory grew by the slack since the last one", () => {
  let external = 40 * MiB;
  const asked: unknown[] = [];
  const guard = guardMemory({
    slackBytes: 16 * MiB,
    intervalMs: 3_600_000, // the test looks itself
    used: () => external,
    gc: (options) => {
      asked.push(options);
      external = 42 * MiB; // what the collection leaves: the frames really in use
    },
    trim: null,
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

Deno.test("once a collection has freed memory, the allocator's free pages are handed back", () => {
  let external = 40 * MiB;
  let trimmed = 0;
  const guard = guardMemory({
    slackBytes: 16 * MiB,
    intervalMs: 3_600_000,
    used: () => external,
    gc: () => {},
    trim: () => trimmed++,
  })!;
  try {
    external = 39 * MiB; // a little less in use: below trimBytes (4 MiB), nothing to hand back
    guard.check();
    assert.equal(trimmed, 0);
    external = 58 * MiB;
    assert.equal(guard.check(), true);
    external = 41 * MiB; // the collection freed 17 MiB of frames
    guard.check();
    assert.equal(trimmed, 1);
    assert.equal(guard.trims, 1);
    guard.check(); // no further fall: nothing more to hand back
    assert.equal(trimmed, 1);
  } finally {
    guard.stop();
  }
});

Deno.test("malloc_trim is there on Linux with glibc, and calling it is harmless", () => {
  const trim = mallocTrim();
  if (Deno.build.os === "linux") assert.ok(trim, "glibc's malloc_trim through Deno.dlopen");
  trim?.();
});

Deno.test("without V8's gc function (no --expose-gc) the guard does nothing", () => {
  assert.equal(guardMemory({ slackBytes: MiB, gc: null }), null);
});
