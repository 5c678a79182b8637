/*
 * Switchyard plugins in C: helpers over the bindings that `switchyard-c bindings` generates
 * for the world `plugin` (`plugin.h`).
 *
 * Your plugin defines the export
 *
 *     bool exports_plugin_handle(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err);
 *
 * It owns `ev` (free it with `plugin_event_free` before returning), answers `true` with a
 * verdict in `*ret` or `false` with a failure in `*err`. Everything put in `*ret` or `*err` must
 * be heap memory: the bindings free it after the host has read it. The helpers below follow
 * that rule. They mirror the Rust SDK: header names compare case-insensitively, the three
 * verifier rejections are 401 `missing_signature` / `bad_signature` / `stale_timestamp`, and a
 * verifier's accept with a dedupe key is a `modify` setting the metadata key `dedupe-key`.
 */
#ifndef SWITCHYARD_H
#define SWITCHYARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- reading the event --------------------------------------------------------------- */

/* The first value of header `name` (compared case-insensitively), borrowed from `ev`. */
bool sy_header(const plugin_event_t *ev, const char *name, plugin_string_t *value);

/* Whether `value` holds exactly the NUL-terminated `text`. */
bool sy_string_equals(plugin_string_t value, const char *text);

/* --- the host ------------------------------------------------------------------------ */

/* Logs `message` (NUL-terminated) at `level` (SWITCHYARD_PLUGIN_HOST_LEVEL_*). */
void sy_log(switchyard_plugin_host_level_t level, const char *message);

/* The config value of `key` as a new NUL-terminated string (free it), or NULL. */
char *sy_config(const char *key);

/* The host's clock in unix milliseconds (fixed by test fixtures). */
uint64_t sy_now_ms(void);

/* `*valid` = whether `mac` is HMAC-SHA256 of `data` under the secret named `secret`.
 * Answers false with a fatal failure in `*err` when the host cannot use the secret. */
bool sy_hmac_sha256_verify(const char *secret, const uint8_t *data, size_t data_len,
                           const uint8_t *mac, size_t mac_len, bool *valid,
                           plugin_failure_t *err);

/* Decodes hex (either case) into `out` (capacity `capacity`); answers the byte count, or -1
 * when `text` is not hex or does not fit. */
long sy_decode_hex(plugin_string_t text, uint8_t *out, size_t capacity);

/* --- answers --------------------------------------------------------------------------- */

bool sy_pass(plugin_verdict_t *ret);
bool sy_drop(plugin_verdict_t *ret);
/* `reject` with any 4xx status, a snake_case code and a message. */
bool sy_reject(plugin_verdict_t *ret, uint16_t status, const char *code, const char *message);
bool sy_missing_signature(plugin_verdict_t *ret, const char *message);
bool sy_bad_signature(plugin_verdict_t *ret, const char *message);
bool sy_stale_timestamp(plugin_verdict_t *ret, const char *message);
/* A verifier's accept: `pass` without a key, `modify` setting `dedupe-key` with one. */
bool sy_accept(plugin_verdict_t *ret, const plugin_string_t *dedupe_key);
/* `modify` replacing the body (the bytes are copied) and, when `content_type` is not NULL,
 * setting the `content-type` header. */
bool sy_modify_body(plugin_verdict_t *ret, const uint8_t *body, size_t len,
                    const char *content_type);
/* These answer false, so `return sy_fatal(err, "…");` ends a handler. */
bool sy_fatal(plugin_failure_t *err, const char *message);
bool sy_retry(plugin_failure_t *err, const char *message);

/* --- a growable byte buffer -------------------------------------------------------------- */

typedef struct sy_buffer {
  uint8_t *data;
  size_t len;
  size_t capacity;
} sy_buffer;

void sy_buffer_append(sy_buffer *buffer, const void *bytes, size_t len);
void sy_buffer_append_str(sy_buffer *buffer, const char *text);
void sy_buffer_append_u64(sy_buffer *buffer, uint64_t number);
/* Appends `bytes` as a JSON string, quotes included, escaped the way serde_json, JSON.stringify
 * and Python's json.dumps(ensure_ascii=False) all do. */
void sy_buffer_append_json_string(sy_buffer *buffer, const uint8_t *bytes, size_t len);
void sy_buffer_free(sy_buffer *buffer);

/* --- reading JSON ------------------------------------------------------------------------ */

typedef enum sy_json_kind {
  SY_JSON_INVALID,
  SY_JSON_NULL,
  SY_JSON_BOOL,
  SY_JSON_NUMBER,
  SY_JSON_STRING,
  SY_JSON_ARRAY,
  SY_JSON_OBJECT,
} sy_json_kind;

/* A JSON value: a view of its text inside the document. */
typedef struct sy_json {
  const uint8_t *start;
  size_t len;
  sy_json_kind kind;
} sy_json;

/* The document's top-level value; kind SY_JSON_INVALID unless the whole text is one valid
 * JSON value (whitespace around it allowed). */
sy_json sy_json_parse(const uint8_t *text, size_t len);
/* The member `key` of an object; kind SY_JSON_INVALID when absent or not an object. */
sy_json sy_json_get(sy_json object, const char *key);
/* The number of elements of an array, or -1 when it is not one. */
long sy_json_array_length(sy_json array);
/* Appends the decoded (unescaped, UTF-8) contents of a string value; false if not a string. */
bool sy_json_string(sy_json value, sy_buffer *out);

#ifdef __cplusplus
}
#endif

#endif
