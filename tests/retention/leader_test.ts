/** The evictor lease as a process sees it (src/retention/leader.ts), over a real SQLite catalog. */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { deadHereHolder, Leadership } from "../../src/retention/leader.ts";
import { memoryLogger } from "../../src/log.ts";

Deno.test("a holder on this host whose process is gone is dead; this process, other hosts and odd names are not", () => {
  const host = Deno.hostname();
  assert.equal(deadHereHolder(`${host}:${Deno.pid}:x`), false);
  assert.equal(deadHereHolder(`${host}:999999999:x`), true);
  assert.equal(deadHereHolder(`another-host:999999999:x`), false);
  assert.equal(deadHereHolder("not a holder"), false);
});

Deno.test("one of two candidates leads; the other takes over once the leader stops, or at once when it died here", async () => {
  const catalog = new SqliteCatalog(":memory:");
  try {
    const a = new Leadership({ catalog, log: memoryLogger(), ttlMs: 60_000 });
    const b = new Leadership({ catalog, log: memoryLogger(), ttlMs: 60_000 });
    const fa = await a.hold();
    assert.ok(fa);
    assert.equal(await b.hold(), null);
    assert.equal(a.leading, true);
    await a.stop();
    const fb = await b.hold();
    assert.ok(fb && fb.token > fa.token);
    // A holder of this host with a pid that no longer runs: not waited out.
    await catalog.claimLease("evictor", `${Deno.hostname()}:999999999:gone`, 60_000, b.holder);
    const c = new Leadership({ catalog, log: memoryLogger(), ttlMs: 60_000 });
    assert.ok(await c.hold());
    assert.equal(await b.hold(), null, "b lost the lease");
  } finally {
    await catalog.close();
  }
});
