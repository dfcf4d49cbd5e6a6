/** What the server says about itself: the OpenAPI document generated from the route declarations. */
import { ok, reply, type Route, route } from "../route.ts";
import { anyObject } from "../schema.ts";

/** GET /openapi.json, answering `document()` (made once, from every route including this one). */
export function systemRoutes(document: () => Record<string, unknown>): Route[] {
  return [
    route({
      method: "get",
      path: "/openapi.json",
      summary: "This document, generated from the route declarations the server runs.",
      ok: ok("OpenAPI 3.1.", anyObject()),
      handler: () => reply(document(), { "cache-control": "no-cache" }),
    }),
  ];
}
