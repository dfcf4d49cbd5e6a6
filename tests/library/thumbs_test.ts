/** Colour thumbnails: they look like the frame (region colours of a full decode), shrink wide frames, cache. */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import {
  ByteLru,
  makeThumbnail,
  MAX_THUMB_WIDTH,
  thumbnailImage,
  Thumbnails,
} from "../../src/library/thumbs.ts";
import { greyJpeg, readSamples } from "../support/images.ts";

const SAMPLES = readSamples();

/** Mean R, G, B of each cell of a `cols` x `rows` grid over an RGB(A) raster. */
function regionMeans(
  img: { width: number; height: number; data: Uint8Array },
  channels: number,
  cols: number,
  rows: number,
): number[][] {
  const out: number[][] = [];
  for (let gy = 0; gy < rows; gy++) {
    for (let gx = 0; gx < cols; gx++) {
      const x0 = Math.floor((gx * img.width) / cols), x1 = Math.floor(((gx + 1) * img.width) / cols);
      const y0 = Math.floor((gy * img.height) / rows), y1 = Math.floor(((gy + 1) * img.height) / rows);
      const sum = [0, 0, 0];
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          for (let c = 0; c < 3; c++) sum[c] += img.data[(y * img.width + x) * channels + c];
        }
      }
      const n = (x1 - x0) * (y1 - y0);
      out.push(sum.map((s) => s / n));
    }
  }
  return out;
}

/** A JPEG whose colour is a function of the position (jpeg-js codes it 4:4:4). */
function colourJpeg(width: number, height: number, colour: (x: number, y: number) => number[]): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      data.set([...colour(x, y), 255], (y * width + x) * 4);
    }
  }
  return new Uint8Array(jpeg.encode({ data, width, height }, 90).data);
}

Deno.test("a thumbnail of a real frame has the frame's colours, region by region", () => {
  // 12x9 regions of 160x120 frame pixels (20x15 thumbnail pixels): each region's mean colour in the thumbnail
  // (after its own JPEG coding) against a full decode of the frame.
  let worst = 0;
  let colourful = 0;
  for (const [i, frame] of SAMPLES.entries()) {
    const thumb = jpeg.decode(makeThumbnail(frame), { useTArray: true, formatAsRGBA: false });
    assert.deepEqual([thumb.width, thumb.height], [240, 135]);
    const full = jpeg.decode(frame, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    const want = regionMeans(full, 3, 12, 9);
    const got = regionMeans(thumb, 3, 12, 9);
    let sum = 0;
    for (let r = 0; r < want.length; r++) {
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(want[r][c] - got[r][c]);
        worst = Math.max(worst, d);
        sum += d;
      }
      // A region whose channels differ is a coloured one: a grey thumbnail could never match it.
      if (Math.max(...want[r]) - Math.min(...want[r]) > 12) colourful++;
    }
    assert.ok(worst <= 4, `sample ${i}: a region's channel is ${worst.toFixed(2)} off`);
    assert.ok(sum / (want.length * 3) <= 1.5, `sample ${i}: mean difference ${sum / (want.length * 3)}`);
  }
  assert.ok(colourful > 0, "the samples have coloured regions");
});

Deno.test("a wide frame is shrunk to MAX_THUMB_WIDTH, colours kept", () => {
  // Left third red, middle green, right blue; 2600 pixels wide (1/8 = 325, above the limit).
  const frame = colourJpeg(
    2600,
    160,
    (x) => x < 866 ? [220, 30, 30] : x < 1733 ? [30, 200, 40] : [20, 40, 230],
  );
  const img = thumbnailImage(frame);
  assert.deepEqual([img.width, img.height], [MAX_THUMB_WIDTH, 20]);
  const at = (x: number) => [...img.data.subarray((10 * img.width + x) * 3, (10 * img.width + x) * 3 + 3)];
  const near = (got: number[], want: number[]) => got.every((v, c) => Math.abs(v - want[c]) <= 4);
  assert.ok(near(at(20), [220, 30, 30]), `left ${at(20)}`);
  assert.ok(near(at(160), [30, 200, 40]), `middle ${at(160)}`);
  assert.ok(near(at(300), [20, 40, 230]), `right ${at(300)}`);
  const thumb = jpeg.decode(makeThumbnail(frame), { useTArray: true });
  assert.deepEqual([thumb.width, thumb.height], [MAX_THUMB_WIDTH, 20]);
});

Deno.test("a greyscale frame gives a grey thumbnail; a broken one throws SyntaxError", () => {
  const img = thumbnailImage(greyJpeg(64, 32, (x) => x * 4));
  assert.deepEqual([img.width, img.height], [8, 4]);
  for (let i = 0; i < img.data.length; i += 3) {
    assert.ok(img.data[i] === img.data[i + 1] && img.data[i] === img.data[i + 2]);
  }
  assert.throws(() => makeThumbnail(new Uint8Array([0xff, 0xd8, 0xff, 0xd9])), SyntaxError);
  assert.throws(() => makeThumbnail(SAMPLES[0].subarray(0, 5000)), SyntaxError);
});

Deno.test("Thumbnails: one decode per key, shared by concurrent requests, cached by bytes", async () => {
  let loads = 0;
  const thumbs = new Thumbnails((key) => {
    loads++;
    return Promise.resolve(key === "none" ? null : SAMPLES[0]);
  });
  const [a, b] = await Promise.all([thumbs.get("k"), thumbs.get("k")]);
  assert.ok(a && a === b);
  assert.equal(loads, 1);
  assert.equal(await thumbs.get("k"), a);
  assert.equal(thumbs.made, 1);
  assert.equal(await thumbs.get("none"), null);
  const lru = new ByteLru(10);
  lru.set("a", new Uint8Array(6));
  lru.set("b", new Uint8Array(6));
  assert.deepEqual([lru.get("a"), lru.size, lru.bytes], [undefined, 1, 6]);
});
