/**
 * Boxes: a class and a rectangle on a frame (people's, or a model's pre-labels until a person accepts them). The
 * frame's pixel size always comes from its stored JPEG (context.ts frameSize), never from the client, so a box can
 * never lie outside the real image; the label store checks the rest (rectangle, class, strict label set).
 */
import { BadInputError } from "../../errors.ts";
import type { BoxUpdate } from "../../catalog/catalog.ts";
import { library } from "../boundary.ts";
import { frameRow, frameSize, type ServerContext } from "../context.ts";
import { jsonBody, ok, type Route, route } from "../route.ts";
import {
  array,
  boolean,
  id,
  integer,
  literal,
  nullable,
  number,
  object,
  optional,
  required,
  string,
} from "../schema.ts";
import { AUTHOR, BOX, boxJson, KEY } from "../shapes.ts";

/** Most boxes one request may add to a frame. */
export const MAX_BOXES_PER_FRAME = 1000;
/** Most box ids one delete or accept may name. */
export const MAX_BOX_IDS = 10_000;

const BOX_ID = id("Box id.", "box id");
const UNIT = literal(
  ["px", "norm"] as const,
  "px (default): pixels; norm: fractions (0..1) of the frame's size.",
);
const WHO = () => optional(string({ description: "Who makes the change (recorded in the journal)." }));
const IDS = array(integer("A box id."), { minItems: 1, maxItems: MAX_BOX_IDS, description: "Box ids." });

export function boxRoutes(ctx: ServerContext): Route[] {
  const { labels } = ctx;
  return [
    route({
      method: "post",
      path: "/api/frames/{key}/boxes",
      summary: "Add boxes to a frame (one journal entry); the frame's size is read from its stored JPEG.",
      description:
        "x, y is the top-left corner. Boxes must lie inside the image. A class that is not a label " +
        "yet is created, unless labels.strict. Boxes with source model:NAME start unaccepted (pre-labels).",
      params: { key: KEY },
      body: jsonBody(object({
        boxes: array(
          object({
            label: required(string({ description: "The class." }), "each box needs a label (its class)"),
            x: number("Left edge."),
            y: number("Top edge."),
            w: number("Width (> 0)."),
            h: number("Height (> 0)."),
            unit: optional(UNIT),
            confidence: optional(nullable(number(), "A model's score in [0, 1].")),
            source: optional(string({ description: "human (default), import or model:NAME." })),
          }),
          { minItems: 1, maxItems: MAX_BOXES_PER_FRAME, description: "The boxes." },
        ),
        author: WHO(),
      })),
      ok: ok("The boxes as stored (with ids).", object({ boxes: array(BOX) }), 201),
      errors: [404, 502],
      handler: async ({ params, body }) => {
        const row = await frameRow(ctx, params.key);
        const size = await frameSize(ctx, row);
        const added = await library(() =>
          labels.addBoxes(
            body.boxes.map((b) => ({
              key: row.key,
              label: b.label,
              x: b.x,
              y: b.y,
              w: b.w,
              h: b.h,
              unit: b.unit,
              imageWidth: size.width,
              imageHeight: size.height,
              confidence: b.confidence,
              source: b.source,
            })),
            { author: body.author ?? null },
          ), { field: "boxes" });
        return { boxes: added.map(boxJson) };
      },
    }),

    route({
      method: "patch",
      path: "/api/boxes/{id}",
      summary: "Change a box: its class, its rectangle (x, y, w, h together, in unit), or accept it.",
      params: { id: BOX_ID },
      body: jsonBody(object({
        label: optional(string({ description: "The new class." })),
        x: optional(number("Left edge.")),
        y: optional(number("Top edge.")),
        w: optional(number("Width.")),
        h: optional(number("Height.")),
        unit: optional(UNIT),
        accepted: optional(boolean("true: a person accepts the box (a pre-label becomes theirs).")),
        author: WHO(),
      }, { strict: true })),
      ok: ok("The box as it is now.", object({ box: BOX })),
      errors: [404],
      handler: async ({ params, body }) => {
        const given = (["x", "y", "w", "h"] as const).filter((k) => body[k] !== undefined);
        if (given.length !== 0 && given.length !== 4) {
          throw new BadInputError(
            `give all four of x, y, w, h to move or resize a box (got only ${given.join(", ")})`,
          );
        }
        if (body.unit !== undefined && given.length === 0) {
          throw new BadInputError(
            "unit goes with a new rectangle: give x, y, w and h in it, or leave unit out",
          );
        }
        const update: BoxUpdate = {};
        if (body.label !== undefined) update.label = body.label;
        if (given.length === 4) {
          update.rect = { x: body.x!, y: body.y!, w: body.w!, h: body.h!, unit: body.unit };
        }
        if (body.accepted !== undefined) update.accepted = body.accepted;
        if (Object.keys(update).length === 0) {
          throw new BadInputError("nothing to change: give label, x + y + w + h, or accepted");
        }
        const box = await library(() => labels.updateBox(params.id, update, { author: body.author ?? null }));
        return { box: boxJson(box) };
      },
    }),

    route({
      method: "delete",
      path: "/api/boxes/{id}",
      summary: "Delete a box.",
      params: { id: BOX_ID },
      query: { author: AUTHOR },
      ok: ok("Deleted.", object({ deleted: integer() })),
      errors: [404],
      handler: async ({ params, query }) => ({
        deleted: await library(() => labels.deleteBoxes([params.id], { author: query.author ?? null })),
      }),
    }),

    route({
      method: "post",
      path: "/api/boxes/delete",
      summary: "Delete several boxes (one journal entry); unknown ids refuse the whole request.",
      body: jsonBody(object({ ids: IDS, author: WHO() })),
      ok: ok("How many were deleted.", object({ deleted: integer() })),
      errors: [404],
      handler: async ({ body }) => ({
        deleted: await library(() => labels.deleteBoxes(body.ids, { author: body.author ?? null })),
      }),
    }),

    route({
      method: "post",
      path: "/api/boxes/accept",
      summary: "Accept pre-labels: boxes by ids, or every unaccepted box of a frame (key).",
      body: jsonBody(object({
        ids: optional(IDS),
        key: optional(string({ description: "Instead of ids: the frame whose boxes to accept." })),
        author: WHO(),
      })),
      ok: ok("How many boxes became accepted.", object({ accepted: integer() })),
      errors: [404],
      handler: async ({ body }) => {
        const by = { author: body.author ?? null };
        if (body.ids !== undefined && body.key !== undefined) {
          throw new BadInputError("give ids or key, not both");
        }
        if (body.ids !== undefined) {
          return { accepted: await library(() => labels.acceptBoxes({ ids: body.ids! }, by)) };
        }
        if (body.key === undefined) throw new BadInputError("give ids (boxes) or key (a frame's boxes)");
        const row = await frameRow(ctx, body.key);
        return { accepted: await library(() => labels.acceptBoxes({ key: row.key }, by)) };
      },
    }),
  ];
}
