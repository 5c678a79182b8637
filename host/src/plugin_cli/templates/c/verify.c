/* A verifier: `x-signature` must be the hex HMAC-SHA256 of the raw body, keyed with the secret
 * named by the `secret` config value. `x-delivery-id`, when present, is the dedupe key. */
#include <stdlib.h>

#include "switchyard.h"

static bool answer(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err) {
  char *secret = sy_config("secret");
  if (secret == NULL) return sy_fatal(err, "missing config key `secret`");
  plugin_string_t signature;
  uint8_t mac[64];
  long mac_len = sy_header(ev, "x-signature", &signature) ? sy_decode_hex(signature, mac, sizeof mac)
                                                          : -1;
  if (mac_len <= 0) {
    free(secret);
    return sy_missing_signature(ret, "`x-signature` is missing or not hex");
  }
  bool valid = false;
  bool called = sy_hmac_sha256_verify(secret, ev->body.ptr, ev->body.len, mac, (size_t)mac_len,
                                      &valid, err);
  free(secret);
  if (!called) return false;
  if (!valid) return sy_bad_signature(ret, "the signature does not match the body");
  plugin_string_t delivery;
  return sy_accept(ret, sy_header(ev, "x-delivery-id", &delivery) ? &delivery : NULL);
}

bool exports_plugin_handle(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err) {
  bool ok = answer(ev, ret, err); /* copies what it keeps, so the event can go */
  plugin_event_free(ev);
  return ok;
}
