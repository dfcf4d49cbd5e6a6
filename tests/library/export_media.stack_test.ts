/**
 * MP4 and MCAP export against the real stack: the ten real reachy-001 frames at their real capture times in the
 * stack's S3 server (one only in the archive bucket), a SQLite catalog with boxes, two clips and a collection;
 * exported through the library (as the CLI does) and through the HTTP API, and read back by independent tools:
 * ffprobe for the videos (codec, size, frame count, every frame's time, duration), the `mcap` Python package with
 * its protobuf decoder for the logs (every message, its times, the image bytes, the boxes, the metadata).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Box, Clip, Collection, FrameRow } from "../../src/catalog/catalog.ts";
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { resolveConfig } from "../../src/config.ts";
import { loadStorage } from "../../src/filter/loader.ts";
import { openTiers } from "../support/stores.ts";
import { objectKey } from "../../src/key.ts";
import { createLogger } from "../../src/log.ts";
import { exportFrames, type ExportOptions, tierFetcher } from "../../src/library/export.ts";
import type { Mp4Sidecar } from "../../src/library/export_media.ts";
import { HOLD_MS } from "../../src/library/formats/mp4.ts";
import { parseTime } from "../../src/library/search.ts";
import { hashBytesOf, JpegHasher, SimilarFrames } from "../../src/library/similar.ts";
import { createApp } from "../../src/server/app.ts";
import { boxPixels } from "../../src/catalog/boxes.ts";
import { sampleFiles } from "../../dev/samples.ts";
import { type McapResult, probeVideo, readMcap } from "../support/mcap.ts";
import { ensureS3 } from "../support/stack.ts";
import { freePort } from "../../dev/processes.ts";

const ROBOT = "reachy-001";
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const quiet = createLogger({ level: "error", format: "text" });

/** Prints a reader's output for the record (the issue's closing note quotes it). */
function show(title: string, value: unknown): void {
  console.log(`--- ${title}\n${typeof value === "string" ? value : JSON.stringify(value, null, 1)}`);
}

/** The video time of each frame of a video made of `parts` (capture times in ms), as the module doc defines. */
function expectedTimes(parts: number[][]): { times: number[][]; endMs: number } {
  let offset = 0, last = -1;
  const times = parts.map((part) => {
    const t = part.map((ms) => {
      last = Math.max(offset + ms - part[0], last + 1);
      return last;
    });
    offset = last + HOLD_MS;
    return t;
  });
  return { times, endMs: offset };
}

Deno.test("MP4 and MCAP of real frames: clip, collection, search; library and HTTP API", async (t) => {
  const endpoint = await ensureS3();
  const bucket = `export-media-${crypto.randomUUID().slice(0, 8)}`;
  const { local, archive } = await openTiers(endpoint, bucket);
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-export-media-" });
  const catalog = new SqliteCatalog(`${dir}/data/catalog.sqlite`);
  const stored: string[] = [];
  try {
    // The ten real frames at their capture times (from their names); frame 3 only in the archive.
    const files = sampleFiles();
    const jpegs = files.map((f) => Deno.readFileSync(f));
    const rows: FrameRow[] = files.map((f, i) => {
      const [, stamp, seq] = /(\d{8}T\d{9}Z)_(\d+)\.jpg$/.exec(f)!;
      const ts = parseTime(stamp);
      return {
        key: objectKey("frames/", ROBOT, ts, Number(seq)),
        robotId: ROBOT,
        timestampMs: ts,
        seq: Number(seq),
        size: jpegs[i].length,
        etag: null,
        filter: "ahash",
        distance: null,
        hash: null,
        tier: i === 3 ? "archive" : "local",
        tierChangedMs: ts,
        storedMs: ts,
      };
    });
    for (const [i, row] of rows.entries()) {
      if (row.tier === "archive") {
        await archive.put(`archive/${row.key}`, jpegs[i]);
        stored.push(`archive:archive/${row.key}`);
      } else {
        await local.put(row.key, jpegs[i], { contentType: "image/jpeg" });
        stored.push(`local:${row.key}`);
      }
    }
    await catalog.upsertMany(rows);
    const labels = catalog.labels();
    const boxes: Box[] = await labels.addBoxes([
      {
        key: rows[1].key,
        label: "person",
        x: 100,
        y: 200,
        w: 300,
        h: 400,
        imageWidth: 1920,
        imageHeight: 1080,
      },
      {
        key: rows[2].key,
        label: "door",
        x: 0.25,
        y: 0.5,
        w: 0.25,
        h: 0.25,
        unit: "norm",
        imageWidth: 1920,
        imageHeight: 1080,
      },
      {
        key: rows[2].key,
        label: "person",
        x: 10,
        y: 20,
        w: 30,
        h: 40,
        imageWidth: 1920,
        imageHeight: 1080,
        source: "model:test",
        confidence: 0.75,
      },
    ]);
    const docking: Clip = await labels.createClip({
      robotId: ROBOT,
      fromMs: rows[2].timestampMs,
      toMs: rows[7].timestampMs,
      name: "docking",
      labels: ["docking"],
    });
    const approach: Clip = await labels.createClip({
      robotId: ROBOT,
      fromMs: rows[0].timestampMs,
      toMs: rows[1].timestampMs,
      name: "approach",
    });
    // Docking first: a collection plays in its own order, not by time.
    const collection: Collection = await labels.createCollection({
      name: "docking attempts, week 47",
      clipIds: [docking.id, approach.id],
    });
    const fetchFrame = tierFetcher({ local, archive, archivePrefix: "archive/" });
    const run = (out: string, o: Partial<ExportOptions>) =>
      exportFrames(catalog, out, { fetch: fetchFrame, ...o });
    const clipRows = rows.slice(2, 8);

    await t.step(
      "MP4 of a clip: every frame at its capture time; ffprobe agrees with the catalog",
      async () => {
        const progress: number[] = [];
        const out = `${dir}/docking.mp4`;
        const summary = await run(out, {
          format: "mp4",
          clip: docking.id,
          progress: (p) => progress.push(p.frames),
        });
        assert.equal(summary.frames, 6);
        assert.equal(summary.missing, 0);
        assert.equal(progress.at(-1), 6);
        assert.equal(summary.sidecar, `${dir}/docking.frames.json`);
        const probe = await probeVideo(out, "mp4-clip");
        show("ffprobe of the clip's MP4 (docking, 6 frames)", probe);
        const { times, endMs } = expectedTimes([clipRows.map((r) => r.timestampMs)]);
        assert.deepEqual(
          { codec: probe.codec, width: probe.width, height: probe.height, pix_fmt: probe.pix_fmt },
          { codec: "h264", width: 1920, height: 1080, pix_fmt: "yuv420p" },
        );
        assert.equal(probe.frames, clipRows.length, "one video frame per stored frame");
        assert.deepEqual(probe.pts, times[0].map((ms) => ms / 1000), "each frame at its capture time");
        assert.deepEqual(times[0], clipRows.map((r) => r.timestampMs - clipRows[0].timestampMs));
        assert.equal(probe.duration, endMs / 1000, "the last frame stays HOLD_MS");
        const sidecar: Mp4Sidecar = JSON.parse(await Deno.readTextFile(summary.sidecar!));
        show("sidecar (first two frames)", { ...sidecar, frames: sidecar.frames.slice(0, 2) });
        assert.deepEqual(
          sidecar.frames.map((f) => [f.key, f.captured_ms, f.video_ms, f.video_frame]),
          clipRows.map((r, i) => [r.key, r.timestampMs, times[0][i], i]),
        );
        assert.equal(sidecar.video, "docking.mp4");
        assert.equal(sidecar.duration_ms, endMs);
        assert.equal(sidecar.video_frames, 6);
        assert.deepEqual(sidecar.parts.map((p) => p.clip?.id), [docking.id]);
      },
    );

    await t.step(
      "MP4 of a collection at 5 fps: clip after clip, frames held; ffprobe counts the slots",
      async () => {
        const out = `${dir}/collection.mp4`;
        const summary = await run(out, { format: "mp4", collection: collection.id, fps: 5 });
        const parts = [rows.slice(2, 8), rows.slice(0, 2)];
        const { times, endMs } = expectedTimes(parts.map((p) => p.map((r) => r.timestampMs)));
        const slots = Math.ceil(endMs * 5 / 1000);
        const probe = await probeVideo(out, "mp4-collection-fps5");
        assert.equal(probe.frames, slots);
        assert.deepEqual(probe.pts, Array.from({ length: slots }, (_, k) => k / 5));
        assert.equal(probe.duration, slots / 5);
        const sidecar: Mp4Sidecar = JSON.parse(await Deno.readTextFile(summary.sidecar!));
        assert.equal(sidecar.fps, 5);
        assert.deepEqual(sidecar.parts.map((p) => p.clip?.name), ["docking", "approach"]);
        // Each frame first shows in the slot at or after its time, unless the next frame takes that slot.
        const flat = parts.flat(), at = times.flat();
        const want = flat.map((r, i) => {
          const slot = Math.ceil(at[i] * 5 / 1000);
          const next = i + 1 < flat.length ? Math.ceil(at[i + 1] * 5 / 1000) : Infinity;
          return [r.key, next === slot ? null : slot];
        });
        assert.deepEqual(sidecar.frames.map((f) => [f.key, f.video_frame]), want);
        assert.ok(
          want.some(([, s]) => s === null),
          "frames 145 ms apart share 200 ms slots: some are not shown",
        );
      },
    );

    const checkMcap = (m: McapResult, frames: FrameRow[], what: string) => {
      const camera = m.messages.filter((x) => x.topic === `/${ROBOT}/camera`);
      assert.equal(camera.length, frames.length, `${what}: one image per frame`);
      for (const [i, row] of frames.entries()) {
        const jpeg = jpegs[rows.indexOf(row)];
        const ns = row.timestampMs * 1e6;
        assert.deepEqual(
          [camera[i].log_time, camera[i].publish_time, camera[i].stamp_ns, camera[i].md5, camera[i].size],
          [ns, ns, ns, md5(jpeg), jpeg.length],
          `${what}: message ${i} is ${row.key}, byte for byte, at its capture time`,
        );
        assert.equal(camera[i].format, "jpeg");
        assert.equal(camera[i].frame_id, `${ROBOT}/camera`);
      }
      const notes = m.messages.filter((x) => x.topic === `/${ROBOT}/annotations`);
      assert.equal(notes.length, frames.length);
      for (const [i, row] of frames.entries()) {
        const mine = boxes.filter((b) => b.key === row.key);
        assert.equal(notes[i].log_time, row.timestampMs * 1e6);
        assert.equal(notes[i].boxes!.length, mine.length, `${what}: boxes of ${row.key}`);
        for (const [j, b] of mine.entries()) {
          const { x, y, w, h } = boxPixels(b);
          assert.deepEqual(notes[i].boxes![j].points, [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]);
          assert.equal(notes[i].boxes![j].type, 2);
        }
        assert.deepEqual(
          notes[i].texts,
          mine.map((b) =>
            `${b.label}${b.confidence === null ? "" : ` ${b.confidence.toFixed(2)}`}` +
            (b.accepted ? "" : " (proposed)")
          ),
        );
      }
      const records = m.messages.filter((x) => x.topic === `/${ROBOT}/frames`);
      assert.deepEqual(records.map((r) => r.json.key), frames.map((r) => r.key));
      assert.deepEqual(
        m.channels[`/${ROBOT}/camera`],
        {
          ...m.channels[`/${ROBOT}/camera`],
          schema: "foxglove.CompressedImage",
          schema_encoding: "protobuf",
          message_encoding: "protobuf",
        },
      );
      assert.equal(m.channels[`/${ROBOT}/annotations`].schema, "foxglove.ImageAnnotations");
      assert.equal(m.channels[`/${ROBOT}/frames`].message_encoding, "json");
      assert.equal(m.summary.message_count, 3 * frames.length);
      assert.ok(
        m.summary.chunk_count >= 1 && m.summary.chunk_indexes === m.summary.chunk_count,
        "chunked, indexed",
      );
      assert.equal(
        m.summary.chunks_with_message_index,
        m.summary.chunk_count,
        "every chunk has message indexes",
      );
      assert.equal(m.summary.message_start_time, frames[0].timestampMs * 1e6);
      assert.equal(m.summary.message_end_time, frames.at(-1)!.timestampMs * 1e6);
      assert.equal(m.header.library, "frame-bucket");
    };

    await t.step(
      "MCAP of a collection: images, boxes, records and clips, as the mcap package reads them",
      async () => {
        const out = `${dir}/collection.mcap`;
        const summary = await run(out, { format: "mcap", collection: collection.id });
        assert.equal(summary.frames, 8);
        assert.equal(summary.boxes, 3);
        const m = await readMcap(out, "mcap-collection");
        show("mcap package: summary, channels and metadata of the collection's MCAP", {
          header: m.header,
          summary: m.summary,
          channels: m.channels,
          metadata: m.metadata,
          first_messages: m.messages.slice(0, 3),
        });
        checkMcap(m, rows.slice(0, 8), "collection");
        const clips = m.metadata.filter((r) => r.name === "clip").map((r) => r.metadata);
        assert.deepEqual(clips.map((c) => c.name).sort(), ["approach", "docking"]);
        const d = clips.find((c) => c.name === "docking")!;
        assert.deepEqual(
          [d.id, d.robot, d.from_ns, d.to_ns, d.labels],
          [
            String(docking.id),
            ROBOT,
            String(BigInt(docking.fromMs) * 1_000_000n),
            String(BigInt(docking.toMs) * 1_000_000n),
            '["docking"]',
          ],
        );
        const c = m.metadata.find((r) => r.name === "collection")!.metadata;
        assert.deepEqual([c.name, c.clip_ids], [collection.name, JSON.stringify([docking.id, approach.id])]);
        const record = m.messages.find((x) => x.topic === `/${ROBOT}/frames` && x.json.key === rows[3].key)!;
        assert.deepEqual(record.json.clips.map((x: { name: string }) => x.name), ["docking"]);
        assert.deepEqual(record.json.labels, ["docking"]);
      },
    );

    await t.step(
      "the collection selects frames for the dataset formats too (COCO of the collection)",
      async () => {
        const summary = await run(`${dir}/coco`, { format: "coco", collection: collection.id });
        assert.equal(summary.frames, 8);
        const coco = JSON.parse(await Deno.readTextFile(`${dir}/coco/annotations/instances_default.json`));
        assert.deepEqual(
          coco.images.map((i: { file_name: string }) => i.file_name).sort(),
          rows.slice(0, 8).map((r) => r.key.replace(/^frames\//, "")).sort(),
        );
      },
    );

    await t.step("HTTP API: MP4 (streamed, fragmented), its sidecar, MCAP of a search", async () => {
      const config = resolveConfig("", { baseDir: Deno.cwd() });
      const hasher = await JpegHasher.fromConfig(config);
      const similar = await SimilarFrames.load(catalog, { hashBytes: hashBytesOf(config.filter) });
      const app = createApp({
        catalog,
        local,
        archive,
        archivePrefix: "archive/",
        hasher,
        similar,
        webDir: null,
        log: quiet,
      });
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
      const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
      try {
        const res = await fetch(`${base}/api/export?format=mp4&clip=${docking.id}&export_id=mp4-test-0001`);
        assert.equal(res.status, 200, await res.clone().text().catch(() => ""));
        assert.equal(res.headers.get("content-type"), "video/mp4");
        assert.match(res.headers.get("content-disposition")!, /clip-\d+-\d{8}T\d{6}Z\.mp4/);
        await Deno.writeFile(`${dir}/api.mp4`, new Uint8Array(await res.arrayBuffer()));
        const probe = await probeVideo(`${dir}/api.mp4`, "mp4-api-clip");
        const { times, endMs } = expectedTimes([clipRows.map((r) => r.timestampMs)]);
        assert.equal(probe.frames, 6);
        assert.deepEqual(probe.pts, times[0].map((ms) => ms / 1000));
        assert.equal(probe.duration, endMs / 1000);
        const status = await (await fetch(`${base}/api/exports/mp4-test-0001`)).json();
        assert.deepEqual([status.state, status.format, status.frames, status.missing], [
          "complete",
          "mp4",
          6,
          0,
        ]);

        const side = await fetch(`${base}/api/export?format=mp4&clip=${docking.id}&sidecar=true`);
        assert.equal(side.status, 200);
        const sidecar: Mp4Sidecar = await side.json();
        assert.deepEqual(
          sidecar.frames.map((f) => [f.key, f.video_ms]),
          clipRows.map((r, i) => [r.key, times[0][i]]),
        );

        const log = await fetch(`${base}/api/export?format=mcap&robot=${ROBOT}`);
        assert.equal(log.status, 200);
        assert.equal(log.headers.get("content-type"), "application/x-mcap");
        await Deno.writeFile(`${dir}/api.mcap`, new Uint8Array(await log.arrayBuffer()));
        checkMcap(await readMcap(`${dir}/api.mcap`, "mcap-api-search"), rows, "search");

        const refused = await fetch(`${base}/api/export?format=mp4&clip=${docking.id}&robot=${ROBOT}`);
        assert.equal(refused.status, 400);
        assert.match((await refused.json()).error, /leave out robot, from and to/);
        // As an unknown label in a search: a bad filter.
        const unknown = await fetch(`${base}/api/export?format=mcap&collection=999999`);
        assert.equal(unknown.status, 400);
        assert.match((await unknown.json()).error, /no collection 999999/);

        // A store that is down before the first frame: 502, nothing sent, and the export's status says failed.
        const down = await loadStorage("rustfs", { endpoint: `http://127.0.0.1:${freePort()}`, bucket });
        const downApp = createApp({
          catalog,
          local: down,
          archive,
          archivePrefix: "archive/",
          hasher,
          similar,
          webDir: null,
          log: quiet,
          exportRetryDelaysMs: [10, 10],
        });
        const downServer = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen: () => {} },
          downApp.handler,
        );
        try {
          const downBase = `http://127.0.0.1:${(downServer.addr as Deno.NetAddr).port}`;
          for (const format of ["mp4", "mcap"]) {
            const r = await fetch(
              `${downBase}/api/export?format=${format}&clip=${approach.id}&export_id=down-${format}-01`,
            );
            assert.equal(r.status, 502, format);
            assert.match((await r.json()).error, /the export failed before anything was sent: frame 1 of 2/);
            const st = await (await fetch(`${downBase}/api/exports/down-${format}-01`)).json();
            assert.equal(st.state, "failed", format);
          }
        } finally {
          await downServer.shutdown();
          down.close();
        }
      } finally {
        await server.shutdown();
        await hasher.close();
      }
    });

    await t.step(
      "MP4 of a search over two robots: robot after robot, each from its first frame",
      async () => {
        // reachy-002: three of the frames again, captured a minute earlier than reachy-001's.
        const other: FrameRow[] = rows.slice(0, 3).map((r, i) => ({
          ...r,
          key: objectKey("frames/", "reachy-002", r.timestampMs - 60_000, r.seq),
          robotId: "reachy-002",
          timestampMs: r.timestampMs - 60_000,
          tier: "local",
          size: jpegs[i].length,
        }));
        for (const [i, row] of other.entries()) {
          await local.put(row.key, jpegs[i], { contentType: "image/jpeg" });
          stored.push(`local:${row.key}`);
        }
        await catalog.upsertMany(other);
        try {
          const summary = await run(`${dir}/search.mp4`, { format: "mp4" });
          const parts = [rows, other]; // by robot id, whatever the capture times
          const { times, endMs } = expectedTimes(parts.map((p) => p.map((r) => r.timestampMs)));
          const probe = await probeVideo(`${dir}/search.mp4`, "mp4-search-two-robots");
          assert.equal(probe.frames, 13);
          assert.deepEqual(probe.pts, times.flat().map((ms) => ms / 1000));
          assert.equal(probe.duration, endMs / 1000);
          const sidecar: Mp4Sidecar = JSON.parse(await Deno.readTextFile(summary.sidecar!));
          assert.deepEqual(sidecar.parts.map((p) => [p.robot, p.frames]), [[ROBOT, 10], ["reachy-002", 3]]);
          assert.deepEqual(sidecar.frames.map((f) => f.key), parts.flat().map((r) => r.key));
        } finally {
          for (const r of other) await catalog.remove(r.key);
        }
      },
    );

    await t.step(
      "CLI: deno task export --format mcap --collection NAME, --format mp4 --clip ID --fps 10",
      async () => {
        const config = `${dir}/config.toml`;
        await Deno.writeTextFile(
          config,
          `[catalog]\ndata_dir = "${dir}/data"\n[rustfs]\nendpoint = "${endpoint}"\nbucket = "${local.bucket}"\n` +
            `[aws_s3]\nbucket = "${archive.bucket}"\nendpoint = "${endpoint}"\nprefix = "archive/"\n`,
        );
        const cli = async (...args: string[]) => {
          const out = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              "--quiet",
              new URL("../../tools/export.ts", import.meta.url).pathname,
              ...args,
            ],
            env: { AWS_ACCESS_KEY_ID: "rustfsadmin", AWS_SECRET_ACCESS_KEY: "rustfsadmin", NO_COLOR: "1" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
          return { code: out.code, text };
        };
        const mcap = await cli(
          "--format",
          "mcap",
          "--collection",
          collection.name,
          "--out",
          `${dir}/cli.mcap`,
          "-c",
          config,
        );
        assert.equal(mcap.code, 0, mcap.text);
        assert.match(mcap.text, /exported 8 frames with 3 boxes as mcap to .*cli\.mcap/);
        checkMcap(
          await readMcap(`${dir}/cli.mcap`, "mcap-cli-collection"),
          rows.slice(0, 8),
          "CLI collection",
        );
        const mp4 = await cli(
          "--format",
          "mp4",
          "--clip",
          String(docking.id),
          "--fps",
          "10",
          "--out",
          `${dir}/cli.mp4`,
          "-c",
          config,
        );
        assert.equal(mp4.code, 0, mp4.text);
        const { endMs } = expectedTimes([clipRows.map((r) => r.timestampMs)]);
        const slots = Math.ceil(endMs * 10 / 1000);
        assert.match(
          mp4.text,
          new RegExp(`exported 6 frames as a ${(slots / 10).toFixed(1)} s video of ${slots} frames`),
        );
        const probe = await probeVideo(`${dir}/cli.mp4`, "mp4-cli-fps10");
        assert.deepEqual([probe.frames, probe.duration], [slots, slots / 10]);
        assert.deepEqual(probe.pts, Array.from({ length: slots }, (_, k) => k / 10));
        const bad = await cli(
          "--format",
          "mp4",
          "--clip",
          String(docking.id),
          "--robot",
          ROBOT,
          "--out",
          `${dir}/x.mp4`,
          "-c",
          config,
        );
        assert.equal(bad.code, 2, bad.text);
        assert.match(bad.text, /leave out robot, from and to/);
        const tar = await cli(
          "--format",
          "mp4",
          "--clip",
          String(docking.id),
          "--out",
          `${dir}/x.tar`,
          "-c",
          config,
        );
        assert.equal(tar.code, 2, tar.text);
        assert.match(tar.text, /name it NAME\.mp4/);
      },
    );

    await t.step(
      "a frame no store holds: left out of the MP4 (listed in the sidecar) and of the MCAP",
      async () => {
        await local.delete(rows[5].key);
        const summary = await run(`${dir}/missing.mp4`, { format: "mp4", clip: docking.id });
        assert.deepEqual([summary.frames, summary.missing, summary.missingKeys], [6, 1, [rows[5].key]]);
        const probe = await probeVideo(`${dir}/missing.mp4`, "mp4-missing");
        assert.equal(probe.frames, 5);
        const sidecar: Mp4Sidecar = JSON.parse(await Deno.readTextFile(summary.sidecar!));
        assert.deepEqual(sidecar.frames.find((f) => f.key === rows[5].key), {
          key: rows[5].key,
          robot: ROBOT,
          seq: rows[5].seq,
          captured: new Date(rows[5].timestampMs).toISOString(),
          captured_ms: rows[5].timestampMs,
          part: 0,
          video_ms: null,
          video_frame: null,
          missing: true,
        });
        const mcap = await run(`${dir}/missing.mcap`, { format: "mcap", clip: docking.id });
        assert.equal(mcap.missing, 1);
        const m = await readMcap(`${dir}/missing.mcap`, "mcap-missing");
        assert.equal(m.messages.filter((x) => x.topic === `/${ROBOT}/camera`).length, 5);
        const rec = m.messages.find((x) => x.topic === `/${ROBOT}/frames` && x.json.key === rows[5].key)!;
        assert.equal(rec.json.missing, true);
      },
    );
  } finally {
    for (const s of stored) {
      const [tier, key] = [s.slice(0, s.indexOf(":")), s.slice(s.indexOf(":") + 1)];
      await (tier === "archive" ? archive : local).delete(key).catch(() => {});
    }
    local.close();
    archive.close();
    await catalog.close();
    await Deno.remove(dir, { recursive: true });
  }
});
