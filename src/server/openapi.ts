/**
 * The OpenAPI 3.1 description of the HTTP API (src/server/app.ts), served at /openapi.json. tests/server/app.stack_test.ts
 * checks that its paths and methods are exactly the router's.
 */

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({ type: "string", ...(description ? { description } : {}) });
const int = (description?: string): Schema => ({ type: "integer", ...(description ? { description } : {}) });
const arr = (items: Schema): Schema => ({ type: "array", items });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  ...(required.length ? { required } : {}),
});

function query(name: string, description: string, schema: Schema = str(), repeat = false): Schema {
  return {
    name,
    in: "query",
    description,
    schema: repeat ? arr(schema) : schema,
    ...(repeat ? { style: "form", explode: true } : {}),
  };
}

const path = (name: string, description: string): Schema => ({
  name,
  in: "path",
  required: true,
  description,
  schema: str(),
});

const KEY = path("key", "The frame's object key, percent-encoded as one segment ('/' as %2F).");
const CLIP_ID = { ...path("id", "Clip id."), schema: int() };
const TIME = "ISO 8601 (UTC unless an offset is given) or milliseconds since the epoch; inclusive";
const SPAN = [
  query("from", `Capture time at or after this. ${TIME}.`),
  query("to", `Capture time at or before this. ${TIME}; a date means to the end of that day.`),
];
const ROBOTS = query("robot", "Only these robots (repeatable).", str(), true);
const AUTHOR = query("author", "Who makes the change (recorded in the journal).");

function jsonBody(schema: Schema): Schema {
  return { required: true, content: { "application/json": { schema } } };
}

function ok(description: string, schema: Schema, status = "200"): Record<string, Schema> {
  return { [status]: { description, content: { "application/json": { schema } } } };
}

const ERROR_TEXTS: Record<number, string> = {
  400: "Bad input; the error names the parameter and value.",
  401:
    "No or the wrong token: writes need `Authorization: Bearer <server.token>` when a token is set; reads " +
    "too (header, or the UI's frame-bucket-token-<port> cookie) when the server is bound beyond loopback " +
    "without server.public_reads.",
  403:
    "The Host header names a host this server does not answer to (not an IP address, localhost or a name " +
    "of server.allowed_hosts): a guard against DNS rebinding.",
  404: "Unknown frame, label, clip or robot.",
  409: "The new label name exists and merge was not requested.",
  413: "The body is too large.",
  415: "Wrong Content-Type.",
  502: "The store holding the frame failed.",
};

function errors(...codes: number[]): Record<string, Schema> {
  return Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));
}

const WRITE_ERRORS = [400, 401, 415];
const SECURED = { security: [{ token: [] }] };

/** The document. */
export function openApiDocument(): Record<string, unknown> {
  const jpeg = (description: string) => ({
    description,
    headers: {
      ETag: { schema: str(), description: "The frame's entity tag." },
      "Cache-Control": { schema: str(), description: "public, max-age=31536000, immutable" },
    },
    content: { "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } } },
  });
  const notModified = { "304": { description: "If-None-Match matched the ETag." } };
  const ifNoneMatch = { name: "If-None-Match", in: "header", schema: str() };
  const similarParams = [
    query("k", "How many frames (1-1000, default 20).", int()),
    query("max_distance", "Only frames at most this many bits away.", int()),
    ROBOTS,
    ...SPAN,
  ];

  return {
    openapi: "3.1.0",
    info: {
      title: "frame-bucket",
      version: "1",
      description: "Search, view, label and export the frames robot cameras stored. Errors are " +
        '`{"error": "..."}`. Writes (POST, PATCH, DELETE) need `Authorization: Bearer <server.token>` when a ' +
        "token is configured; reads need it too when the server is bound beyond loopback without " +
        "server.public_reads. Every request's Host must be an IP address, localhost or a name of " +
        "server.allowed_hosts (403 otherwise). Object keys are passed as one percent-encoded path segment.",
    },
    components: {
      securitySchemes: { token: { type: "http", scheme: "bearer" } },
      responses: Object.fromEntries(
        Object.entries(ERROR_TEXTS).map(([code, description]) => [
          `E${code}`,
          { description, content: { "application/json": { schema: ref("Error") } } },
        ]),
      ),
      schemas: {
        Error: obj({ error: str("What is wrong.") }, ["error"]),
        Robot: obj({
          robot_id: str(),
          frames: int(),
          bytes: int(),
          first_capture_time: str(),
          last_capture_time: str(),
          first_timestamp_ms: int(),
          last_timestamp_ms: int(),
          latest_key: { type: ["string", "null"] },
        }, ["robot_id", "frames", "bytes"]),
        Frame: obj({
          key: str(),
          robot_id: str(),
          capture_time: str("ISO 8601, UTC"),
          timestamp_ms: int(),
          seq: int(),
          size: int(),
          tier: { type: "string", enum: ["local", "archiving", "archive"] },
          labels: arr(str()),
          direct_labels: arr(str()),
          clips: arr(obj({ id: int(), name: str(), labels: arr(str()) })),
          distance: int("Hamming distance (similarity results only)."),
        }, ["key", "robot_id", "capture_time", "timestamp_ms", "seq", "size", "tier", "labels"]),
        FrameDetail: {
          allOf: [
            ref("Frame"),
            obj({
              etag: { type: ["string", "null"] },
              filter: str(),
              filter_distance: { type: ["number", "null"] },
              hash: { type: ["string", "null"], description: "aHash bits in hex." },
              stored_time: str(),
              tier_changed_time: str(),
              previous_key: { type: ["string", "null"], description: "The robot's frame before this one." },
              next_key: { type: ["string", "null"], description: "The robot's frame after this one." },
            }),
          ],
        },
        Clip: obj({
          id: int(),
          robot_id: str(),
          from: str(),
          to: str(),
          from_ms: int(),
          to_ms: int(),
          name: str(),
          note: str(),
          labels: arr(str()),
          created: str(),
          author: { type: ["string", "null"] },
          frames: int("Frames of the robot in the span now."),
        }),
        Time: { type: ["string", "integer"], description: TIME },
      },
    },
    paths: {
      "/api/robots": {
        get: {
          summary: "Every robot with its frame count, bytes and first/last capture time.",
          responses: ok("Robots.", obj({ robots: arr(ref("Robot")) })),
        },
      },
      "/api/robots/{robot}/timeline": {
        get: {
          summary: "Frames per minute, hour or day of one robot (buckets without frames are left out).",
          parameters: [
            path("robot", "Robot id."),
            query(
              "bucket",
              "Bucket width; auto: minute up to 6 hours of frames, hour up to 60 days, else day.",
              {
                type: "string",
                enum: ["auto", "minute", "hour", "day"],
                default: "auto",
              },
            ),
            ...SPAN,
          ],
          responses: {
            ...ok(
              "Buckets.",
              obj({
                robot_id: str(),
                bucket: str(),
                bucket_ms: int(),
                first_timestamp_ms: int(),
                last_timestamp_ms: int(),
                frames: int(),
                buckets: arr(obj({ start: str(), start_ms: int(), frames: int() })),
              }),
            ),
            ...errors(400, 404),
          },
        },
      },
      "/api/frames": {
        get: {
          summary: "Search frames; keyset pages (pass next_cursor as cursor).",
          parameters: [
            ROBOTS,
            ...SPAN,
            query(
              "label",
              "Frames with this label, own or from a clip (repeatable: any of them).",
              str(),
              true,
            ),
            query("all_labels", "With several labels: frames with all of them.", { type: "boolean" }),
            query("tier", "Only frames in these tiers (repeatable).", {
              type: "string",
              enum: ["local", "archiving", "archive"],
            }, true),
            query("order", "Newest (default) or oldest first.", {
              type: "string",
              enum: ["newest", "oldest"],
            }),
            query("limit", "Frames per page, 1-1000 (default 50).", int()),
            query("cursor", "next_cursor of the previous page of the same search."),
            query("count", "Also return the total number of matching frames.", { type: "boolean" }),
          ],
          responses: {
            ...ok(
              "A page of frames.",
              obj({ frames: arr(ref("Frame")), next_cursor: { type: ["string", "null"] }, total: int() }),
            ),
            ...errors(400),
          },
        },
      },
      "/api/frames/{key}": {
        get: {
          summary:
            "A frame's metadata, labels (own and from clips), clips and its robot's previous/next frame.",
          parameters: [KEY],
          responses: { ...ok("The frame.", ref("FrameDetail")), ...errors(400, 404) },
        },
      },
      "/api/frames/{key}/image": {
        get: {
          summary: "The JPEG, from whichever tier holds it.",
          parameters: [KEY, ifNoneMatch],
          responses: { "200": jpeg("The frame."), ...notModified, ...errors(404, 502) },
        },
      },
      "/api/frames/{key}/thumb": {
        get: {
          summary: "A small grey JPEG thumbnail (1/8 scale, from the DC coefficients).",
          parameters: [KEY, ifNoneMatch],
          responses: { "200": jpeg("The thumbnail."), ...notModified, ...errors(404, 502) },
        },
      },
      "/api/frames/{key}/similar": {
        get: {
          summary: "The frames nearest to this one by aHash hamming distance (the frame itself left out).",
          parameters: [KEY, ...similarParams],
          responses: { ...ok("Best first.", obj({ frames: arr(ref("Frame")) })), ...errors(400, 404) },
        },
      },
      "/api/similar": {
        post: {
          summary: "The frames nearest to an uploaded JPEG, hashed by the consumer's own filter.",
          ...SECURED,
          parameters: similarParams,
          requestBody: {
            required: true,
            content: { "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } } },
          },
          responses: {
            ...ok("Best first.", obj({ hash: str("The upload's hash in hex."), frames: arr(ref("Frame")) })),
            ...errors(...WRITE_ERRORS, 413),
          },
        },
      },
      "/api/labels": {
        get: {
          summary: "Every label with its number of directly labelled frames and of clips.",
          responses: ok("Labels.", obj({ labels: arr(obj({ name: str(), frames: int(), clips: int() })) })),
        },
      },
      "/api/frames/labels": {
        post: {
          summary: "Add and/or remove labels on frames given by keys, or by robot + from + to.",
          ...SECURED,
          requestBody: jsonBody(obj({
            keys: arr(str()),
            robot: str(),
            from: ref("Time"),
            to: ref("Time"),
            add: arr(str()),
            remove: arr(str()),
            author: str(),
          })),
          responses: {
            ...ok("Counts of changed (frame, label) pairs.", obj({ added: int(), removed: int() })),
            ...errors(...WRITE_ERRORS, 404),
          },
        },
      },
      "/api/labels/rename": {
        post: {
          summary: "Rename a label everywhere; merge into an existing one with merge: true.",
          ...SECURED,
          requestBody: jsonBody(
            obj({ from: str(), to: str(), merge: { type: "boolean" }, author: str() }, ["from", "to"]),
          ),
          responses: {
            ...ok("Renamed.", obj({ from: str(), to: str(), merged: { type: "boolean" } })),
            ...errors(...WRITE_ERRORS, 404, 409),
          },
        },
      },
      "/api/labels/{name}": {
        delete: {
          summary: "Delete a label from every frame and clip.",
          ...SECURED,
          parameters: [path("name", "Label name."), AUTHOR],
          responses: {
            ...ok("Deleted.", obj({ deleted: str(), frames: int(), clips: int() })),
            ...errors(401, 404),
          },
        },
      },
      "/api/clips": {
        get: {
          summary: "Clips, oldest span first.",
          parameters: [
            query("robot", "Only this robot's."),
            query("label", "Only clips with this label."),
            ...SPAN,
          ],
          responses: { ...ok("Clips.", obj({ clips: arr(ref("Clip")) })), ...errors(400) },
        },
        post: {
          summary: "Create a clip: a robot's time span with a name, note and labels.",
          ...SECURED,
          requestBody: jsonBody(obj({
            robot: str(),
            from: ref("Time"),
            to: ref("Time"),
            name: str(),
            note: str(),
            labels: arr(str()),
            author: str(),
          }, ["robot", "from", "to", "name"])),
          responses: { ...ok("The clip.", ref("Clip"), "201"), ...errors(...WRITE_ERRORS) },
        },
      },
      "/api/clips/{id}": {
        patch: {
          summary: "Change a clip; labels replaces its labels, add_labels/remove_labels edit them.",
          ...SECURED,
          parameters: [CLIP_ID],
          requestBody: jsonBody(obj({
            robot: str(),
            from: ref("Time"),
            to: ref("Time"),
            name: str(),
            note: str(),
            labels: arr(str()),
            add_labels: arr(str()),
            remove_labels: arr(str()),
            author: str(),
          })),
          responses: { ...ok("The clip.", ref("Clip")), ...errors(...WRITE_ERRORS, 404) },
        },
        delete: {
          summary: "Delete a clip (its labels stay defined).",
          ...SECURED,
          parameters: [CLIP_ID, AUTHOR],
          responses: { ...ok("Deleted.", obj({ deleted: int() })), ...errors(400, 401, 404) },
        },
      },
      "/api/changes": {
        get: {
          summary: "The change journal (labels and clips), oldest first unless order=newest.",
          parameters: [
            query("after", "Only entries after this id (for polling).", int()),
            query("target", "Only entries for this target (a key, robot:ID, label:NAME, clip:ID)."),
            query("since", `Only entries at or after this time. ${TIME}.`),
            query("limit", "At most this many (1-1000, default 100).", int()),
            query("order", "oldest (default) or newest first.", {
              type: "string",
              enum: ["oldest", "newest"],
            }),
          ],
          responses: {
            ...ok(
              "Entries.",
              obj({
                changes: arr(obj({
                  id: int(),
                  time: str(),
                  at_ms: int(),
                  author: { type: ["string", "null"] },
                  action: str(),
                  target: str(),
                  detail: { type: "object" },
                })),
              }),
            ),
            ...errors(400),
          },
        },
      },
      "/api/export": {
        get: {
          summary:
            "A .tar of the frames of a search with labels (<label folder>/<robot>_<time>_<seq>.jpg + " +
            "metadata.jsonl, and MISSING.txt listing frames no store holds), streamed as it is built. The " +
            "filters are those of GET /api/frames, so both give the same frames.",
          description: "A store that fails before the first byte is a 502 with nothing sent. A store that " +
            "fails later cuts the stream short (a transfer error; the tar has no end marker). Frames whose " +
            "object no store holds are left out and listed in MISSING.txt, the last entry. GET " +
            "/api/exports/{id} tells how the export ended. Folder names are the labels with characters that " +
            "Windows refuses (and %) as %XX escapes; long or non-ASCII paths use PAX extended headers.",
          parameters: [
            query("label", "A label to export (repeatable; at least one).", str(), true),
            query("all_labels", "With several labels: only frames with all of them.", { type: "boolean" }),
            ROBOTS,
            ...SPAN,
            query("tier", "Only frames in these tiers (repeatable).", {
              type: "string",
              enum: ["local", "archiving", "archive"],
            }, true),
            query(
              "export_id",
              "An id for this export (8-64 of A-Z a-z 0-9 - _), to ask GET /api/exports/{id} how it ended; " +
                "default: a new UUID (in X-Export-Id).",
            ),
          ],
          responses: {
            "200": {
              description: "The archive (X-Frame-Count: frames matching; X-Export-Id: the export's id).",
              content: {
                "application/x-tar": { schema: { type: "string", contentMediaType: "application/x-tar" } },
              },
            },
            ...errors(400, 502),
          },
        },
      },
      "/api/exports/{id}": {
        get: {
          summary: "How an export went: running, complete, incomplete (frames missing, listed in " +
            "MISSING.txt) or failed (the download was cut short). The last 200 exports are kept.",
          parameters: [path("id", "The export's id (export_id, or X-Export-Id of the download).")],
          responses: {
            ...ok(
              "The export's status.",
              obj({
                id: str(),
                state: { type: "string", enum: ["running", "complete", "incomplete", "failed"] },
                labels: arr(str()),
                total: int("Frames matching when it started."),
                frames: int("Frames handled so far."),
                files: int(),
                bytes: int(),
                missing: int("Frames no store holds (left out)."),
                missing_keys: arr(str("The first 20 missing frames' keys.")),
                error: { type: ["string", "null"] },
                started: str(),
                ended: { type: ["string", "null"] },
              }),
            ),
            ...errors(404),
          },
        },
      },
      "/openapi.json": {
        get: { summary: "This document.", responses: ok("OpenAPI 3.1.", { type: "object" }) },
      },
    },
  };
}
