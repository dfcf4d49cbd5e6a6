/**
 * Log lines: `2026-02-18T09:36:16.735Z INFO  [tag] message`, or one JSON object per line with `format = "json"`.
 * Everything that logs takes a Logger, so tests can capture lines and nothing reads the environment here.
 */

export type Level = "error" | "warn" | "info" | "debug";
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };
export const LEVELS = Object.keys(RANK) as Level[];

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** A logger whose lines carry `[tag]`, e.g. `filter:ahash`. */
  child(tag: string): Logger;
}

export interface LogOptions {
  level: Level;
  format: "text" | "json";
  /** Where lines go; stderr by default so stdout stays for a tool's own output. */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

export function createLogger(options: LogOptions, tag = ""): Logger {
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const emit = (level: Level, message: string) => {
    if (RANK[level] > RANK[options.level]) return;
    const time = new Date().toISOString();
    if (options.format === "json") {
      write(JSON.stringify({ time, level, tag: tag || undefined, msg: message }));
    } else {
      write(`${time} ${level.toUpperCase().padEnd(5)} ${tag ? `[${tag}] ` : ""}${message}`);
    }
  };
  return {
    error: (m) => emit("error", m),
    warn: (m) => emit("warn", m),
    info: (m) => emit("info", m),
    debug: (m) => emit("debug", m),
    child: (t) => createLogger(options, tag ? `${tag}:${t}` : t),
  };
}

/** A logger that keeps its lines in memory, for tests. */
export function memoryLogger(level: Level = "debug"): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, format: "text", write: (l) => lines.push(l) });
  return Object.assign(logger, { lines });
}
