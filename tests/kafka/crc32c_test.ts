import assert from "node:assert/strict";
import byteAtATime from "kafkajs/src/protocol/recordBatch/crc32C/crc32C.js";
import { crc32c } from "../../src/kafka/crc32c.ts";
import { FAST_CRC32C } from "../../src/kafka/client.ts";
import { Rng } from "../../dev/random.ts";
import { readSamples } from "../support/images.ts";

Deno.test("crc32c: Kafka's record-batch checksum", async (t) => {
  await t.step("the standard check value: CRC-32C of '123456789' is e3069283", () => {
    assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });
  await t.step("same result as kafkajs' byte-at-a-time code for every length 0..300 and offset", () => {
    const bytes = new Rng(7).bytes(310);
    for (let offset = 0; offset < 8; offset++) {
      for (let n = 0; n <= 300; n++) {
        const slice = bytes.subarray(offset, offset + n);
        assert.equal(crc32c(slice), byteAtATime(slice), `offset ${offset} length ${n}`);
      }
    }
  });
  await t.step("same result on a real 1080p frame", () => {
    const frame = readSamples()[0];
    assert.equal(crc32c(frame), byteAtATime(frame));
  });
  await t.step("continues across pieces", () => {
    const data = new TextEncoder().encode("camera.frames ".repeat(100));
    assert.equal(crc32c(data.subarray(37), crc32c(data.subarray(0, 37))), crc32c(data));
  });
  await t.step("kafkajs produces with it (installed before its record-batch encoder loaded)", () => {
    assert.equal(FAST_CRC32C, true);
  });
});
