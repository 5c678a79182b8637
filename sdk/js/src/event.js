// The event a plugin receives, with helpers for headers, metadata and JSON bodies.
//
// Owns the reading and editing conventions every plugin shares (the same as the Rust and
// Python SDKs'): header names are compared case-insensitively and stored lower case, lookups
// answer the first value, and setting a header replaces all of its values in place. Pure:
// never calls the host, so it runs under plain Node in unit tests.

import { Failure } from "./verdicts.js";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** The metadata key whose value a verify plugin sets to give the event a dedupe key. */
export const DEDUPE_KEY = "dedupe-key";

export class Event {
  /**
   * @param {Partial<import("../types/world").Event>} fields
   */
  constructor(fields = {}) {
    this.id = fields.id ?? "";
    this.source = fields.source ?? "";
    this.type = fields.type ?? "";
    this.subject = fields.subject ?? undefined;
    this.headers = (fields.headers ?? []).map(([name, value]) => [name, value]);
    this.body = toBytes(fields.body ?? new Uint8Array());
    this.receivedAt = BigInt(fields.receivedAt ?? 0n);
    this.metadata = (fields.metadata ?? []).map(([key, value]) => [key, value]);
  }

  /** The first value of the header `name`, compared case-insensitively. */
  header(name) {
    const wanted = name.toLowerCase();
    const found = this.headers.find(([header]) => header.toLowerCase() === wanted);
    return found?.[1];
  }

  /** Every value of the header `name`, compared case-insensitively, in order. */
  headerValues(name) {
    const wanted = name.toLowerCase();
    return this.headers.filter(([header]) => header.toLowerCase() === wanted).map(([, v]) => v);
  }

  /** The first value of the metadata key `key` (compared exactly). */
  metadataValue(key) {
    return this.metadata.find(([name]) => name === key)?.[1];
  }

  /** The body as text, or undefined when it is not valid UTF-8. */
  bodyText() {
    try {
      return strictDecoder.decode(this.body);
    } catch {
      return undefined;
    }
  }

  /** The body parsed as JSON; a fatal Failure ("body is not JSON: …") when it does not parse. */
  bodyJson() {
    const text = this.bodyText();
    try {
      if (text === undefined) throw new SyntaxError("not UTF-8");
      return JSON.parse(text);
    } catch (error) {
      throw Failure.fatal(`body is not JSON: ${error.message}`);
    }
  }

  /** Sets the header `name` (stored lower case), replacing every earlier value in place. */
  setHeader(name, value) {
    const lower = name.toLowerCase();
    let replaced = false;
    const kept = [];
    for (const [header, old] of this.headers) {
      if (header.toLowerCase() !== lower) kept.push([header, old]);
      else if (!replaced) {
        kept.push([lower, value]);
        replaced = true;
      }
    }
    if (!replaced) kept.push([lower, value]);
    this.headers = kept;
    return this;
  }

  /** Removes every value of the header `name`, compared case-insensitively. */
  removeHeader(name) {
    const lower = name.toLowerCase();
    this.headers = this.headers.filter(([header]) => header.toLowerCase() !== lower);
    return this;
  }

  /** Sets the metadata key `key`, replacing the value of an existing key. */
  setMetadata(key, value) {
    const entry = this.metadata.find(([name]) => name === key);
    if (entry) entry[1] = value;
    else this.metadata.push([key, value]);
    return this;
  }

  /** Replaces the body (a string is encoded as UTF-8). Set `content-type` when it changes. */
  setBody(body) {
    this.body = toBytes(body);
    return this;
  }

  /** Replaces the body with `value` as compact JSON. */
  setBodyJson(value) {
    this.body = encoder.encode(JSON.stringify(value));
    return this;
  }

  /** A deep copy: editing it leaves this event as it was. */
  clone() {
    return new Event(this);
  }
}

function toBytes(body) {
  if (typeof body === "string") return encoder.encode(body);
  if (ArrayBuffer.isView(body)) {
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
  }
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (Array.isArray(body)) return Uint8Array.from(body);
  throw new TypeError(`a body is a string or bytes, not ${Object.prototype.toString.call(body)}`);
}
