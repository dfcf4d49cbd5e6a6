/**
 * The wire format of one camera frame on Kafka, byte-identical to the original Rust TimestampedFrame:
 *
 *   bytes 0..8   capture time, milliseconds since the Unix epoch, signed 64-bit big-endian
 *   bytes 8..16  sequence number, unsigned 64-bit big-endian
 *   bytes 16..   the JPEG, unchanged
 */

export const HEADER_BYTES = 16;

export interface Frame {
  /** Capture time in ms since the epoch (UTC). */
  timestampMs: number;
  /** Per-producer sequence number, counting from 0 at producer start. */
  seq: number;
  /** The JPEG bytes: a view into the message, not a copy. */
  jpeg: Uint8Array;
}

/**
 * Buffers made by `allocateFrame`: they hold HEADER_BYTES of free room before the JPEG, where `encodeFrame` writes
 * the header instead of copying the JPEG into a new buffer.
 */
const withHeadroom = new WeakSet<ArrayBuffer>();
/** Buffers of frames already sent, kept for the next frames: a producer then allocates nothing per frame. */
const spare: ArrayBuffer[] = [];
/** At most this many spare buffers are kept (a few frames' worth; the queue may hold many more while Kafka is away). */
const MAX_SPARE = 4;
/** Buffers are made in steps of this size, so that frames of slightly different sizes can share them. */
const SIZE_STEP = 16 * 1024;

/**
 * A buffer for a JPEG of `length` bytes with room for the frame header in front (see encodeFrame), reusing one of
 * a frame `releaseFrame` gave back when one is large enough (and not more than twice as large).
 */
export function allocateFrame(length: number): Uint8Array {
  const need = HEADER_BYTES + length;
  for (let i = spare.length - 1; i >= 0; i--) {
    const buffer = spare[i];
    if (buffer.byteLength >= need && buffer.byteLength <= 2 * need + SIZE_STEP) {
      spare.splice(i, 1);
      return new Uint8Array(buffer, HEADER_BYTES, length);
    }
  }
  const buffer = new ArrayBuffer(Math.ceil(need / SIZE_STEP) * SIZE_STEP);
  withHeadroom.add(buffer);
  return new Uint8Array(buffer, HEADER_BYTES, length);
}

/**
 * Hands a frame's buffer back for reuse by `allocateFrame`, once nothing reads the frame any more (Kafka
 * acknowledged it, or it was dropped). Bytes of other origins are ignored.
 */
export function releaseFrame(bytes: Uint8Array): void {
  const buffer = bytes.buffer as ArrayBuffer;
  if (!withHeadroom.has(buffer) || spare.length >= MAX_SPARE || spare.includes(buffer)) return;
  spare.push(buffer);
}

/**
 * Wraps a JPEG: 16 + jpeg.length bytes. A JPEG from `allocateFrame` gets the header written in front of it, in
 * the same buffer (no copy); any other JPEG is copied into a new buffer.
 */
export function encodeFrame(timestampMs: number, seq: number, jpeg: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(timestampMs)) {
    throw new RangeError(`frame timestamp ${timestampMs} is not an integer`);
  }
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new RangeError(`frame sequence ${seq} is not a non-negative integer`);
  }
  const inPlace = jpeg.byteOffset === HEADER_BYTES && withHeadroom.has(jpeg.buffer as ArrayBuffer);
  const out = inPlace
    ? new Uint8Array(jpeg.buffer, 0, HEADER_BYTES + jpeg.length)
    : new Uint8Array(HEADER_BYTES + jpeg.length);
  const view = new DataView(out.buffer, out.byteOffset, HEADER_BYTES);
  // Two 32-bit halves rather than setBigInt64: no BigInt per frame.
  view.setInt32(0, Math.floor(timestampMs / 0x1_0000_0000));
  view.setUint32(4, timestampMs >>> 0);
  view.setUint32(8, Math.floor(seq / 0x1_0000_0000));
  view.setUint32(12, seq >>> 0);
  if (!inPlace) out.set(jpeg, HEADER_BYTES);
  return out;
}

/** Reads a frame without copying the JPEG. Throws SyntaxError for a message too short to hold the header. */
export function decodeFrame(message: Uint8Array): Frame {
  if (message.length < HEADER_BYTES) {
    throw new SyntaxError(`frame is ${message.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  }
  const view = new DataView(message.buffer, message.byteOffset, HEADER_BYTES);
  const ts = view.getBigInt64(0);
  const seq = view.getBigUint64(8);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER) || ts < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`frame timestamp ${ts} ms is out of range`);
  }
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`frame sequence ${seq} is out of range`);
  return { timestampMs: Number(ts), seq: Number(seq), jpeg: message.subarray(HEADER_BYTES) };
}
