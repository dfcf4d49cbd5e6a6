import assert from "node:assert/strict";
import {
  checkRobotId,
  messageKey,
  objectKey,
  parseMessageKey,
  parseObjectKey,
  robotIdProblem,
  timestampProblem,
} from "../src/key.ts";

Deno.test("object keys follow the original layout", async (t) => {
  await t.step("example from the original README", () => {
    const ts = Date.UTC(2026, 1, 18, 9, 36, 16, 735);
    assert.equal(
      objectKey("frames/", "reachy-001", ts, 8),
      "frames/reachy-001/2026-02-18/20260218T093616735Z_000008.jpg",
    );
  });
  await t.step("milliseconds and sequence are zero-padded, large sequences grow", () => {
    const ts = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    assert.equal(objectKey("", "r", ts, 1234567), "r/2026-01-02/20260102T030405006Z_1234567.jpg");
  });
  await t.step("uses UTC whatever the local time zone", () => {
    assert.equal(objectKey("p/", "a", 0, 0), "p/a/1970-01-01/19700101T000000000Z_000000.jpg");
  });
  await t.step("parses back", () => {
    const ts = Date.UTC(2026, 1, 18, 23, 59, 59, 999);
    assert.deepEqual(parseObjectKey(objectKey("frames/", "bb-1", ts, 42)), {
      prefix: "frames/",
      robotId: "bb-1",
      timestampMs: ts,
      seq: 42,
    });
    assert.equal(parseObjectKey("frames/other/thing.txt"), null);
  });
});

Deno.test("message keys carry robot id and capture time", async (t) => {
  await t.step("round trip", () => {
    assert.equal(messageKey("reachy-001", 1708300000000), "reachy-001:1708300000000");
    assert.deepEqual(parseMessageKey("reachy-001:1708300000000"), {
      robotId: "reachy-001",
      timestampMs: 1708300000000,
    });
  });
  await t.step("refused keys name the problem", () => {
    assert.throws(() => parseMessageKey("no-colon"), { name: "SyntaxError", message: /has no ':'/ });
    assert.throws(() => parseMessageKey("robot:"), { message: /no millisecond timestamp/ });
    assert.throws(() => parseMessageKey("robot:12x"), SyntaxError);
    assert.throws(() => parseMessageKey(":123"), { message: /robot id is empty/ });
    assert.throws(() => parseMessageKey("../x:123"), { name: "RangeError", message: /may only hold/ });
    assert.throws(() => parseMessageKey("a/b:123"), RangeError);
    assert.throws(() => parseMessageKey("roböt:123"), RangeError);
    assert.throws(() => parseMessageKey(`${"r".repeat(65)}:1`), { message: /65 characters long/ });
  });
});

Deno.test("robot ids must be safe path segments", () => {
  for (const ok of ["reachy-001", "bracketbot_2", "a.b", "A", "r".repeat(64)]) {
    assert.equal(robotIdProblem(ok), null, ok);
  }
  for (const bad of ["", ".", "..", "a/b", "../x", "a b", "é", "a:b", "r".repeat(65), "a\\b"]) {
    assert.notEqual(robotIdProblem(bad), null, bad);
    assert.throws(() => checkRobotId(bad), RangeError);
  }
});

Deno.test("implausible capture times are named", () => {
  const now = Date.UTC(2026, 10, 26);
  assert.equal(timestampProblem(now - 1000, now), null);
  assert.match(timestampProblem(-5, now) ?? "", /negative/);
  assert.match(timestampProblem(now + 2 * 24 * 3600 * 1000, now) ?? "", /future/);
});

Deno.test("collision keys carry the Kafka position and parse back", () => {
  const ts = Date.UTC(2026, 1, 18, 9, 36, 16, 735);
  const key = objectKey("frames/", "reachy-001", ts, 8, { partition: 2, offset: 41377 });
  assert.equal(key, "frames/reachy-001/2026-02-18/20260218T093616735Z_000008_p2-o41377.jpg");
  assert.deepEqual(parseObjectKey(key)?.suffix, { partition: 2, offset: 41377, attempt: 0 });
  const third = objectKey("frames/", "reachy-001", ts, 8, { partition: 2, offset: 41377, attempt: 2 });
  assert.ok(third.endsWith("Z_000008_p2-o41377-2.jpg"), third);
  assert.equal(parseObjectKey(third)?.suffix?.attempt, 2);
  assert.equal(parseObjectKey(third)?.seq, 8);
  assert.equal(parseObjectKey(objectKey("frames/", "r", ts, 8))?.suffix, undefined);
});
