/**
 * dev/progress.ts on a fake clock: a wait lasts as long as the awaited thing keeps coming closer, and gives up
 * only after a long time without progress (or the overall limit).
 */
import assert from "node:assert/strict";
import { waitOnProgress } from "../../dev/progress.ts";

/** A clock that advances only when slept on, so minutes of waiting take no time. */
function fakeClock() {
  let now = 0;
  return { now: () => now, sleep: (ms: number) => Promise.resolve(void (now += ms)) };
}

const MIN = 60_000;

Deno.test("a recovery that keeps progressing is waited for, however long it takes", async () => {
  // A backlog of 2000 messages worked off at 5 a second on a busy machine: 400 s, far past the old fixed 90 s.
  const clock = fakeClock();
  const committed = () => Math.min(2000, Math.floor(clock.now() / 200));
  const r = await waitOnProgress({
    reached: () => Promise.resolve(committed() >= 2000 ? clock.now() : undefined),
    progress: () => Promise.resolve([committed()]),
    stallMs: 10 * MIN,
    limitMs: 60 * MIN,
    clock,
  });
  assert.equal(r.gaveUp, undefined);
  assert.equal(r.value, 400_000);
  assert.ok(r.waitedMs > 90_000, `waited ${r.waitedMs} ms`);
  assert.ok(r.longestStallMs <= 250, `longest stall ${r.longestStallMs} ms`);
});

Deno.test("quiet phases shorter than the stall bound are waited out, and the longest is reported", async () => {
  // A consumer restart: nothing moves for 40 s (start-up, the dead member's session), then the backlog drains.
  const clock = fakeClock();
  const committed = () => (clock.now() < 40_000 ? 100 : Math.min(300, 100 + (clock.now() - 40_000) / 100));
  const r = await waitOnProgress({
    reached: () => Promise.resolve(committed() >= 300 ? "caught up" : undefined),
    progress: () => Promise.resolve([committed()]),
    stallMs: 10 * MIN,
    limitMs: 60 * MIN,
    clock,
  });
  assert.equal(r.value, "caught up");
  assert.ok(r.longestStallMs >= 40_000 && r.longestStallMs < 41_000, `longest stall ${r.longestStallMs} ms`);
});

Deno.test("a wait without progress gives up after the stall bound, saying so", async () => {
  const clock = fakeClock();
  const r = await waitOnProgress({
    reached: () => Promise.resolve(undefined),
    progress: () => Promise.resolve([1234, 7]),
    stallMs: 10 * MIN,
    limitMs: 60 * MIN,
    clock,
  });
  assert.equal(r.value, undefined);
  assert.ok(r.waitedMs >= 10 * MIN && r.waitedMs < 10 * MIN + 1000, `waited ${r.waitedMs} ms`);
  assert.match(r.gaveUp ?? "", /^no progress for 600 s .*\[1234,7\]/);
});

Deno.test("any one figure rising counts; falling or failing looks do not", async () => {
  const clock = fakeClock();
  let look = 0;
  const r = await waitOnProgress({
    reached: () => {
      if (clock.now() < 5 * MIN) return Promise.reject(new Error("S3 not back yet"));
      return Promise.resolve(undefined);
    },
    progress: () => {
      look++;
      // Until 5 min: the second figure rises while the first falls; after that the looks fail.
      if (clock.now() < 5 * MIN) return Promise.resolve([1000 - look, look]);
      return Promise.reject(new Error("broker away"));
    },
    stallMs: 2 * MIN,
    limitMs: 60 * MIN,
    clock,
  });
  assert.equal(r.value, undefined);
  assert.ok(
    Math.abs(r.waitedMs - 7 * MIN) <= 500,
    `waited ${r.waitedMs} ms: 2 min after the last rise at ~5 min`,
  );
});

Deno.test("a wait that never arrives ends at the overall limit even while it progresses", async () => {
  const clock = fakeClock();
  const r = await waitOnProgress({
    reached: () => Promise.resolve(undefined),
    progress: () => Promise.resolve([clock.now()]),
    stallMs: 10 * MIN,
    limitMs: 60 * MIN,
    clock,
  });
  assert.equal(r.value, undefined);
  assert.match(r.gaveUp ?? "", /^not reached within the limit of 3600 s, though still moving/);
});

Deno.test("bounds that make no sense are refused with their values", async () => {
  await assert.rejects(
    () =>
      waitOnProgress({
        reached: () => Promise.resolve(1),
        progress: () => Promise.resolve([]),
        stallMs: 10 * MIN,
        limitMs: MIN,
      }),
    /need 0 < stallMs <= limitMs, got stallMs 600000, limitMs 60000/,
  );
});
