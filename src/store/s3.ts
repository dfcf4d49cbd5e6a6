/**
 * The one module that knows @aws-sdk/client-s3. Both storage plugins (the RustFS local tier and the S3 archive
 * tier) are thin option-checking factories around `s3Store`.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { messageOf, ServiceError } from "../errors.ts";
import { LeanHttpHandler, type LeanHttpResponse } from "./http_handler.ts";
import { API_VERSION, type DeleteResult, type ObjectInfo, type StoragePlugin } from "../plugin.ts";

export interface S3StoreOptions {
  /** Plugin name for logs. */
  name: string;
  /** Endpoint URL; empty for AWS S3 itself. */
  endpoint: string;
  region: string;
  bucket: string;
  /** Static credentials; when both are empty the AWS SDK's default chain (env, profile, instance role) is used. */
  accessKey: string;
  secretKey: string;
  /** Path-style addressing (http://host/bucket/key), what S3-compatible servers expect. */
  forcePathStyle: boolean;
  /** Per-request timeout, so a hung connection turns into a retriable error instead of a stall. */
  timeoutMs: number;
  /** Create the bucket when it is missing. */
  createBucket: boolean;
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string {
  return (error as { name?: string })?.name ?? "";
}

/** A metadata name that is not a plain HTTP header token, or a value that is not printable ASCII. */
const UNSAFE_NAME = /[^a-z0-9!#$&'*+.^_`|~-]/i;
const UNSAFE_VALUE = /[^\x20-\x7e]/;

/**
 * User metadata as sent: S3 carries it in `x-amz-meta-*` headers, which only hold ASCII (a server may refuse
 * other bytes, RustFS with 403, or the HTTP client may not send them at all), so a name or value with other
 * characters is percent-encoded (UTF-8). Plain ASCII is sent as it is.
 */
export function asciiMetadata(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) {
    out[UNSAFE_NAME.test(name) ? encodeURIComponent(name) : name] = UNSAFE_VALUE.test(value)
      ? encodeURIComponent(value)
      : value;
  }
  return out;
}

/**
 * The inverse of `asciiMetadata`: a name or value is decoded when it percent-decodes to text that had to be
 * encoded (so an ASCII value that merely contains `%`, like `50%` or `a%20b`, is read as it is).
 */
export function readMetadata(metadata: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {})) {
    out[decodeIf(name, UNSAFE_NAME)] = decodeIf(value, UNSAFE_VALUE);
  }
  return out;
}

function decodeIf(text: string, unsafe: RegExp): string {
  if (!text.includes("%")) return text;
  try {
    const decoded = decodeURIComponent(text);
    return unsafe.test(decoded) ? decoded : text;
  } catch {
    return text;
  }
}

/** Wraps an SDK failure into a ServiceError that names the endpoint, bucket and key. */
function s3Error(options: S3StoreOptions, doing: string, error: unknown): ServiceError {
  const where = `${options.endpoint || "AWS S3"} bucket ${options.bucket}`;
  const status = statusOf(error);
  const name = nameOf(error);
  if (name === "AccessDenied") {
    return new ServiceError(
      "s3",
      `${where} denied access while ${doing} (AccessDenied): the access key lacks the permission (check its ` +
        `policy for this bucket), or the credentials are wrong`,
      { retriable: false, cause: error },
    );
  }
  if (name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch" || status === 403) {
    return new ServiceError(
      "s3",
      `${where} refused the credentials while ${doing} (${name || status}): check the access and secret keys`,
      {
        retriable: false,
        cause: error,
      },
    );
  }
  if (name === "NoSuchBucket") {
    return new ServiceError(
      "s3",
      `${where} does not exist (while ${doing}): check the bucket name in the config, or create the bucket`,
      { retriable: false, cause: error },
    );
  }
  if (status === undefined || status >= 500 || status === 429 || status === 408 || status === 409) {
    return new ServiceError("s3", `${where} unreachable or failing while ${doing}: ${messageOf(error)}`, {
      retriable: true,
      cause: error,
    });
  }
  return new ServiceError("s3", `${where} failed while ${doing}: ${name || status} ${messageOf(error)}`, {
    retriable: false,
    cause: error,
  });
}

const isMissing = (error: unknown) =>
  statusOf(error) === 404 || ["NotFound", "NoSuchKey", "NoSuchBucket"].includes(nameOf(error));

/** A missing object, not a missing bucket (which GET names; a HEAD's bare 404 cannot tell them apart). */
const isMissingObject = (error: unknown) => isMissing(error) && nameOf(error) !== "NoSuchBucket";

interface RequestHandlerLike {
  handle(
    request: unknown,
    options?: { abortSignal?: AbortSignal; requestTimeout?: number },
  ): Promise<unknown>;
  updateHttpClientConfig?(key: unknown, value: unknown): void;
  httpHandlerConfigs?(): unknown;
  destroy?(): void;
  metadata?: unknown;
}

/**
 * Trims per-request work the SDK does for nothing on a long-lived client, keeping every request as the SDK sends
 * it (same headers, same SigV4 signature over the payload's SHA-256):
 * - its default user agent is rebuilt for every request, and that calls `os.release()`, which Deno answers by
 *   reading a file (~0.1 ms a request): the first answer is kept, since it cannot change while the process runs;
 * - requests sent without options (the cached middleware stack, see `cacheMiddleware`) get their overall deadline
 *   here, one abort signal per request, as `send(..., { abortSignal })` gave them before.
 */
function leanClient(client: S3Client, deadlineMs: number): void {
  const config = client.config as unknown as {
    defaultUserAgentProvider?: () => Promise<unknown[]>;
    requestHandler: RequestHandlerLike;
  };
  const userAgent = config.defaultUserAgentProvider;
  if (userAgent) {
    let kept: Promise<unknown[]> | null = null;
    config.defaultUserAgentProvider = () => {
      kept ??= userAgent().catch((error) => {
        kept = null;
        throw error;
      });
      return kept;
    };
  }
  const inner = config.requestHandler;
  config.requestHandler = {
    handle: (request, handleOptions = {}) =>
      inner.handle(request, {
        ...handleOptions,
        abortSignal: handleOptions.abortSignal ?? AbortSignal.timeout(deadlineMs),
      }),
    updateHttpClientConfig: (key, value) => inner.updateHttpClientConfig?.(key, value),
    httpHandlerConfigs: () => inner.httpHandlerConfigs?.() ?? {},
    destroy: () => inner.destroy?.(),
    get metadata() {
      return inner.metadata;
    },
  };
}

/** What `put` sends besides key and body. */
interface PutFields {
  contentType: string;
  metadata?: Record<string, string>;
  contentMd5?: string;
  ifAbsent: boolean;
}

/** encodeURIComponent plus the characters it leaves that S3 wants encoded in a path, as the SDK encodes a key. */
function encodeKeySegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** The text of the first `<tag>` of an S3 error document, or undefined. */
function xmlField(xml: string, tag: string): string | undefined {
  const m = xml.match(new RegExp(`<${tag}>([^<]*)</${tag}>`));
  return m?.[1].replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_ENTITIES[e]);
}

/**
 * PutObject without the SDK's middleware stack, for an S3-compatible server addressed path-style (the local tier,
 * where every stored frame goes): the client's own signer signs it (SigV4 over the payload's SHA-256, as the SDK
 * sends it) and the client's own request handler sends it. The SDK's layers of serializers, endpoint rules,
 * retries and checksum, user-agent and logging middleware cost ~0.2 ms of CPU per 180 KB frame more than the
 * request itself (~0.45 against ~0.25 ms, this machine). An error answer becomes an error shaped like the SDK's
 * (`name` from the XML Code, `$metadata.httpStatusCode`), so callers classify it the same, and a transient one
 * (no answer, 5xx, 429, 408) is tried once more, as the SDK's `maxAttempts: 2`. AWS S3 itself (no endpoint) keeps
 * the SDK path: its virtual-hosted, regional and express endpoints are the SDK's business.
 */
function directPut(client: S3Client, options: S3StoreOptions) {
  const endpoint = new URL(options.endpoint);
  const base = endpoint.pathname.replace(/\/+$/, "");
  const config = client.config as unknown as {
    signer: () => Promise<{ sign(request: unknown, options: Record<string, unknown>): Promise<unknown> }>;
    requestHandler: RequestHandlerLike;
  };
  const once = async (key: string, body: Uint8Array, fields: PutFields): Promise<{ etag?: string }> => {
    const headers: Record<string, string> = {
      host: endpoint.host,
      "content-type": fields.contentType,
      "content-length": String(body.length),
    };
    if (fields.contentMd5) headers["content-md5"] = fields.contentMd5;
    if (fields.ifAbsent) headers["if-none-match"] = "*";
    for (const [name, value] of Object.entries(asciiMetadata(fields.metadata ?? {}))) {
      headers[`x-amz-meta-${name.toLowerCase()}`] = value;
    }
    const request = {
      method: "PUT",
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : undefined,
      path: `${base}/${encodeKeySegment(options.bucket)}/${key.split("/").map(encodeKeySegment).join("/")}`,
      query: {},
      headers,
      body,
    };
    const signer = await config.signer();
    const signed = await signer.sign(request, { signingRegion: options.region, signingService: "s3" });
    const { response } = await config.requestHandler.handle(signed, {}) as { response: LeanHttpResponse };
    // The whole answer is read, also when it is not needed: the socket goes back to the pool only then.
    const answer = new Uint8Array(await new Response(response.body).arrayBuffer());
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return { etag: response.headers["etag"]?.replaceAll('"', "") };
    }
    const xml = new TextDecoder().decode(answer);
    const code = xmlField(xml, "Code") ?? String(response.statusCode);
    const error = new Error(
      xmlField(xml, "Message") ?? `HTTP ${response.statusCode} ${response.reason ?? ""}`,
    );
    error.name = code;
    Object.assign(error, { $metadata: { httpStatusCode: response.statusCode } });
    throw error;
  };
  return async (key: string, body: Uint8Array, fields: PutFields): Promise<{ etag?: string }> => {
    try {
      return await once(key, body, fields);
    } catch (error) {
      const status = statusOf(error);
      if (status !== undefined && status < 500 && status !== 429 && status !== 408) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100));
      return await once(key, body, fields);
    }
  };
}

/** A StoragePlugin over any S3-compatible endpoint. */
export function s3Store(options: S3StoreOptions): StoragePlugin {
  const client = new S3Client({
    endpoint: options.endpoint || undefined,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials: options.accessKey || options.secretKey
      ? { accessKeyId: options.accessKey, secretAccessKey: options.secretKey }
      : undefined,
    // Since 3.729 the SDK adds CRC32 checksums to every request; some S3-compatible servers reject them.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 2,
    // HTTP/1.1 on Deno's own sockets instead of node:http (src/store/http_handler.ts; `deno task bench s3-put`).
    requestHandler: new LeanHttpHandler({
      requestTimeout: options.timeoutMs,
      connectionTimeout: Math.min(options.timeoutMs, 5000),
    }),
    // The SDK otherwise resolves the whole middleware stack again for every request (~0.15 ms a put); cached, it
    // does so once per command type. Only sends without options are cached, so put, get and head pass none and
    // get their deadline from the request handler below.
    cacheMiddleware: true,
  });
  leanClient(client, options.timeoutMs * 2);
  const bucket = options.bucket;
  const direct = options.endpoint && options.forcePathStyle ? directPut(client, options) : null;

  const call = async <T>(doing: string, send: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    try {
      return await send(AbortSignal.timeout(options.timeoutMs * 2));
    } catch (error) {
      throw s3Error(options, doing, error);
    }
  };

  /**
   * A put with user metadata got 403. A server may refuse metadata it cannot sign or store that way (RustFS did
   * for non-ASCII values) as well as bad credentials: when the same credentials still work for the bucket (a
   * HEAD), the metadata is named as the cause.
   */
  const metadataRefusal = async (key: string, metadata: Record<string, string>, error: unknown) => {
    const credentialsWork = await client.send(new HeadBucketCommand({ Bucket: bucket }), {
      abortSignal: AbortSignal.timeout(options.timeoutMs),
    }).then(() => true, () => false);
    if (!credentialsWork) return s3Error(options, `storing ${key}`, error);
    const sent = asciiMetadata(metadata);
    return new ServiceError(
      "s3",
      `${options.endpoint || "AWS S3"} bucket ${bucket} refused the user metadata of ${key} (403 ${
        nameOf(error) || "Forbidden"
      }) while the same credentials work for the bucket: it does not accept these x-amz-meta-* headers (${
        Object.entries(sent).map(([n, v]) => `${n}: ${JSON.stringify(v.slice(0, 40))}`).join(", ")
      }); check the server's limits on metadata names, values and size`,
      { retriable: false, cause: error },
    );
  };

  let conditional = false;
  const store: StoragePlugin = {
    name: options.name,
    apiVersion: API_VERSION,
    bucket,
    get conditionalPut() {
      return conditional;
    },
    async open() {
      let exists = true;
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }), {
          abortSignal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (error) {
        if (!isMissing(error)) throw s3Error(options, "checking the bucket", error);
        exists = false;
      }
      if (!exists) {
        if (!options.createBucket) {
          throw new ServiceError(
            "s3",
            `bucket ${bucket} does not exist at ${options.endpoint || "AWS S3"}: create it`,
            {
              retriable: false,
            },
          );
        }
        await call(
          "creating the bucket",
          (abortSignal) =>
            client.send(new CreateBucketCommand({ Bucket: bucket }), { abortSignal }).catch((error) => {
              // Another consumer may have created it a moment ago.
              if (
                nameOf(error) === "BucketAlreadyOwnedByYou" || nameOf(error) === "BucketAlreadyExists"
              ) return;
              throw error;
            }),
        );
      }
      // Self-test with a probe object: an incompatible server fails here with a clear message, not on frame one.
      const probe = `.frame-bucket-probe/${crypto.randomUUID()}`;
      const body = new TextEncoder().encode("probe");
      await store.put(probe, body, { contentType: "text/plain", metadata: { probe: "1" } });
      const head = await store.head(probe);
      const back = await store.get(probe);
      // Does the server honour If-None-Match on PUT (AWS S3 since 2024, MinIO, S3Proxy 2.x+)? A server that
      // ignores it would overwrite: the consumer then looks with HEAD before each put instead.
      conditional = false;
      const again = await store.put(probe, new TextEncoder().encode("other"), {
        contentType: "text/plain",
        ifAbsent: true,
      }).catch(() => ({ exists: false }));
      const kept = await store.get(probe);
      conditional = again.exists === true && kept !== null && kept.length === body.length;
      await store.delete(probe);
      if (
        !head || head.size !== body.length || head.metadata?.probe !== "1" || !back ||
        back.length !== body.length
      ) {
        throw new ServiceError(
          "s3",
          `${options.endpoint || "AWS S3"} bucket ${bucket} failed the put/head/get self-test ` +
            `(size ${head?.size}, metadata ${
              JSON.stringify(head?.metadata)
            }): the server does not keep objects or ` +
            `metadata as S3 does`,
          { retriable: false },
        );
      }
    },
    async put(key, body, putOptions = {}) {
      const ifAbsent = putOptions.ifAbsent === true;
      try {
        if (direct) {
          return await direct(key, body, {
            contentType: putOptions.contentType ?? "application/octet-stream",
            metadata: putOptions.metadata,
            contentMd5: putOptions.contentMd5,
            ifAbsent,
          });
        }
        const out = await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentType: putOptions.contentType ?? "application/octet-stream",
            Metadata: putOptions.metadata ? asciiMetadata(putOptions.metadata) : undefined,
            ContentMD5: putOptions.contentMd5,
            IfNoneMatch: ifAbsent ? "*" : undefined,
          }),
        );
        return { etag: out.ETag?.replaceAll('"', "") };
      } catch (error) {
        // 412: an object is already there and was kept. (A 409 ConditionalRequestConflict is a concurrent write
        // of the same key; it stays a retriable error, and the retry then sees the winner as a 412.)
        if (ifAbsent && (statusOf(error) === 412 || nameOf(error) === "PreconditionFailed")) {
          return { exists: true };
        }
        if (statusOf(error) === 403 && Object.keys(putOptions.metadata ?? {}).length > 0) {
          throw await metadataRefusal(key, putOptions.metadata!, error);
        }
        throw s3Error(options, `storing ${key}`, error);
      }
    },
    async get(key) {
      return (await store.read!(key))?.body ?? null;
    },
    async read(key) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        if (!out.Body) return null;
        const body = await out.Body.transformToByteArray();
        return {
          body,
          info: {
            key,
            size: out.ContentLength ?? body.length,
            lastModified: out.LastModified?.toISOString(),
            etag: out.ETag?.replaceAll('"', ""),
            metadata: readMetadata(out.Metadata),
          },
        };
      } catch (error) {
        if (isMissingObject(error)) return null;
        throw s3Error(options, `reading ${key}`, error);
      }
    },
    async head(key): Promise<ObjectInfo | null> {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return {
          key,
          size: out.ContentLength ?? 0,
          lastModified: out.LastModified?.toISOString(),
          etag: out.ETag?.replaceAll('"', ""),
          metadata: readMetadata(out.Metadata),
        };
      } catch (error) {
        if (isMissing(error)) return null;
        throw s3Error(options, `reading the metadata of ${key}`, error);
      }
    },
    async delete(key) {
      await call(
        `deleting ${key}`,
        (abortSignal) =>
          client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }).catch(
            (error) => {
              if (!isMissing(error)) throw error;
            },
          ),
      );
    },
    async deleteMany(keys) {
      // DeleteObjects takes up to 1000 keys and answers for each: Deleted, or an Error with its code.
      const results: DeleteResult[] = [];
      for (let at = 0; at < keys.length; at += 1000) {
        const chunk = keys.slice(at, at + 1000);
        const out = await call(
          `deleting ${chunk.length} objects`,
          (abortSignal) =>
            client.send(
              new DeleteObjectsCommand({
                Bucket: bucket,
                Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: false },
              }),
              { abortSignal },
            ),
        );
        const gone = new Set((out.Deleted ?? []).map((d) => d.Key));
        const failed = new Map(
          (out.Errors ?? []).map((e) => [e.Key, `${e.Code ?? "error"}: ${e.Message ?? ""}`]),
        );
        for (const key of chunk) {
          const error = failed.get(key);
          // A key the server reports as missing is gone all the same; one it does not mention was not deleted.
          if (gone.has(key) || error?.startsWith("NoSuchKey")) results.push({ key });
          else results.push({ key, error: error ?? "not in the server's answer" });
        }
      }
      return results;
    },
    async *list(listOptions = {}) {
      let token: string | undefined;
      let left = listOptions.limit ?? Infinity;
      do {
        const page = await call(`listing ${listOptions.prefix ?? ""}`, (abortSignal) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: listOptions.prefix,
              ContinuationToken: token,
              StartAfter: token ? undefined : listOptions.startAfter,
              MaxKeys: Math.min(1000, left),
            }),
            { abortSignal },
          ));
        for (const item of page.Contents ?? []) {
          if (left-- <= 0) return;
          yield {
            key: item.Key ?? "",
            size: item.Size ?? 0,
            lastModified: item.LastModified?.toISOString(),
            etag: item.ETag?.replaceAll('"', ""),
          };
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token && left > 0);
    },
    async buckets() {
      const out = await call(
        "listing buckets",
        (abortSignal) => client.send(new ListBucketsCommand({}), { abortSignal }),
      );
      return (out.Buckets ?? []).map((b) => b.Name ?? "").filter(Boolean);
    },
    close() {
      client.destroy();
    },
  };
  return store;
}
