// Write Switchyard plugins in JavaScript or TypeScript.
//
// A plugin is a WebAssembly component exporting one function, `handle`, that takes an event
// and answers a verdict (the world `plugin` in `wit/switchyard.wit`). Wrap your function in
// one of the kind helpers and export it as `handle`:
//
//   import { filter } from "@switchyard/plugin";
//   export const handle = filter((event) => event.bodyJson().action === "opened");
//
// Build with `switchyard plugin build` (or `switchyard-js-build`).

export { Event, DEDUPE_KEY } from "./event.js";
export { Failure, Rejection, Verdict, Verification, emptyPatch, fromChange } from "./verdicts.js";
export { filter, transform, verify, plugin, run } from "./kinds.js";
export { host, crypto } from "./host.js";
export { parseDuration } from "./duration.js";
export { decodeHex, encodeHex, decodeBase64 } from "./encoding.js";
