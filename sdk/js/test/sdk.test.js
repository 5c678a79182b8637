// Unit tests of the SDK's pure modules under plain Node, and of the generated declarations
// against the WIT. The host imports are only reachable inside a component, so `host` and
// `crypto` are exercised by the end-to-end tests instead.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { Event } from "../src/event.js";
import { run } from "../src/kinds.js";
import { Failure, Rejection, Verification, fromChange } from "../src/verdicts.js";
import { parseDuration } from "../src/duration.js";
import { decodeBase64, decodeHex, encodeHex } from "../src/encoding.js";
import { declarations } from "../scripts/wit-types.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bytes = (text) => new TextEncoder().encode(text);

function base() {
  return new Event({
    source: "github",
    type: "github.push",
    headers: [["content-type", "application/json"], ["x-a", "1"]],
    metadata: [["k", "v"]],
    body: bytes('{"a":1}'),
  });
}

test("world.d.ts is what the WIT generates", () => {
  const wit = readFileSync(join(root, "wit", "switchyard.wit"), "utf8");
  const committed = readFileSync(join(root, "types", "world.d.ts"), "utf8");
  assert.equal(committed, declarations(wit), "run `npm run types` in sdk/js");
});

test("headers are case-insensitive and set in place", () => {
  const event = base();
  assert.equal(event.header("X-A"), "1");
  event.setHeader("X-A", "2").setHeader("x-b", "3");
  assert.deepEqual(event.headers, [["content-type", "application/json"], ["x-a", "2"], ["x-b", "3"]]);
  event.removeHeader("CONTENT-TYPE");
  assert.equal(event.header("content-type"), undefined);
});

test("bodies read as text and JSON", () => {
  assert.deepEqual(base().bodyJson(), { a: 1 });
  const broken = new Event({ body: new Uint8Array([0xff]) });
  assert.equal(broken.bodyText(), undefined);
  assert.throws(() => broken.bodyJson(), (error) => error instanceof Failure && error.kind === "fatal");
});

test("a transform answers the smallest verdict", () => {
  assert.deepEqual(fromChange(base(), base()), { tag: "pass" });
  const after = base().setHeader("x-a", "2").setMetadata("n", "m");
  after.type = "other";
  const verdict = fromChange(base(), after);
  assert.equal(verdict.tag, "modify");
  assert.deepEqual(verdict.val.setHeaders, [["x-a", "2"]]);
  assert.deepEqual(verdict.val.setMetadata, [["n", "m"]]);
  assert.equal(verdict.val.type, "other");
  assert.equal(verdict.val.body, undefined);
  const reordered = base();
  reordered.headers.reverse();
  assert.deepEqual(fromChange(base(), reordered), { tag: "pass" });
  const removedKey = base();
  removedKey.metadata = [];
  assert.equal(fromChange(base(), removedKey).tag, "replace");
  const twoValues = base();
  twoValues.headers.push(["x-a", "again"]);
  assert.equal(fromChange(base(), twoValues).tag, "replace");
});

test("a body changed in place is seen in any byte, aligned or not", () => {
  const text = '{"payload":"' + "x".repeat(1000) + '"}';
  for (const position of [0, 3, 512, text.length - 1]) {
    const after = base();
    after.body = bytes(text);
    after.body[position] ^= 1;
    const before = base();
    before.body = bytes(text);
    assert.deepEqual(fromChange(before, after).val.body, after.body, `byte ${position}`);
    const unaligned = new Uint8Array(text.length + 1);
    unaligned.set(bytes(text), 1);
    before.body = unaligned.subarray(1);
    assert.deepEqual(fromChange(before, after).val.body, after.body, `unaligned, byte ${position}`);
    after.body[position] ^= 1;
    assert.deepEqual(fromChange(before, after), { tag: "pass" }, `unchanged, byte ${position}`);
  }
});

test("each kind's glue", () => {
  assert.deepEqual(run("filter", () => true, base()), { tag: "pass" });
  assert.deepEqual(run("filter", () => false, base()), { tag: "drop" });
  const wrapped = run("transform", (event) => event.setBodyJson({ b: 2 }), base());
  assert.deepEqual(new TextDecoder().decode(wrapped.val.body), '{"b":2}');
  assert.deepEqual(run("verify", () => Verification.accept(), base()), { tag: "pass" });
  assert.deepEqual(run("verify", () => Verification.accept("d-1"), base()).val.setMetadata, [
    ["dedupe-key", "d-1"],
  ]);
  const rejection = Rejection.badSignature("no");
  assert.deepEqual(run("verify", () => rejection, base()), { tag: "reject", val: rejection });
  assert.throws(() => run("filter", () => "yes", base()), Failure);
});

test("durations and encodings", () => {
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1500ms"), 1500);
  assert.throws(() => parseDuration("5"));
  assert.equal(encodeHex(decodeHex("00ff10")), "00ff10");
  assert.equal(decodeHex("zz"), undefined);
  assert.deepEqual(Array.from(decodeBase64("Zm9v")), [102, 111, 111]);
  assert.deepEqual(Array.from(decodeBase64("Zg")), [102]);
  assert.equal(decodeBase64("!!"), undefined);
});
