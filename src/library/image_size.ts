/**
 * The pixel size of a stored JPEG, read from its frame header only. Boxes are checked against this size, and the
 * server never takes it from a client: a box outside the real image would make every export of it wrong.
 */
import { BadInputError } from "../errors.ts";

/** Width and height in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC): every frame header of every JPEG process. */
function isSof(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/**
 * Reads {width, height} from the first SOF marker of a JPEG. Walks the marker segments only (no entropy data is
 * read), so it costs a few hundred bytes of a multi-megabyte frame. Throws BadInputError when the bytes are not
 * a JPEG, end before a frame header, or the header gives a zero size (a DNL-defined height, which no camera of
 * this project writes).
 */
export function jpegSize(bytes: Uint8Array): ImageSize {
  const d = bytes;
  const n = d.length;
  if (n < 2 || d[0] !== 0xff || d[1] !== 0xd8) {
    throw new BadInputError(
      `not a JPEG: no SOI marker at the start (${n === 0 ? "empty" : `${n} bytes`}); store frames as JPEG`,
    );
  }
  let pos = 2;
  while (pos < n) {
    if (d[pos] !== 0xff) {
      throw new BadInputError(
        `corrupt JPEG: expected a marker at byte ${pos} before the frame header; the file is damaged`,
      );
    }
    // Any number of 0xFF fill bytes may precede a marker code.
    let p = pos + 1;
    while (p < n && d[p] === 0xff) p++;
    if (p >= n) break;
    const m = d[p];
    pos = p + 1;
    // Standalone markers (TEM, RSTn) carry no length.
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;
    if (m === 0xd9 || m === 0xda) break; // EOI or a scan before any frame header
    if (pos + 2 > n) break;
    const len = (d[pos] << 8) | d[pos + 1];
    if (len < 2) {
      throw new BadInputError(
        `corrupt JPEG: segment at byte ${p - 1} has length ${len}; the file is damaged`,
      );
    }
    if (isSof(m)) {
      // Segment: length (2), precision (1), height (2), width (2), components...
      if (pos + 7 > n || len < 7) break;
      const height = (d[pos + 3] << 8) | d[pos + 4];
      const width = (d[pos + 5] << 8) | d[pos + 6];
      if (width === 0 || height === 0) {
        throw new BadInputError(
          `JPEG frame header gives a size of ${width}x${height}: the size is not in the header (DNL) or the ` +
            `file is damaged; re-encode the frame`,
        );
      }
      return { width, height };
    }
    pos += len;
  }
  throw new BadInputError(
    `JPEG of ${n} bytes has no frame header (SOF marker) before its data ends; the file is truncated or damaged`,
  );
}
