/** The change journal of labels and clips. */
import { MAX_LIMIT } from "../../library/search.ts";
import { library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { ok, type Route, route } from "../route.ts";
import { anyObject, array, at, choice, int, integer, nullable, object, string, text } from "../schema.ts";
import { iso } from "../shapes.ts";

export function changeRoutes(ctx: ServerContext): Route[] {
  return [
    route({
      method: "get",
      path: "/api/changes",
      summary: "The change journal (labels and clips), oldest first unless order=newest.",
      query: {
        after: int("Only entries after this id (for polling).", { min: 0, max: Number.MAX_SAFE_INTEGER }),
        target: text("Only entries for this target (a key, robot:ID, label:NAME, clip:ID)."),
        since: at("Only entries at or after this time."),
        limit: int("At most this many.", { min: 1, max: MAX_LIMIT, fallback: 100 }),
        order: choice(["oldest", "newest"] as const, "oldest", "oldest (default) or newest first."),
      },
      ok: ok(
        "Entries.",
        object({
          changes: array(object({
            id: integer(),
            time: string(),
            at_ms: integer(),
            author: nullable(string()),
            action: string(),
            target: string(),
            detail: anyObject(),
          })),
        }),
      ),
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
        return {
          changes: changes.map((c) => ({
            id: c.id,
            time: iso(c.atMs),
            at_ms: c.atMs,
            author: c.author,
            action: c.action,
            target: c.target,
            detail: c.detail,
          })),
        };
      },
    }),
  ];
}
