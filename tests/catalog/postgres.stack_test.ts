/**
 * The catalog contract and the label store on PostgreSQL: both suites, each test on a fresh schema of its own
 * (tests/support/postgres.ts: the server, and the schema dropped when the test's catalog is closed); and what
 * only a shared server has: several servers changing labels at once.
 */
import assert from "node:assert/strict";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import type { PostgresCatalog } from "../../src/catalog/postgres.ts";
import { BadInputError, NotFoundError } from "../../src/errors.ts";
import { catalogSuite } from "./catalog_suite.ts";
import { labelSuite } from "./label_suite.ts";
import { anotherServer, freshPostgresCatalog, postgresSql } from "../support/postgres.ts";
import { frameRow, T0 } from "../support/rows.ts";

catalogSuite("postgres", freshPostgresCatalog);
labelSuite("postgres", freshPostgresCatalog, postgresSql);

/** A fresh catalog with frames r1 0..9 and a second server on it; both closed after `fn`. */
async function twoServers(fn: (a: PostgresCatalog, b: PostgresCatalog, rows: FrameRow[]) => Promise<void>) {
  const a = await freshPostgresCatalog();
  const rows = Array.from({ length: 10 }, (_, i) => frameRow("r1", T0 + i * 1000, i));
  await a.upsertMany(rows);
  const b = await anotherServer(a);
  try {
    await fn(a, b, rows);
  } finally {
    await b.close();
    await a.close();
  }
}

Deno.test("label store (postgres): servers creating labels at once never pass labels.max_distinct", async () => {
  await twoServers(async (a, b, rows) => {
    const limits = { maxDistinct: 10 };
    const stores = [a.labels({ limits }), b.labels({ limits })];
    await stores[0].addLabels({ keys: [rows[0].key] }, ["old"]);
    // 24 calls at once, each creating a label of its own (and one all share), spread over both servers.
    const results = await Promise.allSettled(
      Array.from(
        { length: 24 },
        (_, i) => stores[i % 2].addLabels({ keys: [rows[i % 10].key] }, ["old", `new${i}`]),
      ),
    );
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(results.length - refused.length, 9, "9 new labels fit next to the existing one");
    for (const r of refused) {
      assert.match(String(r.reason), /would make 11 distinct labels, over labels\.max_distinct/);
    }
    assert.equal((await stores[1].list()).length, 10);
    // Each accepted call and nothing else is in the journal, in commit order.
    const journal = await stores[0].changes({ limit: 100 });
    assert.equal(journal.length, 10);
  });
});

Deno.test("label store (postgres): a change that fails halfway leaves nothing, journal included", async () => {
  await twoServers(async (a, b, rows) => {
    const labels = a.labels();
    await labels.addLabels({ keys: [rows[0].key] }, ["keep"]);
    // The add would succeed; the remove names an unknown label: neither happens.
    await assert.rejects(
      b.labels().changeLabels({ keys: [rows[1].key] }, { add: ["new"], remove: ["never"] }),
      NotFoundError,
    );
    assert.deepEqual(await labels.labelsOf(rows[1].key), []);
    assert.equal(await labels.exists("new"), false);
    assert.equal((await labels.changes()).length, 1);
  });
});

Deno.test("label store (postgres): text PostgreSQL cannot hold is bad input or not found, not a server error", async () => {
  await twoServers(async (a, _b, rows) => {
    const labels = a.labels();
    await assert.rejects(
      labels.addLabels({ keys: [rows[0].key] }, ["x"], { author: "a\0b" }),
      (e) => e instanceof BadInputError && /NUL/.test(e.message),
    );
    await assert.rejects(labels.addLabels({ keys: ["frames/a\0b.jpg"] }, ["x"]), NotFoundError);
    await assert.rejects(labels.removeLabels({ keys: [rows[0].key] }, ["a\0b"]), NotFoundError);
    await assert.rejects(
      labels.createClip({ robotId: "r1", fromMs: T0, toMs: T0, name: "c", note: "\0" }),
      BadInputError,
    );
    assert.deepEqual(await labels.labelsOf("a\0b"), []);
    assert.equal(await labels.exists("a\0b"), false);
    assert.deepEqual(await labels.listClips({ label: "a\0b" }), []);
    assert.equal(await labels.getClip(1.5), null);
    await assert.rejects(labels.deleteClip(Number.NaN), NotFoundError);
    assert.deepEqual(await labels.changes(), []);
  });
});
