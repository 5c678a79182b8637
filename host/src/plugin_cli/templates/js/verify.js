// A verifier: `x-signature` must be the hex HMAC-SHA256 of the raw body, keyed with the
// secret named by the `secret` config value. `x-delivery-id`, when present, is the dedupe key.

import { Rejection, Verification, crypto, decodeHex, host, verify } from "@switchyard/plugin";

export const handle = verify((event) => {
  const secret = host.requireConfig("secret");
  const mac = decodeHex(event.header("x-signature") ?? "");
  if (mac === undefined || mac.length === 0) {
    return Rejection.missingSignature("`x-signature` is missing or not hex");
  }
  if (!crypto.hmacSha256Verify(secret, event.body, mac)) {
    return Rejection.badSignature("the signature does not match the body");
  }
  return Verification.accept(event.header("x-delivery-id"));
});
