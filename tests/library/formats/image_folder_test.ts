/** ImageFolder with a split: one folder per split, each with its own metadata.jsonl (as `datasets` reads it). */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../../src/catalog/sqlite.ts";
import { exportFrames } from "../../../src/library/export.ts";
import { exportFileName, metadataRecord } from "../../../src/library/formats/image_folder.ts";
import { splitSpec } from "../../../src/library/split.ts";
import { greyJpeg } from "../../support/images.ts";
import { frameRow, T0 } from "../../support/rows.ts";

async function files(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await files(dir, path));
    else out.push(path);
  }
  return out.sort();
}

Deno.test("ImageFolder split into train/val: <split>/<label>/<file> and <split>/metadata.jsonl", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-imagefolder-split-" });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  try {
    // 12 frames an hour apart (each its own 10-minute block), all labelled door, a third also person.
    const rows = Array.from({ length: 12 }, (_, i) => frameRow("r1", T0 + i * 3600_000, i));
    const jpegs = new Map(rows.map((r, i) => [r.key, greyJpeg(16, 16, () => i * 20)]));
    await catalog.upsertMany(rows);
    await catalog.labels().addLabels({ keys: rows.map((r) => r.key) }, ["door"]);
    await catalog.labels().addLabels({ keys: rows.filter((_, i) => i % 3 === 0).map((r) => r.key) }, [
      "person",
    ]);
    const summary = await exportFrames(catalog, `${dir}/out`, {
      labels: ["door", "person"],
      split: splitSpec("train=0.75,val=0.25", { seed: 1 }),
      fetch: (key) => Promise.resolve(jpegs.get(key) ?? null),
    });
    assert.deepEqual(summary.perSplit, { train: 9, val: 3 });
    assert.deepEqual([summary.files, summary.perLabel], [16, { door: 12, person: 4 }]);
    const all = await files(`${dir}/out`);
    assert.deepEqual(all.filter((p) => p.endsWith("metadata.jsonl")), [
      "train/metadata.jsonl",
      "val/metadata.jsonl",
    ]);
    for (const split of ["train", "val"]) {
      const lines = (await Deno.readTextFile(`${dir}/out/${split}/metadata.jsonl`)).trim().split("\n").map((
        l,
      ) => JSON.parse(l));
      for (const line of lines) {
        assert.equal(line.split, split);
        // file_name is relative to the folder of its metadata.jsonl.
        assert.ok(all.includes(`${split}/${line.file_name}`), line.file_name);
        const row = rows.find((r) => r.key === line.key)!;
        assert.equal(line.file_name, `${line.label}/${exportFileName(row)}`);
      }
    }
  } finally {
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metadata lines: without a split as before (no split field)", () => {
  const row = frameRow("r1", T0, 1);
  assert.deepEqual(Object.keys(metadataRecord("door/x.jpg", "door", row, ["door"], [])), [
    "file_name",
    "label",
    "robot_id",
    "capture_time",
    "timestamp_ms",
    "seq",
    "key",
    "tier",
    "labels",
    "clips",
  ]);
  assert.equal(metadataRecord("door/x.jpg", "door", row, ["door"], [], "val").split, "val");
});
