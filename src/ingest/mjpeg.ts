/**
 * An incremental parser for `multipart/x-mixed-replace` (MJPEG over HTTP). Pure: bytes in, events out, no I/O,
 * so every camera quirk can be tested by feeding bytes.
 *
 * What real cameras send (see the field notes), and how each case is handled:
 * - Boundary from the Content-Type header (quoted or bare, with or without a leading `--`), or learned from the
 *   first `--xxx` line of the body when the header has none.
 * - A part's `Content-Length` (any header-name case, space-padded) is trusted when present: the body is exactly
 *   that many bytes, whatever bytes it contains. Without it the body runs to the next delimiter.
 * - CRLF or LF-only line ends, a CRLF before the first delimiter, no line break before delimiters at all, extra
 *   part headers (X-Timestamp), non-JPEG parts (returned as they are; the caller decides), the close delimiter.
 * - A header boundary written with `--` (`boundary=--myboundary`) is stripped, as Axis-style cameras then write
 *   `--myboundary` in the body; a body that follows RFC 2046 literally (`----myboundary`) works too.
 *
 * Boundary bytes inside a JPEG, without Content-Length (the one ambiguous case): entropy-coded data and APP/COM
 * segments may contain `--frame` followed by CR/LF, and a plain scanner would cut the frame there. So for a part
 * whose body starts with the JPEG SOI marker (FF D8), a delimiter ends the part only
 *   1. right after an EOI marker (FF D9) plus at most JPEG_MAX_PADDING padding bytes (CR, LF, NUL, space, tab), or
 *   2. when a well-formed part follows it: one or more printable `Name: value` header lines and a blank line, or
 *      a JPEG SOI right after the delimiter line / an empty header block. This is a frame the camera cut short; it
 *      comes out as a part whose body fails isJpeg, instead of swallowing the next frame (which would otherwise
 *      look like one valid JPEG from SOI to the next frame's EOI).
 * Any other delimiter is taken as bytes of the JPEG. Should a JPEG still reach maxPartBytes without an accepted
 * delimiter, it is cut at its first delimiter and reported as "unterminated-jpeg", so later frames are not lost.
 * Parts that are not JPEG (text/plain progress parts) end at their first delimiter.
 *
 * Memory stays bounded by about maxPartBytes + maxHeaderBytes + one input slice (64 KiB): oversized parts and
 * endless headers are reported once and skipped without being buffered, and a stream without any boundary keeps
 * only a short tail. Each byte is scanned a bounded number of times (scan positions are remembered across pushes).
 */

export type MjpegErrorReason =
  /** A part's body is over maxPartBytes; it was skipped. */
  | "part-too-large"
  /** A part's header block (or the delimiter line) is over maxHeaderBytes; the part was skipped. */
  | "headers-too-large"
  /** maxSeekBytes went by without a delimiter line (wrong boundary, or not a multipart stream at all). */
  | "no-boundary"
  /** A JPEG part without Content-Length had no EOI before any delimiter within maxPartBytes; it was dropped. */
  | "unterminated-jpeg"
  /** The stream ended inside a part with a Content-Length; the partial body was dropped. */
  | "truncated-part";

export type MjpegEvent =
  | { kind: "part"; headers: Record<string, string>; body: Uint8Array }
  | { kind: "error"; reason: MjpegErrorReason; message: string };

export interface MjpegParserOptions {
  /** Boundary without the leading `--`; null or absent to learn it from the first `--xxx` line of the body. */
  boundary?: string | null;
  /** Largest part body accepted; larger parts give one "part-too-large" error and are skipped. */
  maxPartBytes: number;
  /** Largest part header block; 16 KiB by default. */
  maxHeaderBytes?: number;
  /** How many bytes may go by without a delimiter before a "no-boundary" error; maxPartBytes + maxHeaderBytes by default. */
  maxSeekBytes?: number;
  /**
   * Makes the buffer for a body of known length (`new Uint8Array(length)` by default); the producer passes one
   * that leaves room for the Kafka frame header in front and reuses buffers of frames already sent.
   */
  allocate?: (length: number) => Uint8Array;
}

/** Padding accepted after a JPEG's EOI marker, both by isJpeg and by the delimiter rule above. */
export const JPEG_MAX_PADDING = 64;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SPACE = 0x20;
const TAB = 0x09;
/** Input is processed in slices of this size so that one huge chunk cannot grow the buffer past the bound. */
const SLICE = 64 * 1024;
/** RFC 2046 limits boundaries to 70 characters; some firmwares go a little beyond, none this far. */
const MAX_BOUNDARY_CHARS = 200;

const decoder = new TextDecoder();

function isPadding(byte: number): boolean {
  return byte === 0x00 || byte === CR || byte === LF || byte === SPACE || byte === TAB;
}

/**
 * True when the bytes look like one complete JPEG: SOI (FF D8) first and EOI (FF D9) last, where the EOI may be
 * followed by up to JPEG_MAX_PADDING padding bytes (CR, LF, NUL, space, tab). Cameras pad frames like that (a CRLF
 * kept from the multipart framing, NULs from fixed-size UVC buffers), and decoders ignore bytes after EOI. A frame
 * cut short by a dropped connection fails this check.
 */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && endsWithEoi(bytes, 2, bytes.length);
}

/** Why `bytes` is not a complete JPEG (as isJpeg judges it), or null when it is one. */
export function jpegProblem(bytes: Uint8Array): string | null {
  if (isJpeg(bytes)) return null;
  if (bytes.length === 0) return "payload is empty, not a JPEG";
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    return `payload of ${bytes.length} bytes is not a JPEG (no SOI marker at the start)`;
  }
  for (let i = bytes.length - 2; i >= 2; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) {
      return `JPEG of ${bytes.length} bytes has ${
        bytes.length - i - 2
      } bytes of garbage after its EOI marker`;
    }
  }
  return `JPEG of ${bytes.length} bytes is truncated (no EOI marker at the end)`;
}

/** True when view[from, end) ends with FF D9 plus allowed padding. */
function endsWithEoi(view: Uint8Array, from: number, end: number): boolean {
  let q = end;
  const floor = Math.max(from, end - JPEG_MAX_PADDING);
  while (q > floor && isPadding(view[q - 1])) q--;
  return q - 2 >= from && view[q - 2] === 0xff && view[q - 1] === 0xd9;
}

/**
 * The boundary of a multipart Content-Type, without a leading `--`, or null when there is none.
 * Accepts `boundary=frame`, `boundary="frame"`, `Boundary=--frame`, in any parameter position.
 */
export function boundaryFromContentType(contentType: string): string | null {
  // Parameters are split on `;` outside quotes: a quoted boundary may legally contain `;`.
  const params: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of contentType) {
    if (ch === '"') quoted = !quoted;
    if (ch === ";" && !quoted) {
      params.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  params.push(current);
  for (const param of params.slice(1)) {
    const eq = param.indexOf("=");
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "boundary") continue;
    let value = param.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value.startsWith("--")) value = value.slice(2);
    return value.length > 0 ? value : null;
  }
  return null;
}

/** A growable byte window: bytes are appended at the end and consumed from the front. */
class ByteWindow {
  #buf = new Uint8Array(SLICE * 2);
  #start = 0;
  #end = 0;

  constructor(private readonly cap: number) {}

  get length(): number {
    return this.#end - this.#start;
  }

  /** The live bytes; valid until the next append or consume. */
  view(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  append(bytes: Uint8Array): void {
    if (this.#end + bytes.length > this.#buf.length) {
      const live = this.length;
      const need = live + bytes.length;
      if (need <= this.#buf.length / 2) {
        // Compacting frees at least half the buffer, so each byte is moved O(1) times on average.
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        // Grow geometrically, but not far past the parser's bound (a doubling could nearly double memory).
        const size = Math.max(need, Math.min(this.#buf.length * 2, this.cap));
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  consume(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      // After a big part, give the memory back instead of holding the peak forever.
      if (this.#buf.length > SLICE * 8) this.#buf = new Uint8Array(SLICE * 2);
    }
  }
}

type State =
  /** Looking for a delimiter line (before the first part, between parts, or resyncing after an error). */
  | { name: "seek"; scanned: number; skipped: number; reported: boolean; preview: Uint8Array | null }
  /** Reading the rest of the delimiter line and the part's header lines. */
  | { name: "headers"; lineStart: number; lines: string[] }
  /** Filling a body of known length. */
  | { name: "body-length"; headers: Record<string, string>; body: Uint8Array; filled: number }
  /** Scanning for the delimiter that ends a body without Content-Length. */
  | {
    name: "body-scan";
    headers: Record<string, string>;
    scanned: number;
    loose: number;
    /** Set once the part is over maxPartBytes: its bytes are dropped as they are scanned, until its end. */
    dropping?: { jpeg: boolean };
  }
  /** Dropping the rest of a too-large part of known length. */
  | { name: "skip-length"; remaining: number };

type Delimiter = { at: number; close: boolean };

export class MjpegParser {
  #boundary: Uint8Array | null;
  readonly #maxPartBytes: number;
  readonly #maxHeaderBytes: number;
  readonly #maxSeekBytes: number;
  readonly #allocate: (length: number) => Uint8Array;
  readonly #window: ByteWindow;
  #state: State = MjpegParser.#seek();
  /** Whether any delimiter was seen on this stream. */
  #sawDelimiter = false;
  /** Whether the window's first byte starts a line; used only to learn the boundary. */
  #atLineStart = true;

  constructor(options: MjpegParserOptions) {
    const { maxPartBytes, maxHeaderBytes = 16 * 1024 } = options;
    if (!Number.isSafeInteger(maxPartBytes) || maxPartBytes < 4) {
      throw new RangeError(`maxPartBytes must be an integer >= 4, got ${maxPartBytes}`);
    }
    if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 64) {
      throw new RangeError(`maxHeaderBytes must be an integer >= 64, got ${maxHeaderBytes}`);
    }
    const maxSeekBytes = options.maxSeekBytes ?? maxPartBytes + maxHeaderBytes;
    if (!Number.isSafeInteger(maxSeekBytes) || maxSeekBytes < 1) {
      throw new RangeError(`maxSeekBytes must be a positive integer, got ${maxSeekBytes}`);
    }
    const boundary = options.boundary?.replace(/^--/, "") || null;
    if (boundary !== null && boundary.length > MAX_BOUNDARY_CHARS) {
      throw new RangeError(
        `boundary is ${boundary.length} characters long; at most ${MAX_BOUNDARY_CHARS} allowed`,
      );
    }
    this.#boundary = boundary === null ? null : new TextEncoder().encode("--" + boundary);
    this.#maxPartBytes = maxPartBytes;
    this.#maxHeaderBytes = maxHeaderBytes;
    this.#maxSeekBytes = maxSeekBytes;
    this.#allocate = options.allocate ?? ((length) => new Uint8Array(length));
    this.#window = new ByteWindow(maxPartBytes + maxHeaderBytes + SLICE * 2);
  }

  /** The boundary in use (without `--`), once known. */
  get boundary(): string | null {
    return this.#boundary === null ? null : decoder.decode(this.#boundary.subarray(2));
  }

  /** Bytes the parser holds right now (window plus a body being filled), for tests and metrics. */
  get bufferedBytes(): number {
    return this.#window.length + (this.#state.name === "body-length" ? this.#state.body.length : 0);
  }

  /**
   * A fresh search for the next delimiter, with its own maxSeekBytes budget: also after a skipped part, so a
   * stream that never brings a delimiter again is reported (and the caller can drop the connection) instead of
   * being read forever.
   */
  static #seek(): State {
    return { name: "seek", scanned: 0, skipped: 0, reported: false, preview: null };
  }

  /** Feeds the next bytes of the stream; returns the parts and errors they complete, in order. */
  push(chunk: Uint8Array): MjpegEvent[] {
    const events: MjpegEvent[] = [];
    for (let offset = 0; offset < chunk.length; offset += SLICE) {
      let slice = chunk.subarray(offset, offset + SLICE);
      const state = this.#state;
      if (state.name === "body-length" && this.#window.length === 0) {
        // A body of known length goes straight from the input into its buffer, not through the window: one copy
        // of each frame instead of two.
        const take = Math.min(state.body.length - state.filled, slice.length);
        state.body.set(slice.subarray(0, take), state.filled);
        state.filled += take;
        if (state.filled === state.body.length) {
          events.push({ kind: "part", headers: state.headers, body: state.body });
          this.#state = MjpegParser.#seek();
        }
        if (take === slice.length) continue;
        slice = slice.subarray(take);
      }
      if (this.#state.name === "skip-length") {
        // Dropped bytes never enter the window.
        const take = Math.min(this.#state.remaining, slice.length);
        this.#state.remaining -= take;
        if (this.#state.remaining === 0) this.#state = MjpegParser.#seek();
        if (take === slice.length) continue;
        this.#window.append(slice.subarray(take));
      } else {
        this.#window.append(slice);
      }
      this.#run(events);
    }
    return events;
  }

  /**
   * Signals the end of the stream. A body without Content-Length that was running when the stream ended is
   * returned as a part (the server closed instead of sending a delimiter; isJpeg tells whether it is whole);
   * an incomplete body of known length is reported as "truncated-part".
   */
  end(): MjpegEvent[] {
    const events: MjpegEvent[] = [];
    const state = this.#state;
    const view = this.#window.view();
    if (state.name === "body-scan" && !state.dropping && view.length > 0) {
      events.push({ kind: "part", headers: state.headers, body: this.#copy(trimLineEnd(view)) });
    } else if (state.name === "body-length") {
      events.push({
        kind: "error",
        reason: "truncated-part",
        message:
          `stream ended after ${state.filled} of the ${state.body.length} bytes the part's Content-Length announced`,
      });
    }
    if (state.name === "seek" && !this.#sawDelimiter && !state.reported && state.skipped + view.length > 0) {
      // A short page that never showed a delimiter (an HTML error under a multipart Content-Type) is a
      // no-boundary stream too, not a clean end.
      events.push(this.#noBoundary(state.skipped + view.length, state.preview ?? view.slice(0, 48)));
    }
    this.#window.consume(view.length);
    this.#state = MjpegParser.#seek();
    this.#atLineStart = true;
    return events;
  }

  /** A part's bytes out of the window, into a buffer of their own. */
  #copy(bytes: Uint8Array): Uint8Array {
    const out = this.#allocate(bytes.length);
    out.set(bytes);
    return out;
  }

  /** Runs the state machine until it needs more bytes. */
  #run(events: MjpegEvent[]): void {
    while (true) {
      const progressed = this.#step(events);
      if (!progressed) return;
    }
  }

  /** One transition; false when the state needs more input. */
  #step(events: MjpegEvent[]): boolean {
    const state = this.#state;
    switch (state.name) {
      case "seek":
        return this.#boundary === null
          ? this.#learnBoundary(state, events)
          : this.#seekDelimiter(state, events);
      case "headers":
        return this.#readHeaders(state, events);
      case "body-length": {
        const view = this.#window.view();
        const take = Math.min(view.length, state.body.length - state.filled);
        state.body.set(view.subarray(0, take), state.filled);
        state.filled += take;
        this.#window.consume(take);
        if (state.filled < state.body.length) return false;
        events.push({ kind: "part", headers: state.headers, body: state.body });
        this.#state = MjpegParser.#seek();
        return true;
      }
      case "body-scan":
        return this.#scanBody(state, events);
      case "skip-length": {
        const take = Math.min(this.#window.length, state.remaining);
        this.#window.consume(take);
        state.remaining -= take;
        if (state.remaining > 0) return false;
        this.#state = MjpegParser.#seek();
        return true;
      }
    }
  }

  /**
   * Finds the next `--boundary` in view[from..] followed by a line end, transport padding or `--`.
   * Returns the delimiter, or the index from which scanning must resume once more bytes arrive.
   */
  #findDelimiter(view: Uint8Array, from: number): Delimiter | { resume: number } {
    const pattern = this.#boundary!;
    let p = from;
    while (true) {
      p = view.indexOf(DASH, p);
      if (p < 0) return { resume: view.length };
      // Two bytes after the pattern decide between an open delimiter, the close delimiter and a longer boundary.
      const avail = Math.min(view.length - p, pattern.length);
      let match = true;
      for (let i = 1; i < avail; i++) {
        if (view[p + i] !== pattern[i]) {
          match = false;
          break;
        }
      }
      if (match) {
        if (p + pattern.length + 2 > view.length) return { resume: p };
        const next = view[p + pattern.length];
        if (next === CR || next === LF || next === SPACE || next === TAB) return { at: p, close: false };
        if (next === DASH && view[p + pattern.length + 1] === DASH) return { at: p, close: true };
      }
      p++;
    }
  }

  #seekDelimiter(state: State & { name: "seek" }, events: MjpegEvent[]): boolean {
    const view = this.#window.view();
    if (state.preview === null && view.length > 0) state.preview = view.slice(0, 48);
    const found = this.#findDelimiter(view, state.scanned);
    if ("resume" in found) {
      // Keep only the bytes a delimiter could still start in.
      const drop = found.resume;
      this.#window.consume(drop);
      state.scanned = 0;
      state.skipped += drop;
      if (!state.reported && state.skipped > this.#maxSeekBytes) {
        state.reported = true;
        events.push(this.#noBoundary(state.skipped, state.preview));
      }
      return false;
    }
    if (found.close) {
      // The close delimiter: whatever follows is epilogue (or, for concatenated streams, a new preamble).
      this.#window.consume(found.at + this.#boundary!.length + 2);
      this.#state = MjpegParser.#seek();
      return true;
    }
    this.#sawDelimiter = true;
    this.#window.consume(found.at + this.#boundary!.length);
    this.#state = { name: "headers", lineStart: 0, lines: [] };
    return true;
  }

  #noBoundary(skipped: number, preview: Uint8Array | null): MjpegEvent {
    const shown = preview === null ? "" : `; the stream started with ${printable(preview)}`;
    const message = this.#boundary === null
      ? `no multipart delimiter line ("--" + boundary) in ${skipped} bytes${shown}: this is not an MJPEG stream`
      : `boundary "${this.boundary}" not seen in ${skipped} bytes${shown}: ` +
        `the Content-Type header announces a boundary the body does not use`;
    return { kind: "error", reason: "no-boundary", message };
  }

  /** Seek without a known boundary: the first line starting with `--` names it. */
  #learnBoundary(state: State & { name: "seek" }, events: MjpegEvent[]): boolean {
    const view = this.#window.view();
    if (state.preview === null && view.length > 0) state.preview = view.slice(0, 48);
    let i = 0;
    let waitAt = -1;
    while (i < view.length) {
      const lineStart = i === 0 ? this.#atLineStart : view[i - 1] === LF;
      if (lineStart) {
        if (view.length - i < 3) {
          waitAt = i;
          break;
        }
        if (view[i] === DASH && view[i + 1] === DASH) {
          const limit = i + 2 + MAX_BOUNDARY_CHARS + 2;
          const lf = view.subarray(0, Math.min(limit, view.length)).indexOf(LF, i + 2);
          if (lf < 0 && view.length < limit) {
            waitAt = i;
            break;
          }
          if (lf >= 0) {
            const name = decoder.decode(view.subarray(i + 2, lf)).trimEnd();
            if (/^[\x21-\x7e][\x20-\x7e]*$/.test(name) && !name.endsWith("--")) {
              this.#boundary = new TextEncoder().encode("--" + name);
              this.#window.consume(i);
              state.skipped += i;
              state.scanned = 0;
              return true; // seek again, now with the boundary known
            }
          }
        }
      }
      const lf = view.indexOf(LF, i);
      if (lf < 0) {
        i = view.length;
        break;
      }
      i = lf + 1;
    }
    const drop = waitAt >= 0 ? waitAt : i;
    if (drop > 0) this.#atLineStart = waitAt >= 0 || view[drop - 1] === LF;
    this.#window.consume(drop);
    state.skipped += drop;
    if (!state.reported && state.skipped > this.#maxSeekBytes) {
      state.reported = true;
      events.push(this.#noBoundary(state.skipped, state.preview));
    }
    return false;
  }

  /** The window starts right after `--boundary`: the rest of that line, then header lines up to a blank one. */
  #readHeaders(state: State & { name: "headers" }, events: MjpegEvent[]): boolean {
    const view = this.#window.view();
    let lineStart = state.lineStart;
    while (true) {
      if (state.lines.length === 1 && lineStart === state.lineStart && view.length - lineStart >= 2) {
        // A camera that sends the JPEG straight after the delimiter line, with no header block at all.
        if (view[lineStart] === 0xff && view[lineStart + 1] === 0xd8) {
          this.#window.consume(lineStart);
          this.#state = { name: "body-scan", headers: {}, scanned: 0, loose: -1 };
          return true;
        }
      }
      const lf = view.indexOf(LF, lineStart);
      // A block over the limit is refused even when its blank line is already here, as for any other chunking.
      if (lf < 0 || lf >= this.#maxHeaderBytes) break;
      let end = lf;
      if (end > lineStart && view[end - 1] === CR) end--;
      const line = decoder.decode(view.subarray(lineStart, end));
      const first = state.lines.length === 0;
      state.lines.push(line);
      lineStart = lf + 1;
      state.lineStart = lineStart;
      // Line 0 is the rest of the delimiter line (transport padding); an empty line after it ends the headers.
      if (!first && line === "") {
        this.#window.consume(lineStart);
        this.#startBody(parseHeaders(state.lines.slice(1, -1)), events);
        return true;
      }
    }
    if (view.length > this.#maxHeaderBytes) {
      // Exactly maxHeaderBytes, whatever the chunking; the seek skips the rest of the part.
      this.#window.consume(this.#maxHeaderBytes);
      events.push({
        kind: "error",
        reason: "headers-too-large",
        message: `part headers exceed maxHeaderBytes (${this.#maxHeaderBytes} bytes) without a blank line; ` +
          `skipped the part`,
      });
      this.#state = MjpegParser.#seek();
      return true;
    }
    return false;
  }

  #startBody(headers: Record<string, string>, events: MjpegEvent[]): void {
    const declared = headers["content-length"];
    const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
    if (length === null) {
      this.#state = { name: "body-scan", headers, scanned: 0, loose: -1 };
    } else if (length > this.#maxPartBytes) {
      events.push(this.#tooLarge(`Content-Length ${length}`));
      this.#state = { name: "skip-length", remaining: length };
    } else {
      this.#state = { name: "body-length", headers, body: this.#allocate(length), filled: 0 };
    }
  }

  /**
   * Whether view[from..] (just after `--boundary`) looks like the start of a real part: the rest of the delimiter
   * line, then at least one well-formed `Name: value` header line and a blank line, or a JPEG SOI right after the
   * delimiter line or an empty header block. "wait" when more bytes are needed to tell.
   */
  #partStartsAt(view: Uint8Array, from: number): boolean | "wait" {
    const limit = Math.min(view.length, from + this.#maxHeaderBytes);
    // Running into the end of the bytes we have means "wait"; running into maxHeaderBytes means "no".
    const short = () => (limit === view.length && limit < from + this.#maxHeaderBytes ? "wait" : false);
    // Line 0, the rest of the delimiter line, may hold only transport padding.
    let i = from;
    for (; i < limit && view[i] !== LF; i++) {
      if (view[i] !== SPACE && view[i] !== TAB && view[i] !== CR) return false;
    }
    if (i === limit) return short();
    let headerLines = 0;
    while (true) {
      const start = i + 1;
      if (start + 2 > view.length) return "wait";
      if (view[start] === 0xff && view[start + 1] === 0xd8) return headerLines === 0;
      // Check the line as it is scanned, so that JPEG bytes are rejected at once instead of after the next LF.
      let colon = -1;
      for (i = start; i < limit && view[i] !== LF; i++) {
        const b = view[i];
        if (b === 0x3a) {
          if (colon < 0) colon = i;
        } else if (b === CR) {
          if (i + 1 < view.length && view[i + 1] !== LF) return false;
        } else if (b === TAB) {
          if (colon < 0) return false;
        } else if (b < 0x20 || b > 0x7e || (b === SPACE && colon < 0)) {
          return false;
        }
      }
      if (i === limit) return short();
      const end = i > start && view[i - 1] === CR ? i - 1 : i;
      if (end === start) {
        // The blank line: real headers before it, or none and the JPEG right after it.
        if (headerLines > 0) return true;
        if (i + 3 > view.length) return "wait";
        return view[i + 1] === 0xff && view[i + 2] === 0xd8;
      }
      if (colon <= start) return false;
      headerLines++;
    }
  }

  #tooLarge(what: string): MjpegEvent {
    return {
      kind: "error",
      reason: "part-too-large",
      message: `part of ${what} is over maxPartBytes (${this.#maxPartBytes}); skipped it ` +
        `(raise the part size limit if the camera really sends frames this large)`,
    };
  }

  #scanBody(state: State & { name: "body-scan" }, events: MjpegEvent[]): boolean {
    const view = this.#window.view();
    const dropping = state.dropping;
    let from = state.scanned;
    while (true) {
      const found = this.#findDelimiter(view, from);
      if ("resume" in found) {
        state.scanned = found.resume;
        break;
      }
      // The JPEG rule (module comment): a delimiter inside a JPEG counts only right after its EOI marker, or
      // when a well-formed part starts after it (the camera cut this frame short).
      // A header that wrote `boundary=--frame` for a body that (per RFC 2046) uses `----frame`: the boundary was
      // stripped to `frame`, so the match is 2 bytes into the delimiter and those dashes are not body bytes.
      const end = found.at >= 2 && view[found.at - 1] === DASH && view[found.at - 2] === DASH
        ? found.at - 2
        : found.at;
      const jpeg = dropping ? dropping.jpeg : end >= 2 && view[0] === 0xff && view[1] === 0xd8;
      let accept = !jpeg || endsWithEoi(view, dropping ? 0 : 2, end);
      if (!accept) {
        const next = this.#partStartsAt(view, found.at + this.#boundary!.length);
        if (next === "wait") {
          state.scanned = found.at;
          break;
        }
        accept = next;
      }
      if (accept) {
        if (dropping) {
          this.#window.consume(end);
          this.#state = MjpegParser.#seek();
          return true;
        }
        const body = trimLineEnd(view.subarray(0, end));
        if (body.length <= this.#maxPartBytes) {
          events.push({ kind: "part", headers: state.headers, body: this.#copy(body) });
          this.#window.consume(end);
          this.#state = MjpegParser.#seek();
          return true;
        }
        // Over the limit, and its end is here: the decision the size check below takes when the bytes come in
        // small pieces, so that the outcome does not depend on the chunking.
        if (this.#unterminated(state, events)) return true;
        events.push(this.#tooLarge(`${body.length} bytes (no Content-Length)`));
        this.#window.consume(end);
        this.#state = MjpegParser.#seek();
        return true;
      }
      if (state.loose < 0) state.loose = found.at;
      from = found.at + 1;
    }
    if (!dropping) {
      // The trailing line break before a delimiter is not part of the body, hence the + 2.
      if (state.scanned <= this.#maxPartBytes + 2) return false;
      if (this.#unterminated(state, events)) return true;
      events.push(this.#tooLarge(`over ${state.scanned} bytes (no Content-Length)`));
      // The rest of the part is skipped by the rules that find its end, without keeping it.
      state.dropping = { jpeg: view[0] === 0xff && view[1] === 0xd8 };
      state.loose = -1;
    }
    // Keep only what the EOI check before a delimiter needs.
    const drop = Math.max(0, state.scanned - (JPEG_MAX_PADDING + 4));
    this.#window.consume(drop);
    state.scanned -= drop;
    return !dropping;
  }

  /** A JPEG over the limit with a delimiter early enough in it: cut there as a truncated frame (module comment). */
  #unterminated(state: State & { name: "body-scan" }, events: MjpegEvent[]): boolean {
    if (state.loose < 0 || state.loose > this.#maxPartBytes + 2) return false;
    events.push({
      kind: "error",
      reason: "unterminated-jpeg",
      message: `a JPEG part without Content-Length reached maxPartBytes (${this.#maxPartBytes}) with no ` +
        `delimiter after an EOI marker (FF D9); dropped its first ${state.loose} bytes as a truncated frame`,
    });
    this.#window.consume(state.loose);
    this.#state = MjpegParser.#seek();
    return true;
  }
}

/** Header lines to a record with lower-case names; repeated names are joined with ", " as HTTP does. */
function parseHeaders(lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue; // not a header (garbage or a folded line): ignoring it beats dropping the frame
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

/** Drops one trailing CRLF or LF: the line break that belongs to the next delimiter, not to the body. */
function trimLineEnd(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === LF) {
    end--;
    if (end > 0 && bytes[end - 1] === CR) end--;
  }
  return bytes.subarray(0, end);
}

/** Bytes as a short quoted string with non-printable bytes escaped, for error messages. */
function printable(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === CR) out += "\\r";
    else if (b === LF) out += "\\n";
    else if (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `"${out}"`;
}
