// The benchmarks' JavaScript transform: masks the values at the JSON pointers of the config
// key `pointers` (comma-separated), as the first-party Rust `redact` plugin does, so the
// Python, JavaScript and Rust plugin-stage figures are for the same work. A body that is not
// JSON is a fatal failure. With the config key `mode = "pass"` it answers at once with the event
// untouched: what a call costs before the plugin does any work (the interpreter and the event's
// conversion).

import { Failure, host, transform } from "@switchyard/plugin";

const MASK = "[redacted]";

function child(value, token) {
  if (Array.isArray(value)) return /^\d+$/.test(token) ? value[Number(token)] : undefined;
  if (value !== null && typeof value === "object" && Object.hasOwn(value, token)) {
    return value[token];
  }
  return undefined;
}

// Replaces the value at `pointer` (RFC 6901) with the mask; answers 1 if it existed.
function mask(body, pointer) {
  const tokens = pointer
    .slice(1)
    .split("/")
    .map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
  let parent = body;
  for (const token of tokens.slice(0, -1)) {
    parent = child(parent, token);
    if (parent === undefined) return 0;
  }
  const last = tokens[tokens.length - 1];
  if (child(parent, last) === undefined) return 0;
  parent[Array.isArray(parent) ? Number(last) : last] = MASK;
  return 1;
}

export const handle = transform((event) => {
  if (host.config("mode") === "pass") return event;
  const pointers = host
    .requireConfig("pointers")
    .split(",")
    .map((pointer) => pointer.trim())
    .filter((pointer) => pointer !== "");
  const body = event.bodyJson();
  let masked = 0;
  for (const pointer of pointers) {
    if (!pointer.startsWith("/")) {
      throw Failure.fatal(`config key \`pointers\`: \`${pointer}\` is not a JSON pointer`);
    }
    masked += mask(body, pointer);
  }
  if (masked > 0) event.setBodyJson(body);
  return event;
});
