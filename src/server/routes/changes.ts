/** The change journal of labels, clips, boxes and reviews, and undoing an entry of it. */
import type { Change } from "../../catalog/catalog.ts";
import { undoChange } from "../../catalog/undo.ts";
import { MAX_LIMIT } from "../../library/search.ts";
import { library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { jsonBody, ok, type Route, route } from "../route.ts";
import {
  anyObject,
  array,
  at,
  choice,
  id,
  type Infer,
  int,
  integer,
  named,
  nullable,
  object,
  optional,
  string,
  text,
} from "../schema.ts";
import { iso } from "../shapes.ts";

/** One journal entry as the API shows it. */
const CHANGE = named(
  "Change",
  object({
    id: integer(),
    time: string(),
    at_ms: integer(),
    author: nullable(string()),
    action: string({
      description: "label.add, label.remove, label.rename, label.delete, label.define, clip.create, " +
        "clip.update, clip.delete, box.add, box.update, box.delete, review.set, collection.create, " +
        "collection.update or collection.delete.",
    }),
    target: string({
      description:
        "A frame key, frames (keys in the detail), robot:ID, label:NAME, clip:ID or collection:ID.",
    }),
    detail: anyObject("What changed; undoOf: N when the entry undid entry N."),
  }),
);

function changeJson(c: Change): Infer<typeof CHANGE> {
  return {
    id: c.id,
    time: iso(c.atMs),
    at_ms: c.atMs,
    author: c.author,
    action: c.action,
    target: c.target,
    detail: c.detail,
  };
}

export function changeRoutes(ctx: ServerContext): Route[] {
  return [
    route({
      method: "get",
      path: "/api/changes",
      summary: "The change journal (labels, clips, boxes, reviews), oldest first unless order=newest.",
      query: {
        after: int("Only entries after this id (for polling).", { min: 0, max: Number.MAX_SAFE_INTEGER }),
        target: text(
          "Only entries for this target (a key, robot:ID, label:NAME, clip:ID, collection:ID, frames).",
        ),
        since: at("Only entries at or after this time."),
        limit: int("At most this many.", { min: 1, max: MAX_LIMIT, fallback: 100 }),
        order: choice(["oldest", "newest"] as const, "oldest", "oldest (default) or newest first."),
      },
      ok: ok("Entries.", object({ changes: array(CHANGE) })),
      handler: async ({ query }) => {
        const changes = await library(() =>
          ctx.labels.changes({
            afterId: query.after,
            target: query.target,
            sinceMs: query.since,
            limit: query.limit,
            newest: query.order === "newest",
          })
        );
        return { changes: changes.map(changeJson) };
      },
    }),

    route({
      method: "post",
      path: "/api/changes/{id}/undo",
      summary: "Undo a journal entry: the inverse change is made and journalled (its detail has undoOf).",
      description:
        "Any entry can be undone once: a second undo of it is a 409 naming the entry that undid it " +
        "(undo that one to redo). Entries from before undo data was kept, or too large to keep it, are a 400.",
      params: { id: id("Journal entry id.", "change id") },
      body: jsonBody(object({
        author: optional(string({ description: "Who undoes it (recorded in the journal)." })),
      }, { strict: true })),
      ok: ok("The new entries the undo made.", object({ changes: array(CHANGE) })),
      errors: [404, 409],
      handler: async ({ params, body }) => {
        const made = await library(() => undoChange(ctx.labels, params.id, { author: body.author ?? null }));
        return { changes: made.map(changeJson) };
      },
    }),
  ];
}
