/** `deno task export` refuses bad flags before it opens anything, naming the value and the fix (exit 2). */
import assert from "node:assert/strict";

const PROJECT = new URL("../../", import.meta.url).pathname;

async function exportCli(args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-export-cli-" });
  try {
    // A config whose catalog does not exist: every refusal below must come before it is opened.
    await Deno.writeTextFile(`${dir}/config.toml`, `[catalog]\ndata_dir = "${dir}/none"\n`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "tools/export.ts", ...args, "--config", `${dir}/config.toml`],
      cwd: PROJECT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deno task export: bad formats, splits and flags are refused with the fix", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--format", "voc", "--out", "x"],
      /export format "voc" is unknown: use one of imagefolder, coco, yolo, cvat, label-studio/,
    ],
    [["--out", "x"], /name at least one --label to export \(or pick a box format: --format coco, \.\.\.\)/],
    [["--format", "coco"], /--out DIR or --out FILE\.tar is required/],
    [["--format", "coco", "--out", "x", "--split", "train=0.8,val=0.1"], /shares add up to 0\.9, not 1/],
    [
      ["--format", "yolo", "--out", "x", "--split", "train=0.8,valid=0.2"],
      /names split "valid": the splits are train, val, test/,
    ],
    [
      ["--format", "coco", "--out", "x", "--split-seed", "3"],
      /--split-seed and --split-block-minutes need --split/,
    ],
    [
      ["--format", "coco", "--out", "x", "--split", "train=1", "--split-block-minutes", "0"],
      /not a number of minutes above 0/,
    ],
    [
      ["--format", "coco", "--out", "x", "--split", "train=1", "--split-seed", "1.5"],
      /--split-seed 1\.5 is not a whole number/,
    ],
    [["--format", "coco", "--out", "x", "--classes", "some"], /--classes "some" must be used or all/],
    [
      ["--format", "coco", "--out", "x", "--status", "done"],
      /--status "done" must be one of unlabelled, labelled, reviewed, rejected/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await exportCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});
