/**
 * The little the HTTP API needs beyond `Deno.serve`: a router of `/path/{param}` patterns, an error type for the
 * statuses only HTTP has (a missing token, a wrong content type, a body too large, ...), JSON helpers, and the
 * Host and token checks.
 *
 * Path parameters are single path segments, matched on the raw (still percent-encoded) path and decoded
 * afterwards, so a parameter may hold an encoded '/' (`%2F`): object keys are passed that way.
 */

/** A failure only HTTP has, reported as `{"error": message}` with this status (see boundary.ts for the others). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
  }
}

/** What the router needs of a route: its method (lower case) and its `/path/{param}` pattern. */
export interface Routable {
  readonly method: string;
  readonly path: string;
}

export class Router<R extends Routable> {
  readonly #routes: { route: R; segments: string[] }[];

  constructor(routes: readonly R[]) {
    this.#routes = routes.map((route) => ({ route, segments: route.path.split("/").slice(1) }));
    const seen = new Set<string>();
    for (const r of routes) {
      const id = `${r.method} ${r.path}`;
      if (seen.has(id)) throw new TypeError(`route ${id} is declared twice`);
      seen.add(id);
    }
  }

  get routes(): readonly R[] {
    return this.#routes.map((r) => r.route);
  }

  /**
   * The route for a request (`method` in any case): `{route, params}`, or `{allowed}` listing the methods the path
   * has, in upper case (empty when the path matches no route at all). Throws HttpError 400 for a segment that is
   * not valid percent-encoding.
   */
  match(
    method: string,
    rawPath: string,
  ): { route: R; params: Record<string, string> } | { allowed: string[] } {
    const wanted = method.toLowerCase();
    const parts = rawPath.split("/").slice(1);
    const allowed: string[] = [];
    for (const { route, segments } of this.#routes) {
      if (segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const s = segments[i];
        if (s.startsWith("{")) {
          if (parts[i] === "") ok = false;
          else params[s.slice(1, -1)] = decodeSegment(parts[i]);
        } else if (s !== parts[i]) ok = false;
      }
      if (!ok) continue;
      if (route.method === wanted) return { route, params };
      allowed.push(route.method.toUpperCase());
    }
    return { allowed };
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(
      400,
      `path segment ${JSON.stringify(segment.slice(0, 80))} is not valid percent-encoding`,
    );
  }
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

export function errorResponse(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return json({ error: message }, status, headers);
}

/** The parsed JSON object of a request body; 415 for another content type, 400 for bad JSON or a non-object. */
export async function readJsonObject(
  request: Request,
  maxBytes = 1024 * 1024,
): Promise<Record<string, unknown>> {
  const type = request.headers.get("content-type") ?? "";
  // Requiring the JSON content type also keeps other sites from posting forms here (it needs a CORS preflight).
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(
      415,
      `the request body must be JSON (Content-Type: application/json), not ${JSON.stringify(type)}`,
    );
  }
  const bytes = await readBody(request, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new HttpError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "the request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** The whole request body, refused with 413 once it passes `maxBytes`. */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    throw new HttpError(413, `request body of ${declared} bytes is over ${maxBytes} bytes`);
  }
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, `request body is over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Constant-time comparison of two strings (for the token). */
export function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** True for addresses only this machine can reach. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Whether a request's `Host` header names this server: an IP address (v4, or v6 in brackets), `localhost`, or a
 * name of `allowed` (exact, `*.domain` for its subdomains, `*` for any). The port is not compared. DNS rebinding
 * points an attacker's own name at this machine, and the browser then sends that name: refusing names nobody
 * configured stops it, while a rebinding page can never make a browser send an IP address as its host. A request
 * without the header (HTTP/1.0, not a browser) passes.
 */
export function hostAllowed(host: string | null, allowed: readonly string[]): boolean {
  if (host === null) return true;
  const h = host.trim().toLowerCase();
  if (allowed.includes("*")) return true;
  if (/^\[[0-9a-f:.]+\](:\d+)?$/.test(h)) return true;
  const name = h.replace(/:\d+$/, "").replace(/\.$/, "");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name === "localhost") return true;
  return allowed.some((a) => a.startsWith("*.") ? name.endsWith(a.slice(1)) : a.replace(/\.$/, "") === name);
}
