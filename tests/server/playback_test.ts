/**
 * GET /api/playback over a catalog in memory: a robot's span in capture order with every frame's labels and boxes,
 * pages that cover each frame once (also across the catalog's 1000-row pages), a clip played by its id, and the
 * refusals (clip with a span, an unknown clip, a page too large).
 */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { createLogger } from "../../src/log.ts";
import { SimilarFrames } from "../../src/library/similar.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryStore } from "../support/fakes.ts";
import { frameRow, T0 } from "../support/rows.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const ROBOT = "player-1";
const FRAMES = 2500;

async function setup() {
  const catalog = new SqliteCatalog(":memory:");
  // 10 fps, stored out of order; another robot in the same span that a robot's playback leaves out.
  const rows = Array.from({ length: FRAMES }, (_, i) => frameRow(ROBOT, T0 + i * 100, i));
  await catalog.upsertMany([...rows].reverse());
  await catalog.upsertMany([frameRow("other-2", T0 + 50, 0)]);
  const app = createApp({
    catalog,
    local: new MemoryStore(),
    archive: new MemoryStore(),
    archivePrefix: "archive/",
    hasher: { hash: () => Promise.resolve(new Uint8Array(32)) },
    similar: await SimilarFrames.load(catalog, { hashBytes: 32 }),
    webDir: null,
    log: createLogger({ level: "error", format: "text" }),
  });
  const get = async (path: string) => {
    const response = await app.handler(new Request(`http://127.0.0.1${path}`));
    return { status: response.status, json: await response.json() as Json };
  };
  return { catalog, rows, get };
}

Deno.test("GET /api/playback: frames oldest first with labels and boxes, in pages, by span or clip", async (t) => {
  const { catalog, rows, get } = await setup();
  const labels = catalog.labels();
  try {
    const [box] = await labels.addBoxes([{
      key: rows[5].key,
      label: "person",
      x: 10,
      y: 20,
      w: 30,
      h: 40,
      imageWidth: 1920,
      imageHeight: 1080,
    }]);
    await labels.addLabels({ keys: [rows[6].key] }, ["door"]);
    const span = `robot=${ROBOT}&from=${T0}&to=${T0 + (FRAMES - 1) * 100}`;

    await t.step("a span in pages: every frame once, in capture order, with its overlay", async () => {
      const seen: Json[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await get(
          `/api/playback?${span}&limit=1200&count=${pages === 0}${cursor ? `&cursor=${cursor}` : ""}`,
        );
        assert.equal(r.status, 200, JSON.stringify(r.json));
        if (pages === 0) assert.equal(r.json.total, FRAMES);
        assert.equal(r.json.from_ms, T0);
        assert.equal(r.json.clip, null);
        seen.push(...r.json.frames);
        cursor = r.json.next_cursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 3); // 1200 + 1200 + 100: pages larger than the catalog's 1000 rows
      assert.deepEqual(seen.map((f) => f.key), rows.map((r) => r.key));
      assert.ok(seen.every((f, i) => f.timestamp_ms === T0 + i * 100 && f.robot_id === ROBOT));
      assert.deepEqual(seen[5].boxes.map((b: Json) => [b.id, b.label, b.x, b.image_width]), [
        [box.id, "person", 10, 1920],
      ]);
      assert.deepEqual(seen[5].labels, ["person"]);
      assert.deepEqual(seen[6].labels, ["door"]);
      assert.deepEqual(seen[7], {
        key: rows[7].key,
        robot_id: ROBOT,
        timestamp_ms: T0 + 700,
        labels: [],
        boxes: [],
      });
    });

    await t.step("a clip by its id: its robot and span", async () => {
      const clip = await labels.createClip({
        robotId: ROBOT,
        fromMs: T0 + 1000,
        toMs: T0 + 1999,
        name: "dock",
      });
      const r = await get(`/api/playback?clip=${clip.id}&count=true`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.clip.name, "dock");
      assert.equal(r.json.clip.frames, 10);
      assert.equal(r.json.total, 10);
      assert.deepEqual([r.json.from_ms, r.json.to_ms], [T0 + 1000, T0 + 1999]);
      assert.deepEqual(r.json.frames.map((f: Json) => f.key), rows.slice(10, 20).map((r) => r.key));
      // A search's filters still apply inside the clip.
      const labelled = await get(`/api/playback?clip=${clip.id}&label=door`);
      assert.deepEqual(labelled.json.frames, []);

      const both = await get(`/api/playback?clip=${clip.id}&robot=${ROBOT}`);
      assert.equal(both.status, 400);
      assert.match(both.json.error, /clip=\d+ or robot, from and to, not both/);
      const unknown = await get(`/api/playback?clip=999`);
      assert.equal(unknown.status, 404);
      assert.match(unknown.json.error, /no clip 999/);
    });

    await t.step("a page larger than 5000 frames is refused, naming the limit", async () => {
      const r = await get(`/api/playback?${span}&limit=5001`);
      assert.equal(r.status, 400);
      assert.match(r.json.error, /limit "5001" must be a whole number from 1 to 5000/);
    });
  } finally {
    await catalog.close();
  }
});
