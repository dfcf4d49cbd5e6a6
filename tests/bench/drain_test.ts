import assert from "node:assert/strict";
import { parseVariant } from "../../bench/drain.ts";

Deno.test("drain variants: name, revision, Deno flags, environment and config keys", () => {
  const v = parseVariant(
    "name=small heap; rev=abc123; flags=--v8-flags=--max-semi-space-size=2 --quiet; env=MALLOC_ARENA_MAX=2;" +
      "set=consumer.filter_workers=1; set=consumer.store_concurrency=16; set=kafka.compression=snappy",
  );
  assert.equal(v.name, "small heap");
  assert.equal(v.rev, "abc123");
  assert.deepEqual(v.flags, ["--v8-flags=--max-semi-space-size=2", "--quiet"]);
  assert.deepEqual(v.env, { MALLOC_ARENA_MAX: "2" });
  assert.deepEqual(v.set, {
    consumer: { filter_workers: 1, store_concurrency: 16 },
    kafka: { compression: "snappy" },
  });
  assert.throws(() => parseVariant("colour=red"), /field "colour" is unknown/);
  assert.throws(() => parseVariant("set=workers=2"), /SECTION\.KEY=VALUE/);
  assert.throws(() => parseVariant("env=2x"), /NAME=VALUE/);
});
