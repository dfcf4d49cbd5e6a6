/**
 * A catalog and real S3 buckets with frames in them, for the HTTP API and browser tests: two robots of real and
 * generated JPEGs (one frame archived: only in the archive bucket), hashed by the consumer's own filter, plus
 * optionally a robot with many catalog rows and no objects (for paging at scale).
 *
 * `deno run -A tests/support/ui_fixture.ts [--bulk N] [--port P]` serves it for a look at the web UI (the stack's
 * S3 server must be up: `deno task stack up s3`).
 */
import type { Catalog, FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { type Config, resolveConfig } from "../../src/config.ts";
import { objectKey } from "../../src/key.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { createApp } from "../../src/server/app.ts";
import { hashBytesOf, JpegHasher, SimilarFrames } from "../../src/library/similar.ts";
import { greyJpeg, readSamples } from "./images.ts";
import { ensureS3 } from "./stack.ts";
import { mulberry32 } from "../../dev/random.ts";
import { T0 } from "./rows.ts";

export const REAL = "reachy-001";
export const SYNTH = "bracket-002";
export const BULK = "bulk-100k";
export const ARCHIVE_PREFIX = "archive/";

export interface UiFixture {
  dir: string;
  config: Config;
  catalog: Catalog;
  local: StoragePlugin;
  archive: StoragePlugin;
  hasher: JpegHasher;
  similar: SimilarFrames;
  /** Rows with objects, oldest first. */
  rows: FrameRow[];
  jpegs: Map<string, Uint8Array>;
  /** The archived frame's row. */
  archived: FrameRow;
  close(): Promise<void>;
}

export async function uiFixture(options: { bulk?: number } = {}): Promise<UiFixture> {
  const endpoint = await ensureS3();
  const id = crypto.randomUUID().slice(0, 8);
  const local = await loadStorage("rustfs", { endpoint, bucket: `ui-${id}` });
  const archive = await loadStorage("s3_archive", {
    endpoint,
    bucket: `ui-${id}-archive`,
    accessKey: "rustfsadmin",
    secretKey: "rustfsadmin",
    createBucket: true,
  });
  await Promise.all([local.open(), archive.open()]);
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-ui-" });
  const config = resolveConfig("", { baseDir: Deno.cwd() });
  const catalog = new SqliteCatalog(`${dir}/catalog.sqlite`);
  const hasher = await JpegHasher.fromConfig(config);

  // reachy-001: the ten real frames, each stored four times, 6 minutes apart over four hours.
  const samples = readSamples();
  const inputs: { robot: string; ts: number; jpeg: Uint8Array }[] = [];
  for (let i = 0; i < 40; i++) {
    inputs.push({ robot: REAL, ts: T0 + i * 360_000 + i, jpeg: samples[i % samples.length] });
  }
  // bracket-002: generated scenes (stripes, gradients, blobs), 5 minutes apart from an hour later.
  for (let i = 0; i < 12; i++) {
    const jpeg = greyJpeg(320, 240, (x, y) => {
      switch (i % 4) {
        case 0:
          return ((Math.floor(x / (8 + i * 2)) + Math.floor(y / 24)) % 2) * 200 + 20;
        case 1:
          return (x * (i + 1) * 0.8 + y * 0.3) % 256;
        case 2:
          return 255 - Math.hypot(x - 60 - i * 15, y - 120) * 2;
        default:
          return 128 + 100 * Math.sin((x + i * 10) / 20) * Math.cos(y / 30);
      }
    });
    inputs.push({ robot: SYNTH, ts: T0 + 3_600_000 + i * 300_000, jpeg });
  }
  const rows: FrameRow[] = [];
  const jpegs = new Map<string, Uint8Array>();
  const archivedIndex = 3;
  await Promise.all(inputs.map(async (input, i) => {
    const key = objectKey("frames/", input.robot, input.ts, i);
    const tier = i === archivedIndex ? "archive" : "local";
    const { etag } = tier === "archive"
      ? await archive.put(ARCHIVE_PREFIX + key, input.jpeg)
      : await local.put(key, input.jpeg, { contentType: "image/jpeg" });
    rows[i] = {
      key,
      robotId: input.robot,
      timestampMs: input.ts,
      seq: i,
      size: input.jpeg.length,
      etag: etag ?? null,
      filter: "ahash",
      distance: i === 0 ? null : 30,
      hash: await hasher.hash(input.jpeg, input.robot),
      tier,
      tierChangedMs: input.ts,
      storedMs: input.ts,
    };
    jpegs.set(key, input.jpeg);
  }));
  await catalog.upsertMany(rows);

  if (options.bulk) {
    const random = mulberry32(7);
    const bulk: FrameRow[] = [];
    for (let i = 0; i < options.bulk; i++) {
      const ts = T0 - 30 * 86_400_000 + i * 20_000 + (random() % 5000);
      bulk.push({
        key: objectKey("frames/", BULK, ts, i),
        robotId: BULK,
        timestampMs: ts,
        seq: i,
        size: 50_000,
        etag: null,
        filter: "ahash",
        distance: 30,
        hash: null,
        tier: "local",
        tierChangedMs: ts,
        storedMs: ts,
      });
    }
    await catalog.upsertMany(bulk);
  }
  const similar = await SimilarFrames.load(catalog, { hashBytes: hashBytesOf(config.filter) });
  return {
    dir,
    config,
    catalog,
    local,
    archive,
    hasher,
    similar,
    rows: rows.slice().sort((a, b) => a.timestampMs - b.timestampMs),
    jpegs,
    archived: rows[archivedIndex],
    async close() {
      await hasher.close();
      await catalog.close();
      local.close();
      archive.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

if (import.meta.main) {
  const arg = (name: string, fallback: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const f = await uiFixture({ bulk: arg("--bulk", 0) });
  const app = createApp({ ...f, archivePrefix: ARCHIVE_PREFIX });
  const server = Deno.serve({ hostname: "127.0.0.1", port: arg("--port", 8080) }, app.handler);
  console.log(`catalog ${f.catalog.where}; Ctrl-C to stop`);
  Deno.addSignalListener("SIGINT", async () => {
    await server.shutdown();
    await f.close();
    Deno.exit(0);
  });
}
