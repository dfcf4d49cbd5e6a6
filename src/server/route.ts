/**
 * A route is declared once: method, path, summary, its path and query parameters, body and answers, and the
 * handler. From that one declaration come the request's validation (the handler gets typed, checked values), the
 * handler's types (its result must be the declared answer's type) and the route's entry in /openapi.json
 * (openapi.ts). Nothing about a route is written twice.
 *
 *     route({
 *       method: "get",
 *       path: "/api/frames/{key}/similar",
 *       summary: "The frames nearest to this one by aHash hamming distance (the frame itself left out).",
 *       params: { key: KEY },
 *       query: { k: int("How many frames.", { min: 1, max: 1000, fallback: 20 }), robot: ROBOTS },
 *       ok: ok("Best first.", object({ frames: array(FRAME) })),
 *       errors: [404],
 *       handler: async ({ params, query }) => ({ frames: ... }),
 *     })
 *
 * Methods are written in lower case, as OpenAPI writes them.
 */
import { type JsonSchema, type Param, type ParamType, type Shape } from "./schema.ts";
import { BadInputError } from "../errors.ts";
import { HttpError, json, readBody, readJsonObject } from "./http.ts";

export type Method = "get" | "post" | "patch" | "delete";

export type Params = Record<string, Param<unknown>>;
export type ParamValues<P extends Params> = { [K in keyof P]: ParamType<P[K]> };

type Content = Record<string, { schema: JsonSchema }>;

/** A request body: how it is read and how it is documented. */
export interface Body<T> {
  readonly description?: string;
  readonly content: Content;
  readonly components: Readonly<Record<string, JsonSchema>>;
  /** Statuses reading it may answer with besides 400 (413 too large, 415 wrong content type). */
  readonly statuses: readonly number[];
  read(request: Request): Promise<T>;
}

/** A JSON object body (Content-Type: application/json, at most `maxBytes`), read by `shape`. */
export function jsonBody<T>(shape: Shape<T>, maxBytes = 1024 * 1024): Body<T> {
  return {
    content: { "application/json": { schema: shape.schema } },
    components: shape.components,
    statuses: [413, 415],
    read: async (request) => shape.read(await readJsonObject(request, maxBytes), ""),
  };
}

/** Raw bytes of one of `types` (415 for another Content-Type), at most `maxBytes`, not empty. */
export function upload(
  types: readonly string[],
  options: { maxBytes: number; description: string; refused: (type: string) => string; empty: string },
): Body<Uint8Array> {
  const accepted = new RegExp(`^(${types.map((t) => t.replace(/[/.+]/g, "\\$&")).join("|")})\\b`, "i");
  return {
    description: options.description,
    content: { [types[0]]: { schema: { type: "string", contentMediaType: types[0] } } },
    components: {},
    statuses: [413, 415],
    read: async (request) => {
      const type = request.headers.get("content-type") ?? "";
      if (!accepted.test(type)) throw new HttpError(415, options.refused(type));
      const bytes = await readBody(request, options.maxBytes);
      if (bytes.length === 0) throw new BadInputError(options.empty);
      return bytes;
    },
  };
}

/** The answer when all goes well: its status, description, content and headers. */
export interface Success<T> {
  readonly status: number;
  readonly description: string;
  readonly content?: Content;
  readonly headers?: Readonly<Record<string, string>>;
  readonly components: Readonly<Record<string, JsonSchema>>;
  /** Only carries the type the handler must return (T for JSON, never for a Response it makes itself). */
  readonly type?: T;
}

/** A JSON answer of this shape: the handler returns the value (or `reply(value, headers)`). */
export function ok<T>(description: string, shape: Shape<T>, status = 200): Success<T> {
  return {
    status,
    description,
    content: { "application/json": { schema: shape.schema } },
    components: shape.components,
  };
}

/** A non-JSON answer (an image, a tar): the handler makes the Response itself. */
export function file(
  mediaType: string,
  description: string,
  headers: Record<string, string> = {},
): Success<never> {
  return {
    status: 200,
    description,
    content: { [mediaType]: { schema: { type: "string", contentMediaType: mediaType } } },
    headers,
    components: {},
  };
}

const REPLY = Symbol("reply");

/** A JSON answer with extra headers (e.g. Location). */
export interface Reply<T> {
  readonly [REPLY]: true;
  readonly body: T;
  readonly headers: Record<string, string>;
}

export function reply<T>(body: T, headers: Record<string, string>): Reply<T> {
  return { [REPLY]: true, body, headers };
}

/** What a handler may return: the declared JSON value (or a reply of it), or a Response for a file answer. */
export type Outcome<R> = [R] extends [never] ? Response : R | Reply<R>;

export interface Input<P extends Params, Q extends Params, B> {
  params: ParamValues<P>;
  query: ParamValues<Q>;
  body: B;
  request: Request;
  url: URL;
}

export interface RouteSpec<P extends Params, Q extends Params, B, R> {
  method: Method;
  /** e.g. `/api/frames/{key}/image`: each `{name}` is one path segment, declared in `params`. */
  path: string;
  summary: string;
  description?: string;
  /** Needs the token when one is configured; default: every method but get. */
  write?: boolean;
  params?: P;
  query?: Q;
  /** Request headers the handler reads (name: what for), for the document. */
  headers?: Record<string, string>;
  body?: Body<B>;
  ok: Success<R>;
  /** Other answers than errors (status: description), e.g. 304. */
  also?: Record<number, string>;
  /**
   * Error statuses the handler answers with (404, 409, 502, ...). 400 (bad parameters or body), 401 (the token),
   * 413 and 415 (the body) are added where the declaration implies them.
   */
  errors?: number[];
  handler(input: Input<P, Q, B>): Outcome<NoInfer<R>> | Promise<Outcome<NoInfer<R>>>;
}

/** A declared route, types erased: what the router matches, the app runs and the document describes. */
export interface Route {
  readonly method: Method;
  readonly path: string;
  readonly write: boolean;
  // deno-lint-ignore no-explicit-any
  readonly spec: RouteSpec<Params, Params, any, unknown>;
  /** Validates the request against the declaration and runs the handler; `params` are the decoded segments. */
  run(request: Request, url: URL, params: Record<string, string>): Promise<Response>;
}

// deno-lint-ignore ban-types
export function route<P extends Params = {}, Q extends Params = {}, B = undefined, R = never>(
  spec: RouteSpec<P, Q, B, R>,
): Route {
  const inPath = [...spec.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  const declared = Object.keys(spec.params ?? {});
  if (inPath.join() !== declared.join()) {
    throw new TypeError(
      `route ${spec.method} ${spec.path}: path parameters ${inPath.join(", ") || "(none)"} are declared as ` +
        `${declared.join(", ") || "(none)"}`,
    );
  }
  const pathParams = Object.entries(spec.params ?? {});
  const queryParams = Object.entries(spec.query ?? {});
  return {
    method: spec.method,
    path: spec.path,
    write: spec.write ?? spec.method !== "get",
    spec: spec as unknown as Route["spec"],
    async run(request, url, raw) {
      const params: Record<string, unknown> = {};
      for (const [name, p] of pathParams) params[name] = p.read([raw[name]], name, url.searchParams);
      const query: Record<string, unknown> = {};
      for (const [name, p] of queryParams) {
        query[name] = p.read(url.searchParams.getAll(name), name, url.searchParams);
      }
      const body = spec.body ? await spec.body.read(request) : undefined;
      const out: unknown = await spec.handler({
        params: params as ParamValues<P>,
        query: query as ParamValues<Q>,
        body: body as B,
        request,
        url,
      });
      if (out instanceof Response) return out;
      if (typeof out === "object" && out !== null && REPLY in out) {
        const r = out as Reply<unknown>;
        return json(r.body, spec.ok.status, r.headers);
      }
      return json(out, spec.ok.status);
    },
  };
}
