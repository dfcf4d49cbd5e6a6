/** A tmpfs of a given size, for the tests of a full or read-only disk. Mounting needs root (with mount rights). */

/** Mounts a tmpfs of `size` (e.g. "16m") at `dir`; `text` is what mount printed. */
export async function mountTmpfs(
  dir: string,
  size: string,
  options: { readOnly?: boolean } = {},
): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}${options.readOnly ? ",ro" : ""}`, "tmpfs", dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { ok: out.success, text: text.trim() };
  } catch (error) {
    return { ok: false, text: String(error) }; // no mount command
  }
}

/** Unmounts `dir` (lazily: a process still holding a file there does not keep it mounted). */
export async function unmountTmpfs(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: ["-l", dir], stdout: "null", stderr: "null" }).output().catch(
    () => {},
  );
}

let probe: Promise<boolean> | null = null;

/**
 * Whether this process may mount a tmpfs, found once by mounting a small one. Tests that need one are ignored
 * where this is false, rather than passing without having checked anything.
 */
export function canMountTmpfs(): Promise<boolean> {
  probe ??= (async () => {
    if (Deno.uid() !== 0) return false;
    const dir = await Deno.makeTempDir({ prefix: "frame-bucket-tmpfs-probe-" });
    try {
      const { ok } = await mountTmpfs(dir, "64k");
      if (ok) await unmountTmpfs(dir);
      return ok;
    } finally {
      await Deno.remove(dir).catch(() => {});
    }
  })();
  return probe;
}
