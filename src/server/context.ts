/**
 * What the route modules (src/server/routes/) work with: the catalog, the label store, the similarity index, the
 * thumbnails, the exports and the stores, as createApp (app.ts) opened them; and what several routes ask of them
 * (a frame's row, its pixel size).
 */
import type { Catalog, FrameRow, LabelLimits, LabelStore } from "../catalog/catalog.ts";
import { BadInputError, messageOf, NotFoundError, ServiceError } from "../errors.ts";
import { type ImageSize, jpegSize } from "../library/image_size.ts";
import type { ExportTracker } from "../library/export_stream.ts";
import type { JpegHasher, SimilarFrames } from "../library/similar.ts";
import type { Thumbnails } from "../library/thumbs.ts";
import type { Logger } from "../log.ts";

export interface ServerContext {
  catalog: Catalog;
  labels: LabelStore;
  /** `[labels]` limits in force. */
  labelLimits: LabelLimits;
  /** rustfs.prefix: frame keys start with it; image names in imports and exports are keys without it. */
  framePrefix: string;
  similar: SimilarFrames;
  /** Hashes uploads as the consumer does. */
  hasher: Pick<JpegHasher, "hash">;
  thumbnails: Thumbnails;
  exports: ExportTracker;
  /** A frame's JPEG from whichever tier holds it, null when none does; throws when a store fails. */
  fetchFrame(key: string): Promise<Uint8Array | null>;
  /** The same, a store's failure as a ServiceError("store") naming the frame (answered with 502). */
  load(key: string): Promise<Uint8Array | null>;
  /** Waits between attempts of a failing frame fetch during an export (default: export.ts's). */
  exportRetryDelaysMs?: number[];
  log: Logger;
}

/** The catalog's row of a frame; NotFoundError (404) when the catalog does not have the key. */
export async function frameRow(ctx: ServerContext, key: string): Promise<FrameRow> {
  const row = await ctx.catalog.get(key);
  if (!row) throw new NotFoundError(`no frame ${JSON.stringify(key)} in the catalog`);
  return row;
}

/** Frames whose pixel size a server keeps (a few dozen bytes each): far more than a labelling session visits. */
export const SIZE_CACHE_ENTRIES = 20_000;

/** Per server (per context): frame key -> pixel size, least recently used first. */
const sizeCaches = new WeakMap<ServerContext, Map<string, ImageSize>>();

/**
 * A frame's width and height in pixels, read from its stored JPEG through the same stores that serve
 * /api/frames/{key}/image: boxes are checked against the real image, never against a size a client sends. Sizes
 * are kept in a bounded map (a stored frame never changes). Null when no store holds the frame; the JPEG
 * reader's BadInputError when the stored object is not a readable JPEG; a ServiceError when a store fails.
 */
export async function storedSize(ctx: ServerContext, row: FrameRow): Promise<ImageSize | null> {
  let cache = sizeCaches.get(ctx);
  if (!cache) sizeCaches.set(ctx, cache = new Map());
  const known = cache.get(row.key);
  if (known) {
    cache.delete(row.key); // to the young end
    cache.set(row.key, known);
    return known;
  }
  const bytes = await ctx.load(row.key);
  if (!bytes) return null;
  const size = jpegSize(bytes);
  cache.set(row.key, size);
  if (cache.size > SIZE_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  return size;
}

/**
 * `storedSize` for a request about one frame: NotFoundError (404) when no store holds it; a stored object that is
 * no readable JPEG is the store's fault (502), not the client's.
 */
export async function frameSize(ctx: ServerContext, row: FrameRow): Promise<ImageSize> {
  let size: ImageSize | null;
  try {
    size = await storedSize(ctx, row);
  } catch (error) {
    if (!(error instanceof BadInputError)) throw error;
    throw new ServiceError(
      "store",
      `frame ${row.key}: the stored object is not a readable JPEG, so its size is unknown (${
        messageOf(error)
      })`,
      { retriable: false, cause: error },
    );
  }
  if (!size) {
    throw new NotFoundError(`frame ${row.key} is in the catalog (tier ${row.tier}) but no store holds it`);
  }
  return size;
}
