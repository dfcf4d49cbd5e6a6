import assert from "node:assert/strict";
import { type FilterSettings, resolveConfig } from "../../src/config.ts";
import { API_VERSION } from "../../src/plugin.ts";
import { loadFilter, loadStorage } from "../../src/filter/loader.ts";
import { greyJpeg, readSamples } from "../support/images.ts";

const base = resolveConfig("").filter;
const settings = (primary: string, options: Record<string, unknown> = {}): FilterSettings => ({
  ...base,
  primary,
  options,
});

async function tempModule(source: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "plugin-" });
  const path = `${dir}/plugin.ts`;
  const pluginTs = new URL("../../src/plugin.ts", import.meta.url).pathname;
  await Deno.writeTextFile(path, source.replaceAll("PLUGIN_TS", pluginTs));
  return path;
}

Deno.test("built-in filters load by name", async (t) => {
  for (const [name, expected] of [["phash", "ahash"], ["ahash", "ahash"], ["histogram", "histogram"]]) {
    await t.step(name, async () => assert.equal((await loadFilter(settings(name), ".")).name, expected));
  }
  await t.step(
    "names are case-insensitive",
    async () => assert.equal((await loadFilter(settings("PHash"), ".")).name, "ahash"),
  );
});

Deno.test("an unknown filter name lists the available ones", async () => {
  await assert.rejects(() => loadFilter(settings("dhash"), "."), {
    name: "RangeError",
    message: /unknown filter "dhash" in filter\.primary: use one of phash, ahash, histogram/,
  });
});

Deno.test("the example user plugin loads from a path and filters frames", async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const filter = await loadFilter(settings("./examples/filters/brightness.ts", { min_change: 12 }), root);
  assert.equal(filter.name, "brightness");
  const [a, b] = readSamples();
  const sa = await filter.signature(a), sb = await filter.signature(b);
  assert.equal(filter.accepts(filter.distance(sa, sb)), false, "a still scene is the same brightness");
  const bright = await filter.signature(greyJpeg(320, 240, () => 250));
  assert.equal(filter.accepts(filter.distance(sa, bright)), true, "floodlight is a new scene");
  await assert.rejects(
    () => loadFilter(settings("./examples/filters/brightness.ts", { min_change: "a lot" }), root),
    { message: /min_change "a lot" must be a number/ },
  );
});

Deno.test("a broken plugin is refused with the problem named", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["no default export", "export const x = 1;", /must default-export a factory function/],
    ["factory returns nothing", "export default () => undefined;", /returned undefined, not a plugin object/],
    [
      "no name",
      `export default () => ({ apiVersion: ${API_VERSION} });`,
      /"name" must be a non-empty string/,
    ],
    [
      "wrong apiVersion",
      `export default () => ({ name: "x", apiVersion: 99, signature() {}, distance() {}, accepts() {} });`,
      /declares apiVersion 99, but this frame-bucket runs plugin API 1/,
    ],
    [
      "missing methods",
      `export default () => ({ name: "x", apiVersion: ${API_VERSION}, signature() {} });`,
      /lacks method\(s\) distance, accepts/,
    ],
    [
      "type error against src/plugin.ts",
      `import type { FilterPlugin } from "PLUGIN_TS";
       const p: FilterPlugin = { name: "x", apiVersion: 1, signature: () => ({ value: 1 }), distance: () => "far", accepts: () => true };
       export default () => p;`,
      /does not type-check against src\/plugin\.ts[\s\S]*string/,
    ],
    ["module that throws on import", "throw new Error('boom');", /cannot load filter plugin .*boom/],
  ];
  for (const [name, source, message] of cases) {
    await t.step(name, async () => {
      const path = await tempModule(source);
      await assert.rejects(() => loadFilter(settings(path), "/"), { message });
      await Deno.remove(path.replace(/\/plugin\.ts$/, ""), { recursive: true });
    });
  }
});

Deno.test("storage plugins validate their options before connecting", async (t) => {
  await t.step("bad endpoint", async () => {
    await assert.rejects(() => loadStorage("rustfs", { endpoint: "localhost:9000" }), {
      message: /must be an http:\/\/ or https:\/\/ URL|is not a URL/,
    });
  });
  await t.step("bad bucket name", async () => {
    await assert.rejects(() => loadStorage("rustfs", { bucket: "Camera_Frames" }), {
      message: /not a valid S3 bucket name/,
    });
  });
  await t.step("archive with half the credentials", async () => {
    await assert.rejects(() => loadStorage("s3_archive", { accessKey: "a" }), {
      message: /both accessKey and secretKey/,
    });
  });
  await t.step("unknown storage plugin", async () => {
    await assert.rejects(() => loadStorage("ftp", {}), {
      message: /unknown storage plugin "ftp": use one of rustfs, s3_archive/,
    });
  });
});
