/**
 * `deno task export [--format F] --out DIR|FILE.tar [--split train=0.8,val=0.2 ...] [search filters]`: the frames
 * of a search as a dataset (ImageFolder, COCO, YOLO, CVAT or Label Studio; see src/library/export.ts), or as an
 * MP4 video with its sidecar JSON or an MCAP log (`--format mp4|mcap --out FILE.mp4|FILE.mcap`; see
 * src/library/export_media.ts), fetched from whichever tier holds them, with progress on stderr and a one-line
 * summary on stdout. The filter is search's (`deno task search` with the same flags lists the same frames);
 * `--clip ID` or `--collection ID` take a clip's or a collection's frames instead of a robot and time span.
 *
 * Exit codes: 0 complete; 1 incomplete (frames no store holds, listed in MISSING.txt of the output) or failed (a
 * store kept failing: nothing is left behind); 2 bad input.
 */
import type { ReviewStatus, Tier } from "../src/catalog/catalog.ts";
import { REVIEW_STATUSES } from "../src/catalog/catalog.ts";
import { openExistingCatalog } from "../src/catalog/open.ts";
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { messageOf, NotFoundError, ServiceError } from "../src/errors.ts";
import {
  checkFormat,
  EXPORT_FORMATS,
  exportFrames,
  isMediaFormat,
  MISSING_FILE,
  tierFetcher,
} from "../src/library/export.ts";
import { checkRobotId } from "../src/key.ts";
import { openTiers } from "../src/store/tiers.ts";
import { countFrames, parseTimeRange, TIERS } from "../src/library/search.ts";
import { DEFAULT_BLOCK_MINUTES, DEFAULT_SPLIT_SEED, splitSpec } from "../src/library/split.ts";

export const USAGE = `usage: deno task export [--format ${EXPORT_FORMATS.join("|")}]
                        --out DIR|FILE.tar|FILE.mp4|FILE.mcap
                        [--split train=0.8,val=0.2[,test=0.1]] [--split-seed N] [--split-block-minutes M]
                        [--classes used|all] [--server URL] [--fps N]
                        [--clip ID | --collection ID | --robot R... --from T --to T]
                        [--label L]... [--all-labels] [--tier T]... [--status S]... [--config PATH]

Writes the frames of a search as a dataset:
  imagefolder    (default) <label>/<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq>.jpg, one folder per --label (a frame
                 with two of the labels is in both), and metadata.jsonl; needs at least one --label
  coco           images/<split>/<robot>/<day>/<file>.jpg, annotations/instances_<split>.json (split "default"
                 without --split): boxes in pixels, category ids from 1
  yolo           Ultralytics: images/<split>/<flat name>.jpg, labels/<split>/<flat name>.txt, data.yaml (split
                 "train" without --split); flat name = the image name with / as __
  cvat           CVAT for images 1.1: images/<robot>/<day>/<file>.jpg and annotations.xml (with --split: one
                 <split>.xml per split)
  label-studio   tasks.json (image URLs of the frame-bucket server, boxes as annotations, unaccepted model
                 boxes as predictions) and label_config.xml; no image is copied
  mp4            --out NAME.mp4: H.264 video by ffmpeg, each frame at its capture time (or --fps N: a fixed
                 rate, frames held until the next), and NAME.frames.json (each frame's key, capture time and
                 place in the video). A clip is one part, a collection's clips play in its order, a search
                 plays robot after robot; a part's last frame stays 1 s
  mcap           --out NAME.mcap: per robot, /R/camera (foxglove.CompressedImage, the stored JPEG), /R/annotations
                 (foxglove.ImageAnnotations of the boxes), /R/frames (JSON: key, labels, clips); clips as
                 metadata records; chunked and indexed, for Foxglove and ROS tooling
The box formats take any search (no --label: every matching frame; frames without boxes are negatives) and write
every accepted box of the exported frames; model boxes nobody accepted are left out (label-studio: predictions).
Whole-frame labels (own and clips') go in COCO image "labels", CVAT tags and Label Studio choices. Classes are
sorted by name (COCO ids from 1, YOLO ids from 0).
  --format F             the dataset format (default imagefolder)
  --out PATH             a new or empty directory, or a file ending in .tar (written as FILE.tar.partial first)
  --split S              split the frames: NAME=SHARE,... with names train, val, test; shares add up to 1.
                         A robot's frames within one time block, and a clip's frames, stay in one split
  --split-seed N         seed of the split: the same seed, frames and shares give the same split (default ${DEFAULT_SPLIT_SEED})
  --split-block-minutes M  length of the time block that stays together (default ${DEFAULT_BLOCK_MINUTES})
  --classes used|all     used (default): the classes of the exported boxes; all: every label of the catalog
                         (class ids then stay the same from one export to the next)
  --server URL           label-studio: the frame-bucket server as Label Studio reaches it (default
                         http://<server.hostname>:<server.port> of the config)
  --fps N                mp4: a fixed frame rate (frames held until the next); default: capture times
  --clip ID              only the frames of this clip (its robot and span)
  --collection ID|NAME   only the frames of this collection's clips, as one dataset (MP4: clip after clip)
  --label L              frames with this label, own, box class or from a clip (repeat for several: any of them)
  --all-labels           with several --label: only frames with all of them
  --robot R              only this robot (repeat for several)
  --from T, --to T       capture time span, inclusive, UTC (ISO 8601 or ms since the epoch)
  --tier T               only frames in this tier: local, archiving or archive (repeat for several)
  --status S             only frames with this review status: unlabelled, labelled, reviewed, rejected (repeat)
Frames in the archive tier are read from aws_s3.bucket at aws_s3.prefix + key. Frames that no store holds are
left out and listed in MISSING.txt (exit code 1). When a store fails, the export stops, removes what it wrote
and exits 1.`;

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

export async function exportMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    format: { type: "string", short: "f" },
    label: { type: "string", multiple: true },
    "all-labels": { type: "boolean" },
    robot: { type: "string", multiple: true },
    from: { type: "string" },
    to: { type: "string" },
    tier: { type: "string", multiple: true },
    status: { type: "string", multiple: true },
    out: { type: "string", short: "o" },
    split: { type: "string" },
    "split-seed": { type: "string" },
    "split-block-minutes": { type: "string" },
    classes: { type: "string" },
    server: { type: "string" },
    fps: { type: "string" },
    clip: { type: "string" },
    collection: { type: "string" },
  }, args);
  if (positionals.length) throw new RangeError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const format = checkFormat(values.format);
  if (format === "imagefolder" && !values.label?.length) {
    throw new RangeError("name at least one --label to export (or pick a box format: --format coco, ...)");
  }
  if (!values.out) {
    throw new RangeError(
      isMediaFormat(format) ? `--out FILE.${format} is required` : "--out DIR or --out FILE.tar is required",
    );
  }
  const robots = (values.robot ?? []).map(checkRobotId);
  const tiers = (values.tier ?? []) as Tier[];
  for (const t of tiers) {
    if (!TIERS.includes(t)) {
      throw new RangeError(`--tier ${JSON.stringify(t)} must be one of ${TIERS.join(", ")}`);
    }
  }
  const status = (values.status ?? []).flatMap((s) => s.split(",")).map((s) => s.trim()) as ReviewStatus[];
  for (const s of status) {
    if (!REVIEW_STATUSES.includes(s)) {
      throw new RangeError(`--status ${JSON.stringify(s)} must be one of ${REVIEW_STATUSES.join(", ")}`);
    }
  }
  const number = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n)) {
      throw new RangeError(`${flag} ${JSON.stringify(text)} is not a number`);
    }
    return n;
  };
  const wholeNumber = (flag: string, text: string) => {
    if (!/^\d+$/.test(text.trim())) {
      throw new RangeError(`${flag} ${JSON.stringify(text)} is not an id (a whole number)`);
    }
    return Number(text);
  };
  if ((values["split-seed"] || values["split-block-minutes"]) && !values.split) {
    throw new RangeError(
      "--split-seed and --split-block-minutes need --split (e.g. --split train=0.8,val=0.2)",
    );
  }
  const split = values.split
    ? splitSpec(values.split, {
      seed: number("--split-seed", values["split-seed"]),
      blockMinutes: number("--split-block-minutes", values["split-block-minutes"]),
    })
    : null;
  const classes = values.classes ?? "used";
  if (classes !== "used" && classes !== "all") {
    throw new RangeError(`--classes ${JSON.stringify(classes)} must be used or all`);
  }
  const span = parseTimeRange(values.from, values.to);
  const fps = number("--fps", values.fps) ?? null;
  const clip = values.clip === undefined ? undefined : wholeNumber("--clip", values.clip);
  const config = await loadConfig(values.config);
  const host = ["0.0.0.0", "::", ""].includes(config.server.hostname) ? "127.0.0.1" : config.server.hostname;
  const server = values.server ??
    `http://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
  const fix = "run the consumer or deno task reindex first";
  const filter = {
    labels: values.label ?? [],
    allLabels: values["all-labels"] ?? false,
    robots,
    ...span,
    tiers,
    status,
  };
  // The archive client is made only when archived frames are part of the export (it may need AWS credentials);
  // Label Studio reads no image at all.
  const counting = await openExistingCatalog(config, fix);
  let collection: number | undefined;
  if (values.collection !== undefined) {
    collection = /^\d+$/.test(values.collection)
      ? Number(values.collection)
      : (await counting.labels().collectionByName(values.collection))?.id;
    if (collection === undefined) {
      await counting.close();
      throw new NotFoundError(
        `no collection named ${JSON.stringify(values.collection)}: give its id or its exact name`,
      );
    }
  }
  const archived = format !== "label-studio" && (tiers.length === 0 || tiers.includes("archive")) &&
    (await countFrames(counting, { ...filter, tiers: ["archive"] }).finally(() => counting.close())) > 0;
  if (format === "label-studio") await counting.close();
  const stores = await openTiers(config, { archive: archived });
  const catalog = stores.catalog;
  try {
    const summary = await exportFrames(catalog, values.out, {
      ...filter,
      format,
      split,
      classes,
      server,
      fps,
      clip,
      collection,
      fetch: tierFetcher(stores),
      progress: (p) =>
        console.error(
          `  ${p.frames}/${p.total} frames, ${p.files} files, ${mb(p.bytes)} MB, ${p.missing} missing` +
            `${format === "imagefolder" ? "" : `, ${p.boxes} boxes`} ` +
            `(${(p.frames / Math.max(0.001, p.elapsedMs / 1000)).toFixed(0)} frames/s)`,
        ),
      onMissing: (row) => console.error(`  missing: ${row.key} (tier ${row.tier}) is in no store; left out`),
    });
    const written = summary.frames - summary.missing;
    if (format === "mp4") {
      console.log(
        `exported ${written} frames as a ${(summary.durationMs! / 1000).toFixed(1)} s video of ` +
          `${summary.videoFrames} frames to ${summary.out} (frames listed in ${summary.sidecar})`,
      );
    } else if (format === "mcap") {
      console.log(`exported ${written} frames with ${summary.boxes} boxes as mcap to ${summary.out}`);
    } else if (format === "imagefolder") {
      const per = Object.entries(summary.perLabel).map(([l, n]) => `${l} ${n}`).join(", ");
      console.log(`exported ${summary.files} files (${per}) from ${written} frames to ${summary.out}`);
    } else {
      const splits = Object.entries(summary.perSplit).map(([s, n]) => `${s} ${n}`).join(", ");
      console.log(
        `exported ${written} frames (${splits || "none"}) with ${summary.boxes} boxes of ` +
          `${summary.classes.length} classes as ${format} to ${summary.out}`,
      );
    }
    if (summary.unaccepted) {
      console.error(
        `note: ${summary.unaccepted} model boxes nobody accepted were left out; accept them (frame page, or ` +
          `POST /api/boxes/accept) or export only reviewed frames (--status reviewed)`,
      );
    }
    if (summary.missing) {
      const list = format === "mp4"
        ? `${summary.sidecar} (missing: true)`
        : format === "mcap"
        ? `the frame-bucket.export metadata and /ROBOT/frames (missing: true)`
        : summary.as === "tar"
        ? `${MISSING_FILE} in the tar`
        : `${summary.out}/${MISSING_FILE}`;
      console.error(
        `INCOMPLETE: ${summary.missing} of ${summary.frames} frames are in no store and were left out; ` +
          `they are listed in ${list}`,
      );
    }
    return summary.missing ? 1 : 0;
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    throw new ServiceError(
      error.service,
      `export to ${values.out} failed, and nothing of it was kept: ${messageOf(error)}`,
      { retriable: error.retriable, cause: error },
    );
  } finally {
    await stores.close();
  }
}

if (import.meta.main) runMain(() => exportMain(Deno.args));
