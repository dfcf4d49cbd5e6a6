/**
 * Playback: the frames of a clip, a robot's time span or a search in capture order, each with its labels and
 * boxes, in big compact pages, so the web UI's player (web/views/player.js) knows every frame's time and overlay
 * before it fetches the images. Pages come from the catalog's search (findFrames and withLabels through
 * searchFrames, 1000 rows at a time), with its keyset cursor: frames stored meanwhile never shift a page.
 */
import { BadInputError, NotFoundError } from "../../errors.ts";
import type { SearchFilter } from "../../catalog/catalog.ts";
import { countFrames, MAX_LIMIT, searchFrames } from "../../library/search.ts";
import { library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { ok, type Route, route } from "../route.ts";
import { array, flag, int, integer, named, nullable, object, optional, string, text } from "../schema.ts";
import { BOX, boxJson, CLIP, type ClipJson, clipJson } from "../shapes.ts";
import { FRAME_FILTER, searchFilter } from "./frames.ts";

/** Most frames one playback page holds (a minute at 10 fps is 600). */
export const MAX_PLAYBACK_LIMIT = 5000;
export const DEFAULT_PLAYBACK_LIMIT = 2000;

const PLAYBACK_FRAME = named(
  "PlaybackFrame",
  object({
    key: string(),
    robot_id: string(),
    timestamp_ms: integer("Capture time, ms since the epoch."),
    labels: array(string(), { description: "Its own labels, its boxes' classes and its clips' labels." }),
    boxes: array(BOX, { description: "Its boxes, by id." }),
  }),
);

export function playbackRoutes(ctx: ServerContext): Route[] {
  const { catalog, labels } = ctx;
  return [
    route({
      method: "get",
      path: "/api/playback",
      summary:
        "The frames of a clip, a span or a search, oldest first, with labels and boxes, for the player.",
      description:
        "clip=ID plays the clip's robot over its span (instead of robot, from and to); the other " +
        "filters are those of GET /api/frames. Pages of up to 5000 frames: pass next_cursor as cursor. " +
        "from_ms/to_ms: the span asked for (the clip's, or from/to), null where none was given.",
      query: {
        clip: int("A clip: its robot and span are played.", { min: 1, max: Number.MAX_SAFE_INTEGER }),
        ...FRAME_FILTER,
        limit: int("Frames per page.", {
          min: 1,
          max: MAX_PLAYBACK_LIMIT,
          fallback: DEFAULT_PLAYBACK_LIMIT,
        }),
        cursor: text("next_cursor of the previous page of the same playback."),
        count: flag("Also return how many frames there are to play."),
      },
      ok: ok(
        "A page of frames, oldest first.",
        object({
          clip: nullable(CLIP, "The clip played (clip=ID), else null."),
          from_ms: nullable(integer("Start of the span played (inclusive).")),
          to_ms: nullable(integer("End of the span played (inclusive).")),
          frames: array(PLAYBACK_FRAME),
          next_cursor: nullable(string()),
          total: optional(integer("With count=true: how many frames there are to play.")),
        }),
      ),
      errors: [404],
      handler: async ({ query }) => {
        let filter: SearchFilter = searchFilter(query);
        let clip: ClipJson | null = null;
        if (query.clip !== undefined) {
          if (query.robot.length || query.from !== undefined || query.to !== undefined) {
            throw new BadInputError(
              `give clip=${query.clip} or robot, from and to, not both: the clip sets its robot and span`,
            );
          }
          const found = await library(() => labels.getClip(query.clip!));
          if (!found) {
            throw new NotFoundError(`no clip ${query.clip}: see GET /api/clips for the clips there are`);
          }
          filter = { ...filter, robots: [found.robotId], fromMs: found.fromMs, toMs: found.toMs };
          clip = clipJson(found, await library(() => countFrames(catalog, filter), { filter: true }));
        }
        const frames = [];
        let cursor = query.cursor ?? null;
        do {
          const page = await library(() =>
            searchFrames(catalog, {
              ...filter,
              order: "oldest",
              limit: Math.min(MAX_LIMIT, query.limit - frames.length),
              cursor,
            }), { filter: true });
          for (const hit of page.hits) {
            frames.push({
              key: hit.frame.key,
              robot_id: hit.frame.robotId,
              timestamp_ms: hit.frame.timestampMs,
              labels: hit.labels,
              boxes: hit.boxes.map(boxJson),
            });
          }
          cursor = page.nextCursor;
        } while (cursor && frames.length < query.limit);
        return {
          clip,
          from_ms: filter.fromMs ?? null,
          to_ms: filter.toMs ?? null,
          frames,
          next_cursor: cursor,
          ...(query.count
            ? { total: clip?.frames ?? await library(() => countFrames(catalog, filter), { filter: true }) }
            : {}),
        };
      },
    }),
  ];
}
