/**
 * Bounded, seeded fuzzing of the three places where bytes from outside enter the pipeline (issue 4):
 *   - MjpegParser: whatever a camera sends, in whatever chunks, nothing escapes push/end, memory stays bounded and
 *     no part is larger than maxPartBytes;
 *   - decodeFrame: a Kafka message value is a frame or a SyntaxError/RangeError;
 *   - Pipeline.handleBatch: a batch of arbitrary keys and values never rejects or hangs, every offset is resolved,
 *     and nothing is stored (or catalogued) outside `frames/<valid robot id>/`.
 *
 * Inputs are random bytes and mutations of real inputs (the reachy sample frames, the JPEG fixtures, well-formed
 * MJPEG streams and frames): bit flips, byte changes, insertions (random or dictionary tokens), deletions,
 * truncations, splices of two inputs and repeated chunks.
 *
 * The parser and consumer targets run for FUZZ_MS each (3000 by default), the frame codec and the harness check
 * for a fraction of it; each prints its iteration count. Every iteration draws from its own PRNG seeded by
 * (FUZZ_SEED, target, iteration), so a failure names the seed and iteration and replays alone:
 *   FUZZ_SEED=<seed> FUZZ_REPLAY=<target>:<iteration> deno test -A tests/consume/fuzz_test.ts
 * FUZZ_ITERATIONS=<n> runs exactly n iterations per target instead of a time budget.
 */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { resolveConfig } from "../../src/config.ts";
import { Pipeline } from "../../src/consume/pipeline.ts";
import { decodeFrame, encodeFrame, HEADER_BYTES } from "../../src/ingest/frame.ts";
import type { IncomingMessage } from "../../src/kafka/client.ts";
import { parseObjectKey, robotIdProblem } from "../../src/key.ts";
import { memoryLogger } from "../../src/log.ts";
import { isJpeg, type MjpegErrorReason, type MjpegEvent, MjpegParser } from "../../src/ingest/mjpeg.ts";
import { loadFilter } from "../../src/filter/loader.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import { fakeBatch, MemoryStore } from "../support/fakes.ts";
import { Rng } from "../../dev/random.ts";
import { concat, sameBytes } from "../support/bytes.ts";
import { fakeJpeg, jpegFixture, readSamples } from "../support/images.ts";

// ---------------------------------------------------------------------------------------------------------------
// Settings, seeded randomness and the mutation engine

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults apply
  }
}

const SEED = Number(env("FUZZ_SEED") ?? 0x15504) >>> 0;
const BUDGET_MS = Number(env("FUZZ_MS") ?? 3000);
const FIXED_ITERATIONS = env("FUZZ_ITERATIONS") === undefined ? null : Number(env("FUZZ_ITERATIONS"));
const REPLAY = env("FUZZ_REPLAY") ?? null;
/** Whether targets run for a time budget (then each must reach a minimum number of iterations). */
const TIMED = REPLAY === null && FIXED_ITERATIONS === null;
console.log(
  `fuzz seed ${SEED} (repeat with FUZZ_SEED=${SEED}; ` +
    (FIXED_ITERATIONS === null
      ? `${BUDGET_MS} ms per target)`
      : `${FIXED_ITERATIONS} iterations per target)`),
);

/** The seed of one iteration of one target: independent of every other iteration, so each replays alone. */
function caseSeed(target: number, iteration: number): number {
  let h = Math.imul(SEED ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(target + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) ^ iteration;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

interface FuzzReport {
  iterations: number;
  ms: number;
}

/**
 * Runs `one` for the time budget (or FUZZ_ITERATIONS, or the single FUZZ_REPLAY iteration); a failure is rethrown
 * naming the seed and iteration. Logs and returns the iteration count.
 */
async function fuzz(
  name: string,
  target: number,
  /** Share of FUZZ_MS this target runs for. */
  share: number,
  one: (rng: Rng) => void | Promise<void>,
): Promise<FuzzReport> {
  let iterations: number[] | null = null;
  if (REPLAY !== null) {
    const [replayTarget, at] = REPLAY.split(":");
    iterations = replayTarget === name ? [Number(at)] : [];
  } else if (FIXED_ITERATIONS !== null) {
    iterations = Array.from({ length: FIXED_ITERATIONS }, (_, i) => i);
  }
  const started = performance.now();
  let done = 0;
  for (let i = 0;; i++) {
    if (iterations ? i >= iterations.length : performance.now() - started >= BUDGET_MS * share) break;
    const iteration = iterations ? iterations[i] : i;
    try {
      await one(new Rng(caseSeed(target, iteration)));
    } catch (error) {
      throw new Error(
        `fuzz ${name} failed at iteration ${iteration}: ${error instanceof Error ? error.message : error}\n` +
          `replay: FUZZ_SEED=${SEED} FUZZ_REPLAY=${name}:${iteration} deno test -A tests/consume/fuzz_test.ts`,
        { cause: error },
      );
    }
    done++;
  }
  const ms = Math.round(performance.now() - started);
  console.log(`fuzz ${name}: ${done} iterations in ${ms} ms`);
  return { iterations: done, ms };
}

const encoder = new TextEncoder();
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/** Inputs never grow past this, so a run of repeat mutations cannot make one iteration slow. */
const MAX_INPUT = 1_500_000;

/**
 * 1 to `max` mutations of `input`: bit flips, byte changes, insertions of random bytes or dictionary tokens,
 * deletions, a truncation, a splice with `other`, repeated chunks. Returns a new array.
 */
function mutate(
  rng: Rng,
  input: Uint8Array,
  dictionary: readonly Uint8Array[],
  other: Uint8Array | null,
  max = 8,
): Uint8Array {
  let buf: Uint8Array = input.slice();
  const edits = rng.range(1, max);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(buf.length + 1);
    switch (rng.int(9)) {
      case 0: // bit flips
        for (let k = rng.range(1, 4); k > 0 && buf.length > 0; k--) {
          buf[rng.int(buf.length)] ^= 1 << rng.int(8);
        }
        break;
      case 1: // a byte changed to an interesting or random value
        if (buf.length > 0) {
          buf[rng.int(buf.length)] = rng.pick([0, 0x0a, 0x0d, 0x2d, 0x3a, 0xff, rng.int(256)]);
        }
        break;
      case 2: // random bytes inserted
        buf = concat([buf.subarray(0, at), rng.bytes(rng.size(64)), buf.subarray(at)]);
        break;
      case 3: // a dictionary token inserted or written over
        {
          const token = rng.pick(dictionary);
          if (rng.chance(0.5) || at + token.length > buf.length) {
            buf = concat([buf.subarray(0, at), token, buf.subarray(at)]);
          } else {
            buf.set(token, at);
          }
        }
        break;
      case 4: // a deletion, mostly short
        buf = concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + rng.size(4096)))]);
        break;
      case 5: // truncation
        buf = buf.subarray(0, rng.int(buf.length + 1)).slice();
        break;
      case 6: // a splice of two inputs: a prefix of one, a suffix of the other
        if (other !== null) {
          buf = rng.chance(0.5)
            ? concat([buf.subarray(0, at), other.subarray(rng.int(other.length + 1))])
            : concat([other.subarray(0, rng.int(other.length + 1)), buf.subarray(at)]);
        }
        break;
      case 7: // a chunk repeated a few times
        {
          const len = Math.min(rng.size(8192), buf.length - Math.min(at, buf.length));
          const chunk = buf.slice(at, at + len);
          const times = rng.range(2, 6);
          buf = concat([buf.subarray(0, at + len), ...Array(times - 1).fill(chunk), buf.subarray(at + len)]);
        }
        break;
      default: // header bytes are where lengths, markers and timestamps live: hit the start more often
        if (buf.length > 0) buf[rng.int(Math.min(buf.length, 64))] = rng.int(256);
    }
    if (buf.length > MAX_INPUT) buf = buf.subarray(0, MAX_INPUT).slice();
  }
  return buf;
}

const SAMPLES = readSamples();
const FIXTURES = [
  "baseline_420.jpg",
  "progressive_420.jpg",
  "restart_5b_422.jpg",
  "grey.jpg",
  "no_dht_420.jpg",
  "odd_17x33.jpg",
  "odd_1x1.jpg",
  "trailing_garbage.jpg",
  "arithmetic.jpg",
].map(jpegFixture);

/** A real sample (big), a fixture (small) or a fake JPEG. */
function someJpeg(rng: Rng, maxFake = 50_000): Uint8Array {
  const kind = rng.int(10);
  if (kind < 2) return rng.pick(SAMPLES);
  if (kind < 8) return rng.pick(FIXTURES);
  return fakeJpeg(rng, rng.size(maxFake));
}

// ---------------------------------------------------------------------------------------------------------------
// (a) MjpegParser

const MAX_PART = 300_000;
const MAX_HEADER = 4096;
/**
 * The stated bound on what the parser holds (see src/ingest/mjpeg.ts): one part and one header block, plus one 64 KiB
 * input slice still being scanned and the few bytes of a delimiter line or lookahead, rounded up to two slices.
 */
const BUFFER_SLACK = 2 * 64 * 1024;
const MAX_BUFFERED = MAX_PART + MAX_HEADER + BUFFER_SLACK;

/*
 * Regression tests at the end of this file guard three MjpegParser bugs this fuzz found (all fixed):
 *   near limit: a body of maxPartBytes + 1 or + 2 bytes followed by the delimiter without a line break (no
 *     Content-Length) made the parser wait forever and buffer every later byte;
 *   header limit: maxHeaderBytes was enforced only while a header block was incomplete;
 *   oversize resume: after a part without Content-Length went over maxPartBytes, the search for the next delimiter
 *     restarted wherever the size check happened to run, so delimiter-like bytes in the rest of the oversized JPEG
 *     became parts, depending on the chunking.
 */

const REASONS: readonly MjpegErrorReason[] = [
  "part-too-large",
  "headers-too-large",
  "no-boundary",
  "unterminated-jpeg",
  "truncated-part",
];

const MJPEG_DICTIONARY = [
  "--frame",
  "--frame\r\n",
  "\r\n--frame\r\n",
  "--frame--",
  "\r\n",
  "\n",
  "\r\n\r\n",
  "--",
  "----frame\r\n",
  "--other\r\n",
  "Content-Type: image/jpeg\r\n",
  "Content-Length: ",
  "Content-Length: 0\r\n",
  `Content-Length: ${MAX_PART}\r\n`,
  `Content-Length: ${MAX_PART + 1}\r\n`,
  "Content-Length: 99999999999999999999\r\n",
  "Content-Length: -1\r\n",
  "X-Timestamp: 1771407556.001\r\n",
  "\xff\xd8",
  "\xff\xd9",
  "\xff\xd9\r\n--frame\r\n",
].map(latin1);

interface StreamStyle {
  boundary: string;
  /** "exact", "none", "padded", "wrong" (off by a little) or "junk" (not a number). */
  length: "exact" | "none" | "padded" | "wrong" | "junk";
  eol: "\r\n" | "\n";
  breakBefore: boolean;
  headerless: boolean;
  textParts: boolean;
  close: boolean;
  preamble: boolean;
}

function randomStyle(rng: Rng): StreamStyle {
  return {
    boundary: rng.pick(["frame", "frame", "myboundary", "--frame", "BoundaryString"]),
    length: rng.pick(["exact", "exact", "none", "none", "padded", "wrong", "junk"] as const),
    eol: rng.chance(0.7) ? "\r\n" : "\n",
    breakBefore: rng.chance(0.85),
    headerless: rng.chance(0.1),
    textParts: rng.chance(0.2),
    close: rng.chance(0.2),
    preamble: rng.chance(0.2),
  };
}

/** A multipart stream of the bodies in one camera style, written independently of src/ingest/mjpeg.ts. */
function buildStream(rng: Rng, bodies: Uint8Array[], style: StreamStyle): Uint8Array {
  const { boundary, eol } = style;
  const out: Uint8Array[] = [];
  if (style.preamble) out.push(encoder.encode(`preamble text${eol}${eol}`));
  const part = (type: string, body: Uint8Array) => {
    if (style.headerless && type === "image/jpeg") {
      out.push(encoder.encode(`--${boundary}${eol}`));
    } else {
      let head = `--${boundary}${eol}Content-Type: ${type}${eol}`;
      if (style.length === "exact") head += `Content-Length: ${body.length}${eol}`;
      if (style.length === "padded") head += `content-length:   ${body.length}  ${eol}`;
      if (style.length === "wrong") {
        head += `Content-Length: ${Math.max(0, body.length + rng.range(-5, 5))}${eol}`;
      }
      if (style.length === "junk") head += `Content-Length: ${rng.pick(["", "12a", "0x10", " "])}${eol}`;
      out.push(encoder.encode(head + eol));
    }
    out.push(body);
    if (style.breakBefore) out.push(encoder.encode(eol));
  };
  for (const body of bodies) {
    part("image/jpeg", body);
    if (style.textParts) part("text/plain", encoder.encode(`progress ${rng.int(1000)}`));
  }
  if (style.close) out.push(encoder.encode(`--${boundary}--${eol}epilogue${eol}`));
  return concat(out);
}

function wellFormedStream(rng: Rng): Uint8Array {
  const bodies = Array.from({ length: rng.range(1, 4) }, () => someJpeg(rng));
  return buildStream(rng, bodies, randomStyle(rng));
}

/** One fuzz input for the parser and the boundary to give it. */
function mjpegInput(rng: Rng): { bytes: Uint8Array; boundary: string | null } {
  const boundaryOption = () => rng.pick(["frame", "frame", null, "other"]);
  switch (rng.int(9)) {
    case 0: {
      // Random bytes, sometimes after a delimiter line.
      const noise = rng.bytes(rng.size(400_000));
      return {
        bytes: rng.chance(0.5) ? concat([latin1("--frame\r\n"), noise]) : noise,
        boundary: boundaryOption(),
      };
    }
    case 1: {
      // Parts at the size limit, each side of it, with and without a line break before the next delimiter.
      const sizes = Array.from({ length: rng.range(1, 3) }, () => MAX_PART + rng.range(-3, 3));
      const style = {
        ...randomStyle(rng),
        boundary: "frame",
        breakBefore: rng.chance(0.5),
        eol: "\r\n" as const,
      };
      const bodies = sizes.map((n) => rng.chance(0.7) ? fakeJpeg(rng, n) : rng.bytes(n));
      return { bytes: buildStream(rng, [...bodies, someJpeg(rng)], style), boundary: "frame" };
    }
    case 2: {
      // Endless headers or a huge announced length, then (maybe) good parts.
      const head = rng.chance(0.5)
        ? concat([
          latin1("--frame\r\nContent-Type: image/jpeg\r\n"),
          ...Array(rng.range(1, 100)).fill(latin1(`X-Junk: ${"a".repeat(100)}\r\n`)),
        ])
        : latin1(`--frame\r\nContent-Length: ${rng.pick([MAX_PART + 1, 10_000_000, 1e20])}\r\n\r\n`);
      const tail = rng.chance(0.7)
        ? buildStream(rng, [someJpeg(rng), someJpeg(rng)], randomStyle(rng))
        : new Uint8Array();
      return {
        bytes: mutate(rng, concat([head, rng.bytes(rng.size(200_000)), tail]), MJPEG_DICTIONARY, null, 2),
        boundary: "frame",
      };
    }
    case 3: {
      // A JPEG without Content-Length or EOI whose bytes hold delimiter lines, then (maybe) good parts.
      const body = fakeJpeg(rng, rng.range(MAX_PART - 1000, MAX_PART + 100_000)).subarray(0, -2);
      const loose = latin1(rng.pick(["\r\n--frame\r\n", "\n--frame \r\n\xff", "--frame\r\nX"]));
      for (let k = rng.range(1, 3); k > 0; k--) body.set(loose, rng.int(body.length - loose.length));
      const tail = rng.chance(0.7) ? buildStream(rng, [someJpeg(rng)], randomStyle(rng)) : new Uint8Array();
      return {
        bytes: concat([latin1("--frame\r\nContent-Type: image/jpeg\r\n\r\n"), body, tail]),
        boundary: "frame",
      };
    }
    default: {
      // A well-formed stream, mutated, sometimes spliced with another.
      const style = randomStyle(rng);
      const a = buildStream(rng, Array.from({ length: rng.range(1, 4) }, () => someJpeg(rng)), style);
      const b = wellFormedStream(rng);
      const bytes = rng.chance(0.1) ? a : mutate(rng, a, MJPEG_DICTIONARY, b);
      const boundary = rng.chance(0.8) ? style.boundary : boundaryOption();
      return { bytes, boundary };
    }
  }
}

function checkEvents(events: MjpegEvent[], where: string): void {
  for (const event of events) {
    if (event.kind === "part") {
      assert.ok(event.body instanceof Uint8Array, `${where}: a part body is not bytes`);
      assert.ok(
        event.body.length <= MAX_PART,
        `${where}: a part of ${event.body.length} bytes came out, over maxPartBytes ${MAX_PART}`,
      );
      for (const [name, value] of Object.entries(event.headers)) {
        assert.equal(
          name,
          name.toLowerCase(),
          `${where}: header name ${JSON.stringify(name)} not lower-case`,
        );
        assert.equal(typeof value, "string");
      }
    } else {
      assert.equal(event.kind, "error", `${where}: unknown event kind`);
      assert.ok(REASONS.includes(event.reason), `${where}: unknown reason ${event.reason}`);
      assert.ok(event.message.length > 10, `${where}: error ${event.reason} without a message`);
    }
  }
}

/**
 * Feeds the input in random chunks (or, with `whole`, in one push), checking the bound after every push and the
 * state after end(); returns the events.
 */
function runParser(
  rng: Rng,
  bytes: Uint8Array,
  boundary: string | null,
  maxSeekBytes: number | undefined,
  whole = false,
): MjpegEvent[] {
  const parser = new MjpegParser({
    boundary,
    maxPartBytes: MAX_PART,
    maxHeaderBytes: MAX_HEADER,
    maxSeekBytes,
  });
  // At most ~4000 pushes per input, whatever its size; within that, tiny and huge chunks alike.
  const minChunk = whole ? bytes.length : Math.ceil(bytes.length / 4000);
  const maxChunk = rng.pick([16, 1024, 70_000, 1_000_000]);
  const events: MjpegEvent[] = [];
  let at = 0;
  let pushes = 0;
  while (at < bytes.length) {
    const n = Math.max(minChunk, rng.size(maxChunk));
    const chunk = bytes.subarray(at, at + n);
    at += chunk.length;
    const out = parser.push(chunk);
    pushes++;
    checkEvents(out, `push ${pushes} (bytes ${at - chunk.length}..${at})`);
    assert.ok(
      parser.bufferedBytes <= MAX_BUFFERED,
      `after push ${pushes} (${at} of ${bytes.length} bytes) the parser holds ${parser.bufferedBytes} bytes, ` +
        `over maxPartBytes + maxHeaderBytes + ${BUFFER_SLACK}`,
    );
    events.push(...out);
  }
  const last = parser.end();
  checkEvents(last, "end");
  events.push(...last);
  assert.equal(parser.bufferedBytes, 0, "end() leaves nothing buffered");
  assert.deepEqual(parser.end(), [], "a second end() has nothing more to say");
  return events;
}

/** The parts that are whole JPEGs: the frames a camera connection would yield. */
function framesOf(events: MjpegEvent[]): Uint8Array[] {
  return events.flatMap((e) => e.kind === "part" && isJpeg(e.body) ? [e.body] : []);
}

Deno.test("fuzz: MjpegParser survives arbitrary streams with bounded memory", async () => {
  const seen = new Map<string, number>();
  const report = await fuzz("mjpeg", 0, 1, (rng) => {
    const { bytes, boundary } = mjpegInput(rng);
    const maxSeekBytes = rng.chance(0.2) ? rng.range(1, 50_000) : undefined;
    const chunked = runParser(rng, bytes, boundary, maxSeekBytes);
    for (const event of chunked) {
      const what = event.kind === "error" ? event.reason : isJpeg(event.body) ? "jpeg part" : "other part";
      seen.set(what, (seen.get(what) ?? 0) + 1);
    }
    // The frames do not depend on the chunking. (Errors may: "no-boundary" counts only the bytes dropped by
    // earlier pushes, so where it fires moves by up to one push.)
    const whole = runParser(rng, bytes, boundary, maxSeekBytes, true);
    const [a, b] = [framesOf(chunked), framesOf(whole)];
    assert.equal(a.length, b.length, `${a.length} frames in chunks, ${b.length} in one push`);
    a.forEach((body, i) => assert.ok(sameBytes(body, b[i]), `frame ${i} differs between chunkings`));
  });
  console.log(`  events: ${[...seen].map(([k, n]) => `${k} ${n}`).join(", ")}`);
  if (TIMED) assert.ok(report.iterations >= 20, `only ${report.iterations} iterations`);
});

Deno.test("fuzz harness check: generated well-formed streams parse to their frames in any chunking", async () => {
  // Guards the fuzz harness itself: without mutations, the generated streams must come back whole.
  await fuzz("mjpeg-oracle", 1, 1 / 3, (rng) => {
    const bodies = Array.from({ length: rng.range(1, 3) }, () => someJpeg(rng));
    const style = { ...randomStyle(rng), length: rng.pick(["exact", "none", "padded"] as const) };
    const boundary = rng.chance(0.5) ? style.boundary : null;
    const events = runParser(rng, buildStream(rng, bodies, style), boundary, undefined);
    const jpegs = events.flatMap((e) => e.kind === "part" && isJpeg(e.body) ? [e.body] : []);
    const expected = bodies.filter(isJpeg);
    assert.deepEqual(events.filter((e) => e.kind === "error"), []);
    assert.equal(jpegs.length, expected.length);
    jpegs.forEach((body, i) => assert.ok(sameBytes(body, expected[i]), `frame ${i} differs`));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// (b) decodeFrame

const INT64_TOKENS = [
  0n,
  -1n,
  1n,
  2n ** 53n - 1n,
  2n ** 53n,
  -(2n ** 53n) + 1n,
  -(2n ** 53n),
  2n ** 63n - 1n,
  -(2n ** 63n),
]
  .map((v) => {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigInt64(0, v);
    return out;
  });

/** Whether the header's time and sequence fit a JS number: the time within +-(2^53 - 1), the sequence below 2^53. */
function fieldsInRange(message: Uint8Array): boolean {
  const view = new DataView(message.buffer, message.byteOffset, HEADER_BYTES);
  const [time, seq, max] = [view.getBigInt64(0), view.getBigUint64(8), 2n ** 53n - 1n];
  return time >= -max && time <= max && seq <= max;
}

Deno.test("fuzz: decodeFrame returns a frame or throws SyntaxError/RangeError", async () => {
  const report = await fuzz("frame", 2, 2 / 3, (rng) => {
    let message: Uint8Array;
    const kind = rng.int(4);
    if (kind === 0) {
      message = rng.bytes(rng.size(64) - 1);
    } else {
      const valid = encodeFrame(
        rng.range(-1e13, 1e13),
        rng.int(2 ** 40),
        kind === 1 ? someJpeg(rng, 2000) : rng.bytes(rng.int(40)),
      );
      message = mutate(
        rng,
        valid,
        [...INT64_TOKENS, new Uint8Array([0xff, 0xd8])],
        encodeFrame(0, 0, new Uint8Array(4)),
        4,
      );
    }
    // Sometimes a view into a bigger buffer at an odd offset, as Kafka clients hand them out.
    if (rng.chance(0.3)) {
      const offset = rng.range(1, 7);
      const big = new Uint8Array(message.length + offset + rng.int(8));
      big.set(message, offset);
      message = big.subarray(offset, offset + message.length);
    }
    let frame;
    try {
      frame = decodeFrame(message);
    } catch (error) {
      assert.ok(
        error instanceof SyntaxError || error instanceof RangeError,
        `decodeFrame threw ${error} for ${message.length} bytes`,
      );
      assert.ok((error as Error).message.length > 0);
      // SyntaxError exactly for messages too short for the header, RangeError exactly for fields out of range.
      assert.equal(error instanceof SyntaxError, message.length < HEADER_BYTES, (error as Error).message);
      if (error instanceof RangeError) assert.ok(!fieldsInRange(message), error.message);
      return;
    }
    assert.ok(message.length >= HEADER_BYTES && fieldsInRange(message));
    assert.ok(Number.isSafeInteger(frame.timestampMs));
    assert.ok(Number.isSafeInteger(frame.seq) && frame.seq >= 0);
    assert.equal(frame.jpeg.length, message.length - HEADER_BYTES);
    assert.equal(frame.jpeg.buffer, message.buffer, "the JPEG is a view, not a copy");
    // Reading is exact: writing the fields back gives the same bytes.
    assert.deepEqual(encodeFrame(frame.timestampMs, frame.seq, frame.jpeg), message.slice());
  });
  if (TIMED) assert.ok(report.iterations >= 1000, `only ${report.iterations} iterations`);
});

// ---------------------------------------------------------------------------------------------------------------
// (c) the consumer path: Pipeline.handleBatch

const T0 = Date.UTC(2026, 1, 18, 9, 39, 32, 518);
const NOW = T0 + 60_000;
const GOOD_IDS = ["reachy-001", "bb-1", "r", "a.b", "R_2", "x".repeat(64)];
const BAD_IDS = [
  "",
  ".",
  "..",
  "../x",
  "a/b",
  "a\\b",
  "x".repeat(65),
  "x".repeat(1000),
  "röbot",
  "机器人",
  "a b",
  "\u0000",
  "r\n",
];
const CONFIGS = [
  "",
  '[filter]\nprimary = "histogram"',
  '[filter]\nphash_hash_size = 8\n[filter.robots."bb-1"]\nprimary = "histogram"',
  "[consumer]\nstore_concurrency = 1",
].map((toml) => resolveConfig(toml));

function randomKey(rng: Rng, robot: string, ts: number): string | null {
  switch (rng.int(20)) {
    case 0:
      return null;
    case 1:
      return robot; // no ':'
    case 2:
      return `${rng.pick(BAD_IDS)}:${ts}`;
    case 3:
      return `${robot}:${rng.pick(["", "x", "-", "1.5", "99999999999999999", " 12", String(-ts)])}`;
    case 4:
      return `${robot}:${ts}:${ts}`;
    case 5: {
      // Random characters, any code point class.
      const chars = Array.from({ length: rng.size(80) }, () =>
        rng.pick([
          () => String.fromCharCode(rng.range(0x20, 0x7e)),
          () => String.fromCharCode(rng.int(0x20)),
          () => String.fromCharCode(rng.range(0x80, 0xffff)),
          () => ":/.",
        ])());
      return chars.join("");
    }
    case 6: {
      // A valid key with one character changed, inserted or deleted.
      const key = `${robot}:${ts}`;
      const at = rng.int(key.length);
      const c = rng.pick(["/", ".", ":", "\\", "é", "", "-", "0"]);
      return key.slice(0, at) + c + key.slice(at + rng.int(2));
    }
    default:
      return `${robot}:${ts}`;
  }
}

/**
 * The JPEG with the size in its frame header (SOF0/1/2) changed, and maybe cut short but ending in EOI: enormous
 * dimensions with a tiny body, zero dimensions, and sizes that disagree with the data.
 */
function withSize(rng: Rng, jpeg: Uint8Array): Uint8Array {
  const out = jpeg.slice();
  for (let i = 2; i + 9 < out.length && out[i] === 0xff;) {
    const marker = out[i + 1];
    if (marker >= 0xc0 && marker <= 0xc2) {
      const size = () => rng.pick([0, 1, 7, 4096, 16384, 16385, 65535, rng.int(65536)]);
      const [w, h] = [size(), size()];
      out.set([h >> 8, h & 255, w >> 8, w & 255], i + 5);
      break;
    }
    i += 2 + ((out[i + 2] << 8) | out[i + 3]);
  }
  if (rng.chance(0.5)) {
    return concat([out.subarray(0, rng.range(2, Math.min(out.length, 2000))), latin1("\xff\xd9")]);
  }
  return out;
}

function randomValue(rng: Rng, ts: number, seq: number): Uint8Array | null {
  const kind = rng.int(13);
  if (kind === 0) return null;
  if (kind === 1) return rng.bytes(rng.int(HEADER_BYTES));
  if (kind === 2) return rng.bytes(rng.size(5000));
  const time = rng.chance(0.9) ? ts : rng.pick([-1, -T0, NOW + 86_400_000 + 1, NOW + 400 * 86_400_000, 0]);
  if (kind === 12) {
    return encodeFrame(time, seq, withSize(rng, rng.chance(0.5) ? rng.pick(SAMPLES) : rng.pick(FIXTURES)));
  }
  // Half the time a real frame of the still scene, so the filter also drops frames (and stores scene changes).
  const valid = encodeFrame(time, seq, rng.chance(0.5) ? rng.pick(SAMPLES) : someJpeg(rng));
  if (kind < 7) return valid;
  return mutate(
    rng,
    valid,
    [...INT64_TOKENS, ...MJPEG_DICTIONARY.slice(-3)],
    encodeFrame(ts, seq, rng.pick(FIXTURES)),
    6,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** A frame the fuzzed consumer finds stored before it starts (without a catalog row). */
const EARLIER = "frames/reachy-001/2026-02-18/20260218T093932600Z_000005.jpg";

Deno.test("fuzz: Pipeline.handleBatch resolves every offset and stores only under valid robot ids", async () => {
  const tally = { messages: 0, stored: 0, dropped: 0, replayed: 0, errors: 0, skipped: 0 };
  let slowest = 0;
  const report = await fuzz("consumer", 3, 1, async (rng) => {
    const config = rng.pick(CONFIGS);
    const store = new MemoryStore();
    store.failPuts = rng.chance(0.2) ? rng.range(1, 3) : 0;
    const log = memoryLogger();
    const filter = await createSceneFilter(config, (s) => loadFilter(s, "."));
    // Sometimes with a catalog, which then gets a row per stored frame and answers the resume lookup.
    const catalog = rng.chance(0.3) ? new SqliteCatalog(":memory:") : undefined;
    const pipeline = new Pipeline({
      config,
      log,
      storage: store,
      filter,
      catalog,
      sleep: () => Promise.resolve(),
      now: () => NOW,
    });
    // Sometimes a robot already has frames stored, so the resume lookup and the replay check run too.
    if (rng.chance(0.2)) {
      store.objects.set(EARLIER, {
        body: rng.pick(SAMPLES),
        metadata: {},
      });
    }
    const first = rng.int(1_000_000);
    const robots = Array.from({ length: rng.range(1, 3) }, () => rng.pick(GOOD_IDS));
    const messages: IncomingMessage[] = Array.from({ length: rng.range(1, 8) }, (_, i) => {
      const robot = rng.pick(robots);
      const ts = T0 + rng.int(2000);
      return {
        offset: String(first + i),
        key: randomKey(rng, robot, ts),
        value: randomValue(rng, ts, rng.int(1000)),
        timestampMs: ts,
      };
    });
    const before = new Set(store.objects.keys());
    const batch = fakeBatch(messages, rng.int(3));
    const started = performance.now();
    try {
      await withTimeout(pipeline.handleBatch(batch), 2000, `handleBatch of ${messages.length} messages`);
    } finally {
      const rows = (await catalog?.all()) ?? [];
      await catalog?.close();
      // A frame stored earlier without a row (an interrupted store) gets its row when its robot resumes from it.
      const indexed = rows.filter((row) => before.has(row.key));
      for (const row of indexed) assert.equal(row.key, EARLIER, `catalog row for ${row.key}, stored earlier`);
      for (const row of rows) {
        assert.ok(store.objects.has(row.key), `catalog row for ${row.key}, not stored`);
        assert.equal(`frames/${row.robotId}/`, row.key.slice(0, row.key.indexOf("/", 7) + 1));
      }
      if (catalog) {
        assert.equal(
          rows.length - indexed.length,
          store.objects.size - before.size,
          "one catalog row per stored frame",
        );
      }
    }
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `handleBatch took ${ms} ms`);
    slowest = Math.max(slowest, ms);

    assert.deepEqual(batch.resolved, messages.map((m) => m.offset), "every offset resolved once, in order");
    const robotsInKeys = new Set(messages.map((m) => m.key?.slice(0, m.key.lastIndexOf(":"))));
    for (const [key, object] of store.objects) {
      if (before.has(key)) continue;
      const id = /^frames\/([^/]*)\//.exec(key)?.[1];
      assert.ok(id !== undefined && robotIdProblem(id) === null, `stored under ${JSON.stringify(key)}`);
      assert.ok(robotsInKeys.has(id), `stored ${key} for a robot no message named`);
      assert.equal(parseObjectKey(key)?.robotId, id, `${key} is not a frame key`);
      assert.equal(object.metadata["robot-id"], id);
      assert.ok(isJpeg(object.body), `${key} holds no JPEG`);
    }
    // Every message is accounted for exactly once: refused before a robot was known, or by its robot's counts.
    let accounted = 0;
    for (const count of pipeline.counters.skipped.values()) accounted += count;
    for (const [id, c] of pipeline.counters.robots) {
      assert.equal(robotIdProblem(id), null, `counters for robot ${JSON.stringify(id)}`);
      assert.equal(c.received, c.accepted + c.dropped + c.replayed + c.errors, `counts of ${id}`);
      assert.equal(c.stored, c.accepted, `every accepted frame of ${id} stored`);
      accounted += c.received;
      tally.stored += c.stored;
      tally.dropped += c.dropped;
      tally.replayed += c.replayed;
      tally.errors += c.errors;
    }
    assert.equal(accounted, messages.length);
    // Each refused message is logged once, as a warning naming topic/partition@offset.
    const refused = accounted -
      [...pipeline.counters.robots.values()].reduce((n, c) => n + c.accepted + c.dropped + c.replayed, 0);
    // (A clock that went back is a warning about a frame that is kept, not a refusal.)
    const named = log.lines.filter((l) =>
      / WARN .*camera\.frames\/\d@\d+/.test(l) && !/capture clock went back/.test(l)
    );
    assert.equal(named.length, refused, named.join("\n"));
    tally.messages += messages.length;
    tally.skipped += messages.length - accounted +
      [...pipeline.counters.skipped.values()].reduce((a, b) => a + b, 0);
  });
  console.log(
    `  outcomes: ${Object.entries(tally).map(([k, n]) => `${k} ${n}`).join(", ")}; ` +
      `slowest handleBatch ${Math.round(slowest)} ms`,
  );
  if (TIMED) assert.ok(report.iterations >= 20, `only ${report.iterations} iterations`);
});

// ---------------------------------------------------------------------------------------------------------------
// Regression tests for the bugs this fuzz found (see the note above the parser target).

Deno.test({
  name: "MjpegParser: a body 1-2 bytes over maxPartBytes right before the delimiter is skipped, not stuck",
  fn() {
    const max = 100;
    for (const body of ["a".repeat(101), "a".repeat(101) + "\n", "a".repeat(102)]) {
      const parser = new MjpegParser({ boundary: "frame", maxPartBytes: max, maxHeaderBytes: 4096 });
      const events = parser.push(encoder.encode(`--frame\r\nContent-Type: text/plain\r\n\r\n${body}`));
      for (let i = 0; i < 3000; i++) {
        events.push(...parser.push(encoder.encode(`--frame\r\nContent-Type: text/plain\r\n\r\nok ${i}\r\n`)));
      }
      assert.ok(parser.bufferedBytes < 1000, `holds ${parser.bufferedBytes} bytes`);
      events.push(...parser.end());
      // Today: no event at all, and the parser holds every byte pushed after the oversized body (~150 KB).
      assert.deepEqual(events.filter((e) => e.kind === "error").map((e) => e.kind === "error" && e.reason), [
        "part-too-large",
      ]);
      assert.equal(events.filter((e) => e.kind === "part").length, 3000, JSON.stringify(body.slice(-3)));
    }
  },
});

/**
 * What a parser with the limits above makes of `stream` pushed whole, then in chunks of 1000 bytes: each event as
 * its error reason or `part of N bytes`.
 */
function wholeAndChunked(stream: Uint8Array): { size: number; outcome: string[] }[] {
  return [stream.length, 1000].map((size) => {
    const parser = new MjpegParser({ boundary: "frame", maxPartBytes: MAX_PART, maxHeaderBytes: MAX_HEADER });
    const events: MjpegEvent[] = [];
    for (let at = 0; at < stream.length; at += size) {
      events.push(...parser.push(stream.subarray(at, at + size)));
    }
    events.push(...parser.end());
    return {
      size,
      outcome: events.map((e) => e.kind === "error" ? e.reason : `part of ${e.body.length} bytes`),
    };
  });
}

Deno.test({
  name: "MjpegParser: a header block over maxHeaderBytes is refused however the stream is chunked",
  fn() {
    const jpeg = FIXTURES[0];
    const part = (headers: string) =>
      concat([encoder.encode(`--frame\r\nContent-Type: image/jpeg\r\n${headers}\r\n`), jpeg, latin1("\r\n")]);
    // 10 KB of header lines (over the 4 KiB limit) with their blank line, then a good part.
    const stream = concat([part(`X-Junk: ${"a".repeat(100)}\r\n`.repeat(100)), part("")]);
    for (const { size, outcome } of wholeAndChunked(stream)) {
      // Today in one push: no error, and two parts, the first with a 10 KB x-junk header.
      assert.deepEqual(outcome, ["headers-too-large", `part of ${jpeg.length} bytes`], `chunks of ${size}`);
    }
  },
});

Deno.test({
  name: "MjpegParser: the rest of an oversized JPEG is skipped to its real end however the stream is chunked",
  fn() {
    // A JPEG of 330 KB without Content-Length (limit 300 KB). At 310 KB its bytes happen to hold a delimiter line
    // followed by bytes that are no header: the JPEG rule rightly ignores it while scanning the part.
    const big = fakeJpeg(new Rng(4), 330_000);
    big.set(latin1("\r\n--frame\r\n\x01junk\r\n\r\n\xff\xd8 not a frame \xff\xd9"), 310_000);
    const good = FIXTURES[0];
    const stream = concat([
      latin1("--frame\r\nContent-Type: image/jpeg\r\n\r\n"),
      big,
      latin1("\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n"),
      good,
      latin1("\r\n--frame--\r\n"),
    ]);
    for (const { size, outcome } of wholeAndChunked(stream)) {
      // Today in chunks of 1000: the search restarts at ~301 KB and takes the fake delimiter, so a bogus 19980-byte
      // "frame" (from the fake SOI to the big JPEG's EOI: it passes isJpeg) comes out before the good one.
      assert.deepEqual(outcome, ["part-too-large", `part of ${good.length} bytes`], `chunks of ${size}`);
    }
  },
});
