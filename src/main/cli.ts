/**
 * What every command-line entry point shares: flag parsing with a usage text, and turning a start-up failure
 * into one clear line and an exit code instead of a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { messageOf, ServiceError } from "../errors.ts";

/** Parses flags; prints usage and exits on --help or a bad flag. */
export function parseCli<T extends NonNullable<ParseArgsConfig["options"]>>(
  usage: string,
  options: T,
  args: string[] = Deno.args,
) {
  try {
    const parsed = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    if ((parsed.values as Record<string, unknown>).help) {
      console.log(usage);
      Deno.exit(0);
    }
    return parsed;
  } catch (error) {
    console.error(`${messageOf(error)}\n\n${usage}`);
    Deno.exit(2);
  }
}

/** Runs `main`; a thrown error becomes `error: <message>` on stderr and exit code 1 (2 for bad config). */
export async function runMain(main: () => Promise<void | number>): Promise<void> {
  try {
    const code = await main();
    // Exit once the work is done, whatever a library left open (a keep-alive socket, a client timer): a finished
    // command must return its prompt.
    Deno.exit(typeof code === "number" ? code : 0);
  } catch (error) {
    const hint = error instanceof ServiceError
      ? ""
      : error instanceof Error && !(error instanceof TypeError ||
          error instanceof RangeError || error instanceof SyntaxError ||
          error instanceof Deno.errors.NotFound)
      ? `\n${error.stack ?? ""}`
      : "";
    console.error(`error: ${messageOf(error)}${hint}`);
    Deno.exit(error instanceof ServiceError ? 1 : 2);
  }
}

/** Resolves once SIGINT or SIGTERM arrives. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const handler = (name: string) => () => resolve(name);
    Deno.addSignalListener("SIGINT", handler("SIGINT"));
    Deno.addSignalListener("SIGTERM", handler("SIGTERM"));
  });
}
