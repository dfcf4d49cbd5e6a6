/**
 * Keeps the garbage of frame buffers from piling up in the consumer's memory.
 *
 * Frames flow through the main thread at tens of MB/s as ArrayBuffers (fetch answers, HTTP bodies) whose bytes
 * live outside the JavaScript heap. V8 frees such a buffer only when a garbage collection finds its small heap
 * object dead, and on a small heap (the consumer's is ~30 MB) it starts a full collection for outside memory only
 * once ~64 MB more of it is held than after the last one: at a fleet's live rate the resident size then swings by
 * up to that much of dead frames (bench e2e: 173–207 MB peak). Asking V8 for a collection whenever the outside
 * memory has grown by `slackBytes` since the last one bounds that swing. The collection asked for is V8's
 * concurrent one (marking runs on a background thread, the event loop pauses for a few ms), and it is only asked
 * for when frames are flowing.
 *
 * It needs V8's `gc` function (`--expose-gc`, set by `deno task consume`); without it this does nothing.
 */

type GcFunction = (options?: { type?: "major" | "minor"; execution?: "async" | "sync" }) => unknown;

export interface ExternalMemoryGuard {
  /** Collections asked for so far. */
  readonly collections: number;
  /** Looks once (the timer does this every `intervalMs`): true when it asked for a collection. */
  check(): boolean;
  stop(): void;
}

export function guardExternalMemory(
  options: { slackBytes: number; intervalMs?: number; external?: () => number; gc?: GcFunction | null },
): ExternalMemoryGuard | null {
  const gc = options.gc !== undefined ? options.gc : (globalThis as { gc?: GcFunction }).gc ?? null;
  if (!gc) return null;
  const external = options.external ?? (() => Deno.memoryUsage().external);
  let floor = external();
  let collections = 0;
  const check = () => {
    const now = external();
    // After a collection the outside memory drops: that is the new floor (what is really in use).
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
    check,
    stop: () => clearInterval(timer),
  };
}
