/**
 * The README's plugin section is code that runs: its "test your plugin" snippet, taken from the README as it is,
 * passes against the example plugin in a folder outside the project, and its example plugin is the file in
 * examples/.
 */
import assert from "node:assert/strict";
import { greyJpeg } from "../support/images.ts";

const ROOT = new URL("../../", import.meta.url);
const README = Deno.readTextFileSync(new URL("README.md", ROOT));

/** The body of the README's ```ts block whose first line is `firstLine`. */
function block(firstLine: string): string {
  const blocks = [...README.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  const found = blocks.filter((b) => b.startsWith(firstLine));
  assert.equal(found.length, 1, `one ts block starting with ${JSON.stringify(firstLine)} in README.md`);
  return found[0];
}

Deno.test("the README's test-your-plugin snippet passes for a plugin outside the project", async () => {
  const snippet = block("// my_filter_test.ts");
  assert.ok(snippet.split("\n").length <= 12, "about ten lines");
  const dir = await Deno.makeTempDir({ prefix: "frame-bucket-user-" });
  try {
    await Deno.writeTextFile(`${dir}/my_filter_test.ts`, snippet);
    await Deno.copyFile(new URL("examples/filters/brightness.ts", ROOT), `${dir}/my_filter.ts`);
    await Deno.writeFile(`${dir}/a.jpg`, greyJpeg(320, 240, () => 40));
    await Deno.writeFile(`${dir}/b.jpg`, greyJpeg(320, 240, () => 200));
    const run = (cwd: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["test", "-A", "--config", new URL("deno.json", ROOT).pathname, "my_filter_test.ts"],
        cwd,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const out = await run(dir);
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.ok(out.success, text);
    assert.match(text, /my filter loads, drops the same scene and keeps another \.\.\. ok/);
    assert.match(text, /1 passed/);

    // It fails as it should for a plugin that cannot tell the scenes apart.
    await Deno.writeTextFile(
      `${dir}/my_filter.ts`,
      (await Deno.readTextFile(`${dir}/my_filter.ts`)).replace("min_change: 12", "min_change: 250"),
    );
    const failing = await run(dir);
    assert.equal(failing.success, false);
    assert.match(new TextDecoder().decode(failing.stdout), /another scene is stored/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README's example plugin is examples/filters/brightness.ts", () => {
  const shown = block("// examples/filters/brightness.ts").split("\n").slice(1).join("\n");
  const file = Deno.readTextFileSync(new URL("examples/filters/brightness.ts", ROOT));
  assert.equal(shown, file.slice(file.indexOf("*/\n") + 3));
});
