package plugin

// Verification with secrets the plugin never sees: secrets are named (the names a binding
// lists in `secrets`), the host compares in constant time, and nothing here signs.

import (
	"encoding/hex"
	"fmt"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	crypto "switchyard.dev/plugin/gen/imports/switchyard_plugin_crypto"
)

// KeyEncoding is how the host turns a secret's bytes into a key.
type KeyEncoding = crypto.KeyEncoding

// The key encodings.
const (
	// KeyRaw uses the secret's bytes as they are (GitHub, Stripe, Slack, Shopify).
	KeyRaw KeyEncoding = crypto.KeyEncoding_Raw
	// KeyStandardWebhooks strips `whsec_` and base64-decodes the rest.
	KeyStandardWebhooks KeyEncoding = crypto.KeyEncoding_StandardWebhooks
)

// CryptoError is a call the host could not make. Returned from a handler it is a fatal
// failure whose message says why, e.g. "unknown secret `github`".
type CryptoError struct {
	raw crypto.CryptoError
}

func (err *CryptoError) Error() string {
	switch err.raw.Tag() {
	case crypto.CryptoError_UnknownSecret:
		return fmt.Sprintf("unknown secret `%s`", err.raw.UnknownSecret())
	case crypto.CryptoError_NotAllowed:
		return fmt.Sprintf("secret `%s` is not listed in this plugin's `secrets`", err.raw.NotAllowed())
	default:
		return fmt.Sprintf("bad crypto input: %s", err.raw.BadInput())
	}
}

func verified(result witTypes.Result[bool, crypto.CryptoError]) (bool, error) {
	if result.IsErr() {
		return false, &CryptoError{raw: result.Err()}
	}
	return result.Ok(), nil
}

// HmacSha256Verify answers whether `mac` is HMAC-SHA256 of `data` keyed with the secret named
// `secret`.
func HmacSha256Verify(secret string, data, mac []byte) (bool, error) {
	return verified(crypto.HmacSha256Verify(secret, data, mac))
}

// HmacSha1Verify answers whether `mac` is HMAC-SHA1 of `data` keyed with the secret named
// `secret`.
func HmacSha1Verify(secret string, data, mac []byte) (bool, error) {
	return verified(crypto.HmacSha1Verify(secret, data, mac))
}

// HmacSha256VerifyWith answers whether `mac` is HMAC-SHA256 of `data` keyed with the secret
// decoded per `encoding`.
func HmacSha256VerifyWith(secret string, encoding KeyEncoding, data, mac []byte) (bool, error) {
	return verified(crypto.HmacSha256VerifyWith(secret, encoding, data, mac))
}

// Ed25519Verify answers whether `signature` is an ed25519 signature of `data` by the public key
// in the secret named `publicKey`.
func Ed25519Verify(publicKey string, data, signature []byte) (bool, error) {
	return verified(crypto.Ed25519Verify(publicKey, data, signature))
}

// Sha256 is the SHA-256 digest of `data`, computed by the host.
func Sha256(data []byte) []byte { return crypto.Sha256(data) }

// DecodeHex decodes hex in either case; ok is false when `text` is not hex.
func DecodeHex(text string) (decoded []byte, ok bool) {
	decoded, err := hex.DecodeString(text)
	return decoded, err == nil
}
