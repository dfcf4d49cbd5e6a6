/**
 * What the server says about itself: the OpenAPI document generated from the route declarations, and its health
 * (the catalog answers).
 */
import type { Catalog } from "../../catalog/catalog.ts";
import { ok, reply, type Route, route } from "../route.ts";
import { anyObject, object, string } from "../schema.ts";

/** GET /openapi.json, answering `document()` (made once, from every route including this one), and GET /healthz. */
export function systemRoutes(document: () => Record<string, unknown>, catalog: Catalog): Route[] {
  return [
    route({
      method: "get",
      path: "/openapi.json",
      summary: "This document, generated from the route declarations the server runs.",
      ok: ok("OpenAPI 3.1.", anyObject()),
      handler: () => reply(document(), { "cache-control": "no-cache" }),
    }),
    route({
      method: "get",
      path: "/healthz",
      summary: "200 when the catalog answers; 503 naming the catalog and the cause when it does not.",
      ok: ok("Healthy.", object({ catalog: string({ description: '"ok"' }) })),
      errors: [503],
      handler: async () => {
        await catalog.ping();
        return reply({ catalog: "ok" }, { "cache-control": "no-store" });
      },
    }),
  ];
}
