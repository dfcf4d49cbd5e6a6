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

/** Wraps a JPEG; the result is a new buffer of 16 + jpeg.length bytes. */
export function encodeFrame(timestampMs: number, seq: number, jpeg: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(timestampMs)) {
    throw new RangeError(`frame timestamp ${timestampMs} is not an integer`);
  }
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new RangeError(`frame sequence ${seq} is not a non-negative integer`);
  }
  const out = new Uint8Array(HEADER_BYTES + jpeg.length);
  const view = new DataView(out.buffer);
  view.setBigInt64(0, BigInt(timestampMs));
  view.setBigUint64(8, BigInt(seq));
  out.set(jpeg, HEADER_BYTES);
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
