import assert from "node:assert/strict";
import {
  boundaryFromContentType,
  isJpeg,
  JPEG_MAX_PADDING,
  MjpegEvent,
  MjpegParser,
} from "../../src/ingest/mjpeg.ts";
import { Rng } from "../../dev/random.ts";
import { concat, sameBytes } from "../support/bytes.ts";
import { fakeJpeg, readSamples, withComment } from "../support/images.ts";

const encoder = new TextEncoder();
const MAX_PART = 1024 * 1024;

/** The real Reachy frames, read from the shared folder (never copied into the repo). */
const SAMPLES = readSamples();

interface Style {
  boundary?: string;
  /** true: `Content-Length: N`; "padded": `Content-Length:   N  `; false: none. */
  contentLength?: boolean | "padded";
  eol?: "\r\n" | "\n";
  leadingCrlf?: boolean;
  /** Line break between a body and the next delimiter (false: `...FF D9--frame`). */
  breakBeforeDelimiter?: boolean;
  headerCase?: "canonical" | "lower" | "mixed";
  timestamp?: boolean;
  /** Insert a text/plain part after every frame. */
  textParts?: boolean;
  close?: boolean;
}

interface Built {
  bytes: Uint8Array;
  /** [start, end) of each JPEG body in bytes. */
  spans: [number, number][];
}

/** An MJPEG stream of the given frames in one camera's style. */
function buildStream(frames: Uint8Array[], style: Style = {}): Built {
  const {
    boundary = "frame",
    contentLength = true,
    eol = "\r\n",
    leadingCrlf = false,
    breakBeforeDelimiter = true,
    headerCase = "canonical",
    timestamp = false,
    textParts = false,
    close = false,
  } = style;
  const names = {
    canonical: ["Content-Type", "Content-Length"],
    lower: ["content-type", "content-length"],
    mixed: ["Content-type", "CONTENT-LENGTH"],
  }[headerCase];
  const chunks: Uint8Array[] = [];
  const spans: [number, number][] = [];
  let at = 0;
  const add = (bytes: Uint8Array) => {
    chunks.push(bytes);
    at += bytes.length;
  };
  const part = (type: string, body: Uint8Array, index: number): [number, number] => {
    let head = `--${boundary}${eol}${names[0]}: ${type}${eol}`;
    if (contentLength === true) head += `${names[1]}: ${body.length}${eol}`;
    if (contentLength === "padded") head += `${names[1]}:    ${body.length}   ${eol}`;
    if (timestamp) {
      head += `X-Timestamp: ${1771407556 + index}.${String(index * 1000).padStart(6, "0")}${eol}`;
    }
    add(encoder.encode(head + eol));
    const start = at;
    add(body);
    if (breakBeforeDelimiter) add(encoder.encode(eol));
    return [start, start + body.length];
  };
  if (leadingCrlf) add(encoder.encode("\r\n"));
  frames.forEach((frame, i) => {
    spans.push(part("image/jpeg", frame, i));
    if (textParts) part("text/plain", encoder.encode(`progress ${i}`), i);
  });
  if (close) add(encoder.encode(`--${boundary}--${eol}epilogue, ignored${eol}`));
  return { bytes: concat(chunks), spans };
}

function feed(parser: MjpegParser, chunks: Uint8Array[]): MjpegEvent[] {
  const events: MjpegEvent[] = [];
  for (const c of chunks) events.push(...parser.push(c));
  events.push(...parser.end());
  return events;
}

function partsOf(events: MjpegEvent[]) {
  return events.flatMap((e) => (e.kind === "part" ? [e] : []));
}

function errorsOf(events: MjpegEvent[]) {
  return events.flatMap((e) => (e.kind === "error" ? [e] : []));
}

function bodies(events: MjpegEvent[]): Uint8Array[] {
  return partsOf(events).map((p) => p.body);
}

/** Asserts the parts are exactly the expected frames, naming the first difference. */
function assertFrames(actual: Uint8Array[], expected: Uint8Array[], label: string): void {
  assert.equal(
    actual.length,
    expected.length,
    `${label}: ${actual.length} parts, expected ${expected.length}`,
  );
  actual.forEach((body, i) => {
    assert.ok(
      sameBytes(body, expected[i]),
      `${label}: part ${i} differs (${body.length} bytes, expected ${expected[i].length})`,
    );
  });
}

function parse(bytes: Uint8Array, boundary: string | null = "frame", maxPartBytes = MAX_PART): MjpegEvent[] {
  return feed(new MjpegParser({ boundary, maxPartBytes }), [bytes]);
}

Deno.test("boundaryFromContentType reads the boundary parameter in every style cameras use", async (t) => {
  const cases: [string, string | null][] = [
    ["multipart/x-mixed-replace; boundary=frame", "frame"],
    ["multipart/x-mixed-replace;boundary=boundarydonotcross", "boundarydonotcross"],
    ['multipart/x-mixed-replace; boundary="BoundaryString"', "BoundaryString"],
    ["multipart/x-mixed-replace; boundary=--myboundary", "myboundary"],
    ['multipart/x-mixed-replace; boundary="--ffmpeg"', "ffmpeg"],
    ["Multipart/X-Mixed-Replace; BOUNDARY=frame", "frame"],
    ["multipart/x-mixed-replace; charset=utf-8; Boundary = frame ; foo=bar", "frame"],
    ['multipart/x-mixed-replace; boundary="a;b=c"; x=1', "a;b=c"],
    ["multipart/x-mixed-replace; boundary=123456789000000000000987654321", "123456789000000000000987654321"],
    ["multipart/x-mixed-replace", null],
    ["multipart/x-mixed-replace; boundary=", null],
    ['multipart/x-mixed-replace; boundary=""', null],
    ["multipart/x-mixed-replace; boundary=--", null],
    ["text/html; charset=utf-8", null],
    ["", null],
  ];
  for (const [header, expected] of cases) {
    await t.step(`${JSON.stringify(header)} -> ${expected}`, () => {
      assert.equal(boundaryFromContentType(header), expected);
    });
  }
});

Deno.test("isJpeg accepts whole JPEGs with a little padding and rejects everything else", async (t) => {
  await t.step("the real sample frames are JPEGs", () => {
    for (const frame of SAMPLES) assert.ok(isJpeg(frame));
  });
  await t.step("the smallest SOI+EOI is a JPEG", () => {
    assert.ok(isJpeg(new Uint8Array([0xff, 0xd8, 0xff, 0xd9])));
  });
  await t.step("CR, LF, NUL, space and tab padding after EOI is accepted", () => {
    const frame = SAMPLES[0];
    for (const pad of [[0x0d, 0x0a], [0x0a], [0, 0, 0, 0], [0x20, 0x09]]) {
      assert.ok(isJpeg(concat([frame, new Uint8Array(pad)])), `padding ${pad}`);
    }
  });
  await t.step(`padding is limited to ${JPEG_MAX_PADDING} bytes`, () => {
    const frame = SAMPLES[0];
    assert.ok(isJpeg(concat([frame, new Uint8Array(JPEG_MAX_PADDING)])));
    assert.ok(!isJpeg(concat([frame, new Uint8Array(JPEG_MAX_PADDING + 1)])));
  });
  await t.step("a frame cut short, an HTML page, a bare SOI and nothing are not JPEGs", () => {
    const frame = SAMPLES[0];
    assert.ok(!isJpeg(frame.subarray(0, frame.length - 1000)));
    assert.ok(!isJpeg(frame.subarray(0, frame.length - 1)));
    assert.ok(!isJpeg(frame.subarray(1)));
    assert.ok(!isJpeg(encoder.encode("<html><body>404</body></html>")));
    assert.ok(!isJpeg(new Uint8Array([0xff, 0xd8, 0xd9])));
    assert.ok(!isJpeg(new Uint8Array([0xff, 0xd8])));
    assert.ok(!isJpeg(new Uint8Array()));
  });
  await t.step("other bytes after EOI are not padding", () => {
    assert.ok(!isJpeg(concat([SAMPLES[0], encoder.encode("--frame")])));
  });
});

Deno.test("MjpegParser splits real frames for every boundary style", async (t) => {
  const frames = SAMPLES;
  const names = [
    "frame",
    "boundarydonotcross",
    "BoundaryString",
    "ffmpeg",
    "myboundary",
    "7b3cc56e5f51db803f790dad720ed50a",
  ];
  names.push("123456789000000000000987654321");
  for (const name of names) {
    for (
      const header of [`boundary=${name}`, `boundary="${name}"`, `boundary=--${name}`, `boundary="--${name}"`]
    ) {
      await t.step(`${name} announced as ${header}`, () => {
        const boundary = boundaryFromContentType(`multipart/x-mixed-replace; ${header}`);
        assert.equal(boundary, name);
        const { bytes } = buildStream(frames, { boundary: name });
        assertFrames(bodies(parse(bytes, boundary)), frames, header);
      });
    }
    await t.step(`${name} learned from the body when the header has none`, () => {
      const parser = new MjpegParser({ boundary: null, maxPartBytes: MAX_PART });
      const { bytes } = buildStream(frames, { boundary: name, leadingCrlf: true });
      assertFrames(bodies(feed(parser, [bytes])), frames, name);
      assert.equal(parser.boundary, name);
    });
  }
  for (const contentLength of [true, false]) {
    await t.step(
      `boundary=--frame with an RFC-literal ----frame body (Content-Length: ${contentLength})`,
      () => {
        const boundary = boundaryFromContentType("multipart/x-mixed-replace; boundary=--frame");
        const { bytes } = buildStream(frames, { boundary: "--frame", contentLength });
        assertFrames(bodies(parse(bytes, boundary)), frames, "----frame");
      },
    );
  }
  await t.step("the boundary is learned after a preamble and with LF-only lines", () => {
    const { bytes } = buildStream(frames.slice(0, 3), {
      boundary: "ffmpeg",
      eol: "\n",
      contentLength: false,
    });
    const stream = concat([
      encoder.encode("preamble text\n-- not a delimiter line, too long? no: has spaces\n"),
      bytes,
    ]);
    // "-- not a ..." starts with "--" but names no boundary (it starts with a space), so it is skipped.
    const parser = new MjpegParser({ boundary: null, maxPartBytes: MAX_PART });
    assertFrames(bodies(feed(parser, [stream])), frames.slice(0, 3), "preamble");
    assert.equal(parser.boundary, "ffmpeg");
  });
});

Deno.test("MjpegParser handles each camera's part framing", async (t) => {
  const frames = SAMPLES.slice(0, 4);
  const variants: [string, Style][] = [
    ["with Content-Length", {}],
    ["without Content-Length", { contentLength: false }],
    ["LF-only line ends with Content-Length", { eol: "\n" }],
    ["LF-only line ends without Content-Length", { eol: "\n", contentLength: false }],
    ["lower-case header names", { headerCase: "lower" }],
    ["mixed-case header names (Content-type, CONTENT-LENGTH)", { headerCase: "mixed" }],
    ["space-padded Content-Length", { contentLength: "padded" }],
    ["X-Timestamp part headers", { timestamp: true }],
    ["a CRLF before the first delimiter", { leadingCrlf: true }],
    ["no line break before delimiters, with Content-Length", { breakBeforeDelimiter: false }],
    ["no line break before delimiters, without Content-Length", {
      breakBeforeDelimiter: false,
      contentLength: false,
    }],
    ["a close delimiter and an epilogue", { close: true }],
    ["a close delimiter without Content-Length", { close: true, contentLength: false }],
  ];
  for (const [label, style] of variants) {
    await t.step(label, () => {
      assertFrames(bodies(parse(buildStream(frames, style).bytes)), frames, label);
    });
  }

  await t.step("part headers come back with lower-case names and trimmed values", () => {
    const parts = partsOf(
      parse(buildStream(frames, { headerCase: "mixed", timestamp: true, contentLength: "padded" }).bytes),
    );
    assert.deepEqual(Object.keys(parts[0].headers).sort(), ["content-length", "content-type", "x-timestamp"]);
    assert.equal(parts[0].headers["content-type"], "image/jpeg");
    assert.equal(parts[0].headers["content-length"], String(frames[0].length));
    assert.equal(parts[1].headers["x-timestamp"], "1771407557.001000");
  });

  for (const contentLength of [true, false]) {
    await t.step(
      `interleaved text/plain parts are returned in order (Content-Length: ${contentLength})`,
      () => {
        const parts = partsOf(parse(buildStream(frames, { textParts: true, contentLength }).bytes));
        assert.equal(parts.length, frames.length * 2);
        parts.forEach((part, i) => {
          if (i % 2 === 0) {
            assert.equal(part.headers["content-type"], "image/jpeg");
            assert.ok(sameBytes(part.body, frames[i / 2]), `frame ${i / 2}`);
          } else {
            assert.equal(part.headers["content-type"], "text/plain");
            assert.equal(new TextDecoder().decode(part.body), `progress ${(i - 1) / 2}`);
            assert.ok(!isJpeg(part.body));
          }
        });
      },
    );
  }

  await t.step("a JPEG sent right after the delimiter line, with no header block, is still a part", () => {
    const stream = concat([
      encoder.encode("--frame\r\n"),
      frames[0],
      encoder.encode("\r\n--frame\r\n"),
      frames[1],
      encoder.encode("\r\n--frame\r\n"),
    ]);
    assertFrames(bodies(parse(stream)), frames.slice(0, 2), "headerless");
  });

  await t.step("tiny frames and an empty part", () => {
    const tiny = [new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), fakeJpeg(new Rng(1), 10), new Uint8Array()];
    for (const contentLength of [true, false]) {
      assertFrames(bodies(parse(buildStream(tiny, { contentLength }).bytes)), tiny, `tiny ${contentLength}`);
    }
  });

  await t.step("a frame padded after EOI keeps its padding and is still a JPEG", () => {
    const padded = concat([frames[0], new Uint8Array(16)]);
    for (const contentLength of [true, false]) {
      const out = bodies(parse(buildStream([padded, frames[1]], { contentLength }).bytes));
      assertFrames(out, [padded, frames[1]], `padded ${contentLength}`);
      assert.ok(isJpeg(out[0]));
    }
  });
});

Deno.test("MjpegParser gives the same frames however the stream is chunked", async (t) => {
  const frames = SAMPLES.slice(0, 3);

  await t.step("the whole stream in one chunk", () => {
    assertFrames(bodies(parse(buildStream(frames).bytes)), frames, "one chunk");
  });

  await t.step("a small synthetic stream byte by byte, in every style", () => {
    const small = [
      fakeJpeg(new Rng(1), 300),
      fakeJpeg(new Rng(2), 5),
      withComment(fakeJpeg(new Rng(3), 200), "\r\n--frame\r\nnot a header\r\n"),
    ];
    const styles: Style[] = [
      {},
      { contentLength: false },
      { eol: "\n", contentLength: false, leadingCrlf: true },
      { breakBeforeDelimiter: false, contentLength: false, textParts: true },
      { headerCase: "mixed", contentLength: "padded", timestamp: true, close: true },
    ];
    for (const style of styles) {
      const { bytes } = buildStream(small, style);
      for (const boundary of ["frame", null]) {
        const parser = new MjpegParser({ boundary, maxPartBytes: 4096 });
        const chunks = [...bytes].map((b) => new Uint8Array([b]));
        const out = bodies(feed(parser, chunks)).filter(isJpeg);
        assertFrames(out, small, `byte by byte ${JSON.stringify(style)} boundary ${boundary}`);
      }
    }
  });

  const cutStyles: [string, Style][] = [
    ["Content-Length", {}],
    ["no Content-Length", { contentLength: false }],
    ["LF-only, no Content-Length, no break before delimiters", {
      eol: "\n",
      contentLength: false,
      breakBeforeDelimiter: false,
    }],
  ];
  for (const [label, style] of cutStyles) {
    await t.step(`cut at every byte between frame 1 and frame 2 (${label})`, () => {
      const { bytes, spans } = buildStream(frames, style);
      // From 200 bytes before frame 1's EOI to 200 bytes into frame 2: its EOI, line break, delimiter, headers.
      const from = spans[0][1] - 200;
      const to = spans[1][0] + 200;
      for (let cut = from; cut <= to; cut++) {
        const out = bodies(feed(new MjpegParser({ boundary: "frame", maxPartBytes: MAX_PART }), [
          bytes.subarray(0, cut),
          bytes.subarray(cut),
        ]));
        assertFrames(out, frames, `${label}, cut at ${cut}`);
      }
    });
    await t.step(`cut at sampled positions inside frames (${label})`, () => {
      const { bytes } = buildStream(frames, style);
      for (let cut = 1; cut < bytes.length; cut += 4999) {
        const out = bodies(feed(new MjpegParser({ boundary: null, maxPartBytes: MAX_PART }), [
          bytes.subarray(0, cut),
          bytes.subarray(cut),
        ]));
        assertFrames(out, frames, `${label}, cut at ${cut}`);
      }
    });
  }

  await t.step("random chunk sizes over every framing style give the same frames", () => {
    const styles: Style[] = [
      {},
      { contentLength: false },
      { eol: "\n", contentLength: false, textParts: true },
      { breakBeforeDelimiter: false, contentLength: false, leadingCrlf: true },
      {
        headerCase: "mixed",
        contentLength: "padded",
        timestamp: true,
        close: true,
        boundary: "BoundaryString",
      },
    ];
    const rng = new Rng(12345);
    for (const [s, style] of styles.entries()) {
      const { bytes } = buildStream(frames, style);
      for (let round = 0; round < 6; round++) {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < bytes.length;) {
          // Mostly small chunks with the odd big one, like a socket under load.
          const size = rng.chance(0.1) ? 1 + rng.int(100_000) : 1 + rng.int(3000);
          chunks.push(bytes.subarray(i, i + size));
          i += size;
        }
        const out = bodies(feed(new MjpegParser({ boundary: null, maxPartBytes: MAX_PART }), chunks)).filter(
          isJpeg,
        );
        assertFrames(out, frames, `style ${s}, round ${round}`);
      }
    }
  });

  await t.step("real frames in 7-byte chunks without Content-Length (no quadratic rescanning)", () => {
    const { bytes } = buildStream(frames, { contentLength: false });
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
    const started = performance.now();
    assertFrames(
      bodies(feed(new MjpegParser({ boundary: "frame", maxPartBytes: MAX_PART }), chunks)),
      frames,
      "7-byte",
    );
    // Rescanning the buffered part on every push would take minutes here; linear work takes well under a second.
    assert.ok(performance.now() - started < 5000, "parsing 540 KB in 7-byte chunks took over 5 s");
  });
});

Deno.test("MjpegParser keeps a JPEG whole when its bytes contain the boundary", async (t) => {
  const frames = SAMPLES.slice(0, 3);
  const tricky = withComment(
    frames[0],
    "camera says:\r\n--frame\r\nnot a header line\r\n--frame--\r\n--frame",
  );
  for (const contentLength of [true, false]) {
    await t.step(`boundary bytes in a COM segment (Content-Length: ${contentLength})`, () => {
      const expected = [tricky, frames[1], tricky, frames[2]];
      assertFrames(
        bodies(parse(buildStream(expected, { contentLength }).bytes)),
        expected,
        `tricky ${contentLength}`,
      );
    });
  }
  await t.step("boundary bytes right before the EOI marker", () => {
    // The delimiter-like bytes sit at the very end of the entropy-coded data, a worst case for a naive scanner.
    const frame = concat([
      frames[1].subarray(0, frames[1].length - 2),
      encoder.encode("\r\n--frame\r\n"),
      frames[1].subarray(-2),
    ]);
    const expected = [frame, frames[2]];
    assertFrames(
      bodies(parse(buildStream(expected, { contentLength: false }).bytes)),
      expected,
      "before EOI",
    );
  });
  await t.step(
    "a frame the camera cut short (no EOI, no Content-Length) does not swallow the next frame",
    () => {
      const cut = frames[0].subarray(0, 90_000);
      const events = parse(buildStream([cut, frames[1], frames[2]], { contentLength: false }).bytes);
      const out = bodies(events);
      assertFrames(out, [cut, frames[1], frames[2]], "cut short");
      assert.ok(!isJpeg(out[0]));
      assert.deepEqual(errorsOf(events), []);
    },
  );
  await t.step(
    "a cut-short frame followed by a part that does not look like one is dropped at maxPartBytes",
    () => {
      // The part after the cut frame has no headers and no JPEG, so rule 2 cannot end the cut frame there, and
      // the next well-formed part starts beyond maxPartBytes: the parser then cuts at the first delimiter so the
      // frames after it survive. (A well-formed part within the limit would have ended it by rule 2.)
      const cut = frames[0].subarray(0, 90_000);
      const stream = concat([
        encoder.encode("--frame\r\nContent-Type: image/jpeg\r\n\r\n"),
        cut,
        encoder.encode("\r\n--frame\r\n\r\nheaderless progress text " + ".".repeat(150_000) + "\r\n"),
        buildStream([frames[1], frames[2]], { contentLength: false }).bytes,
      ]);
      for (const size of [stream.length, 1000]) {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
        const events = feed(new MjpegParser({ boundary: "frame", maxPartBytes: 200_000 }), chunks);
        assert.deepEqual(errorsOf(events).map((e) => e.reason), ["unterminated-jpeg"], `chunks of ${size}`);
        assert.match(errorsOf(events)[0].message, /dropped its first 90002 bytes/);
        assertFrames(
          bodies(events).filter(isJpeg),
          [frames[1], frames[2]],
          `after unterminated, chunks of ${size}`,
        );
      }
    },
  );
});

Deno.test("MjpegParser bounds memory and reports oversized or endless input once", async (t) => {
  const frames = SAMPLES.slice(0, 3);
  const SLACK = 2 * 64 * 1024 + 16 * 1024;

  for (const contentLength of [true, false]) {
    await t.step(
      `a part over maxPartBytes is reported once and skipped (Content-Length: ${contentLength})`,
      () => {
        const big = concat([frames[0], frames[1]]).slice(); // one 358 KB "frame"
        big.set([0xff, 0xd9], big.length - 2);
        const { bytes } = buildStream([frames[2], big, frames[0], frames[1]], { contentLength });
        const parser = new MjpegParser({ boundary: "frame", maxPartBytes: 200_000 });
        const events: MjpegEvent[] = [];
        for (let i = 0; i < bytes.length; i += 1000) {
          events.push(...parser.push(bytes.subarray(i, i + 1000)));
          assert.ok(parser.bufferedBytes <= 200_000 + SLACK, `buffered ${parser.bufferedBytes} bytes`);
        }
        events.push(...parser.end());
        assert.deepEqual(errorsOf(events).map((e) => e.reason), ["part-too-large"]);
        assert.match(errorsOf(events)[0].message, /maxPartBytes \(200000\)/);
        assertFrames(bodies(events), [frames[2], frames[0], frames[1]], "around the big part");
      },
    );
  }

  await t.step("a Content-Length over the limit in one big chunk is skipped without buffering it", () => {
    const huge = new Uint8Array(3_000_000);
    const stream = concat([
      encoder.encode(`--frame\r\nContent-Length: ${huge.length}\r\n\r\n`),
      huge,
      buildStream([frames[0]]).bytes,
    ]);
    const parser = new MjpegParser({ boundary: "frame", maxPartBytes: 200_000 });
    const events = feed(parser, [stream]);
    assert.deepEqual(errorsOf(events).map((e) => e.reason), ["part-too-large"]);
    assertFrames(bodies(events), [frames[0]], "after huge");
  });

  await t.step("endless part headers are reported, then the next part is found", () => {
    const parser = new MjpegParser({ boundary: "frame", maxPartBytes: 200_000, maxHeaderBytes: 4096 });
    const events: MjpegEvent[] = [...parser.push(encoder.encode("--frame\r\nContent-Type: image/jpeg\r\n"))];
    const junk = encoder.encode("X-Junk: " + "a".repeat(100) + "\r\n");
    for (let i = 0; i < 10_000; i++) {
      events.push(...parser.push(junk));
      assert.ok(parser.bufferedBytes <= 4096 + SLACK);
    }
    events.push(...feed(parser, [encoder.encode("\r\n"), buildStream([frames[0], frames[1]]).bytes]));
    // 1.1 MB of header lines: the header block is refused, and the delimiter search after it runs out of its
    // own budget once (so a live connection would be dropped and reopened).
    assert.deepEqual(errorsOf(events).map((e) => e.reason), ["headers-too-large", "no-boundary"]);
    assertFrames(bodies(events), [frames[0], frames[1]], "after endless headers");
  });

  await t.step("an endless header line without line breaks is reported, then as no boundary", () => {
    const parser = new MjpegParser({ boundary: "frame", maxPartBytes: 200_000, maxHeaderBytes: 4096 });
    const events = [...parser.push(encoder.encode("--frame\r\nX-Junk: "))];
    for (let i = 0; i < 1000; i++) events.push(...parser.push(encoder.encode("b".repeat(1000))));
    assert.deepEqual(errorsOf(events).map((e) => e.reason), ["headers-too-large", "no-boundary"]);
    assert.ok(parser.bufferedBytes <= 4096 + SLACK);
  });

  for (const boundary of ["frame", null]) {
    await t.step(
      `a stream that never shows a boundary yields one error and stays small (boundary ${boundary})`,
      () => {
        const parser = new MjpegParser({ boundary, maxPartBytes: 200_000, maxSeekBytes: 100_000 });
        const html = encoder.encode(
          "<html><body><p>-- camera offline --</p>" + "x".repeat(900) + "</body></html>\n",
        );
        const long = encoder.encode("y".repeat(10_000)); // lines far longer than any delimiter line
        const events: MjpegEvent[] = [];
        for (let i = 0; i < 2000; i++) {
          events.push(...parser.push(i % 2 ? html : long));
          assert.ok(parser.bufferedBytes <= 1024, `buffered ${parser.bufferedBytes} bytes`);
        }
        const errors = errorsOf(events);
        assert.deepEqual(errors.map((e) => e.reason), ["no-boundary"]);
        assert.match(errors[0].message, / in 1\d{5} bytes/);
        assert.match(errors[0].message, boundary ? /boundary "frame" not seen/ : /not an MJPEG stream/);
        assert.equal(partsOf(events).length, 0);
      },
    );
  }

  await t.step("a boundary that differs from the header's is reported with the stream's first bytes", () => {
    const { bytes } = buildStream(frames, { boundary: "myboundary" });
    const events = feed(
      new MjpegParser({ boundary: "frame", maxPartBytes: 200_000, maxSeekBytes: 300_000 }),
      [bytes],
    );
    assert.deepEqual(errorsOf(events).map((e) => e.reason), ["no-boundary"]);
    assert.match(errorsOf(events)[0].message, /started with "--myboundary\\r\\nContent-Type/);
  });

  await t.step("the stream ending inside a part of known length is reported as truncated", () => {
    const { bytes } = buildStream(frames.slice(0, 2));
    const events = parse(bytes.subarray(0, bytes.length - 1000));
    assert.deepEqual(errorsOf(events).map((e) => e.reason), ["truncated-part"]);
    assertFrames(bodies(events), [frames[0]], "before truncation");
  });

  await t.step("the stream ending after a part without Content-Length returns that part", () => {
    const { bytes } = buildStream(frames.slice(0, 2), { contentLength: false });
    assertFrames(bodies(parse(bytes)), frames.slice(0, 2), "end without close");
  });

  await t.step("options out of range are refused with the bad value", () => {
    assert.throws(() => new MjpegParser({ maxPartBytes: 0 }), /maxPartBytes must be an integer >= 4, got 0/);
    assert.throws(() => new MjpegParser({ maxPartBytes: 1000, maxHeaderBytes: 1.5 }), /maxHeaderBytes/);
    assert.throws(() => new MjpegParser({ maxPartBytes: 1000, maxSeekBytes: -1 }), /maxSeekBytes/);
  });
});

Deno.test("MjpegParser keeps nothing of its input: one reused read buffer gives the same frames", () => {
  // The camera reader reads every chunk into the same buffer (src/ingest/camera.ts), so the parser must copy what
  // it keeps before push() returns, with and without Content-Length.
  for (const contentLength of [true, false]) {
    const { bytes } = buildStream(SAMPLES.slice(0, 4), { contentLength });
    const parser = new MjpegParser({ boundary: "frame", maxPartBytes: MAX_PART });
    const reused = new Uint8Array(7000);
    const events: MjpegEvent[] = [];
    for (let at = 0; at < bytes.length; at += reused.length) {
      const n = Math.min(reused.length, bytes.length - at);
      reused.set(bytes.subarray(at, at + n));
      events.push(...parser.push(reused.subarray(0, n)));
      reused.fill(0xaa); // whatever the next read brings
    }
    events.push(...parser.end());
    assertFrames(bodies(events), SAMPLES.slice(0, 4), `contentLength ${contentLength}`);
  }
});

Deno.test("MjpegParser puts every part body in a buffer from `allocate`", () => {
  for (const contentLength of [true, false]) {
    const made: Uint8Array[] = [];
    const parser = new MjpegParser({
      boundary: "frame",
      maxPartBytes: MAX_PART,
      allocate: (length) => {
        const body = new Uint8Array(new ArrayBuffer(length + 16), 16, length);
        made.push(body);
        return body;
      },
    });
    const { bytes } = buildStream(SAMPLES.slice(0, 3), { contentLength });
    const parts = bodies(feed(parser, [bytes.subarray(0, 1000), bytes.subarray(1000)]));
    assertFrames(parts, SAMPLES.slice(0, 3), `contentLength ${contentLength}`);
    parts.forEach((body, i) => assert.equal(body, made[i], `part ${i} is the allocated buffer`));
  }
});
