/** Robots: one summary per robot, and a robot's frames over time. */
import { BadInputError, NotFoundError } from "../../errors.ts";
import type { ServerContext } from "../context.ts";
import { ok, type Route, route } from "../route.ts";
import { array, choice, integer, object, segment, string } from "../schema.ts";
import { FROM, iso, ROBOT, TO } from "../shapes.ts";

const BUCKETS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

export function robotRoutes(ctx: ServerContext): Route[] {
  const { catalog } = ctx;
  return [
    route({
      method: "get",
      path: "/api/robots",
      summary: "Every robot with its frame count, bytes and first/last capture time.",
      ok: ok("Robots.", object({ robots: array(ROBOT) })),
      handler: async () => {
        const robots = [];
        for (const r of await catalog.robotSummaries()) {
          robots.push({
            robot_id: r.robotId,
            frames: r.frames,
            bytes: r.bytes,
            first_capture_time: iso(r.firstMs),
            last_capture_time: iso(r.lastMs),
            first_timestamp_ms: r.firstMs,
            last_timestamp_ms: r.lastMs,
            latest_key: (await catalog.newest(r.robotId))?.key ?? null,
          });
        }
        return { robots };
      },
    }),

    route({
      method: "get",
      path: "/api/robots/{robot}/timeline",
      summary: "Frames per minute, hour or day of one robot (buckets without frames are left out).",
      params: { robot: segment("Robot id.") },
      query: {
        bucket: choice(
          ["auto", "minute", "hour", "day"] as const,
          "auto",
          "Bucket width; auto: minute up to 6 hours of frames, hour up to 60 days, else day.",
        ),
        from: FROM,
        to: TO,
      },
      ok: ok(
        "Buckets.",
        object({
          robot_id: string(),
          bucket: string(),
          bucket_ms: integer(),
          first_timestamp_ms: integer(),
          last_timestamp_ms: integer(),
          frames: integer(),
          buckets: array(object({ start: string(), start_ms: integer(), frames: integer() })),
        }),
      ),
      errors: [404],
      handler: async ({ params: { robot }, query }) => {
        const span = await catalog.robotSummary(robot);
        if (!span) throw new NotFoundError(`no frames of robot ${JSON.stringify(robot)} in the catalog`);
        const from = query.from ?? span.firstMs, to = query.to ?? span.lastMs;
        // auto: minutes up to 6 hours, hours up to 60 days, days beyond.
        const bucket = query.bucket !== "auto"
          ? query.bucket
          : to - from <= 6 * BUCKETS.hour
          ? "minute"
          : to - from <= 60 * BUCKETS.day
          ? "hour"
          : "day";
        const width = BUCKETS[bucket];
        if ((to - from) / width > 100_000) {
          throw new BadInputError(
            `from..to spans more than 100000 ${bucket}s: choose a coarser bucket or a shorter span`,
          );
        }
        const buckets = await catalog.timeline(robot, from, to, width);
        return {
          robot_id: robot,
          bucket,
          bucket_ms: width,
          first_timestamp_ms: span.firstMs,
          last_timestamp_ms: span.lastMs,
          frames: buckets.reduce((sum, b) => sum + b.frames, 0),
          buckets: buckets.map((b) => ({ start: iso(b.startMs), start_ms: b.startMs, frames: b.frames })),
        };
      },
    }),
  ];
}
