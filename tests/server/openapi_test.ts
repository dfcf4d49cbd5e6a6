/**
 * /openapi.json is generated from the route declarations (src/server/route.ts), so nothing keeps it equal to the
 * routes by hand. This test checks that what the document says is what the server does, with no network and no
 * stack (a catalog in memory, stores in memory): the document and the router name the same operations; every
 * documented constraint of a query parameter (enum, minimum/maximum, pattern, boolean) and of a JSON body
 * (required, additionalProperties, the type of each property) is refused with a 400 naming the parameter or
 * property; and every JSON answer of the routes matches its documented schema, with no property it does not list.
 */
import assert from "node:assert/strict";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { createLogger } from "../../src/log.ts";
import { SimilarFrames } from "../../src/library/similar.ts";
import { createApp } from "../../src/server/app.ts";
import { MemoryStore } from "../support/fakes.ts";
import { greyJpeg } from "../support/images.ts";
import { frameRow, T0 } from "../support/rows.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** Everything wrong with `value` against `schema` (JSON Schema as the document uses it); [] when it conforms. */
function problems(doc: Json, schema: Json, value: unknown, at: string): string[] {
  if (schema.$ref) return problems(doc, resolve(doc, schema.$ref), value, at);
  if (schema.allOf) {
    // One object made of all the parts: each part's properties are checked, and only theirs are allowed.
    const parts = schema.allOf.map((s: Json) => s.$ref ? resolve(doc, s.$ref) : s);
    return problems(
      doc,
      {
        type: "object",
        properties: Object.assign({}, ...parts.map((p: Json) => p.properties)),
        required: parts.flatMap((p: Json) => p.required ?? []),
      },
      value,
      at,
    );
  }
  if (schema.anyOf) {
    const each = schema.anyOf.map((s: Json) => problems(doc, s, value, at));
    return each.some((p: string[]) => p.length === 0) ? [] : each.flat();
  }
  const types: string[] = schema.type === undefined ? [] : [schema.type].flat();
  const kind = value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : Number.isInteger(value)
    ? "integer"
    : typeof value;
  if (types.length && !types.includes(kind) && !(kind === "integer" && types.includes("number"))) {
    return [`${at}: ${JSON.stringify(value)?.slice(0, 80)} is not ${types.join(" or ")}`];
  }
  if (schema.enum && !schema.enum.includes(value)) {
    return [`${at}: ${JSON.stringify(value)} is not in the enum`];
  }
  const out: string[] = [];
  if (kind === "array" && schema.items) {
    (value as unknown[]).forEach((v, i) => out.push(...problems(doc, schema.items, v, `${at}[${i}]`)));
  }
  if (kind === "object" && schema.properties) {
    const record = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (!(name in record)) out.push(`${at}.${name}: required, missing`);
    }
    for (const [name, v] of Object.entries(record)) {
      const property = schema.properties[name];
      if (!property) out.push(`${at}.${name}: not in the document`);
      else out.push(...problems(doc, property, v, `${at}.${name}`));
    }
  }
  return out;
}

function resolve(doc: Json, ref: string): Json {
  return ref.split("/").slice(1).reduce((node: Json, part: string) => node[part], doc);
}

/**
 * A value a body property's schema reads (not necessarily one the handler accepts), and one of the wrong type.
 * Nullable types are sampled by their other type; arrays and objects are filled with good values of their items
 * and required properties, so a body of good values gets past the reading of every other property.
 */
function sample(doc: Json, schema: Json): { good: unknown; bad: unknown } {
  if (schema.$ref) {
    return schema.$ref.endsWith("/Time") ? { good: T0, bad: true } : sample(doc, resolve(doc, schema.$ref));
  }
  if (schema.anyOf) return sample(doc, schema.anyOf.find((s: Json) => s.type !== "null"));
  const type = [schema.type].flat().find((t) => t !== "null");
  switch (type) {
    case "string":
      return { good: schema.enum?.find((v: unknown) => v !== null) ?? "robot-1", bad: 5 };
    case "integer":
    case "number":
      return { good: 1, bad: "one" };
    case "boolean":
      return { good: true, bad: "yes" };
    case "array":
      return { good: [schema.items ? sample(doc, schema.items).good : "robot-1"], bad: "robot-1" };
    case "object":
      return {
        good: Object.fromEntries(
          (schema.required ?? []).map((name: string) => [name, sample(doc, schema.properties[name]).good]),
        ),
        bad: "robot-1",
      };
    default:
      throw new Error(`no sample for ${JSON.stringify(schema)}`);
  }
}

async function setup() {
  const catalog = new SqliteCatalog(":memory:");
  const local = new MemoryStore(), archive = new MemoryStore();
  const hash = new Uint8Array(32).fill(0x5a);
  const rows = [
    frameRow("robot-1", T0, 0, { hash }),
    frameRow("robot-1", T0 + 60_000, 1, { hash }),
    frameRow("robot-2", T0 + 120_000, 2),
  ];
  for (const [i, row] of rows.entries()) {
    await local.put(row.key, greyJpeg(64, 48, (x, y) => (x * (i + 1) + y) % 256));
  }
  await catalog.upsertMany(rows);
  const similar = await SimilarFrames.load(catalog, { hashBytes: 32 });
  const app = createApp({
    catalog,
    local,
    archive,
    archivePrefix: "archive/",
    hasher: { hash: () => Promise.resolve(hash) },
    similar,
    webDir: null,
    log: createLogger({ level: "error", format: "text" }),
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.handler(
      new Request(`http://127.0.0.1${path}`, {
        method,
        ...(body === undefined ? {} : {
          headers: { "content-type": body instanceof Uint8Array ? "image/jpeg" : "application/json" },
          body: body instanceof Uint8Array ? body as Uint8Array<ArrayBuffer> : JSON.stringify(body),
        }),
      }),
    );
    const type = response.headers.get("content-type") ?? "";
    const json: Json = type.startsWith("application/json")
      ? await response.json()
      : await response.body?.cancel();
    return { status: response.status, json };
  };
  const doc: Json = (await call("GET", "/openapi.json")).json;
  return { app, catalog, rows, call, doc };
}

Deno.test("/openapi.json: the document says what the server validates and answers", async (t) => {
  const { app, catalog, rows, call, doc } = await setup();
  const key = encodeURIComponent(rows[0].key);
  /** A path with its parameters filled in with values that exist. */
  const concrete = (path: string, ids: Record<string, string> = {}) =>
    path.replace("{key}", key).replace("{robot}", "robot-1").replace("{name}", "door")
      .replace("{id}", ids.id ?? "1");
  const operations = Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap((
    [path, item],
  ) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
  try {
    await t.step("the document and the router name the same operations", () => {
      const documented = operations.map((o) => `${o.method} ${o.path}`).sort();
      assert.deepEqual(documented, app.router.routes.map((r) => `${r.method} ${r.path}`).sort());
      for (const ref of JSON.stringify(doc).match(/"#\/components\/[^"]+"/g) ?? []) {
        assert.ok(resolve(doc, JSON.parse(ref)), ref);
      }
    });

    await t.step(
      "each documented constraint of a query parameter is refused with a 400 naming it",
      async () => {
        let checked = 0;
        for (const { path, method, op } of operations) {
          for (const p of (op.parameters ?? []).filter((p: Json) => p.in === "query")) {
            const s = p.schema.items ?? p.schema;
            const wrong: string[] = [];
            if (s.enum) wrong.push("no-such-value");
            if (s.type === "integer") wrong.push("ten", String(s.maximum + 1), String(s.minimum - 1));
            if (s.type === "boolean") wrong.push("maybe");
            if (s.pattern) wrong.push("a/b");
            for (const value of wrong) {
              const r = await call(
                method.toUpperCase(),
                `${concrete(path)}?${p.name}=${encodeURIComponent(value)}`,
              );
              assert.equal(r.status, 400, `${method} ${path} ${p.name}=${value}: ${JSON.stringify(r.json)}`);
              assert.ok(
                r.json.error.startsWith(p.name),
                `${method} ${path} ${p.name}=${value}: ${r.json.error}`,
              );
              checked++;
            }
          }
        }
        assert.ok(checked >= 30, `${checked} constraints`);
      },
    );

    await t.step("each documented constraint of a JSON body is refused with a 400 naming it", async () => {
      let checked = 0;
      for (const { path, method, op } of operations) {
        const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
        if (!bodySchema) continue;
        const schema = bodySchema.$ref ? resolve(doc, bodySchema.$ref) : bodySchema;
        const base: Record<string, unknown> = {};
        for (const name of schema.required ?? []) base[name] = sample(doc, schema.properties[name]).good;
        const where = `${method} ${path}`;
        for (const name of schema.required ?? []) {
          const { [name]: _, ...without } = base;
          const r = await call(method.toUpperCase(), concrete(path), without);
          assert.equal(r.status, 400, `${where} without ${name}`);
          assert.ok(r.json.error.includes(name), `${where} without ${name}: ${r.json.error}`);
          checked++;
        }
        for (const [name, property] of Object.entries(schema.properties as Record<string, Json>)) {
          const r = await call(method.toUpperCase(), concrete(path), {
            ...base,
            [name]: sample(doc, property).bad,
          });
          assert.equal(r.status, 400, `${where} ${name} of the wrong type`);
          assert.ok(r.json.error.startsWith(name), `${where} ${name} of the wrong type: ${r.json.error}`);
          checked++;
        }
        if (schema.additionalProperties === false) {
          const r = await call(method.toUpperCase(), concrete(path), { ...base, colour: "red" });
          assert.equal(r.status, 400, `${where} with an unknown field`);
          assert.match(r.json.error, /unknown field\(s\) colour/);
          checked++;
        }
      }
      assert.ok(checked > 25, `${checked} constraints`);
      assert.deepEqual(await catalog.labels().list(), [], "no refused request changed anything");
    });

    await t.step(
      "every JSON answer matches its documented schema, with no property it does not list",
      async () => {
        const seen = new Set<string>();
        const check = async (method: string, path: string, body?: unknown) => {
          const r = await call(method, path, body);
          const template = operations.find((o) =>
            o.method === method.toLowerCase() &&
            new RegExp(`^${o.path.replace(/\{[^}]+\}/g, "[^/?]+")}(\\?|$)`).test(path)
          )!;
          const answer = template.op.responses[String(r.status)];
          assert.ok(answer && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
          const schema = answer.content["application/json"].schema;
          assert.deepEqual(problems(doc, schema, r.json, `${method} ${path}`), []);
          seen.add(`${template.method} ${template.path}`);
          return r.json;
        };
        await check("POST", "/api/frames/labels", {
          keys: [rows[0].key, rows[1].key],
          add: ["door", "person"],
        });
        await check("POST", "/api/frames/labels", { robot: "robot-1", from: T0, to: T0, remove: ["person"] });
        const clip = await check("POST", "/api/clips", {
          robot: "robot-1",
          from: T0,
          to: T0 + 60_000,
          name: "walk",
          labels: ["walking"],
        });
        await check("PATCH", `/api/clips/${clip.id}`, { add_labels: ["slow"], note: "n" });
        const collection = await check("POST", "/api/collections", { name: "week 47", clip_ids: [clip.id] });
        await check("PATCH", `/api/collections/${collection.id}`, { note: "n", add_clip_ids: [clip.id] });
        await check("GET", `/api/collections/${collection.id}`);
        await check("GET", "/api/collections?name=week%2047");
        await check("DELETE", `/api/collections/${collection.id}?author=test`);
        await check("GET", `/api/playback?clip=${clip.id}&count=true`);
        // Boxes (the frame's size read from its stored JPEG), review, the label set, undo, pre-labels.
        const boxes = (await check("POST", `/api/frames/${key}/boxes`, {
          boxes: [
            { label: "door", x: 1, y: 1, w: 10, h: 10 },
            {
              label: "person",
              x: 0.1,
              y: 0.1,
              w: 0.2,
              h: 0.2,
              unit: "norm",
              source: "model:m",
              confidence: 0.5,
            },
            { label: "door", x: 20, y: 20, w: 10, h: 10 },
          ],
        })).boxes;
        await check("PATCH", `/api/boxes/${boxes[0].id}`, { x: 2, y: 2, w: 5, h: 5, accepted: true });
        await check("POST", "/api/boxes/accept", { key: rows[0].key });
        await check("DELETE", `/api/boxes/${boxes[1].id}?author=test`);
        const deleted = (await check("GET", "/api/changes?order=newest&limit=1")).changes[0].id;
        await check("POST", `/api/changes/${deleted}/undo`, { author: "test" });
        await check("POST", "/api/boxes/delete", { ids: [boxes[2].id] });
        await check("POST", "/api/frames/review", { keys: [rows[1].key], status: "reviewed" });
        await check("GET", `/api/frames/${key}/next?want=unlabelled&order=oldest&status=unlabelled,labelled`);
        await check("POST", "/api/labels", { name: "door", color: "#1F77B4", hotkey: 3 });
        await check("POST", "/api/prelabels", {
          model: "m",
          format: "yolo",
          files: [{
            name: rows[2].key.slice("frames/".length).replace(/\.jpg$/, ".txt"),
            text: "0 .5 .5 .2 .2 .9",
          }],
          classes: ["door"],
        });
        await check("POST", "/api/import", {
          format: "yolo",
          files: [{
            name: `labels/${rows[2].key.slice("frames/".length).replace(/\.jpg$/, ".txt")}`,
            text: "0 .5 .5 .2 .2\n",
          }],
          classes: ["door"],
        });
        for (
          const path of [
            "/api/robots",
            "/api/robots/robot-1/timeline",
            "/api/frames?count=true&limit=1",
            "/api/frames?label=walking",
            "/api/frames?status=labelled&nolabel=false",
            `/api/frames/${key}`,
            `/api/frames/${key}/similar`,
            "/api/labels",
            "/api/clips?robot=robot-1",
            "/api/changes?order=newest",
            "/api/storage",
            "/openapi.json",
            "/healthz",
          ]
        ) await check("GET", path);
        await check("POST", "/api/similar", greyJpeg(64, 48, () => 128));
        const tar = await app.handler(
          new Request("http://127.0.0.1/api/export?label=door&export_id=export-0001"),
        );
        // Two frames labelled door, and the third has a pre-labelled door box (a box's class is a label).
        assert.equal(tar.headers.get("x-frame-count"), "3");
        await tar.arrayBuffer();
        await check("GET", "/api/exports/export-0001");
        await check("POST", "/api/labels/rename", { from: "person", to: "someone" });
        await check("DELETE", "/api/labels/door?author=test");
        await check("DELETE", `/api/clips/${clip.id}`);
        const json = operations.filter((o) =>
          o.op.responses[Object.keys(o.op.responses)[0]].content?.["application/json"]
        );
        assert.deepEqual([...seen].sort(), json.map((o) => `${o.method} ${o.path}`).sort());
      },
    );
  } finally {
    await catalog.close();
  }
});
