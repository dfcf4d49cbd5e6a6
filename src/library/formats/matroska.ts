/**
 * A minimal Matroska stream of JPEG frames (`V_MJPEG`), each at its own time in milliseconds: how the MP4 export
 * hands frames to ffmpeg with their capture times (image2pipe knows only a constant frame rate). The stream is
 * written front to back with no seeking: an EBML header, a Segment of unknown size, the segment info (1 ms
 * timestamps), one video track, then one Cluster per frame holding the frame as a SimpleBlock, or, for a frame
 * that has a duration (the last one), as a BlockGroup with a BlockDuration. ffmpeg's matroska demuxer reads it
 * from a pipe. Element ids and layout: the Matroska specification (RFC 9559).
 */

import { concatBytes } from "../../bytes.ts";

const encoder = new TextEncoder();

const ID = {
  EBML: [0x1a, 0x45, 0xdf, 0xa3],
  EBMLVersion: [0x42, 0x86],
  EBMLReadVersion: [0x42, 0xf7],
  EBMLMaxIDLength: [0x42, 0xf2],
  EBMLMaxSizeLength: [0x42, 0xf3],
  DocType: [0x42, 0x82],
  DocTypeVersion: [0x42, 0x87],
  DocTypeReadVersion: [0x42, 0x85],
  Segment: [0x18, 0x53, 0x80, 0x67],
  Info: [0x15, 0x49, 0xa9, 0x66],
  TimestampScale: [0x2a, 0xd7, 0xb1],
  MuxingApp: [0x4d, 0x80],
  WritingApp: [0x57, 0x41],
  Tracks: [0x16, 0x54, 0xae, 0x6b],
  TrackEntry: [0xae],
  TrackNumber: [0xd7],
  TrackUID: [0x73, 0xc5],
  TrackType: [0x83],
  FlagLacing: [0x9c],
  CodecID: [0x86],
  Video: [0xe0],
  PixelWidth: [0xb0],
  PixelHeight: [0xba],
  Cluster: [0x1f, 0x43, 0xb6, 0x75],
  Timestamp: [0xe7],
  SimpleBlock: [0xa3],
  BlockGroup: [0xa0],
  Block: [0xa1],
  BlockDuration: [0x9b],
} as const;

/** An EBML variable-length size: the shortest form (1 to 8 bytes) that holds `n`. */
export function vint(n: number): Uint8Array {
  for (let len = 1; len <= 8; len++) {
    // All ones is reserved (unknown size), so the largest value of a length is 2^(7*len) - 2.
    if (n < 2 ** (7 * len) - 1) {
      const out = new Uint8Array(len);
      let v = n;
      for (let i = len - 1; i >= 0; i--) {
        out[i] = v % 256;
        v = Math.floor(v / 256);
      }
      out[0] |= 1 << (8 - len);
      return out;
    }
  }
  throw new RangeError(`${n} is too large for an EBML size`);
}

/** An unsigned integer in as few big-endian bytes as it needs (at least one). */
function uintBytes(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${n} is not an unsigned integer`);
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v % 256);
    v = Math.floor(v / 256);
  } while (v > 0);
  return Uint8Array.from(bytes);
}

function element(id: readonly number[], ...body: Uint8Array[]): Uint8Array {
  const data = concatBytes(body);
  return concatBytes([Uint8Array.from(id), vint(data.length), data]);
}

const uint = (id: readonly number[], n: number) => element(id, uintBytes(n));
const str = (id: readonly number[], s: string) => element(id, encoder.encode(s));

/** The head of the stream: EBML header, the start of a Segment of unknown size, its info and its one track. */
export function matroskaHead(width: number, height: number, app = "frame-bucket"): Uint8Array {
  const header = element(
    ID.EBML,
    uint(ID.EBMLVersion, 1),
    uint(ID.EBMLReadVersion, 1),
    uint(ID.EBMLMaxIDLength, 4),
    uint(ID.EBMLMaxSizeLength, 8),
    str(ID.DocType, "matroska"),
    uint(ID.DocTypeVersion, 4),
    uint(ID.DocTypeReadVersion, 2),
  );
  const segmentStart = concatBytes([
    Uint8Array.from(ID.Segment),
    Uint8Array.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // unknown size: the stream ends it
  ]);
  const info = element(
    ID.Info,
    uint(ID.TimestampScale, 1_000_000), // ticks of 1 ms
    str(ID.MuxingApp, app),
    str(ID.WritingApp, app),
  );
  const tracks = element(
    ID.Tracks,
    element(
      ID.TrackEntry,
      uint(ID.TrackNumber, 1),
      uint(ID.TrackUID, 1),
      uint(ID.TrackType, 1), // video
      uint(ID.FlagLacing, 0),
      str(ID.CodecID, "V_MJPEG"),
      element(ID.Video, uint(ID.PixelWidth, width), uint(ID.PixelHeight, height)),
    ),
  );
  return concatBytes([header, segmentStart, info, tracks]);
}

/**
 * One frame as a Cluster at `timeMs` (ms from the start of the stream). With `durationMs`, the frame is shown
 * that long (a BlockGroup with a BlockDuration): the last frame's, so the video does not end the moment it shows.
 * The JPEG bytes are not copied: the result is the pieces to write in order.
 */
export function matroskaFrame(jpeg: Uint8Array, timeMs: number, durationMs?: number): Uint8Array[] {
  // Block header: track number 1 as a vint, relative timestamp 0 (int16), flags (keyframe for a SimpleBlock).
  const blockHead = (flags: number) => Uint8Array.from([0x81, 0, 0, flags]);
  const timestamp = uint(ID.Timestamp, timeMs);
  if (durationMs === undefined) {
    const blockSize = 4 + jpeg.length;
    const blockIntro = concatBytes([Uint8Array.from(ID.SimpleBlock), vint(blockSize), blockHead(0x80)]);
    const clusterSize = timestamp.length + blockIntro.length + jpeg.length;
    return [concatBytes([Uint8Array.from(ID.Cluster), vint(clusterSize), timestamp, blockIntro]), jpeg];
  }
  const blockIntro = concatBytes([Uint8Array.from(ID.Block), vint(4 + jpeg.length), blockHead(0)]);
  const duration = uint(ID.BlockDuration, durationMs);
  const groupSize = blockIntro.length + jpeg.length + duration.length;
  const groupIntro = concatBytes([Uint8Array.from(ID.BlockGroup), vint(groupSize), blockIntro]);
  const clusterSize = timestamp.length + groupIntro.length + jpeg.length + duration.length;
  return [
    concatBytes([Uint8Array.from(ID.Cluster), vint(clusterSize), timestamp, groupIntro]),
    jpeg,
    duration,
  ];
}
