/** Generated test images and the real samples, shared by the tests. */
import jpeg from "jpeg-js";

export const SAMPLES_DIR = new URL("../../../shared/samples/reachy-001/", import.meta.url).pathname;

/** The ten real reachy frames, in capture order. */
export function sampleFiles(): string[] {
  return [...Deno.readDirSync(SAMPLES_DIR)].map((e) => e.name).filter((n) => n.endsWith(".jpg")).sort()
    .map((n) => SAMPLES_DIR + n);
}

export function readSamples(): Uint8Array[] {
  return sampleFiles().map((f) => Deno.readFileSync(f));
}

/** Encodes a grey image given by a function of (x, y) as a baseline JPEG. */
export function greyJpeg(
  width: number,
  height: number,
  shade: (x: number, y: number) => number,
  quality = 95,
): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = Math.max(0, Math.min(255, Math.round(shade(x, y))));
      const i = (y * width + x) * 4;
      data[i] = data[i + 1] = data[i + 2] = v;
      data[i + 3] = 255;
    }
  }
  return new Uint8Array(jpeg.encode({ data, width, height }, quality).data);
}
