/**
 * Pre-labels: a detector's predictions (COCO results JSON, or YOLO label files) imported as boxes with source
 * `model:NAME` and the model's score, unaccepted until a person accepts or deletes them. Parsing, matching to
 * frames, clipping and batching are src/library/prelabels.ts's; this route reads the body and passes the server's
 * catalog, label store and frame sizes (read from the stored JPEGs, as for boxes drawn by hand).
 */
import { BadInputError } from "../../errors.ts";
import {
  importPredictions,
  parseCocoResults,
  parseYoloClasses,
  parseYoloLabels,
  type Prediction,
} from "../../library/prelabels.ts";
import { fromLibrary, library } from "../boundary.ts";
import { type ServerContext, storedSize } from "../context.ts";
import { jsonBody, ok, type Route, route } from "../route.ts";
import {
  anyObject,
  array,
  integer,
  literal,
  object,
  optional,
  required,
  string,
  strings,
} from "../schema.ts";

/** Largest import body: predictions for tens of thousands of frames. */
export const MAX_PRELABEL_BYTES = 64 * 1024 * 1024;

export function prelabelRoutes(ctx: ServerContext): Route[] {
  return [
    route({
      method: "post",
      path: "/api/prelabels",
      summary:
        "Import a model's predictions as boxes (source model:NAME, unaccepted): COCO results or YOLO files.",
      description: 'format "coco": results is the results array ({image_id, category_id, bbox [x, y, w, h] ' +
        "in px, score}); image_id an image name (the key without frames/) or a number resolved through images " +
        '[{id, file_name}], category_id a class name or a number resolved through categories. format "yolo": ' +
        "files [{name, text}], one per image named like it with .txt, lines `class cx cy w h [confidence]` in " +
        "fractions; classes names class 0, 1, .... Malformed input is refused whole (400, naming file, line " +
        "and value); frames that do not exist, boxes outside their image and boxes already imported are " +
        "skipped and listed. Boxes reaching outside their image are cut to it. Sizes come from the stored JPEGs.",
      body: jsonBody(
        object({
          model: required(
            string({ description: "The model's name: boxes get source model:NAME." }),
            "give model",
          ),
          format: required(literal(["coco", "yolo"] as const, "coco or yolo."), "give format: coco or yolo"),
          results: optional(array(anyObject(), { description: "coco: the results." })),
          images: optional(
            array(anyObject(), { description: "coco: [{id, file_name}] for numeric image ids." }),
          ),
          categories: optional(
            array(anyObject(), { description: "coco: [{id, name}] for numeric category ids." }),
          ),
          files: optional(array(
            object({
              name: string({ description: "The label file's path (image name with .txt)." }),
              text: string(),
            }),
            { description: "yolo: the label files." },
          )),
          classes: optional(strings({ description: "yolo: the class names, class 0 first." })),
          author: optional(string({ description: "Who imports (recorded in the journal)." })),
        }, { strict: true }),
        MAX_PRELABEL_BYTES,
      ),
      ok: ok(
        "What was imported and what was skipped.",
        object({
          frames: integer("Frames that got at least one box."),
          boxes: integer("Boxes written."),
          clipped: integer("Boxes that reached outside their image and were cut to it."),
          skipped: array(object({ ref: string(), reason: string() }), {
            description: "What was left out, why.",
          }),
        }),
      ),
      errors: [502],
      handler: async ({ body }) => {
        let predictions: Prediction[];
        if (body.format === "coco") {
          if (body.results === undefined) throw new BadInputError('format "coco" needs results (the array)');
          if (body.files !== undefined || body.classes !== undefined) {
            throw new BadInputError('files and classes are for format "yolo"; coco takes results');
          }
          predictions = fromLibrary(() =>
            parseCocoResults(body.results, { images: body.images, categories: body.categories })
          );
        } else {
          if (body.files === undefined || body.classes === undefined) {
            throw new BadInputError(
              'format "yolo" needs files ([{name, text}]) and classes (names, class 0 first)',
            );
          }
          if (body.results !== undefined || body.images !== undefined || body.categories !== undefined) {
            throw new BadInputError('results, images and categories are for format "coco"; yolo takes files');
          }
          const classes = fromLibrary(() => parseYoloClasses(body.classes!.join("\n"), "classes"));
          predictions = fromLibrary(() => parseYoloLabels(body.files!, classes));
        }
        const summary = await library(() =>
          importPredictions(
            {
              frame: (key) => ctx.catalog.get(key),
              imageSize: (row) => storedSize(ctx, row),
              store: ctx.labels,
              prefix: ctx.framePrefix,
            },
            predictions,
            { model: body.model, author: body.author ?? null },
          )
        );
        return summary;
      },
    }),
  ];
}
