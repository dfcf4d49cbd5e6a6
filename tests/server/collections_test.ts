/**
 * The collections API (src/server/routes/collections.ts) on the app's handler, with a catalog in memory and
 * stores in memory (no network): create, list, one with its clips and frames, rename, reorder, add and remove
 * clips, delete; the refusals (taken name 409, unknown clips and collections 404, bad bodies 400) naming the
 * value; a deleted clip leaving its collections, and undo through the journal putting it back.
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

async function setup() {
  const catalog = new SqliteCatalog(":memory:");
  // Robot r1: ten frames a second apart.
  await catalog.upsertMany(Array.from({ length: 10 }, (_, i) => frameRow("r1", T0 + i * 1000, i)));
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
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.handler(
      new Request(`http://127.0.0.1${path}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      }),
    );
    const json: Json = (response.headers.get("content-type") ?? "").startsWith("application/json")
      ? await response.json()
      : await response.body?.cancel();
    return { status: response.status, json, headers: response.headers };
  };
  const clip = async (name: string, fromS: number, toS: number) =>
    (await call("POST", "/api/clips", { robot: "r1", from: T0 + fromS * 1000, to: T0 + toS * 1000, name }))
      .json;
  return { catalog, call, clip };
}

Deno.test("collections API: create, list, show with clips and frames, change, delete", async () => {
  const { catalog, call, clip } = await setup();
  try {
    const a = await clip("approach", 0, 2); // 3 frames
    const b = await clip("dock", 5, 5); // 1 frame
    const c = await clip("undock", 8, 9); // 2 frames
    const made = await call("POST", "/api/collections", {
      name: "docking attempts, week 47",
      note: "for the planner",
      clip_ids: [b.id, a.id],
      author: "ana",
    });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    assert.equal(made.headers.get("location"), `/api/collections/${made.json.id}`);
    assert.deepEqual(
      [made.json.name, made.json.note, made.json.clip_ids, made.json.author, made.json.frames],
      ["docking attempts, week 47", "for the planner", [b.id, a.id], "ana", 4],
    );
    assert.deepEqual(made.json.clips.map((x: Json) => [x.name, x.frames]), [["dock", 1], ["approach", 3]]);
    const id = made.json.id;

    await call("POST", "/api/collections", { name: "another" });
    const list = await call("GET", "/api/collections");
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.collections.map((x: Json) => [x.name, x.clip_ids]), [
      ["another", []],
      ["docking attempts, week 47", [b.id, a.id]],
    ]);
    const byName = await call(
      "GET",
      `/api/collections?name=${encodeURIComponent("docking attempts, week 47")}`,
    );
    assert.deepEqual(byName.json.collections.map((x: Json) => x.id), [id]);
    assert.deepEqual((await call("GET", "/api/collections?name=nope")).json.collections, []);

    // Rename and reorder; then add (appended) and remove.
    const moved = await call("PATCH", `/api/collections/${id}`, { name: "week 47", clip_ids: [a.id, b.id] });
    assert.equal(moved.status, 200, JSON.stringify(moved.json));
    assert.deepEqual([moved.json.name, moved.json.clip_ids], ["week 47", [a.id, b.id]]);
    const edited = await call("PATCH", `/api/collections/${id}`, {
      add_clip_ids: [c.id],
      remove_clip_ids: [a.id],
      author: "bob",
    });
    assert.deepEqual([edited.json.clip_ids, edited.json.frames], [[b.id, c.id], 3]);
    const shown = await call("GET", `/api/collections/${id}`);
    assert.deepEqual(shown.json, edited.json);

    const journal = await call("GET", `/api/changes?target=collection:${id}`);
    assert.deepEqual(journal.json.changes.map((x: Json) => [x.action, x.author]), [
      ["collection.create", "ana"],
      ["collection.update", null],
      ["collection.update", "bob"],
    ]);

    const deleted = await call("DELETE", `/api/collections/${id}?author=cy`);
    assert.deepEqual([deleted.status, deleted.json], [200, { deleted: id }]);
    assert.equal((await call("GET", `/api/collections/${id}`)).status, 404);
    assert.equal((await call("GET", "/api/clips")).json.clips.length, 3, "the clips stay");
  } finally {
    await catalog.close();
  }
});

Deno.test("collections API: refusals name the value: taken name 409, unknown clips and ids 404, bad bodies 400", async () => {
  const { catalog, call, clip } = await setup();
  try {
    const a = await clip("a", 0, 1);
    const one = (await call("POST", "/api/collections", { name: "one", clip_ids: [a.id] })).json;
    const taken = await call("POST", "/api/collections", { name: "one" });
    assert.equal(taken.status, 409);
    assert.match(taken.json.error, /"one" exists already/);
    const two = (await call("POST", "/api/collections", { name: "two" })).json;
    assert.equal((await call("PATCH", `/api/collections/${two.id}`, { name: "one" })).status, 409);

    const unknown = await call("POST", "/api/collections", { name: "x", clip_ids: [a.id, 999] });
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /no clip 999/);
    const add = await call("PATCH", `/api/collections/${one.id}`, { add_clip_ids: [998, 997] });
    assert.equal(add.status, 404);
    assert.match(add.json.error, /2 clips do not exist: 998, 997/);
    for (const [method, path] of [["GET", "/api/collections/4242"], ["DELETE", "/api/collections/4242"]]) {
      const r = await call(method, path);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.match(r.json.error, /no collection 4242/);
    }
    assert.equal((await call("PATCH", "/api/collections/4242", { note: "n" })).status, 404);

    for (
      const [body, message] of [
        [{}, /needs a name/],
        [{ name: "   " }, /needs a name/],
        [{ name: "a\nb" }, /control character/],
        [{ name: "y", clip_ids: [1.5] }, /clip_ids\[0\] must be a whole number/],
        [{ name: "y", clip_ids: [-1] }, /not a clip id/],
        [{ name: "y", colour: "red" }, /unknown field\(s\) colour/],
      ] as const
    ) {
      const r = await call("POST", "/api/collections", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error, message);
    }
    assert.equal((await call("GET", "/api/collections/abc")).status, 400);
    assert.deepEqual(
      (await call("GET", "/api/collections")).json.collections.map((x: Json) => [x.name, x.clip_ids]),
      [["one", [a.id]], ["two", []]],
      "nothing refused changed anything",
    );
  } finally {
    await catalog.close();
  }
});

Deno.test("collections API: a deleted clip leaves its collections; undo puts it back in its place", async () => {
  const { catalog, call, clip } = await setup();
  try {
    const [a, b, c] = [await clip("a", 0, 0), await clip("b", 1, 1), await clip("c", 2, 2)];
    const col = (await call("POST", "/api/collections", { name: "w47", clip_ids: [a.id, b.id, c.id] })).json;
    assert.equal((await call("DELETE", `/api/clips/${b.id}`)).status, 200);
    assert.deepEqual((await call("GET", `/api/collections/${col.id}`)).json.clip_ids, [a.id, c.id]);
    const deletion = (await call("GET", "/api/changes?order=newest&limit=1")).json.changes[0];
    assert.equal(deletion.action, "clip.delete");
    assert.deepEqual(deletion.detail.collections, [{ id: col.id, position: 1 }]);
    const undo = await call("POST", `/api/changes/${deletion.id}/undo`, { author: "ana" });
    assert.equal(undo.status, 200, JSON.stringify(undo.json));
    const back = (await call("GET", "/api/clips")).json.clips.find((x: Json) => x.name === "b");
    const shown = (await call("GET", `/api/collections/${col.id}`)).json;
    assert.deepEqual(shown.clip_ids, [a.id, back.id, c.id]);
    assert.deepEqual(shown.clips.map((x: Json) => x.name), ["a", "b", "c"]);
  } finally {
    await catalog.close();
  }
});
