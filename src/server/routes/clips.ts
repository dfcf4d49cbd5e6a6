/** Clips: a robot's time span with a name, a note and labels of its own. */
import { BadInputError } from "../../errors.ts";
import type { Clip } from "../../catalog/catalog.ts";
import { countFrames } from "../../library/search.ts";
import { library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { jsonBody, ok, reply, type Route, route } from "../route.ts";
import { array, id, integer, object, optional, required, robots, string, text, time } from "../schema.ts";
import { AUTHOR, CLIP, type ClipJson, clipJson, FROM, TO } from "../shapes.ts";
import { labelList } from "./labels.ts";

const CLIP_ID = id("Clip id.", "clip id");
const WHO = () => optional(string({ description: "Who makes the change (recorded in the journal)." }));

export function clipRoutes(ctx: ServerContext): Route[] {
  const { catalog, labels } = ctx;
  const max = ctx.labelLimits.maxPerRequest;
  /** A clip as the API shows it, with the frames of its span now. */
  const shown = async (c: Clip): Promise<ClipJson> =>
    clipJson(
      c,
      await library(() => countFrames(catalog, { robots: [c.robotId], fromMs: c.fromMs, toMs: c.toMs })),
    );
  return [
    route({
      method: "get",
      path: "/api/clips",
      summary: "Clips, oldest span first.",
      query: {
        robot: robots("Only this robot's (give at most one)."),
        label: text("Only clips with this label."),
        from: FROM,
        to: TO,
      },
      ok: ok("Clips.", object({ clips: array(CLIP) })),
      handler: async ({ query }) => {
        if (query.robot.length > 1) throw new BadInputError("give at most one robot");
        const clips = await library(() =>
          labels.listClips({
            robotId: query.robot[0],
            label: query.label,
            fromMs: query.from,
            toMs: query.to,
          })
        );
        const out: ClipJson[] = [];
        for (const c of clips) out.push(await shown(c));
        return { clips: out };
      },
    }),

    route({
      method: "post",
      path: "/api/clips",
      summary: "Create a clip: a robot's time span with a name, note and labels.",
      body: jsonBody(object({
        robot: required(string(), "a clip needs robot"),
        from: required(time(), "a clip needs from and to"),
        to: required(time({ end: true }), "a clip needs from and to"),
        name: required(string(), "a clip needs a name"),
        note: optional(string()),
        labels: optional(labelList(max, "The clip's labels (created when new).")),
        author: WHO(),
      })),
      ok: ok("The clip (its URL in Location).", CLIP, 201),
      handler: async ({ body }) => {
        const clip = await library(() =>
          labels.createClip({
            robotId: body.robot,
            fromMs: body.from,
            toMs: body.to,
            name: body.name,
            note: body.note ?? "",
            labels: body.labels ?? [],
          }, { author: body.author ?? null })
        );
        return reply(await shown(clip), { location: `/api/clips/${clip.id}` });
      },
    }),

    route({
      method: "patch",
      path: "/api/clips/{id}",
      summary: "Change a clip; labels replaces its labels, add_labels/remove_labels edit them.",
      params: { id: CLIP_ID },
      body: jsonBody(
        object({
          robot: optional(string()),
          from: optional(time()),
          to: optional(time({ end: true })),
          name: optional(string()),
          note: optional(string()),
          labels: optional(labelList(max, "The clip's labels from now on.")),
          add_labels: optional(labelList(max, "Labels to add to the clip.")),
          remove_labels: optional(labelList(max, "Labels to take off the clip.")),
          author: WHO(),
        }, { strict: true }),
      ),
      ok: ok("The clip.", CLIP),
      errors: [404],
      handler: async ({ params, body }) => {
        const clip = await library(() =>
          labels.updateClip(params.id, {
            robotId: body.robot,
            fromMs: body.from,
            toMs: body.to,
            name: body.name,
            note: body.note,
            labels: body.labels,
            addLabels: body.add_labels,
            removeLabels: body.remove_labels,
          }, { author: body.author ?? null })
        );
        return await shown(clip);
      },
    }),

    route({
      method: "delete",
      path: "/api/clips/{id}",
      summary: "Delete a clip (its labels stay defined).",
      params: { id: CLIP_ID },
      query: { author: AUTHOR },
      ok: ok("Deleted.", object({ deleted: integer() })),
      errors: [404],
      handler: async ({ params, query }) => {
        await library(() => labels.deleteClip(params.id, { author: query.author ?? null }));
        return { deleted: params.id };
      },
    }),
  ];
}
