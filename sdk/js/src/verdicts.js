// Answers: verdicts, patches, rejections, failures and verifications.
//
// Owns the constructors plugins answer with (verdicts are the WIT variant as JavaScript sees
// it: `{ tag, val }`), the three rejection codes every verifier shares, and the translation of
// a changed event into the smallest verdict that describes it (`fromChange`, the same rules as
// the Rust SDK's `Verdict::from_change`). Pure: never calls the host.

/** Why a plugin could not decide: throw `Failure.retry(…)` or `Failure.fatal(…)`. */
export class Failure extends Error {
  constructor(kind, message) {
    super(message);
    if (kind !== "retry" && kind !== "fatal") {
      throw new TypeError(`a failure is "retry" or "fatal", not "${kind}"`);
    }
    this.name = "Failure";
    this.kind = kind;
  }

  /** Something transient: the sender is asked to retry and nothing is stored. */
  static retry(message) {
    return new Failure("retry", message);
  }

  /** A bug or input the plugin cannot handle: the binding's `on_error` policy applies. */
  static fatal(message) {
    return new Failure("fatal", message);
  }
}

/** Refusals for the verify stage; never put secrets or expected signatures in a message. */
export const Rejection = {
  UNAUTHORIZED: 401,
  /** Any 4xx status, a snake_case code and a sentence for the sender. */
  of(status, code, message) {
    return { status, code, message };
  },
  /** 401 `missing_signature`: the signature headers are absent or do not parse. */
  missingSignature(message) {
    return { status: 401, code: "missing_signature", message };
  },
  /** 401 `bad_signature`: no signature matches the body. */
  badSignature(message) {
    return { status: 401, code: "bad_signature", message };
  },
  /** 401 `stale_timestamp`: the timestamp is further from now than the tolerance. */
  staleTimestamp(message) {
    return { status: 401, code: "stale_timestamp", message };
  },
};

/** An empty patch: it changes nothing. */
export function emptyPatch() {
  return {
    setHeaders: [],
    removeHeaders: [],
    setMetadata: [],
    type: undefined,
    subject: undefined,
    body: undefined,
  };
}

/** Verdict constructors: the WIT variant `verdict`. */
export const Verdict = {
  pass: () => ({ tag: "pass" }),
  drop: () => ({ tag: "drop" }),
  modify: (patch) => ({ tag: "modify", val: { ...emptyPatch(), ...patch } }),
  replace: (event) => ({ tag: "replace", val: event }),
  split: (events) => ({ tag: "split", val: events }),
  reject: (rejection) => ({ tag: "reject", val: rejection }),
};

/** What a verify plugin decided. */
export const Verification = {
  /** The event is authentic; with a dedupe key (the provider's delivery id) it is deduplicated. */
  accept(dedupeKey) {
    return { accepted: true, dedupeKey };
  },
  /** The event is refused with this rejection. */
  reject(rejection) {
    return { accepted: false, rejection };
  },
};

/** The verdict the host sees for a verification: pass, modify (dedupe key) or reject. */
export function verificationVerdict(verification) {
  if (verification && verification.accepted === true) {
    if (verification.dedupeKey === undefined || verification.dedupeKey === null) {
      return Verdict.pass();
    }
    return Verdict.modify({ setMetadata: [["dedupe-key", String(verification.dedupeKey)]] });
  }
  if (verification && verification.accepted === false) return Verdict.reject(verification.rejection);
  if (verification && typeof verification.code === "string") return Verdict.reject(verification);
  throw Failure.fatal("a verifier answers a Verification or a Rejection");
}

/**
 * The smallest verdict that turns `before` into `after`: pass, modify carrying only what
 * changed, or replace when no patch can say it (a removed metadata key, a cleared subject, a
 * header given several values). Host-owned fields (id, source, receivedAt) and header order
 * alone are not compared.
 */
export function fromChange(before, after) {
  const patch = patchBetween(before, after);
  if (patch === undefined) return Verdict.replace(after);
  const empty =
    patch.setHeaders.length === 0 &&
    patch.removeHeaders.length === 0 &&
    patch.setMetadata.length === 0 &&
    patch.type === undefined &&
    patch.subject === undefined &&
    patch.body === undefined;
  return empty ? Verdict.pass() : { tag: "modify", val: patch };
}

function patchBetween(before, after) {
  const patch = emptyPatch();
  if (!samePairs(before.headers, after.headers)) {
    const old = groupHeaders(before.headers);
    const fresh = groupHeaders(after.headers);
    for (const name of old.keys()) {
      if (!fresh.has(name)) patch.removeHeaders.push(name);
    }
    for (const [name, values] of fresh) {
      const previous = old.get(name);
      if (previous && previous.length === values.length && previous.every((v, i) => v === values[i])) {
        continue;
      }
      if (values.length !== 1) return undefined;
      patch.setHeaders.push([name, values[0]]);
    }
  }
  if (!samePairs(before.metadata, after.metadata)) {
    const old = new Map(before.metadata);
    const fresh = new Map();
    for (const [key, value] of after.metadata) {
      if (fresh.has(key)) return undefined;
      fresh.set(key, value);
    }
    for (const key of old.keys()) if (!fresh.has(key)) return undefined;
    for (const [key, value] of after.metadata) {
      if (old.get(key) !== value) patch.setMetadata.push([key, value]);
    }
  }
  if (before.type !== after.type) patch.type = after.type;
  if ((before.subject ?? undefined) !== (after.subject ?? undefined)) {
    if (after.subject === undefined || after.subject === null) return undefined;
    patch.subject = after.subject;
  }
  if (!sameBytes(before.body, after.body)) patch.body = after.body;
  return patch;
}

function samePairs(left, right) {
  return left.length === right.length && left.every(([a, b], i) => right[i][0] === a && right[i][1] === b);
}

// A loop over the bytes would run in the interpreter, one turn per byte (about 100 µs for a
// 1 KiB body left alone, the common case); turning each chunk into a string of char codes (one
// per byte, so equal strings mean equal bytes) and comparing those is native work.
const COMPARE_CHUNK = 4096;

function sameBytes(left, right) {
  if (left === right) return true;
  if (left.length !== right.length) return false;
  for (let start = 0; start < left.length; start += COMPARE_CHUNK) {
    const end = start + COMPARE_CHUNK;
    const a = String.fromCharCode.apply(null, left.subarray(start, end));
    if (a !== String.fromCharCode.apply(null, right.subarray(start, end))) return false;
  }
  return true;
}

function groupHeaders(headers) {
  const groups = new Map();
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (!groups.has(lower)) groups.set(lower, []);
    groups.get(lower).push(value);
  }
  return groups;
}
