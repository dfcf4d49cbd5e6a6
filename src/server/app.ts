/**
 * The HTTP API and the web UI (`deno task serve`): search, look at, label and export the stored frames.
 *
 * JSON routes under /api, declared once per resource in src/server/routes/ (route.ts: parameters, body and
 * answers with the handler), composed here; their validation and /openapi.json come from those declarations. The
 * web UI's static files from web/ at /. An object key is one path segment, percent-encoded (`encodeURIComponent`,
 * so '/' is `%2F`): `/api/frames/frames%2Freachy-001%2F2026-02-18%2F20260218T093616735Z_000008.jpg/image`. Keys
 * only ever come from the catalog: a key the catalog does not have is 404 and no store is asked for it.
 *
 * Errors are `{"error": "..."}` naming the problem, with the status of their meaning (boundary.ts): 400 bad
 * input, 401 missing token, 403 a Host this server does not answer to, 404 unknown frame, label, clip, box or
 * journal entry, 409 a conflict (a rename onto an existing label without merge, a hotkey another label holds, an
 * entry already undone), 413 a body too large, 415 a wrong content type, 502 a store that
 * failed, 503 a catalog that cannot be used now. Changes (every method but GET) need
 * `Authorization: Bearer <server.token>` when a token is configured; reads need it too when the server is bound
 * beyond loopback (unless server.public_reads), as a header or as the UI's `frame-bucket-token-<port>` cookie
 * (images and downloads cannot send headers).
 *
 * Every request's `Host` must be an IP address, `localhost`, or a name of server.allowed_hosts: a web page whose
 * DNS name is rebound to this machine's address (DNS rebinding) sends its own name, and is refused, so it cannot
 * read the API from inside the victim's browser.
 */
import type { Catalog, LabelLimits } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/open.ts";
import { DEFAULT_LABEL_LIMITS } from "../catalog/rules.ts";
import type { Config } from "../config.ts";
import { messageOf, ServiceError } from "../errors.ts";
import { fetchFrame } from "../store/tiers.ts";
import { ExportTracker } from "../library/export_stream.ts";
import { errorResponse, hostAllowed, isLoopback, Router, sameSecret } from "./http.ts";
import { createLogger, type Logger } from "../log.ts";
import { openApiDocument } from "./openapi.ts";
import type { StoragePlugin } from "../plugin.ts";
import { archiveStore, localStore } from "../filter/loader.ts";
import { hashBytesOf, JpegHasher, SimilarFrames } from "../library/similar.ts";
import { Thumbnails } from "../library/thumbs.ts";
import { errorReply } from "./boundary.ts";
import type { ServerContext } from "./context.ts";
import type { Route } from "./route.ts";
import { boxRoutes } from "./routes/boxes.ts";
import { changeRoutes } from "./routes/changes.ts";
import { clipRoutes } from "./routes/clips.ts";
import { collectionRoutes } from "./routes/collections.ts";
import { exportRoutes } from "./routes/export.ts";
import { frameRoutes } from "./routes/frames.ts";
import { labelRoutes } from "./routes/labels.ts";
import { playbackRoutes } from "./routes/playback.ts";
import { prelabelRoutes } from "./routes/prelabels.ts";
import { importRoutes } from "./routes/import.ts";
import { robotRoutes } from "./routes/robots.ts";
import { similarRoutes } from "./routes/similar.ts";
import { storageRoutes } from "./routes/storage.ts";
import { type EvictionSettings, evictionSettings } from "../retention/plan.ts";
import { systemRoutes } from "./routes/system.ts";

export { attachment } from "./routes/export.ts";
export { frameEtag } from "./shapes.ts";
export { MAX_UPLOAD_BYTES } from "./routes/similar.ts";
export { MAX_KEYS } from "./routes/labels.ts";

export interface AppDeps {
  catalog: Catalog;
  /** The local tier (rustfs plugin). */
  local: StoragePlugin;
  /** The archive tier (s3_archive plugin). */
  archive: StoragePlugin;
  /** aws_s3.prefix. */
  archivePrefix: string;
  /** rustfs.prefix: where frame keys start (image names in imports and exports are keys without it). */
  framePrefix?: string;
  /** Hashes uploads as the consumer does. */
  hasher: Pick<JpegHasher, "hash">;
  similar: SimilarFrames;
  /** Changes need `Authorization: Bearer <token>` when this is not empty. */
  token?: string;
  /** Reads need the token too (the server is reachable beyond loopback without server.public_reads). */
  readsNeedToken?: boolean;
  /** DNS names the Host header may carry besides IP addresses and `localhost` (server.allowed_hosts). */
  allowedHosts?: string[];
  /** `[labels]` limits (default: DEFAULT_LABEL_LIMITS). */
  labelLimits?: Partial<LabelLimits>;
  /** Waits between attempts of a failing frame fetch during an export (default: export.ts's). */
  exportRetryDelaysMs?: number[];
  /** Folder of the web UI's files; null serves none. Default: web/ of this project. */
  webDir?: string | null;
  log?: Logger;
  /** Bytes of thumbnails kept in memory (default 32 MiB). */
  thumbCacheBytes?: number;
  /** `[eviction]` (watch_path absolute): the thresholds storage health measures against (GET /api/storage). */
  eviction?: EvictionSettings;
}

export interface App {
  /** Every declared route (routes/*.ts), as matched. */
  router: Router<Route>;
  handler: (request: Request) => Promise<Response>;
  thumbnails: Thumbnails;
  exports: ExportTracker;
}

/** Cookie (with the server's port appended) through which the UI's images and downloads carry the token. */
export const TOKEN_COOKIE = "frame-bucket-token";

/**
 * The tokens a request presents: the `Authorization: Bearer` one, else (for reads) those of the UI's cookies. A
 * browser sends the cookies of every port of a host, so there may be several (one per server): any may match.
 */
function presentedTokens(request: Request, cookies: boolean): string[] {
  const m = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "");
  if (m) return [m[1].trim()];
  const out: string[] = [];
  if (!cookies) return out;
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    const name = part.slice(0, eq).trim();
    if (eq > 0 && (name === TOKEN_COOKIE || name.startsWith(`${TOKEN_COOKIE}-`))) {
      try {
        out.push(decodeURIComponent(part.slice(eq + 1).trim()));
      } catch {
        // a malformed cookie is no token
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- static files

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
};

const CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Every file under `dir` (relative paths with '/'): the only static paths ever served. */
function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${dir}/${prefix}`)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...listFiles(dir, path));
    else if (e.isFile) out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------- the app

/** The API and UI as a request handler over already opened catalog, stores, hasher and similarity index. */
export function createApp(deps: AppDeps): App {
  const { catalog } = deps;
  const log = deps.log ?? createLogger({ level: "info", format: "text" }, "server");
  const token = deps.token ?? "";
  const readsNeedToken = deps.readsNeedToken ?? false;
  if (readsNeedToken && !token) {
    throw new RangeError("reads cannot need the token when there is none: set server.token");
  }
  const allowedHosts = deps.allowedHosts ?? [];
  const webDir = deps.webDir === undefined ? new URL("../../web", import.meta.url).pathname : deps.webDir;
  const webFiles = new Set(webDir ? listFiles(webDir) : []);
  const stores = { catalog, local: deps.local, archive: deps.archive, archivePrefix: deps.archivePrefix };
  const load = async (key: string): Promise<Uint8Array | null> => {
    try {
      return await fetchFrame(key, stores);
    } catch (error) {
      throw new ServiceError("store", `cannot read frame ${key} from the store: ${messageOf(error)}`, {
        retriable: error instanceof ServiceError && error.retriable,
        cause: error,
      });
    }
  };
  const ctx: ServerContext = {
    catalog,
    labels: catalog.labels({ limits: deps.labelLimits }),
    labelLimits: { ...DEFAULT_LABEL_LIMITS, ...deps.labelLimits },
    framePrefix: deps.framePrefix ?? "frames/",
    similar: deps.similar,
    hasher: deps.hasher,
    thumbnails: new Thumbnails(load, deps.thumbCacheBytes),
    exports: new ExportTracker(),
    fetchFrame: (key) => fetchFrame(key, stores),
    load,
    exportRetryDelaysMs: deps.exportRetryDelaysMs,
    log,
  };

  // Small core, routes composed per resource; the document is made once, from all of them.
  let document: Record<string, unknown> | undefined;
  const routes: Route[] = [
    ...robotRoutes(ctx),
    ...storageRoutes(catalog, deps.eviction ?? null),
    ...frameRoutes(ctx),
    ...boxRoutes(ctx),
    ...prelabelRoutes(ctx),
    ...importRoutes(ctx),
    ...similarRoutes(ctx),
    ...labelRoutes(ctx),
    ...clipRoutes(ctx),
    ...collectionRoutes(ctx),
    ...playbackRoutes(ctx),
    ...changeRoutes(ctx),
    ...exportRoutes(ctx),
    ...systemRoutes(() => document ??= openApiDocument(routes, { readsNeedToken }), ctx.catalog),
  ];
  const router = new Router(routes);

  const staticFile = async (path: string): Promise<Response> => {
    let rel: string;
    try {
      rel = path === "/" ? "index.html" : decodeURIComponent(path.slice(1));
    } catch {
      return errorResponse(400, "bad percent-encoding in the path");
    }
    if (!webDir || !webFiles.has(rel)) {
      return errorResponse(404, `no such page ${JSON.stringify(path.slice(0, 200))}`);
    }
    const body = await Deno.readFile(`${webDir}/${rel}`);
    const ext = rel.slice(rel.lastIndexOf(".") + 1);
    return new Response(body, {
      headers: {
        "content-type": TYPES[ext] ?? "application/octet-stream",
        "cache-control": "no-cache",
        ...(ext === "html" ? { "content-security-policy": CSP, "referrer-policy": "no-referrer" } : {}),
      },
    });
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const path = url.pathname;
    const method = request.method === "HEAD" ? "GET" : request.method;
    const host = request.headers.get("host");
    if (!hostAllowed(host, allowedHosts)) {
      return errorResponse(
        403,
        `this server does not answer to the host name ${JSON.stringify(host?.slice(0, 200))}: open it by ` +
          `its IP address or localhost, or add the name to server.allowed_hosts`,
      );
    }
    if (!path.startsWith("/api/") && path !== "/openapi.json" && path !== "/healthz") {
      if (method !== "GET") {
        return errorResponse(405, `${request.method} is not allowed on ${path}`, { allow: "GET" });
      }
      return await staticFile(path);
    }
    const found = router.match(method, path);
    if (!("route" in found)) {
      if (found.allowed.length) {
        return errorResponse(
          405,
          `${request.method} is not allowed on ${path} (allowed: ${found.allowed.join(", ")})`,
          { allow: found.allowed.join(", ") },
        );
      }
      return errorResponse(404, `no route ${request.method} ${path}`);
    }
    const { route, params } = found;
    // /healthz says only whether the catalog answers: load balancers and orchestrators ask it without a token.
    if (token && (route.write || readsNeedToken) && route.path !== "/healthz") {
      // Changes take the header only: a cookie rides along on requests other sites make, a header does not.
      const given = presentedTokens(request, !route.write);
      if (!given.some((t) => sameSecret(t, token))) {
        return errorResponse(
          401,
          given.length
            ? "the token is wrong"
            : route.write
            ? "this change needs Authorization: Bearer <server.token>"
            : "this server is reachable from other machines, so reads need Authorization: Bearer <server.token> " +
              "too (or server.public_reads = true)",
          { "www-authenticate": 'Bearer realm="frame-bucket"' },
        );
      }
    }
    return await route.run(request, url, params);
  };

  const handler = async (request: Request): Promise<Response> => {
    let response: Response;
    try {
      response = await handle(request);
    } catch (error) {
      response = errorReply(error, (message) => {
        log.error(`${request.method} ${new URL(request.url).pathname}: ${message}`);
      });
    }
    response.headers.set("x-content-type-options", "nosniff");
    if (request.method === "HEAD") {
      // The body is never sent: cancel it, so a streamed export stops and removes its spool files.
      await response.body?.cancel().catch(() => {});
      return new Response(null, { status: response.status, headers: response.headers });
    }
    return response;
  };

  return { router, handler, thumbnails: ctx.thumbnails, exports: ctx.exports };
}

// ------------------------------------------------------------------------------------------ running a server

export interface ServeOptions {
  hostname?: string;
  port?: number;
  log?: Logger;
  /** Called once listening, with the URL. */
  onListen?: (url: string) => void;
}

export interface RunningServer {
  url: string;
  app: App;
  catalog: Catalog;
  /** Stops listening and closes the catalog, stores and hasher. */
  close(): Promise<void>;
}

/** What a server bound to `hostname` exposes, given the token and server.public_reads. */
export interface Exposure {
  /** Reads need the token as well as writes. */
  readsNeedToken: boolean;
  /** Why the server must not start (bound beyond loopback with nothing to protect reads), or null. */
  refusal: string | null;
  /** What to warn about at start-up, or null. */
  warning: string | null;
}

const SEEN =
  "every frame and thumbnail, the labels, clips and change journal, and whole datasets through export";

/**
 * Bound to loopback, only this machine can connect: reads are open, writes need the token when one is set. Bound
 * beyond it, reads need the token as well unless server.public_reads = true says they are meant to be public; with
 * neither a token nor public_reads the server refuses to start.
 */
export function exposure(hostname: string, token: string, publicReads: boolean): Exposure {
  if (isLoopback(hostname)) return { readsNeedToken: false, refusal: null, warning: null };
  const where = `listening on ${hostname}, which other machines can reach`;
  if (!token && !publicReads) {
    return {
      readsNeedToken: false,
      refusal:
        `${where}, without server.token: anyone who can connect could read ${SEEN}, and change labels. ` +
        `Set server.token (or FRAME_BUCKET_TOKEN; reads and writes then need it), or set server.public_reads = ` +
        `true to serve reads to everyone on purpose, or bind to 127.0.0.1`,
      warning: null,
    };
  }
  if (!publicReads) return { readsNeedToken: true, refusal: null, warning: null };
  return {
    readsNeedToken: false,
    refusal: null,
    warning: token
      ? `warning: ${where}, with server.public_reads = true: anyone who can connect can read ${SEEN}. ` +
        `Changes need the token`
      : `warning: ${where}, with server.public_reads = true and without server.token: anyone who can connect ` +
        `can read ${SEEN}, and change or delete labels and clips. Set server.token (or FRAME_BUCKET_TOKEN) to ` +
        `protect changes, or bind to 127.0.0.1`,
  };
}

/** Opens the config's catalog, stores, hasher and similarity index, and serves the app. */
export async function startServer(config: Config, options: ServeOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logging, "server");
  const hostname = options.hostname ?? config.server.hostname;
  const port = options.port ?? config.server.port;
  const token = config.server.token;
  const exposed = exposure(hostname, token, config.server.public_reads);
  if (exposed.refusal) throw new RangeError(exposed.refusal);
  if (exposed.warning) log.warn(exposed.warning);
  // The name the server is bound to (when it is a name) is one it answers to.
  const allowedHosts = [...config.server.allowed_hosts];
  if (!/^[\d.]+$|:/.test(hostname) && hostname.toLowerCase() !== "localhost") {
    allowedHosts.push(hostname.toLowerCase());
  }
  const catalog = await openCatalog(config);
  const cleanup: (() => unknown)[] = [() => catalog.close()];
  try {
    const local = await localStore(config);
    cleanup.push(() => local.close());
    const archive = await archiveStore(config);
    cleanup.push(() => archive.close());
    const hasher = await JpegHasher.fromConfig(config);
    cleanup.push(() => hasher.close());
    const similar = await SimilarFrames.load(catalog, { hashBytes: hashBytesOf(config.filter) });
    cleanup.push(similar.startSync(500));
    const app = createApp({
      catalog,
      local,
      archive,
      archivePrefix: config.aws_s3.prefix,
      framePrefix: config.rustfs.prefix,
      hasher,
      similar,
      token,
      readsNeedToken: exposed.readsNeedToken,
      allowedHosts,
      labelLimits: {
        maxPerRequest: config.labels.max_per_request,
        maxDistinct: config.labels.max_distinct,
        strict: config.labels.strict,
      },
      eviction: evictionSettings(config),
      log,
    });
    const server = Deno.serve({ hostname, port, onListen: () => {} }, app.handler);
    const addr = server.addr as Deno.NetAddr;
    const shown = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    const url = `http://${shown}:${addr.port}/`;
    const frames = await catalog.totals();
    log.info(
      `serving ${url} (catalog ${catalog.where}: ${
        frames.local.frames + frames.archiving.frames + frames.archive.frames
      } ` +
        `frames, ${similar.size} hashes indexed; reads ${
          exposed.readsNeedToken ? "need the token" : "are open"
        }, writes ${token ? "need the token" : "are open"}; answers to IP addresses, localhost${
          allowedHosts.length ? `, ${allowedHosts.join(", ")}` : ""
        })`,
    );
    options.onListen?.(url);
    return {
      url,
      app,
      catalog,
      async close() {
        await server.shutdown();
        for (const fn of cleanup.reverse()) await fn();
      },
    };
  } catch (error) {
    for (const fn of cleanup.reverse()) await fn();
    throw error;
  }
}
