/**
 * The project's one error class for trouble with outside services (Kafka, S3, the camera).
 *
 * Everything else uses the built-in classes by meaning: TypeError for a value of the wrong kind, RangeError for a
 * value out of bounds, SyntaxError for bytes that do not parse.
 */
export class ServiceError extends Error {
  /** True when trying again later may succeed (a network blip, a server restarting). */
  readonly retriable: boolean;
  /** Which service: "kafka", "s3", "camera". */
  readonly service: string;

  constructor(service: string, message: string, options: { retriable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "ServiceError";
    this.service = service;
    this.retriable = options.retriable;
  }
}

/** The message of any thrown value, for log lines. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/**
 * Input from a user or a client that cannot be used: the message names the value and the fix. HTTP answers it
 * with 400. A RangeError, so code that treats RangeError as bad input keeps working.
 */
export class BadInputError extends RangeError {}

/** Something named that does not exist (an unknown frame key, label or clip). HTTP answers it with 404. */
export class NotFoundError extends RangeError {}

/**
 * A change that clashes with what exists (a rename onto an existing label without merge): the message names both
 * and the way out. HTTP answers it with 409.
 */
export class ConflictError extends RangeError {}
