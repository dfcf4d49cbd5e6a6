/**
 * Storage health on the robots page, in a real browser (Chromium through Playwright, tests/support/browser.ts)
 * over the UI fixture's real frames: with the archive down, the evictor's round (src/retention/evictor.ts) records
 * "archive unreachable" in the catalog and the robots page says so, since when, with the local tier at its hard
 * limit; once the archive is back and a round has archived, the page (refreshing itself) says the evictor is idle
 * and how many frames it archived.
 */
import assert from "node:assert/strict";
import { uiSession } from "../support/browser.ts";
import { ARCHIVE_PREFIX } from "../support/ui_fixture.ts";
import { Evictor } from "../../src/retention/evictor.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { createLogger } from "../../src/log.ts";
import { freePort } from "../../dev/processes.ts";
import { settings } from "../support/eviction_settings.ts";

const quiet = createLogger({ level: "error", format: "text", write: () => {} });

Deno.test("robots page: the storage panel shows the archive unreachable, then the evictor idle once it is back", async () => {
  // The budget is set from the fixture's local bytes below; the page reads the thresholds from the evictor's record.
  const ui = await uiSession();
  const { page, base, errors, f } = ui;
  const down = await loadStorage("s3_archive", {
    endpoint: `http://127.0.0.1:${freePort()}`,
    bucket: f.archive.bucket,
    region: "us-east-1",
    accessKey: "rustfsadmin",
    secretKey: "rustfsadmin",
    timeoutMs: 1000,
  });
  try {
    const t = await f.catalog.totals();
    const localBytes = t.local.bytes + t.archiving.bytes;
    // 97 % of the budget: over the hard limit, the consumer would be paused.
    const s = settings({ max_bytes: Math.round(localBytes / 0.97), check_interval_secs: 5 });
    const evictor = (archive: typeof down) =>
      new Evictor({
        local: f.local,
        archive,
        catalog: f.catalog,
        settings: s,
        archivePrefix: ARCHIVE_PREFIX,
        log: quiet,
        sweep: false,
      });

    await page.goto(base);
    const state = page.locator("section.storage-health p.storage-state");
    await state.filter({ hasText: "No evictor has reported yet" }).waitFor();

    const r = await evictor(down).runOnce();
    assert.ok(r.failure, "the archive is down");
    await page.reload();
    await state.filter({ hasText: "Archive unreachable since" }).waitFor();
    const text = (await page.locator("section.storage-health").innerText()).replace(/\s+/g, " ");
    console.log(`  panel: ${text}`);
    assert.match(
      text,
      /Archive unreachable since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(\d+ s, 1 failed attempt\)/,
    );
    assert.match(
      text,
      /nothing is deleted locally, the local tier fills up; the consumer is paused at the hard limit/,
    );
    assert.match(text, /Local tier .* = 97% of max_bytes/);
    assert.match(text, /the consumer pauses at 95%/);
    assert.equal(await state.getAttribute("data-state"), "archive unreachable");
    const meter = page.locator('section.storage-health [role="meter"]');
    assert.equal(await meter.getAttribute("aria-valuenow"), "97");
    assert.ok(await page.locator(".card").count() >= 2, "the robots are still listed below it");
    await ui.shot(page, "storage-archive-down", "robots page: storage panel with the archive unreachable");

    // The archive is back: a round archives; the page refreshes itself within 15 s.
    const back = await evictor(f.archive).runOnce();
    assert.equal(back.failure, null);
    assert.ok(back.archived > 0);
    await state.filter({ hasText: "Evictor idle" }).waitFor({ timeout: 60_000 });
    const after = (await page.locator("section.storage-health").innerText()).replace(/\s+/g, " ");
    console.log(`  panel: ${after}`);
    assert.match(after, new RegExp(`Archived by the evictor .*: ${back.archived} frames`));
    await ui.shot(page, "storage-idle", "robots page: storage panel after the archive came back");
    assert.deepEqual(errors, []);
  } finally {
    down.close();
    await ui.close();
  }
});
