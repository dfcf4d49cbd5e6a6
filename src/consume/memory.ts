/**
 * Keeps garbage from piling up in the consumer's memory.
 *
 * Frames flow through the main thread at tens of MB/s. Fetch answers are freed as soon as their batch is handled
 * (src/kafka/wire_consumer.ts), but everything around them (records, promises, HTTP exchanges, catalog rows) is
 * small garbage on the JavaScript heap, and the buffers of the kafkajs client and of HTTP bodies live outside it
 * until a collection finds them dead. On a heap as small as the consumer's (~25 MB in use) V8 starts a full
 * collection only once much more is held than after the last one: at a fleet's live rate the resident size then
 * climbs by tens of MB between collections (bench e2e at 20 x 10 fps: +25 MB of heap in 45 s). Asking V8 for a
 * collection whenever heap plus outside memory has grown by `slackBytes` since the last one bounds that. The
 * collection asked for is V8's concurrent one (marking runs on a background thread, the event loop pauses for a
 * few ms), and it is only asked for when memory grows, that is while frames are flowing.
 *
 * A collection frees buffers, but glibc's allocator keeps most freed pages of its heap for reuse, so the resident
 * size hardly falls: after each look that sees memory fall by `trimBytes` or more, the guard asks the allocator to
 * hand its free pages back (`malloc_trim`, through Deno's FFI). Where there is no glibc, or no FFI permission, it
 * does not.
 *
 * It needs V8's `gc` function (`--expose-gc`, set by `deno task consume`); without it this does nothing.
 */

type GcFunction = (options?: { type?: "major" | "minor"; execution?: "async" | "sync" }) => unknown;

export interface MemoryGuard {
  /** Collections asked for so far. */
  readonly collections: number;
  /** Times free pages were handed back to the system so far. */
  readonly trims: number;
  /** Looks once (the timer does this every `intervalMs`): true when it asked for a collection. */
  check(): boolean;
  stop(): void;
}

/** Bytes in use on the JavaScript heap plus outside it (ArrayBuffers). */
function heapAndExternal(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

export function guardMemory(
  options: {
    slackBytes: number;
    intervalMs?: number;
    /** What is measured (default: heap in use plus outside memory). */
    used?: () => number;
    gc?: GcFunction | null;
    /** A fall of memory between two looks that hands free pages back (default 4 MiB). */
    trimBytes?: number;
    /** Hands the allocator's free pages back (default: glibc's malloc_trim when there is one). */
    trim?: (() => void) | null;
  },
): MemoryGuard | null {
  const gc = options.gc !== undefined ? options.gc : (globalThis as { gc?: GcFunction }).gc ?? null;
  if (!gc) return null;
  const used = options.used ?? heapAndExternal;
  const trim = options.trim !== undefined ? options.trim : mallocTrim();
  const trimBytes = options.trimBytes ?? 4 * 1024 * 1024;
  let floor = used();
  let last = floor;
  let collections = 0;
  let trims = 0;
  const check = () => {
    const now = used();
    if (trim && now <= last - trimBytes) {
      trims++;
      trim();
    }
    last = now;
    // After a collection memory drops: that is the new floor (what is really in use).
    if (now < floor) floor = now;
    if (now - floor < options.slackBytes) return false;
    collections++;
    floor = now;
    gc({ type: "major", execution: "async" });
    return true;
  };
  const timer = setInterval(check, options.intervalMs ?? 250);
  Deno.unrefTimer(timer);
  return {
    get collections() {
      return collections;
    },
    get trims() {
      return trims;
    },
    check,
    stop: () => clearInterval(timer),
  };
}

/**
 * glibc's `malloc_trim(0)`: returns the free pages of every malloc arena to the system (not only the top of the
 * heap). Null where it cannot be had: not Linux, a libc other than glibc, or no FFI permission.
 */
export function mallocTrim(): (() => void) | null {
  if (Deno.build.os !== "linux") return null;
  try {
    const libc = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    return () => void libc.symbols.malloc_trim(0n);
  } catch {
    return null;
  }
}
