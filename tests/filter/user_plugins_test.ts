/**
 * The plugin seam: the contract by its stable name (`frame-bucket/plugin`), user plugins in folders outside the
 * project (type-checked, loaded, refused with the problem named), storage plugins chosen by config, and the
 * consumer's start-up description of its plugins.
 */
import assert from "node:assert/strict";
import { resolveConfig } from "../../src/config.ts";
import * as contract from "frame-bucket/plugin";
import ahash, { ahash as ahashBits } from "../../plugins/filters/ahash.ts";
import {
  archiveStore,
  BUILTIN_STORAGE_NAMES,
  describePlugins,
  filterSpec,
  loadFilter,
  loadStorage,
  localStore,
} from "../../src/filter/loader.ts";
import { FilterPool } from "../../src/filter/pool.ts";
import { createSceneFilter } from "../../src/filter/scene.ts";
import { SCHEMA } from "../../src/config.ts";
import { greyJpeg, readSamples } from "../support/images.ts";

const FIXTURES = new URL("../fixtures/plugins/", import.meta.url);
const RUSTFS = new URL("../../plugins/storage/rustfs.ts", import.meta.url).href;

/** A fresh folder outside the project (the system's temp folder) holding the given files. */
async function userFolder(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-user-" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  return dir;
}

/** A fixture's source, with its import of the built-in rustfs plugin pointed at the project's. */
function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, FIXTURES)).replace("../../../plugins/storage/rustfs.ts", RUSTFS);
}

Deno.test("frame-bucket/plugin is the contract: types, API_VERSION, the 1/8-scale decoder, resizeGrey, hamming", () => {
  assert.deepEqual(Object.keys(contract).sort(), [
    "API_VERSION",
    "decodeGreyEighth",
    "hamming",
    "resizeGrey",
  ]);
  assert.equal(contract.API_VERSION, 1);
  const jpeg = greyJpeg(64, 64, (x) => (x < 32 ? 10 : 240));
  const grey = contract.decodeGreyEighth(jpeg);
  assert.deepEqual([grey.width, grey.height], [8, 8]);
  assert.equal(contract.resizeGrey(grey, 2, 2, "area").length, 4);
  assert.equal(contract.hamming(new Uint8Array([0xff, 0x0f]), new Uint8Array([0x00, 0x0f])), 8);
  assert.throws(
    () => contract.hamming(new Uint8Array(2), new Uint8Array(8)),
    /16 and 64 bits cannot be compared/,
  );
  // The built-in aHash measures with the same hamming.
  const [a, b] = readSamples();
  const filter = ahash({});
  const sa = filter.signature(a) as contract.Signature<Uint8Array>;
  const sb = filter.signature(b) as contract.Signature<Uint8Array>;
  assert.equal(filter.distance(sa, sb), contract.hamming(ahashBits(a, 16, "area"), ahashBits(b, 16, "area")));
});

Deno.test("a user's filter in a folder outside the project imports frame-bucket/plugin, is type-checked and loads", async (t) => {
  // A deno.json of the user's own in that folder does not hide the alias.
  const dir = await userFolder({ "dhash.ts": fixture("dhash.ts"), "deno.json": "{}\n" });
  try {
    const filter = await loadFilter({ primary: "./dhash.ts", options: { threshold: 5 } }, dir);
    assert.equal(filter.name, "dhash");
    const [a, b] = readSamples();
    const sa = await filter.signature(a);
    assert.equal(sa.bits?.length, 8, "64 bits");
    assert.equal(filter.accepts(filter.distance(sa, await filter.signature(b))), false, "a still scene");
    const ramp = await filter.signature(greyJpeg(320, 240, (x) => 255 - (x * 255) / 320));
    assert.deepEqual(
      [...ramp.bits!],
      new Array(8).fill(0xff),
      "brightness falling to the right: all bits set",
    );
    assert.equal(filter.accepts(filter.distance(sa, ramp)), true);

    await t.step("and in the consumer's workers", async () => {
      const pool = new FilterPool(filterSpec({ primary: "./dhash.ts", options: {} }, dir), 1);
      try {
        assert.deepEqual((await pool.signature(a)).bits, sa.bits);
      } finally {
        pool.close();
      }
    });
    await t.step("its factory refuses a bad option value before any frame flows", async () => {
      await assert.rejects(() => loadFilter({ primary: "./dhash.ts", options: { threshold: 99 } }, dir), {
        message: /dhash: threshold 99 must be a whole number from 0 to 63/,
      });
    });
    await t.step("an option its defaults do not name is refused, with the known ones", async () => {
      await assert.rejects(() => loadFilter({ primary: "./dhash.ts", options: { treshold: 5 } }, dir), {
        name: "RangeError",
        message: new RegExp(
          `filter plugin ./dhash.ts \\(${dir}/dhash.ts\\): unknown option\\(s\\) treshold \\(known: threshold\\)`,
        ),
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a user's filter outside the project that breaks the contract is refused by the type check", async () => {
  const dir = await userFolder({
    "bad.ts": `import { API_VERSION, type FilterFactory } from "frame-bucket/plugin";
const bad: FilterFactory = () => ({
  name: "bad",
  apiVersion: API_VERSION,
  signature: () => ({ value: 1 }),
  distance: () => "far",
  accepts: () => true,
});
export default bad;
`,
  });
  try {
    await assert.rejects(() => loadFilter({ primary: "./bad.ts" }, dir), {
      name: "TypeError",
      message: new RegExp(
        `filter plugin ./bad.ts \\(${dir}/bad.ts\\) does not type-check against src/plugin.ts ` +
          `\\(frame-bucket/plugin\\):[\\s\\S]*string[\\s\\S]*number`,
      ),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storage plugins are chosen by config: rustfs.plugin and aws_s3.plugin, built-in or a user's module", async (t) => {
  await t.step("defaults are the built-ins", async () => {
    const config = resolveConfig("");
    assert.equal(config.rustfs.plugin, "rustfs");
    assert.equal(config.aws_s3.plugin, "s3_archive");
    assert.equal((await localStore(config)).name, "rustfs");
    assert.equal((await archiveStore(config)).name, "s3_archive");
    assert.deepEqual(SCHEMA.rustfs.plugin.plugins, BUILTIN_STORAGE_NAMES);
  });
  await t.step("a value that is neither a built-in nor a path is refused, naming it", () => {
    assert.throws(() => resolveConfig(`[rustfs]\nplugin = "ftp"\n`), {
      name: "RangeError",
      message:
        /rustfs\.plugin = "ftp" is neither a built-in plugin \(rustfs, s3_archive\) nor a path to a plugin module/,
    });
    assert.throws(() => resolveConfig(`[aws_s3]\nplugin = "glacier"\n`), {
      message: /aws_s3\.plugin = "glacier" is neither a built-in plugin/,
    });
    assert.throws(() => resolveConfig(`[aws_s3]\nplugin = 3\n`), {
      message: /aws_s3\.plugin must be a string/,
    });
  });
  const dir = await userFolder({
    "counting_store.ts": fixture("counting_store.ts"),
    "no_put.ts": `import { API_VERSION, type StorageFactory } from "frame-bucket/plugin";
const store = (() => ({ name: "no-put", apiVersion: API_VERSION, bucket: "b" })) as unknown as StorageFactory;
export default store;
`,
    "wrong_types.ts": `import { API_VERSION, type StoragePlugin } from "frame-bucket/plugin";
export default (): StoragePlugin => ({ name: "wrong", apiVersion: API_VERSION, bucket: 7 });
`,
  });
  try {
    await t.step("a user's module, relative to the config file, for either tier", async () => {
      const config = resolveConfig(
        `[rustfs]\nplugin = "./counting_store.ts"\nbucket = "user-local"\n` +
          `[aws_s3]\nplugin = "${dir}/counting_store.ts"\nendpoint = "http://127.0.0.1:9000"\n`,
        { baseDir: dir },
      );
      const local = await localStore(config);
      assert.equal(local.name, "counting");
      assert.equal(local.bucket, "user-local");
      const archive = await archiveStore(config);
      assert.equal(archive.name, "counting");
      assert.equal(archive.bucket, "reachy-mini-frames-archive");
      local.close();
      archive.close();
    });
    await t.step("a module that lacks methods is refused, naming the path and the methods", async () => {
      const config = resolveConfig(`[rustfs]\nplugin = "./no_put.ts"\n`, { baseDir: dir });
      await assert.rejects(() => localStore(config), {
        name: "TypeError",
        message: new RegExp(
          `storage plugin ./no_put.ts \\(${dir}/no_put.ts\\) \\(no-put\\) lacks method\\(s\\) open, put, get, ` +
            `head, delete, list, buckets, close`,
        ),
      });
    });
    await t.step("a module that does not type-check is refused with the compiler's message", async () => {
      await assert.rejects(() => loadStorage("./wrong_types.ts", {}, dir), {
        name: "TypeError",
        message: new RegExp(
          `storage plugin ./wrong_types.ts \\(${dir}/wrong_types.ts\\) does not type-check against ` +
            `src/plugin.ts \\(frame-bucket/plugin\\):[\\s\\S]*bucket`,
        ),
      });
    });
    await t.step("a missing module is refused, naming the path", async () => {
      const config = resolveConfig(`[aws_s3]\nplugin = "./nowhere.ts"\n`, { baseDir: dir });
      await assert.rejects(() => archiveStore(config), {
        message: new RegExp(`storage plugin ./nowhere.ts \\(${dir}/nowhere.ts\\)`),
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the consumer's start-up line names each plugin by its own name with its options after defaults", async () => {
  const dir = await userFolder({
    "dhash.ts": fixture("dhash.ts"),
    "counting_store.ts": fixture("counting_store.ts"),
  });
  try {
    const builtin = resolveConfig("");
    const filters = await createSceneFilter(builtin, (s) => loadFilter(s, builtin.baseDir));
    assert.equal(
      await describePlugins(builtin, filters, await localStore(builtin)),
      `filter ahash {threshold: 26, hashSize: 16, resize: "area"}; store rustfs {endpoint: ` +
        `"http://localhost:9000", accessKey: "rustfsadmin", secretKey: (hidden), bucket: "camera-frames", ` +
        `region: "us-east-1", timeoutMs: 10000}`,
    );
    const config = resolveConfig(
      `[filter]\nprimary = "./dhash.ts"\n[filter.robots."r2"]\nprimary = "histogram"\noptions = {}\n` +
        `[rustfs]\nplugin = "./counting_store.ts"\n`,
      { baseDir: dir },
    );
    const scene = await createSceneFilter(config, (s) => loadFilter(s, config.baseDir));
    const line = await describePlugins(config, scene, await localStore(config));
    assert.match(
      line,
      /^filter dhash \{threshold: 10\}; robot r2 filter histogram \{threshold: 0\.15, bins: 64, size: 64\}; /,
    );
    assert.match(line, /; store counting \{.*bucket: "camera-frames".*, label: "counting"\}$/);
    assert.ok(!line.includes("phash") && !line.includes("256 bits"), "no aHash assumptions");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
