/**
 * Import: another tool's dataset (COCO, YOLO, CVAT for images 1.1, Label Studio JSON) onto the frames it names, as
 * boxes with source `import` and whole-frame labels. Reading, matching and the idempotent re-import are
 * src/library/import/'s; this route takes the files in the body and passes the server's catalog, label store and
 * frame sizes (read from the stored JPEGs, as for boxes drawn by hand).
 */
import { BadInputError } from "../../errors.ts";
import { IMPORT_FORMATS, type ParsedImport } from "../../library/import/annotations.ts";
import { applyImport } from "../../library/import/apply.ts";
import { parseCoco } from "../../library/import/coco.ts";
import { checkImportFormat, parseImportFiles } from "../../library/import/files.ts";
import { parseLabelStudio } from "../../library/import/label_studio.ts";
import { fromLibrary, library } from "../boundary.ts";
import { type ServerContext, storedSize } from "../context.ts";
import { jsonBody, ok, type Route, route } from "../route.ts";
import {
  anyObject,
  array,
  boolean,
  integer,
  object,
  optional,
  required,
  string,
  strings,
} from "../schema.ts";

/** Largest import body: a dataset of tens of thousands of frames. */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;

export function importRoutes(ctx: ServerContext): Route[] {
  return [
    route({
      method: "post",
      path: "/api/import",
      summary:
        "Import a COCO, YOLO, CVAT or Label Studio dataset onto the frames it names (boxes and frame labels).",
      description:
        `format: ${IMPORT_FORMATS.join(", ")}. The dataset as files [{name, text}] (the files of ` +
        "the export by their paths: coco instances_*.json, yolo labels/**/*.txt with data.yaml or classes.txt, " +
        "cvat *.xml, label-studio the one JSON export), or as JSON: dataset (one COCO instances object) or " +
        "tasks (Label Studio's exported tasks). Images are matched to frames by key, image name, our YOLO " +
        "export's flat name or path tail; boxes get source import (or source: model:NAME; Label Studio " +
        "predictions model:<model_version>). Idempotent: the same dataset again changes nothing; an edited one " +
        "moves, adds and deletes that source's boxes on the frames it names (people's boxes are never " +
        "deleted); frame labels are only added. Malformed input is refused whole (400, naming file, line or " +
        "entry and value); images matching no frame, sizes the stored JPEG contradicts and shapes that are no " +
        "boxes are skipped and listed. dry_run: plan only.",
      body: jsonBody(
        object({
          format: required(string({ description: IMPORT_FORMATS.join(", ") }), "give format"),
          files: optional(array(
            object({
              name: string({ description: "The file's path in the export (e.g. labels/train/x.txt)." }),
              text: string({ description: "Its text." }),
            }),
            { description: "The dataset's files." },
          )),
          dataset: optional(anyObject("coco: one instances object {images, annotations, categories}.")),
          tasks: optional(array(anyObject(), { description: "label-studio: the exported tasks." })),
          classes: optional(
            strings({ description: "yolo: class names, class 0 first (instead of data.yaml)." }),
          ),
          source: optional(string({ description: "Source of the boxes: import (default) or model:NAME." })),
          dry_run: optional(boolean("Plan only: count what would change, write nothing.")),
          author: optional(string({ description: "Who imports (recorded in the journal)." })),
        }, { strict: true }),
        MAX_IMPORT_BYTES,
      ),
      ok: ok(
        "What changed (or would, with dry_run) and what was skipped.",
        object({
          format: string(),
          dry_run: boolean(),
          images: integer("Images in the dataset."),
          frames: integer("Frames they matched."),
          added: integer("Boxes added."),
          updated: integer("Boxes moved or relabelled in place."),
          deleted: integer("Boxes of the import's source the dataset no longer has."),
          accepted: integer("Pre-labels the dataset confirmed."),
          unchanged: integer("Boxes found as they were."),
          clipped: integer("Boxes cut to their image."),
          labels: integer("(frame, label) pairs added."),
          skipped: array(object({ ref: string(), reason: string() }), {
            description: "What was left out, why.",
          }),
        }),
      ),
      errors: [502],
      handler: async ({ body }) => {
        const format = fromLibrary(() => checkImportFormat(body.format), { field: "format" });
        const given = [body.files, body.dataset, body.tasks].filter((x) => x !== undefined).length;
        if (given !== 1) {
          throw new BadInputError(
            "give the dataset once: files [{name, text}], dataset (coco) or tasks (label-studio)",
          );
        }
        if (body.dataset !== undefined && format !== "coco") {
          throw new BadInputError('dataset is for format "coco"');
        }
        if (body.tasks !== undefined && format !== "label-studio") {
          throw new BadInputError('tasks is for format "label-studio"');
        }
        if (body.classes !== undefined && format !== "yolo") {
          throw new BadInputError('classes is for format "yolo"');
        }
        const parsed: ParsedImport = fromLibrary(() =>
          body.dataset !== undefined
            ? parseCoco([{ name: "dataset", json: body.dataset }])
            : body.tasks !== undefined
            ? parseLabelStudio(body.tasks, "tasks")
            : parseImportFiles(format, body.files!, { classes: body.classes })
        );
        const summary = await library(() =>
          applyImport(
            {
              frame: (key) => ctx.catalog.get(key),
              imageSize: (row) => storedSize(ctx, row),
              store: ctx.labels,
              prefix: ctx.framePrefix,
            },
            parsed,
            { source: body.source, author: body.author ?? null, dryRun: body.dry_run ?? false },
          )
        );
        const { dryRun, ...rest } = summary;
        return { ...rest, dry_run: dryRun };
      },
    }),
  ];
}
