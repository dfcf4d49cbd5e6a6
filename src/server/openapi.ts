/**
 * The OpenAPI 3.1 description of the HTTP API, served at /openapi.json: generated from the route declarations
 * (route.ts) the server runs, so it says what the server validates and answers, and cannot drift from it.
 */
import type { Route } from "./route.ts";
import type { JsonSchema } from "./schema.ts";

/** What each error status means, for every route that can answer with it. */
const ERROR_TEXTS: Record<number, string> = {
  400: "Bad input; the error names the parameter and value.",
  401:
    "No or the wrong token: changes need `Authorization: Bearer <server.token>` when a token is set; reads " +
    "too (header, or the UI's frame-bucket-token-<port> cookie) when the server is bound beyond loopback " +
    "without server.public_reads.",
  403:
    "The Host header names a host this server does not answer to (not an IP address, localhost or a name " +
    "of server.allowed_hosts): a guard against DNS rebinding.",
  404: "Unknown frame, label, clip, box, journal entry, robot or export, or a frame no store holds.",
  409:
    "A conflict: a rename onto an existing label without merge, a hotkey another label holds, an entry already undone.",
  413: "The body is too large.",
  415: "Wrong Content-Type.",
  502: "A store failed (the frame's, or an export's before its first byte).",
  503: "The catalog cannot be used right now; try again (Retry-After).",
};

const DESCRIPTION = "Search, view, label and export the frames robot cameras stored. Errors are " +
  '`{"error": "..."}`. Changes (every method but GET) need `Authorization: Bearer <server.token>` when a ' +
  "token is configured; reads need it too when the server is bound beyond loopback without " +
  "server.public_reads. Every request's Host must be an IP address, localhost or a name of " +
  "server.allowed_hosts (403 otherwise). Object keys are passed as one percent-encoded path segment.";

/** The document for these routes; `readsNeedToken` marks reads as needing the token too. */
export function openApiDocument(
  routes: readonly Route[],
  options: { readsNeedToken?: boolean } = {},
): Record<string, unknown> {
  const schemas: Record<string, JsonSchema> = {
    Error: {
      type: "object",
      properties: { error: { type: "string", description: "What is wrong." } },
      required: ["error"],
    },
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { method, path, write, spec } of routes) {
    const params = Object.entries(spec.params ?? {});
    const query = Object.entries(spec.query ?? {});
    const parameters = [
      ...params.map(([name, p]) => ({
        name,
        in: "path",
        required: true,
        description: p.description,
        schema: p.schema,
      })),
      ...query.map(([name, p]) => ({
        name,
        in: "query",
        description: p.description,
        schema: p.schema,
        ...(p.repeat ? { style: "form", explode: true } : {}),
      })),
      ...Object.entries(spec.headers ?? {}).map(([name, description]) => ({
        name,
        in: "header",
        description,
        schema: { type: "string" },
      })),
    ];
    const secured = write || (options.readsNeedToken ?? false);
    const errors = new Set(spec.errors ?? []);
    if (params.length || query.length || spec.body) errors.add(400);
    if (secured) errors.add(401);
    for (const status of spec.body?.statuses ?? []) errors.add(status);
    for (const status of errors) {
      if (!ERROR_TEXTS[status]) throw new TypeError(`route ${method} ${path}: no text for error ${status}`);
    }
    Object.assign(schemas, spec.ok.components, spec.body?.components ?? {});
    const ok = spec.ok;
    const responses: Record<string, unknown> = {
      [ok.status]: {
        description: ok.description,
        ...(ok.headers && Object.keys(ok.headers).length
          ? {
            headers: Object.fromEntries(
              Object.entries(ok.headers).map((
                [name, description],
              ) => [name, { description, schema: { type: "string" } }]),
            ),
          }
          : {}),
        ...(ok.content ? { content: ok.content } : {}),
      },
      ...Object.fromEntries(
        Object.entries(spec.also ?? {}).map(([status, description]) => [status, { description }]),
      ),
      ...Object.fromEntries(
        [...errors].sort((a, b) => a - b).map((
          status,
        ) => [status, { $ref: `#/components/responses/E${status}` }]),
      ),
    };
    paths[path] ??= {};
    paths[path][method] = {
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(spec.body
        ? {
          requestBody: {
            required: true,
            ...(spec.body.description ? { description: spec.body.description } : {}),
            content: spec.body.content,
          },
        }
        : {}),
      responses,
      ...(secured ? { security: [{ token: [] }] } : {}),
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "frame-bucket", version: "1", description: DESCRIPTION },
    components: {
      securitySchemes: { token: { type: "http", scheme: "bearer" } },
      responses: Object.fromEntries(
        Object.entries(ERROR_TEXTS).map(([status, description]) => [
          `E${status}`,
          {
            description,
            content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
          },
        ]),
      ),
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
    },
    paths,
  };
}
