/**
 * One frame's move from the local store to the archive, and its verification, in two steps a round can run for
 * many frames at once: `copy` (row -> "archiving"; read the local object and its metadata; put it to the archive
 * at archive prefix + key with Content-MD5, so the archive refuses bytes that differ; verify the copy: the put's
 * ETag against the MD5, else a HEAD for size and ETag, and a read-back when the ETag is not an MD5) and `finish`
 * (delete the local objects of verified copies, several in one request when the store has `deleteMany`; rows ->
 * "archive"). Each step is safe to be interrupted (SIGKILL, power loss) and redone by the next round. With a
 * store that reads bytes and metadata in one request, a move is one get and one put, plus a share of one delete.
 *
 * The MD5 sent with the put is the local object's ETag when that is an MD5 and the one the catalog recorded when
 * the frame was stored: the archive then checks the bytes it receives against the local object's own digest, so
 * a copy is verified end to end without hashing 200 KB per frame here. Should a put with it ever fail (a store
 * whose MD5-looking tags are not MD5s), the mover hashes the bytes itself from then on.
 *
 * The local object is deleted only after the copy is verified, so a frame is always in at least one tier. The
 * row goes to "archive" after the local delete, so a crash anywhere leaves the row in "archiving", which the next
 * round finds and finishes (a local object that is gone with a verified archive copy is simply marked
 * "archive"). A frame whose local object is gone without a verified archive copy was lost before eviction
 * touched it: `lost`, and its row is removed.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Catalog, Fence, FrameRow } from "../catalog/catalog.ts";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DeleteResult, ObjectInfo, StoragePlugin } from "../plugin.ts";
import { equalBytes, isMd5Etag } from "../store/content.ts";

/**
 * A store failure: which store, what happened, and whether the store could not be reached ("unreachable": no
 * answer, or an error answer to every request) or answered and refused this one ("refused": e.g. an archive that
 * did not keep the bytes of a copy).
 */
export class StoreFailure extends Error {
  constructor(
    readonly store: "local" | "archive",
    readonly doing: string,
    cause: unknown,
    readonly kind: "unreachable" | "refused" = "unreachable",
  ) {
    super(`${doing}: ${messageOf(cause)}`, { cause });
  }
}

/** What became of one frame. */
export type Outcome =
  | { kind: "archived"; bytes: number }
  | { kind: "marked"; bytes: number }
  | { kind: "lost" };

/** What `copy` did: a verified archive copy whose local object awaits `finish`, or a frame it could settle at once. */
export type CopyOutcome = { kind: "copied"; row: FrameRow; bytes: number } | Outcome;

/** What `finish` did with one verified copy: archived, or its local object could not be deleted (yet). */
export type FinishOutcome =
  | { kind: "archived"; row: FrameRow; bytes: number }
  | { kind: "kept"; row: FrameRow; error: string };

/** Local deletes run at once when the store has no deleteMany. */
const DELETE_CONCURRENCY = 4;

function contentTypeOf(info: ObjectInfo, key: string): string {
  const given = (info as ObjectInfo & { contentType?: string }).contentType;
  if (given) return given;
  return /\.jpe?g$/i.test(key) ? "image/jpeg" : "application/octet-stream";
}

export interface MoverDeps {
  catalog: Catalog;
  local: StoragePlugin;
  archive: StoragePlugin;
  archivePrefix: string;
  log: Logger;
  now: () => number;
  /** The evictor lease the moves are made under (several candidate hosts): tier changes are fenced by it. */
  fence?: () => Fence | undefined;
}

/** Moves and verifies single frames; store failures come out as `StoreFailure` naming the store. */
export class FrameMover {
  readonly #d: MoverDeps;

  constructor(deps: MoverDeps) {
    this.#d = deps;
  }

  async sameContent(key: string): Promise<boolean> {
    const a = await this.localCall(`reading ${key}`, () => this.#d.local.get(key));
    const b = await this.archiveCall(
      `reading back ${key}`,
      () => this.#d.archive.get(this.#d.archivePrefix + key),
    );
    return a !== null && b !== null && equalBytes(a, b);
  }

  async localCall<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new StoreFailure("local", doing, error);
    }
  }

  async archiveCall<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new StoreFailure("archive", doing, error);
    }
  }

  /** Whether an MD5-looking ETag of the local store can be sent as the copy's Content-MD5 (see module comment). */
  #trustEtags = true;

  /**
   * Moves one frame to the archive: `copy`, then `finish`. Row in "local" or "archiving". Throws StoreFailure
   * when a store fails; the row then goes back to "local" unless the verified copy only awaits the local delete,
   * in which case it stays "archiving" for the next round.
   */
  async move(row: FrameRow): Promise<Outcome> {
    const copied = await this.copy(row);
    if (copied.kind !== "copied") return copied;
    const [done] = await this.finish([copied]);
    if (done.kind === "kept") {
      throw new StoreFailure("local", `deleting ${row.key}`, new Error(done.error));
    }
    return { kind: "archived", bytes: done.bytes };
  }

  /**
   * Copies one frame to the archive and verifies the copy; the local object stays until `finish`. Row in "local"
   * or "archiving" (left "archiving"). A frame whose local object is gone is settled here ("marked" or "lost").
   * Throws StoreFailure when a store fails, with the row back in "local".
   */
  async copy(row: FrameRow): Promise<CopyOutcome> {
    const { catalog, archive, archivePrefix, now } = this.#d;
    const key = row.key;
    const archiveKey = archivePrefix + key;
    const fence = this.#d.fence?.();
    if (row.tier === "local") await catalog.setTier(key, "archiving", now(), fence);
    try {
      const found = await this.#readLocal(key);
      if (!found) return await this.#localGone(row);
      const { info, body } = found;
      if (body.length !== info.size) {
        throw new StoreFailure(
          "local",
          `reading ${key}`,
          new Error(`got ${body.length} of ${info.size} bytes`),
        );
      }
      const etag = isMd5Etag(info.etag) && isMd5Etag(row.etag) &&
          info.etag.toLowerCase() === row.etag.toLowerCase()
        ? info.etag
        : null;
      const tagged = this.#trustEtags && etag !== null;
      const md5 = tagged ? Buffer.from(etag, "hex") : createHash("md5").update(body).digest();
      let putEtag: string | undefined;
      try {
        putEtag = (await this.archiveCall(`storing ${archiveKey}`, () =>
          archive.put(archiveKey, body, {
            contentType: contentTypeOf(info, key),
            metadata: info.metadata,
            contentMd5: md5.toString("base64"),
          }))).etag;
      } catch (error) {
        // The archive refused the local store's own digest: its tags are not MD5s after all (or the bytes were
        // damaged on the way, which a retry tells). From now on the bytes are hashed here; this frame is retried.
        // A server may say so with 500 InternalError instead of 400 BadDigest (RustFS): what the archive holds
        // decides (see #afterFailedPut).
        const refused = await this.#afterFailedPut(
          archiveKey,
          body,
          md5.toString("hex"),
          error as StoreFailure,
        );
        if (refused && tagged) this.#trustEtags = false;
        if (refused) throw refused;
      }
      await this.#verify(archiveKey, body, putEtag, md5.toString("hex"));
      return { kind: "copied", row: { ...row, tier: "archiving" }, bytes: body.length };
    } catch (error) {
      if ((await catalog.get(key))?.tier === "archiving") await catalog.setTier(key, "local", now(), fence);
      throw error;
    }
  }

  /**
   * Deletes the local objects of verified copies (one request for all of them when the local store has
   * `deleteMany`) and marks their rows "archive". A key the store did not delete stays "archiving" and comes back
   * as "kept": the next round finishes it. Throws StoreFailure when the local store cannot be reached at all
   * (every row stays "archiving"), LeaseLostError when another host took over eviction.
   */
  async finish(copies: { row: FrameRow; bytes: number }[]): Promise<FinishOutcome[]> {
    const { catalog, local, log, now } = this.#d;
    if (copies.length === 0) return [];
    const fence = this.#d.fence?.();
    // Still the evictor? (Fenced: throws LeaseLostError when another host has taken over meanwhile.)
    if (fence) { for (const { row } of copies) await catalog.setTier(row.key, "archiving", now(), fence); }
    const keys = copies.map((c) => c.row.key);
    const results = await this.localCall(
      `deleting ${keys.length === 1 ? keys[0] : `${keys.length} objects`}`,
      () => local.deleteMany ? local.deleteMany(keys) : deleteEach(local, keys),
    );
    const errors = new Map(results.filter((r) => r.error !== undefined).map((r) => [r.key, r.error!]));
    const out: FinishOutcome[] = [];
    for (const { row, bytes } of copies) {
      const error = errors.get(row.key) ?? (results.some((r) => r.key === row.key) ? undefined : "no answer");
      if (error !== undefined) {
        out.push({ kind: "kept", row, error });
        continue;
      }
      const current = await catalog.get(row.key);
      if (current?.tier === "archiving") await catalog.setTier(row.key, "archive", now(), fence);
      else {log.debug(
          `${row.key}: row changed to ${current?.tier ?? "none"} meanwhile (stored again); left as it is`,
        );}
      log.debug(`${row.key}: archived (${bytes} bytes)`);
      out.push({ kind: "archived", row, bytes });
    }
    if (errors.size > 0) {
      const [key, error] = errors.entries().next().value!;
      log.warn(
        `${errors.size} of ${keys.length} local objects not deleted (e.g. ${key}: ${error}); their archive copies ` +
          `are verified, so they stay "archiving" and the next round deletes them`,
      );
    }
    return out;
  }

  /** A local object's bytes and info: one GET when the store offers read() (a move is then one get, one put and one delete). */
  async #readLocal(key: string): Promise<{ body: Uint8Array; info: ObjectInfo } | null> {
    const { local } = this.#d;
    if (local.read) return await this.localCall(`reading ${key}`, () => local.read!(key));
    const info = await this.localCall(`reading the metadata of ${key}`, () => local.head(key));
    const body = info ? await this.localCall(`reading ${key}`, () => local.get(key)) : null;
    return info && body ? { info, body } : null;
  }

  /**
   * The copy at `archiveKey` has the bytes `body`. The put carried Content-MD5, so a server that acknowledged it
   * checked the bytes it received; when its answer's entity tag is that MD5 too, the copy is verified without
   * another request. Otherwise (no tag, or not an MD5: encrypted or multipart objects) a HEAD checks the size and
   * tag, and a read-back compares the bytes when the tag is not an MD5.
   */
  async #verify(
    archiveKey: string,
    body: Uint8Array,
    putEtag: string | undefined,
    md5: string,
  ): Promise<void> {
    if (isMd5Etag(putEtag)) {
      if (putEtag.toLowerCase() !== md5) {
        throw new StoreFailure(
          "archive",
          `verifying ${archiveKey}`,
          new Error(`ETag ${putEtag} != MD5 ${md5}`),
        );
      }
      return;
    }
    const head = await this.archiveCall(`checking ${archiveKey}`, () => this.#d.archive.head(archiveKey));
    if (!head || head.size !== body.length) {
      throw new StoreFailure(
        "archive",
        `verifying ${archiveKey}`,
        new Error(`the copy has ${head ? `${head.size} bytes` : "vanished"}, expected ${body.length}`),
      );
    }
    const etag = head.etag ?? putEtag;
    if (isMd5Etag(etag)) {
      if (etag.toLowerCase() !== md5) {
        throw new StoreFailure("archive", `verifying ${archiveKey}`, new Error(`ETag ${etag} != MD5 ${md5}`));
      }
      return;
    }
    const back = await this.archiveCall(`reading back ${archiveKey}`, () => this.#d.archive.get(archiveKey));
    if (!back || !equalBytes(back, body)) {
      throw new StoreFailure("archive", `verifying ${archiveKey}`, new Error("the copy read back differs"));
    }
  }

  /**
   * A put with Content-MD5 failed. Which failure it was is read from what the archive holds, not from the answer
   * (RustFS answers a body that does not match its Content-MD5 with 500 InternalError, as it would an outage):
   * - the HEAD fails too: the archive is unreachable or failing (the put's failure is thrown as it was);
   * - it holds a copy with this size and MD5 (ETag, or the bytes read back): the put went through and its answer
   *   was lost or wrong; null is returned and the copy is verified as usual;
   * - it holds no copy, or a different one: the archive answers but did not keep these bytes (a digest the
   *   server refused, bytes damaged on the way, or a corrupt copy, which is deleted). Returned as a failure of
   *   the archive that names it; the local frame is kept and the move is tried again by a later round.
   */
  async #afterFailedPut(
    archiveKey: string,
    body: Uint8Array,
    md5: string,
    failure: StoreFailure,
  ): Promise<StoreFailure | null> {
    const { archive, log } = this.#d;
    let copy: ObjectInfo | null;
    try {
      copy = await archive.head(archiveKey);
    } catch (error) {
      log.debug(`${archiveKey}: the put failed and so did a HEAD after it (${messageOf(error)})`);
      return failure;
    }
    if (copy && copy.size === body.length) {
      let same: boolean;
      if (isMd5Etag(copy.etag)) same = copy.etag.toLowerCase() === md5;
      else {
        const back = await archive.get(archiveKey).catch(() => null);
        same = back !== null && equalBytes(back, body);
      }
      if (same) {
        log.warn(
          `${archiveKey}: the archive answered the put with an error (${failure.message}) but holds a copy with ` +
            `the same MD5; taking it as stored`,
        );
        return null;
      }
    }
    if (copy) await archive.delete(archiveKey).catch(() => {});
    const held = copy
      ? `a DIFFERENT copy (${copy.size} bytes, ETag ${copy.etag ?? "none"}, not MD5 ${md5}), deleted`
      : "no copy";
    return new StoreFailure(
      "archive",
      `storing ${archiveKey}`,
      new Error(
        `${
          messageOf(failure.cause)
        }; the archive answers and holds ${held}: it did not keep the bytes sent ` +
          `(a refused Content-MD5, which some servers answer with 500 InternalError, bytes damaged on the way, ` +
          `or a failed write); the local frame is kept and the move retried later`,
      ),
      "refused",
    );
  }

  /** The local object is gone: mark "archive" when the archive has a verified copy, else count it lost. */
  async #localGone(row: FrameRow): Promise<Outcome> {
    const { catalog, archive, archivePrefix, log, now } = this.#d;
    const copy = await this.archiveCall(
      `checking the archive copy of ${row.key}`,
      () => archive.head(archivePrefix + row.key),
    );
    const good = copy !== null && copy.size === row.size &&
      (!isMd5Etag(row.etag) || !isMd5Etag(copy.etag) || row.etag.toLowerCase() === copy.etag.toLowerCase());
    if (good) {
      await catalog.setTier(row.key, "archive", now(), this.#d.fence?.());
      log.debug(`${row.key}: local object already deleted, archive copy verified; marked archived`);
      return { kind: "marked", bytes: row.size };
    }
    await catalog.remove(row.key);
    log.error(
      `${row.key}: LOST before eviction reached it: the local object is gone and the archive has ` +
        `${copy ? `a copy of ${copy.size} bytes, not ${row.size}` : "no copy"}; its catalog row is removed`,
    );
    return { kind: "lost" };
  }
}

/** `deleteMany` for a store without it: one delete per key, a few at a time, each key's failure kept apart. */
async function deleteEach(store: StoragePlugin, keys: string[]): Promise<DeleteResult[]> {
  const results: DeleteResult[] = keys.map((key) => ({ key }));
  let next = 0;
  let reached = false;
  let last: unknown = null;
  await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, async () => {
    while (next < keys.length) {
      const i = next++;
      try {
        await store.delete(keys[i]);
        reached = true;
      } catch (error) {
        last = error;
        results[i].error = messageOf(error);
      }
    }
  }));
  // Nothing deleted at all: the store is away, which the caller reports as a store failure.
  if (!reached) throw last;
  return results;
}
