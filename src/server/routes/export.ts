/**
 * Export: the frames of a search, a clip or a collection as a streamed .tar dataset (ImageFolder, COCO, YOLO, CVAT
 * or Label Studio; see src/library/export.ts), an MP4 video (and its sidecar JSON) or an MCAP log
 * (src/library/export_media.ts), and how each export went (progress while it runs, the outcome after).
 */
import { BadInputError, messageOf, NotFoundError, ServiceError } from "../../errors.ts";
import { EXPORT_FORMATS, isMediaFormat, labelFolder, planExport } from "../../library/export.ts";
import { EXPORT_ID, openExportStream } from "../../library/export_stream.ts";
import { mp4SidecarFromCatalog, openMediaStream } from "../../library/export_media.ts";
import { DEFAULT_BLOCK_MINUTES, DEFAULT_SPLIT_SEED, splitSpec } from "../../library/split.ts";
import { errorReply, library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { file, ok, type Route, route } from "../route.ts";
import {
  anyObject,
  array,
  choice,
  flag,
  int,
  integer,
  list,
  literal,
  matching,
  nullable,
  object,
  segment,
  string,
  text,
} from "../schema.ts";
import { iso, STATUS_LIST } from "../shapes.ts";
import { SEARCH_FILTER, searchFilter } from "./frames.ts";

/**
 * `Content-Disposition` for a download: an ASCII `filename` for old clients and the real name as RFC 5987
 * `filename*` (UTF-8, percent-encoded), both made of the labels' safe folder names.
 */
export function attachment(name: string): string {
  const ascii = name.replace(/[^A-Za-z0-9._+-]/g, "_");
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

const EXPORT_STATUS = object({
  id: string(),
  state: literal(["running", "complete", "incomplete", "failed"] as const),
  format: literal(EXPORT_FORMATS, "The dataset format."),
  labels: array(string()),
  total: integer("Frames matching when it started."),
  frames: integer("Frames handled so far."),
  files: integer(),
  bytes: integer(),
  missing: integer("Frames no store holds (left out)."),
  missing_keys: array(string(), { description: "The first 20 missing frames' keys." }),
  boxes: integer("Boxes written so far."),
  splits: anyObject("Frames written per split (or per the format's one set), by name."),
  error: nullable(string()),
  started: string(),
  ended: nullable(string()),
});

/**
 * The answer of GET /api/export: a tar, a video or an MCAP log. The MP4 sidecar (sidecar=true) is a JSON file to
 * save (attachment), declared as a download like the others rather than as an API answer.
 */
const EXPORT_OK = file("application/x-tar", "The archive, video, log or sidecar.", {
  "X-Frame-Count": "Frames matching.",
  "X-Export-Id": "The export's id.",
  "Content-Disposition": "attachment, named after the labels (or the clip) and the time.",
});
for (const type of ["video/mp4", "application/x-mcap"]) {
  EXPORT_OK.content![type] = { schema: { type: "string", contentMediaType: type } };
}

export function exportRoutes(ctx: ServerContext): Route[] {
  const { catalog, exports, log } = ctx;
  return [
    route({
      method: "get",
      path: "/api/export",
      summary: "The frames of a search, a clip (clip=ID) or a collection (collection=ID), streamed as it " +
        "is built: an MP4 video (format=mp4; sidecar=true: its frame list as JSON), an MCAP log " +
        "(format=mcap), or a .tar dataset: imagefolder (default; " +
        "<label folder>/<robot>_<time>_<seq>.jpg + metadata.jsonl), coco (images/<split>/ + " +
        "annotations/instances_<split>.json), yolo (Ultralytics: images/<split>/, labels/<split>/, " +
        "data.yaml), cvat (CVAT for images 1.1: images/ + one XML per split) or label-studio (tasks.json " +
        "with image URLs of this server + label_config.xml). The filters are those of GET /api/frames, so " +
        "both give the same frames.",
      description: "imagefolder needs at least one label; the box formats take any search (frames " +
        "without boxes are negatives) and write every accepted box of the frames (unaccepted model boxes " +
        "only as Label Studio predictions). Classes are sorted by name (COCO ids from 1, YOLO from 0). " +
        "split=train=0.8,val=0.2 splits by robot and time block (split_block_minutes; a clip stays in one " +
        "split), deterministic from split_seed. A store that fails before the first byte is a 502 with " +
        "nothing sent. A store that fails later cuts the stream short (a transfer error; the tar has no " +
        "end marker). Frames whose object no store holds are left out and listed in MISSING.txt, the last " +
        "entry. GET /api/exports/{id} tells how far the export is and how it ended. Folder names are the " +
        "labels with characters that Windows refuses (and %) as %XX escapes; long or non-ASCII paths use " +
        "PAX extended headers. mp4: H.264 by ffmpeg, fragmented so it streams; each frame at its capture " +
        "time (fps=N: a fixed rate, frames held), a clip's or robot's last frame held 1 s; a collection " +
        "plays clip after clip, a search robot after robot. sidecar=true answers the video's frame list " +
        "(key, capture time, video time; from the catalog, so frames no store holds are listed as shown). " +
        "mcap: /ROBOT/camera (foxglove.CompressedImage, the stored JPEG), /ROBOT/annotations " +
        "(foxglove.ImageAnnotations), /ROBOT/frames (JSON records), clips as metadata; chunked, indexed.",
      query: {
        ...SEARCH_FILTER,
        label: list("A label to export (repeatable; imagefolder: at least one, one folder each)."),
        status: STATUS_LIST,
        format: choice(EXPORT_FORMATS, "imagefolder", "The dataset format."),
        split: text(
          "Splits and their shares of the frames, e.g. train=0.8,val=0.2 or train=0.7,val=0.2,test=0.1 " +
            "(names train, val, test). Default: no split.",
        ),
        split_seed: int("Seed of the split (the same seed gives the same split).", {
          min: -(2 ** 31),
          max: 2 ** 31 - 1,
          fallback: DEFAULT_SPLIT_SEED,
        }),
        split_block_minutes: int("Minutes of a time block that stays in one split.", {
          min: 1,
          max: 525_600,
          fallback: DEFAULT_BLOCK_MINUTES,
        }),
        classes: choice(
          ["used", "all"] as const,
          "used",
          "used: the classes of the exported boxes; all: every label (ids stable across exports).",
        ),
        clip: int("Only the frames of this clip (its robot and span; not with robot, from, to).", {
          min: 1,
          max: Number.MAX_SAFE_INTEGER,
        }),
        collection: int(
          "Only the frames of this collection's clips, as one dataset (not with robot, from, to).",
          { min: 1, max: Number.MAX_SAFE_INTEGER },
        ),
        fps: int("mp4: a fixed frame rate (frames held until the next); default: capture times.", {
          min: 1,
          max: 120,
        }),
        sidecar: flag("mp4: answer the video's sidecar JSON (its frames and their times) instead."),
        server: text(
          "label-studio: the base URL of this server as Label Studio will reach it (default: the " +
            "request's own origin).",
        ),
        export_id: matching(
          EXPORT_ID,
          "An id for this export (8-64 of A-Z a-z 0-9 - _), to ask GET /api/exports/{id} how it ended; " +
            "default: a new UUID (in X-Export-Id).",
          "must be 8 to 64 letters, digits, '-' or '_'",
        ),
      },
      ok: EXPORT_OK,
      errors: [502],
      handler: async ({ query, url }) => {
        const format = query.format;
        if (query.sidecar && format !== "mp4") throw new BadInputError("sidecar=true is for format=mp4");
        if (format === "imagefolder" && query.label.length === 0) {
          throw new BadInputError("name at least one label to export (label=NAME, repeatable)");
        }
        // The same filter as GET /api/frames, so a search and the export of it give the same frames.
        const filter = searchFilter(query);
        const split = query.split === undefined ? null : splitSpec(query.split, {
          seed: query.split_seed,
          blockMinutes: query.split_block_minutes,
        });
        const server = query.server ?? `${url.protocol}//${url.host}`;
        const id = query.export_id ?? crypto.randomUUID();
        // Refuses unknown labels, and labels whose folders would clash, before anything is sent.
        const plan = await library(
          () =>
            planExport(catalog, {
              ...filter,
              labels: filter.labels ?? [],
              status: query.status,
              clip: query.clip,
              collection: query.collection,
            }, {
              format,
              split,
              classes: query.classes,
              server,
              fps: query.fps ?? null,
            }),
          { filter: true },
        );
        const stamp = iso(Date.now()).replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
        const selected = plan.selection.clip
          ? `clip-${plan.selection.clip.id}`
          : plan.selection.collection
          ? `collection-${plan.selection.collection.id}`
          : "";
        if (query.sidecar) {
          const video = `frame-bucket-${selected || "search"}-${stamp}.mp4`;
          const body = await library(() => mp4SidecarFromCatalog(catalog, plan, video), { filter: true });
          return new Response(body as Uint8Array<ArrayBuffer>, {
            headers: {
              "content-type": "application/json",
              "content-disposition": attachment(video.replace(/\.mp4$/, ".frames.json")),
              "cache-control": "no-store",
              "x-frame-count": String(plan.total),
            },
          });
        }
        const status = exports.start(id, plan.labels, plan.total, format);
        const started = performance.now();
        const what = `export ${id} (${format}${plan.labels.length ? `; ${plan.labels.join(", ")}` : ""}; ` +
          `${plan.total} frames)`;
        let sent = false;
        let stream: ReadableStream<Uint8Array>;
        try {
          const open = isMediaFormat(format) ? openMediaStream : openExportStream;
          stream = await open(catalog, plan, {
            fetch: (key) => ctx.fetchFrame(key),
            retryDelaysMs: ctx.exportRetryDelaysMs,
            onProgress: (counts) => exports.update(status, counts),
            onEnd: (end) => {
              exports.end(status, end, end.error);
              const line = `${what}: ${end.files} files from ${end.frames - end.missing} frames, ` +
                `${end.boxes} boxes, ${end.missing} missing, ` +
                `${((performance.now() - started) / 1000).toFixed(1)} s`;
              if (end.error !== undefined) {
                log.error(
                  `${line}; FAILED, ${
                    sent ? "the download was cut short" : "answered 502 before anything was sent"
                  }: ${messageOf(end.error)}`,
                );
              } else if (end.missing) {
                log.warn(`${line}; INCOMPLETE, the missing frames are listed in MISSING.txt`);
              } else log.info(line);
            },
          });
        } catch (error) {
          // Nothing has been sent: the client gets an error instead of a tar that looks complete.
          const failed = new ServiceError(
            "store",
            `the export failed before anything was sent: ${messageOf(error)}`,
            { retriable: error instanceof ServiceError && error.retriable, cause: error },
          );
          return errorReply(failed, (m) => log.error(m), { "x-export-id": id });
        }
        sent = true;
        const folders = plan.labels.map((l) => plan.folders.get(l) ?? labelFolder(l)).join("+");
        // Cut by code points, not UTF-16 units: half a surrogate pair cannot be percent-encoded.
        const title = [...(format === "imagefolder" ? [] : [format]), ...(folders ? [folders] : [])].join(
          "-",
        );
        const name = isMediaFormat(format)
          ? `frame-bucket-${
            [selected, ...(folders ? [folders] : [])].filter(Boolean).join("-") || "search"
          }-` +
            `${stamp}.${format}`
          : `frame-bucket-${Array.from(title).slice(0, 120).join("")}-${stamp}.tar`;
        return new Response(stream, {
          headers: {
            "content-type": format === "mp4"
              ? "video/mp4"
              : format === "mcap"
              ? "application/x-mcap"
              : "application/x-tar",
            "content-disposition": attachment(name),
            "cache-control": "no-store",
            "x-frame-count": String(plan.total),
            "x-export-id": id,
          },
        });
      },
    }),

    route({
      method: "get",
      path: "/api/exports/{id}",
      summary: "How an export went: running, complete, incomplete (frames missing, listed in " +
        "MISSING.txt) or failed (the download was cut short). The last 200 exports are kept.",
      params: { id: segment("The export's id (export_id, or X-Export-Id of the download).") },
      ok: ok("The export's status.", EXPORT_STATUS),
      errors: [404],
      handler: ({ params }) => {
        const status = exports.get(params.id);
        if (!status) {
          throw new NotFoundError(
            `no export ${
              JSON.stringify(params.id.slice(0, 80))
            } (this server keeps the last 200 since it started)`,
          );
        }
        return status;
      },
    }),
  ];
}
