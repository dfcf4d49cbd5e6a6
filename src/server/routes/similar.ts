/**
 * Similar frames: nearest by perceptual hash to a stored frame or to an uploaded JPEG, optionally only those of a
 * review status or with no label.
 */
import { BadInputError, messageOf } from "../../errors.ts";
import type { ReviewStatus } from "../../catalog/catalog.ts";
import type { SimilarHit } from "../../library/similar.ts";
import { library } from "../boundary.ts";
import { frameRow, type ServerContext } from "../context.ts";
import { ok, type Route, route, upload } from "../route.ts";
import { array, int, object, string } from "../schema.ts";
import { FRAME, frameJson, FROM, hex, KEY, NO_LABEL, ROBOTS, STATUS_LIST, TO } from "../shapes.ts";

/** Largest JPEG accepted by POST /api/similar. */
export const MAX_UPLOAD_BYTES = 32 * 1024 * 1024;
const MAX_K = 1000;

const NEAREST = {
  k: int("How many frames.", { min: 1, max: MAX_K, fallback: 20 }),
  max_distance: int("Only frames at most this many bits away.", { min: 0, max: 4096 }),
  robot: ROBOTS,
  from: FROM,
  to: TO,
  status: STATUS_LIST,
  nolabel: NO_LABEL,
};

/** Most candidates looked at to find k frames of a review status or with no label (the index's own cap). */
const MAX_CANDIDATES = 10_000;

function nearestOptions(
  query: { k: number; max_distance?: number; robot: string[]; from?: number; to?: number },
) {
  return {
    k: query.k,
    maxDistance: query.max_distance,
    // No robot given means every robot (an empty list would match none).
    robots: query.robot.length ? query.robot : undefined,
    fromMs: query.from,
    toMs: query.to,
  };
}

/**
 * The k nearest that also pass the status and no-label filters. The index knows robots and times only, so those
 * two are applied to its results: more candidates are asked for (4x, then 16x, ... up to 10,000) until k pass or
 * the index has no more within the distance.
 */
async function nearestKept(
  query: { k: number; status: ReviewStatus[]; nolabel: boolean },
  nearest: (k: number) => Promise<SimilarHit[]>,
): Promise<SimilarHit[]> {
  const keep = (h: SimilarHit) =>
    (query.status.length === 0 || query.status.includes(h.status)) &&
    (!query.nolabel || h.labels.length === 0);
  if (query.status.length === 0 && !query.nolabel) return await nearest(query.k);
  for (let asked = Math.min(query.k * 4, MAX_CANDIDATES);; asked = Math.min(asked * 4, MAX_CANDIDATES)) {
    const found = await nearest(asked);
    const kept = found.filter(keep);
    if (kept.length >= query.k || found.length < asked || asked === MAX_CANDIDATES) {
      return kept.slice(0, query.k);
    }
  }
}

export function similarRoutes(ctx: ServerContext): Route[] {
  const { similar } = ctx;
  return [
    route({
      method: "get",
      path: "/api/frames/{key}/similar",
      summary: "The frames nearest to this one by aHash hamming distance (the frame itself left out).",
      params: { key: KEY },
      query: NEAREST,
      ok: ok("Best first.", object({ frames: array(FRAME) })),
      errors: [404],
      handler: async ({ params, query }) => {
        const row = await frameRow(ctx, params.key);
        if (!row.hash) {
          throw new BadInputError(`frame ${row.key} has no perceptual hash (filter ${row.filter})`);
        }
        const options = nearestOptions(query);
        const hits = await nearestKept(
          query,
          (k) => library(() => similar.nearestToKey(row.key, { ...options, k })),
        );
        return { frames: hits.map(frameJson) };
      },
    }),

    route({
      method: "post",
      path: "/api/similar",
      summary: "The frames nearest to an uploaded JPEG, hashed by the consumer's own filter.",
      query: NEAREST,
      body: upload(["image/jpeg", "image/jpg", "application/octet-stream"], {
        maxBytes: MAX_UPLOAD_BYTES,
        description: "The JPEG.",
        refused: (type) =>
          `upload the JPEG as the body with Content-Type: image/jpeg, not ${JSON.stringify(type)}`,
        empty: "the body is empty: upload a JPEG",
      }),
      ok: ok(
        "Best first.",
        object({ hash: string({ description: "The upload's hash in hex." }), frames: array(FRAME) }),
      ),
      handler: async ({ query, body }) => {
        const options = nearestOptions(query);
        let hash: Uint8Array;
        try {
          hash = await ctx.hasher.hash(body, options.robots?.length === 1 ? options.robots[0] : "");
        } catch (error) {
          throw new BadInputError(`the upload cannot be hashed: ${messageOf(error)}`, { cause: error });
        }
        const hits = await nearestKept(query, (k) => library(() => similar.nearest(hash, { ...options, k })));
        return { hash: hex(hash)!, frames: hits.map(frameJson) };
      },
    }),
  ];
}
