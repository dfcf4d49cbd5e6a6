/**
 * Frames: search, a frame's detail, its image and its thumbnail; the next frame of a search still to label or to
 * review, and setting frames' review status.
 */
import { BadInputError, messageOf, NotFoundError, ServiceError } from "../../errors.ts";
import type { FrameRow, ReviewStatus, SearchFilter } from "../../catalog/catalog.ts";
import { countFrames, MAX_LIMIT, nextInSearch, searchFrames } from "../../library/search.ts";
import { library } from "../boundary.ts";
import { frameRow, type ServerContext } from "../context.ts";
import { file, jsonBody, ok, type Route, route } from "../route.ts";
import {
  array,
  choice,
  flag,
  int,
  integer,
  list,
  literal,
  nullable,
  object,
  optional,
  present,
  string,
  strings,
  text,
} from "../schema.ts";
import { MAX_KEYS } from "./labels.ts";
import {
  FRAME,
  FRAME_DETAIL,
  frameEtag,
  frameJson,
  FROM,
  hex,
  iso,
  KEY,
  NO_LABEL,
  ROBOTS,
  STATUS_LIST,
  TIER_LIST,
  TO,
} from "../shapes.ts";

const IMMUTABLE = "public, max-age=31536000, immutable";

/** The filter parameters of a search, shared by GET /api/frames and GET /api/export (the same frames). */
export const SEARCH_FILTER = {
  robot: ROBOTS,
  from: FROM,
  to: TO,
  label: list("Frames with this label, own or from a clip (repeatable: any of them)."),
  all_labels: flag("With several labels: frames with all of them."),
  tier: TIER_LIST,
};

/**
 * The filters of GET /api/frames and of the next frame in a search: SEARCH_FILTER and the review status and "no
 * label" (the export does not take these two yet: its plan keeps the filters it knows).
 */
export const FRAME_FILTER = {
  ...SEARCH_FILTER,
  status: STATUS_LIST,
  nolabel: NO_LABEL,
};

const ORDER = choice(["newest", "oldest"] as const, "newest", "Newest (default) or oldest first.");

/** The search filter of those parameters. */
export function searchFilter(
  query: {
    robot: string[];
    from?: number;
    to?: number;
    label: string[];
    all_labels: boolean;
    tier: FrameRow["tier"][];
    status?: ReviewStatus[];
    nolabel?: boolean;
  },
): SearchFilter {
  if (query.all_labels && query.label.length === 0) {
    throw new BadInputError("all_labels needs at least one label");
  }
  return {
    robots: query.robot,
    fromMs: query.from,
    toMs: query.to,
    labels: query.label,
    allLabels: query.all_labels,
    tiers: query.tier,
    ...(query.status?.length ? { status: query.status } : {}),
    ...(query.nolabel ? { noLabel: true } : {}),
  };
}

/** Whether a request's If-None-Match names this entity tag (or *). */
function notModified(request: Request, etag: string): boolean {
  const header = request.headers.get("if-none-match");
  if (!header) return false;
  const bare = etag.replace(/^W\//, "");
  return header.split(",").some((t) => {
    const tag = t.trim();
    return tag === "*" || tag.replace(/^W\//, "") === bare;
  });
}

function jpeg(bytes: Uint8Array, headers: Record<string, string>): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: { ...headers, "content-type": "image/jpeg", "content-length": String(bytes.length) },
  });
}

const CACHED = { ETag: "The entity tag (the frame's).", "Cache-Control": IMMUTABLE };
const CONDITIONAL = { "If-None-Match": "An ETag from before: 304 when it still matches." };

export function frameRoutes(ctx: ServerContext): Route[] {
  const { catalog } = ctx;
  const notHeld = (row: FrameRow) =>
    new NotFoundError(`frame ${row.key} is in the catalog (tier ${row.tier}) but no store holds it`);
  return [
    route({
      method: "get",
      path: "/api/frames",
      summary: "Search frames; keyset pages (pass next_cursor as cursor).",
      query: {
        ...FRAME_FILTER,
        order: ORDER,
        limit: int(`Frames per page.`, { min: 1, max: MAX_LIMIT, fallback: 50 }),
        cursor: text("next_cursor of the previous page of the same search."),
        count: flag("Also return the total number of matching frames."),
      },
      ok: ok(
        "A page of frames.",
        object({
          frames: array(FRAME),
          next_cursor: nullable(string()),
          total: optional(integer("With count=true: how many frames match.")),
        }),
      ),
      handler: async ({ query }) => {
        const filter = searchFilter(query);
        const page = await library(() =>
          searchFrames(catalog, {
            ...filter,
            order: query.order,
            limit: query.limit,
            cursor: query.cursor ?? null,
          }), { filter: true });
        return {
          frames: page.hits.map(frameJson),
          next_cursor: page.nextCursor,
          ...(query.count
            ? { total: await library(() => countFrames(catalog, filter), { filter: true }) }
            : {}),
        };
      },
    }),

    route({
      method: "get",
      path: "/api/frames/{key}",
      summary: "A frame's metadata, labels (own and from clips), clips and its robot's previous/next frame.",
      params: { key: KEY },
      ok: ok("The frame.", FRAME_DETAIL),
      errors: [404],
      handler: async ({ params }) => {
        const row = await frameRow(ctx, params.key);
        const [hit] = await catalog.withLabels([row]);
        const near = await catalog.adjacentKeys(row.robotId, row);
        return {
          ...frameJson(hit),
          etag: row.etag,
          filter: row.filter,
          filter_distance: row.distance,
          hash: hex(row.hash),
          stored_time: iso(row.storedMs),
          tier_changed_time: iso(row.tierChangedMs),
          previous_key: near.previous,
          next_key: near.next,
        };
      },
    }),

    route({
      method: "get",
      path: "/api/frames/{key}/next",
      summary: "The next frame after this one, in the order of a search, still to label or to review.",
      description: "want=unlabelled: the next frame with no own label and no box; want=review: the next " +
        "labelled frame not yet reviewed or rejected. The filters are those of GET /api/frames (the frame " +
        "itself need not match them). key is null when none is left after it in that order.",
      params: { key: KEY },
      query: {
        ...FRAME_FILTER,
        want: choice(
          ["unlabelled", "review"] as const,
          "unlabelled",
          "unlabelled (default): frames to label; review: labelled frames to review.",
        ),
        order: ORDER,
      },
      ok: ok("The next frame's key, or null.", object({ key: nullable(string()) })),
      errors: [404],
      handler: async ({ params, query }) => {
        const filter = searchFilter(query);
        const row = await frameRow(ctx, params.key);
        const next = await library(
          () => nextInSearch(catalog, filter, row, { want: query.want, order: query.order }),
          { filter: true },
        );
        return { key: next?.key ?? null };
      },
    }),

    route({
      method: "post",
      path: "/api/frames/review",
      summary: "Mark frames reviewed or rejected, or clear that (status null: back to labelled/unlabelled).",
      body: jsonBody(object({
        keys: strings({
          description: "The frames' keys.",
          count: { min: 1, max: MAX_KEYS, message: () => `keys must hold 1 to ${MAX_KEYS} frame keys` },
          nonEmpty: () => "keys: a frame key must not be empty",
        }),
        status: present(
          nullable(literal(["reviewed", "rejected"] as const), "null clears the review."),
          "give status: reviewed, rejected, or null to clear the review",
        ),
        author: optional(string({ description: "Who makes the change (recorded in the journal)." })),
      })),
      ok: ok("How many frames' status changed.", object({ changed: integer() })),
      errors: [404],
      handler: async ({ body }) => ({
        changed: await library(() =>
          ctx.labels.setReview(body.keys, body.status, { author: body.author ?? null })
        ),
      }),
    }),

    route({
      method: "get",
      path: "/api/frames/{key}/image",
      summary: "The JPEG, from whichever tier holds it.",
      params: { key: KEY },
      headers: CONDITIONAL,
      ok: file("image/jpeg", "The frame.", CACHED),
      also: { 304: "If-None-Match matched the ETag." },
      errors: [404, 502],
      handler: async ({ request, params }) => {
        const row = await frameRow(ctx, params.key);
        const etag = frameEtag(row);
        const headers = { etag, "cache-control": IMMUTABLE };
        if (notModified(request, etag)) return new Response(null, { status: 304, headers });
        const bytes = await ctx.load(row.key);
        if (!bytes) throw notHeld(row);
        return jpeg(bytes, headers);
      },
    }),

    route({
      method: "get",
      path: "/api/frames/{key}/thumb",
      summary: "A small colour JPEG thumbnail (1/8 scale, from the DC coefficients).",
      params: { key: KEY },
      headers: CONDITIONAL,
      ok: file("image/jpeg", "The thumbnail.", CACHED),
      also: { 304: "If-None-Match matched the ETag." },
      errors: [404, 502],
      handler: async ({ request, params }) => {
        const row = await frameRow(ctx, params.key);
        const etag = frameEtag(row).replace(/^"/, '"thumb-');
        const headers = { etag, "cache-control": IMMUTABLE };
        if (notModified(request, etag)) return new Response(null, { status: 304, headers });
        let thumb: Uint8Array | null;
        try {
          thumb = await ctx.thumbnails.get(row.key);
        } catch (error) {
          if (error instanceof ServiceError) throw error;
          throw new Error(`cannot make a thumbnail of ${row.key}: ${messageOf(error)}`, { cause: error });
        }
        if (!thumb) throw notHeld(row);
        return jpeg(thumb, headers);
      },
    }),
  ];
}
