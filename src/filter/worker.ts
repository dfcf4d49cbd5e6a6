/**
 * A worker that computes filter signatures off the consumer's event loop (see pool.ts). It builds the same
 * plugin from the same module and options as the main thread, then answers one message per frame.
 */
/// <reference lib="deno.worker" />
import { filterFromSpec, type FilterSpec } from "./loader.ts";
import type { FilterPlugin } from "../plugin.ts";

let plugin: FilterPlugin | null = null;

self.onmessage = async (event: MessageEvent) => {
  const message = event.data as
    | { type: "init"; spec: FilterSpec }
    | { type: "sign"; id: number; jpeg: Uint8Array };
  if (message.type === "init") {
    try {
      // The main thread type-checked a user's module already.
      plugin = await filterFromSpec(message.spec, true);
      self.postMessage({ type: "ready" });
    } catch (error) {
      self.postMessage({ type: "failed", error: (error as Error).message });
    }
    return;
  }
  try {
    const signature = await plugin!.signature(message.jpeg);
    self.postMessage({ type: "signed", id: message.id, signature });
  } catch (error) {
    const e = error as Error;
    self.postMessage({
      type: "error",
      id: message.id,
      name: e?.name ?? "Error",
      error: e?.message ?? String(error),
    });
  }
};
