/**
 * Other revisions of this repository for benchmarks run side by side (`--rev REV`): a detached git worktree of
 * the commit under /tmp, reused by later runs while it is there.
 */

/** The repository's folder (no trailing slash). */
export const PROJECT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Runs git in `cwd` (default the repository); its stdout, trimmed. Throws with git's stderr when it fails. */
export async function git(args: string[], cwd = PROJECT): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** A detached worktree of `rev` under /tmp (reused when it is there); its folder and full commit hash. */
export async function revisionTree(rev: string): Promise<{ dir: string; sha: string }> {
  const sha = await git(["rev-parse", "--verify", `${rev}^{commit}`]).catch(() => {
    throw new RangeError(`--rev ${rev} is not a commit of ${PROJECT}: name a commit, a tag or a branch`);
  });
  const dir = `/tmp/frame-bucket-rev-${sha.slice(0, 12)}`;
  try {
    if ((await git(["rev-parse", "HEAD"], dir)) === sha) return { dir, sha };
  } catch {
    // Not there yet (or not a worktree any more): make it.
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await git(["worktree", "prune"]);
  await git(["worktree", "add", "--detach", dir, sha]);
  return { dir, sha };
}

/** Removes worktrees this run made (best effort: a failure leaves one behind for the next run to reuse). */
export async function removeTrees(dirs: Iterable<string>): Promise<void> {
  for (const dir of dirs) await git(["worktree", "remove", "--force", dir]).catch(() => {});
}
