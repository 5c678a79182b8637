"""Verification with secrets the plugin never sees: wrappers over the world's `crypto` imports.

Secrets are named (usually through a config key); the host compares in constant time. A call
the host cannot make (an unknown or unlisted secret, a key that does not decode) raises a fatal
`Failure` with a sentence naming the secret.
"""

from __future__ import annotations

from . import _world
from .verdicts import Failure

__all__ = [
    "hmac_sha256_verify",
    "hmac_sha256_verify_with",
    "hmac_sha1_verify",
    "ed25519_verify",
    "sha256",
    "RAW",
    "STANDARD_WEBHOOKS",
]

#: Key encodings for `hmac_sha256_verify_with`.
RAW = "raw"
STANDARD_WEBHOOKS = "standard-webhooks"


def _describe(error: object) -> str:
    crypto = _world.crypto
    if isinstance(error, crypto.CryptoError_UnknownSecret):
        return f"unknown secret `{error.value}`"
    if isinstance(error, crypto.CryptoError_NotAllowed):
        return f"secret `{error.value}` is not listed in this plugin's `secrets`"
    if isinstance(error, crypto.CryptoError_BadInput):
        return f"bad crypto input: {error.value}"
    return str(error)


def _call(function, *arguments):
    try:
        return function(*arguments)
    except _world.Err as error:
        raise Failure.fatal(_describe(error.value)) from None


def hmac_sha256_verify(secret: str, data: bytes, mac: bytes) -> bool:
    """Whether `mac` is HMAC-SHA256 of `data` keyed with the secret's bytes as they are."""
    return _call(_world.crypto.hmac_sha256_verify, secret, bytes(data), bytes(mac))


def hmac_sha256_verify_with(secret: str, encoding: str, data: bytes, mac: bytes) -> bool:
    """Whether `mac` is HMAC-SHA256 of `data` keyed with the secret decoded per `encoding`
    (`RAW`, or `STANDARD_WEBHOOKS` for `whsec_` keys)."""
    crypto = _world.crypto
    encodings = {RAW: crypto.KeyEncoding.RAW, STANDARD_WEBHOOKS: crypto.KeyEncoding.STANDARD_WEBHOOKS}
    if encoding not in encodings:
        raise ValueError(f"a key encoding is `raw` or `standard-webhooks`, not `{encoding}`")
    return _call(crypto.hmac_sha256_verify_with, secret, encodings[encoding], bytes(data), bytes(mac))


def hmac_sha1_verify(secret: str, data: bytes, mac: bytes) -> bool:
    """Whether `mac` is HMAC-SHA1 of `data` keyed with the secret's bytes as they are."""
    return _call(_world.crypto.hmac_sha1_verify, secret, bytes(data), bytes(mac))


def ed25519_verify(public_key: str, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is an ed25519 signature of `data` by the public key held in the
    secret named `public_key`."""
    return _call(_world.crypto.ed25519_verify, public_key, bytes(data), bytes(signature))


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of `data`."""
    return bytes(_world.crypto.sha256(bytes(data)))
