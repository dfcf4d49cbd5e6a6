/**
 * The labeller's traps of issue 14, one browser flow each (Chromium through Playwright, the HTTP server over a
 * temp catalog and the stack's S3 with the real samples of reachy-001 stored; set-up in tests/support/browser.ts):
 * search and similar results selected and labelled like the gallery; the upload-a-photo box above an endless
 * gallery; Back and Esc to the same scroll position; tiles and timeline bars by keyboard, Ctrl+A and Esc; the tick
 * on a touch screen; pages 390 px wide; confirmations in view; a server that went away; tiles naming their robot;
 * the timeline zoomed to seconds for a clip of a few seconds; the export link only when an export can work.
 * Screenshots go to $TMPDIR/frame-bucket-ui/fixes-*.png.
 */
import assert from "node:assert/strict";
import type { Locator, Page } from "playwright-core";
import { objectKey } from "../../src/key.ts";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import { readSamples, sampleFiles } from "../support/images.ts";
import { BULK, REAL, SYNTH, type UiFixture } from "../support/ui_fixture.ts";
import { focused, uiSession } from "../support/browser.ts";
import { T0 } from "../support/rows.ts";

// The page functions below run in the browser; this file is type-checked without the DOM library.
// deno-lint-ignore no-explicit-any
declare const document: any;
declare const scrollY: number;
declare const innerWidth: number;
declare const innerHeight: number;
declare function scrollTo(x: number, y: number): void;
// deno-lint-ignore no-explicit-any
declare function getComputedStyle(el: any): any;

const frameHash = (key: string) => `#/frame/${encodeURIComponent(key)}`;
/** True when a URL's hash opens that frame's page (a frame opened from a search carries the search after `?`). */
const opens = (hash: string, key: string) => hash === frameHash(key) || hash.startsWith(`${frameHash(key)}?`);

/** The element is on screen: inside the viewport, opaque and not hidden. */
async function assertInView(page: Page, locator: Locator, what: string): Promise<void> {
  await locator.waitFor({ state: "visible" });
  // Past the toast's slide-in.
  await page.waitForTimeout(300);
  const box = await locator.boundingBox();
  const { width, height } = page.viewportSize()!;
  assert.ok(box, `${what}: not laid out`);
  assert.ok(
    box.y >= 0 && box.y + box.height <= height && box.x >= 0 && box.x + box.width <= width,
    `${what}: at ${JSON.stringify(box)}, outside the ${width}×${height} viewport`,
  );
  const style = await locator.evaluate((el) => {
    const s = getComputedStyle(el);
    return { opacity: s.opacity, visibility: s.visibility };
  });
  assert.deepEqual(style, { opacity: "1", visibility: "visible" }, `${what}: ${JSON.stringify(style)}`);
}

/** Presses Tab until `match` says the focused element is the one wanted; fails after `most` presses. */
async function tabTo(
  page: Page,
  match: (f: Awaited<ReturnType<typeof focused>>) => boolean,
  most = 60,
): Promise<number> {
  for (let i = 1; i <= most; i++) {
    await page.keyboard.press("Tab");
    if (match(await focused(page))) return i;
  }
  throw new Error(`${most} presses of Tab never reached it (last: ${JSON.stringify(await focused(page))})`);
}

const labelsOf = (f: UiFixture, key: string) => f.catalog.labels().labelsOf(key);

Deno.test("search and similar-frame results: select (tick, Ctrl-click, Shift-click), label from the action bar, Clear; a plain click opens", async () => {
  const ui = await uiSession();
  const { page, base, f, errors } = ui;
  try {
    // ---- search results: the same selection as a robot's gallery, and an action bar to label them
    await page.goto(`${base}#/search?robot=${REAL}`);
    const tiles = page.locator(".gallery[data-primary] .tile");
    await tiles.nth(5).waitFor();
    await tiles.nth(0).hover();
    await tiles.nth(0).locator(".tick").click();
    await tiles.nth(2).click({ modifiers: ["Shift"] });
    await tiles.nth(4).click({ modifiers: ["Control"] });
    const bar = page.locator(".actionbar:visible");
    await bar.getByText("4 selected frames").waitFor();
    await bar.getByLabel("label", { exact: true }).fill("seen-in-search");
    await bar.getByRole("button", { name: "Add label" }).click();
    await page.locator("#toast").getByText("4 frame(s) labelled seen-in-search").waitFor();
    assert.equal(await page.locator(".gallery .tile .chip", { hasText: "seen-in-search" }).count(), 4);
    const keys = await tiles.evaluateAll((els) => els.slice(0, 5).map((el) => el.dataset.key));
    for (const i of [0, 1, 2, 4]) assert.deepEqual(await labelsOf(f, keys[i]), ["seen-in-search"]);
    assert.deepEqual(await labelsOf(f, keys[3]), []);
    await ui.shot(
      page,
      "fixes-1-search-selected",
      "search results: four selected, the action bar, label added",
    );
    // With a selection, a plain click still opens the frame (it does not toggle the tile).
    const seventh = await tiles.nth(7).getAttribute("data-key");
    await tiles.nth(7).click();
    await page.waitForURL((url) => opens(url.hash, seventh!));
    await page.goBack();
    await bar.getByText("4 selected frames").waitFor();
    await bar.getByRole("button", { name: "Clear" }).click();
    assert.equal(await page.locator(".gallery .tile.selected").count(), 0);
    assert.equal(await page.locator(".actionbar:visible").count(), 0);

    // ---- frames like an uploaded photo: selectable, with an action bar of their own
    await page.locator('.similar-box input[type="file"]').setInputFiles(sampleFiles()[0]);
    const similar = page.locator(".similar-box .similar-tile");
    await similar.nth(3).waitFor();
    await similar.nth(1).click({ modifiers: ["Control"] });
    await similar.nth(3).click({ modifiers: ["Control"] });
    const similarBar = page.locator(".similar-box .actionbar");
    await similarBar.getByText("2 selected frames").waitFor();
    await similarBar.getByLabel("label", { exact: true }).fill("like-the-photo");
    await similarBar.getByRole("button", { name: "Add label" }).click();
    await page.locator("#toast").getByText("2 frame(s) labelled like-the-photo").waitFor();
    const liked = await similar.evaluateAll((els) => [els[1].dataset.key, els[3].dataset.key]);
    for (const key of liked) assert.ok((await labelsOf(f, key)).includes("like-the-photo"), key);
    assert.equal(await page.locator(".similar-box .chip", { hasText: "like-the-photo" }).count(), 2);
    await ui.shot(page, "fixes-1-similar-selected", "frames like a photo: two selected and labelled", true);
    await similarBar.getByRole("button", { name: "Clear" }).click();
    assert.equal(await page.locator(".similar-box .tile.selected").count(), 0);
    const first = await similar.first().getAttribute("data-key");
    await similar.first().click();
    await page.waitForURL((url) => opens(url.hash, first!));
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("search: the upload-a-photo box is above the results, in view at once, and stays put as results load", async () => {
  const ui = await uiSession({ bulk: 3000 });
  const { page, base, errors } = ui;
  try {
    await page.goto(`${base}#/search`);
    await page.locator(".gallery .tile").nth(59).waitFor();
    const upload = page.locator('.similar-box input[type="file"]');
    await assertInView(page, upload, "the upload box on arrival");
    const before = (await upload.boundingBox())!;
    const gallery = (await page.locator(".gallery[data-primary]").boundingBox())!;
    assert.ok(before.y < gallery.y, "the upload box comes before the results");
    // Scrolling to the end of the results loads more; the box does not move down with them.
    const shown = await page.locator(".gallery .tile").count();
    await page.evaluate(() => scrollTo(0, document.body.scrollHeight));
    await page.waitForFunction((n) => document.querySelectorAll(".gallery .tile").length > n, shown);
    await page.evaluate(() => scrollTo(0, 0));
    assert.deepEqual((await upload.boundingBox())!.y, before.y);
    await upload.setInputFiles(sampleFiles()[2]);
    await page.locator(".similar-box .similar-tile").first().waitFor();
    await assertInView(page, page.locator(".similar-box .similar-tile").first(), "the first result");
    await ui.shot(page, "fixes-2-upload-box", "search over 3,052 frames: the photo box above the results");
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("Back and Esc return to the list at the same scroll position, with the selection kept", async () => {
  const ui = await uiSession({ bulk: 3000 });
  const { page, base, errors } = ui;
  try {
    await page.goto(`${base}#/robot/${BULK}`);
    await page.locator(".gallery .tile").nth(59).waitFor();
    // Three pages down the gallery.
    for (const n of [60, 120]) {
      await page.evaluate(() => scrollTo(0, document.body.scrollHeight));
      await page.waitForFunction((n) => document.querySelectorAll(".gallery .tile").length > n, n);
    }
    const tiles = page.locator(".gallery .tile");
    await tiles.nth(150).scrollIntoViewIfNeeded();
    await tiles.nth(149).click({ modifiers: ["Control"] });
    await tiles.nth(151).click({ modifiers: ["Control"] });
    const y = await page.evaluate(() => scrollY);
    assert.ok(y > 2000, `scrolled to ${y}`);
    const key = await tiles.nth(150).getAttribute("data-key");

    // Back (the browser's)
    await tiles.nth(150).click();
    await page.waitForURL((url) => opens(url.hash, key!));
    await page.locator(".frame-nav").waitFor();
    await page.goBack();
    await page.waitForFunction((y) => Math.abs(scrollY - y) < 2, y);
    assert.equal(await tiles.nth(150).getAttribute("data-key"), key);
    assert.deepEqual(
      await page.locator(".gallery .tile.selected").evaluateAll((els) => els.map((e) => e.dataset.index)),
      ["149", "151"],
    );
    await page.locator(".actionbar").getByText("2 selected frames").waitFor();

    // Esc on the frame page, opened by keyboard (Enter on a tile)
    await tiles.nth(150).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL((url) => opens(url.hash, key!));
    await page.locator(".frame-nav").waitFor();
    await page.locator("body").click({ position: { x: 2, y: 300 } });
    await page.keyboard.press("Escape");
    await page.waitForURL((url) => url.hash === `#/robot/${BULK}`);
    await page.waitForFunction((y) => Math.abs(scrollY - y) < 2, y);
    assert.equal(await page.locator(".gallery .tile.selected").count(), 2);

    // Search results too (Back)
    await page.goto(`${base}#/search?robot=${BULK}`);
    await page.locator(".gallery .tile").nth(59).waitFor();
    await page.evaluate(() => scrollTo(0, document.body.scrollHeight));
    await page.waitForFunction(() => document.querySelectorAll(".gallery .tile").length > 60);
    await tiles.nth(100).scrollIntoViewIfNeeded();
    const searchY = await page.evaluate(() => scrollY);
    await tiles.nth(100).click();
    await page.waitForURL(/#\/frame\//);
    await page.goBack();
    await page.waitForFunction((y) => Math.abs(scrollY - y) < 2, searchY);
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("keyboard: Tab reaches the timeline bars and the tiles; Enter picks or opens, Space selects, Ctrl+A selects all, Esc clears", async () => {
  const ui = await uiSession();
  const { page, base, f, errors } = ui;
  try {
    const reals = f.rows.filter((r) => r.robotId === REAL);
    await page.goto(`${base}#/robot/${REAL}`);
    await page.locator(".gallery .tile").nth(reals.length - 1).waitFor();
    // The timeline is one Tab stop; its bar is the newest one.
    await tabTo(page, (x) => x?.className.includes("slot") ?? false);
    const newest = await focused(page);
    assert.match(newest!.label!, /12:54:00Z \(minute\): 1 frames/);
    await page.keyboard.press("ArrowLeft");
    assert.match((await focused(page))!.label!, /12:53:00Z \(minute\): 0 frames/);
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelectorAll(".gallery .tile").length === 1);
    assert.match(decodeURIComponent(page.url()), /from=2026-02-18T12:54:00Z/);
    await page.keyboard.press("Home");
    await page.keyboard.press("Shift+Enter");
    await page.waitForFunction((n) => document.querySelectorAll(".gallery .tile").length === n, reals.length);
    await page.locator(".actionbar").getByText("all frames 2026-02-18 09:00:00Z – 2026-02-18 12:54:59Z")
      .waitFor();
    assert.equal(
      await page.evaluate(() => getComputedStyle(document.querySelector("svg.timeline")).outlineStyle),
      "solid",
      "the timeline shows it has the focus",
    );

    // "All frames" lets go of the span (the action bar then acts on selected tiles only).
    await page.getByRole("button", { name: "All frames" }).click();
    await page.locator(".actionbar").waitFor({ state: "hidden" });
    // Tiles: each a Tab stop with a visible outline
    await tabTo(page, (x) => x?.className.includes("tile") ?? false);
    const firstTile = await focused(page);
    assert.equal(firstTile!.key, reals.at(-1)!.key);
    assert.match(firstTile!.label!, /^reachy-001 2026-02-18T12:54:00\.039Z/);
    assert.equal(
      await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle),
      "solid",
    );
    await page.keyboard.press("Space");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("Shift+Space");
    assert.equal(await page.locator(".gallery .tile.selected").count(), 3);
    await page.locator(".actionbar").getByText("3 selected frames").waitFor();
    await page.keyboard.press("Tab");
    assert.equal((await focused(page))!.key, reals.at(-4)!.key);
    await page.keyboard.press("Control+a");
    assert.equal(await page.locator(".gallery .tile.selected").count(), reals.length);
    assert.equal(
      await page.locator('.gallery .tile[aria-selected="true"]').count(),
      reals.length,
      "aria-selected follows",
    );
    await ui.shot(
      page,
      "fixes-4-keyboard",
      "robot view: every tile selected with Ctrl+A, the focused tile outlined",
    );
    await page.keyboard.press("Escape");
    assert.equal(await page.locator(".gallery .tile.selected").count(), 0);
    await page.locator(".actionbar").waitFor({ state: "hidden" });
    // Ctrl+A with the focus nowhere in particular acts on the page's gallery.
    await page.locator("h1").click();
    await page.keyboard.press("Control+a");
    assert.equal(await page.locator(".gallery .tile.selected").count(), reals.length);
    await page.keyboard.press("Escape");
    await page.locator(".gallery .tile").nth(2).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL((url) => opens(url.hash, reals.at(-3)!.key));
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("touch screen: the select tick is shown without hover, big enough for a finger, and a tap on it selects", async () => {
  const ui = await uiSession({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  const { page, base, f, errors } = ui;
  try {
    const reals = f.rows.filter((r) => r.robotId === REAL);
    await page.goto(`${base}#/robot/${REAL}`);
    await page.locator(".gallery .tile").nth(5).waitFor();
    assert.equal(await page.evaluate(() => matchMedia("(hover: none)").matches), true, "a touch screen");
    const ticks = page.locator(".gallery .tile .tick");
    assert.equal(await ticks.first().evaluate((el) => getComputedStyle(el).opacity), "1");
    const box = (await ticks.first().boundingBox())!;
    assert.ok(box.width >= 36 && box.height >= 36, `tick of ${box.width}×${box.height} px`);
    await ticks.nth(0).tap();
    await ticks.nth(1).tap();
    await page.locator(".actionbar").getByText("2 selected frames").waitFor();
    await ui.shot(
      page,
      "fixes-5-touch",
      "390 px touch screen: ticks shown, two tiles tapped into the selection",
    );
    await ticks.nth(1).tap();
    await page.locator(".actionbar").getByText("1 selected frame").waitFor();
    // A tap elsewhere on a tile opens it.
    await page.locator(".gallery .tile").nth(3).locator("figcaption").tap();
    await page.waitForURL((url) => opens(url.hash, reals.at(-4)!.key));
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});
declare function matchMedia(q: string): { matches: boolean };

Deno.test("390 px wide phone: no page is wider than the screen; table rows stack, each cell named by its column", async () => {
  const ui = await uiSession({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const { page, base, f, errors } = ui;
  try {
    const reals = f.rows.filter((r) => r.robotId === REAL);
    const labels = f.catalog.labels();
    await labels.addLabels({ keys: reals.slice(0, 6).map((r) => r.key) }, [
      "door_closed_on_the_left",
      "person",
    ]);
    await labels.createClip({
      robotId: REAL,
      fromMs: reals[0].timestampMs,
      toMs: reals[5].timestampMs,
      name: "walk-by-the-door-of-the-lab",
      labels: ["person"],
      note: "someone walks past the lab door and closes it behind them",
    });
    const pages = [
      ["robots", "#/"],
      ["robot", `#/robot/${REAL}`],
      ["search", "#/search?label=person"],
      ["labels", "#/labels"],
      ["clips", "#/clips"],
      ["history", "#/changes"],
      ["frame", frameHash(reals[2].key)],
    ];
    for (const [name, hash] of pages) {
      await page.goto(base + hash);
      await page.locator("#view .view-box > *").first().waitFor();
      await page.waitForLoadState("networkidle");
      const widths = await page.evaluate(() => ({
        inner: innerWidth,
        page: document.documentElement.scrollWidth,
      }));
      await ui.shot(page, `fixes-6-390-${name}`, `${name} at 390 px`, true);
      assert.deepEqual(widths, { inner: 390, page: 390 }, `${name}: ${JSON.stringify(widths)}`);
    }
    // The clips table as cards: a cell says which column it is; its buttons can be reached and used.
    await page.goto(`${base}#/clips`);
    const cell = page.locator("table.list tbody td").nth(2);
    assert.equal(await cell.getAttribute("data-label"), "span (UTC)");
    await page.getByLabel("add a label to walk-by-the-door-of-the-lab").fill("seen");
    await page.locator("table.list").getByRole("button", { name: "Add", exact: true }).tap();
    await page.locator("table.list .chip", { hasText: "seen" }).waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("confirmations: labelling, making a clip, changing and deleting it, and an export each show a message in view", async () => {
  const ui = await uiSession();
  const { page, base, f, errors } = ui;
  try {
    const reals = f.rows.filter((r) => r.robotId === REAL);
    await page.goto(`${base}#/robot/${REAL}`);
    const tiles = page.locator(".gallery .tile");
    await tiles.nth(reals.length - 1).waitFor();
    const toast = page.locator("#toast");
    // Far down the gallery, where the action bar sticks to the bottom of the window.
    await tiles.nth(30).scrollIntoViewIfNeeded();
    await tiles.nth(30).click({ modifiers: ["Control"] });
    await tiles.nth(32).click({ modifiers: ["Shift"] });
    await assertInView(page, page.locator(".actionbar"), "the action bar");
    await page.getByLabel("label", { exact: true }).fill("door_open");
    await page.getByRole("button", { name: "Add label" }).click();
    await toast.getByText("3 frame(s) labelled door_open").waitFor();
    await assertInView(page, toast, "the label confirmation");
    await ui.shot(page, "fixes-7-label-toast", "robot view: the label confirmation under the header");
    // Still there a moment later.
    await page.waitForTimeout(1500);
    await assertInView(page, toast, "the label confirmation after 1.5 s");
    await page.getByLabel("clip name").fill("door-opens");
    await page.getByRole("button", { name: "Make clip" }).click();
    await toast.getByText("clip door-opens made: 3 frames").waitFor();
    await assertInView(page, toast, "the clip confirmation");

    // The clips page re-renders after each change; the message survives it.
    await page.goto(`${base}#/clips`);
    await page.getByLabel("add a label to door-opens").fill("reviewed-by-hand");
    await page.locator("table.list").getByRole("button", { name: "Add", exact: true }).click();
    await toast.getByText("clip door-opens labelled reviewed-by-hand").waitFor();
    await assertInView(page, toast, "the clip label confirmation");
    page.once("dialog", (d) => d.accept());
    await page.locator("table.list").getByRole("button", { name: "Delete" }).click();
    await toast.getByText("deleted clip door-opens").waitFor();
    await page.locator(".empty", { hasText: "No clips yet" }).waitFor();
    await assertInView(page, toast, "the clip deletion confirmation (after the list re-rendered)");

    // An export says how it ended next to its link.
    await page.goto(`${base}#/search?label=door_open`);
    await page.locator("#export-link").waitFor();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.locator("#export-link").click(),
    ]);
    await download.path();
    await page.locator('.export-status[data-state="complete"]').waitFor();
    await assertInView(page, page.locator(".export-status"), "the export's outcome");
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("a server that went away: the page says it does not answer (no blank page) and Try again recovers", async () => {
  const ui = await uiSession();
  const { page, errors } = ui;
  try {
    const first = ui.serve();
    const port = Number(new URL(first.base).port);
    await page.goto(first.base);
    await page.locator(".card").first().waitFor();
    await first.shutdown();
    await page.locator("#nav a", { hasText: "Labels" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match(
      (await alert.textContent())!,
      new RegExp(`does not answer .*is frame-bucket's server \\(deno task serve\\) running`),
    );
    assert.match((await alert.textContent())!, new RegExp(`127\\.0\\.0\\.1:${port}`));
    await ui.shot(page, "fixes-8-unreachable", "labels page with the server gone: what failed and Try again");
    // An action on a page already shown says so too.
    await page.locator("#nav a", { hasText: "Robots" }).click();
    // The Labels alert stays until the hash change re-renders; the Robots link turns active only after that
    // render cleared the old view, so the alert waited on next is the Robots page's own (else the server below
    // could come back before Robots asked it, and no alert would ever show).
    await page.locator("#nav a.active", { hasText: "Robots" }).waitFor();
    await alert.waitFor();
    // The server is back: Try again shows the page.
    ui.serve({}, port);
    await alert.getByRole("button", { name: "Try again" }).click();
    await page.locator(".card").first().waitFor();
    assert.equal(await page.getByRole("alert").count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("result tiles name their robot: search results and frames like a photo", async () => {
  const ui = await uiSession();
  const { page, base, errors } = ui;
  try {
    await page.goto(`${base}#/search?order=oldest`);
    const tiles = page.locator(".gallery[data-primary] .tile");
    await tiles.nth(51).waitFor();
    const named = await tiles.evaluateAll((els) =>
      els.map((el) => [el.dataset.robot, el.querySelector(".robot")?.textContent ?? null])
    );
    assert.equal(named.length, 52);
    for (const [robot, shown] of named) assert.equal(shown, robot);
    assert.deepEqual([...new Set(named.map(([r]) => r))].sort(), [SYNTH, REAL].sort());
    await page.locator('.similar-box input[type="file"]').setInputFiles(sampleFiles()[0]);
    await page.locator(".similar-box .similar-tile").first().waitFor();
    const similar = await page.locator(".similar-box .similar-tile .robot").allTextContents();
    assert.ok(similar.length > 0 && similar.every((r) => r === REAL), similar.join(","));
    await ui.shot(page, "fixes-9-robot-names", "search: each tile names its robot");
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("timeline: double-click zooms to bars of a second, and a drag across three of them makes a 3-second clip", async () => {
  const ui = await uiSession();
  const { page, base, f, errors } = ui;
  try {
    // A burst: the real samples one second apart, two hours after one lone frame.
    const robot = "reachy-burst";
    const burstAt = T0 + 2 * 3_600_000 + 10_500;
    const samples = readSamples();
    const rows: FrameRow[] = [];
    for (let i = 0; i <= samples.length; i++) {
      const ts = i === 0 ? T0 : burstAt + (i - 1) * 1000;
      const jpeg = samples[Math.max(0, i - 1)];
      const key = objectKey("frames/", robot, ts, 500 + i);
      const { etag } = await f.local.put(key, jpeg, { contentType: "image/jpeg" });
      rows.push({
        key,
        robotId: robot,
        timestampMs: ts,
        seq: 500 + i,
        size: jpeg.length,
        etag: etag ?? null,
        filter: "ahash",
        distance: 30,
        hash: await f.hasher.hash(jpeg, robot),
        tier: "local",
        tierChangedMs: ts,
        storedMs: ts,
      });
    }
    await f.catalog.upsertMany(rows);

    await page.goto(`${base}#/robot/${robot}`);
    await page.locator(".gallery .tile").nth(rows.length - 1).waitFor();
    const slots = page.locator("svg.timeline g.slot");
    // Two hours: bars of a minute; the burst is all in the last one.
    assert.equal(await slots.count(), 121);
    assert.match((await slots.last().getAttribute("aria-label"))!, /11:00:00Z \(minute\): 10 frames/);
    await slots.last().dblclick();
    await page.waitForFunction(() => document.querySelectorAll("svg.timeline g.slot").length === 60);
    assert.match((await slots.nth(10).getAttribute("aria-label"))!, /11:00:10Z \(second\): 1 frames/);
    assert.match(
      decodeURIComponent(page.url()),
      /zoom_from=2026-02-18T11:00:00Z&zoom_to=2026-02-18T11:00:59\.999Z/,
    );
    // Drag from second 13 to second 15.
    const a = (await slots.nth(13).boundingBox())!, b = (await slots.nth(15).boundingBox())!;
    await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
    await page.mouse.down();
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelectorAll(".gallery .tile").length === 3);
    assert.match(decodeURIComponent(page.url()), /from=2026-02-18T11:00:13Z&to=2026-02-18T11:00:15\.999Z/);
    assert.equal(await page.locator("svg.timeline g.slot.picked").count(), 3);
    await page.getByLabel("clip name").fill("blink");
    await page.getByRole("button", { name: "Make clip" }).click();
    await page.locator("#toast").getByText("clip blink made: 3 frames").waitFor();
    await page.locator("button.clip", { hasText: "blink" }).waitFor();
    const clips = await f.catalog.labels().listClips({ robotId: robot });
    assert.deepEqual(clips.map((c) => [c.name, c.fromMs - burstAt + 10_500, c.toMs - burstAt + 10_500]), [
      ["blink", 13_000, 15_999],
    ]);
    await ui.shot(
      page,
      "fixes-10-seconds",
      "timeline zoomed to one minute in seconds, a 3-second clip picked",
    );
    // Zoom out: the hour around it, in minutes.
    await page.getByRole("button", { name: "Zoom out" }).click();
    // The seconds view has 60 bars too: wait for bars of a minute, not just for 60 bars.
    await page.waitForFunction(() =>
      document.querySelectorAll("svg.timeline g.slot").length === 60 &&
      document.querySelector("svg.timeline g.slot")?.getAttribute("aria-label")?.includes("(minute)")
    );
    assert.match((await slots.first().getAttribute("aria-label"))!, /11:00:00Z \(minute\)/);
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});

Deno.test("export link: shown only when the export can work (a label, frames matching, no case clash); says why otherwise", async () => {
  const ui = await uiSession();
  const { page, base, f, errors } = ui;
  try {
    const reals = f.rows.filter((r) => r.robotId === REAL);
    const labels = f.catalog.labels();
    await labels.addLabels({ keys: reals.slice(0, 3).map((r) => r.key) }, ["person"]);
    await labels.addLabels({ keys: [reals[5].key] }, ["Person"]);
    await labels.defineLabel("forklift", { color: "#aa5500" });
    const link = page.locator("#export-link");
    const note = page.locator(".view-head .export-note");
    const cases: [string, RegExp][] = [
      ["#/search", /^Pick a label to export a dataset\.$/],
      [`#/search?label=person&robot=${SYNTH}`, /^Nothing to export: no frame matches\.$/],
      ["#/search?label=forklift", /^Nothing to export: no frame matches\.$/],
      ["#/search?label=no-such-label", /^Nothing to export: unknown label "no-such-label"/],
      [
        "#/search?label=person&label=Person",
        /^Cannot export person and Person together: they differ only in case/,
      ],
    ];
    for (const [hash, why] of cases) {
      await page.goto(base + hash);
      await page.locator(".gallery-status:not(:text('Loading…'))").waitFor();
      await page.waitForFunction(() => document.querySelector(".view-head .export-note")?.textContent !== "");
      assert.equal(await link.isVisible(), false, hash);
      assert.match((await note.textContent())!, why, hash);
    }
    await ui.shot(
      page,
      "fixes-11-export-hidden",
      "search: no export link, and why (labels differing only in case)",
    );
    await page.goto(`${base}#/search?label=person`);
    await link.waitFor();
    assert.equal(await note.textContent(), "");
    // The labels page: a label of the set with no frames has no Export link.
    await page.goto(`${base}#/labels`);
    const row = (name: string) =>
      page.locator("table.list tbody tr", { has: page.getByText(name, { exact: true }) });
    await row("person").locator(".export a").waitFor();
    await row("forklift").locator(".export-note", { hasText: "no frame matches" }).waitFor();
    assert.equal(await row("forklift").locator(".export a").isVisible(), false);
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});
