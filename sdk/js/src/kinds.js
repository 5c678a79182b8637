// The four kinds of plugin and the glue between them and the world's `handle` export.
//
// Each helper takes your function and answers a function to export as `handle`:
//
//   export const handle = filter((event) => event.type === "github.push");
//
// Owns the translation of each kind's answer into `result<verdict, failure>` (a thrown
// `{ tag, val }` is the `failure`), and of the WIT record into an `Event`. Pure: never calls
// the host, so `run` works under plain Node in unit tests.

import { Event } from "./event.js";
import { Failure, Verdict, fromChange, verificationVerdict } from "./verdicts.js";

const VERDICT_TAGS = new Set(["pass", "drop", "modify", "replace", "split", "reject"]);

/** Runs `fn` on `event` as a plugin of `kind`; answers the verdict or throws a Failure. */
export function run(kind, fn, event) {
  switch (kind) {
    case "filter": {
      const keep = fn(event);
      if (typeof keep !== "boolean") throw Failure.fatal("a filter answers true or false");
      return keep ? Verdict.pass() : Verdict.drop();
    }
    case "transform": {
      const after = fn(event.clone());
      if (!(after instanceof Event)) throw Failure.fatal("a transform answers an Event");
      return fromChange(event, after);
    }
    case "verify":
      return verificationVerdict(fn(event));
    case "plugin": {
      const verdict = fn(event);
      if (!verdict || !VERDICT_TAGS.has(verdict.tag)) throw Failure.fatal("a plugin answers a Verdict");
      return verdict;
    }
    default:
      throw new TypeError(`unknown plugin kind "${kind}"`);
  }
}

function exported(kind, fn) {
  if (typeof fn !== "function") throw new TypeError(`${kind}() takes your plugin function`);
  const handle = (witEvent) => {
    try {
      return run(kind, fn, new Event(witEvent));
    } catch (error) {
      if (error instanceof Failure) throw { tag: error.kind, val: error.message };
      throw { tag: "fatal", val: String(error && error.stack ? `${error}` : error) };
    }
  };
  handle.kind = kind;
  handle.run = (event) => run(kind, fn, event);
  return handle;
}

/** `fn(event) -> boolean`: true passes the event, false drops it. */
export const filter = (fn) => exported("filter", fn);
/** `fn(event) -> Event`: change the copy you get and return it; the host sees the smallest verdict. */
export const transform = (fn) => exported("transform", fn);
/** `fn(event) -> Verification | Rejection`: pass, modify (dedupe key) or reject. */
export const verify = (fn) => exported("verify", fn);
/** `fn(event) -> Verdict`: full control. */
export const plugin = (fn) => exported("plugin", fn);
