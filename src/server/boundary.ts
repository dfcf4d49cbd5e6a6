/**
 * What errors mean over HTTP, in one place: the status each kind of error answers with, and the translation of
 * what library code throws for bad input today.
 *
 * By meaning: BadInputError 400, NotFoundError 404, ConflictError 409 (src/errors.ts); a ServiceError of the
 * catalog 503 (this server cannot work right now), of another service (a store) 502; an HttpError (http.ts: a
 * missing token, a wrong content type, a body too large, ...) its own status. Anything else is a bug: 500, logged.
 * A RangeError or SyntaxError is not taken for bad input any more: it is a 500 unless it came out of a library
 * call made through `library`/`fromLibrary`.
 */
import { BadInputError, ConflictError, messageOf, NotFoundError, ServiceError } from "../errors.ts";
import { errorResponse, HttpError } from "./http.ts";

/** The status and extra headers an error answers with; null for an unexpected error (a 500). */
export function statusOf(error: unknown): { status: number; headers?: Record<string, string> } | null {
  if (error instanceof HttpError) return { status: error.status, headers: error.headers };
  // NotFoundError and ConflictError are RangeErrors too: the more specific first.
  if (error instanceof NotFoundError) return { status: 404 };
  if (error instanceof ConflictError) return { status: 409 };
  if (error instanceof BadInputError) return { status: 400 };
  if (error instanceof ServiceError) {
    return error.service === "catalog"
      ? { status: 503, headers: error.retriable ? { "retry-after": "1" } : {} }
      : { status: 502 };
  }
  return null;
}

/** The `{"error": ...}` response for an error; `log` hears of the unexpected ones (500). */
export function errorReply(
  error: unknown,
  log: (message: string) => void,
  headers: Record<string, string> = {},
): Response {
  const known = statusOf(error);
  if (!known) {
    log(messageOf(error));
    return errorResponse(500, messageOf(error), headers);
  }
  return errorResponse(known.status, messageOf(error), { ...known.headers, ...headers });
}

/** How to read what a library call throws. */
export interface LibraryCall {
  /** The request field the call was given: the message of its bad input starts with it (`add: ...`). */
  field?: string;
  /**
   * The call runs a search filter: a filter naming something that does not exist (an unknown label) is bad
   * input (400), as the API documents, not a missing resource (404).
   */
  filter?: boolean;
}

/**
 * What library and catalog code throws, as the server means it. BadInputError, NotFoundError, ConflictError and
 * ServiceError pass as they are (but see LibraryCall). A plain RangeError or SyntaxError is how
 * src/library/* still names bad input in places (similar.ts, export.ts): out of a library call it is the client's
 * bad input (400).
 */
export function libraryError(error: unknown, call: LibraryCall = {}): unknown {
  const { field, filter } = call;
  const prefixed = (message: string) => field ? `${field}: ${message}` : message;
  if (filter && error instanceof NotFoundError) return new BadInputError(error.message, { cause: error });
  if (statusOf(error)) {
    return field && error instanceof BadInputError
      ? new BadInputError(prefixed(error.message), { cause: error })
      : error;
  }
  if (error instanceof RangeError || error instanceof SyntaxError) {
    return new BadInputError(prefixed(error.message), { cause: error });
  }
  return error;
}

/** Runs a synchronous library function (a parser), translating what it throws (libraryError). */
export function fromLibrary<T>(fn: () => T, call?: LibraryCall): T {
  try {
    return fn();
  } catch (error) {
    throw libraryError(error, call);
  }
}

/** Awaits a call into the catalog or the library, translating what it throws (libraryError). */
export async function library<T>(fn: () => T | Promise<T>, call?: LibraryCall): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw libraryError(error, call);
  }
}
