import assert from "node:assert/strict";
import { taskFlags } from "../../dev/processes.ts";

Deno.test("children run with the flags their deno task gives them", async (t) => {
  await t.step("the consumer: its heap settings from deno.json", () => {
    const task = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url))).tasks.consume;
    assert.deepEqual(
      taskFlags("src/main/consume.ts"),
      task.split(/\s+/).slice(2, -1).filter((w: string) => w !== "-A"),
    );
    assert.ok(taskFlags("src/main/consume.ts").some((f) => f.startsWith("--v8-flags=")));
  });
  await t.step("a script no task runs gets none", () => {
    assert.deepEqual(taskFlags("tools/nothing_runs_this.ts"), []);
  });
  await t.step("another tree's deno.json decides for its scripts; a tree without one gives none", () => {
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(
        `${dir}/deno.json`,
        JSON.stringify({ tasks: { consume: "deno run -A --quiet --v8-flags=--x src/main/consume.ts" } }),
      );
      assert.deepEqual(taskFlags("src/main/consume.ts", dir), ["--quiet", "--v8-flags=--x"]);
      assert.deepEqual(taskFlags("src/main/consume.ts", `${dir}/missing`), []);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});
