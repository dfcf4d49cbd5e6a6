import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { processData, readBufferSocket } from "../../src/kafka/client.ts";

/** Kafka's framing: a 4-byte size, then the correlation id and the payload. */
function response(correlationId: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + payload.length);
  out.writeInt32BE(4 + payload.length, 0);
  out.writeInt32BE(correlationId, 4);
  out.set(payload, 8);
  return out;
}

function fakeConnection() {
  const got: { correlationId: number; size: number; payload: Buffer }[] = [];
  return {
    got,
    conn: {
      socket: {},
      authHandlers: null,
      authExpectResponse: false,
      requestQueue: {
        fulfillRequest: (r: { correlationId: number; size: number; payload: Buffer }) => got.push(r),
      },
    },
  };
}

const payloads = [300_000, 0, 5, 70_000, 1, 200_000].map((n, i) =>
  Uint8Array.from({ length: n }, (_, k) => (k * 31 + i) & 255)
);
const stream = Buffer.concat(payloads.map((p, i) => response(100 + i, p)));

Deno.test("responses are reassembled from chunks cut anywhere, sizes included", () => {
  for (const cut of [1, 2, 3, 4, 5, 7, 8, 9, 1000, 65_536, 300_007, stream.length]) {
    const { got, conn } = fakeConnection();
    for (let at = 0; at < stream.length; at += cut) {
      processData.call(conn, stream.subarray(at, Math.min(stream.length, at + cut)));
    }
    assert.equal(got.length, payloads.length, `chunks of ${cut}`);
    for (const [i, p] of payloads.entries()) {
      assert.equal(got[i].correlationId, 100 + i);
      assert.equal(got[i].size, 4 + p.length);
      assert.ok(Buffer.from(p).equals(got[i].payload), `payload ${i}, chunks of ${cut}`);
    }
  }
});

Deno.test("a response that arrives in one chunk is a view of it; one spread over chunks is copied once", () => {
  const { got, conn } = fakeConnection();
  const small = response(7, new Uint8Array([1, 2, 3]));
  processData.call(conn, small);
  assert.equal(got[0].payload.buffer, small.buffer, "no copy");
  const big = response(8, new Uint8Array(100_000).fill(9));
  processData.call(conn, big.subarray(0, 50_000));
  assert.equal(got.length, 1, "not delivered before it is complete");
  processData.call(conn, big.subarray(50_000));
  assert.equal(got[1].correlationId, 8);
  assert.equal(got[1].payload.length, 100_000);
  assert.notEqual(got[1].payload.buffer, big.buffer);
});

Deno.test("a partial response is dropped when the connection has a new socket", () => {
  const { got, conn } = fakeConnection();
  const r = response(1, new Uint8Array(1000).fill(1));
  processData.call(conn, r.subarray(0, 500));
  conn.socket = {}; // reconnected: the rest of the old response will never come
  processData.call(conn, response(2, new Uint8Array([5])));
  assert.deepEqual(got.map((g) => g.correlationId), [2]);
});

Deno.test("reads through the shared read buffer: responses kept intact after later reads reuse it", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    const conn = await listener.accept();
    // Small writes (several responses in one read) and big ones (a response over many reads).
    for (let at = 0; at < stream.length;) {
      const n = Math.min(stream.length - at, at % 3 === 0 ? 1000 : 90_000);
      await conn.write(stream.subarray(at, at + n));
      at += n;
    }
    conn.close();
  })();
  const { got, conn } = fakeConnection();
  await new Promise<void>((resolve, reject) => {
    const socket = readBufferSocket({ host: "127.0.0.1", port, onConnect: () => {} });
    conn.socket = socket;
    socket.on("data", (data: Buffer) => processData.call(conn, data));
    socket.on("end", () => resolve());
    socket.on("error", reject);
  });
  await served;
  listener.close();
  // Only now, after every read, are the payloads looked at (kafkajs decodes them later too).
  assert.equal(got.length, payloads.length);
  for (const [i, p] of payloads.entries()) {
    assert.ok(Buffer.from(p).equals(got[i].payload), `payload ${i} intact`);
  }
});
