/**
 * The real camera frames the tests and benchmarks share: the ten 1080p reachy-001 frames in the shared samples
 * folder next to the checkout (read at run time, never copied into the repository).
 */

export const SAMPLES_DIR = new URL("../../shared/samples/reachy-001/", import.meta.url).pathname;

/** The paths of the JPEG frames (.jpg, .jpeg) in `dir`, sorted by name (capture order for the samples). */
export function sampleFiles(dir = SAMPLES_DIR): string[] {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /\.jpe?g$/i.test(n)).sort();
  if (names.length === 0) throw new Deno.errors.NotFound(`no sample frames (.jpg) in ${dir}`);
  return names.map((n) => dir.endsWith("/") ? dir + n : `${dir}/${n}`);
}

/** The frames' bytes, freshly read (callers may change them). */
export function readSamples(dir = SAMPLES_DIR): Uint8Array<ArrayBuffer>[] {
  return sampleFiles(dir).map((f) => Deno.readFileSync(f));
}
