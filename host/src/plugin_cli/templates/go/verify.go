// A verifier: `x-signature` must be the hex HMAC-SHA256 of the raw body, keyed with the secret
// named by the `secret` config value. `x-delivery-id`, when present, is the dedupe key.
package main

import "switchyard.dev/plugin"

func init() { plugin.Handle(handle) }

func handle(ev *plugin.Event) (plugin.Verdict, error) {
	secret, err := plugin.RequireConfig("secret")
	if err != nil {
		return plugin.Verdict{}, err
	}
	signature, _ := ev.Header("x-signature")
	mac, ok := plugin.DecodeHex(signature)
	if !ok || len(mac) == 0 {
		return plugin.MissingSignature("`x-signature` is missing or not hex"), nil
	}
	valid, err := plugin.HmacSha256Verify(secret, ev.Body, mac)
	if err != nil {
		return plugin.Verdict{}, err
	}
	if !valid {
		return plugin.BadSignature("the signature does not match the body"), nil
	}
	deliveryID, _ := ev.Header("x-delivery-id")
	return plugin.Accept(deliveryID), nil
}

func main() {}
