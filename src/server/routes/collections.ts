/**
 * Collections: named, ordered groups of clips ("docking attempts, week 47"), listed, changed, and exported as one
 * dataset (`GET /api/export?collection=ID`, see routes/export.ts).
 */
import type { Clip, Collection } from "../../catalog/catalog.ts";
import { MAX_COLLECTION_CLIPS, unknownCollection } from "../../catalog/rules.ts";
import { countFrames } from "../../library/search.ts";
import { library } from "../boundary.ts";
import type { ServerContext } from "../context.ts";
import { jsonBody, ok, reply, type Route, route } from "../route.ts";
import {
  array,
  id,
  type Infer,
  integer,
  named,
  nullable,
  object,
  optional,
  required,
  string,
  text,
} from "../schema.ts";
import { AUTHOR, CLIP, type ClipJson, clipJson, iso } from "../shapes.ts";

const COLLECTION_ID = id("Collection id.", "collection id");
const WHO = () => optional(string({ description: "Who makes the change (recorded in the journal)." }));
const CLIP_IDS = (description: string) => array(integer(), { description, maxItems: MAX_COLLECTION_CLIPS });

/** The fields of a collection as lists show it: its clips by id, in its order. */
const COLLECTION_FIELDS = {
  id: integer(),
  name: string(),
  note: string(),
  clip_ids: array(integer(), { description: "The clips, in the collection's order." }),
  created: string(),
  created_ms: integer(),
  author: nullable(string()),
};

const COLLECTION = named("Collection", object(COLLECTION_FIELDS));

/** One collection with its clips as clips (in its order) and the frames they hold now. */
const COLLECTION_DETAIL = named(
  "CollectionDetail",
  object({
    ...COLLECTION_FIELDS,
    clips: array(CLIP, { description: "The clips, in the collection's order." }),
    frames: integer("Frames in all its clips' spans now (a frame in two clips counts twice)."),
  }),
);

type CollectionJson = Infer<typeof COLLECTION>;
type CollectionDetailJson = Infer<typeof COLLECTION_DETAIL>;

function collectionJson(c: Collection): CollectionJson {
  return {
    id: c.id,
    name: c.name,
    note: c.note,
    clip_ids: c.clipIds,
    created: iso(c.createdMs),
    created_ms: c.createdMs,
    author: c.author,
  };
}

export function collectionRoutes(ctx: ServerContext): Route[] {
  const { catalog, labels } = ctx;
  /** A collection with its clips and their frames now (a clip deleted meanwhile is left out). */
  const detail = async (c: Collection): Promise<CollectionDetailJson> => {
    const clips: ClipJson[] = [];
    let frames = 0;
    for (const clipId of c.clipIds) {
      const clip: Clip | null = await library(() => labels.getClip(clipId));
      if (!clip) continue;
      const n = await library(() =>
        countFrames(catalog, { robots: [clip.robotId], fromMs: clip.fromMs, toMs: clip.toMs })
      );
      clips.push(clipJson(clip, n));
      frames += n;
    }
    return { ...collectionJson(c), clips, frames };
  };
  return [
    route({
      method: "get",
      path: "/api/collections",
      summary: "Collections, by name, with their clips' ids.",
      query: { name: text("Only the collection of exactly this name (none or one).") },
      ok: ok("Collections.", object({ collections: array(COLLECTION) })),
      handler: async ({ query }) => {
        const all = query.name === undefined
          ? await library(() => labels.listCollections())
          : [await library(() => labels.collectionByName(query.name!))].filter((c) => c !== null);
        return { collections: all.map(collectionJson) };
      },
    }),

    route({
      method: "get",
      path: "/api/collections/{id}",
      summary: "One collection with its clips (in its order) and the frames they hold.",
      params: { id: COLLECTION_ID },
      ok: ok("The collection.", COLLECTION_DETAIL),
      errors: [404],
      handler: async ({ params }) => {
        const c = await library(() => labels.getCollection(params.id));
        if (!c) throw unknownCollection(params.id);
        return await detail(c);
      },
    }),

    route({
      method: "post",
      path: "/api/collections",
      summary: "Create a collection: a unique name, a note and clips in order.",
      body: jsonBody(
        object({
          name: required(string(), "a collection needs a name"),
          note: optional(string()),
          clip_ids: optional(CLIP_IDS("The clips in order (each once; unknown ids are refused).")),
          author: WHO(),
        }, { strict: true }),
      ),
      ok: ok("The collection (its URL in Location).", COLLECTION_DETAIL, 201),
      errors: [404, 409],
      handler: async ({ body }) => {
        const c = await library(() =>
          labels.createCollection(
            { name: body.name, note: body.note ?? "", clipIds: body.clip_ids ?? [] },
            { author: body.author ?? null },
          )
        );
        return reply(await detail(c), { location: `/api/collections/${c.id}` });
      },
    }),

    route({
      method: "patch",
      path: "/api/collections/{id}",
      summary:
        "Change a collection: rename it, change its note, set its clips (clip_ids, in order), or add and remove clips.",
      params: { id: COLLECTION_ID },
      body: jsonBody(
        object({
          name: optional(string()),
          note: optional(string()),
          clip_ids: optional(CLIP_IDS("The clips from now on, in this order.")),
          add_clip_ids: optional(CLIP_IDS("Clips to append (those already in stay where they are).")),
          remove_clip_ids: optional(CLIP_IDS("Clips to take out.")),
          author: WHO(),
        }, { strict: true }),
      ),
      ok: ok("The collection.", COLLECTION_DETAIL),
      errors: [404, 409],
      handler: async ({ params, body }) => {
        const c = await library(() =>
          labels.updateCollection(params.id, {
            name: body.name,
            note: body.note,
            clipIds: body.clip_ids,
            addClipIds: body.add_clip_ids,
            removeClipIds: body.remove_clip_ids,
          }, { author: body.author ?? null })
        );
        return await detail(c);
      },
    }),

    route({
      method: "delete",
      path: "/api/collections/{id}",
      summary: "Delete a collection (its clips stay).",
      params: { id: COLLECTION_ID },
      query: { author: AUTHOR },
      ok: ok("Deleted.", object({ deleted: integer() })),
      errors: [404],
      handler: async ({ params, query }) => {
        await library(() => labels.deleteCollection(params.id, { author: query.author ?? null }));
        return { deleted: params.id };
      },
    }),
  ];
}
