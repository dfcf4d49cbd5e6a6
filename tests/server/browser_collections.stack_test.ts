/**
 * Collections in the web UI, in a real browser (Chromium through Playwright, tests/support/browser.ts) over the UI
 * fixture's real frames: a collection is made on the Collections page, one clip added there and another from the
 * Clips page's "add to collection", reordered, renamed, a clip taken out, and deleted; after each step the API says
 * the same. The export link names the collection exactly as GET /api/export reads it (`collection=ID`).
 */
import assert from "node:assert/strict";
import { uiSession } from "../support/browser.ts";
import { REAL } from "../support/ui_fixture.ts";
import { T0 } from "../support/rows.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function call(base: string, method: string, path: string, body?: unknown): Promise<Json> {
  const response = await fetch(new URL(path, base), {
    method,
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

Deno.test("collections page: a collection of two clips made in the UI is what the API lists, in order", async () => {
  const ui = await uiSession();
  const { page, base, errors } = ui;
  try {
    // Two clips of reachy-001 (frames every 6 minutes): 3 frames and 2 frames.
    const approach = await call(base, "POST", "api/clips", {
      robot: REAL,
      from: T0,
      to: T0 + 1_000_000,
      name: "approach",
      labels: ["dock"],
    });
    const dock = await call(base, "POST", "api/clips", {
      robot: REAL,
      from: T0 + 1_800_000,
      to: T0 + 2_200_000,
      name: "dock",
    });
    assert.deepEqual([approach.frames, dock.frames], [3, 2]);
    const name = "docking attempts, week 47";
    const byName = async () =>
      (await call(base, "GET", `api/collections?name=${encodeURIComponent(name)}`)).collections;

    // Made on the Collections page, with the first clip added there.
    await page.goto(`${base}#/collections`);
    await page.locator("p.empty").filter({ hasText: "No collections yet" }).waitFor();
    await page.getByLabel("collection name").fill(name);
    await page.getByLabel("collection note").fill("for the planner team");
    await page.getByRole("button", { name: "Create" }).click();
    const panel = page.locator(`section.collection[aria-label="collection ${name}"]`);
    await panel.waitFor();
    const [made] = await byName();
    assert.deepEqual([made.note, made.clip_ids], ["for the planner team", []]);
    await panel.getByLabel(`clip to add to ${name}`).selectOption(String(approach.id));
    await panel.locator("form.add-clip button").click();
    await panel.locator(`tr[data-clip="${approach.id}"]`).waitFor();

    // The second from the Clips page.
    await page.goto(`${base}#/clips`);
    await page.getByLabel("add dock to a collection").selectOption(String(made.id));
    await page.locator("#toast").filter({ hasText: `added dock to ${name}` }).waitFor();
    assert.deepEqual((await byName())[0].clip_ids, [approach.id, dock.id], "two clips, in the order added");

    await page.goto(`${base}#/collections`);
    await panel.locator(`tr[data-clip="${dock.id}"]`).waitFor();
    assert.match((await panel.locator("h2").textContent())!, /2 clips · 5 frames/);
    // The export link names the collection as GET /api/export reads it, in the format picked.
    const link = panel.locator(".collection-export a");
    await link.waitFor();
    let href = new URL((await link.getAttribute("href"))!, base);
    assert.deepEqual([href.pathname, href.searchParams.get("collection"), href.searchParams.get("format")], [
      "/api/export",
      String(made.id),
      "mp4",
    ]);
    await panel.getByLabel(`export format of ${name}`).selectOption("mcap");
    href = new URL((await panel.locator(".collection-export a").getAttribute("href"))!, base);
    assert.equal(href.searchParams.get("format"), "mcap");
    await ui.shot(page, "collections", "collections page: a collection of two clips with its export link");

    // Reordered: dock first.
    await panel.getByLabel("move dock up").click();
    await page.locator("#toast").filter({ hasText: "moved dock" }).waitFor();
    await panel.locator(`tbody tr:first-child[data-clip="${dock.id}"]`).waitFor();
    assert.deepEqual((await byName())[0].clip_ids, [dock.id, approach.id]);

    // Renamed, then a clip taken out.
    const renamed = "docking, week 47";
    await panel.getByLabel(`new name of ${name}`).fill(renamed);
    await panel.getByRole("button", { name: "Save" }).click();
    const panel2 = page.locator(`section.collection[aria-label="collection ${renamed}"]`);
    await panel2.waitFor();
    await panel2.getByLabel(`take approach out of ${renamed}`).click();
    await page.locator("#toast").filter({ hasText: "took approach out" }).waitFor();
    const after = await call(base, "GET", `api/collections/${made.id}`);
    assert.deepEqual([after.name, after.clip_ids, after.frames], [renamed, [dock.id], 2]);

    // Deleted (after the confirmation); the clips stay.
    page.once("dialog", (dialog) => dialog.accept());
    await panel2.getByRole("button", { name: "Delete" }).click();
    await page.locator("p.empty").filter({ hasText: "No collections yet" }).waitFor();
    assert.deepEqual((await call(base, "GET", "api/collections")).collections, []);
    assert.equal((await call(base, "GET", "api/clips")).clips.length, 2);
    const journal = (await call(base, "GET", `api/changes?target=collection:${made.id}`)).changes;
    assert.deepEqual(journal.map((c: Json) => c.action), [
      "collection.create",
      "collection.update",
      "collection.update",
      "collection.update",
      "collection.update",
      "collection.update",
      "collection.delete",
    ]);
    assert.deepEqual(errors, []);
  } finally {
    await ui.close();
  }
});
