"""A verifier: `x-signature` must be the hex HMAC-SHA256 of the raw body, keyed with the
secret named by the `secret` config value. `x-delivery-id`, when present, is the dedupe key."""

from switchyard_plugin import Event, Rejection, Verification, crypto, host, verify


@verify
def check(event: Event) -> Verification:
    secret = host.require_config("secret")
    try:
        mac = bytes.fromhex(event.header("x-signature") or "")
    except ValueError:
        mac = b""
    if not mac:
        return Verification.reject(Rejection.missing_signature("`x-signature` is missing or not hex"))
    if not crypto.hmac_sha256_verify(secret, event.body, mac):
        return Verification.reject(Rejection.bad_signature("the signature does not match the body"))
    return Verification.accept(dedupe_key=event.header("x-delivery-id"))
