/**
 * The HTTP API of issue 14 against a real server, real S3 buckets (the stack's) and a real catalog: boxes on
 * frames (their size read from the stored JPEG: the real 1920x1080 reachy-001 frames, one only in the archive),
 * changing, accepting and deleting them, the label set (colour, hotkey, labels.strict), review status, the next
 * frame to label or review in a search, the status and no-label filters, pre-label imports (COCO and YOLO), and
 * undo of journal entries over HTTP.
 */
import assert from "node:assert/strict";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import { imageName } from "../../src/library/image_names.ts";
import { createLogger } from "../../src/log.ts";
import { createApp } from "../../src/server/app.ts";
import { ARCHIVE_PREFIX, REAL, SYNTH, type UiFixture, uiFixture } from "../support/ui_fixture.ts";

const enc = encodeURIComponent;
const quiet = createLogger({ level: "error", format: "text" });

// deno-lint-ignore no-explicit-any
type Json = any;

interface Reply {
  status: number;
  body: Json;
}

/** A server of the fixture's catalog and stores (with these label limits), and a JSON client of it. */
function serve(f: UiFixture, options: { strict?: boolean; token?: string } = {}) {
  const app = createApp({
    ...f,
    archivePrefix: ARCHIVE_PREFIX,
    webDir: null,
    log: quiet,
    token: options.token,
    labelLimits: { strict: options.strict ?? false },
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const api = async (method: string, path: string, json?: unknown, auth?: string): Promise<Reply> => {
    const headers: Record<string, string> = {};
    if (json !== undefined) headers["content-type"] = "application/json";
    if (auth) headers.authorization = `Bearer ${auth}`;
    const response = await fetch(base + path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return { app, api, close: () => server.shutdown() };
}

Deno.test("HTTP API of boxes, the label set, review, next, pre-labels and undo", async (t) => {
  const f = await uiFixture();
  const { api, close } = serve(f);
  const reals = f.rows.filter((r) => r.robotId === REAL && r.tier === "local");
  const synth = f.rows.filter((r) => r.robotId === SYNTH);
  const frame = async (row: FrameRow) => {
    const r = await api("GET", `/api/frames/${enc(row.key)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const lastChange = async () => (await api("GET", "/api/changes?order=newest&limit=1")).body.changes[0];
  try {
    await t.step(
      "POST /api/frames/{key}/boxes: the size comes from the stored JPEG, not the client",
      async () => {
        const key = reals[0].key;
        const r = await api("POST", `/api/frames/${enc(key)}/boxes`, {
          boxes: [
            // A client's idea of the size is not even read.
            { label: "person", x: 100, y: 50, w: 300, h: 600, image_width: 640, image_height: 480 },
            { label: "forklift", x: 0.5, y: 0.25, w: 0.25, h: 0.5, unit: "norm" },
          ],
          author: "ann",
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        assert.equal(r.body.boxes.length, 2);
        const [a, b] = r.body.boxes;
        assert.deepEqual(
          { ...a, id: 0, created_ms: 0, updated_ms: 0 },
          {
            id: 0,
            key,
            label: "person",
            x: 100,
            y: 50,
            w: 300,
            h: 600,
            unit: "px",
            image_width: 1920,
            image_height: 1080,
            confidence: null,
            source: "human",
            accepted: true,
            author: "ann",
            created_ms: 0,
            updated_ms: 0,
          },
        );
        assert.ok(a.created_ms > 0 && a.updated_ms === a.created_ms);
        assert.deepEqual([b.unit, b.x, b.w, b.image_width, b.image_height], ["norm", 0.5, 0.25, 1920, 1080]);
        // The frame shows them, and counts as labelled; a box's class is one of its labels.
        const detail = await frame(reals[0]);
        assert.deepEqual(detail.boxes.map((x: Json) => x.id), [a.id, b.id]);
        assert.equal(detail.status, "labelled");
        assert.deepEqual(detail.labels, ["forklift", "person"]);
        assert.deepEqual(detail.direct_labels, []);
        const change = await lastChange();
        assert.equal(change.action, "box.add");
        assert.equal(change.target, key);
        assert.equal(change.author, "ann");
        assert.deepEqual(change.detail.boxes.map((x: Json) => x.id), [a.id, b.id]);

        // The archived frame's size is read from the archive.
        const archived = await api("POST", `/api/frames/${enc(f.archived.key)}/boxes`, {
          boxes: [{ label: "person", x: 1820, y: 980, w: 100, h: 100 }],
        });
        assert.equal(archived.status, 201, JSON.stringify(archived.body));
        assert.equal(archived.body.boxes[0].image_width, 1920);
        // A model's box starts unaccepted.
        const model = await api("POST", `/api/frames/${enc(reals[1].key)}/boxes`, {
          boxes: [{ label: "person", x: 10, y: 10, w: 20, h: 20, source: "model:yolo-x", confidence: 0.75 }],
        });
        assert.equal(model.status, 201);
        assert.deepEqual(
          [model.body.boxes[0].source, model.body.boxes[0].accepted, model.body.boxes[0].confidence],
          ["model:yolo-x", false, 0.75],
        );
      },
    );

    await t.step(
      "POST /api/frames/{key}/boxes: bad boxes are 400 naming the value, unknown frames 404",
      async () => {
        const path = `/api/frames/${enc(reals[2].key)}/boxes`;
        const outside = await api("POST", path, {
          boxes: [{ label: "person", x: 1900, y: 0, w: 100, h: 10 }],
        });
        assert.equal(outside.status, 400);
        assert.match(
          outside.body.error,
          /^boxes: box x 1900 \+ w 100 = 2000 is beyond the frame's width 1920 px/,
        );
        const norm = await api("POST", path, {
          boxes: [{ label: "person", x: 0.5, y: 0, w: 0.6, h: 0.1, unit: "norm" }],
        });
        assert.equal(norm.status, 400);
        assert.match(
          norm.body.error,
          /box x 0.5 \+ w 0.6 = 1.1 is beyond the frame's width 1 \(normalised\)/,
        );
        const flat = await api("POST", path, { boxes: [{ label: "person", x: 1, y: 1, w: 0, h: 10 }] });
        assert.match(flat.body.error, /box width 0 is not above 0/);
        const source = await api("POST", path, {
          boxes: [{ label: "p", x: 1, y: 1, w: 1, h: 1, source: "robot" }],
        });
        assert.match(source.body.error, /box source "robot" is not allowed/);
        const score = await api("POST", path, {
          boxes: [{ label: "p", x: 1, y: 1, w: 1, h: 1, confidence: 1.5 }],
        });
        assert.match(score.body.error, /box confidence 1.5 is not in \[0, 1\]/);
        const label = await api("POST", path, { boxes: [{ label: "a/b", x: 1, y: 1, w: 1, h: 1 }] });
        assert.equal(label.status, 400);
        assert.match(label.body.error, /label "a\/b" may not contain '\/'/);
        const noLabel = await api("POST", path, { boxes: [{ x: 1, y: 1, w: 1, h: 1 }] });
        assert.equal(noLabel.status, 400);
        assert.match(noLabel.body.error, /each box needs a label/);
        const text = await api("POST", path, { boxes: [{ label: "p", x: "1", y: 1, w: 1, h: 1 }] });
        assert.equal(text.body.error, "boxes[0].x must be a number");
        assert.equal((await api("POST", path, { boxes: [] })).status, 400);
        const unknown = await api("POST", `/api/frames/${enc("frames/nobody/x.jpg")}/boxes`, {
          boxes: [{ label: "person", x: 1, y: 1, w: 1, h: 1 }],
        });
        assert.equal(unknown.status, 404);
        assert.equal((await frame(reals[2])).boxes.length, 0, "nothing of the refused requests");
      },
    );

    await t.step("PATCH /api/boxes/{id}: class, rectangle (all four numbers), acceptance", async () => {
      const [box] = (await api("POST", `/api/frames/${enc(reals[2].key)}/boxes`, {
        boxes: [{ label: "person", x: 10, y: 20, w: 30, h: 40, source: "model:m1", confidence: 0.4 }],
      })).body.boxes;
      const path = `/api/boxes/${box.id}`;
      const relabel = await api("PATCH", path, { label: "forklift", author: "bob" });
      assert.equal(relabel.status, 200, JSON.stringify(relabel.body));
      assert.equal(relabel.body.box.label, "forklift");
      assert.equal(relabel.body.box.accepted, false);
      const moved = await api("PATCH", path, { x: 0.1, y: 0.2, w: 0.3, h: 0.4, unit: "norm" });
      assert.deepEqual(
        [moved.body.box.x, moved.body.box.y, moved.body.box.w, moved.body.box.h, moved.body.box.unit],
        [0.1, 0.2, 0.3, 0.4, "norm"],
      );
      const accepted = await api("PATCH", path, { accepted: true });
      assert.equal(accepted.body.box.accepted, true);
      assert.equal((await lastChange()).action, "box.update");

      const partial = await api("PATCH", path, { x: 5, y: 5 });
      assert.equal(partial.status, 400);
      assert.match(partial.body.error, /give all four of x, y, w, h .* \(got only x, y\)/);
      const unit = await api("PATCH", path, { unit: "px" });
      assert.match(unit.body.error, /unit goes with a new rectangle/);
      const nothing = await api("PATCH", path, { author: "bob" });
      assert.match(nothing.body.error, /nothing to change/);
      const outside = await api("PATCH", path, { x: 1800, y: 0, w: 200, h: 10 });
      assert.equal(outside.status, 400);
      assert.match(outside.body.error, /beyond the frame's width 1920/);
      const unknownField = await api("PATCH", path, { colour: "red" });
      assert.match(unknownField.body.error, /unknown field\(s\) colour/);
      assert.equal((await api("PATCH", "/api/boxes/999999", { label: "x" })).status, 404);
      assert.equal((await api("PATCH", "/api/boxes/abc", { label: "x" })).status, 400);
    });

    await t.step("accept and delete: by id, by ids, by frame; unknown ids are 404", async () => {
      const add = await api("POST", `/api/frames/${enc(reals[4].key)}/boxes`, {
        boxes: [1, 2, 3].map((i) => ({ label: "person", x: i * 10, y: 0, w: 5, h: 5, source: "model:m1" })),
      });
      const ids = add.body.boxes.map((b: Json) => b.id);
      const one = await api("POST", "/api/boxes/accept", { ids: [ids[0]], author: "cy" });
      assert.deepEqual(one.body, { accepted: 1 });
      const rest = await api("POST", "/api/boxes/accept", { key: reals[4].key });
      assert.deepEqual(rest.body, { accepted: 2 });
      assert.ok((await frame(reals[4])).boxes.every((b: Json) => b.accepted));
      assert.equal((await api("POST", "/api/boxes/accept", {})).status, 400);
      assert.equal((await api("POST", "/api/boxes/accept", { ids, key: reals[4].key })).status, 400);
      assert.equal((await api("POST", "/api/boxes/accept", { key: "frames/nobody/x.jpg" })).status, 404);

      assert.deepEqual((await api("DELETE", `/api/boxes/${ids[0]}?author=cy`)).body, { deleted: 1 });
      assert.equal((await api("DELETE", `/api/boxes/${ids[0]}`)).status, 404);
      const unknown = await api("POST", "/api/boxes/delete", { ids: [ids[1], 999999] });
      assert.equal(unknown.status, 404);
      assert.match(unknown.body.error, /999999/);
      assert.deepEqual((await api("POST", "/api/boxes/delete", { ids: ids.slice(1) })).body, { deleted: 2 });
      const detail = await frame(reals[4]);
      assert.deepEqual([detail.boxes, detail.status], [[], "unlabelled"]);
      assert.equal((await lastChange()).action, "box.delete");
    });

    await t.step(
      "the label set: GET and POST /api/labels, colours, hotkeys, a hotkey held elsewhere is 409",
      async () => {
        const set = await api("POST", "/api/labels", {
          name: "person",
          color: "#FF8800",
          hotkey: 1,
          author: "ann",
        });
        assert.equal(set.status, 200, JSON.stringify(set.body));
        // person boxes so far: on reals[0], on the archived frame, the model's on reals[1].
        assert.deepEqual(set.body.label, {
          name: "person",
          frames: 0,
          clips: 0,
          boxes: 3,
          color: "#ff8800",
          hotkey: 1,
        });
        const fresh = await api("POST", "/api/labels", { name: "pallet", hotkey: 2 });
        assert.deepEqual(fresh.body.label, {
          name: "pallet",
          frames: 0,
          clips: 0,
          boxes: 0,
          color: null,
          hotkey: 2,
        });
        assert.equal((await lastChange()).action, "label.define");
        const taken = await api("POST", "/api/labels", { name: "forklift", hotkey: 1 });
        assert.equal(taken.status, 409);
        assert.match(taken.body.error, /hotkey 1 belongs to "person": clear it there first, or pick another/);
        const colour = await api("POST", "/api/labels", { name: "forklift", color: "red" });
        assert.equal(colour.status, 400);
        assert.match(colour.body.error, /colour "red" is not of the form #rrggbb/);
        assert.equal((await api("POST", "/api/labels", { name: "forklift", hotkey: 10 })).status, 400);
        assert.match((await api("POST", "/api/labels", { hotkey: 3 })).body.error, /give name/);
        // null clears a field, leaving it out keeps it.
        const cleared = await api("POST", "/api/labels", { name: "person", hotkey: null });
        assert.deepEqual([cleared.body.label.color, cleared.body.label.hotkey], ["#ff8800", null]);
        const moved = await api("POST", "/api/labels", { name: "forklift", hotkey: 1 });
        assert.equal(moved.body.label.hotkey, 1);
        const list = await api("GET", "/api/labels");
        assert.equal(list.body.strict, false);
        assert.deepEqual(
          list.body.labels.map((l: Json) => [l.name, l.color, l.hotkey]),
          [["forklift", null, 1], ["pallet", null, 2], ["person", "#ff8800", null]],
        );
      },
    );

    await t.step("POST /api/frames/review: reviewed, rejected, cleared; unknown frames 404", async () => {
      const keys = [reals[0].key, reals[5].key];
      const r = await api("POST", "/api/frames/review", { keys, status: "reviewed", author: "dee" });
      assert.deepEqual(r.body, { changed: 2 });
      assert.equal((await frame(reals[5])).status, "reviewed", "a checked negative");
      assert.deepEqual((await api("POST", "/api/frames/review", { keys, status: "reviewed" })).body, {
        changed: 0,
      });
      const change = await lastChange();
      assert.equal(change.action, "review.set");
      assert.equal(change.detail.status, "reviewed");
      assert.deepEqual((await api("POST", "/api/frames/review", { keys: [keys[0]], status: null })).body, {
        changed: 1,
      });
      assert.equal((await frame(reals[0])).status, "labelled");
      assert.deepEqual(
        (await api("POST", "/api/frames/review", { keys: [keys[0]], status: "rejected" })).body,
        { changed: 1 },
      );
      assert.equal((await frame(reals[0])).status, "rejected");
      const missing = await api("POST", "/api/frames/review", { keys: [reals[6].key] });
      assert.equal(missing.status, 400);
      assert.match(missing.body.error, /give status: reviewed, rejected, or null/);
      const bad = await api("POST", "/api/frames/review", { keys: [reals[6].key], status: "done" });
      assert.equal(bad.body.error, 'status "done" must be one of reviewed, rejected');
      const unknown = await api("POST", "/api/frames/review", {
        keys: ["frames/nobody/x.jpg"],
        status: null,
      });
      assert.equal(unknown.status, 404);
    });

    await t.step("status and nolabel filters; next unlabelled and next to review in a search", async () => {
      // bracket-002 (12 frames, oldest first): s0 a box, s1 its own label, s3 reviewed, s4 labelled and
      // rejected, s6-s7 in a labelled clip (unlabelled, but not "no label").
      const s = synth;
      assert.equal(
        (await api("POST", `/api/frames/${enc(s[0].key)}/boxes`, {
          boxes: [{ label: "blob", x: 10, y: 10, w: 50, h: 50 }],
        })).status,
        201,
      );
      assert.equal(
        (await api("POST", "/api/frames/labels", { keys: [s[1].key, s[4].key], add: ["stripes"] })).status,
        200,
      );
      await api("POST", "/api/frames/review", { keys: [s[3].key], status: "reviewed" });
      await api("POST", "/api/frames/review", { keys: [s[4].key], status: "rejected" });
      const clip = await api("POST", "/api/clips", {
        robot: SYNTH,
        from: s[6].timestampMs,
        to: s[7].timestampMs,
        name: "sweep",
        labels: ["sweep"],
      });
      assert.equal(clip.status, 201);
      const keysOf = async (query: string) => {
        const r = await api("GET", `/api/frames?robot=${SYNTH}&order=oldest&count=true&${query}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.total, r.body.frames.length);
        return r.body.frames.map((x: Json) => s.findIndex((row) => row.key === x.key));
      };
      assert.deepEqual(await keysOf("status=unlabelled"), [2, 5, 6, 7, 8, 9, 10, 11]);
      assert.deepEqual(await keysOf("status=labelled"), [0, 1]);
      assert.deepEqual(await keysOf("status=reviewed,rejected"), [3, 4]);
      assert.deepEqual(await keysOf("status=reviewed&status=rejected"), [3, 4]);
      assert.deepEqual(await keysOf("nolabel=true"), [2, 3, 5, 8, 9, 10, 11]);
      assert.deepEqual(await keysOf("nolabel=true&status=unlabelled"), [2, 5, 8, 9, 10, 11]);
      const statuses = (await api("GET", `/api/frames?robot=${SYNTH}&order=oldest`)).body.frames.map((
        x: Json,
      ) => x.status);
      assert.deepEqual(statuses.slice(0, 7), [
        "labelled",
        "labelled",
        "unlabelled",
        "reviewed",
        "rejected",
        "unlabelled",
        "unlabelled",
      ]);
      const bad = await api("GET", `/api/frames?status=labelled,done`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, 'status "done" must be one of unlabelled, labelled, reviewed, rejected');

      const next = async (from: number, query: string) => {
        const r = await api("GET", `/api/frames/${enc(s[from].key)}/next?robot=${SYNTH}&${query}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body.key === null ? null : s.findIndex((row) => row.key === r.body.key);
      };
      assert.equal(await next(0, "order=oldest"), 2, "want=unlabelled is the default");
      assert.equal(await next(2, "want=unlabelled&order=oldest"), 5);
      assert.equal(await next(5, "want=unlabelled&order=oldest&nolabel=true"), 8, "past the clip");
      assert.equal(await next(11, "want=unlabelled&order=oldest"), null);
      assert.equal(await next(11, "want=unlabelled"), 10, "newest first by default");
      assert.equal(await next(0, "want=review&order=oldest"), 1);
      assert.equal(await next(1, "want=review&order=oldest"), null, "s4 is rejected already");
      assert.equal(await next(11, "want=review"), 1);
      assert.equal(await next(1, "want=review"), 0);
      assert.equal(await next(0, "want=unlabelled&status=reviewed"), null, "the filter wants no unlabelled");
      // The frame itself need not match the filter (it has just been labelled).
      assert.equal(await next(1, "want=unlabelled&order=oldest&status=unlabelled"), 2);
      const unknown = await api("GET", `/api/frames/${enc("frames/nobody/x.jpg")}/next`);
      assert.equal(unknown.status, 404);
      const want = await api("GET", `/api/frames/${enc(s[0].key)}/next?want=boxes`);
      assert.equal(want.status, 400);
      assert.match(want.body.error, /^want "boxes" must be one of unlabelled, review/);
      const label = await api("GET", `/api/frames/${enc(s[0].key)}/next?label=nope`);
      assert.equal(label.status, 400);
    });

    await t.step("GET /api/frames/{key}/similar takes the status and nolabel filters", async () => {
      const all = await api("GET", `/api/frames/${enc(reals[1].key)}/similar?k=40`);
      assert.ok(all.body.frames.some((x: Json) => x.status !== "unlabelled"));
      const unlabelled = await api("GET", `/api/frames/${enc(reals[1].key)}/similar?k=5&status=unlabelled`);
      assert.equal(unlabelled.status, 200);
      assert.equal(unlabelled.body.frames.length, 5);
      assert.ok(unlabelled.body.frames.every((x: Json) => x.status === "unlabelled"));
      const reviewed = await api(
        "GET",
        `/api/frames/${enc(reals[1].key)}/similar?k=5&status=reviewed,rejected&robot=${REAL}`,
      );
      assert.deepEqual(
        reviewed.body.frames.map((x: Json) => x.key).sort(),
        [reals[0].key, reals[5].key].sort(),
      );
      const none = await api("GET", `/api/frames/${enc(reals[1].key)}/similar?k=40&nolabel=true`);
      assert.ok(none.body.frames.length > 0);
      assert.ok(none.body.frames.every((x: Json) => x.labels.length === 0 && x.boxes.length === 0));
    });

    await t.step(
      "POST /api/prelabels: COCO results as model boxes, cut to the image, never twice",
      async () => {
        const target = reals[8];
        const name = imageName(target.key);
        const body = {
          model: "det-v1",
          format: "coco",
          results: [
            { image_id: name, category_id: 1, bbox: [100, 200, 300, 400], score: 0.9 },
            { image_id: name, category_id: 2, bbox: [1800, 1000, 300, 200], score: 0.5 },
            { image_id: 7, category_id: 1, bbox: [0, 0, 10, 10], score: 0.3 },
            {
              image_id: "reachy-001/2020-01-01/nothing.jpg",
              category_id: 1,
              bbox: [0, 0, 10, 10],
              score: 0.3,
            },
          ],
          images: [{ id: 7, file_name: imageName(reals[9].key) }],
          categories: [{ id: 1, name: "person" }, { id: 2, name: "forklift" }],
          author: "importer",
        };
        const r = await api("POST", "/api/prelabels", body);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual([r.body.frames, r.body.boxes, r.body.clipped], [2, 3, 1]);
        assert.equal(r.body.skipped.length, 1);
        assert.equal(r.body.skipped[0].ref, "reachy-001/2020-01-01/nothing.jpg");
        assert.match(r.body.skipped[0].reason, /no frame .* in the catalog/);
        const boxes = (await frame(target)).boxes;
        assert.deepEqual(
          boxes.map((
            b: Json,
          ) => [b.label, b.x, b.y, b.w, b.h, b.unit, b.confidence, b.source, b.accepted, b.author]),
          [
            ["person", 100, 200, 300, 400, "px", 0.9, "model:det-v1", false, "importer"],
            ["forklift", 1800, 1000, 120, 80, "px", 0.5, "model:det-v1", false, "importer"],
          ],
        );
        assert.equal((await frame(target)).status, "labelled");
        const again = await api("POST", "/api/prelabels", body);
        assert.deepEqual([again.body.frames, again.body.boxes, again.body.skipped.length], [0, 0, 4]);
        // A person accepts the frame's pre-labels.
        assert.deepEqual((await api("POST", "/api/boxes/accept", { key: target.key })).body, { accepted: 2 });

        const malformed = await api("POST", "/api/prelabels", {
          model: "det-v1",
          format: "coco",
          results: [{ image_id: name, category_id: "person", bbox: [1, 2, 3], score: 0.9 }],
        });
        assert.equal(malformed.status, 400);
        assert.match(malformed.body.error, /result 0: bbox \[1,2,3\] must be \[x, y, width, height\]/);
        const model = await api("POST", "/api/prelabels", { model: "det v1", format: "coco", results: [] });
        assert.equal(model.status, 400);
        assert.match(model.body.error, /model name "det v1"/);
        const missing = await api("POST", "/api/prelabels", { model: "det-v1", format: "coco" });
        assert.match(missing.body.error, /format "coco" needs results/);
        const format = await api("POST", "/api/prelabels", { model: "det-v1", format: "voc", results: [] });
        assert.equal(format.body.error, 'format "voc" must be one of coco, yolo');
      },
    );

    await t.step(
      "POST /api/prelabels: YOLO files (fractions, centre to corner), errors by file and line",
      async () => {
        const target = reals[10];
        const file = imageName(target.key).replace(/\.jpg$/, ".txt");
        const r = await api("POST", "/api/prelabels", {
          model: "yolo-n",
          format: "yolo",
          files: [{ name: file, text: "0 0.5 0.5 0.2 0.1 0.8\n\n1 0.25 0.25 0.1 0.1\n" }],
          classes: ["person", "forklift"],
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual(r.body, { frames: 1, boxes: 2, clipped: 0, skipped: [] });
        const boxes = (await frame(target)).boxes;
        assert.deepEqual(
          boxes.map((b: Json) => [b.label, b.unit, b.confidence, b.source, b.accepted]),
          [["person", "norm", 0.8, "model:yolo-n", false], ["forklift", "norm", null, "model:yolo-n", false]],
        );
        assert.ok(Math.abs(boxes[0].x - 0.4) < 1e-12 && Math.abs(boxes[0].y - 0.45) < 1e-12);
        const bad = await api("POST", "/api/prelabels", {
          model: "yolo-n",
          format: "yolo",
          files: [{ name: file, text: "0 0.5 0.5 0.2 0.1 0.8\n7 0.5 0.5\n" }],
          classes: ["person"],
        });
        assert.equal(bad.status, 400);
        assert.match(bad.body.error, new RegExp(`${file.replace(/[.]/g, "\\.")} line 2: 3 columns`));
        const noClasses = await api("POST", "/api/prelabels", {
          model: "yolo-n",
          format: "yolo",
          files: [{ name: file, text: "0 0.5 0.5 0.2 0.1\n" }],
        });
        assert.match(noClasses.body.error, /format "yolo" needs files .* and classes/);
        assert.equal((await frame(target)).boxes.length, 2, "nothing of the refused imports");
      },
    );

    await t.step("POST /api/changes/{id}/undo: box and label entries; a second undo is 409", async () => {
      // box.add
      const added = await api("POST", `/api/frames/${enc(reals[11].key)}/boxes`, {
        boxes: [{ label: "person", x: 1, y: 2, w: 3, h: 4 }, { label: "pallet", x: 5, y: 6, w: 7, h: 8 }],
      });
      assert.equal(added.status, 201);
      const addId = (await lastChange()).id;
      const undo = await api("POST", `/api/changes/${addId}/undo`, { author: "eve" });
      assert.equal(undo.status, 200, JSON.stringify(undo.body));
      assert.equal(undo.body.changes.length, 1);
      assert.equal(undo.body.changes[0].action, "box.delete");
      assert.equal(undo.body.changes[0].detail.undoOf, addId);
      assert.equal(undo.body.changes[0].author, "eve");
      assert.deepEqual((await frame(reals[11])).boxes, []);
      const twice = await api("POST", `/api/changes/${addId}/undo`, {});
      assert.equal(twice.status, 409);
      assert.match(
        twice.body.error,
        new RegExp(`change #${addId} was already undone by #${undo.body.changes[0].id}`),
      );

      // box.update: back to the class and rectangle before.
      const [box] = (await api("POST", `/api/frames/${enc(reals[11].key)}/boxes`, {
        boxes: [{ label: "person", x: 10, y: 20, w: 30, h: 40 }],
      })).body.boxes;
      await api("PATCH", `/api/boxes/${box.id}`, { label: "pallet", x: 0, y: 0, w: 1, h: 1 });
      assert.equal((await api("POST", `/api/changes/${(await lastChange()).id}/undo`, {})).status, 200);
      const back = (await frame(reals[11])).boxes;
      assert.deepEqual(back.map((b: Json) => [b.id, b.label, b.x, b.y, b.w, b.h]), [[
        box.id,
        "person",
        10,
        20,
        30,
        40,
      ]]);

      // box.delete: the box comes back (accepted as it was).
      await api("DELETE", `/api/boxes/${box.id}`);
      assert.equal((await api("POST", `/api/changes/${(await lastChange()).id}/undo`, {})).status, 200);
      const restored = (await frame(reals[11])).boxes;
      assert.deepEqual(restored.map((b: Json) => [b.label, b.x, b.y, b.w, b.h, b.accepted]), [[
        "person",
        10,
        20,
        30,
        40,
        true,
      ]]);

      // label.add and label.remove.
      const keys = [reals[12].key, reals[13].key];
      await api("POST", "/api/frames/labels", { keys, add: ["door"] });
      const labelAdd = await lastChange();
      assert.equal(labelAdd.action, "label.add");
      const undoAdd = await api("POST", `/api/changes/${labelAdd.id}/undo`, {});
      assert.equal(undoAdd.status, 200, JSON.stringify(undoAdd.body));
      assert.equal(undoAdd.body.changes[0].action, "label.remove");
      assert.deepEqual((await frame(reals[12])).direct_labels, []);
      await api("POST", "/api/frames/labels", { keys, add: ["door"] });
      await api("POST", "/api/frames/labels", { keys: [keys[0]], remove: ["door"] });
      assert.equal((await api("POST", `/api/changes/${(await lastChange()).id}/undo`, {})).status, 200);
      assert.deepEqual((await frame(reals[12])).direct_labels, ["door"]);

      // review.set
      await api("POST", "/api/frames/review", { keys, status: "rejected" });
      assert.equal((await api("POST", `/api/changes/${(await lastChange()).id}/undo`, {})).status, 200);
      assert.equal((await frame(reals[12])).status, "labelled");

      // label.define of a new label: undone, the label is gone.
      await api("POST", "/api/labels", { name: "crate", color: "#00ff00" });
      assert.equal((await api("POST", `/api/changes/${(await lastChange()).id}/undo`, {})).status, 200);
      assert.ok(!(await api("GET", "/api/labels")).body.labels.some((l: Json) => l.name === "crate"));

      assert.equal((await api("POST", "/api/changes/999999/undo", {})).status, 404);
      assert.equal((await api("POST", "/api/changes/abc/undo", {})).status, 400);
      const field = await api("POST", `/api/changes/${addId}/undo`, { colour: "red" });
      assert.match(field.body.error, /unknown field\(s\) colour/);
    });
  } finally {
    await close();
    await f.close();
  }
});

Deno.test("labels.strict over HTTP: only the label set's labels; POST /api/labels adds one", async () => {
  const f = await uiFixture();
  const { api, close } = serve(f, { strict: true });
  const key = f.rows.find((r) => r.robotId === REAL && r.tier === "local")!.key;
  try {
    assert.deepEqual((await api("GET", "/api/labels")).body, { labels: [], strict: true });
    const empty = await api("POST", "/api/frames/labels", { keys: [key], add: ["door_closed"] });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error, /label "door_closed" is not in the label set \(labels\.strict = true\)/);
    for (const name of ["door_closed", "person"]) {
      assert.equal((await api("POST", "/api/labels", { name })).status, 200);
    }
    const typo = await api("POST", "/api/frames/labels", { keys: [key], add: ["ldoor_closed"] });
    assert.equal(typo.status, 400);
    assert.equal(
      typo.body.error,
      'add: label "ldoor_closed" is not in the label set (labels.strict = true): use one of door_closed, person ' +
        "or add it to the set first (Labels page or POST /api/labels)",
    );
    assert.deepEqual((await api("POST", "/api/frames/labels", { keys: [key], add: ["door_closed"] })).body, {
      added: 1,
      removed: 0,
    });
    const box = await api("POST", `/api/frames/${enc(key)}/boxes`, {
      boxes: [{ label: "forklift", x: 1, y: 1, w: 10, h: 10 }],
    });
    assert.equal(box.status, 400);
    assert.match(box.body.error, /label "forklift" is not in the label set/);
    assert.equal(
      (await api("POST", `/api/frames/${enc(key)}/boxes`, {
        boxes: [{ label: "person", x: 1, y: 1, w: 10, h: 10 }],
      })).status,
      201,
    );
    const clip = await api("POST", "/api/clips", {
      robot: REAL,
      from: 0,
      to: 1,
      name: "c",
      labels: ["walk"],
    });
    assert.equal(clip.status, 400);
    const prelabels = await api("POST", "/api/prelabels", {
      model: "m",
      format: "coco",
      results: [{ image_id: imageName(key), category_id: "forklift", bbox: [1, 1, 5, 5], score: 0.5 }],
    });
    assert.equal(prelabels.status, 400);
    assert.match(prelabels.body.error, /label "forklift" is not in the label set/);
    assert.deepEqual(
      (await api("GET", "/api/labels")).body.labels.map((l: Json) => l.name),
      ["door_closed", "person"],
      "no refused request made a label",
    );
  } finally {
    await close();
    await f.close();
  }
});

Deno.test("the new writes need the token when one is set", async () => {
  const f = await uiFixture();
  const token = "box-token";
  const { api, close } = serve(f, { token });
  const key = f.rows.find((r) => r.robotId === REAL && r.tier === "local")!.key;
  try {
    const writes: [string, string, unknown][] = [
      ["POST", `/api/frames/${enc(key)}/boxes`, { boxes: [{ label: "p", x: 1, y: 1, w: 1, h: 1 }] }],
      ["PATCH", "/api/boxes/1", { label: "q" }],
      ["DELETE", "/api/boxes/1", undefined],
      ["POST", "/api/boxes/delete", { ids: [1] }],
      ["POST", "/api/boxes/accept", { ids: [1] }],
      ["POST", "/api/frames/review", { keys: [key], status: "reviewed" }],
      ["POST", "/api/labels", { name: "p" }],
      ["POST", "/api/changes/1/undo", {}],
      ["POST", "/api/prelabels", { model: "m", format: "coco", results: [] }],
    ];
    for (const [method, path, body] of writes) {
      const r = await api(method, path, body);
      assert.equal(r.status, 401, `${method} ${path} without the token`);
    }
    assert.equal((await api("GET", "/api/labels")).body.labels.length, 0);
    const right = await api("POST", `/api/frames/${enc(key)}/boxes`, writes[0][2], token);
    assert.equal(right.status, 201);
    assert.equal(
      (await api("GET", `/api/frames/${enc(key)}/next`)).status,
      200,
      "reads stay open on loopback",
    );
  } finally {
    await close();
    await f.close();
  }
});
