/**
 * Shapes of what the HTTP API reads and answers, each with three faces: a TypeScript type (inferred), a JSON
 * Schema (for /openapi.json) and a reader that validates a request's value and names it in the error. Route
 * declarations (route.ts) are made of these, so the validation, the handler's types and the document come from
 * one place.
 *
 * Two kinds: `Shape`s for JSON values (request bodies and responses), and `Param`s for path and query parameters
 * (text; a query parameter may repeat). Readers throw BadInputError naming the value and what it must be.
 */
import { BadInputError, messageOf } from "../errors.ts";
import { checkRobotId } from "../key.ts";
import { parseTime, parseTimeRange } from "../library/search.ts";
import { fromLibrary } from "./boundary.ts";

export type JsonSchema = Record<string, unknown>;

// ------------------------------------------------------------------------------------------------ JSON shapes

/** A JSON value: its schema, the named schemas it refers to, and how to read it from a parsed request body. */
export interface Shape<T> {
  readonly schema: JsonSchema;
  /** Schemas under #/components/schemas that `schema` refers to (by name). */
  readonly components: Readonly<Record<string, JsonSchema>>;
  /** Reads a parsed JSON value; `name` is what the error calls it (a body field's name). */
  read(value: unknown, name: string): T;
}

/** A property an object may leave out (or give as null). */
export interface OptionalShape<T> extends Shape<T | undefined> {
  readonly optional: true;
}

/** The TypeScript type of a shape. */
export type Infer<S> = S extends Shape<infer T> ? T : never;

type Fields = Record<string, Shape<unknown>>;
type OptionalKeys<F> = { [K in keyof F]: F[K] extends { optional: true } ? K : never }[keyof F];
type Simplify<T> = { [K in keyof T]: T[K] } & unknown;
export type ObjectOf<F extends Fields> = Simplify<
  & { [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<F[K]> }
  & { [K in OptionalKeys<F>]?: Exclude<Infer<F[K]>, undefined> }
>;

function described(schema: JsonSchema, description?: string): JsonSchema {
  return description ? { ...schema, description } : schema;
}

function shape<T>(
  schema: JsonSchema,
  read: (value: unknown, name: string) => T,
  components: Record<string, JsonSchema> = {},
): Shape<T> {
  return { schema, components, read };
}

const merged = (shapes: Shape<unknown>[]) => Object.assign({}, ...shapes.map((s) => s.components));

export function string(
  options: { description?: string; minLength?: number; enum?: readonly string[] } = {},
): Shape<string> {
  const { description, ...rest } = options;
  return shape(described({ type: "string", ...rest }, description), (value, name) => {
    if (typeof value !== "string") throw new BadInputError(`${name} must be a string`);
    return value;
  });
}

/** One of a fixed set of strings. */
export function literal<T extends string>(values: readonly T[], description?: string): Shape<T> {
  return shape(described({ type: "string", enum: values }, description), (value, name) => {
    if (!values.includes(value as T)) {
      throw new BadInputError(`${name} ${JSON.stringify(value)} must be one of ${values.join(", ")}`);
    }
    return value as T;
  });
}

export function integer(description?: string): Shape<number> {
  return shape(described({ type: "integer" }, description), (value, name) => {
    if (!Number.isSafeInteger(value)) throw new BadInputError(`${name} must be a whole number`);
    return value as number;
  });
}

export function number(description?: string): Shape<number> {
  return shape(described({ type: "number" }, description), (value, name) => {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new BadInputError(`${name} must be a number`);
    }
    return value;
  });
}

export function boolean(description?: string): Shape<boolean> {
  return shape(described({ type: "boolean" }, description), (value, name) => {
    if (typeof value !== "boolean") throw new BadInputError(`${name} must be true or false`);
    return value;
  });
}

/** Any JSON object (documented as such, read as it is). */
export function anyObject(description?: string): Shape<Record<string, unknown>> {
  return shape(described({ type: "object" }, description), (value, name) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new BadInputError(`${name} must be a JSON object`);
    }
    return value as Record<string, unknown>;
  });
}

/** The schema of a value or null (an enum lists null too, or null would not validate). */
function orNull(inner: JsonSchema): JsonSchema {
  const type = inner.type;
  if (typeof type !== "string" || "$ref" in inner) return { anyOf: [inner, { type: "null" }] };
  const out: JsonSchema = { ...inner, type: [type, "null"] };
  if (Array.isArray(inner.enum)) out.enum = [...inner.enum, null];
  return out;
}

export function nullable<T>(inner: Shape<T>, description?: string): Shape<T | null> {
  return shape(
    described(orNull(inner.schema), description),
    (value, name) => value === null ? null : inner.read(value, name),
    inner.components,
  );
}

/**
 * A property that may be left out (undefined: keep what is there) or given as null (clear it), e.g. a label's
 * colour in POST /api/labels. Unlike `optional`, null is kept.
 */
export function clearable<T>(inner: Shape<T>): OptionalShape<T | null> {
  return {
    optional: true,
    schema: orNull(inner.schema),
    components: inner.components,
    read: (value, name) => value === undefined ? undefined : value === null ? null : inner.read(value, name),
  };
}

/** A property that must be present, though null may be its value; `message` says what to give when it is not. */
export function present<T>(inner: Shape<T | null>, message: string): Shape<T | null> {
  return shape(inner.schema, (value, name) => {
    if (value === undefined) throw new BadInputError(message);
    return inner.read(value, name);
  }, inner.components);
}

/** A property that may be left out; null counts as left out. */
export function optional<T>(inner: Shape<T>): OptionalShape<T> {
  return {
    optional: true,
    schema: inner.schema,
    components: inner.components,
    read: (value, name) => value === undefined || value === null ? undefined : inner.read(value, name),
  };
}

/** A property that must be given (not left out, null or ""), with the message for when it is not. */
export function required<T>(inner: Shape<T>, message: string): Shape<T> {
  return shape(inner.schema, (value, name) => {
    if (value === undefined || value === null || value === "") throw new BadInputError(message);
    return inner.read(value, name);
  }, inner.components);
}

export function array<T>(
  item: Shape<T>,
  options: { description?: string; minItems?: number; maxItems?: number } = {},
): Shape<T[]> {
  const { description, ...limits } = options;
  return shape(described({ type: "array", items: item.schema, ...limits }, description), (value, name) => {
    if (!Array.isArray(value)) throw new BadInputError(`${name} must be an array`);
    const out = value.map((v, i) => item.read(v, `${name}[${i}]`));
    if (limits.minItems !== undefined && out.length < limits.minItems) {
      throw new BadInputError(`${name} must hold at least ${limits.minItems}`);
    }
    if (limits.maxItems !== undefined && out.length > limits.maxItems) {
      throw new BadInputError(`${name} must hold at most ${limits.maxItems}`);
    }
    return out;
  }, item.components);
}

/**
 * An array of strings (a body's list of keys or label names). `count` bounds its length, with the message for a
 * list outside them; `nonEmpty` refuses "" items with that message.
 */
export function strings(
  options: {
    description?: string;
    count?: { min?: number; max: number; message: (name: string, length: number) => string };
    nonEmpty?: (name: string) => string;
  } = {},
): Shape<string[]> {
  const { description, count, nonEmpty } = options;
  const schema: JsonSchema = {
    type: "array",
    items: nonEmpty ? { type: "string", minLength: 1 } : { type: "string" },
    ...(count?.min !== undefined ? { minItems: count.min } : {}),
    ...(count ? { maxItems: count.max } : {}),
  };
  return shape(described(schema, description), (value, name) => {
    if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) {
      throw new BadInputError(`${name} must be an array of strings`);
    }
    if (count && (value.length < (count.min ?? 0) || value.length > count.max)) {
      throw new BadInputError(count.message(name, value.length));
    }
    if (nonEmpty && value.includes("")) throw new BadInputError(nonEmpty(name));
    return value as string[];
  });
}

/**
 * A JSON object with these properties (read in this order; left-out optional ones are absent). `strict` refuses
 * properties not listed (additionalProperties: false), naming them and the known ones.
 */
export function object<F extends Fields>(
  fields: F,
  options: { description?: string; strict?: boolean } = {},
): Shape<ObjectOf<F>> {
  const names = Object.keys(fields);
  const requiredNames = names.filter((n) => !("optional" in fields[n]));
  const schema: JsonSchema = {
    type: "object",
    properties: Object.fromEntries(names.map((n) => [n, fields[n].schema])),
    ...(requiredNames.length ? { required: requiredNames } : {}),
    ...(options.strict ? { additionalProperties: false } : {}),
  };
  return shape(described(schema, options.description), (value, name) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new BadInputError(`${name || "the value"} must be a JSON object`);
    }
    const record = value as Record<string, unknown>;
    if (options.strict) {
      const unknown = Object.keys(record).filter((k) => !names.includes(k));
      if (unknown.length) {
        throw new BadInputError(`unknown field(s) ${unknown.join(", ")} (known: ${names.join(", ")})`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const n of names) {
      const v = fields[n].read(record[n], name ? `${name}.${n}` : n);
      if (v !== undefined) out[n] = v;
    }
    return out as ObjectOf<F>;
  }, merged(Object.values(fields)));
}

/** A shape documented once under #/components/schemas/`name` and referred to from everywhere it is used. */
export function named<T>(name: string, inner: Shape<T>): Shape<T> {
  return shape(
    { $ref: `#/components/schemas/${name}` },
    inner.read,
    { ...inner.components, [name]: inner.schema },
  );
}

/** Both of two object shapes (allOf), e.g. a frame and the fields its detail adds. */
export function both<A, B>(a: Shape<A>, b: Shape<B>): Shape<A & B> {
  return shape({ allOf: [a.schema, b.schema] }, (value, name) =>
    ({
      ...a.read(value, name) as object,
      ...b.read(value, name) as object,
    }) as A & B, merged([a, b]));
}

export const TIME_TEXT =
  "ISO 8601 (UTC unless an offset is given) or milliseconds since the epoch; inclusive";

/**
 * A capture time in a body: ISO 8601 / compact / epoch-ms text, or a number of ms. With `end`, a time given at a
 * coarser precision than ms means the last ms of its unit (a date covers the whole day).
 */
export function time(options: { end?: boolean } = {}): Shape<number> {
  return shape({ $ref: "#/components/schemas/Time" }, (value, name) => {
    if (typeof value === "number") {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new BadInputError(`${name} ${value} is not a whole number of ms since the epoch`);
      }
      return value;
    }
    if (typeof value !== "string" || value === "") {
      throw new BadInputError(`${name} must be an ISO 8601 time or ms since the epoch`);
    }
    return fromLibrary(() => parseTime(value, name, { end: options.end }));
  }, { Time: { type: ["string", "integer"], description: TIME_TEXT } });
}

// ------------------------------------------------------------------------------------------ path and query

/** A path or query parameter. `T` is what the handler gets. */
export interface Param<T> {
  /** The schema of one value (an array of them when `repeat`). */
  readonly schema: JsonSchema;
  readonly description: string;
  /** A query parameter that may be given several times (`robot=a&robot=b`). */
  readonly repeat: boolean;
  /** Reads the parameter `name` from the query (all its values; [] when absent). */
  read(values: string[], name: string, query: URLSearchParams): T;
}

/** The TypeScript type of a parameter. */
export type ParamType<P> = P extends Param<infer T> ? T : never;

function param<T>(
  schema: JsonSchema,
  description: string,
  read: (values: string[], name: string, query: URLSearchParams) => T,
  repeat = false,
): Param<T> {
  return { schema: repeat ? { type: "array", items: schema } : schema, description, repeat, read };
}

/** The first value when one was given and it is not empty (`?x=` counts as not given). */
const given = (values: string[]): string | undefined => values[0] === "" ? undefined : values[0];

/** Text; left out or empty is undefined. */
export function text(description: string): Param<string | undefined> {
  return param({ type: "string" }, description, (values) => given(values) || undefined);
}

/** A whole number from `min` to `max`; left out or empty is `fallback` (undefined when there is none). */
export function int(
  description: string,
  options: { min: number; max: number; fallback: number },
): Param<number>;
export function int(description: string, options: { min: number; max: number }): Param<number | undefined>;
export function int(
  description: string,
  options: { min: number; max: number; fallback?: number },
): Param<number | undefined> {
  const { min, max, fallback } = options;
  const schema: JsonSchema = {
    type: "integer",
    minimum: min,
    maximum: max,
    ...(fallback !== undefined ? { default: fallback } : {}),
  };
  return param(schema, description, (values, name) => {
    const t = given(values);
    if (t === undefined) return fallback;
    const n = Number(t);
    if (!/^-?\d+$/.test(t.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new BadInputError(`${name} ${JSON.stringify(t)} must be a whole number from ${min} to ${max}`);
    }
    return n;
  });
}

/** true or 1, false or 0; left out or empty is false. */
export function flag(description: string): Param<boolean> {
  return param({ type: "boolean", default: false }, description, (values, name) => {
    const t = given(values);
    if (t === undefined || t === "false" || t === "0") return false;
    if (t === "true" || t === "1") return true;
    throw new BadInputError(`${name} ${JSON.stringify(t)} must be true or false`);
  });
}

/** One of `allowed`; left out or empty is `fallback`. */
export function choice<T extends string>(allowed: readonly T[], fallback: T, description: string): Param<T> {
  return param({ type: "string", enum: allowed, default: fallback }, description, (values, name) => {
    const t = given(values);
    if (t === undefined) return fallback;
    if (!allowed.includes(t as T)) {
      throw new BadInputError(`${name} ${JSON.stringify(t)} must be one of ${allowed.join(", ")}`);
    }
    return t as T;
  });
}

/** Text matching `pattern` (`message` says what it must be); left out is undefined. */
export function matching(
  pattern: RegExp,
  description: string,
  message: string,
): Param<string | undefined> {
  return param({ type: "string", pattern: pattern.source }, description, (values, name) => {
    const t = values[0];
    if (t === undefined) return undefined;
    if (!pattern.test(t)) throw new BadInputError(`${name} ${JSON.stringify(t.slice(0, 80))} ${message}`);
    return t;
  });
}

/** A repeatable parameter: every non-empty value, each checked by `item` (its schema, or a list of values). */
export function list<T extends string = string>(
  description: string,
  item: { enum?: readonly T[] } = {},
): Param<T[]> {
  const schema = item.enum ? { type: "string", enum: item.enum } : { type: "string" };
  return param(schema, description, (values, name) => {
    const out = values.filter((v) => v !== "");
    for (const v of out) {
      if (item.enum && !item.enum.includes(v as T)) {
        throw new BadInputError(`${name} ${JSON.stringify(v)} must be one of ${item.enum.join(", ")}`);
      }
    }
    return out as T[];
  }, true);
}

/**
 * A repeatable parameter whose values may also be comma lists (`status=a,b` is `status=a&status=b`), each one of
 * `allowed`; duplicates dropped.
 */
export function commaList<T extends string>(description: string, allowed: readonly T[]): Param<T[]> {
  return param(
    { type: "string", enum: allowed },
    `${description} (repeatable, or a comma list)`,
    (values, name) => {
      const out: T[] = [];
      for (const v of values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "")) {
        if (!allowed.includes(v as T)) {
          throw new BadInputError(`${name} ${JSON.stringify(v)} must be one of ${allowed.join(", ")}`);
        }
        if (!out.includes(v as T)) out.push(v as T);
      }
      return out;
    },
    true,
  );
}

/** Robot ids (repeatable), each one path segment of the object keys. */
export function robots(description: string): Param<string[]> {
  return param({ type: "string" }, description, (values, name) =>
    values.filter((r) => r !== "").map((r) => {
      try {
        return checkRobotId(r);
      } catch (error) {
        throw new BadInputError(`${name}: ${messageOf(error)}`);
      }
    }), true);
}

/** A capture time (ISO 8601 or epoch ms); left out or empty is undefined. */
export function at(description: string): Param<number | undefined> {
  return param({ type: "string" }, `${description} ${TIME_TEXT}.`, (values, name) => {
    const t = given(values);
    return t === undefined ? undefined : fromLibrary(() => parseTime(t, name));
  });
}

/**
 * The end of a span: a capture time where a date or minute covers all of it, and never before the parameter
 * `start` (when given).
 */
export function until(description: string, start: string): Param<number | undefined> {
  return param(
    { type: "string" },
    `${description} ${TIME_TEXT}; a date means to the end of that day.`,
    (values, name, query) =>
      fromLibrary(() => parseTimeRange(query.get(start), values[0] ?? null, [start, name]).toMs),
  );
}

/** A path parameter (one segment, decoded): text. */
export function segment(description: string): Param<string> {
  return param({ type: "string" }, description, (values) => values[0]);
}

/** A path parameter: a positive whole number (e.g. an id); `what` names it in the error. */
export function id(description: string, what: string): Param<number> {
  return param({ type: "integer" }, description, (values) => {
    const t = values[0];
    if (!/^\d{1,15}$/.test(t)) throw new BadInputError(`${what} ${JSON.stringify(t)} is not a number`);
    return Number(t);
  });
}
