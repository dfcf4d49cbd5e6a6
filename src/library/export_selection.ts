/**
 * Which frames an export takes, beyond search's filter: a clip (`clip=ID`: its robot and span) or a collection
 * (`collection=ID`: its clips, as one dataset), narrowed by the rest of the filter (labels, tiers, review status).
 * A clip or collection already names robots and spans, so they are not combined with `robot`, `from` or `to`.
 *
 * The frames are read as parts, each a search over one span:
 * - for the dataset formats and MCAP (`mergedParts`): every frame once. A collection's clips are merged per robot
 *   where they overlap or touch, and the parts go by start time; a search is one part.
 * - for MP4 (`videoParts`), a video is made of parts played one after the other: a clip is one; a collection's
 *   clips are parts in the collection's order (a frame in two overlapping clips is in the video twice, as the
 *   clips are); a search is one part per robot (by robot id), so the camera never flips between robots.
 */
import type { Catalog, Clip, Collection, SearchFilter } from "../catalog/catalog.ts";
import { BadInputError, NotFoundError } from "../errors.ts";

/** How an export names its selection. */
export interface SelectionIds {
  /** A clip's id. */
  clip?: number;
  /** A collection's id. */
  collection?: number;
}

export interface ExportSelection {
  kind: "search" | "clip" | "collection";
  /** The clip of `clip=ID`. */
  clip: Clip | null;
  collection: Collection | null;
  /** The clip, or the collection's clips in its order; none for a search. */
  clips: Clip[];
}

/** One span of the frames to read: search's filter for it, and the clip it is (if it is exactly one). */
export interface ExportPart {
  filter: SearchFilter;
  clip: Clip | null;
  /** The one robot of the part, when it has one. */
  robot: string | null;
}

/** Looks up the clip or collection an export names; refuses both at once and either with robot/from/to. */
export async function resolveSelection(
  catalog: Catalog,
  filter: SearchFilter,
  ids: SelectionIds,
): Promise<ExportSelection> {
  if (ids.clip !== undefined && ids.collection !== undefined) {
    throw new BadInputError("name a clip or a collection to export, not both");
  }
  if (ids.clip === undefined && ids.collection === undefined) {
    return { kind: "search", clip: null, collection: null, clips: [] };
  }
  const what = ids.clip !== undefined ? `clip ${ids.clip}` : `collection ${ids.collection}`;
  if (filter.robots?.length || filter.fromMs !== undefined || filter.toMs !== undefined) {
    throw new BadInputError(
      `${what} already names its robots and time spans: leave out robot, from and to (labels, tiers and ` +
        `status still narrow it)`,
    );
  }
  const labels = catalog.labels();
  if (ids.clip !== undefined) {
    const clip = await labels.getClip(ids.clip);
    if (!clip) throw new NotFoundError(`no clip ${ids.clip}: list the clips with GET /api/clips`);
    return { kind: "clip", clip, collection: null, clips: [clip] };
  }
  const collection = await labels.getCollection(ids.collection!);
  if (!collection) {
    throw new NotFoundError(
      `no collection ${ids.collection}: list the collections with GET /api/collections`,
    );
  }
  const clips: Clip[] = [];
  for (const id of collection.clipIds) {
    const clip = await labels.getClip(id);
    if (clip) clips.push(clip); // a clip deleted meanwhile has left the collection
  }
  return { kind: "collection", clip: null, collection, clips };
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function clipPart(filter: SearchFilter, clip: Clip): ExportPart {
  return {
    filter: { ...filter, robots: [clip.robotId], fromMs: clip.fromMs, toMs: clip.toMs },
    clip,
    robot: clip.robotId,
  };
}

/** The parts that read every selected frame once, by start time (see the module comment). */
export function mergedParts(filter: SearchFilter, selection: ExportSelection): ExportPart[] {
  if (selection.kind === "search") {
    return [{ filter, clip: null, robot: filter.robots?.length === 1 ? filter.robots[0] : null }];
  }
  const spans = [...selection.clips].sort((a, b) => byId(a.robotId, b.robotId) || a.fromMs - b.fromMs);
  const merged: { robot: string; fromMs: number; toMs: number; clips: Clip[] }[] = [];
  for (const c of spans) {
    const last = merged.at(-1);
    if (last && last.robot === c.robotId && c.fromMs <= last.toMs + 1) {
      last.toMs = Math.max(last.toMs, c.toMs);
      last.clips.push(c);
    } else merged.push({ robot: c.robotId, fromMs: c.fromMs, toMs: c.toMs, clips: [c] });
  }
  return merged
    .sort((a, b) => a.fromMs - b.fromMs || byId(a.robot, b.robot))
    .map((m) => ({
      filter: { ...filter, robots: [m.robot], fromMs: m.fromMs, toMs: m.toMs },
      clip: m.clips.length === 1 ? m.clips[0] : null,
      robot: m.robot,
    }));
}

/** The parts of a video, in playing order (see the module comment). */
export async function videoParts(
  catalog: Catalog,
  filter: SearchFilter,
  selection: ExportSelection,
): Promise<ExportPart[]> {
  if (selection.kind !== "search") return selection.clips.map((c) => clipPart(filter, c));
  const robots = filter.robots?.length
    ? [...new Set(filter.robots)].sort(byId)
    : (await catalog.robotSummaries()).map((r) => r.robotId).sort(byId);
  return robots.map((robot) => ({ filter: { ...filter, robots: [robot] }, clip: null, robot }));
}

/** The selection in words, for logs and the files' descriptions. */
export function describeSelection(selection: ExportSelection): string | null {
  if (selection.kind === "clip") return `clip ${selection.clip!.id} (${selection.clip!.name})`;
  if (selection.kind === "collection") {
    return `collection ${selection.collection!.id} (${
      selection.collection!.name
    }, ${selection.clips.length} clips)`;
  }
  return null;
}
