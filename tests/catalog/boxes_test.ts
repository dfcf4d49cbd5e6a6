/**
 * The pure parts of boxes and the label set (src/catalog/boxes.ts, src/catalog/rules.ts): box checks, the unit
 * conversions exports rely on, row mapping, strict-mode refusals, colours, hotkeys and review statuses.
 */
import assert from "node:assert/strict";
import type { Box } from "../../src/catalog/catalog.ts";
import {
  boxAfterUpdate,
  boxesByKey,
  boxFromRow,
  boxNormalised,
  boxPixels,
  checkBoxIds,
  checkBoxInput,
  checkBoxInputs,
  checkSource,
  keysTarget,
  MAX_BOXES_PER_CALL,
} from "../../src/catalog/boxes.ts";
import {
  checkColor,
  checkHotkey,
  checkReviewSet,
  checkStatusFilter,
  checkStrict,
  definitionAfter,
  hotkeyTaken,
  keysForUndo,
  notInLabelSet,
  UNDO_KEY_CAP,
} from "../../src/catalog/rules.ts";
import { BadInputError, ConflictError, NotFoundError } from "../../src/errors.ts";

const base = { key: "frames/r1/a.jpg", label: "person", imageWidth: 640, imageHeight: 480 };

function box(over: Partial<Box> = {}): Box {
  return {
    id: 1,
    key: base.key,
    label: "person",
    x: 10,
    y: 20,
    w: 100,
    h: 50,
    unit: "px",
    imageWidth: 640,
    imageHeight: 480,
    confidence: null,
    source: "human",
    accepted: true,
    author: null,
    createdMs: 1,
    updatedMs: 1,
    ...over,
  };
}

Deno.test("boxes: a new box gets unit px, source human and is accepted; a model's box starts unaccepted", () => {
  assert.deepEqual(checkBoxInput({ ...base, x: 0, y: 0, w: 640, h: 480 }), {
    ...base,
    x: 0,
    y: 0,
    w: 640,
    h: 480,
    unit: "px",
    confidence: null,
    source: "human",
    accepted: true,
  });
  const predicted = checkBoxInput({
    ...base,
    x: 0.25,
    y: 0.5,
    w: 0.75,
    h: 0.5,
    unit: "norm",
    confidence: 0.8,
    source: "model:yolo-v8.n_1",
  });
  assert.equal(predicted.accepted, false);
  assert.equal(predicted.unit, "norm");
  assert.equal(checkBoxInput({ ...base, x: 1, y: 1, w: 1, h: 1, source: "import" }).accepted, true);
});

Deno.test("boxes: rectangles outside the frame, of no size or not finite are refused naming the value and fix", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [
      { x: -1, y: 0, w: 10, h: 10 },
      /^box x -1 is before the frame's edge: keep the box inside the frame \(x >= 0\)$/,
    ],
    [
      { x: 600, y: 0, w: 41, h: 10 },
      /^box x 600 \+ w 41 = 641 is beyond the frame's width 640 px: keep the box inside the frame \(x \+ w <= 640\)$/,
    ],
    [{ x: 0, y: 470, w: 10, h: 11 }, /y 470 \+ h 11 = 481 is beyond the frame's height 480 px/],
    [{ x: 0, y: 0, w: 0, h: 10 }, /^box width 0 is not above 0/],
    [{ x: 0, y: 0, w: 10, h: -2 }, /^box height -2 is not above 0/],
    [{ x: Number.NaN, y: 0, w: 10, h: 10 }, /^box x NaN is not a finite number/],
    [{ x: 0, y: Infinity, w: 10, h: 10 }, /^box y Infinity is not a finite number/],
    [{ x: 0.5, y: 0, w: 0.6, h: 0.1, unit: "norm" }, /= 1\.1 is beyond the frame's width 1 \(normalised\)/],
    [{ x: 0, y: 0, w: 1, h: 1, unit: "mm" }, /^box unit "mm" is unknown: use "px"/],
    [{ x: 0, y: 0, w: 1, h: 1, confidence: 1.5 }, /^box confidence 1.5 is not in \[0, 1\]/],
    [{ x: 0, y: 0, w: 1, h: 1, source: "model:" }, /^box source "model:" is not allowed/],
    [{ x: 0, y: 0, w: 1, h: 1, source: "robot" }, /use "human", "import" or "model:NAME"/],
    [{ x: 0, y: 0, w: 1, h: 1, imageWidth: 0 }, /^image width 0 is not a positive whole number of pixels/],
    [{ x: 0, y: 0, w: 1, h: 1, imageHeight: 2.5 }, /^image height 2.5 is not a positive whole number/],
    [{ x: 0, y: 0, w: 1, h: 1, label: "a/b" }, /may not contain '\/'/],
  ];
  for (const [over, message] of bad) {
    assert.throws(() => checkBoxInput({ ...base, ...over } as never), (e) => {
      assert.ok(e instanceof BadInputError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
  // Within the tolerance of a conversion's rounding: accepted.
  checkBoxInput({ ...base, x: 0.1, y: 0, w: 0.9 + 5e-10, h: 1, unit: "norm" });
  checkBoxInput({ ...base, x: -5e-10, y: 0, w: 640, h: 480 });
  assert.equal(checkSource("model:" + "m".repeat(64)), "model:" + "m".repeat(64));
  assert.throws(() => checkSource("model:" + "m".repeat(65)), BadInputError);
  assert.throws(() => checkBoxInputs([]), /no boxes given/);
  assert.throws(
    () =>
      checkBoxInputs(
        Array.from({ length: MAX_BOXES_PER_CALL + 1 }, () => ({ ...base, x: 0, y: 0, w: 1, h: 1 })),
      ),
    /send them in batches/,
  );
  assert.deepEqual(checkBoxIds([3, 3, 4]), [3, 4]);
  assert.throws(() => checkBoxIds([]), /no box ids given/);
  assert.throws(() => checkBoxIds([1.5]), /box id 1.5 is not a positive whole number/);
});

Deno.test("boxes: an update keeps what it does not name and checks the new rectangle against the frame", () => {
  const before = box();
  assert.deepEqual(boxAfterUpdate(before, { label: "car" }), {
    label: "car",
    x: 10,
    y: 20,
    w: 100,
    h: 50,
    unit: "px",
    accepted: true,
  });
  assert.deepEqual(boxAfterUpdate(before, { rect: { x: 0.5, y: 0.5, w: 0.5, h: 0.5, unit: "norm" } }), {
    label: "person",
    x: 0.5,
    y: 0.5,
    w: 0.5,
    h: 0.5,
    unit: "norm",
    accepted: true,
  });
  assert.equal(boxAfterUpdate(box({ accepted: false }), { accepted: true }).accepted, true);
  assert.throws(() => boxAfterUpdate(before, {}), /nothing to change on the box/);
  assert.throws(
    () => boxAfterUpdate(before, { rect: { x: 600, y: 0, w: 50, h: 10 } }),
    /beyond the frame's width 640/,
  );
  assert.throws(() => boxAfterUpdate(before, { label: "" }), /must not be empty/);
});

Deno.test("boxes: conversions are exact in the stored unit and one operation otherwise", () => {
  const px = box({ x: 13, y: 7, w: 101, h: 33 });
  assert.deepEqual(boxPixels(px), { x: 13, y: 7, w: 101, h: 33 });
  assert.deepEqual(boxNormalised(px), { x: 13 / 640, y: 7 / 480, w: 101 / 640, h: 33 / 480 });
  const norm = box({ unit: "norm", x: 0.1, y: 0.2, w: 0.3, h: 0.4 });
  assert.deepEqual(boxNormalised(norm), { x: 0.1, y: 0.2, w: 0.3, h: 0.4 });
  assert.deepEqual(boxPixels(norm), { x: 0.1 * 640, y: 0.2 * 480, w: 0.3 * 640, h: 0.4 * 480 });
});

Deno.test("boxes: rows map to Box from either backend's types; grouped by key; the journal target", () => {
  const row = {
    id: 7n,
    key: base.key,
    label: "person",
    x: 1,
    y: "2",
    w: 3,
    h: 4,
    unit: "px",
    image_w: 640,
    image_h: "480",
    confidence: null,
    source: "human",
    author: "ana",
    created_ms: "5",
    updated_ms: 6,
  };
  const sqlite = boxFromRow({ ...row, accepted: 1 });
  assert.deepEqual(
    sqlite,
    box({ id: 7, x: 1, y: 2, w: 3, h: 4, author: "ana", createdMs: 5, updatedMs: 6 }),
  );
  assert.equal(boxFromRow({ ...row, accepted: false }).accepted, false);
  assert.equal(boxFromRow({ ...row, accepted: 0 }).accepted, false);
  assert.equal(boxFromRow({ ...row, accepted: true, confidence: "0.5" }).confidence, 0.5);
  const grouped = boxesByKey([box({ id: 3 }), box({ id: 2, key: "k2" }), box({ id: 1 })]);
  assert.deepEqual([...grouped.entries()].map(([k, v]) => [k, v.map((b) => b.id)]), [[base.key, [1, 3]], [
    "k2",
    [2],
  ]]);
  assert.equal(keysTarget(["a", "a"]), "a");
  assert.equal(keysTarget(["a", "b"]), "frames");
});

Deno.test("label set: strict mode names the label, the closest names of the set and the fix", () => {
  const set = ["person", "door_closed", "door_open", "car"];
  assert.equal(
    notInLabelSet("ldoor_closed", set).message,
    'label "ldoor_closed" is not in the label set (labels.strict = true): use one of door_closed, door_open, ' +
      "person, car or add it to the set first (Labels page or POST /api/labels)",
  );
  const many = Array.from({ length: 12 }, (_, i) => `c${String(i).padStart(2, "0")}`);
  assert.match(notInLabelSet("zz", many).message, /use one of c00, c01, .*c09, … or add it/);
  assert.match(notInLabelSet("x", []).message, /the set is empty; add it to the set first/);
  assert.throws(
    () => checkStrict(["new"], { maxPerRequest: 1, maxDistinct: 1, strict: true }, () => set),
    BadInputError,
  );
  checkStrict(["new"], { maxPerRequest: 1, maxDistinct: 1, strict: false }, () => {
    throw new Error("not asked when not strict");
  });
  checkStrict([], { maxPerRequest: 1, maxDistinct: 1, strict: true }, () => set);
});

Deno.test("label set: colours #rrggbb lower-cased, hotkeys 1-9, a taken hotkey is a conflict", () => {
  assert.equal(checkColor("#A0b1C2"), "#a0b1c2");
  assert.equal(checkColor(null), null);
  assert.equal(checkColor(undefined), undefined);
  assert.throws(() => checkColor("red"), /colour "red" is not of the form #rrggbb/);
  assert.throws(() => checkColor("#abc"), BadInputError);
  assert.equal(checkHotkey(9), 9);
  for (const bad of [0, 10, 1.5]) assert.throws(() => checkHotkey(bad), /is not a key 1 to 9/);
  const e = hotkeyTaken(3, "person");
  assert.ok(e instanceof ConflictError);
  assert.equal(e.message, 'hotkey 3 belongs to "person": clear it there first, or pick another');
  assert.deepEqual(definitionAfter({ color: "#000000", hotkey: 2 }, { hotkey: null }), {
    color: "#000000",
    hotkey: null,
  });
  assert.deepEqual(definitionAfter({ color: null, hotkey: null }, { color: "#FFFFFF" }), {
    color: "#ffffff",
    hotkey: null,
  });
});

Deno.test("review: statuses a person sets and the statuses a search may name", () => {
  assert.equal(checkReviewSet("reviewed"), "reviewed");
  assert.equal(checkReviewSet(null), null);
  assert.throws(() => checkReviewSet("labelled"), /cannot be set: use "reviewed", "rejected" or null/);
  assert.deepEqual(checkStatusFilter(["labelled", "labelled", "rejected"]), ["labelled", "rejected"]);
  assert.throws(() => checkStatusFilter(["done"]), /review status "done" is unknown/);
});

Deno.test("undo data: keys per label up to the cap, none above it", () => {
  assert.deepEqual(keysForUndo(new Map([["a", ["k1", "k2"]], ["b", []]])), { a: ["k1", "k2"], b: [] });
  const big = new Map([["a", Array.from({ length: UNDO_KEY_CAP + 1 }, (_, i) => `k${i}`)]]);
  assert.equal(keysForUndo(big), undefined);
  assert.ok(new NotFoundError("x") instanceof RangeError);
});
