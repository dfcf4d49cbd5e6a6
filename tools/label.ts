/**
 * `deno task label <command> ...`: labels frames, keeps clips, shows the change journal. Every change is recorded
 * with `--author` (default: $USER) and the time.
 */
import type { Clip, FrameRow, FrameSelector, LabelStore } from "../src/catalog/catalog.ts";
import type { Catalog } from "../src/catalog/catalog.ts";
import { openCatalog } from "../src/catalog/open.ts";
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { checkRobotId } from "../src/key.ts";
import { parseTime, parseTimeRange } from "../src/library/search.ts";
import type { Config } from "../src/config.ts";
import { archiveStore, localStore } from "../src/filter/loader.ts";
import type { StoragePlugin } from "../src/plugin.ts";
import { jpegSize } from "../src/library/image_size.ts";
import {
  checkModelName,
  importPredictions,
  parseCocoResults,
  parseYoloClasses,
  parseYoloLabels,
  type Prediction,
  type YoloFile,
} from "../src/library/prelabels.ts";

export const USAGE = `usage: deno task label <command> [options] [--author NAME] [--config PATH]

Frames:
  add LABEL... SELECTOR         put labels on frames (labels are created on first use)
  remove LABEL... SELECTOR      take a frame's own labels off (labels from clips stay)
    SELECTOR: --key KEY (repeatable) | --keys-file FILE (one key a line, - for stdin)
              | --robot R --from T --to T (the robot's frames stored now in that span)
  show KEY                      a frame's labels, own and from clips
Labels:
  list                          labels with their frame and clip counts
  rename OLD NEW [--merge]      rename everywhere; --merge when NEW exists already
  delete LABEL                  take the label off every frame and clip
Clips (a robot's time span whose labels apply to every frame in it, also frames stored later):
  clip create --robot R --from T --to T --name NAME [--note TEXT] [--label L]...
  clip update ID [--robot R] [--from T] [--to T] [--name NAME] [--note TEXT]
                 [--label L]... (replaces the labels) [--add-label L]... [--remove-label L]...
  clip delete ID
  clip list [--robot R] [--label L] [--from T] [--to T]
Journal:
  log [--target T] [--limit N]  the latest changes, newest first (T: a key, frames, robot:ID, label:NAME, clip:ID)
Pre-labels (a model's boxes, source model:NAME, unaccepted until a person accepts them):
  predictions --model NAME --coco RESULTS.json [--images COCO_GT.json]
  predictions --model NAME --yolo DIR --classes FILE
    --coco: [{image_id, category_id, bbox: [x, y, w, h] px, score}]; image_id an image name (the key without
            frames/, e.g. reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg) or a number of --images'
            images list ({id, file_name}); a numeric category_id is named by --images' categories
    --yolo: DIR/<image name>.txt, lines "class cx cy w h [confidence]" (fractions); --classes one name a line
    Boxes are clipped to the image (its size read from the stored JPEG); frames not in the catalog, boxes
    outside their image and boxes already imported are skipped. Progress on stderr, a JSON summary on stdout.

  --author NAME   who makes the change (default: $USER; "" for nobody)
  --json          list, show, clip and log print JSON lines
Times are UTC: ISO 8601 (2026-02-18, 2026-02-18T09:36:16Z, 2026-02-18T11:36+02:00) or ms since the epoch; spans
are inclusive, and --to 2026-02-18 means to the end of that day.`;

const OPTIONS = {
  config: { type: "string", short: "c" },
  author: { type: "string" },
  key: { type: "string", multiple: true },
  "keys-file": { type: "string" },
  robot: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  merge: { type: "boolean" },
  name: { type: "string" },
  note: { type: "string" },
  label: { type: "string", multiple: true },
  "add-label": { type: "string", multiple: true },
  "remove-label": { type: "string", multiple: true },
  target: { type: "string" },
  limit: { type: "string" },
  json: { type: "boolean" },
  model: { type: "string" },
  coco: { type: "string" },
  images: { type: "string" },
  yolo: { type: "string" },
  classes: { type: "string" },
} as const;

type Values = ReturnType<typeof parseCli<typeof OPTIONS>>["values"];

async function selector(values: Values): Promise<FrameSelector> {
  const byKeys = values.key !== undefined || values["keys-file"] !== undefined;
  const byRange = values.robot !== undefined || values.from !== undefined || values.to !== undefined;
  if (byKeys === byRange) {
    throw new RangeError("choose the frames with --key/--keys-file, or with --robot R --from T --to T");
  }
  if (byKeys) {
    const keys = [...(values.key ?? [])];
    const file = values["keys-file"];
    if (file !== undefined) {
      const text = file === "-"
        ? await new Response(Deno.stdin.readable).text()
        : await Deno.readTextFile(file);
      keys.push(...text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")));
    }
    return { keys };
  }
  if (values.robot === undefined || values.from === undefined || values.to === undefined) {
    throw new RangeError("a time span needs all of --robot R --from T --to T");
  }
  const span = parseTimeRange(values.from, values.to);
  return { robotId: checkRobotId(values.robot), fromMs: span.fromMs!, toMs: span.toMs! };
}

function clipLine(c: Clip): string {
  return `clip ${c.id}  ${c.robotId}  ${new Date(c.fromMs).toISOString()} .. ${
    new Date(c.toMs).toISOString()
  }  ` +
    `${JSON.stringify(c.name)}  labels: ${c.labels.join(",") || "-"}${
      c.note ? `  note: ${JSON.stringify(c.note)}` : ""
    }`;
}

function clipId(text: string | undefined): number {
  const id = Number(text);
  if (text === undefined || !Number.isInteger(id) || id < 1) {
    throw new RangeError(`expected a clip id (a number), got ${JSON.stringify(text ?? "")}`);
  }
  return id;
}

function need(args: string[], count: number, what: string): void {
  if (args.length < count) throw new RangeError(`expected ${what}\n\n${USAGE}`);
}

export async function labelMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, OPTIONS, args);
  const [command, ...rest] = positionals;
  if (command === undefined) throw new RangeError(`name a command\n\n${USAGE}`);
  const author = values.author ?? Deno.env.get("USER") ?? null;
  const by = { author: author || null };
  const config = await loadConfig(values.config);
  const catalog = await openCatalog(config);
  const labels = catalog.labels({
    limits: {
      maxPerRequest: config.labels.max_per_request,
      maxDistinct: config.labels.max_distinct,
      strict: config.labels.strict,
    },
  });
  const json = values.json ?? false;
  try {
    switch (command) {
      case "add":
      case "remove": {
        need(rest, 1, `${command} LABEL... and the frames`);
        const target = await selector(values);
        const n = command === "add"
          ? await labels.addLabels(target, rest, by)
          : await labels.removeLabels(target, rest, by);
        console.log(`${command === "add" ? "added" : "removed"} ${n} frame label${n === 1 ? "" : "s"}`);
        return 0;
      }
      case "show": {
        need(rest, 1, "show KEY");
        const row = await catalog.get(rest[0]);
        if (!row) throw new RangeError(`no frame ${JSON.stringify(rest[0])} in the catalog`);
        const clips = await labels.listClips({
          robotId: row.robotId,
          fromMs: row.timestampMs,
          toMs: row.timestampMs,
        });
        const all = await labels.labelsOf(row.key);
        const pinned = await catalog.isPinned(row.key);
        if (json) {
          console.log(
            JSON.stringify({ key: row.key, labels: all, pinned, clips }),
          );
        } else {
          console.log(
            `${row.key}\n  labels: ${all.join(", ") || "-"}${pinned ? " (pinned)" : ""}`,
          );
          for (const c of clips) console.log(`  in ${clipLine(c)}`);
        }
        return 0;
      }
      case "list": {
        for (const l of await labels.list()) {
          console.log(json ? JSON.stringify(l) : `${l.name}  ${l.frames} frames, ${l.clips} clips`);
        }
        return 0;
      }
      case "rename": {
        need(rest, 2, "rename OLD NEW");
        await labels.renameLabel(rest[0], rest[1], { ...by, merge: values.merge });
        console.log(`renamed ${JSON.stringify(rest[0])} to ${JSON.stringify(rest[1])}`);
        return 0;
      }
      case "delete": {
        need(rest, 1, "delete LABEL");
        const n = await labels.deleteLabel(rest[0], by);
        console.log(`deleted ${JSON.stringify(rest[0])} from ${n.frames} frames and ${n.clips} clips`);
        return 0;
      }
      case "clip":
        return await clipCommand(labels, rest, values, by);
      case "predictions":
        return await predictionsCommand(config, catalog, labels, values, by);
      case "log": {
        const limit = values.limit === undefined ? 20 : Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1) {
          throw new RangeError(`--limit ${values.limit} must be >= 1`);
        }
        for (const c of await labels.changes({ target: values.target, limit, newest: true })) {
          console.log(
            json
              ? JSON.stringify(c)
              : `${new Date(c.atMs).toISOString()}  ${c.author ?? "-"}  ${c.action}  ${c.target}  ${
                JSON.stringify(c.detail)
              }`,
          );
        }
        return 0;
      }
      default:
        throw new RangeError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    }
  } finally {
    await catalog.close();
  }
}

async function clipCommand(
  labels: LabelStore,
  args: string[],
  values: Values,
  by: { author: string | null },
): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create": {
      if (values.robot === undefined || values.from === undefined || values.to === undefined) {
        throw new RangeError("clip create needs --robot R --from T --to T --name NAME");
      }
      const span = parseTimeRange(values.from, values.to);
      const clip = await labels.createClip({
        robotId: values.robot,
        fromMs: span.fromMs!,
        toMs: span.toMs!,
        name: values.name ?? "",
        note: values.note,
        labels: values.label,
      }, by);
      console.log(values.json ? JSON.stringify(clip) : `created ${clipLine(clip)}`);
      return 0;
    }
    case "update": {
      const id = clipId(rest[0]);
      const clip = await labels.updateClip(id, {
        robotId: values.robot,
        fromMs: values.from === undefined ? undefined : parseTime(values.from, "--from"),
        toMs: values.to === undefined ? undefined : parseTime(values.to, "--to", { end: true }),
        name: values.name,
        note: values.note,
        labels: values.label,
        addLabels: values["add-label"],
        removeLabels: values["remove-label"],
      }, by);
      console.log(values.json ? JSON.stringify(clip) : `updated ${clipLine(clip)}`);
      return 0;
    }
    case "delete": {
      await labels.deleteClip(clipId(rest[0]), by);
      console.log(`deleted clip ${rest[0]}`);
      return 0;
    }
    case "list": {
      const span = parseTimeRange(values.from, values.to);
      const label = values.label?.[0];
      for (const c of await labels.listClips({ robotId: values.robot, label, ...span })) {
        console.log(values.json ? JSON.stringify(c) : clipLine(c));
      }
      return 0;
    }
    default:
      throw new RangeError(
        `unknown clip command ${JSON.stringify(sub ?? "")}: create, update, delete or list`,
      );
  }
}

/** Reads a JSON file, naming the file when it does not parse. */
async function readJson(path: string): Promise<unknown> {
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`${path} is not JSON: ${(error as Error).message}`);
  }
}

/** The .txt files under `dir`, paths relative to it with '/', in name order. */
async function yoloFiles(dir: string, skip: string | null): Promise<YoloFile[]> {
  const out: YoloFile[] = [];
  const walk = async (rel: string) => {
    const entries = [];
    for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && e.name.toLowerCase().endsWith(".txt")) {
        const full = await Deno.realPath(`${dir}/${path}`);
        // The classes file may sit in the folder; it is no image's labels.
        if (full === skip || path === "classes.txt") continue;
        out.push({ name: path, text: await Deno.readTextFile(full) });
      }
    }
  };
  await walk("");
  return out;
}

/**
 * `predictions`: parses a COCO results file or a YOLO label folder and imports the boxes. Frame sizes come from
 * the stored JPEGs: the local store, else the archive (opened only when a frame is not local).
 */
async function predictionsCommand(
  config: Config,
  catalog: Catalog,
  labels: LabelStore,
  values: Values,
  by: { author: string | null },
): Promise<number> {
  if (!values.model) throw new RangeError("predictions needs --model NAME (the boxes get source model:NAME)");
  checkModelName(values.model);
  const coco = values.coco !== undefined;
  const yolo = values.yolo !== undefined;
  if (coco === yolo) {
    throw new RangeError("predictions needs either --coco RESULTS.json or --yolo DIR --classes FILE");
  }
  let predictions: Prediction[];
  if (coco) {
    if (values.classes !== undefined) {
      throw new RangeError("--classes goes with --yolo; COCO names classes by --images");
    }
    const lists = values.images === undefined ? {} : await readJson(values.images);
    const gt = (lists && typeof lists === "object" ? lists : {}) as {
      images?: unknown;
      categories?: unknown;
    };
    predictions = parseCocoResults(await readJson(values.coco!), {
      images: gt.images,
      categories: gt.categories,
    });
  } else {
    if (values.classes === undefined) {
      throw new RangeError("--yolo DIR needs --classes FILE (one class name a line; line 1 is class 0)");
    }
    if (values.images !== undefined) throw new RangeError("--images goes with --coco");
    const classes = parseYoloClasses(await Deno.readTextFile(values.classes), values.classes);
    const files = await yoloFiles(values.yolo!, await Deno.realPath(values.classes));
    predictions = parseYoloLabels(files, classes);
    console.error(`read ${files.length} label files under ${values.yolo}: ${predictions.length} boxes`);
  }
  const local = await localStore(config);
  let archive: StoragePlugin | null = null;
  const archived = async (key: string) => {
    archive ??= await archiveStore(config);
    return await archive.get(config.aws_s3.prefix + key);
  };
  const started = Date.now();
  try {
    const summary = await importPredictions(
      {
        frame: (key) => catalog.get(key),
        async imageSize(row: FrameRow) {
          const bytes = row.tier === "archive"
            ? (await archived(row.key)) ?? (await local.get(row.key))
            : (await local.get(row.key)) ?? (await archived(row.key));
          return bytes ? jpegSize(bytes) : null;
        },
        store: labels,
        prefix: config.rustfs.prefix,
      },
      predictions,
      {
        model: values.model,
        author: by.author,
        progress: (p) =>
          console.error(
            `  ${p.framesDone}/${p.totalFrames} frames, ${p.boxes} boxes on ${p.frames} frames, ` +
              `${p.skipped} skipped (${((Date.now() - started) / 1000).toFixed(1)} s)`,
          ),
      },
    );
    for (const s of summary.skipped) console.error(`  skipped ${s.ref}: ${s.reason}`);
    console.log(JSON.stringify({ model: values.model, ...summary }));
    return 0;
  } finally {
    local.close();
    (archive as StoragePlugin | null)?.close();
  }
}

if (import.meta.main) runMain(() => labelMain(Deno.args));
