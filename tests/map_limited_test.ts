import assert from "node:assert/strict";
import { mapLimited } from "../src/map_limited.ts";

Deno.test("mapLimited keeps input order and never runs more than the limit at once", async () => {
  let running = 0, most = 0;
  const out = await mapLimited([5, 1, 4, 2, 3], 2, async (n) => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, n));
    running--;
    return n * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30]);
  assert.equal(most, 2);
  assert.deepEqual(await mapLimited([], 4, () => Promise.resolve(1)), []);
});
