/**
 * Smoke test of `deno task bench filter`: runs it with a tiny iteration count and no native side (so no C compiler
 * is needed), and checks the shape of what it prints. Benchmarks are measurements, so no figure is asserted here.
 */
import assert from "node:assert/strict";
import { benchFilter } from "../../bench/filter.ts";

const REQUIRED: Record<string, string> = {
  filter: "string",
  impl: "string",
  resize: "string",
  width: "number",
  height: "number",
  ms_per_frame: "number",
  fps_per_core: "number",
};

Deno.test("bench filter prints one JSON line per case and the still-frame distances", async () => {
  const printed: string[] = [];
  await benchFilter(["--iterations", "3", "--no-native", "--no-install"], (line) => printed.push(line));
  const lines = printed.map((text) => JSON.parse(text) as Record<string, unknown>);
  const cases = lines.filter((l) => "filter" in l);
  const still = lines.filter((l) => "still_frames" in l);
  assert.equal(cases.length + still.length, lines.length, `unexpected lines: ${printed.join("\n")}`);

  for (const line of cases) {
    for (const [key, type] of Object.entries(REQUIRED)) {
      assert.equal(typeof line[key], type, `${key} in ${JSON.stringify(line)}`);
    }
    assert.ok((line.ms_per_frame as number) > 0);
    assert.ok(["area", "nearest"].includes(line.resize as string));
    // --no-native: the native fields are present and null.
    for (const key of ["native_ms", "ratio_to_native"]) {
      assert.ok(key in line, `${key} missing`);
      assert.equal(line[key], null);
    }
  }
  const seen = new Set(cases.map((l) => `${l.filter}/${l.resize}/${l.width}x${l.height}/${l.impl}`));
  for (const want of ["ahash/area/1920x1080", "ahash/nearest/1920x1080", "histogram/area/1920x1080"]) {
    for (const impl of ["dc-wasm", "dc-ts"]) {
      assert.ok(seen.has(`${want}/${impl}`), `no ${want}/${impl} case in ${[...seen].join(", ")}`);
    }
  }
  // The 640x480 cases need ffmpeg or djpeg/cjpeg; when present there are three of them, with both scan loops.
  const small = cases.filter((l) => l.width === 640 && l.height === 480);
  assert.ok(small.length === 0 || small.length === 6, `${small.length} 640x480 cases`);

  assert.equal(still.length, 1);
  assert.equal(printed.at(-1), JSON.stringify(still[0]), "the still-frame line comes last");
  const s = still[0] as { still_frames: Record<string, unknown>; threshold: unknown; bits: unknown };
  assert.equal(typeof s.threshold, "number");
  assert.equal(s.bits, 256);
  for (const mode of ["area", "nearest"]) {
    const d = s.still_frames[mode] as number[];
    assert.ok(Array.isArray(d) && d.length === 9, `${mode}: ${JSON.stringify(d)}`);
    assert.ok(d.every((x) => Number.isInteger(x) && x >= 0 && x <= 256));
  }
});

Deno.test("bench filter rejects an unknown flag and a bad iteration count", async () => {
  await assert.rejects(benchFilter(["--bogus"], () => {}), TypeError);
  await assert.rejects(benchFilter(["--iterations", "0", "--no-native"], () => {}), RangeError);
});

Deno.test("deno task bench: an unknown benchmark name lists the known ones and exits 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../bench/main.ts", import.meta.url).pathname, "no-such-bench"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr);
  assert.match(err, /unknown benchmark "no-such-bench"/);
  assert.match(err, /^\s+filter\s/m);
});
