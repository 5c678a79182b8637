// Declarations of the SDK's API (`src/index.js`). The WIT types it builds on are generated
// from the WIT in `world.d.ts`; `tsc` checks the examples and templates against both.

/// <reference path="./world.d.ts" />

import type {
  Event as WitEvent,
  Patch,
  Rejection as WitRejection,
  Verdict as WitVerdict,
  Failure as WitFailure,
} from "switchyard:plugin/types@0.1.0";
import type { Level } from "switchyard:plugin/host@0.1.0";
import type { KeyEncoding } from "switchyard:plugin/crypto@0.1.0";

export type { Patch, Level, KeyEncoding, WitEvent, WitFailure };
export type Rejection = WitRejection;
export type Verdict = WitVerdict;

/** The metadata key whose value a verify plugin sets to give the event a dedupe key. */
export const DEDUPE_KEY: "dedupe-key";

/** An event as the host holds it, with helpers. `id`, `source` and `receivedAt` belong to the host. */
export class Event implements WitEvent {
  constructor(fields?: Partial<WitEvent>);
  id: string;
  source: string;
  type: string;
  subject: string | undefined;
  /** [name, value] pairs, names lower case, in the order received; a name may repeat. */
  headers: Array<[string, string]>;
  /** The body exactly as received. */
  body: Uint8Array;
  /** When the host received it, in unix milliseconds. */
  receivedAt: bigint;
  metadata: Array<[string, string]>;
  /** The first value of the header `name`, compared case-insensitively. */
  header(name: string): string | undefined;
  /** Every value of the header `name`, in order. */
  headerValues(name: string): string[];
  /** The first value of the metadata key `key`. */
  metadataValue(key: string): string | undefined;
  /** The body as text, or undefined when it is not valid UTF-8. */
  bodyText(): string | undefined;
  /** The body parsed as JSON; throws a fatal Failure when it does not parse. */
  bodyJson(): unknown;
  /** Sets the header (stored lower case), replacing every earlier value in place. */
  setHeader(name: string, value: string): this;
  /** Removes every value of the header. */
  removeHeader(name: string): this;
  /** Sets the metadata key, replacing an existing value. */
  setMetadata(key: string, value: string): this;
  /** Replaces the body (a string is encoded as UTF-8). */
  setBody(body: string | Uint8Array): this;
  /** Replaces the body with `value` as compact JSON. */
  setBodyJson(value: unknown): this;
  /** A deep copy. */
  clone(): Event;
}

/** Why a plugin could not decide: throw `Failure.retry(…)` or `Failure.fatal(…)`. */
export class Failure extends Error {
  constructor(kind: "retry" | "fatal", message: string);
  readonly kind: "retry" | "fatal";
  /** Transient: the sender is asked to retry and nothing is stored. */
  static retry(message: string): Failure;
  /** A bug or bad input: the binding's `on_error` policy applies. */
  static fatal(message: string): Failure;
}

/** Refusals for the verify stage; never put secrets or expected signatures in a message. */
export const Rejection: {
  readonly UNAUTHORIZED: 401;
  of(status: number, code: string, message: string): Rejection;
  /** 401 `missing_signature`: the signature headers are absent or do not parse. */
  missingSignature(message: string): Rejection;
  /** 401 `bad_signature`: no signature matches the body. */
  badSignature(message: string): Rejection;
  /** 401 `stale_timestamp`: the timestamp is further from now than the tolerance. */
  staleTimestamp(message: string): Rejection;
};

/** Verdict constructors. */
export const Verdict: {
  pass(): Verdict;
  drop(): Verdict;
  modify(patch: Partial<Patch>): Verdict;
  replace(event: WitEvent): Verdict;
  split(events: WitEvent[]): Verdict;
  reject(rejection: Rejection): Verdict;
};

/** What a verify plugin decided. */
export type Verification =
  | { accepted: true; dedupeKey: string | undefined }
  | { accepted: false; rejection: Rejection };
export const Verification: {
  /** Authentic; with a dedupe key (the provider's delivery id) the event is deduplicated. */
  accept(dedupeKey?: string): Verification;
  reject(rejection: Rejection): Verification;
};

/** An empty patch. */
export function emptyPatch(): Patch;
/** The smallest verdict that turns `before` into `after` (pass, modify or replace). */
export function fromChange(before: WitEvent, after: WitEvent): Verdict;

/** A function to export as `handle`; `run` applies the kind's glue to an Event (for tests). */
export interface Handle {
  (event: WitEvent): Verdict;
  readonly kind: "filter" | "transform" | "verify" | "plugin";
  run(event: Event): Verdict;
}

/** `fn(event) -> boolean`: true passes the event, false drops it. */
export function filter(fn: (event: Event) => boolean): Handle;
/** `fn(event) -> Event`: change the copy you get and return it. */
export function transform(fn: (event: Event) => Event): Handle;
/** `fn(event) -> Verification | Rejection`. */
export function verify(fn: (event: Event) => Verification | Rejection): Handle;
/** `fn(event) -> Verdict`: full control. */
export function plugin(fn: (event: Event) => Verdict): Handle;
/** Runs `fn` as a plugin of `kind` on `event`: the verdict, or a thrown Failure. */
export function run(
  kind: "filter" | "transform" | "verify" | "plugin",
  fn: (event: Event) => unknown,
  event: Event,
): Verdict;

/** The host's log, config and clock (only inside a component). */
export const host: {
  log(level: Level, message: string): void;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  config(key: string): string | undefined;
  /** The value, or a fatal Failure naming the key. */
  requireConfig(key: string): string;
  /** A duration config value (`"5m"`) in milliseconds, or `defaultMs`. */
  configDurationMs(key: string, defaultMs: number): number;
  /** Unix milliseconds (fixed by test fixtures). */
  nowMs(): number;
};

/** Verification with secrets the plugin never sees; a failed call throws a fatal Failure. */
export const crypto: {
  hmacSha256Verify(secret: string, data: Uint8Array | string, mac: Uint8Array): boolean;
  hmacSha256VerifyWith(
    secret: string,
    encoding: KeyEncoding,
    data: Uint8Array | string,
    mac: Uint8Array,
  ): boolean;
  hmacSha1Verify(secret: string, data: Uint8Array | string, mac: Uint8Array): boolean;
  ed25519Verify(publicKey: string, data: Uint8Array | string, signature: Uint8Array): boolean;
  sha256(data: Uint8Array | string): Uint8Array;
};

/** Milliseconds of "1500ms", "300s", "5m", "24h" or "7d"; throws otherwise. */
export function parseDuration(text: string): number;
/** Bytes of a hex string, or undefined. */
export function decodeHex(text: string): Uint8Array | undefined;
/** Lowercase hex. */
export function encodeHex(bytes: Uint8Array): string;
/** Bytes of standard base64 (padding optional), or undefined. */
export function decodeBase64(text: string): Uint8Array | undefined;
