/**
 * Importing labels from the web UI (Labels page, "Import labels"): a YOLO dataset made in another tool, picked
 * as files in a real browser (Chromium through Playwright, tests/support/browser.ts), is counted first (only
 * count: nothing written), then imported onto the real reachy-001 frames of the UI fixture; the boxes are read
 * back through the API with the exact fractions of the file, and importing the same files again changes nothing.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { flatImageName } from "../../src/library/formats/yolo.ts";
import { uiSession } from "../support/browser.ts";
import { REAL } from "../support/ui_fixture.ts";

/** GET /api/frames/{key} of the server at `base`. */
async function frameJson(base: string, key: string) {
  const response = await fetch(new URL(`api/frames/${encodeURIComponent(key)}`, base));
  assert.equal(response.status, 200);
  return await response.json();
}

Deno.test("labels page: a YOLO dataset picked as files is counted, imported onto its frames, and again changes nothing", async () => {
  const ui = await uiSession();
  const { page, base, f, errors } = ui;
  try {
    const frames = f.rows.filter((r) => r.robotId === REAL).slice(0, 2);
    assert.equal(frames.length, 2);
    const files = [
      { name: "classes.txt", mimeType: "text/plain", buffer: Buffer.from("forklift\npallet\n") },
      ...frames.map((row, i) => ({
        name: flatImageName(row.key).replace(/\.jpg$/, ".txt"),
        mimeType: "text/plain",
        buffer: Buffer.from(`${i} 0.5 0.25 0.125 0.25\n`),
      })),
    ];
    await page.goto(`${base}#/labels`);
    const form = page.locator("#import-form");
    await form.getByLabel("import format").selectOption("yolo");
    await form.getByLabel("dataset files").setInputFiles(files);
    await form.getByLabel("only count").check();
    await form.getByRole("button", { name: "Import" }).click();
    const result = form.locator(".import-result");
    await result.filter({ hasText: "Nothing was written" }).waitFor();
    assert.match((await result.textContent())!, /2 of 2 images matched frames: 2 boxes added/);
    const untouched = await frameJson(base, frames[0].key);
    assert.deepEqual(untouched.boxes, []);

    await form.getByLabel("only count").uncheck();
    await form.getByRole("button", { name: "Import" }).click();
    await result.filter({ hasText: "Imported:" }).waitFor();
    assert.match((await result.textContent())!, /2 boxes added/);
    for (const [i, row] of frames.entries()) {
      const frame = await frameJson(base, row.key);
      assert.equal(frame.boxes.length, 1, JSON.stringify(frame.boxes));
      const [b] = frame.boxes;
      assert.equal(b.label, ["forklift", "pallet"][i]);
      assert.equal(b.source, "import");
      assert.equal(b.unit, "norm");
      // YOLO gives the centre: the left edge is 0.5 - 0.125 / 2.
      assert.deepEqual([b.x, b.y, b.w, b.h], [0.5 - 0.125 / 2, 0.25 - 0.25 / 2, 0.125, 0.25]);
    }
    await ui.shot(page, "import-labels", "labels page: a YOLO dataset imported from files");

    await form.getByRole("button", { name: "Import" }).click();
    await result.filter({ hasText: "0 boxes added" }).waitFor();
    assert.match((await result.textContent())!, /2 unchanged/);
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});
