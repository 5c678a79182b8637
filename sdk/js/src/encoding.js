// Hex and base64 for signature headers. Pure.

/** The bytes of a hex string (either case), or undefined when it is not hex. */
export function decodeHex(text) {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lowercase hex of `bytes`. */
export function encodeHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The bytes of standard base64 (padding optional), or undefined when it is not base64. */
export function decodeBase64(text) {
  const trimmed = text.replace(/=+$/, "");
  if (trimmed.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(trimmed)) return undefined;
  const out = new Uint8Array(Math.floor((trimmed.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let index = 0;
  for (const char of trimmed) {
    value = (value << 6) | ALPHABET.indexOf(char);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[index++] = (value >> bits) & 0xff;
    }
  }
  return out;
}
