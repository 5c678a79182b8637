// The host's log, config and clock, and crypto with secrets the plugin never sees: wrappers
// over the world's imports. They work only inside a component (the build resolves the
// `switchyard:plugin/…` imports); `parseDuration` is pure.

import * as imports from "switchyard:plugin/host@0.1.0";
import * as cryptoImports from "switchyard:plugin/crypto@0.1.0";
import { Failure } from "./verdicts.js";
import { parseDuration } from "./duration.js";

const LEVELS = new Set(["trace", "debug", "info", "warn", "error"]);

// What the host answered for each config key asked so far; a plugin that makes up keys as it
// goes asks the host for the keys past the first 64.
const knownConfig = new Map();
const MAX_KNOWN_CONFIG = 64;

export const host = {
  /** Writes a line to the host's log; the host keeps at most 4 KiB per call. */
  log(level, message) {
    if (!LEVELS.has(level)) throw new TypeError(`unknown log level "${level}"`);
    imports.log(level, String(message));
  },
  trace: (message) => host.log("trace", message),
  debug: (message) => host.log("debug", message),
  info: (message) => host.log("info", message),
  warn: (message) => host.log("warn", message),
  error: (message) => host.log("error", message),
  /**
   * The value of `key` in the binding's `config` map, or undefined. Each key is asked of the
   * host once per instance and kept: a binding's config does not change during an instance's
   * life, and an ask costs a crossing out of the sandbox and back.
   */
  config(key) {
    if (knownConfig.has(key)) return knownConfig.get(key);
    const value = imports.config(key) ?? undefined;
    if (knownConfig.size < MAX_KNOWN_CONFIG) knownConfig.set(key, value);
    return value;
  },
  /** The value of `key`, or a fatal Failure naming the key. */
  requireConfig(key) {
    const value = host.config(key);
    if (value === undefined) {
      throw Failure.fatal(`missing config key \`${key}\`: set it in the plugin binding's \`config\``);
    }
    return value;
  },
  /** The duration in `key` (`"300s"`, `"5m"`, …) in milliseconds, or `defaultMs`. */
  configDurationMs(key, defaultMs) {
    const value = host.config(key);
    if (value === undefined) return defaultMs;
    try {
      return parseDuration(value);
    } catch (error) {
      throw Failure.fatal(`config key \`${key}\`: ${error.message}`);
    }
  },
  /** The current time in unix milliseconds, as a number (fixed by test fixtures). */
  nowMs() {
    return Number(imports.nowMs());
  },
};

function describe(error) {
  const payload = error && error.payload;
  switch (payload && payload.tag) {
    case "unknown-secret":
      return `unknown secret \`${payload.val}\``;
    case "not-allowed":
      return `secret \`${payload.val}\` is not listed in this plugin's \`secrets\``;
    case "bad-input":
      return `bad crypto input: ${payload.val}`;
    default:
      return String(error);
  }
}

function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    throw Failure.fatal(describe(error));
  }
}

const bytes = (data) => (typeof data === "string" ? new TextEncoder().encode(data) : data);

export const crypto = {
  /** Whether `mac` is HMAC-SHA256 of `data` keyed with the secret's bytes as they are. */
  hmacSha256Verify: (secret, data, mac) =>
    call(cryptoImports.hmacSha256Verify, secret, bytes(data), mac),
  /** The same with the key decoded per `encoding`: "raw" or "standard-webhooks". */
  hmacSha256VerifyWith: (secret, encoding, data, mac) =>
    call(cryptoImports.hmacSha256VerifyWith, secret, encoding, bytes(data), mac),
  /** Whether `mac` is HMAC-SHA1 of `data` keyed with the secret's bytes. */
  hmacSha1Verify: (secret, data, mac) => call(cryptoImports.hmacSha1Verify, secret, bytes(data), mac),
  /** Whether `signature` is an ed25519 signature of `data` by the key in the secret named. */
  ed25519Verify: (publicKey, data, signature) =>
    call(cryptoImports.ed25519Verify, publicKey, bytes(data), signature),
  /** The SHA-256 digest of `data`. */
  sha256: (data) => cryptoImports.sha256(bytes(data)),
};
