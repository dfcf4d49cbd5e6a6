/**
 * Labels: the label set (colour, hotkey, whether it is fixed), labels on frames, renaming (merging) and deleting.
 * The label store checks the names, and refuses new ones when the set is fixed (labels.strict).
 */
import { BadInputError, ConflictError } from "../../errors.ts";
import type { FrameSelector, LabelDefinition } from "../../catalog/catalog.ts";
import { library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { jsonBody, ok, type Route, route } from "../route.ts";
import {
  array,
  boolean,
  clearable,
  integer,
  object,
  optional,
  required,
  segment,
  string,
  strings,
  time,
} from "../schema.ts";
import { AUTHOR, LABEL, labelJson } from "../shapes.ts";

/** Most keys one label request may name. */
export const MAX_KEYS = 10_000;

/**
 * A list of label names in a request body: at most labels.max_per_request of them (refused before any is looked
 * at), none empty. Whether a name is allowed is the label store's to say.
 */
export function labelList(maxPerRequest: number, description: string) {
  return strings({
    description,
    count: {
      max: maxPerRequest,
      message: (name, n) =>
        `${name} names ${n} labels; one request may name at most ${maxPerRequest} (labels.max_per_request): ` +
        `send them in several requests, or raise labels.max_per_request`,
    },
    nonEmpty: (name) => `${name}: a label name must not be empty`,
  });
}

export function labelRoutes(ctx: ServerContext): Route[] {
  const { labels } = ctx;
  const max = ctx.labelLimits.maxPerRequest;
  return [
    route({
      method: "get",
      path: "/api/labels",
      summary: "The label set: every label with its colour, hotkey and counts of frames, clips and boxes.",
      ok: ok(
        "Labels, by name.",
        object({
          labels: array(LABEL),
          strict: boolean("labels.strict: only defined labels may be used (POST /api/labels adds one)."),
        }),
      ),
      handler: async () => ({
        labels: (await library(() => labels.list())).map(labelJson),
        strict: ctx.labelLimits.strict,
      }),
    }),

    route({
      method: "post",
      path: "/api/labels",
      summary: "Add a label to the label set, or set its colour and hotkey (also when the set is fixed).",
      description:
        "A field left out keeps its value; null clears it. A hotkey held by another label is a 409: " +
        "clear it there first.",
      body: jsonBody(object({
        name: required(string({ description: "The label." }), "give name (the label)"),
        color: clearable(string({ description: "Display colour #rrggbb; null: the UI picks one." })),
        hotkey: clearable(integer("Key 1-9 that picks the label in the UI; null: none.")),
        author: optional(string({ description: "Who makes the change (recorded in the journal)." })),
      }, { strict: true })),
      ok: ok("The label as it is now.", object({ label: LABEL })),
      errors: [409],
      handler: async ({ body }) => {
        const definition: LabelDefinition = {};
        if (body.color !== undefined) definition.color = body.color;
        if (body.hotkey !== undefined) definition.hotkey = body.hotkey;
        const label = await library(
          () => labels.defineLabel(body.name, definition, { author: body.author ?? null }),
        );
        return { label: labelJson(label) };
      },
    }),

    route({
      method: "post",
      path: "/api/frames/labels",
      summary: "Add and/or remove labels on frames given by keys, or by robot + from + to.",
      body: jsonBody(object({
        keys: optional(strings({
          description: "The frames' keys.",
          count: { min: 1, max: MAX_KEYS, message: () => `keys must hold 1 to ${MAX_KEYS} frame keys` },
        })),
        robot: optional(
          string({ description: "Instead of keys: the robot whose frames from..to to change." }),
        ),
        from: optional(time()),
        to: optional(time({ end: true })),
        add: optional(labelList(max, "Labels to put on the frames (created when new).")),
        remove: optional(labelList(max, "Labels to take off (their own labels; those of clips stay).")),
        author: optional(string({ description: "Who makes the change (recorded in the journal)." })),
      })),
      ok: ok("Counts of changed (frame, label) pairs.", object({ added: integer(), removed: integer() })),
      errors: [404],
      handler: async ({ body }) => {
        const add = body.add ?? [], remove = body.remove ?? [];
        if (add.length === 0 && remove.length === 0) {
          throw new BadInputError("give labels to add and/or remove");
        }
        const author = body.author ?? null;
        let target: FrameSelector;
        if (body.keys !== undefined) {
          if (body.robot !== undefined) throw new BadInputError("give keys or robot + from + to, not both");
          target = { keys: body.keys };
        } else {
          if (body.robot === undefined) throw new BadInputError("give keys, or robot + from + to");
          if (body.from === undefined || body.to === undefined) {
            throw new BadInputError("robot needs from and to");
          }
          target = { robotId: body.robot, fromMs: body.from, toMs: body.to };
        }
        // The label store checks names, keys (404) and labels to remove (404). With one list its bad input is
        // named after it (`add: label "a/b" may not ...`); with both, one call changes both or neither.
        if (remove.length === 0) {
          return {
            added: await library(() => labels.addLabels(target, add, { author }), { field: "add" }),
            removed: 0,
          };
        }
        if (add.length === 0) {
          return {
            added: 0,
            removed: await library(() => labels.removeLabels(target, remove, { author }), {
              field: "remove",
            }),
          };
        }
        return await library(() => labels.changeLabels(target, { add, remove }, { author }));
      },
    }),

    route({
      method: "post",
      path: "/api/labels/rename",
      summary: "Rename a label everywhere; merge into an existing one with merge: true.",
      body: jsonBody(object({
        from: required(string({ description: "The label." }), "give from (the label) and to (its new name)"),
        to: required(string({ description: "Its new name." }), "give from (the label) and to (its new name)"),
        merge: optional(boolean("Merge into `to` when it exists (else 409).")),
        author: optional(string({ description: "Who makes the change (recorded in the journal)." })),
      })),
      ok: ok("Renamed.", object({ from: string(), to: string(), merged: boolean() })),
      errors: [404, 409],
      handler: async ({ body: { from, to, merge = false, author } }) => {
        // A rename onto an existing label is a conflict unless asked to merge (the store checks the names).
        const merged = from !== to && await labels.exists(to);
        if (merged && !merge && await labels.exists(from)) {
          throw new ConflictError(
            `label ${JSON.stringify(to)} already exists: send merge: true to merge ${
              JSON.stringify(from)
            } into it`,
          );
        }
        await library(() => labels.renameLabel(from, to, { merge, author: author ?? null }), { field: "to" });
        return { from, to, merged };
      },
    }),

    route({
      method: "delete",
      path: "/api/labels/{name}",
      summary: "Delete a label from every frame and clip.",
      params: { name: segment("Label name.") },
      query: { author: AUTHOR },
      ok: ok("Deleted.", object({ deleted: string(), frames: integer(), clips: integer() })),
      errors: [404],
      handler: async ({ params: { name }, query }) => {
        const counts = await library(() => labels.deleteLabel(name, { author: query.author ?? null }));
        return { deleted: name, ...counts };
      },
    }),
  ];
}
