/**
 * LeanHttpHandler (src/store/http_handler.ts) against raw HTTP servers on loopback, written byte by byte here so
 * that every case (chunked answers, sockets closed by the server, silence, resets, 100-continue) is exactly what
 * the test says. The real S3 server's side is in the stack tests of tests/store/ and tests/retention/, which run
 * with this handler in the S3 client.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { LeanHttpHandler, type LeanHttpRequest } from "../../src/store/http_handler.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Buffered reading of one server-side connection. */
class ServerConn {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.conn.read(chunk).catch(() => null);
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async line(): Promise<string | null> {
    for (;;) {
      const at = decoder.decode(this.#buf).indexOf("\r\n");
      if (at >= 0) return decoder.decode(this.#take(at + 2)).slice(0, -2);
      if (!(await this.#more())) return null;
    }
  }

  async bytes(n: number): Promise<Uint8Array | null> {
    while (this.#buf.length < n) if (!(await this.#more())) return null;
    return this.#take(n);
  }

  /** The request head only; null when the client closed the connection. */
  async head(): Promise<Omit<Received, "body"> | null> {
    const first = await this.line();
    if (first === null) return null;
    const [method, path] = first.split(" ");
    const headers: Record<string, string> = {};
    for (let line = await this.line(); line; line = await this.line()) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { method, path, headers };
  }

  /** The body of a request whose head was read, by Content-Length or chunked. */
  async body(headers: Record<string, string>): Promise<Uint8Array> {
    if (headers["transfer-encoding"] === "chunked") {
      const parts: Uint8Array[] = [];
      for (;;) {
        const size = parseInt((await this.line())!, 16);
        if (size === 0) {
          await this.line();
          break;
        }
        parts.push((await this.bytes(size))!);
        await this.line();
      }
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) out.set(p, (at += p.length) - p.length);
      return out;
    }
    return (await this.bytes(Number(headers["content-length"] ?? 0)))!;
  }

  async request(): Promise<Received | null> {
    const head = await this.head();
    return head && { ...head, body: await this.body(head.headers) };
  }

  async write(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}

/** A loopback server running `serve` for every connection; counts connections. */
function server(serve: (conn: ServerConn, index: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: ServerConn[] = [];
  const done: Promise<void>[] = [];
  (async () => {
    for await (const conn of listener) {
      const c = new ServerConn(conn);
      conns.push(c);
      done.push(serve(c, conns.length - 1).catch(() => {}).finally(() => c.close()));
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    get connections() {
      return conns.length;
    },
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await Promise.all(done);
    },
  };
}

function request(port: number, path = "/", more: Partial<LeanHttpRequest> = {}): LeanHttpRequest {
  return { method: "GET", protocol: "http:", hostname: "127.0.0.1", port, path, headers: {}, ...more };
}

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const text = async (stream: ReadableStream<Uint8Array>) => decoder.decode(await bytesOf(stream));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Lets closed sockets' last operations end before the test's resource checks. */
async function settle(handler: LeanHttpHandler, ...servers: { close(): Promise<void> }[]) {
  handler.destroy();
  for (const s of servers) await s.close();
  await sleep(10);
}

Deno.test("a Content-Length answer, and keep-alive: sequential requests share one socket", async () => {
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      const body = `${r.method} ${r.path} ${r.headers["x-test"] ?? ""} ${r.body.length}`;
      await c.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Amz-Request-Id: abc\r\nETag: "e"\r\n\r\n${body}`,
      );
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    const query = { "list-type": "2", prefix: "a b/", flag: null };
    const first = await handler.handle(
      request(srv.port, "/bucket/key", { query, headers: { "X-Test": "1" } }),
    );
    assert.equal(first.response.statusCode, 200);
    assert.equal(first.response.reason, "OK");
    // Header names come lower-cased, as NodeHttpHandler gives them.
    assert.equal(first.response.headers["x-amz-request-id"], "abc");
    assert.equal(first.response.headers["etag"], '"e"');
    assert.equal(await text(first.response.body), "GET /bucket/key?flag&list-type=2&prefix=a%20b%2F 1 0");
    const body = new Uint8Array(200_000).map((_, i) => i % 251);
    const second = await handler.handle(request(srv.port, "/k", { method: "PUT", body }));
    assert.equal(await text(second.response.body), `PUT /k  ${body.length}`);
    const third = await handler.handle(request(srv.port, "/s", { method: "POST", body: "héllo" }));
    assert.equal(await text(third.response.body), "POST /s  6");
    assert.equal(srv.connections, 1);
    assert.deepEqual(handler.sockets()[`http://127.0.0.1:${srv.port}`], { open: 1, idle: 1 });
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("chunked answers (split anywhere, with extensions and trailers) and answers ending with the connection", async () => {
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      if (r.path === "/chunked") {
        const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "5;ext=1\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n";
        // One byte at a time: every boundary of the framing falls between two reads somewhere.
        for (const ch of wire) {
          await c.write(ch);
          await sleep(0);
        }
      } else if (r.path === "/big-chunk") {
        const data = "x".repeat(100_000);
        await c.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${data.length.toString(16)}\r\n`);
        await c.write(`${data}\r\n0\r\n\r\n`);
      } else {
        await c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
        return;
      }
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    const chunked = await handler.handle(request(srv.port, "/chunked"));
    assert.equal(await text(chunked.response.body), "hello 0123456789abcdef");
    const big = await handler.handle(request(srv.port, "/big-chunk"));
    assert.equal((await text(big.response.body)).length, 100_000);
    assert.equal(srv.connections, 1, "a chunked answer leaves the socket reusable");
    const untilClose = await handler.handle(request(srv.port, "/close"));
    assert.equal(await text(untilClose.response.body), "until the end");
    assert.equal(handler.sockets()[`http://127.0.0.1:${srv.port}`].open, 0, "that socket is not kept");
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("HEAD, 204 and 304 answers have no body even with a Content-Length", async () => {
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      const status = r.path === "/204" ? "204 No Content" : r.path === "/304" ? "304 Not Modified" : "200 OK";
      await c.write(`HTTP/1.1 ${status}\r\nContent-Length: 12345\r\nX-Amz-Meta-Seq: 7\r\n\r\n`);
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    const head = await handler.handle(request(srv.port, "/k", { method: "HEAD" }));
    assert.equal(head.response.headers["content-length"], "12345");
    assert.equal(head.response.headers["x-amz-meta-seq"], "7");
    assert.equal((await bytesOf(head.response.body)).length, 0);
    for (const path of ["/204", "/304"]) {
      const r = await handler.handle(request(srv.port, path));
      assert.equal((await bytesOf(r.response.body)).length, 0);
    }
    assert.equal(srv.connections, 1);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("a socket the server closed while idle is noticed, and the next request goes out on a new one", async () => {
  const srv = server(async (c) => {
    const r = await c.request();
    if (!r) return;
    // Keep-alive as far as the headers go, then the server's idle timeout closes the socket.
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    await sleep(20);
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    const origin = `http://127.0.0.1:${srv.port}`;
    for (let i = 0; i < 3; i++) {
      const r = await handler.handle(request(srv.port, "/"));
      assert.equal(await text(r.response.body), "ok");
      assert.equal(handler.sockets()[origin].idle, 1);
      await sleep(100);
      assert.equal(handler.sockets()[origin].open, 0, "the closed idle socket left the pool");
    }
    assert.equal(srv.connections, 3);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("a pooled socket whose first write fails is replaced once by a new one; a new socket's failure is not retried", async () => {
  // A server closing a pooled socket just as a request takes it: the close is not noticed yet, and the request's
  // first write fails. Deno.connect is wrapped so that the test decides which writes fail.
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      await c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  const connect = Deno.connect;
  const sockets: { failNextWrite: boolean }[] = [];
  let failNewSockets = false;
  Deno.connect = (async (options: Deno.ConnectOptions) => {
    const conn = await connect(options);
    const state = { failNextWrite: failNewSockets };
    sockets.push(state);
    return new Proxy(conn, {
      get(target, property) {
        if (property === "write" && state.failNextWrite) {
          state.failNextWrite = false;
          return () => Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }) as typeof Deno.connect;
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    assert.equal(await text((await handler.handle(request(srv.port, "/"))).response.body), "ok");
    sockets[0].failNextWrite = true;
    assert.equal(await text((await handler.handle(request(srv.port, "/"))).response.body), "ok");
    assert.equal(srv.connections, 2, "sent again on a new socket");
    // The new socket fails too: once is enough, the error comes out with Node's code.
    sockets[1].failNextWrite = true;
    failNewSockets = true;
    await assert.rejects(
      handler.handle(request(srv.port, "/")),
      (e: Error & { code?: string }) => e.code === "EPIPE",
    );
    assert.equal(sockets.length, 3);
  } finally {
    Deno.connect = connect;
    await settle(handler, srv);
  }
});

Deno.test("requestTimeout: a silent server fails the request with a TimeoutError and the socket is destroyed", async () => {
  const srv = server(async (c) => {
    await c.request();
    await sleep(1000); // no answer
  });
  const handler = new LeanHttpHandler({ requestTimeout: 150 });
  try {
    const started = performance.now();
    await assert.rejects(handler.handle(request(srv.port, "/")), (e: Error) => e.name === "TimeoutError");
    const took = performance.now() - started;
    assert.ok(took >= 140 && took < 600, `timed out after ${took} ms`);
    assert.equal(handler.sockets()[`http://127.0.0.1:${srv.port}`].open, 0);
    // The per-request option wins over the handler's.
    const t2 = performance.now();
    await assert.rejects(
      handler.handle(request(srv.port, "/"), { requestTimeout: 50 }),
      (e: Error) => e.name === "TimeoutError",
    );
    assert.ok(performance.now() - t2 < 140);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("requestTimeout also covers a body that stops coming", async () => {
  const srv = server(async (c) => {
    await c.request();
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart");
    await sleep(1000);
  });
  const handler = new LeanHttpHandler({ requestTimeout: 100 });
  try {
    const r = await handler.handle(request(srv.port, "/"));
    await assert.rejects(bytesOf(r.response.body), (e: Error) => e.name === "TimeoutError");
    assert.equal(handler.sockets()[`http://127.0.0.1:${srv.port}`].open, 0);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("the abort signal fails the request with an AbortError and destroys the socket", async () => {
  const srv = server(async (c) => {
    await c.request();
    await sleep(1000);
  });
  const handler = new LeanHttpHandler({ requestTimeout: 5000 });
  try {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(
      handler.handle(request(srv.port, "/"), { abortSignal: controller.signal }),
      (e: Error) => e.name === "AbortError",
    );
    assert.equal(handler.sockets()[`http://127.0.0.1:${srv.port}`].open, 0);
    await assert.rejects(
      handler.handle(request(srv.port, "/"), { abortSignal: AbortSignal.abort() }),
      (e: Error) => e.name === "AbortError",
    );
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("a connection reset or closed before the answer keeps Node's code ECONNRESET; refused: ECONNREFUSED", async () => {
  const srv = server(async (c, index) => {
    if (index === 0) {
      // Closing with the request unread makes the kernel send a reset.
      await sleep(30);
      return;
    }
    await c.request();
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    const body = new Uint8Array(50_000);
    // Reset while the body is still being written (EPIPE) or while the answer is awaited (ECONNRESET).
    await assert.rejects(
      handler.handle(request(srv.port, "/", { method: "PUT", body })),
      (e: Error & { code?: string }) => e.code === "ECONNRESET" || e.code === "EPIPE",
    );
    await assert.rejects(
      handler.handle(request(srv.port, "/")),
      (e: Error & { code?: string }) => e.code === "ECONNRESET" && /socket hang up/.test(e.message),
    );
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    await assert.rejects(
      handler.handle(request(port, "/")),
      (e: Error & { code?: string }) => e.code === "ECONNREFUSED" && /ECONNREFUSED/.test(e.message),
    );
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("Expect: 100-continue: the body waits for the 100; a final answer instead means it is not sent", async () => {
  const srv = server(async (c) => {
    for (let h = await c.head(); h; h = await c.head()) {
      if (h.path === "/refuse") {
        await c.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nrefuse");
        return; // the body never came, so this socket is done
      }
      await c.write("HTTP/1.1 100 Continue\r\n\r\n");
      const body = await c.body(h.headers);
      await c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(body.length).length}\r\n\r\n${body.length}`);
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000, continueTimeout: 5000 });
  try {
    const body = new Uint8Array(300_000);
    const started = performance.now();
    const ok = await handler.handle(
      request(srv.port, "/put", { method: "PUT", body, headers: { Expect: "100-continue" } }),
    );
    assert.equal(ok.response.statusCode, 200);
    assert.equal(await text(ok.response.body), "300000");
    assert.ok(performance.now() - started < 2000, "the body went out on the 100, not after the wait");
    const refused = await handler.handle(
      request(srv.port, "/refuse", { method: "PUT", body, headers: { Expect: "100-continue" } }),
    );
    assert.equal(refused.response.statusCode, 403);
    assert.equal(await text(refused.response.body), "refuse");
    assert.equal(handler.sockets()[`http://127.0.0.1:${srv.port}`].open, 0);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("Expect: 100-continue to a server that ignores it: the body goes out after continueTimeout", async () => {
  const srv = server(async (c) => {
    const r = await c.request();
    if (r) {
      await c.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${String(r.body.length).length}\r\n\r\n${r.body.length}`,
      );
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000, continueTimeout: 100 });
  try {
    const r = await handler.handle(
      request(srv.port, "/", {
        method: "PUT",
        body: new Uint8Array(1000),
        headers: { expect: "100-continue" },
      }),
    );
    assert.equal(await text(r.response.body), "1000");
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("stream bodies: web ReadableStream and Node Readable, chunked without a length, as is with one", async () => {
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      const answer = `${r.headers["transfer-encoding"] ?? "-"} ${r.headers["content-length"] ?? "-"} ${
        decoder.decode(r.body)
      }`;
      await c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`);
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode("ab"));
        controller.enqueue(encoder.encode("cd"));
        controller.close();
      },
    });
    const a = await handler.handle(request(srv.port, "/", { method: "PUT", body: web }));
    assert.equal(await text(a.response.body), "chunked - abcd");
    const node = Readable.from([Buffer.from("xy"), Buffer.from("z")]);
    const b = await handler.handle(
      request(srv.port, "/", { method: "PUT", body: node, headers: { "content-length": "3" } }),
    );
    assert.equal(await text(b.response.body), "- 3 xyz");
    assert.equal(srv.connections, 1);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("the pool is bounded: requests beyond maxSockets wait for a free socket", async () => {
  let inFlight = 0, most = 0;
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      inFlight++;
      most = Math.max(most, inFlight);
      await sleep(20);
      inFlight--;
      await c.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n.");
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 5000, maxSockets: 2 });
  try {
    const answers = await Promise.all(
      Array.from(
        { length: 8 },
        () => handler.handle(request(srv.port, "/")).then((r) => text(r.response.body)),
      ),
    );
    assert.deepEqual(answers, Array(8).fill("."));
    assert.equal(srv.connections, 2);
    assert.equal(most, 2);
  } finally {
    await settle(handler, srv);
  }
});

Deno.test("idle sockets are closed after idleTimeout; header values with CR or LF are refused", async () => {
  const srv = server(async (c) => {
    for (let r = await c.request(); r; r = await c.request()) {
      await c.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
  });
  const handler = new LeanHttpHandler({ requestTimeout: 2000, idleTimeout: 60 });
  try {
    await handler.handle(request(srv.port, "/"));
    const origin = `http://127.0.0.1:${srv.port}`;
    assert.equal(handler.sockets()[origin].idle, 1);
    await sleep(200);
    assert.equal(handler.sockets()[origin].open, 0);
    await assert.rejects(
      handler.handle(request(srv.port, "/", { headers: { "x-a": "1\r\nx-b: 2" } })),
      TypeError,
    );
  } finally {
    await settle(handler, srv);
  }
});

/** A self-signed certificate for localhost and 127.0.0.1, valid until 2126, made for this test only. */
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmDCCAT6gAwIBAgIUPoHiySUTK9QYiewxkNBkeCedEAAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEzMDE4NTUwNloYDzIxMjYxMTA2
MTg1NTA2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASD+iouZ4qljKmYVp2PzVYKC/VTeuuI0CiPC3GbXR87jKnxJnp5Ph/Y
JXHODX0bL3kcig2Ue6kvZ/HNAQTEmn6to2wwajAdBgNVHQ4EFgQUhS0HQMbefqQk
mTejiY8QMQcKlUowHwYDVR0jBBgwFoAUhS0HQMbefqQkmTejiY8QMQcKlUowGgYD
VR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0E
AwIDSAAwRQIgGPk0OaElF02X/ebHNO6ht/nf8LL7aD1jLWCZtEXvraECIQDzD/1F
lB5uF4o0S1kMDgXQxBtaWuFgVszHhHLQf3ZgPg==
-----END CERTIFICATE-----`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg38ebu+0HRlgq6MOT
1Nfw8qIVKfF+OZF7Iv9w1IqVpzGhRANCAASD+iouZ4qljKmYVp2PzVYKC/VTeuuI
0CiPC3GbXR87jKnxJnp5Ph/YJXHODX0bL3kcig2Ue6kvZ/HNAQTEmn6t
-----END PRIVATE KEY-----`;

Deno.test("https: TLS on the same pool and framing; the server's certificate is checked", async () => {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: TEST_CERT, key: TEST_KEY });
  let connections = 0;
  const served: Promise<void>[] = [];
  (async () => {
    for await (const conn of listener) {
      connections++;
      const c = new ServerConn(conn);
      served.push(
        (async () => {
          for (let r = await c.request(); r; r = await c.request()) {
            await c.write(
              `HTTP/1.1 200 OK\r\nContent-Length: ${String(r.body.length).length}\r\n\r\n${r.body.length}`,
            );
          }
        })().catch(() => {}).finally(() => c.close()),
      );
    }
  })().catch(() => {});
  const port = listener.addr.port;
  const trusting = new LeanHttpHandler({ requestTimeout: 2000, caCerts: [TEST_CERT] });
  const strict = new LeanHttpHandler({ requestTimeout: 2000 });
  try {
    for (let i = 0; i < 2; i++) {
      const r = await trusting.handle(
        request(port, "/", { protocol: "https:", method: "PUT", body: new Uint8Array(150_000) }),
      );
      assert.equal(await text(r.response.body), "150000");
    }
    assert.equal(connections, 1);
    // Without the certificate among the trusted ones, the connection is refused before any request goes out.
    await assert.rejects(
      strict.handle(request(port, "/", { protocol: "https:" })),
      /certificate|UnknownIssuer/i,
    );
  } finally {
    trusting.destroy();
    strict.destroy();
    listener.close();
    await Promise.all(served);
    await sleep(10);
  }
});
