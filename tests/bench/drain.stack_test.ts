/**
 * `deno task bench drain` end to end, small: a topic of 2 robots x 6 frames drained by this tree's consumer and by
 * a variant of it, each once; every frame produced is stored byte for byte or dropped by the filter.
 */
import assert from "node:assert/strict";
import { ensureStack } from "../support/stack.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "bench drain: one JSON line per run and a summary per variant, objects checked against the frames",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await ensureStack();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      "bench/main.ts",
      "drain",
      "--robots",
      "2",
      "--frames",
      "6",
      "--pairs",
      "1",
      "--variant",
      "name=one worker;set=consumer.filter_workers=1",
    ],
    cwd: PROJECT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `bench drain failed:\n${stderr.split("\n").slice(-15).join("\n")}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
  const runs = lines.filter((l) => "variant" in l);
  assert.deepEqual(runs.map((r) => r.variant).sort(), ["one worker", "tree"]);
  for (const r of runs) {
    assert.equal(r.frames, 12);
    assert.ok(r.frames_per_s > 0 && r.cpu_ms_per_frame > 0 && r.peak_rss_mb > 0);
    assert.ok(r.objects_stored >= 2, "each robot's first frame at least");
    assert.equal(r.objects_stored, r.accepted, "every accepted frame stored");
    assert.equal(r.objects_not_identical, 0);
  }
  assert.equal(runs[0].objects_stored, runs[1].objects_stored, "both consumers decide alike");
  const summaries = lines.filter((l) => "summary" in l);
  assert.equal(summaries.length, 2);
});
