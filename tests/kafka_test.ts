import assert from "node:assert/strict";
import snappy from "snappyjs";
import { snappyDecompress } from "../src/kafka.ts";

Deno.test("snappy: raw blocks and the Java client's xerial framing both decode", async (t) => {
  const data = new TextEncoder().encode("frame ".repeat(5000));
  await t.step("raw block (librdkafka, kafkajs)", () => {
    assert.deepEqual(snappyDecompress(snappy.compress(data)), data);
  });
  await t.step("xerial framing with two blocks (Java client)", () => {
    const a = snappy.compress(data.subarray(0, 10000)), b = snappy.compress(data.subarray(10000));
    const framed = new Uint8Array(16 + 4 + a.length + 4 + b.length);
    framed.set([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const view = new DataView(framed.buffer);
    view.setInt32(16, a.length);
    framed.set(a, 20);
    view.setInt32(20 + a.length, b.length);
    framed.set(b, 24 + a.length);
    assert.deepEqual(new Uint8Array(snappyDecompress(framed)), data);
  });
  await t.step("a corrupt xerial block length is an error", () => {
    const framed = new Uint8Array(24);
    framed.set([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
    new DataView(framed.buffer).setInt32(16, 1000);
    assert.throws(() => snappyDecompress(framed), SyntaxError);
  });
});
