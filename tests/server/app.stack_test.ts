/**
 * The HTTP API against a real server on a free port: a temp catalog, and frames in real S3 buckets of the local
 * stack (one of them only in the archive bucket). Every route: status codes, JSON shapes, the messages of bad
 * input, 404s, the token, ETag/304, the streamed tar export, that /openapi.json is generated from the routes the
 * router runs, and that path tricks never reach a store or a file. Then the edges: exports while the store is unreachable
 * (through a TCP proxy of the test that stops forwarding), search and export agreeing, the Host check against DNS
 * rebinding, reads behind the token, and label names and caps.
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import type { FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { objectKey } from "../../src/key.ts";
import { createLogger } from "../../src/log.ts";
import { openApiDocument } from "../../src/server/openapi.ts";
import { hostAllowed } from "../../src/server/http.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { type AppDeps, createApp, exposure } from "../../src/server/app.ts";
import { ByteLru } from "../../src/library/thumbs.ts";
import { startLatencyProxy } from "../../dev/latency_proxy.ts";
import { freePort, spawnDeno } from "../../dev/processes.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { greyJpeg } from "../support/images.ts";
import { T0 } from "../support/rows.ts";
import { ARCHIVE_PREFIX, BULK, REAL, SYNTH, type UiFixture, uiFixture } from "../support/ui_fixture.ts";

const enc = encodeURIComponent;
const quiet = createLogger({ level: "error", format: "text" });

interface Reply {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  bytes: Uint8Array;
}

function client(base: string, token = "") {
  return async (
    method: string,
    path: string,
    options: {
      json?: unknown;
      body?: BodyInit;
      type?: string;
      headers?: Record<string, string>;
      auth?: string;
    } = {},
  ): Promise<Reply> => {
    const headers: Record<string, string> = { ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.type) headers["content-type"] = options.type;
    const auth = options.auth ?? token;
    if (auth) headers.authorization = `Bearer ${auth}`;
    const response = await fetch(base + path, { method, headers, body });
    const bytes = new Uint8Array(await response.arrayBuffer());
    let parsed: unknown = null;
    if ((response.headers.get("content-type") ?? "").startsWith("application/json")) {
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    }
    return { status: response.status, headers: response.headers, body: parsed, bytes };
  };
}

/** Byte-for-byte equality without a diff of 100,000-element arrays on failure. */
function assertSameBytes(actual: Uint8Array | undefined, expected: Uint8Array | undefined): void {
  assert.ok(actual && expected, "bytes missing");
  const same = actual.length === expected.length && actual.every((b, i) => b === expected[i]);
  assert.ok(
    same,
    `got ${actual.length} bytes (${new TextDecoder().decode(actual.slice(0, 200))}), want ${expected.length}`,
  );
}

/**
 * A raw HTTP/1.1 GET whose path and Host header are sent exactly as given (fetch would normalise `..`, and does
 * not let a caller choose the Host).
 */
async function rawGet(
  port: number,
  path: string,
  host = `127.0.0.1:${port}`,
  headers = "",
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers}Connection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    return { status: Number(text.split(" ")[1]), text };
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}

/** Entries of a ustar archive: path (prefix + name), type and data. */
function untar(bytes: Uint8Array): { path: string; type: string; data: Uint8Array }[] {
  const out: { path: string; type: string; data: Uint8Array }[] = [];
  const text = (a: number, b: number) => new TextDecoder().decode(bytes.subarray(a, b)).replace(/\0.*$/s, "");
  let at = 0;
  while (at + 512 <= bytes.length) {
    if (bytes.subarray(at, at + 512).every((b) => b === 0)) break;
    const name = text(at, at + 100), prefix = text(at + 345, at + 500);
    const size = parseInt(text(at + 124, at + 136), 8);
    const type = String.fromCharCode(bytes[at + 156]);
    out.push({
      path: prefix ? `${prefix}/${name}` : name,
      type,
      data: bytes.slice(at + 512, at + 512 + size),
    });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

Deno.test("HTTP API: every route against a real server, S3 and catalog", async (t) => {
  const f = await uiFixture({ bulk: 100_000 });
  const stopSync = f.similar.startSync(200);
  const app = createApp({
    ...f,
    archivePrefix: ARCHIVE_PREFIX,
    webDir: new URL("../../web", import.meta.url).pathname,
    log: quiet,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const port = (server.addr as Deno.NetAddr).port;
  const base = `http://127.0.0.1:${port}`;
  const api = client(base);
  const newest = f.rows.filter((r) => r.robotId === REAL).at(-1)!;
  const local = f.rows.find((r) => r.robotId === REAL && r.tier === "local")!;
  const covered = new Set<string>();
  const route = (method: string, pattern: string) => covered.add(`${method} ${pattern}`);
  try {
    await t.step("GET /api/robots: counts, bytes, time span and latest frame per robot", async () => {
      route("GET", "/api/robots");
      const r = await api("GET", "/api/robots");
      assert.equal(r.status, 200);
      assert.deepEqual(
        r.body.robots.map((x: { robot_id: string }) => x.robot_id),
        [SYNTH, BULK, REAL].sort(),
      );
      const real = r.body.robots.find((x: { robot_id: string }) => x.robot_id === REAL);
      const rows = f.rows.filter((x) => x.robotId === REAL);
      assert.equal(real.frames, rows.length);
      assert.equal(real.bytes, rows.reduce((s, x) => s + x.size, 0));
      assert.equal(real.first_capture_time, new Date(rows[0].timestampMs).toISOString());
      assert.equal(real.last_timestamp_ms, newest.timestampMs);
      assert.equal(real.latest_key, newest.key);
    });

    await t.step("GET /api/robots/{robot}/timeline: one SQL aggregate, fine for 100,000 frames", async () => {
      route("GET", "/api/robots/{robot}/timeline");
      const started = performance.now();
      const r = await api("GET", `/api/robots/${BULK}/timeline?bucket=hour`);
      const ms = performance.now() - started;
      assert.equal(r.status, 200);
      assert.equal(r.body.bucket_ms, 3_600_000);
      assert.equal(r.body.frames, 100_000);
      assert.equal(r.body.buckets.reduce((s: number, b: { frames: number }) => s + b.frames, 0), 100_000);
      assert.ok(
        r.body.buckets.length > 500 && r.body.buckets.length < 700,
        `${r.body.buckets.length} buckets`,
      );
      assert.ok(ms < 2000, `timeline of 100,000 frames took ${ms.toFixed(0)} ms`);
      const auto = await api("GET", `/api/robots/${REAL}/timeline`);
      assert.equal(auto.body.bucket, "minute"); // four hours of frames
      assert.equal(auto.body.frames, 40);
      const span = await api(
        "GET",
        `/api/robots/${REAL}/timeline?bucket=hour&from=${T0}&to=${T0 + 3_599_999}`,
      );
      assert.deepEqual(span.body.buckets, [{ start: new Date(T0).toISOString(), start_ms: T0, frames: 10 }]);
      const bad = await api("GET", `/api/robots/${REAL}/timeline?bucket=week`);
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /bucket "week" must be one of auto, minute, hour, day/);
      assert.equal((await api("GET", `/api/robots/nobody/timeline`)).status, 404);
    });

    await t.step("GET /api/frames: search pages with a cursor, filters, and named errors", async () => {
      route("GET", "/api/frames");
      const first = await api("GET", `/api/frames?robot=${REAL}&limit=15&count=true`);
      assert.equal(first.status, 200);
      assert.equal(first.body.total, 40);
      assert.equal(first.body.frames.length, 15);
      assert.equal(first.body.frames[0].key, newest.key);
      assert.deepEqual(Object.keys(first.body.frames[0]).sort(), [
        "boxes",
        "capture_time",
        "clips",
        "direct_labels",
        "key",
        "labels",
        "robot_id",
        "seq",
        "size",
        "status",
        "tier",
        "timestamp_ms",
      ]);
      assert.deepEqual([first.body.frames[0].boxes, first.body.frames[0].status], [[], "unlabelled"]);
      const seen = new Set<string>(first.body.frames.map((x: { key: string }) => x.key));
      let cursor = first.body.next_cursor;
      while (cursor) {
        const page = await api("GET", `/api/frames?robot=${REAL}&limit=15&cursor=${enc(cursor)}`);
        for (const x of page.body.frames) seen.add(x.key);
        cursor = page.body.next_cursor;
      }
      assert.equal(seen.size, 40);
      const oldest = await api("GET", `/api/frames?robot=${REAL}&order=oldest&limit=1`);
      assert.equal(oldest.body.frames[0].timestamp_ms, T0);
      const archived = await api("GET", "/api/frames?tier=archive");
      assert.deepEqual(archived.body.frames.map((x: { key: string }) => x.key), [f.archived.key]);
      const span = await api("GET", `/api/frames?robot=${REAL}&from=2026-02-18T09:00Z&to=2026-02-18T09:30Z`);
      assert.equal(span.body.frames.length, 6); // 09:00, 09:06, ..., 09:30 (the end covers its whole minute)
      // 100,000 frames: a page costs a page.
      const started = performance.now();
      const bulk = await api("GET", `/api/frames?robot=${BULK}&limit=60`);
      assert.equal(bulk.body.frames.length, 60);
      assert.ok(performance.now() - started < 1000);

      for (
        const [query, message] of [
          ["from=yesterday", /^from "yesterday" is not a time: give ISO 8601/],
          ["to=2026-02-30", /to "2026-02-30": February 2026 has no day 30/],
          ["from=2026-02-19&to=2026-02-18", /to "2026-02-18" .* is before from "2026-02-19"/],
          ["limit=0", /limit "0" must be a whole number from 1 to 1000/],
          ["limit=ten", /limit "ten" must be a whole number/],
          ["order=random", /order "random" must be one of newest, oldest/],
          ["tier=cold", /tier "cold" must be one of local, archiving, archive/],
          ["label=no-such-label", /unknown label "no-such-label"/],
          ["robot=..", /robot: robot id "\.\." is not a path segment/],
          ["cursor=garbage", /cursor "garbage" is not a cursor of this search/],
          ["all_labels=true", /all_labels needs at least one label/],
        ] as const
      ) {
        const r = await api("GET", `/api/frames?${query}`);
        assert.equal(r.status, 400, query);
        assert.match(r.body.error, message, query);
      }
      // A cursor of another search is refused rather than silently wrong.
      const other = await api("GET", `/api/frames?robot=${SYNTH}&cursor=${enc(first.body.next_cursor)}`);
      assert.equal(other.status, 400);
      assert.match(other.body.error, /belongs to a different search/);
    });

    await t.step("GET /api/frames/{key}: metadata, labels and neighbours; unknown keys are 404", async () => {
      route("GET", "/api/frames/{key}");
      const second = f.rows.filter((r) => r.robotId === REAL)[1];
      const r = await api("GET", `/api/frames/${enc(second.key)}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.key, second.key);
      assert.equal(r.body.etag, second.etag);
      assert.equal(r.body.filter, "ahash");
      assert.equal(r.body.hash.length, 64);
      assert.equal(r.body.previous_key, f.rows.filter((x) => x.robotId === REAL)[0].key);
      assert.equal(r.body.next_key, f.rows.filter((x) => x.robotId === REAL)[2].key);
      assert.deepEqual(r.body.labels, []);
      const missing = await api("GET", `/api/frames/${enc("frames/reachy-001/2026-02-18/nope.jpg")}`);
      assert.equal(missing.status, 404);
      assert.match(missing.body.error, /no frame "frames\/reachy-001\/2026-02-18\/nope.jpg" in the catalog/);
      const badEncoding = await api("GET", "/api/frames/%E0%A4%A/image");
      assert.equal(badEncoding.status, 400);
      assert.match(badEncoding.body.error, /not valid percent-encoding/);
    });

    await t.step("GET /api/frames/{key}/image: from whichever tier, ETag, immutable, 304", async () => {
      route("GET", "/api/frames/{key}/image");
      const r = await api("GET", `/api/frames/${enc(local.key)}/image`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "image/jpeg");
      assertSameBytes(r.bytes, f.jpegs.get(local.key));
      assert.equal(r.headers.get("etag"), `"${local.etag}"`);
      assert.match(r.headers.get("cache-control")!, /immutable/);
      const again = await api("GET", `/api/frames/${enc(local.key)}/image`, {
        headers: { "if-none-match": r.headers.get("etag")! },
      });
      assert.equal(again.status, 304);
      assert.equal(again.bytes.length, 0);
      const other = await api("GET", `/api/frames/${enc(local.key)}/image`, {
        headers: { "if-none-match": '"x"' },
      });
      assert.equal(other.status, 200);
      // The archived frame is only in the archive bucket.
      const archived = await api("GET", `/api/frames/${enc(f.archived.key)}/image`);
      assert.equal(archived.status, 200);
      assertSameBytes(archived.bytes, f.jpegs.get(f.archived.key));
      // A catalog row whose object no store has.
      const ghost: FrameRow = { ...local, key: objectKey("frames/", REAL, T0 - 1000, 999), etag: null };
      await f.catalog.upsert(ghost);
      const gone = await api("GET", `/api/frames/${enc(ghost.key)}/image`);
      assert.equal(gone.status, 404);
      assert.match(gone.body.error, /in the catalog \(tier local\) but no store holds it/);
      await f.catalog.remove(ghost.key);
    });

    await t.step(
      "GET /api/frames/{key}/thumb: a small colour JPEG from the DC coefficients, cached",
      async () => {
        route("GET", "/api/frames/{key}/thumb");
        const made = app.thumbnails.made;
        const r = await api("GET", `/api/frames/${enc(local.key)}/thumb`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get("content-type"), "image/jpeg");
        const image = jpeg.decode(r.bytes);
        assert.equal(image.width, 240); // 1920 / 8
        assert.equal(image.height, 135);
        assert.ok(r.bytes.length < 20_000, `${r.bytes.length} bytes`);
        assert.equal(app.thumbnails.made, made + 1);
        const cached = await api("GET", `/api/frames/${enc(local.key)}/thumb`);
        assertSameBytes(cached.bytes, r.bytes);
        assert.equal(app.thumbnails.made, made + 1);
        const etag = r.headers.get("etag")!;
        assert.notEqual(etag, `"${local.etag}"`);
        const notModified = await api("GET", `/api/frames/${enc(local.key)}/thumb`, {
          headers: { "if-none-match": etag },
        });
        assert.equal(notModified.status, 304);
        const synth = f.rows.find((x) => x.robotId === SYNTH)!;
        assert.equal(jpeg.decode((await api("GET", `/api/frames/${enc(synth.key)}/thumb`)).bytes).width, 40);
        assert.equal((await api("GET", `/api/frames/${enc("nope")}/thumb`)).status, 404);
        // The cache is bounded by bytes, least recently used out first.
        const lru = new ByteLru(10);
        lru.set("a", new Uint8Array(4));
        lru.set("b", new Uint8Array(4));
        lru.get("a");
        lru.set("c", new Uint8Array(4));
        assert.deepEqual(
          [lru.get("a") !== undefined, lru.get("b") !== undefined, lru.get("c") !== undefined],
          [
            true,
            false,
            true,
          ],
        );
        assert.equal(lru.bytes, 8);
      },
    );

    await t.step("GET /api/frames/{key}/similar: nearest by hamming distance, itself left out", async () => {
      route("GET", "/api/frames/{key}/similar");
      const r = await api("GET", `/api/frames/${enc(local.key)}/similar?k=5`);
      assert.equal(r.status, 200);
      assert.equal(r.body.frames.length, 5);
      assert.ok(r.body.frames.every((x: { key: string }) => x.key !== local.key));
      const distances = r.body.frames.map((x: { distance: number }) => x.distance);
      assert.deepEqual(distances, [...distances].sort((a, b) => a - b));
      assert.equal(distances[0], 0); // the same sample stored again
      const mine = await api("GET", `/api/frames/${enc(local.key)}/similar?k=50&robot=${SYNTH}`);
      assert.ok(mine.body.frames.length > 0);
      assert.ok(mine.body.frames.every((x: { robot_id: string }) => x.robot_id === SYNTH));
      const near = await api("GET", `/api/frames/${enc(local.key)}/similar?k=50&max_distance=0`);
      assert.ok(near.body.frames.every((x: { distance: number }) => x.distance === 0));
      assert.equal((await api("GET", `/api/frames/${enc("nope")}/similar`)).status, 404);
      const badK = await api("GET", `/api/frames/${enc(local.key)}/similar?k=0`);
      assert.equal(badK.status, 400);
      assert.match(badK.body.error, /k "0" must be a whole number from 1 to 1000/);
    });

    await t.step(
      "POST /api/similar: an upload hashed by the consumer's filter; new frames found in a second",
      async () => {
        route("POST", "/api/similar");
        const upload = f.jpegs.get(local.key)!;
        const r = await api("POST", "/api/similar?k=3", {
          body: upload as Uint8Array<ArrayBuffer>,
          type: "image/jpeg",
        });
        assert.equal(r.status, 200);
        assert.equal(r.body.hash.length, 64);
        assert.equal(r.body.frames[0].distance, 0);
        assertSameBytes(f.jpegs.get(r.body.frames[0].key), upload);
        const notJpeg = await api("POST", "/api/similar", { body: "hello", type: "image/jpeg" });
        assert.equal(notJpeg.status, 400);
        assert.match(notJpeg.body.error, /the upload cannot be hashed: .*JPEG/i);
        const wrongType = await api("POST", "/api/similar", { body: "{}", type: "application/json" });
        assert.equal(wrongType.status, 415);
        assert.equal((await api("POST", "/api/similar", { body: "", type: "image/jpeg" })).status, 400);

        // Another process (here: another connection) stores a frame; the index picks it up by itself.
        const fresh = greyJpeg(320, 240, (x, y) => ((x >> 5) + (y >> 4)) % 3 * 110);
        const hash = await f.hasher.hash(fresh);
        const key = objectKey("frames/", SYNTH, T0 + 86_400_000, 7777);
        const writer = new SqliteCatalog(f.catalog.where);
        const storedMs = Date.now();
        await writer.upsert({
          key,
          robotId: SYNTH,
          timestampMs: T0 + 86_400_000,
          seq: 7777,
          size: fresh.length,
          etag: null,
          filter: "ahash",
          distance: 40,
          hash,
          tier: "local",
          tierChangedMs: storedMs,
          storedMs,
        });
        await writer.close();
        let found = false;
        while (!found && Date.now() - storedMs < 1500) {
          const s = await api("POST", "/api/similar?k=1", {
            body: fresh as Uint8Array<ArrayBuffer>,
            type: "image/jpeg",
          });
          found = s.body.frames[0]?.key === key && s.body.frames[0].distance === 0;
          if (!found) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(found, "a frame stored by another process was not findable within 1.5 s");
        await f.catalog.remove(key);
      },
    );

    let clipId = 0;
    await t.step(
      "labels: add/remove on keys and on a robot's span, list, rename, merge, delete",
      async () => {
        route("POST", "/api/frames/labels");
        route("GET", "/api/labels");
        route("POST", "/api/labels/rename");
        route("DELETE", "/api/labels/{name}");
        const keys = f.rows.filter((r) => r.robotId === REAL).slice(0, 3).map((r) => r.key);
        const add = await api("POST", "/api/frames/labels", {
          json: { keys, add: ["door", "person"], author: "ana" },
        });
        assert.equal(add.status, 200);
        assert.deepEqual(add.body, { added: 6, removed: 0 });
        const frame = await api("GET", `/api/frames/${enc(keys[0])}`);
        assert.deepEqual(frame.body.labels, ["door", "person"]);
        assert.deepEqual(frame.body.direct_labels, ["door", "person"]);
        const span = await api("POST", "/api/frames/labels", {
          json: { robot: SYNTH, from: "2026-02-18T10:00Z", to: "2026-02-18T10:14Z", add: ["stripes"] },
        });
        assert.deepEqual(span.body, { added: 3, removed: 0 }); // 10:00, 10:05, 10:10 (to covers 10:14:59.999)
        const both = await api("POST", "/api/frames/labels", {
          json: { keys: [keys[0]], add: ["x1"], remove: ["door"] },
        });
        assert.deepEqual(both.body, { added: 1, removed: 1 });
        const list = await api("GET", "/api/labels");
        const unset = { boxes: 0, color: null, hotkey: null };
        assert.deepEqual(list.body, {
          labels: [
            { name: "door", frames: 2, clips: 0, ...unset },
            { name: "person", frames: 3, clips: 0, ...unset },
            { name: "stripes", frames: 3, clips: 0, ...unset },
            { name: "x1", frames: 1, clips: 0, ...unset },
          ],
          strict: false,
        });
        const search = await api("GET", "/api/frames?label=door&label=person&all_labels=true");
        assert.equal(search.body.frames.length, 2);

        for (
          const [body, status, message] of [
            [
              { keys: ["frames/nope.jpg"], add: ["a"] },
              404,
              /1 frame key\(s\) not in the catalog: "frames\/nope.jpg"/,
            ],
            [{ keys, remove: ["never-made"] }, 404, /unknown label "never-made"/],
            [{ keys }, 400, /give labels to add and\/or remove/],
            [{ keys, add: ["a/b"] }, 400, /add: label "a\/b" may not contain '\/'/],
            [{ keys, add: "door" }, 400, /add must be an array of strings/],
            [{ robot: SYNTH, add: ["a"] }, 400, /robot needs from and to/],
            [
              { robot: SYNTH, from: "yesterday", to: "2026-02-18", add: ["a"] },
              400,
              /from "yesterday" is not a time/,
            ],
            [{ add: ["a"] }, 400, /give keys, or robot \+ from \+ to/],
            [{ keys: [], add: ["a"] }, 400, /keys must hold 1 to 10000 frame keys/],
          ] as const
        ) {
          const r = await api("POST", "/api/frames/labels", { json: body });
          assert.equal(r.status, status, JSON.stringify(body));
          assert.match(r.body.error, message, JSON.stringify(body));
        }
        const notJson = await api("POST", "/api/frames/labels", { body: "{", type: "application/json" });
        assert.equal(notJson.status, 400);
        assert.match(notJson.body.error, /not valid JSON/);
        const form = await api("POST", "/api/frames/labels", {
          body: "keys=a",
          type: "application/x-www-form-urlencoded",
        });
        assert.equal(form.status, 415);
        assert.deepEqual((await api("GET", "/api/labels")).body.labels.length, 4); // nothing changed on errors

        const renamed = await api("POST", "/api/labels/rename", { json: { from: "x1", to: "x2" } });
        assert.deepEqual(renamed.body, { from: "x1", to: "x2", merged: false });
        const clash = await api("POST", "/api/labels/rename", { json: { from: "x2", to: "door" } });
        assert.equal(clash.status, 409);
        assert.match(clash.body.error, /label "door" already exists: send merge: true/);
        const merged = await api("POST", "/api/labels/rename", {
          json: { from: "x2", to: "door", merge: true },
        });
        assert.deepEqual(merged.body, { from: "x2", to: "door", merged: true });
        assert.equal(
          (await api("POST", "/api/labels/rename", { json: { from: "x2", to: "y" } })).status,
          404,
        );
        assert.equal((await api("POST", "/api/labels/rename", { json: { from: "door" } })).status, 400);
        assert.equal(
          (await api("POST", "/api/labels/rename", { json: { from: "door", to: ".." } })).status,
          400,
        );

        const deleted = await api("DELETE", `/api/labels/stripes?author=ana`);
        assert.deepEqual(deleted.body, { deleted: "stripes", frames: 3, clips: 0 });
        assert.equal((await api("DELETE", `/api/labels/stripes`)).status, 404);
        assert.deepEqual((await api("GET", "/api/labels")).body.labels.map((l: { name: string }) => l.name), [
          "door",
          "person",
        ]);
      },
    );

    await t.step("clips: create, list, update, delete; a clip's labels reach its frames", async () => {
      route("POST", "/api/clips");
      route("GET", "/api/clips");
      route("PATCH", "/api/clips/{id}");
      route("DELETE", "/api/clips/{id}");
      const created = await api("POST", "/api/clips", {
        json: {
          robot: SYNTH,
          from: "2026-02-18T10:30Z",
          to: "2026-02-18T10:45Z",
          name: "blobs",
          note: "round things",
          labels: ["round"],
          author: "ben",
        },
      });
      assert.equal(created.status, 201);
      clipId = created.body.id;
      assert.equal(created.headers.get("location"), `/api/clips/${clipId}`);
      assert.equal(created.body.frames, 4); // 10:30, 10:35, 10:40, 10:45
      assert.deepEqual(created.body.labels, ["round"]);
      assert.equal(created.body.author, "ben");
      const inside = f.rows.find((r) =>
        r.robotId === SYNTH && r.timestampMs === Date.UTC(2026, 1, 18, 10, 35)
      )!;
      const frame = await api("GET", `/api/frames/${enc(inside.key)}`);
      assert.deepEqual(frame.body.labels, ["round"]);
      assert.deepEqual(frame.body.direct_labels, []);
      assert.deepEqual(frame.body.clips, [{ id: clipId, name: "blobs", labels: ["round"] }]);

      const list = await api("GET", `/api/clips?robot=${SYNTH}`);
      assert.deepEqual(list.body.clips.map((c: { id: number }) => c.id), [clipId]);
      assert.deepEqual((await api("GET", `/api/clips?robot=${REAL}`)).body.clips, []);
      assert.equal((await api("GET", `/api/clips?label=round`)).body.clips.length, 1);
      assert.equal((await api("GET", `/api/clips?label=door`)).body.clips.length, 0);

      const patched = await api("PATCH", `/api/clips/${clipId}`, {
        json: { add_labels: ["blob"], to: "2026-02-18T10:50Z", name: "blobs2" },
      });
      assert.equal(patched.status, 200);
      assert.deepEqual(patched.body.labels, ["blob", "round"]);
      assert.equal(patched.body.frames, 5);
      assert.equal(patched.body.name, "blobs2");

      for (
        const [method, path, body, status, message] of [
          ["POST", "/api/clips", { robot: SYNTH, from: 1, to: 2 }, 400, /a clip needs a name/],
          ["POST", "/api/clips", { robot: SYNTH, name: "x" }, 400, /a clip needs from and to/],
          [
            "POST",
            "/api/clips",
            { robot: SYNTH, name: "x", from: "2026-02-19", to: "2026-02-18" },
            400,
            /before it starts/,
          ],
          [
            "POST",
            "/api/clips",
            { robot: "a/b", name: "x", from: 1, to: 2 },
            400,
            /robot id "a\/b" may only hold/,
          ],
          ["PATCH", "/api/clips/999999", { name: "x" }, 404, /no clip 999999/],
          ["PATCH", "/api/clips/abc", { name: "x" }, 400, /clip id "abc" is not a number/],
          ["PATCH", `/api/clips/${clipId}`, { colour: "red" }, 400, /unknown field\(s\) colour/],
          [
            "PATCH",
            `/api/clips/${clipId}`,
            { labels: ["ok", ""] },
            400,
            /labels: a label name must not be empty/,
          ],
        ] as const
      ) {
        const r = await api(method, path, { json: body });
        assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}`);
        assert.match(r.body.error, message);
      }
      const deleted = await api("DELETE", `/api/clips/${clipId}`);
      assert.deepEqual(deleted.body, { deleted: clipId });
      assert.equal((await api("DELETE", `/api/clips/${clipId}`)).status, 404);
      assert.equal((await api("DELETE", `/api/clips/x`)).status, 400);
    });

    await t.step("GET /api/changes: the journal of all of the above, with authors", async () => {
      route("GET", "/api/changes");
      const all = await api("GET", "/api/changes?limit=1000");
      assert.equal(all.status, 200);
      const actions = all.body.changes.map((c: { action: string }) => c.action);
      for (
        const a of [
          "label.add",
          "label.remove",
          "label.rename",
          "label.delete",
          "clip.create",
          "clip.update",
          "clip.delete",
        ]
      ) {
        assert.ok(actions.includes(a), a);
      }
      assert.equal(all.body.changes[0].author, "ana");
      assert.deepEqual(Object.keys(all.body.changes[0]).sort(), [
        "action",
        "at_ms",
        "author",
        "detail",
        "id",
        "target",
        "time",
      ]);
      const newest = await api("GET", "/api/changes?order=newest&limit=1");
      assert.equal(newest.body.changes[0].action, "clip.delete");
      const after = await api("GET", `/api/changes?after=${all.body.changes.at(-2).id}`);
      assert.equal(after.body.changes.length, 1);
      const target = await api("GET", `/api/changes?target=clip:${clipId}`);
      assert.equal(target.body.changes.length, 3);
      assert.equal((await api("GET", "/api/changes?since=soon")).status, 400);
      assert.equal((await api("GET", "/api/changes?limit=5000")).status, 400);
    });

    await t.step("GET /api/export: a tar streamed as it is built, from both tiers", async () => {
      route("GET", "/api/export");
      // Put the archived frame into the export.
      await api("POST", "/api/frames/labels", { json: { keys: [f.archived.key], add: ["door"] } });
      const r = await api("GET", "/api/export?label=door&label=person");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/x-tar");
      assert.match(
        r.headers.get("content-disposition")!,
        /^attachment; filename="frame-bucket-door\+person-\d{8}T\d{6}Z\.tar"; filename\*=UTF-8''frame-bucket-door%2Bperson-\d{8}T\d{6}Z\.tar$/,
      );
      assert.equal(r.headers.get("x-frame-count"), "4");
      // How it ended, as the UI asks after a download.
      route("GET", "/api/exports/{id}");
      const id = r.headers.get("x-export-id")!;
      const status = await api("GET", `/api/exports/${id}`);
      assert.equal(status.status, 200);
      assert.deepEqual(
        [status.body.state, status.body.total, status.body.frames, status.body.files, status.body.missing],
        ["complete", 4, 4, 7, 0],
      );
      assert.equal((await api("GET", "/api/exports/never-made-1")).status, 404);
      const entries = untar(r.bytes);
      const files = entries.filter((e) => e.type === "0").map((e) => e.path);
      assert.equal(files.at(-1), "metadata.jsonl");
      assert.deepEqual(entries.filter((e) => e.type === "5").map((e) => e.path).sort(), ["door/", "person/"]);
      // door: 4 frames (the first three, one of them by the merge, and the archived one); person: 3.
      assert.equal(files.filter((p) => p.startsWith("door/")).length, 4);
      assert.equal(files.filter((p) => p.startsWith("person/")).length, 3);
      const meta = new TextDecoder().decode(entries.find((e) => e.path === "metadata.jsonl")!.data).trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.equal(meta.length, 7);
      const archivedLine = meta.find((m) => m.key === f.archived.key);
      assert.equal(archivedLine.tier, "archive");
      const archivedEntry = entries.find((e) => e.path === archivedLine.file_name)!;
      assertSameBytes(archivedEntry.data, f.jpegs.get(f.archived.key));
      // The system tar reads it too.
      const tarFile = await Deno.makeTempFile({ suffix: ".tar" });
      await Deno.writeFile(tarFile, r.bytes);
      const listed = await new Deno.Command("tar", { args: ["-tf", tarFile], stdout: "piped" }).output();
      assert.ok(listed.success);
      assert.equal(new TextDecoder().decode(listed.stdout).trim().split("\n").length, entries.length);
      await Deno.remove(tarFile);

      const robot = await api("GET", `/api/export?label=door&robot=${SYNTH}`);
      assert.equal(robot.headers.get("x-frame-count"), "0");
      assert.deepEqual(untar(robot.bytes).map((e) => e.path), ["metadata.jsonl"]);
      const none = await api("GET", "/api/export");
      assert.equal(none.status, 400);
      assert.match(none.body.error, /name at least one label to export/);
      const unknown = await api("GET", "/api/export?label=nope");
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.error, /unknown label "nope"/);
      assert.equal((await api("GET", "/api/export?label=door&from=later")).status, 400);
      const badId = await api("GET", "/api/export?label=door&export_id=a/b");
      assert.equal(badId.status, 400);
      assert.match(badId.body.error, /export_id "a\/b" must be 8 to 64 letters, digits/);
    });

    await t.step(
      "boxes, the label set, review, next, undo and pre-labels answer (boxes.stack_test.ts tests them in depth)",
      async () => {
        const reals = f.rows.filter((r) => r.robotId === REAL && r.tier === "local");
        const key = reals.at(-1)!.key;
        route("POST", "/api/frames/{key}/boxes");
        const added = await api("POST", `/api/frames/${enc(key)}/boxes`, {
          json: {
            boxes: [
              { label: "person", x: 960, y: 540, w: 960, h: 540 },
              {
                label: "forklift",
                x: 0,
                y: 0,
                w: 0.5,
                h: 0.5,
                unit: "norm",
                source: "model:m",
                confidence: 0.6,
              },
            ],
            author: "ana",
          },
        });
        assert.equal(added.status, 201, JSON.stringify(added.body));
        // The size of the real frame, read from the JPEG in S3.
        assert.deepEqual(
          added.body.boxes.map((
            b: { image_width: number; image_height: number },
          ) => [b.image_width, b.image_height]),
          [[1920, 1080], [1920, 1080]],
        );
        const [person, model] = added.body.boxes.map((b: { id: number }) => b.id);
        route("PATCH", "/api/boxes/{id}");
        const patched = await api("PATCH", `/api/boxes/${person}`, { json: { label: "door" } });
        assert.equal(patched.body.box.label, "door");
        route("POST", "/api/boxes/accept");
        assert.deepEqual((await api("POST", "/api/boxes/accept", { json: { key } })).body, { accepted: 1 });
        route("DELETE", "/api/boxes/{id}");
        assert.deepEqual((await api("DELETE", `/api/boxes/${model}`)).body, { deleted: 1 });
        route("POST", "/api/changes/{id}/undo");
        const last = (await api("GET", "/api/changes?order=newest&limit=1")).body.changes[0];
        assert.equal(last.action, "box.delete");
        const undone = await api("POST", `/api/changes/${last.id}/undo`, { json: {} });
        assert.equal(undone.status, 200, JSON.stringify(undone.body));
        assert.equal((await api("POST", `/api/changes/${last.id}/undo`, { json: {} })).status, 409);
        route("POST", "/api/boxes/delete");
        const boxes = (await api("GET", `/api/frames/${enc(key)}`)).body.boxes;
        assert.deepEqual(
          (await api("POST", "/api/boxes/delete", { json: { ids: boxes.map((b: { id: number }) => b.id) } }))
            .body,
          { deleted: 2 },
        );
        route("POST", "/api/frames/review");
        assert.deepEqual(
          (await api("POST", "/api/frames/review", { json: { keys: [key], status: "reviewed" } })).body,
          { changed: 1 },
        );
        route("GET", "/api/frames/{key}/next");
        const next = await api("GET", `/api/frames/${enc(reals[0].key)}/next?robot=${REAL}&order=oldest`);
        assert.equal(next.status, 200);
        assert.equal(typeof next.body.key, "string");
        route("POST", "/api/labels");
        const defined = await api("POST", "/api/labels", {
          json: { name: "forklift", color: "#00aa00", hotkey: 4 },
        });
        assert.deepEqual(defined.body.label, {
          name: "forklift",
          frames: 0,
          clips: 0,
          boxes: 0,
          color: "#00aa00",
          hotkey: 4,
        });
        route("POST", "/api/prelabels");
        const imported = await api("POST", "/api/prelabels", {
          json: {
            model: "m",
            format: "coco",
            results: [{
              image_id: key.slice("frames/".length),
              category_id: "forklift",
              bbox: [1, 2, 3, 4],
              score: 1,
            }],
          },
        });
        assert.deepEqual(imported.body, { frames: 1, boxes: 1, clipped: 0, skipped: [] });
        const frame = await api("GET", `/api/frames/${enc(key)}`);
        assert.equal(frame.body.status, "reviewed");
        assert.deepEqual(frame.body.labels, ["forklift"]);
        // A dataset's boxes back onto the frames it names (source import); the same file again changes nothing.
        route("POST", "/api/import");
        const dataset = {
          images: [{ id: 1, file_name: key.slice("frames/".length), width: 1920, height: 1080 }],
          annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [10, 20, 30, 40] }],
          categories: [{ id: 1, name: "forklift" }],
        };
        const first = await api("POST", "/api/import", { json: { format: "coco", dataset } });
        assert.equal(first.status, 200, JSON.stringify(first.body));
        const again = await api("POST", "/api/import", { json: { format: "coco", dataset } });
        assert.equal(again.status, 200, JSON.stringify(again.body));
        const boxed = await api("GET", `/api/frames/${enc(key)}`);
        const imports = boxed.body.boxes.filter((b: { source: string }) => b.source === "import");
        assert.equal(imports.length, 1, JSON.stringify(boxed.body.boxes));
        assert.deepEqual([imports[0].x, imports[0].y, imports[0].w, imports[0].h], [10, 20, 30, 40]);
      },
    );

    await t.step("GET /healthz says whether the catalog answers", async () => {
      route("GET", "/healthz");
      const r = await api("GET", "/healthz");
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { catalog: "ok" });
    });

    await t.step("collections, playback and storage health over the same server", async () => {
      route("POST", "/api/collections");
      route("GET", "/api/collections");
      route("GET", "/api/collections/{id}");
      route("PATCH", "/api/collections/{id}");
      route("DELETE", "/api/collections/{id}");
      route("GET", "/api/playback");
      route("GET", "/api/storage");
      const clip = await api("POST", "/api/clips", {
        json: { robot: SYNTH, from: "2026-02-18T10:30Z", to: "2026-02-18T10:40Z", name: "for-collection" },
      });
      assert.equal(clip.status, 201);
      const created = await api("POST", "/api/collections", {
        json: { name: "week 47", note: "docking", clip_ids: [clip.body.id], author: "ben" },
      });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body.clip_ids, [clip.body.id]);
      const id = created.body.id;
      assert.equal((await api("POST", "/api/collections", { json: { name: "week 47" } })).status, 409);
      assert.equal(
        (await api("POST", "/api/collections", { json: { name: "x", clip_ids: [999999] } })).status,
        404,
      );
      const listed = await api("GET", "/api/collections?name=week%2047");
      assert.deepEqual(listed.body.collections.map((c: { id: number }) => c.id), [id]);
      const one = await api("GET", `/api/collections/${id}`);
      assert.equal(one.body.frames, 3); // 10:30, 10:35, 10:40
      const renamed = await api("PATCH", `/api/collections/${id}`, { json: { name: "week 48" } });
      assert.equal(renamed.body.name, "week 48");

      const played = await api("GET", `/api/playback?clip=${clip.body.id}&count=true`);
      assert.equal(played.status, 200);
      assert.equal(played.body.total, 3);
      const times = played.body.frames.map((x: { timestamp_ms: number }) => x.timestamp_ms);
      assert.deepEqual(times, [...times].sort((a, b) => a - b), "oldest first");
      assert.equal((await api("GET", "/api/playback?clip=999999")).status, 404);

      const storage = await api("GET", "/api/storage");
      assert.equal(storage.status, 200);
      const frames = ["local", "archiving", "archive"]
        .reduce((n, tier) => n + storage.body.tiers[tier].frames, 0);
      assert.equal(frames, f.rows.length + 100_000, "every frame of the catalog is in a tier");

      assert.deepEqual((await api("DELETE", `/api/collections/${id}`)).body, { deleted: id });
      assert.equal((await api("GET", `/api/collections/${id}`)).status, 404);
      assert.equal((await api("DELETE", `/api/clips/${clip.body.id}`)).status, 200);
    });

    await t.step("GET /openapi.json is generated from the route declarations the router runs", async () => {
      route("GET", "/openapi.json");
      const r = await api("GET", "/openapi.json");
      assert.equal(r.status, 200);
      assert.equal(r.body.openapi, "3.1.0");
      const documented = new Set<string>();
      for (const [path, item] of Object.entries(r.body.paths as Record<string, Record<string, unknown>>)) {
        for (const method of Object.keys(item)) documented.add(`${method.toUpperCase()} ${path}`);
      }
      const routed = new Set(app.router.routes.map((x) => `${x.method.toUpperCase()} ${x.path}`));
      assert.deepEqual([...documented].sort(), [...routed].sort());
      assert.deepEqual(r.body, JSON.parse(JSON.stringify(openApiDocument(app.router.routes))));
      // Every $ref points at something.
      const refs = JSON.stringify(r.body).match(/"#\/components\/[^"]+"/g) ?? [];
      for (const ref of refs) {
        const [, , section, name] = JSON.parse(ref).split("/");
        assert.ok(r.body.components[section][name], ref);
      }
      // And this test called every route.
      assert.deepEqual([...covered].sort(), [...routed].sort());
    });

    await t.step("path tricks never reach a store or a file; unknown routes and methods", async () => {
      for (
        const path of [
          `/api/frames/${enc("../../../etc/passwd")}/image`,
          `/api/frames/..%2F..%2Fconfig.toml/image`,
          `/api/frames/%2e%2e%2f%2e%2e%2fdeno.json`,
          `/api/frames/${enc("frames/../frames/" + local.key.slice(7))}/image`,
          `/api/frames/${enc(ARCHIVE_PREFIX + f.archived.key)}/image`,
          "/..%2Fdeno.json",
          "/%2e%2e/deno.json",
          "/views/..%2F..%2Fdeno.json",
          "/.hidden",
        ]
      ) {
        const r = await api("GET", path);
        assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
        assert.ok(!new TextDecoder().decode(r.bytes).includes('"tasks"'), path);
      }
      for (
        const path of [
          "/../deno.json",
          "/api/../../deno.json",
          "/views/../../src/server.ts",
          "/api/frames/../../../etc/passwd",
        ]
      ) {
        const r = await rawGet(port, path);
        assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
        assert.ok(!r.text.includes('"tasks"') && !r.text.includes("root:"), path);
      }
      const unknown = await api("GET", "/api/nothing");
      assert.equal(unknown.status, 404);
      assert.match(unknown.body.error, /no route GET \/api\/nothing/);
      const method = await api("PUT", "/api/labels");
      assert.equal(method.status, 405);
      assert.equal(method.headers.get("allow"), "GET, POST");
    });

    await t.step("the web UI's files are served with a content security policy", async () => {
      const index = await fetch(`${base}/`);
      assert.equal(index.status, 200);
      assert.match(index.headers.get("content-type")!, /text\/html/);
      assert.match(index.headers.get("content-security-policy")!, /default-src 'self'/);
      assert.match(await index.text(), /<script type="module" src="app.js">/);
      const js = await fetch(`${base}/views/frame.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get("content-type")!, /javascript/);
      await js.body?.cancel();
      const head = await fetch(`${base}/style.css`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
      assert.equal(
        (await fetch(`${base}/`, { method: "POST" }).then(async (r) => (await r.body?.cancel(), r))).status,
        405,
      );
    });
  } finally {
    stopSync();
    await server.shutdown();
    await f.close();
  }
});

Deno.test("HTTP API: writes need the token when one is set; reads do not", async () => {
  const f = await uiFixture();
  const token = "s3cret-token";
  const app = createApp({ ...f, archivePrefix: ARCHIVE_PREFIX, token, webDir: null, log: quiet });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const api = client(base);
  const key = f.rows[0].key;
  try {
    const body = { json: { keys: [key], add: ["t"] } };
    const none = await api("POST", "/api/frames/labels", body);
    assert.equal(none.status, 401);
    assert.match(none.body.error, /needs Authorization: Bearer <server.token>/);
    assert.match(none.headers.get("www-authenticate")!, /^Bearer/);
    const wrong = await api("POST", "/api/frames/labels", { ...body, auth: "guess" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error, /the token is wrong/);
    const basic = await api("POST", "/api/frames/labels", {
      ...body,
      headers: { authorization: `Basic ${btoa("a:b")}` },
    });
    assert.equal(basic.status, 401);
    assert.deepEqual((await api("GET", "/api/labels")).body.labels, []); // nothing was written
    const right = await api("POST", "/api/frames/labels", { ...body, auth: token });
    assert.deepEqual(right.body, { added: 1, removed: 0 });
    for (
      const [method, path, options] of [
        ["POST", "/api/labels/rename", { json: { from: "t", to: "u" } }],
        ["DELETE", "/api/labels/t", {}],
        ["POST", "/api/clips", { json: { robot: REAL, from: T0, to: T0 + 1, name: "c" } }],
        ["PATCH", "/api/clips/1", { json: { name: "d" } }],
        ["DELETE", "/api/clips/1", {}],
        ["POST", "/api/similar", { body: f.jpegs.get(key) as Uint8Array<ArrayBuffer>, type: "image/jpeg" }],
        ["POST", `/api/frames/${enc(key)}/boxes`, {
          json: { boxes: [{ label: "t", x: 1, y: 1, w: 1, h: 1 }] },
        }],
        ["PATCH", "/api/boxes/1", { json: { label: "u" } }],
        ["DELETE", "/api/boxes/1", {}],
        ["POST", "/api/boxes/delete", { json: { ids: [1] } }],
        ["POST", "/api/boxes/accept", { json: { ids: [1] } }],
        ["POST", "/api/frames/review", { json: { keys: [key], status: "reviewed" } }],
        ["POST", "/api/labels", { json: { name: "v" } }],
        ["POST", "/api/changes/1/undo", { json: {} }],
        ["POST", "/api/prelabels", { json: { model: "m", format: "coco", results: [] } }],
        ["POST", "/api/import", { json: { format: "coco", files: [] } }],
      ] as const
    ) {
      assert.equal((await api(method, path, options)).status, 401, `${method} ${path} without the token`);
    }
    for (
      const path of ["/api/robots", "/api/labels", `/api/frames/${enc(key)}`, `/api/frames/${enc(key)}/thumb`]
    ) {
      assert.equal((await api("GET", path)).status, 200, path);
    }
    assert.equal((await api("GET", "/")).status, 404); // webDir: null serves no UI
  } finally {
    await server.shutdown();
    await f.close();
  }
});

Deno.test("deno task serve: bound beyond loopback, reads need the token unless public_reads; no token, no start", async () => {
  // Loopback: only this machine can connect, reads are open.
  assert.deepEqual(exposure("127.0.0.1", "", false), { readsNeedToken: false, refusal: null, warning: null });
  assert.deepEqual(exposure("localhost", "", true), { readsNeedToken: false, refusal: null, warning: null });
  assert.deepEqual(exposure("::1", "t", false), { readsNeedToken: false, refusal: null, warning: null });
  // Beyond it: the token guards reads as well, unless reads are declared public.
  assert.deepEqual(exposure("0.0.0.0", "t", false), { readsNeedToken: true, refusal: null, warning: null });
  assert.match(
    exposure("0.0.0.0", "", false).refusal!,
    /Set server\.token .* or set server\.public_reads = true/,
  );
  assert.match(
    exposure("192.168.1.5", "t", true).warning!,
    /server\.public_reads = true: anyone who can connect can read every frame and thumbnail, the labels, clips and change journal, and whole datasets through export\. Changes need the token$/,
  );
  assert.match(exposure("::", "", true).warning!, /and change or delete labels and clips/);

  const f = await uiFixture();
  const endpoint = stackEndpoints().s3Endpoint;
  const configText = (extra: string) =>
    `[catalog]\ndata_dir = "${f.dir}"\n[rustfs]\nendpoint = "${endpoint}"\nbucket = "${f.local.bucket}"\n` +
    `[aws_s3]\nbucket = "${f.archive.bucket}"\nendpoint = "${endpoint}"\nprefix = "${ARCHIVE_PREFIX}"\n${extra}`;
  const config = await Deno.makeTempFile({ suffix: ".toml" });
  // The archive's credentials come from the AWS SDK's chain, here the environment.
  const env = { AWS_ACCESS_KEY_ID: "rustfsadmin", AWS_SECRET_ACCESS_KEY: "rustfsadmin" };
  const serve = (port: number, token = "") =>
    spawnDeno("serve", "src/main/serve.ts", [
      "--config",
      config,
      "--port",
      String(port),
      "--hostname",
      "0.0.0.0",
    ], {
      env: { ...env, FRAME_BUCKET_TOKEN: token },
    });
  const children: { kill(signal: Deno.Signal): void }[] = [];
  try {
    // No token, reads not declared public: it does not start.
    await Deno.writeTextFile(config, configText(""));
    const refused = serve(freePort());
    children.push(refused);
    assert.equal(await refused.exited, 2, refused.lines.join("\n"));
    assert.ok(
      refused.lines.some((l) =>
        /^error: listening on 0\.0\.0\.0, which other machines can reach, without server\.token: anyone who can connect could read every frame/
          .test(l)
      ),
      refused.lines.join("\n"),
    );

    // public_reads = true, no token: it starts, warning that everything can be read and changed.
    await Deno.writeTextFile(
      config,
      configText('[server]\npublic_reads = true\nallowed_hosts = ["frames.lab.example"]\n'),
    );
    let port = freePort();
    const open = serve(port);
    children.push(open);
    await open.waitFor(/serving http:\/\/0\.0\.0\.0:\d+\//, 20_000);
    assert.ok(
      open.lines.some((l) =>
        /WARN .*listening on 0\.0\.0\.0, .*public_reads = true and without server\.token: anyone who can connect can read every frame/
          .test(l)
      ),
      open.lines.join("\n"),
    );
    const robots = await (await fetch(`http://127.0.0.1:${port}/api/robots`)).json();
    assert.equal(robots.robots.length, 2);
    const image = await fetch(`http://127.0.0.1:${port}/api/frames/${enc(f.rows[0].key)}/image`);
    assertSameBytes(new Uint8Array(await image.arrayBuffer()), f.jpegs.get(f.rows[0].key));
    const archived = await fetch(`http://127.0.0.1:${port}/api/frames/${enc(f.archived.key)}/image`);
    assertSameBytes(new Uint8Array(await archived.arrayBuffer()), f.jpegs.get(f.archived.key));
    // The configured name is answered, any other is refused (DNS rebinding).
    assert.equal((await rawGet(port, "/api/robots", `frames.lab.example:${port}`)).status, 200);
    const rebound = await rawGet(port, "/api/robots", `attacker.example:${port}`);
    assert.equal(rebound.status, 403);
    assert.match(rebound.text, /does not answer to the host name \\"attacker\.example:\d+\\"/);
    assert.equal(await open.stop(), 0);

    // A token: reads need it too.
    await Deno.writeTextFile(config, configText(""));
    port = freePort();
    const locked = serve(port, "s3cret");
    children.push(locked);
    await locked.waitFor(
      /serving http:\/\/0\.0\.0\.0:\d+\/ .*reads need the token, writes need the token/,
      20_000,
    );
    assert.ok(!locked.lines.some((l) => /WARN/.test(l)), locked.lines.join("\n"));
    const anonymous = await fetch(`http://127.0.0.1:${port}/api/robots`);
    assert.equal(anonymous.status, 401);
    assert.match((await anonymous.json()).error, /reads need Authorization: Bearer <server\.token> too/);
    const authorized = await fetch(`http://127.0.0.1:${port}/api/robots`, {
      headers: { authorization: "Bearer s3cret" },
    });
    assert.equal(authorized.status, 200);
    await authorized.body?.cancel();
    assert.equal(await locked.stop(), 0);
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await Deno.remove(config);
    await f.close();
  }
});

/** The app over the fixture, with both stores reached through a TCP proxy of the test (which can go down). */
async function behindProxy(f: UiFixture, options: Partial<AppDeps> = {}) {
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
  const app = createApp({
    ...f,
    local,
    archive,
    archivePrefix: ARCHIVE_PREFIX,
    webDir: null,
    log: quiet,
    ...options,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const port = (server.addr as Deno.NetAddr).port;
  return {
    app,
    proxy,
    port,
    base: `http://127.0.0.1:${port}`,
    async close() {
      await server.shutdown();
      local.close();
      archive.close();
      await proxy.close();
    },
  };
}

/** Waits (generously) until the export's status leaves "running". */
async function exportEnded(base: string, id: string) {
  for (let i = 0;; i++) {
    const status = await (await fetch(`${base}/api/exports/${id}`)).json();
    if (status.state !== "running") return status;
    assert.ok(i < 1200, `export ${id} still running after 60 s: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("HTTP export during a store outage: 502 before the first byte, a cut stream later, MISSING.txt for gone objects", async () => {
  const f = await uiFixture();
  const reals = f.rows.filter((r) => r.robotId === REAL);
  await f.catalog.labels().addLabels({ keys: reals.map((r) => r.key) }, ["walk"]);
  const s = await behindProxy(f);
  try {
    // The store is down before the export starts: an error, not a tar that looks complete.
    s.proxy.down = true;
    const down = await fetch(`${s.base}/api/export?label=walk&export_id=outage-0001`);
    const body = await down.json();
    console.log(
      `  export while the store is down, as a client sees it: HTTP ${down.status} ${JSON.stringify(body)}`,
    );
    assert.equal(down.status, 502);
    assert.equal(down.headers.get("x-export-id"), "outage-0001");
    assert.match(
      body.error,
      new RegExp(
        `^the export failed before anything was sent: frame 1 of 40 \\(${
          reals[0].key
        }, tier local\\) could ` +
          `not be read after 3 attempts: http://127\\.0\\.0\\.1:${s.proxy.port} bucket ${f.local.bucket} ` +
          `unreachable or failing while reading`,
      ),
    );
    const failed = await exportEnded(s.base, "outage-0001");
    assert.deepEqual([failed.state, failed.total, failed.files], ["failed", 40, 0]);
    assert.match(failed.error, /could not be read after 3 attempts/);
    const curl = await new Deno.Command("curl", {
      args: ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--fail", `${s.base}/api/export?label=walk`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    console.log(`  curl --fail: exit ${curl.code}, HTTP ${new TextDecoder().decode(curl.stdout)}`);
    assert.equal(curl.code, 22);

    // The store goes away after the first bytes: the transfer breaks, and the status says it failed.
    s.proxy.down = false;
    s.proxy.delayMs = 100; // about 0.1 s per frame: the export is still running when the store goes
    const cut = await fetch(`${s.base}/api/export?label=walk&export_id=outage-0002`);
    assert.equal(cut.status, 200);
    const reader = cut.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    s.proxy.down = true;
    s.proxy.dropConnections();
    const rest = (async () => {
      for (;;) if ((await reader.read()).done) return "ended";
    })();
    await assert.rejects(rest, (error: Error) => {
      console.log(
        `  store gone mid-export, as a client sees it: HTTP 200, then ${error.name}: ${error.message}`,
      );
      return error instanceof TypeError;
    });
    const cutStatus = await exportEnded(s.base, "outage-0002");
    assert.equal(cutStatus.state, "failed");
    assert.ok(cutStatus.frames < 40, `${cutStatus.frames} frames`);
    assert.match(cutStatus.error, /^frame \d+ of 40 .* could not be read after 3 attempts/);

    // Objects gone from the store (the store answers, without them): a complete tar ending in MISSING.txt.
    s.proxy.down = false;
    s.proxy.delayMs = 0;
    await f.local.delete(reals[5].key);
    await f.local.delete(reals[9].key);
    const partial = await fetch(`${s.base}/api/export?label=walk&export_id=outage-0003`);
    assert.equal(partial.status, 200);
    assert.equal(partial.headers.get("x-frame-count"), "40");
    const bytes = new Uint8Array(await partial.arrayBuffer());
    const entries = untar(bytes);
    assert.equal(entries.at(-1)!.path, "MISSING.txt");
    const missing = new TextDecoder().decode(entries.at(-1)!.data);
    assert.match(missing, /^INCOMPLETE EXPORT: 2 of the 40 matching frames are not in this dataset\./);
    assert.ok(missing.includes(`${reals[5].key}\trobot ${REAL}\t`) && missing.includes(`${reals[9].key}\t`));
    assert.equal(entries.filter((e) => e.path.startsWith("walk/")).length, 1 + 38);
    const status = await exportEnded(s.base, "outage-0003");
    assert.deepEqual(
      [status.state, status.frames, status.files, status.missing, status.missing_keys],
      ["incomplete", 40, 38, 2, [reals[5].key, reals[9].key]],
    );
    const tarFile = await Deno.makeTempFile({ suffix: ".tar" });
    await Deno.writeFile(tarFile, bytes);
    const listed = await new Deno.Command("tar", { args: ["-tf", tarFile], stdout: "piped" }).output();
    assert.ok(listed.success);
    assert.equal(new TextDecoder().decode(listed.stdout).trim().split("\n").at(-1), "MISSING.txt");
    await Deno.remove(tarFile);

    // None of the matching frames is in any store: an error before the first byte.
    await f.catalog.labels().addLabels({ keys: [reals[5].key, reals[9].key] }, ["gone"]);
    const none = await fetch(`${s.base}/api/export?label=gone`);
    assert.equal(none.status, 502);
    assert.match((await none.json()).error, /none of the 2 matching frames is in any store/);
  } finally {
    await s.close();
    await f.close();
  }
});

Deno.test("HTTP search and export of the same filters give the same frames", async () => {
  const f = await uiFixture();
  const app = createApp({ ...f, archivePrefix: ARCHIVE_PREFIX, webDir: null, log: quiet });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const api = client(base);
  try {
    const reals = f.rows.filter((r) => r.robotId === REAL);
    const synths = f.rows.filter((r) => r.robotId === SYNTH);
    const labels = f.catalog.labels();
    await labels.addLabels({ keys: [...reals.slice(0, 21), ...synths.slice(0, 2)].map((r) => r.key) }, [
      "door",
    ]);
    await labels.addLabels({ keys: reals.slice(30, 35).map((r) => r.key) }, ["person"]);
    await labels.addLabels({ keys: [f.archived.key] }, ["person"]);
    for (
      const query of [
        "label=door&label=person&all_labels=true", // search says 0: so must the export
        "label=door&label=person",
        "label=door&tier=archive",
        "label=person&tier=archive",
        "label=person&tier=local",
        `label=door&robot=${SYNTH}`,
        `label=door&robot=${REAL}&from=2026-02-18T09:00Z&to=2026-02-18T10:00Z`,
        "label=door&label=person&all_labels=true&tier=local&tier=archive",
      ]
    ) {
      const search = await api("GET", `/api/frames?${query}&count=true&limit=1000&order=oldest`);
      assert.equal(search.status, 200, query);
      const exported = await api("GET", `/api/export?${query}`);
      assert.equal(exported.status, 200, query);
      assert.equal(exported.headers.get("x-frame-count"), String(search.body.total), query);
      const meta = untar(exported.bytes).find((e) => e.path === "metadata.jsonl")!;
      const keys = new TextDecoder().decode(meta.data).split("\n").filter(Boolean).map((l) =>
        JSON.parse(l).key
      );
      assert.deepEqual([...new Set(keys)], search.body.frames.map((x: { key: string }) => x.key), query);
    }
    // HEAD: the headers only; the export behind them is stopped, not left running.
    const head = await fetch(`${base}/api/export?label=door&export_id=head-0001`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("x-frame-count"), "23");
    const headStatus = await exportEnded(base, "head-0001");
    assert.equal(headStatus.state, "failed");
    assert.match(headStatus.error, /the client went away before the end/);
  } finally {
    await server.shutdown();
    await f.close();
  }
});

Deno.test("Host header: IP addresses, localhost and allowed names only; reads behind the token take the UI's cookie", async () => {
  assert.equal(hostAllowed(null, []), true, "no Host (HTTP/1.0): not a browser");
  for (
    const host of [
      "127.0.0.1:8080",
      "10.1.2.3",
      "[::1]:8080",
      "[fe80::1]",
      "localhost:80",
      "LOCALHOST",
      "localhost.",
    ]
  ) {
    assert.equal(hostAllowed(host, []), true, host);
  }
  for (const host of ["attacker.example:8080", "localhost.attacker.example", "127.0.0.1.nip.io", "frames"]) {
    assert.equal(hostAllowed(host, []), false, host);
  }
  const allowed = ["frames.lab.example", "*.corp.example"];
  assert.equal(hostAllowed("frames.lab.example:8080", allowed), true);
  assert.equal(hostAllowed("Frames.Lab.Example", allowed), true);
  assert.equal(hostAllowed("a.b.corp.example", allowed), true);
  assert.equal(hostAllowed("corp.example", allowed), false);
  assert.equal(hostAllowed("evilcorp.example", allowed), false);
  assert.equal(hostAllowed("anything.example", ["*"]), true);

  const f = await uiFixture();
  const app = createApp({
    ...f,
    archivePrefix: ARCHIVE_PREFIX,
    webDir: new URL("../../web", import.meta.url).pathname,
    log: quiet,
    token: "tok-1",
    readsNeedToken: true,
    allowedHosts: ["frames.lab.example"],
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const port = (server.addr as Deno.NetAddr).port;
  const api = client(`http://127.0.0.1:${port}`);
  const image = `/api/frames/${enc(f.rows[0].key)}/image`;
  try {
    // A page rebound to this server's address sends its own name: refused for every path, UI included.
    for (const path of ["/", "/api/robots", image, "/openapi.json"]) {
      const r = await rawGet(port, path, `attacker.example:${port}`, "Authorization: Bearer tok-1\r\n");
      assert.equal(r.status, 403, path);
      assert.match(r.text, /add the name to server\.allowed_hosts/);
      assert.ok(!r.text.includes("reachy"), path);
    }
    assert.equal((await rawGet(port, "/", `frames.lab.example:${port}`)).status, 200);
    assert.equal((await rawGet(port, "/", `localhost:${port}`)).status, 200);

    // Reads need the token: the UI's files do not (they hold no data), the API does.
    assert.equal((await api("GET", "/")).status, 200);
    for (const path of ["/api/robots", "/api/labels", image, "/api/export?label=x", "/openapi.json"]) {
      const r = await api("GET", path);
      assert.equal(r.status, 401, path);
    }
    assert.equal((await api("GET", "/api/robots", { auth: "tok-1" })).status, 200);
    assert.equal((await api("GET", "/api/robots", { auth: "nope" })).body.error, "the token is wrong");
    // Images and downloads carry the token in the UI's cookie (a browser sends those of every port of the host).
    const cookie = await api("GET", image, {
      headers: { cookie: `frame-bucket-token-1=another-servers; frame-bucket-token-${port}=tok-1` },
    });
    assert.equal(cookie.status, 200);
    assertSameBytes(cookie.bytes, f.jpegs.get(f.rows[0].key));
    assert.equal(
      (await api("GET", image, { headers: { cookie: `frame-bucket-token-${port}=wrong` } })).status,
      401,
    );
    // A cookie never authorizes a change (other sites' requests may carry cookies, never headers).
    const write = await api("POST", "/api/frames/labels", {
      json: { keys: [f.rows[0].key], add: ["x"] },
      headers: { cookie: `frame-bucket-token-${port}=tok-1` },
    });
    assert.equal(write.status, 401);
    assert.match(write.body.error, /this change needs Authorization: Bearer/);
    assert.throws(
      () => createApp({ ...f, archivePrefix: ARCHIVE_PREFIX, readsNeedToken: true }),
      /set server\.token/,
    );
  } finally {
    await server.shutdown();
    await f.close();
  }
});

Deno.test("labels over HTTP: names that tar and Windows dislike export intact; bidi refused; caps per request and in all", async () => {
  const f = await uiFixture();
  const app = createApp({
    ...f,
    archivePrefix: ARCHIVE_PREFIX,
    webDir: null,
    log: quiet,
    labelLimits: { maxPerRequest: 50, maxDistinct: 60 },
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const api = client(`http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`);
  const reals = f.rows.filter((r) => r.robotId === REAL);
  try {
    const HAN = "漢".repeat(64);
    const add = await api("POST", "/api/frames/labels", {
      json: { keys: reals.slice(0, 2).map((r) => r.key), add: [HAN, "a:b?", "CON"] },
    });
    assert.deepEqual(add.body, { added: 6, removed: 0 });
    const exported = await api("GET", `/api/export?label=${enc(HAN)}&label=${enc("a:b?")}&label=CON`);
    assert.equal(exported.status, 200);
    // The download's name: ASCII for old clients, the real one (RFC 5987) for the others.
    const disposition = exported.headers.get("content-disposition")!;
    const star = /filename\*=UTF-8''([^;]+)$/.exec(disposition)![1];
    assert.match(decodeURIComponent(star), new RegExp(`^frame-bucket-${"漢".repeat(40)}`));
    assert.match(disposition, /^attachment; filename="frame-bucket-_{40}/);
    const tarFile = await Deno.makeTempFile({ suffix: ".tar" });
    const into = await Deno.makeTempDir();
    try {
      await Deno.writeFile(tarFile, exported.bytes);
      const out = await new Deno.Command("tar", { args: ["-xf", tarFile, "-C", into], stderr: "piped" })
        .output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      for (const folder of [HAN, "a%3Ab%3F", "%43ON"]) {
        const names = [...Deno.readDirSync(`${into}/${folder}`)].map((e) => e.name);
        assert.equal(names.length, 2, folder);
      }
      const meta = (await Deno.readTextFile(`${into}/metadata.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.deepEqual([...new Set(meta.map((m) => m.label))].sort(), ["CON", "a:b?", HAN].sort());
    } finally {
      await Deno.remove(tarFile);
      await Deno.remove(into, { recursive: true });
    }

    const bidi = await api("POST", "/api/frames/labels", {
      json: { keys: [reals[0].key], add: ["gnp.\u202Eexe"] },
    });
    assert.equal(bidi.status, 400);
    assert.match(bidi.body.error, /add: label .* contains the invisible control character U\+202E/);

    // One request cannot create thousands of labels.
    const many = Array.from({ length: 10_000 }, (_, i) => `bulk-${i}`);
    const flood = await api("POST", "/api/frames/labels", { json: { keys: [reals[0].key], add: many } });
    assert.equal(flood.status, 400);
    assert.equal(
      flood.body.error,
      "add names 10000 labels; one request may name at most 50 (labels.max_per_request): send them in several " +
        "requests, or raise labels.max_per_request",
    );
    const clip = await api("POST", "/api/clips", {
      json: { robot: REAL, from: T0, to: T0 + 1, name: "c", labels: many.slice(0, 51) },
    });
    assert.equal(clip.status, 400);
    assert.match(clip.body.error, /^labels names 51 labels; one request may name at most 50/);
    // ... nor pass the cap on distinct labels (3 exist: 57 more fit, 58 do not).
    const fill = await api("POST", "/api/frames/labels", {
      json: { keys: [reals[1].key], add: many.slice(0, 50) },
    });
    assert.equal(fill.status, 200);
    const over = await api("POST", "/api/frames/labels", {
      json: { keys: [reals[1].key], add: many.slice(50, 58) },
    });
    assert.equal(over.status, 400);
    assert.match(
      over.body.error,
      /8 new label\(s\) \("bulk-50", "bulk-51", "bulk-52", \.\.\.\) would make 61 distinct labels, over labels\.max_distinct \(60\)/,
    );
    assert.equal((await api("GET", "/api/labels")).body.labels.length, 53, "nothing of the refused requests");
    const fits = await api("POST", "/api/frames/labels", {
      json: { keys: [reals[1].key], add: many.slice(50, 57) },
    });
    assert.equal(fits.status, 200);
  } finally {
    await server.shutdown();
    await f.close();
  }
});
