// Generated from sdk/wit/switchyard.wit by scripts/wit-types.js (`npm run types`).
// Do not edit: a test regenerates this file and compares.

/**
 * The values that cross the boundary.
 */
declare module "switchyard:plugin/types@0.1.0" {
  /**
   * An event as the host holds it.
   */
  export interface Event {
    /**
     * `evt_` followed by a ULID. The host owns ids: it keeps the id of a modified or
     * replaced event and gives every event of a split a new one, whatever a plugin writes here.
     */
    id: string;
    /**
     * The id of the source it arrived on, e.g. `github`.
     */
    source: string;
    /**
     * The event type, e.g. `github.push`; routes match on it.
     */
    type: string;
    /**
     * The NATS subject it arrived on, or one set by a plugin; none for webhooks.
     */
    subject: string | undefined;
    /**
     * Header names are lower case, in the order received; a name may appear more than once.
     */
    headers: Array<[string, string]>;
    /**
     * The body exactly as received: signatures are computed over these bytes.
     */
    body: Uint8Array;
    /**
     * When the host received it, in unix milliseconds.
     */
    receivedAt: bigint;
    /**
     * A string map that travels with the event from stage to stage. A verify plugin that sets
     * the key `dedupe-key` gives the event that dedupe key (for example the provider's
     * delivery id): a second event with the same key within the source's dedupe window
     * (24 hours by default) is answered as a duplicate and not stored again.
     */
    metadata: Array<[string, string]>;
  }
  /**
   * A small edit of the event; only what changes crosses back.
   */
  export interface Patch {
    /**
     * Headers to set: each replaces every earlier value of that name (names lower case).
     */
    setHeaders: Array<[string, string]>;
    /**
     * Header names to remove, applied before `set-headers`.
     */
    removeHeaders: Array<string>;
    /**
     * Metadata entries to set, replacing the value of an existing key.
     */
    setMetadata: Array<[string, string]>;
    /**
     * A new event type, if some.
     */
    type: string | undefined;
    /**
     * A new subject, if some.
     */
    subject: string | undefined;
    /**
     * A new body, if some. Set a `content-type` header when its format changes.
     */
    body: Uint8Array | undefined;
  }
  /**
   * A refusal of the event, for the verify stage: the sender is answered with this status
   * and `{"code": code, "detail": message}`, and nothing is stored.
   */
  export interface Rejection {
    /**
     * An HTTP status from 400 to 499, e.g. 401 for a bad signature.
     */
    status: number;
    /**
     * A snake_case code, e.g. `bad_signature`.
     */
    code: string;
    /**
     * A sentence for the sender; never put secrets or expected signatures here.
     */
    message: string;
  }
  /**
   * What the plugin decided.
   */
  export type Verdict =
    /**
     * Not this event: it goes no further on this path. Counted, not an error. In the verify
     * stage the sender still gets a 202 but nothing is stored.
     */
    | { tag: "drop" }
    /**
     * The event goes on unchanged.
     */
    | { tag: "pass" }
    /**
     * The event goes on with this patch applied (one event in, one out).
     */
    | { tag: "modify"; val: Patch }
    /**
     * The event goes on replaced by this one; the host keeps the original id, source and
     * received-at.
     */
    | { tag: "replace"; val: Event }
    /**
     * The event is replaced by these events (at most 100; none is the same as `drop`); each
     * gets a new id from the host and is delivered on its own. Not allowed in the verify stage.
     */
    | { tag: "split"; val: Array<Event> }
    /**
     * The event is refused (verify stage only); anywhere else it is an invalid verdict.
     */
    | { tag: "reject"; val: Rejection };
  /**
   * Why the plugin could not decide.
   */
  export type Failure =
    /**
     * Something transient (a dependency was not ready): the sender is asked to retry (HTTP
     * 503 with `Retry-After`, or a NATS nak with delay). Nothing is stored.
     */
    | { tag: "retry"; val: string }
    /**
     * A bug or input the plugin cannot handle: the binding's `on_error` policy applies
     * (`fail-closed`, `fail-open` or `dead-letter`), and the message is logged.
     */
    | { tag: "fatal"; val: string };
}

/**
 * What the host offers every plugin.
 */
declare module "switchyard:plugin/host@0.1.0" {
  /**
   * The level of a log line.
   */
  export type Level = "trace" | "debug" | "info" | "warn" | "error";
  /**
   * Writes a line to the host's log, tagged with the plugin id and the event id. Lines are
   * truncated, and a call's lines stop being recorded past 4 KiB in all.
   */
  export function log(level: Level, message: string): void;
  /**
   * The value of `key` in the plugin binding's `config` map, if it has one. A binding's config
   * does not change during an instance's life (a reload makes new instances), so an SDK may
   * keep what it read.
   */
  export function config(key: string): string | undefined;
  /**
   * The current time in unix milliseconds (fixed by `switchyard plugin test` fixtures, so
   * timestamp checks can be tested).
   */
  export function nowMs(): bigint;
}

/**
 * Verification with secrets the plugin never sees.
 *
 * Secrets are referenced by name: the names a binding lists in its `secrets`. Their bytes
 * never enter the sandbox, comparisons are made in constant time by the host, and there is
 * deliberately no function that signs: a plugin able to sign would be a signing oracle.
 */
declare module "switchyard:plugin/crypto@0.1.0" {
  /**
   * Why a crypto call could not be made.
   */
  export type CryptoError =
    /**
     * No secret of that name is configured; carries the name.
     */
    | { tag: "unknown-secret"; val: string }
    /**
     * The secret exists but this plugin's binding does not list it in `secrets`; carries
     * the name.
     */
    | { tag: "not-allowed"; val: string }
    /**
     * The input cannot be used, e.g. a key that does not decode.
     */
    | { tag: "bad-input"; val: string };
  /**
   * How the host turns a secret's bytes into a key.
   */
  export type KeyEncoding = "raw" | "standard-webhooks";
  /**
   * Whether `mac` is HMAC-SHA256 of `data` keyed with the secret's bytes as they are.
   * @throws an Error whose `payload` is the `CryptoError`
   */
  export function hmacSha256Verify(secret: string, data: Uint8Array, mac: Uint8Array): boolean;
  /**
   * Whether `mac` is HMAC-SHA1 of `data` keyed with the secret's bytes as they are.
   * @throws an Error whose `payload` is the `CryptoError`
   */
  export function hmacSha1Verify(secret: string, data: Uint8Array, mac: Uint8Array): boolean;
  /**
   * Whether `mac` is HMAC-SHA256 of `data` keyed with the secret decoded per `encoding`.
   * @throws an Error whose `payload` is the `CryptoError`
   */
  export function hmacSha256VerifyWith(secret: string, encoding: KeyEncoding, data: Uint8Array, mac: Uint8Array): boolean;
  /**
   * Whether `signature` is an ed25519 signature of `data` by the public key held in the
   * secret named `public-key` (`whpk_` + base64, or bare base64 of the 32 key bytes).
   * @throws an Error whose `payload` is the `CryptoError`
   */
  export function ed25519Verify(publicKey: string, data: Uint8Array, signature: Uint8Array): boolean;
  /**
   * The SHA-256 digest of `data`.
   */
  export function sha256(data: Uint8Array): Uint8Array;
}
