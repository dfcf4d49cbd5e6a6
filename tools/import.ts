/**
 * `deno task import --format coco|yolo|cvat|label-studio PATH... [--source S] [--dry-run]`: another tool's
 * dataset (or one of our exports, edited) back onto the frames it names, as boxes with source `import` and
 * whole-frame labels, through the label store (journalled, undoable). Re-importing the same files changes
 * nothing; an edited file replaces the boxes an earlier import of the same source put on the frames it names
 * (src/library/import/apply.ts). Progress and skipped images on stderr, a JSON summary on stdout.
 *
 * Exit codes: 0 imported (some images may be skipped: listed); 1 failed (a store or the catalog); 2 bad input
 * (nothing written).
 */
import { openExistingCatalog } from "../src/catalog/open.ts";
import { loadConfig } from "../src/config.ts";
import { BadInputError, messageOf } from "../src/errors.ts";
import { archiveStore, localStore } from "../src/filter/loader.ts";
import { IMPORT_FORMATS } from "../src/library/import/annotations.ts";
import { applyImport } from "../src/library/import/apply.ts";
import {
  checkImportFormat,
  type ImportFile,
  parseImportFiles,
  wantedFile,
} from "../src/library/import/files.ts";
import { jpegSize } from "../src/library/image_size.ts";
import { parseCli, runMain } from "../src/main/cli.ts";
import { readFrame } from "../src/store/tiers.ts";

export const USAGE = `usage: deno task import --format ${IMPORT_FORMATS.join("|")} PATH...
                        [--classes FILE] [--source import|model:NAME] [--dry-run] [--author NAME] [--config PATH]

Reads a dataset and puts its boxes and whole-frame labels on the frames it names (matched by frame key, image
name, our YOLO export's flat name, or the tail of a path). PATH is a file or a folder (read recursively):
  coco           instances JSON files (annotations/instances_<split>.json): bbox [x, y, w, h] in pixels; an
                 image's "labels" (our export's) become frame labels
  yolo           label files (labels/**/*.txt, "class cx cy w h [confidence]" in fractions) with data.yaml
                 (names:) or classes.txt / obj.names, or --classes FILE
  cvat           CVAT for images 1.1 task files (annotations.xml, <split>.xml): <box> and <tag>
  label-studio   Label Studio's JSON export (one file): rectanglelabels in percent, choices as frame labels,
                 result ids fb<N> (our export's) update box N, predictions as pre-labels of model:<model_version>
Archives (.tar, .zip) are not read: unpack them first.

Re-import: a box equal to one the frame has (same class, every edge within 0.01 px) changes nothing; a moved box
of the same source and class is updated in place (it keeps its id); the import source's boxes the file no longer
has on a frame it names are deleted; people's boxes and other sources' are never deleted. Labels are only added.
  --source S      source of the boxes: import (default) or model:NAME (a tool's predictions, unaccepted)
  --classes FILE  yolo: the class names, one a line (class 0 first), instead of data.yaml
  --dry-run       match and plan, print what would change, write nothing
  --author NAME   who makes the change (default: $USER; "" for nobody)`;

const OPTIONS = {
  config: { type: "string", short: "c" },
  format: { type: "string", short: "f" },
  source: { type: "string" },
  classes: { type: "string" },
  "dry-run": { type: "boolean" },
  author: { type: "string" },
} as const;

/** The files of `path` (a file, or a folder read recursively) that an import of the format reads. */
async function readFiles(
  path: string,
  wanted: (name: string) => boolean,
  out: ImportFile[],
): Promise<void> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    if (/\.(tar|tgz|zip|gz)$/i.test(path)) {
      throw new BadInputError(`${path} is an archive: unpack it and give the folder`);
    }
    out.push({ name: path, text: await Deno.readTextFile(path) });
    return;
  }
  const walk = async (dir: string, rel: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const relName = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(`${dir}/${e.name}`, relName);
      else if (e.isFile && wanted(relName)) {
        out.push({ name: relName, text: await Deno.readTextFile(`${dir}/${e.name}`) });
      }
    }
  };
  await walk(path.replace(/\/+$/, ""), "");
}

export async function importMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, OPTIONS, args);
  let format;
  let files: ImportFile[] = [];
  let classes: string[] | undefined;
  try {
    if (values.format === undefined) throw new BadInputError(`give --format (${IMPORT_FORMATS.join(", ")})`);
    if (positionals.length === 0) throw new BadInputError("give the file or folder to import");
    format = checkImportFormat(values.format);
    const f = format;
    for (const p of positionals) await readFiles(p, (name) => wantedFile(f, name), files);
    if (values.classes !== undefined) {
      if (format !== "yolo") throw new BadInputError("--classes goes with --format yolo");
      classes = (await Deno.readTextFile(values.classes)).split(/\r?\n/);
      while (classes.length && classes[classes.length - 1].trim() === "") classes.pop();
    }
  } catch (error) {
    if (!(error instanceof BadInputError) && !(error instanceof Deno.errors.NotFound)) throw error;
    console.error(`error: ${messageOf(error)}\n\n${USAGE}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseImportFiles(format, files, { classes });
  } catch (error) {
    if (!(error instanceof BadInputError)) throw error;
    console.error(`error: ${error.message}`);
    return 2;
  }
  files = []; // the texts are parsed: let them go
  console.error(
    `read ${parsed.images.length} images, ${parsed.images.reduce((n, i) => n + i.boxes.length, 0)} boxes`,
  );
  const author = values.author ?? Deno.env.get("USER") ?? null;
  const config = await loadConfig(values.config);
  const catalog = await openExistingCatalog(config, "run the consumer first, or give --config");
  const local = await localStore(config);
  const archive = await archiveStore(config).catch(() => null);
  const started = Date.now();
  try {
    const summary = await applyImport(
      {
        frame: (key) => catalog.get(key),
        async imageSize(row) {
          const bytes = await readFrame(
            { local, archive, archivePrefix: config.aws_s3.prefix },
            row.key,
            row.tier,
          );
          return bytes ? jpegSize(bytes) : null;
        },
        store: catalog.labels({
          limits: {
            maxPerRequest: config.labels.max_per_request,
            maxDistinct: config.labels.max_distinct,
            strict: config.labels.strict,
          },
        }),
        prefix: config.rustfs.prefix,
      },
      parsed,
      {
        source: values.source,
        author: author || null,
        dryRun: values["dry-run"] ?? false,
        progress: (p) =>
          console.error(
            `  ${p.framesDone}/${p.totalFrames} frames: ${p.added} added, ${p.updated} updated, ${p.deleted} ` +
              `deleted (${((Date.now() - started) / 1000).toFixed(1)} s)`,
          ),
      },
    );
    for (const s of summary.skipped) console.error(`  skipped ${s.ref}: ${s.reason}`);
    console.log(JSON.stringify({ ...summary, skipped: summary.skipped.length }));
    return 0;
  } catch (error) {
    if (!(error instanceof BadInputError)) throw error;
    console.error(`error: ${error.message}`);
    return 2;
  } finally {
    local.close();
    archive?.close();
    await catalog.close();
  }
}

if (import.meta.main) runMain(() => importMain(Deno.args));
