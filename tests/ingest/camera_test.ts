import assert from "node:assert/strict";
import {
  type CameraFrame,
  cameraFrames,
  frameUrlFromStreamUrl,
  mjpegFrames,
  polledFrames,
  sleep,
  withQuery,
} from "../../src/ingest/camera.ts";
import { ServiceError } from "../../src/errors.ts";
import { memoryLogger } from "../../src/log.ts";
import { isJpeg } from "../../src/ingest/mjpeg.ts";
import { startCamera } from "../../tools/camera.ts";
import { Rng } from "../../dev/random.ts";
import { concat, sameBytes } from "../support/bytes.ts";
import { readSamples, sampleFiles, SAMPLES_DIR } from "../support/images.ts";

const encoder = new TextEncoder();
const MAX_PART = 1024 * 1024;

/** The first four real frames, freshly read. */
const samples = () => readSamples().slice(0, 4);

/** One multipart part; `contentLength: false` leaves the header out. */
function part(boundary: string, type: string, body: Uint8Array, contentLength = true): Uint8Array {
  const length = contentLength ? `Content-Length: ${body.length}\r\n` : "";
  return concat([
    encoder.encode(`--${boundary}\r\nContent-Type: ${type}\r\n${length}\r\n`),
    body,
    encoder.encode("\r\n"),
  ]);
}

/** A local HTTP server for one test; `close` ends it (and any streams the test registered). */
function serve(handler: (request: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { base, close: () => server.shutdown() };
}

async function collect<T>(iterable: AsyncIterable<T>, max = Infinity): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) {
    out.push(item);
    if (out.length >= max) break;
  }
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ServiceError, `expected a ServiceError, got ${error}`);
    return error;
  }
  assert.fail("expected an error");
}

/** Deterministic noise, e.g. a camera sending garbage. */
const noise = (size: number, seed: number) => new Rng(seed).bytes(size);

async function until(condition: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > end) assert.fail(`condition not met within ${ms} ms`);
    await sleep(10);
  }
}

Deno.test("camera URLs follow the original's rules", async (t) => {
  await t.step("the frame URL is the stream URL with /stream replaced by /frame", () => {
    assert.equal(
      frameUrlFromStreamUrl("http://100.107.96.29:8000/api/camera/stream"),
      "http://100.107.96.29:8000/api/camera/frame",
    );
    assert.equal(frameUrlFromStreamUrl("http://192.168.1.42:8003/stream"), "http://192.168.1.42:8003/frame");
  });
  await t.step("withQuery adds quality and fps and keeps existing parameters", () => {
    assert.equal(
      withQuery("http://cam:8000/api/camera/stream", { quality: 80, fps: 10 }),
      "http://cam:8000/api/camera/stream?quality=80&fps=10",
    );
    assert.equal(
      withQuery("http://cam:8000/stream?token=abc&fps=1", { quality: 50, fps: 2.5 }),
      "http://cam:8000/stream?token=abc&fps=2.5&quality=50",
    );
    assert.equal(withQuery("http://cam/frame", { quality: 70 }), "http://cam/frame?quality=70");
  });
  await t.step("a malformed URL is refused with the value and an example", () => {
    assert.throws(() => withQuery("cam:8000/stream", {}), /must use http:\/\/ or https:\/\//);
    assert.throws(() => withQuery("not a url", {}), /"not a url" is not a valid URL: write it like http:/);
  });
});

Deno.test("mjpegFrames yields the JPEGs a camera streams", async (t) => {
  const frames = samples();

  await t.step("real frames with a quoted --boundary, text parts and no Content-Length", async () => {
    const body = concat([
      encoder.encode("\r\n"),
      ...frames.flatMap((f, i) => [
        part("myboundary", "image/jpeg", f, i % 2 === 0),
        part("myboundary", "text/plain", encoder.encode(`progress ${i}`), false),
      ]),
    ]);
    const server = serve(() =>
      new Response(body, {
        headers: { "content-type": 'multipart/x-mixed-replace; boundary="--myboundary"' },
      })
    );
    try {
      const log = memoryLogger();
      const rejects: string[] = [];
      const before = Date.now();
      const out = await collect(
        mjpegFrames(`${server.base}/api/camera/stream`, {
          maxPartBytes: MAX_PART,
          readTimeoutMs: 2000,
          log,
          onReject: (r) => rejects.push(r),
        }),
      );
      assert.equal(out.length, frames.length);
      out.forEach((f, i) => {
        assert.ok(sameBytes(f.jpeg, frames[i]), `frame ${i}`);
        assert.equal(f.headers["content-type"], "image/jpeg");
        assert.ok(f.receivedAtMs >= before && f.receivedAtMs <= Date.now());
      });
      assert.deepEqual(rejects, frames.map(() => "not-jpeg"));
    } finally {
      await server.close();
    }
  });

  await t.step("a boundary learned from the body when the header has none", async () => {
    const body = concat(frames.map((f) => part("BoundaryString", "image/jpeg", f)));
    const server = serve(() =>
      new Response(body, { headers: { "content-type": "multipart/x-mixed-replace" } })
    );
    try {
      const out = await collect(
        mjpegFrames(server.base, { maxPartBytes: MAX_PART, readTimeoutMs: 2000, log: memoryLogger() }),
      );
      assert.equal(out.length, frames.length);
    } finally {
      await server.close();
    }
  });

  await t.step("the simulated camera streams generated JPEGs at the asked fps and quality", async () => {
    const camera = await startCamera({ width: 160, height: 120, fps: 5, stillSeconds: 0.2 });
    try {
      const started = performance.now();
      const out = await collect(
        mjpegFrames(withQuery(camera.url, { quality: 40, fps: 50 }), {
          maxPartBytes: MAX_PART,
          readTimeoutMs: 2000,
          log: memoryLogger(),
        }),
        12,
      );
      assert.equal(out.length, 12);
      assert.ok(out.every((f) => isJpeg(f.jpeg)));
      // 12 frames at 50 fps take ~220 ms; at the default 5 fps they would take over 2 s.
      assert.ok(performance.now() - started < 1500, `took ${performance.now() - started} ms`);
      assert.ok(camera.framesServed() >= 12);
      // Noisy variants: consecutive frames of one scene are not byte-identical.
      assert.ok(!sameBytes(out[0].jpeg, out[1].jpeg));
    } finally {
      await camera.close();
    }
  });

  await t.step("the simulated camera serves sample files in order", async () => {
    const camera = await startCamera({ samplesDir: SAMPLES_DIR, fps: 100 });
    try {
      const all = sampleFiles().length;
      const out = await collect(
        mjpegFrames(camera.url, { maxPartBytes: MAX_PART, readTimeoutMs: 2000, log: memoryLogger() }),
        all + 1,
      );
      out.slice(0, 4).forEach((f, i) => assert.ok(sameBytes(f.jpeg, frames[i]), `frame ${i}`));
      assert.ok(sameBytes(out[all].jpeg, frames[0]), "cycles back to the first file");
      const single = new Uint8Array(await (await fetch(camera.frameUrl)).arrayBuffer());
      assert.ok(sameBytes(single, frames[0]));
    } finally {
      await camera.close();
    }
  });

  await t.step("stopping early cancels the connection", async () => {
    let cancelled = false;
    const server = serve(() => {
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(part("frame", "image/jpeg", frames[0]));
          return sleep(20);
        },
        cancel() {
          cancelled = true;
        },
      });
      return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
    });
    try {
      const out = await collect(
        mjpegFrames(server.base, { maxPartBytes: MAX_PART, readTimeoutMs: 2000, log: memoryLogger() }),
        2,
      );
      assert.equal(out.length, 2);
      await until(() => cancelled, 2000);
    } finally {
      await server.close();
    }
  });
});

Deno.test("mjpegFrames explains what is wrong with the camera URL", async (t) => {
  const server = serve((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/html") {
      return new Response("<html><body>Reachy Mini dashboard</body></html>", {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    if (path === "/html-error") {
      // An error page with status 200, as some camera daemons serve while the sensor is down.
      return new Response("<html><body><h1>Error</h1><p>camera not ready</p></body></html>", {
        headers: { "content-type": "text/html" },
      });
    }
    if (path === "/html-multipart") {
      // An HTML error page under the stream's Content-Type, long enough to exhaust the boundary search.
      const page = "<html><body><h1>Internal error</h1>" + "<p>sensor timeout</p>\n".repeat(12_000) +
        "</body></html>";
      return new Response(page, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
    }
    if (path === "/jpeg") return new Response(samples()[0], { headers: { "content-type": "image/jpeg" } });
    if (path === "/text") {
      return new Response("camera warming up", { headers: { "content-type": "text/plain" } });
    }
    if (path === "/json") {
      return new Response('{"error":"no camera"}', { headers: { "content-type": "application/json" } });
    }
    if (path === "/untyped") return new Response(encoder.encode("raw bytes")); // no Content-Type at all
    if (path === "/broken") return new Response("boom", { status: 500, statusText: "Internal Server Error" });
    if (path === "/unavailable") {
      return new Response("busy", { status: 503, statusText: "Service Unavailable" });
    }
    if (path === "/secret") return new Response("no", { status: 401, statusText: "Unauthorized" });
    if (path === "/forbidden") return new Response("no", { status: 403, statusText: "Forbidden" });
    if (path === "/wrong-boundary") {
      const body = concat(samples().map((f) => part("other", "image/jpeg", f)));
      return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
    }
    if (path === "/random-bytes") {
      return new Response(noise(300_000, 7), {
        headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" },
      });
    }
    if (path === "/no-boundary-anywhere") {
      // No boundary parameter, and a body of JPEGs back to back without any multipart framing.
      return new Response(concat(samples()), { headers: { "content-type": "multipart/x-mixed-replace" } });
    }
    if (path === "/moved") return new Response(null, { status: 302, headers: { location: "/stream" } });
    if (path === "/stream") {
      const body = concat(samples().map((f) => part("frame", "image/jpeg", f)));
      return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
    }
    if (path === "/loop-a") return new Response(null, { status: 302, headers: { location: "/loop-b" } });
    if (path === "/loop-b") return new Response(null, { status: 307, headers: { location: "/loop-a" } });
    return new Response("Not Found", { status: 404, statusText: "Not Found" });
  });
  const options = { maxPartBytes: MAX_PART, readTimeoutMs: 2000, log: memoryLogger() };
  try {
    await t.step("404: names the status and says to check stream.url; retried calmly", async () => {
      const url = `${server.base}/api/camera/stream`;
      const error = await rejection(collect(mjpegFrames(url, options)));
      assert.equal(error.service, "camera");
      assert.match(
        error.message,
        new RegExp(`camera stream at ${url} answered HTTP 404 Not Found: check stream\\.url`),
      );
      assert.match(error.message, /newer Reachy Mini daemons dropped \/api\/camera\/stream/);
      assert.equal(error.retriable, true);
    });
    await t.step("an HTML page: says the URL serves text/html, not an MJPEG stream", async () => {
      const error = await rejection(collect(mjpegFrames(`${server.base}/html`, options)));
      assert.match(error.message, /serves text\/html, not an MJPEG stream/);
      // An error page served with 200 gets the same explanation, and is retried (the camera may come back).
      const page = await rejection(collect(mjpegFrames(`${server.base}/html-error`, options)));
      assert.match(
        page.message,
        new RegExp(`camera at ${server.base}/html-error serves text/html, not an MJPEG stream .*error page`),
      );
      assert.equal(page.retriable, true);
    });
    await t.step(
      "an HTML page under a multipart Content-Type: no delimiter, the page is quoted",
      async () => {
        const rejects: string[] = [];
        const error = await rejection(collect(
          mjpegFrames(`${server.base}/html-multipart`, {
            ...options,
            maxPartBytes: 200_000,
            onReject: (r) => rejects.push(r),
          }),
        ));
        assert.match(
          error.message,
          /is unreadable: boundary "frame" not seen in \d+ bytes; the stream started with "<html><body><h1>Internal error/,
        );
        assert.equal(error.retriable, true);
        assert.deepEqual(rejects, ["no-boundary"]);
      },
    );
    await t.step("other Content-Types (text/plain, application/json, none) are named", async () => {
      for (
        const [path, served] of [["text", "text/plain"], ["json", "application/json"], [
          "untyped",
          "no Content-Type",
        ]]
      ) {
        const error = await rejection(collect(mjpegFrames(`${server.base}/${path}`, options)));
        assert.equal(
          error.message,
          `camera at ${server.base}/${path} serves ${served}, not an MJPEG stream (multipart/x-mixed-replace); ` +
            `check stream.url`,
        );
        assert.equal(error.retriable, true, path);
      }
    });
    await t.step("a single JPEG: points at polling mode and does not retry", async () => {
      const error = await rejection(collect(mjpegFrames(`${server.base}/jpeg`, options)));
      assert.match(
        error.message,
        /serves a single JPEG \(image\/jpeg\), not an MJPEG stream: use stream\.mode = "polling"/,
      );
      assert.equal(error.retriable, false);
    });
    await t.step("5xx is retriable, 401 and 403 are not", async () => {
      const e500 = await rejection(collect(mjpegFrames(`${server.base}/broken`, options)));
      assert.match(
        e500.message,
        /answered HTTP 500 Internal Server Error: the camera daemon is failing; retrying/,
      );
      assert.equal(e500.retriable, true);
      const e503 = await rejection(collect(mjpegFrames(`${server.base}/unavailable`, options)));
      assert.match(
        e503.message,
        new RegExp(
          `camera stream at ${server.base}/unavailable answered HTTP 503 Service Unavailable: .*retrying`,
        ),
      );
      assert.equal(e503.retriable, true);
      const e401 = await rejection(collect(mjpegFrames(`${server.base}/secret`, options)));
      assert.match(e401.message, /answered HTTP 401 Unauthorized: the camera refuses access/);
      assert.equal(e401.retriable, false);
      const e403 = await rejection(collect(mjpegFrames(`${server.base}/forbidden`, options)));
      assert.match(
        e403.message,
        new RegExp(
          `camera stream at ${server.base}/forbidden answered HTTP 403 Forbidden: the camera refuses access`,
        ),
      );
      assert.equal(e403.retriable, false);
    });
    await t.step("a 302 redirect to the stream is followed and frames flow", async () => {
      const out = await collect(mjpegFrames(`${server.base}/moved`, options));
      assert.equal(out.length, samples().length);
      out.forEach((f, i) => assert.ok(sameBytes(f.jpeg, samples()[i]), `frame ${i}`));
    });
    await t.step("a redirect loop fails at once with an error naming the URL", async () => {
      const started = performance.now();
      const error = await rejection(collect(mjpegFrames(`${server.base}/loop-a`, options)));
      assert.match(
        error.message,
        new RegExp(`cannot reach camera stream at ${server.base}/loop-a: .*redirects`),
      );
      assert.equal(error.retriable, true);
      assert.ok(performance.now() - started < 1500, "no hang");
    });
    await t.step("a body that never shows the announced boundary fails the connection", async () => {
      const rejects: string[] = [];
      const error = await rejection(
        collect(
          mjpegFrames(`${server.base}/wrong-boundary`, {
            ...options,
            maxPartBytes: 200_000,
            onReject: (r) => rejects.push(r),
          }),
        ),
      );
      assert.match(error.message, /boundary "frame" not seen/);
      assert.deepEqual(rejects, ["no-boundary"]);
    });
    await t.step("random bytes under the announced boundary fail the connection, retriably", async () => {
      const rejects: string[] = [];
      const error = await rejection(collect(mjpegFrames(`${server.base}/random-bytes`, {
        ...options,
        maxPartBytes: 200_000,
        onReject: (r) => rejects.push(r),
      })));
      assert.match(
        error.message,
        new RegExp(
          `camera stream at ${server.base}/random-bytes is unreadable: boundary "frame" not seen in \\d+ bytes`,
        ),
      );
      assert.equal(error.retriable, true);
      assert.deepEqual(rejects, ["no-boundary"]);
    });
    await t.step("no boundary parameter and no delimiter line in the body: not an MJPEG stream", async () => {
      const rejects: string[] = [];
      const error = await rejection(collect(mjpegFrames(`${server.base}/no-boundary-anywhere`, {
        ...options,
        maxPartBytes: 200_000,
        onReject: (r) => rejects.push(r),
      })));
      assert.match(
        error.message,
        /is unreadable: no multipart delimiter line \("--" \+ boundary\) in \d+ bytes; the stream started with "\\xff\\xd8.*: this is not an MJPEG stream/,
      );
      assert.deepEqual(rejects, ["no-boundary"]);
    });
    await t.step("nothing listening: a retriable 'cannot reach' error", async () => {
      const closed = serve(() => new Response(""));
      const url = closed.base;
      await closed.close();
      const error = await rejection(collect(mjpegFrames(url, options)));
      assert.match(error.message, /cannot reach camera stream at http:\/\/127\.0\.0\.1:\d+/);
      assert.equal(error.retriable, true);
    });
  } finally {
    await server.close();
  }
});

Deno.test("mjpegFrames skips bad parts, counts them and keeps the good ones", async (t) => {
  const frames = samples();
  // 108 KB of header lines without the blank line that ends them: over maxHeaderBytes (16 KiB) however the bytes
  // are chunked (a block that completes within one 64 KiB read is not checked: see the issue-4 report).
  const junkHeaders = encoder.encode(
    "--frame\r\nContent-Type: image/jpeg\r\n" + `X-Junk: ${"a".repeat(100)}\r\n`.repeat(1000),
  );
  const big = concat([frames[0], frames[1]]); // one 358 KB "frame", SOI to EOI
  const truncated = frames[1].subarray(0, 50_000);
  const garbage = concat([frames[0], encoder.encode("GARBAGE after the EOI marker")]);
  /** Each path: the bytes sent, and whether the connection then stays open (silent) instead of closing. */
  const routes: Record<string, { body: Uint8Array<ArrayBuffer>; hold?: boolean }> = {
    "/too-large-length": {
      body: concat([
        part("frame", "image/jpeg", big),
        ...frames.slice(0, 2).map((f) => part("frame", "image/jpeg", f)),
      ]),
    },
    "/too-large-scan": {
      body: concat([
        part("frame", "image/jpeg", big, false),
        ...frames.slice(0, 2).map((f) => part("frame", "image/jpeg", f, false)),
      ]),
    },
    "/endless-headers-then-parts": {
      body: concat([
        junkHeaders,
        encoder.encode("\r\n"),
        ...frames.slice(0, 2).map((f) => part("frame", "image/jpeg", f)),
      ]),
    },
    "/endless-headers-then-close": { body: junkHeaders },
    "/endless-headers-then-silence": { body: junkHeaders, hold: true },
    "/zero-byte": {
      body: concat([
        part("frame", "image/jpeg", frames[0]),
        part("frame", "image/jpeg", new Uint8Array(), true),
        part("frame", "image/jpeg", new Uint8Array(), false),
        part("frame", "image/jpeg", frames[1]),
      ]),
    },
    "/garbage-after-eoi": {
      body: concat([
        part("frame", "image/jpeg", garbage, true),
        part("frame", "image/jpeg", frames[1]),
        part("frame", "image/jpeg", garbage, false),
        part("frame", "image/jpeg", frames[2]),
      ]),
    },
    "/truncated": {
      body: concat([
        part("frame", "image/jpeg", truncated, true),
        part("frame", "image/jpeg", frames[2]),
        part("frame", "image/jpeg", truncated, false),
        part("frame", "image/jpeg", frames[3]),
      ]),
    },
  };
  const server = serve((request) => {
    const route = routes[new URL(request.url).pathname];
    if (!route) return new Response("Not Found", { status: 404 });
    const body = route.hold
      ? new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(route.body) }) // then nothing, left open
      : route.body;
    return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
  });
  /** Reads one connection to its end: the frames, the rejects, the log and the error it ended with, if any. */
  async function read(path: string) {
    const log = memoryLogger();
    const rejects: string[] = [];
    const out: Uint8Array[] = [];
    let error: ServiceError | null = null;
    const started = performance.now();
    try {
      for await (
        const f of mjpegFrames(`${server.base}${path}`, {
          maxPartBytes: 200_000,
          readTimeoutMs: 300,
          log,
          onReject: (r) => rejects.push(r),
        })
      ) out.push(f.jpeg);
    } catch (e) {
      assert.ok(e instanceof ServiceError, `expected a ServiceError, got ${e}`);
      error = e;
    }
    assert.ok(performance.now() - started < 2000, `${path} took ${performance.now() - started} ms`);
    return { out, rejects, log: log.lines.join("\n"), error };
  }
  const assertFrames = (out: Uint8Array[], expected: Uint8Array[]) => {
    assert.equal(out.length, expected.length);
    out.forEach((f, i) => assert.ok(sameBytes(f, expected[i]), `frame ${i}`));
  };
  try {
    for (
      const [path, how] of [["/too-large-length", "Content-Length"], ["/too-large-scan", "no Content-Length"]]
    ) {
      await t.step(
        `a part over the limit (${how}) is skipped and counted; the good parts after it arrive`,
        async () => {
          const { out, rejects, log, error } = await read(path);
          assert.equal(error, null);
          assertFrames(out, frames.slice(0, 2));
          assert.deepEqual(rejects, ["part-too-large"]);
          assert.match(
            log,
            new RegExp(
              `WARN  camera stream at ${server.base}${path}: part of .* is over maxPartBytes \\(200000\\); skipped it`,
            ),
          );
        },
      );
    }
    await t.step(
      "endless part headers are skipped and counted; the good parts after them arrive",
      async () => {
        const { out, rejects, log, error } = await read("/endless-headers-then-parts");
        assert.equal(error, null);
        assertFrames(out, frames.slice(0, 2));
        assert.deepEqual(rejects, ["headers-too-large"]);
        assert.match(
          log,
          /part headers exceed maxHeaderBytes \(16384 bytes\) without a blank line; skipped the part/,
        );
      },
    );
    await t.step("endless part headers and nothing after: the stream ends, or stalls and fails", async () => {
      const closed = await read("/endless-headers-then-close");
      assert.equal(closed.error, null, "the camera closed: a clean end, the loop reconnects");
      assert.deepEqual([closed.out.length, closed.rejects], [0, ["headers-too-large"]]);
      const silent = await read("/endless-headers-then-silence");
      assert.match(silent.error?.message ?? "", /stalled: no bytes for 0\.3 s/);
      assert.equal(silent.error?.retriable, true);
      assert.deepEqual([silent.out.length, silent.rejects], [0, ["headers-too-large"]]);
    });
    await t.step("zero-byte parts (with and without Content-Length) are skipped as not-jpeg", async () => {
      const { out, rejects, log, error } = await read("/zero-byte");
      assert.equal(error, null);
      assertFrames(out, frames.slice(0, 2));
      assert.deepEqual(rejects, ["not-jpeg", "not-jpeg"]);
      assert.match(log, /skipped a image\/jpeg part of 0 bytes \(not a complete JPEG\)/);
    });
    await t.step("a JPEG with garbage after its EOI is skipped as not-jpeg", async () => {
      const { out, rejects, log, error } = await read("/garbage-after-eoi");
      assert.equal(error, null);
      assertFrames(out, [frames[1], frames[2]]);
      assert.deepEqual(rejects, ["not-jpeg", "not-jpeg"]);
      assert.match(
        log,
        new RegExp(`skipped a image/jpeg part of ${garbage.length} bytes \\(not a complete JPEG\\)`),
      );
    });
    await t.step("a JPEG cut before its EOI, inside the stream, is skipped as not-jpeg", async () => {
      const { out, rejects, log, error } = await read("/truncated");
      assert.equal(error, null);
      assertFrames(out, [frames[2], frames[3]]);
      assert.deepEqual(rejects, ["not-jpeg", "not-jpeg"]);
      assert.match(log, /skipped a image\/jpeg part of 50000 bytes \(not a complete JPEG\)/);
    });
  } finally {
    await server.close();
  }
});

// Two gaps found for issue 4 (see its report); these tests describe the wanted behaviour and fail today.

Deno.test({
  name: "a short HTML page under a multipart Content-Type is reported, not taken for a clean end",
  async fn() {
    const server = serve(() =>
      new Response("<html><body><h1>500 Internal Server Error</h1></body></html>", {
        headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" },
      })
    );
    try {
      const log = memoryLogger();
      const rejects: string[] = [];
      let message = "";
      try {
        await collect(mjpegFrames(server.base, {
          maxPartBytes: MAX_PART,
          readTimeoutMs: 300,
          log,
          onReject: (r) => rejects.push(r),
        }));
      } catch (error) {
        message = String(error);
      }
      assert.deepEqual(rejects, ["no-boundary"]);
      assert.match(
        message + log.lines.join("\n"),
        /boundary "frame" not seen .*<html><body><h1>500 Internal/,
      );
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "a stream that never brings a delimiter again after a skipped part fails the connection",
  async fn() {
    const junk = encoder.encode(`X-Junk: ${"a".repeat(1000)}\r\n`);
    const server = serve(() => {
      let first = true;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(first ? encoder.encode("--frame\r\nContent-Type: image/jpeg\r\n") : junk);
          first = false;
          return sleep(1); // ~1 MB/s of header lines, forever
        },
      });
      return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
    });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 3000);
    try {
      const rejects: string[] = [];
      const error = await rejection(collect(mjpegFrames(server.base, {
        maxPartBytes: 200_000,
        readTimeoutMs: 300,
        log: memoryLogger(),
        signal: controller.signal,
        onReject: (r) => rejects.push(r),
      })));
      // Bytes keep coming, so the read timeout never fires: the parser's own seek budget must end it.
      assert.ok(!controller.signal.aborted, "failed by itself, before the 3 s abort");
      assert.equal(error.retriable, true);
      assert.deepEqual(rejects, ["headers-too-large", "no-boundary"]);
    } finally {
      clearTimeout(timer);
      await server.close();
    }
  },
});

Deno.test("mjpegFrames detects a stalled camera within the read timeout", async (t) => {
  const frames = samples();
  let release = () => {};
  const released = new Promise<void>((r) => release = r);
  const server = serve(async (request) => {
    if (new URL(request.url).pathname === "/silent") {
      // Accepts the connection and never answers (until the test ends).
      await released;
      return new Response("late");
    }
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(part("frame", "image/jpeg", frames[0]));
        // ... and then nothing, with the connection left open.
      },
    });
    return new Response(body, { headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" } });
  });
  try {
    await t.step("headers and a frame, then silence: 'stalled: no bytes for 0.3 s'", async () => {
      const out: CameraFrame[] = [];
      const started = performance.now();
      const error = await rejection((async () => {
        for await (
          const f of mjpegFrames(`${server.base}/stream`, {
            maxPartBytes: MAX_PART,
            readTimeoutMs: 300,
            log: memoryLogger(),
          })
        ) out.push(f);
      })());
      const elapsed = performance.now() - started;
      assert.equal(out.length, 1);
      assert.match(
        error.message,
        /camera stream at http:\/\/127\.0\.0\.1:\d+\/stream stalled: no bytes for 0\.3 s/,
      );
      assert.equal(error.retriable, true);
      assert.ok(elapsed >= 280 && elapsed < 1500, `detected after ${elapsed} ms`);
    });
    await t.step("no response at all: 'stalled: no response for 0.3 s'", async () => {
      const started = performance.now();
      const error = await rejection(
        collect(
          mjpegFrames(`${server.base}/silent`, {
            maxPartBytes: MAX_PART,
            readTimeoutMs: 300,
            log: memoryLogger(),
          }),
        ),
      );
      assert.match(error.message, /stalled: no response for 0\.3 s/);
      assert.ok(performance.now() - started < 1500);
    });
    await t.step("aborting the signal ends the stream quietly", async () => {
      const controller = new AbortController();
      const out: CameraFrame[] = [];
      setTimeout(() => controller.abort(), 100);
      for await (
        const f of mjpegFrames(`${server.base}/stream`, {
          maxPartBytes: MAX_PART,
          readTimeoutMs: 5000,
          log: memoryLogger(),
          signal: controller.signal,
        })
      ) out.push(f);
      assert.equal(out.length, 1);
    });
  } finally {
    release();
    await server.close();
  }
});

Deno.test("cameraFrames reconnects with exponential backoff", async (t) => {
  const frames = samples();

  await t.step("a stream closed mid-frame: the loop reconnects and frames keep coming", async () => {
    let connections = 0;
    const server = serve(() => {
      connections++;
      const whole = part("frame", "image/jpeg", frames[connections % frames.length]);
      const half = part("frame", "image/jpeg", frames[1]).subarray(0, 50_000);
      return new Response(concat([whole, half]), {
        headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" },
      });
    });
    try {
      const log = memoryLogger();
      const rejects: string[] = [];
      const out = await collect(
        cameraFrames(
          () =>
            mjpegFrames(server.base, {
              maxPartBytes: MAX_PART,
              readTimeoutMs: 2000,
              log,
              onReject: (r) => rejects.push(r),
            }),
          { log, initialBackoffMs: 10, maxBackoffMs: 40 },
        ),
        3,
      );
      assert.equal(out.length, 3);
      assert.ok(out.every((f) => isJpeg(f.jpeg)));
      assert.equal(connections, 3);
      assert.ok(rejects.length >= 2 && rejects.every((r) => r === "truncated-part"), `rejects ${rejects}`);
      const reconnects = log.lines.filter((l) => l.includes("reconnecting in"));
      assert.ok(reconnects.length >= 2);
      // A frame arrived on each connection, so the delay never grows past the first step.
      assert.ok(
        reconnects.every((l) => /camera stream ended \(.*\): reconnecting in 0\.01 s/.test(l)),
        reconnects.join("\n"),
      );
    } finally {
      await server.close();
    }
  });

  await t.step(
    "503 and 404 are retried with a clear log line until frames flow; 403 ends the loop",
    async () => {
      let connections = 0;
      const server = serve((request) => {
        if (new URL(request.url).pathname === "/forbidden") {
          return new Response("no", { status: 403, statusText: "Forbidden" });
        }
        connections++;
        if (connections === 1) {
          return new Response("busy", { status: 503, statusText: "Service Unavailable" });
        }
        if (connections === 2) {
          return new Response("Not Found", { status: 404, statusText: "Not Found" });
        }
        return new Response(concat([part("frame", "image/jpeg", frames[0])]), {
          headers: { "content-type": "multipart/x-mixed-replace; boundary=frame" },
        });
      });
      try {
        const log = memoryLogger();
        const source = (path: string) => () =>
          mjpegFrames(`${server.base}${path}`, { maxPartBytes: MAX_PART, readTimeoutMs: 2000, log });
        const out = await collect(
          cameraFrames(source("/"), { log, initialBackoffMs: 10, maxBackoffMs: 40 }),
          1,
        );
        assert.equal(out.length, 1);
        assert.equal(connections, 3);
        const reconnects = log.lines.filter((l) => l.includes("reconnecting in"));
        assert.equal(reconnects.length, 2, reconnects.join("\n"));
        assert.match(
          reconnects[0],
          /camera stream failed \(camera stream at .* answered HTTP 503 Service Unavailable: the camera daemon is failing; retrying\): reconnecting in 0\.01 s$/,
        );
        assert.match(
          reconnects[1],
          /answered HTTP 404 Not Found: check stream\.url.*\): reconnecting in 0\.02 s$/,
        );
        const error = await rejection(
          collect(cameraFrames(source("/forbidden"), { log, initialBackoffMs: 10, maxBackoffMs: 40 })),
        );
        assert.match(error.message, /answered HTTP 403 Forbidden: the camera refuses access/);
        assert.equal(error.retriable, false);
        assert.equal(log.lines.filter((l) => l.includes("reconnecting in")).length, 2, "403 is not retried");
      } finally {
        await server.close();
      }
    },
  );

  await t.step("backoff doubles 2 -> 4 -> 8 -> 16 -> 30 -> 30 s while failures go on", async () => {
    const controller = new AbortController();
    const delays: number[] = [];
    const log = memoryLogger();
    const out = await collect(
      cameraFrames(
        // deno-lint-ignore require-yield
        async function* () {
          throw new ServiceError("camera", "camera at http://cam answered HTTP 404 Not Found", {
            retriable: true,
          });
        },
        {
          log,
          signal: controller.signal,
          sleep: (ms) => {
            delays.push(ms);
            if (delays.length === 6) controller.abort();
            return Promise.resolve();
          },
        },
      ),
    );
    assert.deepEqual(out, []);
    assert.deepEqual(delays, [2000, 4000, 8000, 16000, 30000, 30000]);
    assert.match(
      log.lines[0],
      /WARN .*camera stream failed \(camera at http:\/\/cam answered HTTP 404 Not Found\): reconnecting in 2 s$/,
    );
    assert.match(log.lines[5], /reconnecting in 30 s$/);
  });

  await t.step("a frame resets the backoff to 2 s", async () => {
    const controller = new AbortController();
    const delays: number[] = [];
    let attempt = 0;
    const out = await collect(
      cameraFrames(
        async function* () {
          attempt++;
          if (attempt === 3) yield "frame";
          throw new Error("connection reset");
        },
        {
          log: memoryLogger(),
          signal: controller.signal,
          sleep: (ms) => {
            delays.push(ms);
            if (delays.length === 5) controller.abort();
            return Promise.resolve();
          },
        },
      ),
    );
    assert.deepEqual(out, ["frame"]);
    assert.deepEqual(delays, [2000, 4000, 2000, 4000, 8000]);
  });

  await t.step("an error that waiting cannot fix ends the loop", async () => {
    const error = await rejection(collect(cameraFrames(
      // deno-lint-ignore require-yield
      async function* () {
        throw new ServiceError("camera", "answered HTTP 401 Unauthorized", { retriable: false });
      },
      { log: memoryLogger(), sleep: () => Promise.resolve() },
    )));
    assert.match(error.message, /401/);
  });

  await t.step("aborting stops the loop during a backoff wait", async () => {
    const controller = new AbortController();
    const log = memoryLogger();
    setTimeout(() => controller.abort(), 50);
    const started = performance.now();
    const out = await collect(cameraFrames(
      // deno-lint-ignore require-yield
      async function* () {
        throw new Error("down");
      },
      { log, signal: controller.signal, initialBackoffMs: 10_000 },
    ));
    assert.deepEqual(out, []);
    assert.ok(performance.now() - started < 1000, "the 10 s wait was cut short by the abort");
  });

  await t.step("the default source loop over the simulated camera stops on abort", async () => {
    const camera = await startCamera({ width: 160, height: 120, fps: 50 });
    try {
      const controller = new AbortController();
      const log = memoryLogger();
      let count = 0;
      for await (
        const _ of cameraFrames(
          () =>
            mjpegFrames(camera.url, {
              maxPartBytes: MAX_PART,
              readTimeoutMs: 2000,
              log,
              signal: controller.signal,
            }),
          { log, signal: controller.signal },
        )
      ) {
        if (++count === 3) controller.abort();
      }
      assert.equal(count, 3);
      assert.ok(!log.lines.some((l) => l.includes("reconnecting")), log.lines.join("\n"));
    } finally {
      await camera.close();
    }
  });
});

Deno.test("polledFrames fetches single JPEGs at the asked rate", async (t) => {
  await t.step("from the simulated camera's frame URL", async () => {
    const camera = await startCamera({ width: 160, height: 120 });
    try {
      assert.equal(frameUrlFromStreamUrl(camera.url), camera.frameUrl);
      const started = performance.now();
      const out = await collect(
        polledFrames(withQuery(camera.frameUrl, { quality: 60 }), {
          fps: 20,
          readTimeoutMs: 2000,
          log: memoryLogger(),
          maxPartBytes: MAX_PART,
        }),
        4,
      );
      const elapsed = performance.now() - started;
      assert.equal(out.length, 4);
      assert.ok(out.every((f) => isJpeg(f.jpeg)));
      assert.equal(out[0].headers["content-type"], "image/jpeg");
      // Three periods of 50 ms lie between four requests.
      assert.ok(elapsed >= 140, `4 frames at 20 fps came in ${elapsed} ms`);
    } finally {
      await camera.close();
    }
  });

  await t.step("404 and HTML give the clear errors; oversized and non-JPEG bodies are skipped", async () => {
    let calls = 0;
    const server = serve((request) => {
      const path = new URL(request.url).pathname;
      if (path === "/html") {
        return new Response("<html></html>", { headers: { "content-type": "text/html" } });
      }
      if (path === "/frame") {
        calls++;
        if (calls === 1) {
          return new Response(new Uint8Array(300_000), { headers: { "content-type": "image/jpeg" } });
        }
        if (calls === 2) return new Response("warming up", { headers: { "content-type": "text/plain" } });
        return new Response(samples()[0], { headers: { "content-type": "image/jpeg" } });
      }
      return new Response("Not Found", { status: 404, statusText: "Not Found" });
    });
    try {
      const rejects: string[] = [];
      const options = {
        fps: 100,
        readTimeoutMs: 2000,
        log: memoryLogger(),
        maxPartBytes: 200_000,
        onReject: (r: string) => rejects.push(r),
      };
      const e404 = await rejection(collect(polledFrames(`${server.base}/gone`, options)));
      assert.match(e404.message, /camera frame at .*\/gone answered HTTP 404 Not Found/);
      const html = await rejection(collect(polledFrames(`${server.base}/html`, options)));
      assert.match(html.message, /serves text\/html, not a single JPEG/);
      const out = await collect(polledFrames(`${server.base}/frame`, options), 1);
      assert.equal(out.length, 1);
      assert.deepEqual(rejects, ["part-too-large", "not-jpeg"]);
    } finally {
      await server.close();
    }
  });
});
