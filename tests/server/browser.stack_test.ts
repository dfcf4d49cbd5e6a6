/**
 * The web UI in a real browser: Playwright drives Debian's Chromium (headless, a fresh profile) against the HTTP
 * server over a temp catalog and real S3 buckets. It labels a frame (from the frame view and several at once from
 * the gallery), reloads and finds the label still there, pages through a robot with 100,000 frames, finds
 * similar frames (to a frame and to an upload), downloads the export and reads the tar, enters the token when
 * the server asks for one (for changes, and for reads on a server reachable from other machines), and reads how
 * an export ended next to its link (complete; failed with the store down; incomplete with an object gone). One
 * screenshot per view goes to $TMPDIR/frame-bucket-ui/ (outside the repository); their paths are printed.
 *
 * The browser set-up is tests/support/browser.ts's (it needs /usr/bin/chromium).
 */
import assert from "node:assert/strict";
import { loadStorage } from "../../src/filter/loader.ts";
import { startLatencyProxy } from "../../dev/latency_proxy.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { sampleFiles } from "../support/images.ts";
import { BULK, REAL, type UiFixture } from "../support/ui_fixture.ts";
import { imageLoaded, SHOTS, silentLog, uiSession } from "../support/browser.ts";

// The page functions below run in the browser; this file is type-checked without the DOM library.
// deno-lint-ignore no-explicit-any
declare const document: any;
declare function scrollTo(x: number, y: number): void;

/** The fixture's buckets reached through a TCP proxy that the test can take down. */
async function storesBehindProxy(f: UiFixture) {
  const endpoint = stackEndpoints().s3Endpoint;
  const proxy = startLatencyProxy({ hostname: "127.0.0.1", port: Number(new URL(endpoint).port) }, 0);
  const via = `http://127.0.0.1:${proxy.port}`;
  const local = await loadStorage("rustfs", { endpoint: via, bucket: f.local.bucket });
  const archive = await loadStorage("s3_archive", {
    endpoint: via,
    bucket: f.archive.bucket,
    accessKey: "rustfsadmin",
    secretKey: "rustfsadmin",
  });
  return {
    proxy,
    stores: { local, archive },
    async close() {
      local.close();
      archive.close();
      await proxy.close();
    },
  };
}

/** Names of the entries of a tar archive (PAX extended headers give the next entry's path). */
function tarNames(bytes: Uint8Array): string[] {
  const names: string[] = [];
  const text = (a: number, b: number) => new TextDecoder().decode(bytes.subarray(a, b)).replace(/\0.*$/s, "");
  let paxPath: string | null = null;
  for (let at = 0; at + 512 <= bytes.length;) {
    if (bytes.subarray(at, at + 512).every((b) => b === 0)) break;
    const prefix = text(at + 345, at + 500), name = text(at, at + 100);
    const size = parseInt(text(at + 124, at + 136), 8);
    if (String.fromCharCode(bytes[at + 156]) === "x") {
      paxPath =
        /\d+ path=(.*)\n/.exec(new TextDecoder().decode(bytes.subarray(at + 512, at + 512 + size)))?.[1] ??
          null;
    } else {
      names.push(paxPath ?? (prefix ? `${prefix}/${name}` : name));
      paxPath = null;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

Deno.test("web UI: label, reload, similar, export, 100,000 frames, token", async () => {
  const ui = await uiSession({ bulk: 100_000, clearShots: true });
  const { f, base, errors, shots } = ui;
  const shot = ui.shot;
  const [lockedBase, readBase] = [
    ui.serve({ token: "ui-token" }),
    ui.serve({ token: "read-token", readsNeedToken: true }),
  ].map((s) => s.base);
  // Its stores are reached through a TCP proxy of this test, which can stop forwarding (an outage); its export
  // failures are expected here.
  const outage = await storesBehindProxy(f);
  const outageBase = ui.serve({ ...outage.stores, log: silentLog }).base;
  try {
    const page = ui.page;
    const reals = f.rows.filter((r) => r.robotId === REAL);

    // ---- robots overview: a card per robot with its latest frame's thumbnail
    await page.goto(base);
    await page.locator(".card").nth(2).waitFor();
    assert.equal(await page.locator(".card").count(), 3);
    await imageLoaded(page, `.card[data-robot="${REAL}"] img`);
    assert.equal(
      await page.evaluate(
        (sel) => document.querySelector(sel).naturalWidth,
        `.card[data-robot="${REAL}"] img`,
      ),
      240,
    );
    await shot(page, "1-robots", "robots overview: three cards, latest-frame thumbnails, counts and spans");

    // ---- a robot: timeline, gallery; select three frames with a tick and Shift-click, label them, make a clip
    await page.locator(`.card[data-robot="${REAL}"]`).click();
    await page.locator(".gallery .tile").nth(reals.length - 1).waitFor();
    assert.equal(await page.locator(".gallery .tile").count(), reals.length);
    assert.ok(await page.locator("svg.timeline g.slot").count() > 10);
    const tiles = page.locator(".gallery .tile");
    await tiles.nth(2).hover();
    await tiles.nth(2).locator(".tick").click();
    await tiles.nth(4).click({ modifiers: ["Shift"] });
    await page.locator(".actionbar").getByText("3 selected frames").waitFor();
    await page.getByLabel("label", { exact: true }).fill("person");
    await page.getByRole("button", { name: "Add label" }).click();
    await page.locator("#toast").getByText("3 frame(s) labelled person").waitFor();
    assert.equal(await page.locator(".gallery .tile .chip", { hasText: "person" }).count(), 3);
    await page.getByLabel("clip name").fill("walk-by");
    await page.getByRole("button", { name: "Make clip" }).click();
    await page.locator("button.clip", { hasText: "walk-by" }).waitFor();
    // A bar of the timeline narrows the gallery to its span.
    await page.locator("svg.timeline g.slot").first().click();
    await page.waitForFunction(() => document.querySelectorAll(".gallery .tile").length === 1);
    assert.match(page.url(), /from=2026-02-18T09%3A00%3A00Z|from=2026-02-18T09:00:00Z/);
    await page.getByRole("button", { name: "All frames" }).click();
    await page.locator(".gallery .tile").nth(reals.length - 1).waitFor();
    await shot(
      page,
      "2-robot",
      "robot view: timeline bars, clip walk-by, gallery with three frames labelled person",
    );

    // ---- 100,000 frames: one page at a time as the end of the gallery comes into view
    await page.goto(`${base}#/robot/${BULK}`);
    await page.locator(".gallery .tile").nth(59).waitFor();
    await page.locator(".gallery-status", { hasText: "of 100,000 frames shown" }).waitFor();
    const before = await page.locator(".gallery .tile").count();
    assert.ok(before <= 120, `${before} tiles before scrolling`);
    assert.ok(await page.locator("svg.timeline g.slot").count() > 500);
    await page.evaluate(() => scrollTo(0, document.body.scrollHeight));
    await page.waitForFunction((n) => document.querySelectorAll(".gallery .tile").length > n, before);
    const after = await page.locator(".gallery .tile").count();
    assert.ok(after <= before + 120, `${after} tiles after one scroll`);
    await page.evaluate(() => scrollTo(0, 0));
    await shot(
      page,
      "3-robot-100k",
      "robot with 100,000 catalog rows: hourly bars; one page of tiles (no objects)",
    );

    // ---- frame view: `l` focuses the label box; the label survives a reload; arrows step through frames
    const frame = reals[10];
    await page.goto(`${base}#/frame/${encodeURIComponent(frame.key)}`);
    await page.locator("#frame-image").waitFor();
    await page.waitForFunction(() => document.getElementById("frame-image").naturalWidth > 0);
    await page.keyboard.press("l");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "label-input");
    await page.keyboard.type("door-open");
    await page.keyboard.press("Enter");
    await page.locator(".labels-box .chip", { hasText: "door-open" }).waitFor();
    await page.reload();
    await page.locator(".labels-box .chip", { hasText: "door-open" }).waitFor();
    await page.locator(".similar-tile").first().waitFor();
    assert.equal(await page.locator(".similar-tile").count(), 12);
    assert.equal(await page.locator(".similar-tile .distance").first().textContent(), "0 bits");
    await shot(page, "4-frame", "frame view: full image, label door-open, details, 12 similar frames", true);
    await page.locator("body").click({ position: { x: 5, y: 300 } });
    await page.keyboard.press("ArrowRight");
    await page.waitForURL((url) => url.hash === `#/frame/${encodeURIComponent(reals[11].key)}`);
    await page.locator(".frame-nav .when", { hasText: "10:06:00" }).waitFor();
    await page.keyboard.press("ArrowLeft");
    await page.waitForURL((url) => url.hash === `#/frame/${encodeURIComponent(frame.key)}`);
    // The chip's × takes a label off again.
    await page.locator(".labels-box .chip", { hasText: "door-open" }).waitFor();
    // Following a similar frame opens it.
    const target = await page.locator(".similar-tile").first().getAttribute("data-key");
    await page.locator(".similar-tile").first().click();
    await page.waitForURL((url) => url.hash === `#/frame/${encodeURIComponent(target!)}`);

    // ---- search by label, export the result as a .tar through the link, find frames like an upload
    await page.goto(`${base}#/search?label=person`);
    await page.locator(".gallery .tile").nth(2).waitFor();
    await page.locator(".view-head", { hasText: "3 frames match" }).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.locator("#export-link").click(),
    ]);
    assert.match(download.suggestedFilename(), /^frame-bucket-person-\d{8}T\d{6}Z\.tar$/);
    const saved = `${SHOTS}/export.tar`;
    await download.saveAs(saved);
    const names = tarNames(await Deno.readFile(saved));
    assert.equal(names.filter((n) => /^person\/reachy-001_\d{8}T\d{9}Z_\d{6}\.jpg$/.test(n)).length, 3);
    assert.equal(names.at(-1), "metadata.jsonl");
    // The page asks the server how the export ended and says so next to the link.
    await page.locator('.export-status[data-state="complete"]').waitFor();
    assert.equal(
      await page.locator(".export-status").textContent(),
      "Export complete: 3 frames, 3 files.",
    );
    await page.locator('input[type="file"]').setInputFiles(sampleFiles()[0]);
    await page.locator(".similar-box .similar-tile").first().waitFor();
    assert.equal(await page.locator(".similar-box .similar-tile .distance").first().textContent(), "0 bits");
    await shot(
      page,
      "5-search",
      "search: label person, 3 frames, export link; frames like an uploaded sample",
      true,
    );

    // ---- labels, clips, history
    await page.goto(`${base}#/labels`);
    await page.locator("table.list tbody tr").nth(1).waitFor();
    assert.deepEqual(await page.locator("table.list tbody td:first-child").allTextContents(), [
      "door-open",
      "person",
    ]);
    await shot(page, "6-labels", "labels: door-open and person with counts, rename/delete/export");
    await page.goto(`${base}#/clips`);
    await page.locator("table.list tbody tr", { hasText: "walk-by" }).waitFor();
    await shot(page, "7-clips", "clips: walk-by over the three selected frames");
    await page.goto(`${base}#/changes`);
    await page.locator("table.list tbody tr").nth(2).waitFor();
    assert.equal(await page.locator("table.list tbody tr").count(), 3);
    await shot(page, "8-history", "history: two label.add and a clip.create, newest first");

    // ---- a server with a token: the first change asks for it, the label lands once it is given
    const lockedPage = await ui.newPage();
    await lockedPage.goto(`${lockedBase}#/frame/${encodeURIComponent(reals[20].key)}`);
    await lockedPage.locator("#label-input").fill("needs-token");
    await lockedPage.keyboard.press("Enter");
    await lockedPage.locator("#token-dialog[open]").waitFor();
    await lockedPage.locator("#token-input").fill("ui-token");
    await shot(lockedPage, "9-token", "write token dialog, shown when a change gets 401");
    await lockedPage.locator("#token-save").click();
    await lockedPage.locator(".labels-box .chip", { hasText: "needs-token" }).waitFor();
    await lockedPage.reload();
    await lockedPage.locator(".labels-box .chip", { hasText: "needs-token" }).waitFor();

    // ---- a server whose reads need the token (bound beyond loopback): asked for at once; images and the
    // export download carry it in the cookie the page sets
    const readPage = await ui.newPage();
    await readPage.goto(readBase);
    await readPage.locator("#token-dialog[open]").waitFor();
    await readPage.locator("#token-input").fill("read-token");
    await readPage.locator("#token-save").click();
    await readPage.locator(".card").nth(2).waitFor();
    await imageLoaded(readPage, `.card[data-robot="${REAL}"] img`);
    await readPage.goto(`${readBase}#/search?label=person`);
    await readPage.locator(".view-head", { hasText: "3 frames match" }).waitFor();
    const [readDownload] = await Promise.all([
      readPage.waitForEvent("download"),
      readPage.locator("#export-link").click(),
    ]);
    assert.equal(await readDownload.failure(), null);
    await readPage.locator('.export-status[data-state="complete"]').waitFor();

    // ---- the store is down: the export fails before its first byte, and the page says so
    outage.proxy.down = true;
    const outagePage = await ui.newPage();
    await outagePage.goto(`${outageBase}#/search?label=person`);
    await outagePage.locator(".view-head", { hasText: "3 frames match" }).waitFor();
    await outagePage.locator("#export-link").click();
    await outagePage.locator('.export-status[data-state="failed"]').waitFor({ timeout: 60_000 });
    assert.match(
      (await outagePage.locator(".export-status").textContent())!,
      /^Export FAILED after 0 of 3 frames: frame 1 of 3 \(.*\) could not be read after 3 attempts: .*unreachable.*\. The download is incomplete: do not use it\.$/,
    );
    await shot(
      outagePage,
      "10-export-failed",
      "search: the export link reports a failed export (store down)",
    );

    // ---- an object gone from the store: the tar ends with MISSING.txt, and the page says the export is incomplete
    outage.proxy.down = false;
    const gone = reals[31];
    await f.catalog.labels().addLabels({ keys: [gone.key, reals[32].key] }, ["half-there"]);
    await f.local.delete(gone.key);
    await outagePage.goto(`${outageBase}#/search?label=half-there`);
    await outagePage.locator(".view-head", { hasText: "2 frames match" }).waitFor();
    const [partial] = await Promise.all([
      outagePage.waitForEvent("download"),
      outagePage.locator("#export-link").click(),
    ]);
    const partialPath = `${SHOTS}/export-incomplete.tar`;
    await partial.saveAs(partialPath);
    assert.equal(tarNames(await Deno.readFile(partialPath)).at(-1), "MISSING.txt");
    await outagePage.locator('.export-status[data-state="incomplete"]').waitFor();
    assert.equal(
      await outagePage.locator(".export-status").textContent(),
      "Export INCOMPLETE: 1 of 2 frames are in no store and were left out; the .tar lists them in MISSING.txt.",
    );
    await shot(outagePage, "11-export-incomplete", "search: the export link reports frames left out");

    assert.deepEqual(errors, []);
    console.log(`screenshots (one per view):\n  ${shots.join("\n  ")}\nexport: ${saved}`);
  } catch (error) {
    if (shots.length) console.log(`screenshots so far:\n  ${shots.join("\n  ")}`);
    if (errors.length) console.log(`page errors:\n  ${errors.join("\n  ")}`);
    throw error;
  } finally {
    await ui.close();
    await outage.close();
  }
});
