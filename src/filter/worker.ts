/**
 * A worker that computes filter signatures off the consumer's event loop (see pool.ts). It builds the same
 * plugin from the same module and options as the main thread, then answers one message per frame. A frame comes
 * in a transfer buffer, which goes back with the answer for the next frame when the plugin keeps nothing of its
 * input (checked once, at start), and stays here otherwise.
 */
/// <reference lib="deno.worker" />
import { filterFromSpec, type FilterSpec } from "./loader.ts";
import type { FilterPlugin } from "../plugin.ts";
import { keepsInput } from "./input_check.ts";

let plugin: FilterPlugin | null = null;
/** Whether transfer buffers go back to the pool (the plugin keeps nothing of its input). */
let giveBack = false;

self.onmessage = async (event: MessageEvent) => {
  const message = event.data as
    | { type: "init"; spec: FilterSpec }
    | { type: "sign"; id: number; buffer: ArrayBuffer; length: number };
  if (message.type === "init") {
    try {
      // The main thread type-checked a user's module already.
      plugin = await filterFromSpec(message.spec, true);
      giveBack = !(await keepsInput(plugin));
      self.postMessage({ type: "ready", shared: giveBack });
    } catch (error) {
      self.postMessage({ type: "failed", error: (error as Error).message });
    }
    return;
  }
  const { id, buffer, length } = message;
  const back = giveBack ? { buffer } : {};
  const transfer = giveBack ? [buffer] : [];
  try {
    const signature = await plugin!.signature(new Uint8Array(buffer, 0, length));
    self.postMessage({ type: "signed", id, signature, ...back }, transfer);
  } catch (error) {
    const e = error as Error;
    self.postMessage({
      type: "error",
      id,
      name: e?.name ?? "Error",
      error: e?.message ?? String(error),
      ...back,
    }, transfer);
  }
};
