/** The freed-space ledger (src/retention/ledger.ts): what the disk has not shown yet of this process's deletes. */
import assert from "node:assert/strict";
import { FreedLedger } from "../../src/retention/ledger.ts";

const MB = 1_000_000;

Deno.test("a disk that shows deletes at once: nothing is pending", () => {
  const l = new FreedLedger(600_000);
  let used = 80 * MB, local = 78 * MB;
  assert.equal(l.observe(used, local, 0), 0);
  l.deleted(10 * MB, 1000);
  used -= 10 * MB;
  local -= 10 * MB;
  // Frames stored meanwhile grow both alike.
  used += 3 * MB;
  local += 3 * MB;
  assert.equal(l.observe(used, local, 30_000), 0);
});

Deno.test("a disk that lags: deletes count until the disk shows them, whatever is written meanwhile", () => {
  const l = new FreedLedger(600_000);
  let used = 85 * MB, local = 85 * MB;
  l.observe(used, local, 0);
  l.deleted(15 * MB, 1000);
  local -= 15 * MB; // the catalog knows at once; the disk does not
  used += 2 * MB; // frames stored
  local += 2 * MB;
  assert.equal(l.observe(used, local, 30_000), 15 * MB);
  l.deleted(5 * MB, 31_000);
  local -= 5 * MB;
  assert.equal(l.observe(used, local, 60_000), 20 * MB);
  // The trash sweep frees the first 15 MB.
  used -= 15 * MB;
  assert.equal(l.observe(used, local, 90_000), 5 * MB);
  used -= 5 * MB;
  assert.equal(l.observe(used, local, 120_000), 0);
});

Deno.test("a delete older than the bound counts as freed; other growth holds eviction back at most that long", () => {
  const l = new FreedLedger(60_000);
  let used = 85 * MB;
  const local = 70 * MB;
  l.observe(used, local + 15 * MB, 0);
  l.deleted(15 * MB, 1000);
  assert.equal(l.observe(used, local, 30_000), 15 * MB);
  // Another program writes 40 MB on the same disk: at most the recent deletes count.
  used += 40 * MB;
  assert.equal(l.observe(used, local, 50_000), 15 * MB);
  assert.equal(l.observe(used, local, 61_001), 0);
});

Deno.test("deletes the catalog did not count (leftovers of archived frames) and a ledger turned off", () => {
  const l = new FreedLedger(600_000);
  l.observe(50 * MB, 40 * MB, 0);
  l.deleted(2 * MB, 10, false);
  assert.equal(l.observe(50 * MB, 40 * MB, 30_000), 2 * MB);
  const off = new FreedLedger(0);
  off.observe(50 * MB, 40 * MB, 0);
  off.deleted(10 * MB, 10);
  assert.equal(off.observe(50 * MB, 30 * MB, 30_000), 0);
});
