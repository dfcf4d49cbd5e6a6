import assert from "node:assert/strict";
import { murmur2, partitionForRobot, robotOfKey } from "../../src/kafka/partitioner.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("murmur2 matches Kafka's Java client", () => {
  // "21" -> -973932308 is one of Kafka's own test vectors; the others were computed with an independent
  // Python port of Kafka's Utils.murmur2.
  assert.equal(murmur2(bytes("21")), -973932308);
  assert.equal(murmur2(bytes("")), 275646681);
  assert.equal(murmur2(bytes("a")), -1563381124);
  assert.equal(murmur2(bytes("abc")), 479470107);
  assert.equal(murmur2(bytes("reachy-001")), 1934128814);
  assert.equal(murmur2(bytes("bracketbot-001")), -312418436);
});

Deno.test("all frames of one robot land on one partition", async (t) => {
  await t.step("a thousand keys of one robot, one partition", () => {
    const seen = new Set<number>();
    for (let ts = 1708300000000; ts < 1708300000000 + 1000 * 97; ts += 97) {
      seen.add(partitionForRobot(robotOfKey(`reachy-001:${ts}`), 3));
    }
    assert.equal(seen.size, 1);
  });
  await t.step("different robots spread over the partitions", () => {
    const counts = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 600; i++) counts[partitionForRobot(`robot-${i}`, 6)]++;
    for (const c of counts) assert.ok(c > 60 && c < 140, `uneven spread ${counts}`);
  });
  await t.step("the robot id is everything before the last ':'", () => {
    assert.equal(robotOfKey("reachy-001:1708300000000"), "reachy-001");
    assert.equal(robotOfKey("plain"), "plain");
  });
  await t.step("partition count must be positive", () => {
    assert.throws(() => partitionForRobot("a", 0), RangeError);
  });
});
