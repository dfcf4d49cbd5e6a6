import assert from "node:assert/strict";
import {
  allocateFrame,
  decodeFrame,
  encodeFrame,
  HEADER_BYTES,
  releaseFrame,
} from "../../src/ingest/frame.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("frame codec writes the original TimestampedFrame bytes", async (t) => {
  // Vectors computed independently with Python: struct.pack(">qQ", ts, seq).
  await t.step("capture 1708300000000 ms, seq 42", () => {
    const out = encodeFrame(1708300000000, 42, new Uint8Array([0xff, 0xd8, 0xff, 0xd9]));
    assert.equal(hex(out), "00 00 01 8d be 9d 5b 00 00 00 00 00 00 00 00 2a ff d8 ff d9");
  });
  await t.step("zero time and sequence", () => {
    assert.equal(hex(encodeFrame(0, 0, new Uint8Array())), "00 ".repeat(15) + "00");
  });
  await t.step("negative time and the largest safe sequence", () => {
    assert.equal(
      hex(encodeFrame(-1, Number.MAX_SAFE_INTEGER, new Uint8Array())),
      "ff ff ff ff ff ff ff ff 00 1f ff ff ff ff ff ff",
    );
  });
});

Deno.test("frame codec reads back what it wrote without copying the JPEG", () => {
  const jpeg = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
  const message = encodeFrame(1708300000123, 7, jpeg);
  const frame = decodeFrame(message);
  assert.equal(frame.timestampMs, 1708300000123);
  assert.equal(frame.seq, 7);
  assert.deepEqual([...frame.jpeg], [...jpeg]);
  assert.equal(frame.jpeg.buffer, message.buffer, "the JPEG is a view into the message");
  assert.equal(frame.jpeg.byteOffset, HEADER_BYTES);
});

Deno.test("frame codec refuses bad input with a message naming it", async (t) => {
  await t.step("message shorter than the header", () => {
    assert.throws(() => decodeFrame(new Uint8Array(15)), {
      name: "SyntaxError",
      message: /15 bytes, shorter than the 16-byte header/,
    });
  });
  await t.step("zero-byte message", () => {
    assert.throws(() => decodeFrame(new Uint8Array(0)), SyntaxError);
  });
  await t.step("sequence beyond 2^53", () => {
    const m = new Uint8Array(16).fill(0xff);
    m.fill(0, 0, 8);
    assert.throws(() => decodeFrame(m), { name: "RangeError", message: /sequence/ });
  });
  await t.step("timestamp not an integer when encoding", () => {
    assert.throws(() => encodeFrame(1.5, 0, new Uint8Array()), RangeError);
    assert.throws(() => encodeFrame(0, -1, new Uint8Array()), RangeError);
  });
  await t.step("a frame that starts at an offset inside a larger buffer", () => {
    const big = new Uint8Array(100);
    big.set(encodeFrame(5, 6, new Uint8Array([1])), 10);
    const frame = decodeFrame(big.subarray(10, 27));
    assert.equal(frame.timestampMs, 5);
    assert.equal(frame.seq, 6);
  });
});

Deno.test("a frame from allocateFrame is wrapped in place, and its buffer is reused once released", () => {
  const jpeg = allocateFrame(5);
  jpeg.set([0xff, 0xd8, 1, 0xff, 0xd9]);
  const message = encodeFrame(1708300000000, 42, jpeg);
  assert.equal(message.buffer, jpeg.buffer, "the header went in front of the JPEG, nothing was copied");
  assert.equal(hex(message), "00 00 01 8d be 9d 5b 00 00 00 00 00 00 00 00 2a ff d8 01 ff d9");
  assert.deepEqual(decodeFrame(message).jpeg, jpeg);

  const other = allocateFrame(5);
  assert.notEqual(other.buffer, jpeg.buffer, "not reused before it was released");
  releaseFrame(message);
  const again = allocateFrame(7);
  assert.equal(again.buffer, jpeg.buffer, "reused after release");
  assert.equal(again.length, 7);
  releaseFrame(again);
  releaseFrame(again); // twice is harmless
  assert.equal(allocateFrame(3).buffer, jpeg.buffer);
  assert.notEqual(allocateFrame(3).buffer, jpeg.buffer, "handed out once only");

  const plain = new Uint8Array(new ArrayBuffer(21), 16, 5);
  releaseFrame(plain); // not ours: ignored
  const copied = encodeFrame(0, 0, plain);
  assert.notEqual(copied.buffer, plain.buffer, "any other JPEG is copied");
});
