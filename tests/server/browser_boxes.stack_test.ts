/**
 * Labelling with boxes in a real browser (Chromium through Playwright, tests/support/browser.ts) against the HTTP
 * server over the UI fixture: the real reachy-001 samples (1920 × 1080 JPEGs) stored in the stack's S3. Each test
 * is one flow a labeller goes through, checked on the page and through the API (boxes stored with the exact
 * pixels the mouse gave): drawing with class hotkeys, moving and resizing by keyboard and mouse, pre-labels,
 * review with `n`, zoom, the focus after a whole-frame label, the label set's colours and hotkeys, undo from the
 * History, boxes on thumbnails. Two scripted sessions count the keystrokes and clicks a labeller needs (printed),
 * and screenshots of the frame page go to $TMPDIR/frame-bucket-ui/boxes/.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { DEFAULT_LABEL_LIMITS } from "../../src/catalog/rules.ts";
import { imageName } from "../../src/library/image_names.ts";
import { imageLoaded, SHOTS as UI_SHOTS, type UiSession, uiSession } from "../support/browser.ts";
import { REAL } from "../support/ui_fixture.ts";

// The page functions below run in the browser; this file is type-checked without the DOM library.
// deno-lint-ignore no-explicit-any
declare const document: any;

// Screenshots of the labelling pages, beside those of the other browser tests.
const SHOTS = `${UI_SHOTS}/boxes`;

// ------------------------------------------------------------------------------------------------ helpers

interface BoxJson {
  id: number;
  key: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  unit: "px" | "norm";
  image_width: number;
  image_height: number;
  confidence: number | null;
  source: string;
  accepted: boolean;
}

/** Calls the server's API directly (what the page stored, set-up the page need not do). */
async function call<T = Record<string, unknown>>(
  base: string,
  path: string,
  body?: unknown,
  method = body === undefined ? "GET" : "POST",
): Promise<T> {
  const response = await fetch(new URL(path.replace(/^\//, ""), base), {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

const framePath = (key: string, what = "") =>
  `/api/frames/${encodeURIComponent(key)}${what ? `/${what}` : ""}`;

async function frameOf(base: string, key: string) {
  return await call<{ boxes: BoxJson[]; status: string; labels: string[] }>(base, framePath(key));
}

/** Polls until `check` passes (it throws until then); its last error when it never does. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > end) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The frame's boxes once `check` holds for them. */
function boxesWhen(base: string, key: string, check: (boxes: BoxJson[]) => void): Promise<BoxJson[]> {
  return eventually(async () => {
    const { boxes } = await frameOf(base, key);
    check(boxes);
    return boxes;
  });
}

/** Keystrokes (a chord such as Shift+Tab is one), clicks and drags a flow used. */
class Counted {
  keys = 0;
  clicks = 0;
  drags = 0;
  constructor(readonly page: Page) {}

  async press(key: string, times = 1): Promise<void> {
    for (let i = 0; i < times; i++) {
      this.keys++;
      await this.page.keyboard.press(key);
    }
  }

  async type(text: string): Promise<void> {
    this.keys += text.length;
    await this.page.keyboard.type(text);
  }

  async click(selector: string): Promise<void> {
    this.clicks++;
    await this.page.locator(selector).click();
  }

  /** Drags on the frame image from one image pixel to another; returns the rectangle the page stores. */
  async drag(from: Point, to: Point): Promise<Rect> {
    this.drags++;
    return await dragImage(this.page, from, to);
  }

  get summary(): string {
    return `${this.keys} keystrokes, ${this.clicks} clicks, ${this.drags} mouse drags`;
  }
}

interface Point {
  x: number;
  y: number;
}
interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where the box layer is on the screen and the image size it spans (its viewBox). */
interface Layer {
  left: number;
  top: number;
  width: number;
  height: number;
  imageWidth: number;
  imageHeight: number;
}

async function layer(page: Page): Promise<Layer> {
  // The layer is sized once its image is laid out; before that a drag would aim at NaN (a busy machine).
  await page.waitForFunction(() => {
    const svg = document.querySelector(".box-layer");
    return !!svg && svg.viewBox.baseVal.width > 0 && svg.getBoundingClientRect().width > 0;
  });
  return await page.evaluate(() => {
    const svg = document.querySelector(".box-layer");
    const r = svg.getBoundingClientRect();
    const vb = svg.viewBox.baseVal;
    return {
      left: r.left,
      top: r.top,
      width: r.width,
      height: r.height,
      imageWidth: vb.width,
      imageHeight: vb.height,
    };
  });
}

/** The whole-CSS-pixel screen point nearest to an image pixel (the mouse moves in whole pixels). */
function screenOf(l: Layer, p: Point): Point {
  return {
    x: Math.round(l.left + (p.x * l.width) / l.imageWidth),
    y: Math.round(l.top + (p.y * l.height) / l.imageHeight),
  };
}

/** The image position (unrounded) under a screen point, as the page computes it. */
function imageAt(l: Layer, s: Point): Point {
  return { x: ((s.x - l.left) * l.imageWidth) / l.width, y: ((s.y - l.top) * l.imageHeight) / l.height };
}

/** Drags on the image; returns the rectangle the page makes of it (corners rounded to whole pixels). */
async function dragImage(page: Page, from: Point, to: Point): Promise<Rect> {
  const l = await layer(page);
  const a = screenOf(l, from), b = screenOf(l, to);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 4 });
  await page.mouse.up();
  const p = imageAt(l, a), q = imageAt(l, b);
  const x0 = Math.round(p.x), y0 = Math.round(p.y), x1 = Math.round(q.x), y1 = Math.round(q.y);
  return { x: Math.min(x0, x1), y: Math.min(y0, y1), w: Math.abs(x1 - x0), h: Math.abs(y1 - y0) };
}

/** Opens a frame page (with a search's parameters) and waits until its image, boxes and label set are there. */
async function openFrame(page: Page, base: string, key: string, search = ""): Promise<void> {
  await page.goto(`${base}#/frame/${encodeURIComponent(key)}${search ? `?${search}` : ""}`);
  await waitFrame(page, key);
}

/**
 * Waits for the page of frame `key`: its editor (by its data-key, as ← and → redraw the page and the previous
 * frame's editor is still there for a moment), image loaded, label set in, box layer sized and in the document.
 */
async function waitFrame(page: Page, key: string): Promise<void> {
  await page.waitForURL((url) => url.hash.startsWith(`#/frame/${encodeURIComponent(key)}`));
  await page.waitForFunction((k) => {
    const editors = document.querySelectorAll(".box-editor");
    if (editors.length !== 1) return false;
    const editor = editors[0];
    const img = editor.querySelector("#frame-image");
    return editor.dataset.key === k && editor.dataset.labels === "loaded" && editor.isConnected &&
      img !== null && img.complete && img.naturalWidth > 0 &&
      editor.querySelector(".box-layer[viewBox]")?.closest(".view-box")?.isConnected === true;
  }, key);
}

/** The boxes drawn on the page: id, class, whether dashed, selected, and the tag's text. */
function drawn(page: Page): Promise<
  {
    id: number;
    label: string;
    pre: boolean;
    dashed: boolean;
    selected: boolean;
    tag: string;
    stroke: string;
  }[]
> {
  return page.evaluate(() =>
    [...document.querySelectorAll(".box-layer g.box")].map((g) => {
      const rect = g.querySelector(".box-rect");
      return {
        id: Number(g.dataset.id),
        label: g.dataset.label,
        pre: g.classList.contains("pre"),
        dashed: (rect.getAttribute("stroke-dasharray") ?? "") !== "",
        selected: g.classList.contains("selected"),
        tag: g.querySelector("text").textContent,
        stroke: rect.getAttribute("stroke"),
      };
    })
  );
}

/** Waits until the page draws `n` boxes (a new box is drawn once the server has stored it). */
async function boxesShown(page: Page, n: number): Promise<void> {
  await page.waitForFunction((count) => document.querySelectorAll(".box-layer g.box").length === count, n);
}

/** The boxes drawn once `check` holds for them (the page repaints when the server has answered). */
function drawnWhen(page: Page, check: (boxes: Awaited<ReturnType<typeof drawn>>) => void) {
  return eventually(async () => {
    const boxes = await drawn(page);
    check(boxes);
    return boxes;
  });
}

/** Where a box is drawn on the screen, and where its pixels are on the shown image (both client px). */
function alignment(page: Page, id: number) {
  return page.evaluate((boxId) => {
    const img = document.getElementById("frame-image");
    const i = img.getBoundingClientRect();
    const g = document.querySelector(`.box-layer g.box[data-id="${boxId}"] .box-rect`);
    const r = g.getBoundingClientRect();
    const k = i.width / img.naturalWidth;
    const x = Number(g.getAttribute("x")), y = Number(g.getAttribute("y"));
    const w = Number(g.getAttribute("width")), h = Number(g.getAttribute("height"));
    return {
      drawn: { left: r.left, top: r.top, width: r.width, height: r.height },
      image: { left: i.left + x * k, top: i.top + y * k, width: w * k, height: h * k },
      scale: k,
    };
  }, id);
}

function assertAligned(a: Awaited<ReturnType<typeof alignment>>): void {
  for (const side of ["left", "top", "width", "height"] as const) {
    assert.ok(
      Math.abs(a.drawn[side] - a.image[side]) < 0.5,
      `box ${side} drawn at ${a.drawn[side]}, its pixels at ${a.image[side]}`,
    );
  }
}

/** The label set for the flows: two classes with colours and hotkeys 1 and 2. */
async function twoClasses(base: string): Promise<void> {
  await call(base, "/api/labels", { name: "person", color: "#e6194b", hotkey: 1 });
  await call(base, "/api/labels", { name: "door", color: "#3cb44b", hotkey: 2 });
}

/** Pre-labels for frames: COCO results of model `det` (image ids are image names, classes by name). */
async function preLabel(
  base: string,
  boxes: { key: string; label: string; bbox: [number, number, number, number]; score: number }[],
): Promise<void> {
  const r = await call<{ boxes: number; skipped: unknown[] }>(base, "/api/prelabels", {
    model: "det",
    format: "coco",
    results: boxes.map((b) => ({
      image_id: imageName(b.key),
      category_id: b.label,
      bbox: b.bbox,
      score: b.score,
    })),
  });
  assert.equal(r.boxes, boxes.length, JSON.stringify(r.skipped));
}

/** One browser flow over a fresh fixture and server; page errors fail it. */
async function flow(fn: (s: UiSession, frames: string[]) => Promise<void>): Promise<void> {
  await Deno.mkdir(SHOTS, { recursive: true });
  const s = await uiSession();
  try {
    const frames = s.f.rows.filter((r) => r.robotId === REAL).map((r) => r.key);
    await fn(s, frames);
    assert.deepEqual(s.errors, []);
  } catch (error) {
    if (s.errors.length) console.log(`page errors:\n  ${s.errors.join("\n  ")}`);
    throw error;
  } finally {
    await s.close();
  }
}

// -------------------------------------------------------------------------------------------------- flows

Deno.test("boxes: two boxes drawn with two classes by hotkey and mouse are stored with their exact pixels", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    const key = frames[5];
    await openFrame(page, base, key);
    const u = new Counted(page);
    await u.press("1");
    const first = await u.drag({ x: 200, y: 150 }, { x: 620, y: 900 });
    await u.press("2");
    // Drawn right to left, bottom to top: the same rectangle as the other way round.
    const second = await u.drag({ x: 1700, y: 1000 }, { x: 1100, y: 100 });
    const boxes = await boxesWhen(base, key, (b) => assert.equal(b.length, 2));
    const byLabel = Object.fromEntries(boxes.map((b) => [b.label, b]));
    for (const [label, rect] of [["person", first], ["door", second]] as const) {
      const b = byLabel[label];
      assert.deepEqual(
        { x: b.x, y: b.y, w: b.w, h: b.h, unit: b.unit },
        { ...rect, unit: "px" },
        `${label} box`,
      );
      assert.deepEqual([b.image_width, b.image_height, b.source, b.accepted], [1920, 1080, "human", true]);
    }
    // The drag's corners are near where the test aimed (the screen has fewer pixels than the image).
    const l = await layer(page);
    const slack = l.imageWidth / l.width;
    assert.ok(Math.abs(first.x - 200) <= slack && Math.abs(first.x + first.w - 620) <= slack);
    // On the page: in the label set's colours, solid (a person's boxes), none selected.
    await boxesShown(page, 2);
    const shown = await drawn(page);
    assert.deepEqual(
      shown.map((b) => [b.label, b.stroke, b.dashed, b.selected]).sort(),
      [["door", "#3cb44b", false, false], ["person", "#e6194b", false, false]],
    );
    assert.equal(await page.locator("#review-status").getAttribute("data-status"), "labelled");
    assert.equal(u.summary, "2 keystrokes, 0 clicks, 2 mouse drags");
  });
});

Deno.test("boxes: Tab selects, arrows move (Alt: 10 px), Shift+arrows resize, Delete removes", async () => {
  await flow(async ({ base, page }, frames) => {
    const key = frames[6];
    const { boxes: [made] } = await call<{ boxes: BoxJson[] }>(base, framePath(key, "boxes"), {
      boxes: [{ label: "cart", x: 100, y: 100, w: 200, h: 100 }, {
        label: "cart",
        x: 900,
        y: 500,
        w: 50,
        h: 60,
      }],
    });
    await openFrame(page, base, key);
    const u = new Counted(page);
    await u.press("Tab");
    assert.deepEqual((await drawn(page)).map((b) => b.selected), [true, false]);
    assert.equal(await page.locator(".box-item.selected .box-label").textContent(), "cart");
    await u.press("ArrowRight", 3);
    await u.press("Alt+ArrowDown");
    await u.press("Shift+ArrowRight", 2);
    await u.press("Shift+Alt+ArrowUp");
    await u.press("ArrowLeft");
    // Alt+← and Alt+→ move it 10 px each way (not the browser's history back and forward).
    await u.press("Alt+ArrowLeft");
    await u.press("Alt+ArrowRight");
    // Still on this frame (← moved the box, not to the previous frame); a run of keys is saved once.
    assert.ok(page.url().includes(encodeURIComponent(key)));
    await boxesWhen(base, key, (b) => {
      const box = b.find((x) => x.id === made.id)!;
      assert.deepEqual([box.x, box.y, box.w, box.h], [102, 110, 202, 90]);
    });
    const journal = await call<{ changes: { action: string }[] }>(base, "/api/changes?order=newest&limit=5");
    assert.equal(journal.changes.filter((c) => c.action === "box.update").length, 1);

    // The other box: Tab on; the mouse moves it by its body and resizes it by a corner handle.
    await u.press("Tab");
    const second = (await drawn(page)).find((b) => b.selected)!;
    assert.notEqual(second.id, made.id);
    const l = await layer(page);
    const grab = screenOf(l, { x: 925, y: 530 }), drop = screenOf(l, { x: 1025, y: 480 });
    await page.mouse.move(grab.x, grab.y);
    await page.mouse.down();
    await page.mouse.move(drop.x, drop.y, { steps: 5 });
    await page.mouse.up();
    const dx = Math.round(imageAt(l, drop).x - imageAt(l, grab).x);
    const dy = Math.round(imageAt(l, drop).y - imageAt(l, grab).y);
    const moved = await boxesWhen(base, key, (b) => {
      const box = b.find((x) => x.id === second.id)!;
      assert.deepEqual([box.x, box.y, box.w, box.h], [900 + dx, 500 + dy, 50, 60]);
    });
    const m = moved.find((x) => x.id === second.id)!;
    // The bottom-right handle, dragged out to (1200, 800).
    const corner = screenOf(l, { x: m.x + m.w, y: m.y + m.h }), to = screenOf(l, { x: 1200, y: 800 });
    await page.mouse.move(corner.x, corner.y);
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: 5 });
    await page.mouse.up();
    const end = imageAt(l, to);
    await boxesWhen(base, key, (b) => {
      const box = b.find((x) => x.id === second.id)!;
      assert.deepEqual(
        [box.x, box.y, box.x + box.w, box.y + box.h],
        [m.x, m.y, Math.round(end.x), Math.round(end.y)],
      );
    });

    // Delete takes the selected box away; Backspace the other once Tab selects it.
    await u.press("Delete");
    await boxesWhen(base, key, (b) => assert.deepEqual(b.map((x) => x.id), [made.id]));
    assert.equal((await drawn(page)).length, 1);
    await u.press("Tab");
    await u.press("Backspace");
    await boxesWhen(base, key, (b) => assert.equal(b.length, 0));
    assert.equal(await page.locator("#review-status").getAttribute("data-status"), "unlabelled");
  });
});

Deno.test("boxes: 1–9 set the class of the selected box and of the next one; a free key says so", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    const key = frames[7];
    await openFrame(page, base, key);
    // The class chips show the label set's keys.
    assert.deepEqual(await page.locator(".class-chip").allTextContents(), ["1person", "2door"]);
    await page.keyboard.press("2");
    assert.equal(await page.locator("#box-class").inputValue(), "door");
    assert.equal(await page.locator(".class-chip.current").getAttribute("data-label"), "door");
    await dragImage(page, { x: 300, y: 300 }, { x: 500, y: 600 });
    const [box] = await boxesWhen(base, key, (b) => assert.deepEqual(b.map((x) => x.label), ["door"]));
    // A new box is not selected: the next key picks the class of the next box, not this one.
    await page.keyboard.press("1");
    await page.waitForTimeout(300);
    assert.equal((await frameOf(base, key)).boxes[0].label, "door");
    // Selected, the key changes its class.
    await boxesShown(page, 1);
    await page.keyboard.press("Tab");
    await page.keyboard.press("1");
    await boxesWhen(base, key, (b) => assert.deepEqual(b.map((x) => [x.id, x.label]), [[box.id, "person"]]));
    await page.locator('.box-layer g.box[data-label="person"]').waitFor();
    assert.equal((await drawn(page))[0].stroke, "#e6194b");
    // A key no class has: a message, nothing changes.
    await page.keyboard.press("7");
    await page.locator("#toast", { hasText: "No class has the key 7" }).waitFor();
    // The class stays picked on the next frame (→ with the box deselected by Esc).
    await page.keyboard.press("Escape");
    await page.keyboard.press("ArrowRight");
    await waitFrame(page, frames[8]);
    assert.equal(await page.locator("#box-class").inputValue(), "person");
    await dragImage(page, { x: 10, y: 10 }, { x: 110, y: 210 });
    await boxesWhen(base, frames[8], (b) => assert.deepEqual(b.map((x) => x.label), ["person"]));
    // No class picked yet (a fresh tab): the drawn rectangle waits while the class is typed.
    const other = await page.context().newPage();
    await openFrame(other, base, frames[9]);
    assert.equal(await other.locator("#box-class").inputValue(), "");
    await dragImage(other, { x: 400, y: 400 }, { x: 800, y: 700 });
    await other.locator(".box-layer .draft").waitFor();
    await other.waitForFunction(() => document.activeElement?.id === "box-class");
    await other.keyboard.type("trolley");
    await other.keyboard.press("Enter");
    await boxesWhen(base, frames[9], (b) => assert.deepEqual(b.map((x) => x.label), ["trolley"]));
    assert.equal(await other.locator(".box-layer .draft").count(), 0);
    await other.close();
  });
});

Deno.test("pre-labels: dashed with their confidence; Enter accepts the selected one, then all; Delete removes one", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    const key = frames[12];
    await preLabel(base, [
      { key, label: "person", bbox: [400, 200, 300, 700], score: 0.91 },
      { key, label: "door", bbox: [1200, 100, 400, 900], score: 0.64 },
      { key, label: "person", bbox: [50, 600, 120, 300], score: 0.33 },
    ]);
    await call(base, framePath(key, "boxes"), {
      boxes: [{ label: "door", x: 1650, y: 300, w: 200, h: 500 }],
    });
    await openFrame(page, base, key);
    const shown = await drawn(page);
    assert.deepEqual(
      shown.map((b) => [b.tag, b.pre, b.dashed]),
      [["person 0.91", true, true], ["door 0.64", true, true], ["person 0.33", true, true], [
        "door",
        false,
        false,
      ]],
    );
    assert.equal(await page.locator(".box-item .pre-tag").count(), 3);
    await page.screenshot({ path: `${SHOTS}/prelabels-dashed.png` });

    // Tab to the first, Enter: that one is a person's now.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await boxesWhen(base, key, (b) => assert.deepEqual(b.map((x) => x.accepted), [true, false, false, true]));
    await drawnWhen(page, (d) => assert.deepEqual(d.map((b) => b.dashed), [false, true, true, false]));
    // Shift+Tab from the first goes round to the last box, then back to the 0.33 one: Delete.
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Shift+Tab");
    assert.equal((await drawn(page)).find((b) => b.selected)?.tag, "person 0.33");
    await page.keyboard.press("Delete");
    await boxesWhen(base, key, (b) => assert.equal(b.length, 3));
    // Nothing selected (Delete took the selected box): Enter accepts every pre-label left.
    assert.ok((await drawn(page)).every((b) => !b.selected));
    await page.keyboard.press("Enter");
    await boxesWhen(base, key, (b) => assert.ok(b.every((x) => x.accepted)));
    await drawnWhen(page, (d) => assert.deepEqual(d.map((b) => b.dashed), [false, false, false]));
    await page.locator("#toast", { hasText: "accepted 1 pre-label" }).waitFor();
    const journal = await call<{ changes: { action: string }[] }>(base, "/api/changes?order=newest&limit=3");
    assert.deepEqual(journal.changes.map((c) => c.action), ["box.update", "box.delete", "box.update"]);
  });
});

Deno.test("review: r marks reviewed, x rejected, n goes to the next frame to review (or to label) in the search", async () => {
  await flow(async ({ base, page }, frames) => {
    // Frames 20, 22, 23 and 25 have pre-labels (labelled, to review); 21 and 24 have none.
    for (const i of [20, 22, 23, 25]) {
      await preLabel(base, [{ key: frames[i], label: "person", bbox: [100, 100, 200, 400], score: 0.8 }]);
    }
    // A review search: labelled frames of the robot, oldest first.
    const search = `robot=${REAL}&status=labelled&order=oldest`;
    await openFrame(page, base, frames[20], search);
    assert.equal(await page.locator("#review-status").getAttribute("data-status"), "labelled");
    assert.equal(await page.locator("#next-todo").textContent(), "Next to review (n)");
    await page.keyboard.press("r");
    await page.locator('#review-status[data-status="reviewed"]').waitFor();
    const reviewed = await frameOf(base, frames[20]);
    assert.equal(reviewed.status, "reviewed");
    assert.ok(reviewed.boxes.every((b) => b.accepted), "reviewing accepts the pre-labels left");
    await page.keyboard.press("n");
    await waitFrame(page, frames[22]);
    assert.ok(page.url().includes("status=labelled"), "the search rides along");
    await page.keyboard.press("x");
    await page.locator('#review-status[data-status="rejected"]').waitFor();
    assert.equal((await frameOf(base, frames[22])).status, "rejected");
    await page.keyboard.press("n");
    await waitFrame(page, frames[23]);
    await page.keyboard.press("r");
    await page.locator('#review-status[data-status="reviewed"]').waitFor();
    await page.keyboard.press("n");
    await waitFrame(page, frames[25]);
    await page.keyboard.press("r");
    await page.locator('#review-status[data-status="reviewed"]').waitFor();
    await page.keyboard.press("n");
    await page.locator("#toast", { hasText: "Nothing left to review" }).waitFor();
    assert.ok(page.url().includes(encodeURIComponent(frames[25])));
    // ← and → still step through the robot's frames, keeping the search.
    await page.keyboard.press("ArrowLeft");
    await waitFrame(page, frames[24]);
    assert.ok(page.url().includes("status=labelled"));

    // Opened on its own, n goes to the robot's next unlabelled frame forward in time.
    await openFrame(page, base, frames[22]);
    assert.equal(await page.locator("#next-todo").textContent(), "Next unlabelled (n)");
    await page.keyboard.press("n");
    await waitFrame(page, frames[24]);
    await page.keyboard.press("n");
    await waitFrame(page, frames[26]);
  });
});

Deno.test("zoom: + − 0 and Ctrl+wheel keep every box on its pixels; drawing while zoomed stores exact pixels", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    const key = frames[14];
    await preLabel(base, [{ key, label: "door", bbox: [1300, 150, 350, 800], score: 0.72 }]);
    const { boxes: [box] } = await call<{ boxes: BoxJson[] }>(base, framePath(key, "boxes"), {
      boxes: [{ label: "person", x: 0.25, y: 0.3, w: 0.125, h: 0.5, unit: "norm" }],
    });
    await openFrame(page, base, key);
    const fit = await alignment(page, box.id);
    assertAligned(fit);
    await page.keyboard.press("+");
    await page.keyboard.press("+");
    await page.locator("#zoom-level", { hasText: "156%" }).waitFor();
    const zoomed = await alignment(page, box.id);
    assertAligned(zoomed);
    assert.ok(Math.abs(zoomed.scale / fit.scale - 1.5625) < 0.01, `${zoomed.scale / fit.scale}`);
    // Ctrl+wheel over the person box zooms about the pointer: the box stays under it.
    const under = { x: zoomed.drawn.left + 10, y: zoomed.drawn.top + 10 };
    await page.mouse.move(under.x, under.y);
    await page.keyboard.down("Control");
    await page.mouse.wheel(0, -100);
    await page.keyboard.up("Control");
    await page.locator("#zoom-level", { hasText: "195%" }).waitFor();
    const wheeled = await alignment(page, box.id);
    assertAligned(wheeled);
    assert.ok(
      wheeled.drawn.left <= under.x && wheeled.drawn.top <= under.y,
      "the box stays under the pointer",
    );
    // Select the person box (the pre-label came first) and shoot: zoomed, the selected box with its handles, a
    // dashed pre-label.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    assert.equal((await drawn(page)).find((b) => b.selected)?.id, box.id);
    await page.screenshot({ path: `${SHOTS}/zoomed-selected.png` });
    // Moved by a key while zoomed: still 1 image pixel (in the box's own unit, fractions of the image).
    await page.keyboard.press("ArrowRight");
    await boxesWhen(base, key, (b) => {
      const moved = b.find((x) => x.id === box.id)!;
      assert.equal(moved.unit, "norm");
      assert.ok(Math.abs(moved.x * 1920 - (0.25 * 1920 + 1)) < 1e-6, `${moved.x}`);
    });
    await page.keyboard.press("Escape");
    // Drawing while zoomed maps the pointer to the image's pixels as well.
    await page.keyboard.press("1");
    const l = await layer(page);
    const view = await page.evaluate(() => {
      const r = document.querySelector(".box-viewport").getBoundingClientRect();
      return { left: r.left, top: r.top };
    });
    const from = imageAt(l, { x: Math.ceil(view.left) + 30, y: Math.ceil(view.top) + 30 });
    const to = imageAt(l, { x: Math.ceil(view.left) + 230, y: Math.ceil(view.top) + 180 });
    const rect = await dragImage(page, from, to);
    await boxesWhen(base, key, (b) => {
      const made = b.find((x) => x.source === "human" && x.unit === "px")!;
      assert.deepEqual([made.x, made.y, made.w, made.h], [rect.x, rect.y, rect.w, rect.h]);
    });
    // 0 fits again; − does not go below fitting.
    await page.keyboard.press("0");
    await page.locator("#zoom-level", { hasText: "100%" }).waitFor();
    await page.keyboard.press("-");
    await page.locator("#zoom-level", { hasText: "100%" }).waitFor();
    assertAligned(await alignment(page, box.id));
    await boxesShown(page, 3);
    const ids = (await drawn(page)).map((b) => b.id);
    for (const id of ids) assertAligned(await alignment(page, id));
  });
});

Deno.test("focus: after a label is added, → moves on and a second l opens the label box empty", async () => {
  await flow(async ({ base, page }, frames) => {
    await openFrame(page, base, frames[2]);
    await page.keyboard.press("l");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "label-input");
    await page.keyboard.type("door_open");
    await page.keyboard.press("Enter");
    await page.locator(".labels-box .chip", { hasText: "door_open" }).waitFor();
    // The box let go of the focus: → is the page's again.
    assert.notEqual(await page.evaluate(() => document.activeElement?.id), "label-input");
    await page.keyboard.press("ArrowRight");
    await waitFrame(page, frames[3]);
    await page.keyboard.press("l");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "label-input");
    assert.equal(await page.locator("#label-input").inputValue(), "");
    await page.keyboard.type("door_closed");
    await page.keyboard.press("Enter");
    await page.locator(".labels-box .chip", { hasText: "door_closed" }).waitFor();
    assert.deepEqual((await frameOf(base, frames[3])).labels, ["door_closed"]);
    // A second label on the same frame: l again, the box is empty again.
    await page.keyboard.press("l");
    assert.equal(await page.locator("#label-input").inputValue(), "");
    await page.keyboard.type("person");
    await page.keyboard.press("Enter");
    await page.locator(".labels-box .chip", { hasText: "person" }).waitFor();
    assert.deepEqual((await frameOf(base, frames[3])).labels, ["door_closed", "person"]);
    const names = (await call<{ labels: { name: string }[] }>(base, "/api/labels")).labels.map((l) => l.name);
    assert.deepEqual(names.sort(), ["door_closed", "door_open", "person"], "no ldoor_closed");
  });
});

Deno.test("label set: create a class, change its colour and hotkey on the Labels page; strict mode shown", async () => {
  await flow(async (s, frames) => {
    const { base, page } = s;
    await twoClasses(base);
    await call(base, framePath(frames[1], "boxes"), {
      boxes: [{ label: "person", x: 1, y: 2, w: 30, h: 40 }],
    });
    await page.goto(`${base}#/labels`);
    await page.locator("table.label-set tbody tr").nth(1).waitFor();
    assert.match((await page.locator("#strict-mode").textContent())!, /^Open set/);
    const row = (name: string) => page.locator(`table.label-set tbody tr[data-label="${name}"]`);
    assert.deepEqual(await row("person").locator("td.num").allTextContents(), ["0", "0", "1"]);
    assert.equal(await row("person").getByLabel("hotkey of person").inputValue(), "1");
    assert.equal(await row("person").getByLabel("colour of person").inputValue(), "#e6194b");

    // A new class with a colour and a key.
    await page.locator("#new-label-name").fill("forklift");
    await page.getByLabel("new class colour").fill("#ffe119");
    await page.getByLabel("new class hotkey").selectOption("3");
    await page.locator("#create-label").click();
    await row("forklift").waitFor();
    const labelsNow = async () =>
      Object.fromEntries(
        (await call<{ labels: { name: string; color: string; hotkey: number }[] }>(base, "/api/labels"))
          .labels
          .map((l) => [l.name, [l.color, l.hotkey]]),
      );
    assert.deepEqual((await labelsNow()).forklift, ["#ffe119", 3]);
    // Its colour and key changed in place.
    await row("door").getByLabel("colour of door").fill("#4363d8");
    await eventually(async () => assert.deepEqual((await labelsNow()).door, ["#4363d8", 2]));
    await row("door").getByLabel("hotkey of door").selectOption("5");
    await eventually(async () => assert.deepEqual((await labelsNow()).door, ["#4363d8", 5]));
    // A key another class holds: refused with the server's words, the select goes back.
    await row("door").getByLabel("hotkey of door").selectOption("1");
    await page.locator("#toast", { hasText: 'hotkey 1 belongs to "person"' }).waitFor();
    assert.equal(await row("door").getByLabel("hotkey of door").inputValue(), "5");
    assert.deepEqual((await labelsNow()).door, ["#4363d8", 5]);
    await page.screenshot({ path: `${SHOTS}/labels-page.png` });
    // The frame page uses the new colour and keys.
    await openFrame(page, base, frames[1]);
    assert.deepEqual(await page.locator(".class-chip").allTextContents(), ["1person", "3forklift", "5door"]);
    await page.keyboard.press("5");
    await dragImage(page, { x: 500, y: 500 }, { x: 700, y: 900 });
    await boxesWhen(base, frames[1], (b) => assert.deepEqual(b.map((x) => x.label), ["person", "door"]));
    await drawnWhen(page, (d) => assert.equal(d[1]?.stroke, "#4363d8"));

    // A server with labels.strict: the page says so, and a class not in the set is refused on the frame page.
    const strict = s.serve({ labelLimits: { ...DEFAULT_LABEL_LIMITS, strict: true } });
    await page.goto(`${strict.base}#/labels`);
    await page.locator("#strict-mode.on").waitFor();
    assert.match((await page.locator("#strict-mode").textContent())!, /^Fixed set \(labels\.strict = true\)/);
    await openFrame(page, strict.base, frames[4]);
    await page.locator("#box-class").fill("persn");
    await page.locator("#box-class").press("Enter");
    await dragImage(page, { x: 100, y: 100 }, { x: 300, y: 300 });
    await page.locator("#toast", { hasText: 'label "persn" is not in the label set' }).waitFor();
    // The rectangle waits: a hotkey gives it a class of the set and it is saved.
    assert.equal(await page.locator(".box-layer .draft").count(), 1);
    await page.keyboard.press("1");
    await boxesWhen(base, frames[4], (b) => assert.deepEqual(b.map((x) => x.label), ["person"]));
  });
});

Deno.test("history: Undo on a box entry brings the box back; the entry is marked undone", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    const key = frames[9];
    await openFrame(page, base, key);
    await page.keyboard.press("1");
    const rect = await dragImage(page, { x: 300, y: 200 }, { x: 700, y: 800 });
    await boxesWhen(base, key, (b) => assert.equal(b.length, 1));
    await boxesShown(page, 1);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Delete");
    await boxesWhen(base, key, (b) => assert.equal(b.length, 0));

    await page.goto(`${base}#/changes`);
    const entry = page.locator("table.list tbody tr", { hasText: "box.delete" });
    await entry.waitFor();
    assert.match((await entry.textContent())!, /1 box \(person\) on frames\/reachy-001/);
    await entry.getByRole("button", { name: "Undo" }).click();
    await page.locator("#toast", { hasText: "undid #" }).waitFor();
    await page.locator("table.list tbody tr.undone", { hasText: "box.delete" }).waitFor();
    assert.match(
      (await page.locator("tr.undone", { hasText: "box.delete" }).textContent())!,
      /undone by #\d+/,
    );
    assert.match(
      (await page.locator("table.list tbody tr").first().textContent())!,
      /box\.add.*undo of #\d+/,
    );
    const [back] = await boxesWhen(base, key, (b) => assert.equal(b.length, 1));
    assert.deepEqual([back.label, back.x, back.y, back.w, back.h], [
      "person",
      rect.x,
      rect.y,
      rect.w,
      rect.h,
    ]);
    await page.screenshot({ path: `${SHOTS}/history-undo.png` });
    // The box is on the frame page again.
    await openFrame(page, base, key);
    assert.equal((await drawn(page)).length, 1);
  });
});

Deno.test("gallery: thumbnails show the boxes in their class colours, pre-labels dashed", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    const key = frames[39]; // the newest: the first tile
    await call(base, framePath(key, "boxes"), {
      boxes: [{ label: "person", x: 480, y: 270, w: 960, h: 540 }],
    });
    await preLabel(base, [{ key, label: "door", bbox: [0, 0, 192, 108], score: 0.5 }]);
    await page.goto(`${base}#/robot/${REAL}`);
    const tile = page.locator(`.gallery .tile[data-key="${key}"]`);
    await tile.locator("svg.thumb-boxes rect").nth(1).waitFor();
    await imageLoaded(page, `.gallery .tile[data-key="${key}"] img`);
    const shapes = await page.evaluate((k) => {
      const t = document.querySelector(`.gallery .tile[data-key="${k}"]`);
      const img = t.querySelector("img").getBoundingClientRect();
      return [...t.querySelectorAll("svg.thumb-boxes rect")].map((r) => {
        const b = r.getBoundingClientRect();
        return {
          label: r.dataset.label,
          stroke: r.getAttribute("stroke"),
          pre: r.classList.contains("pre"),
          at: [(b.left - img.left) / img.width, (b.top - img.top) / img.height, b.width / img.width],
        };
      });
    }, key);
    assert.deepEqual(shapes.map((x) => [x.label, x.stroke, x.pre]), [
      ["person", "#e6194b", false],
      ["door", "#3cb44b", true],
    ]);
    // The person box covers the middle quarter of the frame: so on the thumbnail.
    for (const [got, want] of shapes[0].at.map((v, i) => [v, [0.25, 0.25, 0.5][i]])) {
      assert.ok(Math.abs(got - want) < 0.02, `${shapes[0].at}`);
    }
    await page.screenshot({
      path: `${SHOTS}/gallery-boxes.png`,
      clip: { x: 0, y: 0, width: 1400, height: 700 },
    });
  });
});

Deno.test("scripted: box-label 10 frames with two classes (keystrokes and clicks counted)", async () => {
  await flow(async ({ base, page }, frames) => {
    // Once: the two classes with keys 1 and 2, on the Labels page.
    const setup = new Counted(page);
    await page.goto(`${base}#/labels`);
    await page.locator("#new-label-name").waitFor();
    for (const [name, key] of [["person", "1"], ["door", "2"]]) {
      await setup.click("#new-label-name");
      await setup.type(name);
      setup.clicks += 2; // open the key list, pick the key
      await page.getByLabel("new class hotkey").selectOption(key);
      await setup.click("#create-label");
      await page.locator(`table.label-set tbody tr[data-label="${name}"]`).waitFor();
    }
    // The labelling: from the first frame's page (the robot's frames, oldest first), per frame: 1, drag a
    // person, 2, drag a door, n to the next unlabelled frame.
    await openFrame(page, base, frames[0], `robot=${REAL}&order=oldest`);
    const u = new Counted(page);
    const expected: Record<string, [string, Rect][]> = {};
    for (let i = 0; i < 10; i++) {
      const key = frames[i];
      await u.press("1");
      const person = await u.drag({ x: 300 + i * 20, y: 200 }, { x: 700 + i * 20, y: 1000 });
      await u.press("2");
      const door = await u.drag({ x: 1300, y: 80 + i * 10 }, { x: 1750, y: 950 });
      expected[key] = [["person", person], ["door", door]];
      if (i === 9) {
        // Classes made without a colour are drawn in their names' colours: two classes, two colours.
        await boxesShown(page, 2);
        assert.equal(new Set((await drawn(page)).map((b) => b.stroke)).size, 2);
        await page.screenshot({ path: `${SHOTS}/frame-two-classes.png` });
      }
      await u.press("n");
      await waitFrame(page, frames[i + 1]);
    }
    for (const [key, want] of Object.entries(expected)) {
      const { boxes, status } = await frameOf(base, key);
      assert.equal(status, "labelled");
      assert.deepEqual(
        boxes.map((b) => [b.label, { x: b.x, y: b.y, w: b.w, h: b.h }]),
        want.map(([label, r]) => [label, r]),
      );
    }
    assert.equal(u.keys, 30);
    console.log(
      `box-label 10 frames with two classes: ${u.summary} (per frame: 1, drag, 2, drag, n); ` +
        `label set once on the Labels page: ${setup.summary}`,
    );
  });
});

Deno.test("scripted: review 20 pre-labelled frames (keystrokes and clicks counted)", async () => {
  await flow(async ({ base, page }, frames) => {
    await twoClasses(base);
    // A detector's boxes on frames 10..29: a person and a door each, and on every fifth frame a third, wrong
    // one (a low-scored person) that the reviewer deletes; frame 17 is a bad frame, rejected.
    const todo = frames.slice(10, 30);
    const wrong = new Set([0, 5, 10, 15].map((i) => todo[i]));
    await preLabel(
      base,
      todo.flatMap((key) => [
        { key, label: "person", bbox: [420, 180, 260, 760] as [number, number, number, number], score: 0.93 },
        { key, label: "door", bbox: [1250, 60, 480, 980] as [number, number, number, number], score: 0.81 },
        ...(wrong.has(key)
          ? [{
            key,
            label: "person",
            bbox: [60, 700, 150, 300] as [number, number, number, number],
            score: 0.31,
          }]
          : []),
      ]),
    );
    const rejected = todo[7];
    // The review search (labelled frames of the robot, oldest first), opened at its first frame.
    await openFrame(page, base, todo[0], `robot=${REAL}&status=labelled&order=oldest`);
    const u = new Counted(page);
    for (const key of todo) {
      if (wrong.has(key)) {
        await u.press("Shift+Tab"); // the last box: the wrong one
        if (key === todo[5]) {
          await page.evaluate(() => (document.getElementById("toast").className = "")); // the last frame's
          await page.screenshot({ path: `${SHOTS}/review-prelabel-selected.png` });
        }
        await u.press("Delete");
      }
      await u.press(key === rejected ? "x" : "r");
      await page.locator(`#review-status[data-status="${key === rejected ? "rejected" : "reviewed"}"]`)
        .waitFor();
      await u.press("n");
      if (key !== todo.at(-1)) await waitFrame(page, todo[todo.indexOf(key) + 1]);
    }
    await page.locator("#toast", { hasText: "Nothing left to review" }).waitFor();
    for (const key of todo) {
      const { boxes, status } = await frameOf(base, key);
      assert.equal(status, key === rejected ? "rejected" : "reviewed", key);
      assert.deepEqual(boxes.map((b) => [b.label, b.confidence]), [["person", 0.93], ["door", 0.81]]);
      if (key !== rejected) assert.ok(boxes.every((b) => b.accepted), `${key}: pre-labels accepted`);
    }
    assert.equal(u.keys, 48);
    console.log(
      `review 20 pre-labelled frames (4 with a wrong box deleted, 1 rejected): ${u.summary} ` +
        "(per frame: r or x, n; a wrong box: Shift+Tab, Delete)",
    );
  });
});
