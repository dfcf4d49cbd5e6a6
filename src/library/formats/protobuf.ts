/**
 * Just enough Protocol Buffers for the MCAP export: encoding messages field by field (varints, doubles, strings,
 * bytes, nested messages, per the wire format of protobuf.dev/programming-guides/encoding) and the
 * `google.protobuf.FileDescriptorSet` that names their schema, which MCAP readers (Foxglove, the `mcap` Python
 * package with protobuf support) decode the messages with. Messages are written in field-number order; proto3
 * leaves out fields at their default (0, "", empty), and so does `Proto`.
 */

const encoder = new TextEncoder();

/** Bytes of one message, built field by field. Nested messages are built first and added with `message`. */
export class Proto {
  readonly #parts: Uint8Array[] = [];
  #size = 0;

  #push(bytes: Uint8Array): void {
    this.#parts.push(bytes);
    this.#size += bytes.length;
  }

  #tag(field: number, wireType: number): void {
    this.#push(varint(field * 8 + wireType));
  }

  /** An int32/int64/uint32/uint64/enum/bool field (non-negative values). */
  uint(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) return this;
    this.#tag(field, 0);
    this.#push(varint(value));
    return this;
  }

  double(field: number, value: number): this {
    if (value === 0) return this;
    this.#tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.#push(b);
    return this;
  }

  string(field: number, value: string): this {
    return value === "" ? this : this.bytes(field, encoder.encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    if (value.length === 0) return this;
    this.#tag(field, 2);
    this.#push(varint(value.length));
    this.#push(value);
    return this;
  }

  /** A nested message; `always` writes it even when empty (a message field present but all defaults). */
  message(field: number, value: Proto, always = false): this {
    if (value.size === 0 && !always) return this;
    this.#tag(field, 2);
    this.#push(varint(value.size));
    for (const p of value.parts) this.#push(p);
    return this;
  }

  get size(): number {
    return this.#size;
  }

  /** The pieces, in order (a large `bytes` field is one piece of its own, not copied). */
  get parts(): readonly Uint8Array[] {
    return this.#parts;
  }

  /** The message's bytes in one array. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** A base-128 varint of a non-negative integer. */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new RangeError(`varint of a negative value ${value}`);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

/** A `google.protobuf.Timestamp` of ms since the epoch. */
export function timestamp(ms: number): Proto {
  const seconds = Math.floor(ms / 1000);
  return new Proto().uint(1, seconds).uint(2, (ms - seconds * 1000) * 1_000_000);
}

// ------------------------------------------------------------------------------------------------ descriptors

/** Field types of descriptor.proto (FieldDescriptorProto.Type) that the schemas here use. */
export const TYPE = {
  double: 1,
  int64: 3,
  uint64: 4,
  int32: 5,
  bool: 8,
  string: 9,
  message: 11,
  bytes: 12,
  uint32: 13,
  enum: 14,
} as const;

/** A field of a message type: name, number, type, and for a message or enum field its full name (`.pkg.Name`). */
export interface FieldSpec {
  name: string;
  number: number;
  type: keyof typeof TYPE;
  repeated?: boolean;
  typeName?: string;
}

export interface MessageSpec {
  name: string;
  fields: FieldSpec[];
  /** Enums declared inside the message: name and values. */
  enums?: { name: string; values: [string, number][] }[];
}

/** A .proto file: its name, package, the files it imports, its messages (proto3). */
export interface FileSpec {
  name: string;
  package: string;
  dependencies?: string[];
  messages: MessageSpec[];
}

function fieldDescriptor(f: FieldSpec): Proto {
  const p = new Proto()
    .string(1, f.name)
    .uint(3, f.number)
    .uint(4, f.repeated ? 3 : 1) // LABEL_REPEATED : LABEL_OPTIONAL
    .uint(5, TYPE[f.type]);
  if (f.typeName) p.string(6, f.typeName);
  return p.string(10, camel(f.name)); // json_name, as protoc fills it in
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function messageDescriptor(m: MessageSpec): Proto {
  const p = new Proto().string(1, m.name);
  for (const f of m.fields) p.message(2, fieldDescriptor(f));
  for (const e of m.enums ?? []) {
    const ep = new Proto().string(1, e.name);
    for (const [name, number] of e.values) ep.message(2, new Proto().string(1, name).uint(2, number), true);
    p.message(4, ep);
  }
  return p;
}

/** A FileDescriptorProto. */
function fileDescriptor(f: FileSpec): Proto {
  const p = new Proto().string(1, f.name).string(2, f.package);
  for (const d of f.dependencies ?? []) p.string(3, d);
  for (const m of f.messages) p.message(4, messageDescriptor(m));
  return p.string(12, "proto3");
}

/** A serialized FileDescriptorSet of `files` (dependencies first, as readers build them in order). */
export function descriptorSet(files: FileSpec[]): Uint8Array {
  const set = new Proto();
  for (const f of files) set.message(1, fileDescriptor(f));
  return set.finish();
}
