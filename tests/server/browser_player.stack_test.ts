/**
 * The player in a real browser (Chromium through Playwright, tests/support/browser.ts) against the HTTP server over
 * the UI fixture, with a robot of 600 frames at 10 fps made of the real reachy-001 samples (1920 × 1080 JPEGs, each
 * stored 60 times under its own key in the stack's S3): a minute played at 1x from the robot page's Play, with the
 * frames shown, shown late (more than one frame interval after they were due), skipped and the stalls printed
 * (only progress and the end are asserted: the box is shared and busy); the clock at 4x and a run at 8x; `,` and
 * `.` steps; the boxes drawn over the frame on their pixels; a bar of the scrubber; the frame page and back; Play
 * from a clip and from a search. Screenshots go to $TMPDIR/frame-bucket-ui/player/.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import { objectKey } from "../../src/key.ts";
import { mapLimited } from "../../src/map_limited.ts";
import { imageLoaded, SHOTS as UI_SHOTS, uiSession } from "../support/browser.ts";
import { readSamples } from "../support/images.ts";
import { T0 } from "../support/rows.ts";

// The page functions below run in the browser; this file is type-checked without the DOM library.
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const performance: any;

const SHOTS = `${UI_SHOTS}/player`;
const ROBOT = "reachy-play";
const FRAMES = 600;
const FPS = 10;
/** Whole seconds, so the scrubber's second bars start with a frame. */
const START = T0 + 2 * 86_400_000;
const BOXED = { from: 100, to: 199 };

interface PlayerState {
  state: string;
  index: number;
  key: string;
  position: number;
  speed: number;
  shown: number;
  late: number;
  skipped: number;
  stalls: number;
  frames: number;
}

function playerState(page: Page): Promise<PlayerState> {
  return page.evaluate(() => {
    const d = document.getElementById("player").dataset;
    return {
      state: d.state,
      index: Number(d.index),
      key: d.key,
      position: Number(d.position),
      speed: Number(d.speed),
      shown: Number(d.shown),
      late: Number(d.late),
      skipped: Number(d.skipped),
      stalls: Number(d.stalls),
      frames: Number(d.frames),
    };
  });
}

/** Waits until the player is there with `frames` frames and its first frame drawn. */
async function playerReady(page: Page, frames: number): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const el = document.getElementById("player");
      const canvas = el?.querySelector(".player-canvas");
      return el && Number(el.dataset.frames) === n && canvas?.width > 0 && el.dataset.state === "paused";
    },
    frames,
    { timeout: 120_000 },
  );
}

/** Waits until the frame on screen is `index`. */
function atIndex(page: Page, index: number): Promise<unknown> {
  return page.waitForFunction((i) => Number(document.getElementById("player").dataset.index) === i, index);
}

/**
 * Plays from the start at `speed` until the end, polling the frame on screen; returns the player's counts and
 * how long it took. Progress is asserted (the frame on screen moves on between polls), never how fast.
 */
async function playThrough(page: Page, speed: number): Promise<PlayerState & { wallMs: number }> {
  await page.selectOption("#player-speed", String(speed));
  const started = Date.now();
  await page.locator("#player-play").click();
  await page.waitForFunction(() => document.getElementById("player").dataset.state !== "paused");
  let last = -1, stuckSince = Date.now();
  for (;;) {
    const s = await playerState(page);
    if (s.state === "ended") return { ...s, wallMs: Date.now() - started };
    if (s.index > last) {
      last = s.index;
      stuckSince = Date.now();
    }
    // Generous: a frame must come within two minutes however busy the machine is.
    assert.ok(Date.now() - stuckSince < 120_000, `playback stopped at frame ${last} (${JSON.stringify(s)})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Where the boxes' rectangles are on the screen, and where their pixels are on the drawn frame. */
function boxAlignment(page: Page) {
  return page.evaluate(() => {
    const stage = document.querySelector(".player-stage").getBoundingClientRect();
    const svg = document.querySelector(".player-boxes");
    const vb = svg.viewBox.baseVal;
    return [...svg.querySelectorAll("g.box")].map((g) => {
      const rect = g.querySelector(".box-rect");
      const r = rect.getBoundingClientRect();
      const k = stage.width / vb.width;
      return {
        label: g.dataset.label,
        tag: g.querySelector("text").textContent,
        drawn: { left: r.left, top: r.top, width: r.width },
        image: {
          left: stage.left + Number(rect.getAttribute("x")) * k,
          top: stage.top + Number(rect.getAttribute("y")) * k,
          width: Number(rect.getAttribute("width")) * k,
        },
      };
    });
  });
}

Deno.test("player: a minute at 10 fps of real full-HD frames, speed, steps, boxes, scrubber, frame page", async () => {
  await Deno.remove(SHOTS, { recursive: true }).catch(() => {});
  await Deno.mkdir(SHOTS, { recursive: true });
  const s = await uiSession();
  const { f, page, base } = s;
  const rows: FrameRow[] = [];
  try {
    // ---- 600 frames of one robot at 10 fps: the ten real samples in turn, each under its own key.
    const samples = readSamples();
    for (let i = 0; i < FRAMES; i++) {
      const ts = START + i * (1000 / FPS);
      rows.push({
        key: objectKey("frames/", ROBOT, ts, i),
        robotId: ROBOT,
        timestampMs: ts,
        seq: i,
        size: samples[i % samples.length].length,
        etag: null,
        filter: "ahash",
        distance: 12,
        hash: null,
        tier: "local",
        tierChangedMs: ts,
        storedMs: ts,
      });
    }
    await mapLimited(rows, 8, async (row) => {
      const jpeg = samples[row.seq % samples.length];
      const { etag } = await f.local.put(row.key, jpeg, { contentType: "image/jpeg" });
      row.etag = etag ?? null;
    });
    await f.catalog.upsertMany(rows);
    const labels = f.catalog.labels();
    // A person walking right over frames 100-199; the first five seconds labelled "arm"; a clip of 30-40 s.
    await labels.addBoxes(
      rows.slice(BOXED.from, BOXED.to + 1).map((row, i) => ({
        key: row.key,
        label: "person",
        x: 200 + i * 10,
        y: 300,
        w: 240,
        h: 500,
        imageWidth: 1920,
        imageHeight: 1080,
      })),
    );
    await labels.addLabels({ keys: rows.slice(0, 50).map((r) => r.key) }, ["arm"]);
    await labels.createClip({
      robotId: ROBOT,
      fromMs: START + 30_000,
      toMs: START + 39_999,
      name: "dock-1",
      labels: ["docking"],
    });

    // ---- the robot page's Play: its picked span
    const span = `from=${new Date(START).toISOString()}&to=${new Date(START + 59_999).toISOString()}`;
    await page.goto(`${base}#/robot/${ROBOT}?${span}`);
    await page.locator("#play-span").click();
    await page.waitForURL((url) => url.hash.startsWith("#/play?"));
    await playerReady(page, FRAMES);
    assert.equal((await playerState(page)).index, 0);
    await s.shot(page, "player/ready", "the player opened from the robot page: frame 1 of 600, paused");

    // ---- a minute at 1x
    const one = await playThrough(page, 1);
    console.log(
      `playback 1x, ${FRAMES} frames at ${FPS} fps of real 1920x1080 JPEGs (60 s): ${one.shown} frames shown, ` +
        `${one.late} shown late (more than ${1000 / FPS} ms after due), ${one.skipped} skipped, ` +
        `${one.stalls} stalls, ${(one.wallMs / 1000).toFixed(1)} s from the click to the end`,
    );
    assert.equal(one.state, "ended");
    assert.equal(one.index, FRAMES - 1);
    // Every frame after the first was shown or passed over, none twice.
    assert.equal(one.shown + one.skipped, FRAMES - 1);
    assert.ok(one.shown > 0);
    await s.shot(
      page,
      "player/ended",
      "after a minute at 1x: the last frame, Play again, the counts of the run",
    );

    // ---- speed: the clock runs at 4x (a window without a stall), and a run at 8x to the end
    await page.selectOption("#player-speed", "4");
    await page.locator("#player-play").click();
    let ratio = 0;
    for (let attempt = 0; attempt < 20 && ratio === 0; attempt++) {
      const read = () =>
        page.evaluate(() => {
          const d = document.getElementById("player").dataset;
          return { position: Number(d.position), now: performance.now(), stalls: d.stalls, state: d.state };
        });
      const a = await read();
      await new Promise((r) => setTimeout(r, 1000));
      const b = await read();
      if (a.state === "playing" && b.state === "playing" && a.stalls === b.stalls) {
        ratio = (b.position - a.position) / (b.now - a.now);
      }
      if (b.state === "ended") break;
    }
    console.log(`at 4x the player's clock ran ${ratio.toFixed(2)} times the wall clock`);
    assert.ok(ratio > 3 && ratio < 5, `4x: the clock ran ${ratio} times as fast as the wall clock`);
    await page.waitForFunction(() => document.getElementById("player").dataset.state === "ended", null, {
      timeout: 180_000,
    });
    const eight = await playThrough(page, 8);
    console.log(
      `playback 8x (80 frames/s due): ${eight.shown} frames shown, ${eight.late} late, ${eight.skipped} skipped, ` +
        `${eight.stalls} stalls, ${(eight.wallMs / 1000).toFixed(1)} s`,
    );
    assert.equal(eight.state, "ended");
    assert.equal(eight.shown + eight.skipped, FRAMES - 1);
    assert.equal((await playerState(page)).speed, 8);

    // ---- `,` and `.` step a frame (the keys go to the page)
    await page.locator(".player-canvas").click();
    await page.keyboard.press(",");
    await atIndex(page, FRAMES - 2);
    await page.keyboard.press(",");
    await page.keyboard.press(".");
    await atIndex(page, FRAMES - 2);
    assert.equal((await playerState(page)).key, rows[FRAMES - 2].key);

    // ---- the slider goes to a time: the frame on screen then; `.` steps on with the box moving along
    await page.evaluate((t) => {
      const slider = document.getElementById("player-slider");
      slider.value = String(t);
      slider.dispatchEvent(new Event("input", { bubbles: true }));
    }, rows[150].timestampMs + 50);
    await atIndex(page, 150);
    await page.waitForFunction(() => document.querySelectorAll(".player-boxes g.box").length === 1);
    for (let i = 0; i < 3; i++) await page.keyboard.press(".");
    await atIndex(page, 153);
    await page.waitForFunction(
      () => document.querySelector(".player-boxes .box-rect")?.getAttribute("x") === String(200 + 53 * 10),
    );
    const [aligned] = await boxAlignment(page);
    assert.equal(aligned.label, "person");
    assert.equal(aligned.tag, "person");
    for (const side of ["left", "top", "width"] as const) {
      assert.ok(
        Math.abs(aligned.drawn[side] - aligned.image[side]) < 3,
        `box ${side}: ${aligned.drawn[side]} on screen, ${aligned.image[side]} on the frame`,
      );
    }
    const chips = await page.locator(".player-labels .chip").allTextContents();
    assert.deepEqual(chips, ["person"]);
    await page.waitForFunction(() => document.querySelector(".player-canvas").width > 0);
    await s.shot(
      page,
      "player/boxes",
      "frame 154 paused: the person box over the frame with its tag, label chip",
    );

    // ---- a bar of the scrubber: that second's first frame
    await page.locator(`.player-scrubber g.slot[data-start="${START + 42_000}"] rect.hit`).click();
    await atIndex(page, 420);

    // ---- the frame page, and back to the same frame
    await page.locator(".player-canvas").click();
    await page.keyboard.press(".");
    await atIndex(page, 421);
    await page.locator("#player-frame-link").click();
    await page.waitForURL((url) => url.hash.startsWith(`#/frame/${encodeURIComponent(rows[421].key)}`));
    await imageLoaded(page, "#frame-image");
    await page.keyboard.press("Escape");
    await page.waitForURL((url) => url.hash.startsWith("#/play?"));
    await playerReady(page, FRAMES);
    assert.equal((await playerState(page)).index, 421);

    // ---- Play on a clip: the clip's span only
    await page.goto(`${base}#/clips`);
    await page.locator("tr", { hasText: "dock-1" }).locator("button.play").click();
    await playerReady(page, 100);
    assert.match(await page.locator("#player h1, .view-head h1").first().textContent() ?? "", /dock-1/);
    assert.equal((await playerState(page)).key, rows[300].key);
    await page.locator("#player-play").click();
    await page.waitForFunction(() => Number(document.getElementById("player").dataset.index) > 5);
    await s.shot(page, "player/clip", "Play on the clip dock-1 (30-40 s): its frames playing, its bars");

    // ---- Play on a search: the frames with a person box, oldest first
    await page.goto(`${base}#/search?label=person&robot=${ROBOT}`);
    await page.locator("#play-search").click();
    await playerReady(page, BOXED.to - BOXED.from + 1);
    assert.equal((await playerState(page)).key, rows[BOXED.from].key);

    assert.deepEqual(s.errors, []);
    console.log(`screenshots:\n${s.shots.join("\n")}`);
  } catch (error) {
    // What the page showed, to tell a slow machine from a broken player.
    const shown = await page.evaluate(() => document.getElementById("view")?.innerText.slice(0, 800))
      .catch(() => "(no page)");
    console.log(
      `the page at ${page.url()} when the test failed (page errors: ${s.errors.join("; ")}):\n${shown}`,
    );
    throw error;
  } finally {
    // The 600 objects (about 100 MB) go; the fixture's own stay as the other browser tests leave them.
    await mapLimited(rows, 8, (row) => f.local.delete(row.key).catch(() => {}));
    await s.close();
  }
});

Deno.test("player: frames minutes apart are held until the next one; fits a 390 px phone", async () => {
  await Deno.mkdir(SHOTS, { recursive: true });
  const s = await uiSession({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const { f, page, base } = s;
  try {
    // reachy-001 in the fixture: 40 real frames 6 minutes apart (a filter that kept one frame in 3600).
    const reals = f.rows.filter((r) => r.robotId === "reachy-001");
    await page.goto(`${base}#/play?robot=reachy-001`);
    await playerReady(page, reals.length);
    const widths = await page.evaluate(() => ({
      inner: document.documentElement.clientWidth,
      page: document.documentElement.scrollWidth,
    }));
    assert.equal(widths.page, widths.inner, `the player is wider than the phone: ${JSON.stringify(widths)}`);
    // Playing: the first frame stays on screen, the clock runs on towards the next one 6 minutes later.
    await page.locator("#player-play").click();
    await page.waitForFunction(() => Number(document.getElementById("player").dataset.position) > 0);
    const before = await playerState(page);
    await page.waitForFunction(
      (p) => Number(document.getElementById("player").dataset.position) > p + 500,
      before.position,
    );
    const playing = await playerState(page);
    assert.equal(playing.state, "playing");
    assert.equal(playing.index, 0);
    await page.locator("#player-play").click();
    // A time between two kept frames shows the earlier one: the scene as it was then.
    await page.evaluate((t) => {
      const slider = document.getElementById("player-slider");
      slider.value = String(t);
      slider.dispatchEvent(new Event("input", { bubbles: true }));
    }, reals[7].timestampMs + 200_000);
    await atIndex(page, 7);
    assert.equal((await playerState(page)).key, reals[7].key);
    await s.shot(
      page,
      "player/phone",
      "the player at 390 px: reachy-001's frames 6 minutes apart, frame 8 held",
      true,
    );
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }
});
