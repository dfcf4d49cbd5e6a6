/**
 * The plugin contract: the one file a plugin author needs, importable as `frame-bucket/plugin` (an alias in the
 * project's deno.json, so a plugin in any folder writes `import { API_VERSION } from "frame-bucket/plugin"`).
 *
 * A plugin module exports `Options` (an interface with a comment per field), `defaults` (an `Options` object) and
 * a default factory `(options) => plugin`. The factory merges the given options over `defaults`, validates them
 * and throws (a TypeError or RangeError naming the option) before any frame flows. The returned plugin is a plain
 * object with `name`, `apiVersion` and the methods of its kind below; the loader checks all three and names the
 * problem when something is off. The core assumes nothing of a plugin beyond this file.
 *
 * Filters are pure: they turn a JPEG into a signature and compare two signatures. The core keeps the last accepted
 * signature of each robot, so a filter never has to know about robots, Kafka or storage. A filter whose signature
 * has `bits` (of any length) makes its frames findable by similar-frame search.
 *
 * Helpers for filters: `decodeGreyEighth` (the JPEG's 1/8-scale grey image, straight from its DC coefficients),
 * `resizeGrey` (that image shrunk to a grid, "area" or "nearest") and `hamming` (bits that differ between two
 * hashes).
 */
export { decodeGreyEighth, type GreyImage } from "./filter/jpeg_dc.ts";
export { resizeGrey, type ResizeMode } from "./filter/downscale.ts";
export { hamming } from "./filter/hamming.ts";

/** Bumped when a plugin interface changes incompatibly. Plugins declare the version they were written for. */
export const API_VERSION = 1;

/** What a filter computed for one frame. `bits` is kept in the catalog for similarity search when present. */
export interface Signature<S = unknown> {
  /** The filter's own representation, handed back to `distance`. */
  value: S;
  /**
   * A perceptual hash as packed bits (MSB first), when the filter has one: any length, the same for every frame
   * of one filter set-up. Frames are searched by the hamming distance of these bits.
   */
  bits?: Uint8Array;
}

/** Decides whether a frame shows a new scene compared to the robot's last accepted frame. */
export interface FilterPlugin<S = unknown> {
  /** Short name used in logs (`[filter:ahash]`) and object metadata. */
  readonly name: string;
  /** Must equal API_VERSION. */
  readonly apiVersion: number;
  /**
   * Computes the frame's signature. Throws (any Error) when the JPEG cannot be read; the consumer logs the
   * error once with the filter's tag, counts it and skips the frame. `jpeg` may be reused or freed once the call
   * has settled: a plugin that keeps (a view of) it is noticed at start and given copies, at a copy per frame.
   */
  signature(jpeg: Uint8Array): Signature<S> | Promise<Signature<S>>;
  /**
   * Rebuilds a signature from the `bits` kept in the catalog, so a restarted consumer need not fetch and decode
   * the robot's last frame. Optional: without it the frame is fetched and hashed again.
   */
  restore?(bits: Uint8Array): Signature<S>;
  /** Distance between two signatures of this filter; larger means more different. */
  distance(a: Signature<S>, b: Signature<S>): number;
  /** True when a frame at `distance` from the last accepted one should be stored. */
  accepts(distance: number): boolean;
  /** Releases resources (workers, native handles). Optional. */
  close?(): void | Promise<void>;
}

/** Factory exported as the default of a filter module. */
export type FilterFactory<O = Record<string, unknown>> = (options: Partial<O>) => FilterPlugin;

/** Facts about one stored object. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** ISO 8601 time the store last modified the object. */
  lastModified?: string;
  /** Entity tag as the server reports it, without quotes. */
  etag?: string;
  /** User metadata (x-amz-meta-*), lower-case keys without the prefix. */
  metadata?: Record<string, string>;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /**
   * Base64 MD5 of the body. The store refuses the upload when the bytes it received differ (S3's Content-MD5),
   * so an acknowledged put with it is a verified copy.
   */
  contentMd5?: string;
  /**
   * Store only when no object is at `key` yet (S3's `If-None-Match: *`). When one is, nothing is written and the
   * put resolves with `exists: true`. Honoured only by stores whose `conditionalPut` is true; the consumer checks
   * with `head` first on the others.
   */
  ifAbsent?: boolean;
}

/** What became of one key of a `deleteMany`. */
export interface DeleteResult {
  key: string;
  /** Why the key was not deleted; absent when it is gone. */
  error?: string;
}

/** Page of a listing. */
export interface ListOptions {
  /** Only keys under this prefix. */
  prefix?: string;
  /** Stop after this many keys. */
  limit?: number;
  /** Only keys that sort after this one (S3 StartAfter). */
  startAfter?: string;
}

/** An S3-compatible object store: the local tier (RustFS) or the archive tier (AWS S3). */
export interface StoragePlugin {
  readonly name: string;
  readonly apiVersion: number;
  /** The bucket this plugin writes to, for log lines. */
  readonly bucket: string;
  /**
   * Makes the store usable: creates the bucket when missing and runs a put/head/get/delete self-test of a probe
   * object, so that an incompatible server fails at start-up with a clear message instead of on the first frame.
   */
  open(): Promise<void>;
  /**
   * Optional: true when `put` honours `ifAbsent` atomically (known after `open`). The consumer never replaces a
   * stored frame; without this it looks with `head` before each put.
   */
  readonly conditionalPut?: boolean;
  /**
   * Stores `body` at `key`, replacing any object there unless `ifAbsent` is set. Resolves only once the server
   * acknowledged it, with the entity tag the server gave the object when it reports one, or with `exists: true`
   * when `ifAbsent` kept an existing object. `body` is a view of a buffer the consumer frees once the put has
   * settled: copy it to keep it longer.
   */
  put(
    key: string,
    body: Uint8Array,
    options?: PutOptions,
  ): Promise<{ etag?: string; exists?: boolean }>;
  /** The object's bytes, or null when there is none. */
  get(key: string): Promise<Uint8Array | null>;
  /**
   * Optional: the object's bytes and its info (size, entity tag, metadata) from one request, or null when there
   * is none. Eviction uses it to move a frame with one request fewer; without it, it calls head and get.
   */
  read?(key: string): Promise<{ body: Uint8Array; info: ObjectInfo } | null>;
  /** The object's size and metadata, or null when there is none. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Optional: deletes many objects in as few requests as the store allows (S3's DeleteObjects takes 1000 keys),
   * and says for each key whether it is gone: one result per key, in the order given, with `error` set for a key
   * the store did not delete (a missing object counts as deleted). Throws only when no key could be attempted
   * (the store is unreachable). Eviction uses it to delete the local copies of frames it archived with one request
   * instead of one per frame; without it, it calls `delete` for each.
   */
  deleteMany?(keys: string[]): Promise<DeleteResult[]>;
  /** Lists objects in key order. */
  list(options?: ListOptions): AsyncIterable<ObjectInfo>;
  /** Lists the buckets the credentials can see. */
  buckets(): Promise<string[]>;
  /** Releases connections. */
  close(): void;
}

/** Factory exported as the default of a storage module. */
export type StorageFactory<O = Record<string, unknown>> = (options: Partial<O>) => StoragePlugin;
