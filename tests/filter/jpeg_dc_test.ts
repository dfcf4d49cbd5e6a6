import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import {
  decodeColourEighth,
  decodeGreyEighth,
  type GreyImage,
  readJpegInfo,
  type RgbImage,
} from "../../src/filter/jpeg_dc.ts";
import { Rng } from "../../dev/random.ts";
import { concat } from "../support/bytes.ts";
import { jpegFixture, mutatedJpeg, readSamples } from "../support/images.ts";

/**
 * The documented accuracy of decodeGreyEighth against an exact full decode (jpeg-js, luma channel, mean of the
 * 8x8 pixels of each cell). The DC coefficient is the exact mean of the block before the IDCT; the full decode
 * rounds each pixel and clamps ringing at 0 and 255, which moves the mean a little, most in saturated patches.
 * Cells on the right and bottom edge of odd-sized images are compared with the mean of the block padded by
 * repeating the last row and column, which is what libjpeg's encoder codes there.
 */
const MAX_CELL_DIFF = 2;
const MAX_EDGE_CELL_DIFF = 2.5;
const MAX_MEAN_DIFF = 0.5;

/** The real Reachy frames, read from the shared folder (never copied into the repo). */
const SAMPLES = readSamples();

interface Agreement {
  max: number;
  maxEdge: number;
  mean: number;
}

/**
 * Compares with jpeg-js. `lumaScale` is how many output cells one luma block spans per axis (2 when luma is
 * sampled at half the maximum factor).
 */
function agreement(buf: Uint8Array, got: GreyImage, lumaScale = 1): Agreement {
  // colorTransform: false keeps YCbCr as decoded, so channel 0 is the luma plane itself.
  const ref = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, colorTransform: false });
  assert.equal(got.width, Math.ceil(ref.width / 8));
  assert.equal(got.height, Math.ceil(ref.height / 8));
  assert.equal(got.data.length, got.width * got.height);
  const cs = 8 * lumaScale;
  let max = 0;
  let maxEdge = 0;
  let sum = 0;
  for (let y = 0; y < got.height; y++) {
    for (let x = 0; x < got.width; x++) {
      const bx = Math.floor(x / lumaScale) * cs;
      const by = Math.floor(y / lumaScale) * cs;
      let s = 0;
      for (let yy = by; yy < by + cs; yy++) {
        for (let xx = bx; xx < bx + cs; xx++) {
          s += ref.data[(Math.min(yy, ref.height - 1) * ref.width + Math.min(xx, ref.width - 1)) * 3];
        }
      }
      const diff = Math.abs(s / (cs * cs) - got.data[y * got.width + x]);
      const edge = bx + cs > ref.width || by + cs > ref.height;
      if (edge) maxEdge = Math.max(maxEdge, diff);
      else max = Math.max(max, diff);
      sum += diff;
    }
  }
  return { max, maxEdge, mean: sum / (got.width * got.height) };
}

function assertAgrees(name: string, a: Agreement): void {
  assert.ok(a.max <= MAX_CELL_DIFF, `${name}: max cell difference ${a.max.toFixed(2)} > ${MAX_CELL_DIFF}`);
  assert.ok(
    a.maxEdge <= MAX_EDGE_CELL_DIFF,
    `${name}: max edge cell difference ${a.maxEdge.toFixed(2)} > ${MAX_EDGE_CELL_DIFF}`,
  );
  assert.ok(a.mean <= MAX_MEAN_DIFF, `${name}: mean difference ${a.mean.toFixed(3)} > ${MAX_MEAN_DIFF}`);
}

/** The byte offsets of each marker (after fill bytes) in the header and between scans. */
function segments(d: Uint8Array): { marker: number; at: number; end: number }[] {
  const out: { marker: number; at: number; end: number }[] = [];
  let p = 2;
  while (p + 1 < d.length) {
    const m = d[p + 1];
    if (m === 0xd9) {
      out.push({ marker: m, at: p, end: p + 2 });
      break;
    }
    let end = p + 2 + ((d[p + 2] << 8) | d[p + 3]);
    if (m === 0xda) {
      // Entropy data: runs to the next marker that is not RSTn.
      while (!(d[end] === 0xff && d[end + 1] !== 0 && (d[end + 1] < 0xd0 || d[end + 1] > 0xd7))) end++;
    }
    out.push({ marker: m, at: p, end });
    p = end;
  }
  return out;
}

/** The file without the segments of the given markers. */
function without(d: Uint8Array, markers: number[]): Uint8Array {
  const parts = [d.subarray(0, 2)];
  for (const s of segments(d)) if (!markers.includes(s.marker)) parts.push(d.subarray(s.at, s.end));
  return concat(parts);
}

function firstSegment(d: Uint8Array, marker: number): { at: number; end: number } {
  const s = segments(d).find((x) => x.marker === marker);
  assert.ok(s, `no marker 0x${marker.toString(16)}`);
  return s;
}

function throwsSyntax(buf: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeGreyEighth(buf), (e: unknown) => {
    assert.ok(e instanceof SyntaxError, `expected a SyntaxError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

function sameImage(a: GreyImage, b: GreyImage): void {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  assert.deepEqual(a.data, b.data);
}

interface FixtureCase {
  file: string;
  width: number;
  height: number;
  subsampling: string;
  progressive: boolean;
  lumaScale?: number;
}

const FIXTURE_CASES: FixtureCase[] = [
  { file: "baseline_420.jpg", width: 160, height: 120, subsampling: "4:2:0", progressive: false },
  { file: "baseline_422.jpg", width: 160, height: 120, subsampling: "4:2:2", progressive: false },
  { file: "baseline_444.jpg", width: 160, height: 120, subsampling: "4:4:4", progressive: false },
  { file: "baseline_411.jpg", width: 160, height: 120, subsampling: "4:1:1", progressive: false },
  { file: "baseline_440.jpg", width: 160, height: 120, subsampling: "4:4:0", progressive: false },
  { file: "grey.jpg", width: 160, height: 120, subsampling: "grey", progressive: false },
  { file: "optimized_420.jpg", width: 160, height: 120, subsampling: "4:2:0", progressive: false },
  { file: "ffmpeg_422.jpg", width: 160, height: 120, subsampling: "2x2,1x2,1x2", progressive: false },
  {
    file: "sampling_odd.jpg",
    width: 160,
    height: 120,
    subsampling: "1x1,2x2,1x1",
    progressive: false,
    lumaScale: 2,
  },
  {
    file: "sequential_noninterleaved.jpg",
    width: 160,
    height: 120,
    subsampling: "4:2:0",
    progressive: false,
  },
  { file: "progressive_420.jpg", width: 160, height: 120, subsampling: "4:2:0", progressive: true },
  { file: "progressive_grey.jpg", width: 160, height: 120, subsampling: "grey", progressive: true },
  {
    file: "progressive_noninterleaved.jpg",
    width: 160,
    height: 120,
    subsampling: "4:2:0",
    progressive: true,
  },
  { file: "progressive_restart.jpg", width: 160, height: 120, subsampling: "4:2:0", progressive: true },
  { file: "restart_rows.jpg", width: 160, height: 120, subsampling: "4:2:0", progressive: false },
  { file: "restart_5b_422.jpg", width: 100, height: 75, subsampling: "4:2:2", progressive: false },
  { file: "restart_1b_grey.jpg", width: 17, height: 33, subsampling: "grey", progressive: false },
  { file: "odd_1x1.jpg", width: 1, height: 1, subsampling: "4:2:0", progressive: false },
  { file: "odd_7x9.jpg", width: 7, height: 9, subsampling: "4:2:0", progressive: false },
  { file: "odd_17x33.jpg", width: 17, height: 33, subsampling: "4:2:2", progressive: false },
  { file: "odd_17x33_progressive_grey.jpg", width: 17, height: 33, subsampling: "grey", progressive: true },
  { file: "odd_641x479.jpg", width: 641, height: 479, subsampling: "4:2:0", progressive: false },
  { file: "trailing_garbage.jpg", width: 160, height: 120, subsampling: "4:2:0", progressive: false },
];

Deno.test("decodeGreyEighth agrees with a full decode", async (t) => {
  await t.step("on the real 1080p camera frames", () => {
    for (const [i, buf] of SAMPLES.entries()) {
      const got = decodeGreyEighth(buf);
      assert.equal(got.width, 240);
      assert.equal(got.height, 135);
      assertAgrees(`sample ${i}`, agreement(buf, got));
    }
  });

  for (const c of FIXTURE_CASES) {
    await t.step(`on ${c.file} (${c.subsampling}${c.progressive ? ", progressive" : ""})`, () => {
      const buf = jpegFixture(c.file);
      const info = readJpegInfo(buf);
      assert.deepEqual(info, {
        width: c.width,
        height: c.height,
        components: c.subsampling === "grey" ? 1 : 3,
        progressive: c.progressive,
        subsampling: c.subsampling,
      });
      assertAgrees(c.file, agreement(buf, decodeGreyEighth(buf), c.lumaScale));
    });
  }

  await t.step("byte for byte with libjpeg-turbo's 1/8-scale grey output (djpeg -scale 1/8)", () => {
    const expected = JSON.parse(
      Deno.readTextFileSync(new URL("../fixtures/jpeg/libjpeg_eighth.json", import.meta.url)),
    ) as Record<
      string,
      { width: number; height: number; hex: string }
    >;
    const names = Object.keys(expected);
    assert.ok(names.length >= 20, `only ${names.length} expected outputs`);
    for (const name of names) {
      const e = expected[name];
      const got = decodeGreyEighth(jpegFixture(name));
      const hex = [...got.data].map((b) => b.toString(16).padStart(2, "0")).join("");
      assert.deepEqual([got.width, got.height], [e.width, e.height], name);
      assert.equal(hex, e.hex, name);
    }
  });

  await t.step("the same luma coded differently gives the same image", () => {
    // cjpeg codes identical luma whatever the chroma sampling, scan layout or Huffman tables.
    const ref = decodeGreyEighth(jpegFixture("baseline_420.jpg"));
    for (
      const f of [
        "baseline_422.jpg",
        "baseline_444.jpg",
        "optimized_420.jpg",
        "sequential_noninterleaved.jpg",
        "progressive_420.jpg",
        "progressive_noninterleaved.jpg",
        "progressive_restart.jpg",
        "restart_rows.jpg",
        "trailing_garbage.jpg",
      ]
    ) {
      sameImage(decodeGreyEighth(jpegFixture(f)), ref);
    }
  });
});

Deno.test("decodeGreyEighth reads the variants cameras and encoders produce", async (t) => {
  const base = jpegFixture("baseline_420.jpg");
  const ref = decodeGreyEighth(base);

  await t.step("Motion-JPEG without DHT uses the Annex K standard tables", () => {
    const noDht = jpegFixture("no_dht_420.jpg");
    assert.equal(segments(noDht).filter((s) => s.marker === 0xc4).length, 0);
    sameImage(decodeGreyEighth(noDht), ref);
    // Stripping the tables in memory from the original gives the same bytes as the fixture.
    assert.deepEqual(without(base, [0xc4]), noDht);
    // The real camera frames are coded with the Annex K tables too: without their DHT they decode the same.
    for (const real of SAMPLES.slice(0, 2)) {
      sameImage(decodeGreyEighth(without(real, [0xc4])), decodeGreyEighth(real));
    }
  });

  await t.step("all tables in one DHT segment and one DQT segment", () => {
    const segs = segments(base);
    const merged = (marker: number): Uint8Array => {
      const bodies = segs.filter((s) => s.marker === marker).map((s) => base.subarray(s.at + 4, s.end));
      const len = 2 + bodies.reduce((n, b) => n + b.length, 0);
      return concat([new Uint8Array([0xff, marker, len >> 8, len & 255]), ...bodies]);
    };
    const sof = firstSegment(base, 0xc0);
    const rebuilt = concat([
      base.subarray(0, 2),
      merged(0xdb),
      merged(0xc4),
      base.subarray(sof.at, sof.end),
      base.subarray(firstSegment(base, 0xda).at),
    ]);
    sameImage(decodeGreyEighth(rebuilt), ref);
  });

  await t.step("APPn and COM segments anywhere before the scan are skipped", () => {
    // An APP1 of 0xFF bytes (as EXIF data may hold) and a COM holding what looks like an EOI marker.
    const app1 = new Uint8Array(3000).fill(0xff);
    app1.set([0xff, 0xe1, (3000 - 2) >> 8, (3000 - 2) & 255]);
    const com = new Uint8Array([0xff, 0xfe, 0, 7, 0x68, 0x69, 0xff, 0xd9, 0]);
    const sos = firstSegment(base, 0xda);
    const withSegs = concat([
      base.subarray(0, 2),
      app1,
      base.subarray(2, sos.at),
      com,
      base.subarray(sos.at),
    ]);
    sameImage(decodeGreyEighth(withSegs), ref);
  });

  await t.step("fill bytes 0xFF before markers, restart markers included", () => {
    const rst = jpegFixture("restart_rows.jpg");
    const fill = new Uint8Array([0xff, 0xff, 0xff]);
    const parts: Uint8Array[] = [rst.subarray(0, 2)];
    for (const s of segments(rst)) {
      parts.push(fill);
      if (s.marker !== 0xda) {
        parts.push(rst.subarray(s.at, s.end));
        continue;
      }
      // Inside the entropy data, put fill bytes before each RSTn too.
      let from = s.at;
      for (let i = s.at + 2; i < s.end - 1; i++) {
        if (rst[i] === 0xff && rst[i + 1] >= 0xd0 && rst[i + 1] <= 0xd7) {
          parts.push(rst.subarray(from, i), fill);
          from = i;
        }
      }
      parts.push(rst.subarray(from, s.end));
    }
    const filled = concat(parts);
    assert.ok(filled.length > rst.length + 3 * 15);
    sameImage(decodeGreyEighth(filled), ref);
  });

  await t.step("garbage after EOI is ignored", () => {
    const trailing = jpegFixture("trailing_garbage.jpg");
    assert.ok(trailing.length > base.length);
    sameImage(decodeGreyEighth(trailing), ref);
  });

  await t.step("output size is ceil(W/8) x ceil(H/8) for odd sizes", () => {
    for (
      const [f, w, h] of [["odd_1x1.jpg", 1, 1], ["odd_7x9.jpg", 1, 2], ["odd_17x33.jpg", 3, 5]] as const
    ) {
      const g = decodeGreyEighth(jpegFixture(f));
      assert.equal(g.width, w, f);
      assert.equal(g.height, h, f);
    }
    const big = decodeGreyEighth(jpegFixture("odd_641x479.jpg"));
    assert.equal(big.width, 81);
    assert.equal(big.height, 60);
  });

  await t.step("readJpegInfo reads the real frames without decoding", () => {
    assert.deepEqual(readJpegInfo(SAMPLES[0]), {
      width: 1920,
      height: 1080,
      components: 3,
      progressive: false,
      subsampling: "4:2:0",
    });
  });
});

Deno.test("decodeGreyEighth refuses what it cannot read", async (t) => {
  const base = jpegFixture("baseline_420.jpg");
  const sof = firstSegment(base, 0xc0);

  await t.step("empty input and other formats", () => {
    throwsSyntax(new Uint8Array(0), /^not a JPEG: no SOI marker \(empty input\)/);
    throwsSyntax(new Uint8Array([0xff]), /^not a JPEG/);
    throwsSyntax(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), /^not a JPEG.*0x89/);
    throwsSyntax(new TextEncoder().encode("<html>hello</html>"), /^not a JPEG/);
    assert.throws(() => readJpegInfo(new Uint8Array(0)), SyntaxError);
  });

  await t.step("truncated at every position", () => {
    // Every prefix of small fixtures, and prefixes at a stride of the larger ones; the full file minus its EOI
    // counts as truncated too (the last entropy byte may hold only padding bits).
    const cases: [string, number][] = [
      ["odd_17x33.jpg", 1],
      ["restart_1b_grey.jpg", 1],
      ["odd_17x33_progressive_grey.jpg", 1],
      ["baseline_420.jpg", 13],
      ["progressive_420.jpg", 13],
      ["restart_rows.jpg", 29],
      ["sequential_noninterleaved.jpg", 31],
    ];
    for (const [f, step] of cases) {
      const d = jpegFixture(f);
      for (let len = 2; len < d.length; len += step) {
        throwsSyntax(d.subarray(0, len), /^truncated JPEG: /);
      }
      throwsSyntax(d.subarray(0, d.length - 2), /^truncated JPEG: /);
    }
    const real = SAMPLES[0];
    throwsSyntax(
      real.subarray(0, 100_000),
      /^truncated JPEG: entropy data of scan 1 ends in MCU \d+ of 8160$/,
    );
  });

  await t.step("corrupt Huffman data", () => {
    // All-ones bits (0xFF 0x00 stuffed pairs) are no code of any JPEG Huffman table.
    const sos = firstSegment(base, 0xda);
    const scanStart = sos.at + 2 + ((base[sos.at + 2] << 8) | base[sos.at + 3]);
    const bad = base.slice();
    for (let i = scanStart; i < scanStart + 40; i += 2) {
      bad[i] = 0xff;
      bad[i + 1] = 0x00;
    }
    throwsSyntax(bad, /^bad Huffman code in scan 1 at byte \d+$/);
  });

  await t.step("unsupported processes and precisions", () => {
    throwsSyntax(jpegFixture("arithmetic.jpg"), /^unsupported JPEG: arithmetic coding \(SOF9\)$/);
    const lossless = base.slice();
    lossless[sof.at + 1] = 0xc3;
    throwsSyntax(lossless, /^unsupported JPEG: lossless \(SOF3\)$/);
    const hier = base.slice();
    hier[sof.at + 1] = 0xc5;
    throwsSyntax(hier, /^unsupported JPEG: hierarchical/);
    const twelve = base.slice();
    twelve[sof.at + 4] = 12;
    throwsSyntax(twelve, /^unsupported JPEG: 12-bit precision \(SOF0\)$/);
    assert.throws(() => readJpegInfo(twelve), /12-bit precision/);
  });

  await t.step("zero and enormous dimensions", () => {
    const setSize = (w: number, h: number): Uint8Array => {
      const d = base.slice();
      d[sof.at + 5] = h >> 8;
      d[sof.at + 6] = h & 255;
      d[sof.at + 7] = w >> 8;
      d[sof.at + 8] = w & 255;
      return d;
    };
    throwsSyntax(setSize(0, 120), /^unsupported JPEG: zero dimension 0x120/);
    throwsSyntax(setSize(160, 0), /^unsupported JPEG: zero dimension 160x0/);
    throwsSyntax(setSize(20000, 100), /^unsupported JPEG: 20000x100 exceeds the 16384x16384 limit$/);
    // Within the limit, but a 10 KB body cannot hold 4 million blocks: refused before allocating the plane.
    throwsSyntax(
      setSize(16000, 16000),
      /^truncated JPEG: 16000x16000 needs 4000000 luma blocks but only \d+ bytes .* \(or the size is wrong\)$/,
    );
    // The same with the body cut to a few bytes.
    const tiny = concat([setSize(16384, 16384).subarray(0, firstSegment(base, 0xda).end), new Uint8Array(8)]);
    throwsSyntax(tiny, /needs 4194304 luma blocks/);
  });

  await t.step("missing SOF, SOS, DQT and Huffman tables", () => {
    throwsSyntax(without(base, [0xc0]), /^corrupt JPEG: SOS before any SOF/);
    throwsSyntax(without(base, [0xda]), /^corrupt JPEG: EOI before any SOS/);
    throwsSyntax(without(base, [0xdb]), /^corrupt JPEG: missing DQT table 0 for component 1$/);
    const slot2 = base.slice();
    const sos = firstSegment(base, 0xda);
    slot2[sos.at + 6] = 0x22; // luma uses DC and AC tables 2, never defined and with no standard default
    throwsSyntax(slot2, /^corrupt JPEG: scan 1 uses undefined DC Huffman table 2$/);
    const unknown = base.slice();
    unknown[sos.at + 5] = 9; // the scan names a component the frame does not have
    throwsSyntax(unknown, /names unknown or repeated component 9/);
    // One scan per component: drop the luma scan, keep the chroma ones.
    const seq = jpegFixture("sequential_noninterleaved.jpg");
    const chromaOnly = concat([
      seq.subarray(0, 2),
      ...segments(seq).filter((x) => !(x.marker === 0xda && seq[x.at + 5] === 1)).map((x) =>
        seq.subarray(x.at, x.end)
      ),
    ]);
    assert.ok(chromaOnly.length < seq.length - 1000);
    throwsSyntax(chromaOnly, /^corrupt JPEG: no scan carries the luma DC coefficients$/);
  });

  await t.step("bad tables and markers", () => {
    const dht = firstSegment(base, 0xc4);
    const overfull = base.slice();
    overfull.set([3, 0, 3], dht.at + 5); // three 1-bit codes (same total count as before)
    throwsSyntax(overfull, /^bad Huffman table in DHT at byte \d+: too many codes of length 1$/);
    const rst = jpegFixture("restart_rows.jpg").slice();
    const rstAt = rst.findIndex((b, i) => b === 0xff && rst[i + 1] === 0xd1);
    rst[rstAt + 1] = 0xd5;
    throwsSyntax(
      rst,
      /^corrupt JPEG: expected RST1 before MCU 20 of 80 in scan 1, found RST5 at byte \d+$/,
    );
    const sof2 = base.slice();
    sof2.set([0xff, 0xd8], firstSegment(base, 0xdb).at);
    throwsSyntax(sof2, /^corrupt JPEG: a second SOI marker$/);
    const junk = base.slice();
    junk[sof.at] = 0x12;
    throwsSyntax(junk, /^corrupt JPEG: expected a marker at byte \d+, found 0x12$/);
  });
});

Deno.test("decodeGreyEighth throws only SyntaxError or RangeError on arbitrary bytes", () => {
  // A bounded fuzz: random buffers, then real frames and fixtures with bytes changed, inserted, deleted or cut.
  // Whatever the input, the decoder must return or throw a SyntaxError/RangeError, never hang or crash.
  const rng = new Rng(0x9e3779b9);
  const sources = [
    SAMPLES[0],
    ...["baseline_420.jpg", "progressive_420.jpg", "restart_5b_422.jpg", "grey.jpg", "no_dht_420.jpg"].map(
      jpegFixture,
    ),
  ];
  const check = (buf: Uint8Array): void => {
    try {
      const g = decodeGreyEighth(buf);
      assert.equal(g.data.length, g.width * g.height);
    } catch (e) {
      if (!(e instanceof SyntaxError) && !(e instanceof RangeError)) {
        throw new Error(`unexpected ${e} for input of ${buf.length} bytes`, { cause: e });
      }
    }
    // The colour decode reads the same bytes with more of its paths (chroma-only scans): the same promise.
    try {
      const c = decodeColourEighth(buf);
      assert.equal(c.data.length, c.width * c.height * 3);
    } catch (e) {
      if (!(e instanceof SyntaxError) && !(e instanceof RangeError)) {
        throw new Error(`unexpected ${e} from the colour decode for input of ${buf.length} bytes`, {
          cause: e,
        });
      }
    }
  };
  const deadline = performance.now() + 3000;
  let runs = 0;
  while (performance.now() < deadline) {
    runs++;
    if (runs % 8 === 0) {
      const buf = new Uint8Array(rng.int(2000));
      for (let i = 0; i < buf.length; i++) buf[i] = rng.int(256);
      if (buf.length > 2 && rng.int(2) === 0) buf.set([0xff, 0xd8]);
      check(buf);
      continue;
    }
    const buf = mutatedJpeg(rng, sources[rng.int(sources.length)]);
    check(buf);
  }
  assert.ok(runs > 100, `only ${runs} fuzz runs in 3 s`);
});

// ---------------------------------------------------------------------------------------------------------------
// Colour

/**
 * The documented accuracy of decodeColourEighth against a full colour decode (jpeg-js, RGB), compared per region
 * of 32x16 pixels (a whole number of MCUs for every sampling here): the region's mean of each channel in the full
 * decode, and the mean of the output pixels over it, each weighted by how many of its pixels lie in the image.
 * The DC values are exact block means of Y, Cb and Cr, and the colour conversion is linear, so the means agree
 * up to the full decode's rounding and its clamping at 0 and 255 (saturated patches); regions on the right and
 * bottom edge differ more where the encoder padded a partial MCU's chroma with repeated edge pixels.
 */
const MAX_REGION_DIFF = 8;
const MAX_EDGE_REGION_DIFF = 16;
const MAX_MEAN_REGION_DIFF = 1.5;
const REGION_W = 32;
const REGION_H = 16;

function colourAgreement(buf: Uint8Array, got: RgbImage): Agreement {
  const ref = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  assert.equal(got.width, Math.ceil(ref.width / 8));
  assert.equal(got.height, Math.ceil(ref.height / 8));
  assert.equal(got.data.length, got.width * got.height * 3);
  let max = 0;
  let maxEdge = 0;
  let sum = 0;
  let count = 0;
  for (let ry = 0; ry < ref.height; ry += REGION_H) {
    for (let rx = 0; rx < ref.width; rx += REGION_W) {
      const edge = rx + REGION_W > ref.width || ry + REGION_H > ref.height;
      for (let ch = 0; ch < 3; ch++) {
        let full = 0, fullN = 0, dc = 0, dcN = 0;
        for (let y = ry; y < Math.min(ref.height, ry + REGION_H); y++) {
          for (let x = rx; x < Math.min(ref.width, rx + REGION_W); x++) {
            full += ref.data[(y * ref.width + x) * 3 + ch];
            fullN++;
          }
        }
        for (let y = ry / 8; y < Math.min(got.height, (ry + REGION_H) / 8); y++) {
          for (let x = rx / 8; x < Math.min(got.width, (rx + REGION_W) / 8); x++) {
            const w = (Math.min(ref.width, x * 8 + 8) - x * 8) * (Math.min(ref.height, y * 8 + 8) - y * 8);
            dc += w * got.data[(y * got.width + x) * 3 + ch];
            dcN += w;
          }
        }
        const diff = Math.abs(full / fullN - dc / dcN);
        if (edge) maxEdge = Math.max(maxEdge, diff);
        else max = Math.max(max, diff);
        sum += diff;
        count++;
      }
    }
  }
  return { max, maxEdge, mean: sum / count };
}

function assertColourAgrees(name: string, a: Agreement): void {
  assert.ok(
    a.max <= MAX_REGION_DIFF,
    `${name}: max region difference ${a.max.toFixed(2)} > ${MAX_REGION_DIFF}`,
  );
  assert.ok(
    a.maxEdge <= MAX_EDGE_REGION_DIFF,
    `${name}: max edge region difference ${a.maxEdge.toFixed(2)} > ${MAX_EDGE_REGION_DIFF}`,
  );
  assert.ok(
    a.mean <= MAX_MEAN_REGION_DIFF,
    `${name}: mean region difference ${a.mean.toFixed(3)} > ${MAX_MEAN_REGION_DIFF}`,
  );
}

function sameRgb(a: RgbImage, b: RgbImage, name: string): void {
  assert.deepEqual([a.width, a.height], [b.width, b.height], name);
  assert.ok(a.data.every((v, i) => v === b.data[i]), `${name}: pixels differ`);
}

Deno.test("decodeColourEighth agrees with a full colour decode", async (t) => {
  await t.step("on the real 1080p camera frames", () => {
    for (const [i, buf] of SAMPLES.entries()) {
      const got = decodeColourEighth(buf);
      assert.deepEqual([got.width, got.height], [240, 135]);
      assertColourAgrees(`sample ${i}`, colourAgreement(buf, got));
    }
  });

  // 4:2:0, 4:2:2, 4:4:4, 4:1:1, 4:4:0, ffmpeg's 2x2,1x2,1x2, luma below chroma, greyscale; progressive and
  // non-interleaved scans; restarts; odd sizes (a 7x9 or 1x1 image is all edge: its one region is checked).
  for (const c of FIXTURE_CASES) {
    await t.step(`on ${c.file} (${c.subsampling}${c.progressive ? ", progressive" : ""})`, () => {
      const buf = jpegFixture(c.file);
      const a = colourAgreement(buf, decodeColourEighth(buf));
      if (c.width < 16 || c.height < 16) {
        // Chroma of a partial MCU is mostly padding; only the mean of the whole image is meaningful.
        assert.ok(a.mean <= 60, `${c.file}: ${a.mean}`);
      } else assertColourAgrees(c.file, a);
    });
  }

  await t.step("greyscale gives grey pixels, the grey decode's exactly", () => {
    for (
      const f of ["grey.jpg", "progressive_grey.jpg", "restart_1b_grey.jpg", "odd_17x33_progressive_grey.jpg"]
    ) {
      const grey = decodeGreyEighth(jpegFixture(f));
      const colour = decodeColourEighth(jpegFixture(f));
      assert.deepEqual([colour.width, colour.height], [grey.width, grey.height]);
      for (let i = 0; i < grey.data.length; i++) {
        assert.deepEqual([...colour.data.subarray(3 * i, 3 * i + 3)], [
          grey.data[i],
          grey.data[i],
          grey.data[i],
        ]);
      }
    }
  });

  await t.step("the same coefficients coded differently give the same colour image", () => {
    // Sequential non-interleaved scans, progressive DC first and refinement scans of each component (interleaved
    // or not), restart markers, optimized or missing Huffman tables: cjpeg codes the same DC values in each.
    const ref = decodeColourEighth(jpegFixture("baseline_420.jpg"));
    for (
      const f of [
        "optimized_420.jpg",
        "no_dht_420.jpg",
        "sequential_noninterleaved.jpg",
        "progressive_420.jpg",
        "progressive_noninterleaved.jpg",
        "progressive_restart.jpg",
        "restart_rows.jpg",
        "trailing_garbage.jpg",
      ]
    ) {
      sameRgb(decodeColourEighth(jpegFixture(f)), ref, f);
    }
    // The luma of the colour image is the grey decode (to the rounding of the conversion both ways).
    const grey = decodeGreyEighth(jpegFixture("baseline_420.jpg"));
    for (let i = 0; i < grey.data.length; i++) {
      const [r, g, b] = ref.data.subarray(3 * i, 3 * i + 3);
      const y = 0.299 * r + 0.587 * g + 0.114 * b;
      // Where a channel was clamped the luma moved; elsewhere it is the same to rounding.
      if (Math.max(r, g, b) < 255 && Math.min(r, g, b) > 0) {
        assert.ok(Math.abs(y - grey.data[i]) <= 1.5, `pixel ${i}: ${y} vs ${grey.data[i]}`);
      }
    }
  });

  await t.step("an Adobe APP14 segment with transform 0 means the components are R, G, B", () => {
    const base = jpegFixture("baseline_444.jpg");
    const app14 = new Uint8Array([
      0xff,
      0xee,
      0x00,
      0x0e,
      ...new TextEncoder().encode("Adobe"),
      0x00,
      0x64,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
    ]);
    const asRgb = decodeColourEighth(concat([base.subarray(0, 2), app14, base.subarray(2)]));
    const asYcc = decodeColourEighth(base);
    // The same levels, now taken as R, G, B: converting them as Y, Cb, Cr gives the YCbCr reading back.
    const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
    for (let i = 0; i < asRgb.data.length; i += 3) {
      const [y, cb, cr] = asRgb.data.subarray(i, i + 3);
      const expected = [
        clamp(y + 1.402 * (cr - 128)),
        clamp(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)),
        clamp(y + 1.772 * (cb - 128)),
      ];
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(expected[c] - asYcc.data[i + c]) <= 1, `at ${i / 3}`);
    }
    // And its first channel is the luma, exactly.
    const grey = decodeGreyEighth(base);
    for (let i = 0; i < grey.data.length; i++) assert.equal(asRgb.data[3 * i], grey.data[i]);
  });

  await t.step("refuses broken files as the grey decode does", () => {
    const d = jpegFixture("progressive_420.jpg");
    for (let len = 2; len < d.length; len += 97) {
      assert.throws(() => decodeColourEighth(d.subarray(0, len)), (e) => e instanceof SyntaxError);
    }
    assert.throws(() => decodeColourEighth(new Uint8Array(0)), /not a JPEG/);
    assert.throws(() => decodeColourEighth(jpegFixture("arithmetic.jpg")), /arithmetic coding/);
  });
});
