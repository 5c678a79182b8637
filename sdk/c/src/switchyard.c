/*
 * The C SDK's helpers (see include/switchyard.h): event lookups, host calls, answers, a byte
 * buffer, and a small validating JSON reader. Every string handed to the bindings in an answer
 * is heap memory, since the bindings free answers after the host has read them.
 */
#include "switchyard.h"

#include <stdlib.h>
#include <string.h>

/* --- reading the event --------------------------------------------------------------- */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

bool sy_header(const plugin_event_t *ev, const char *name, plugin_string_t *value) {
  size_t name_len = strlen(name);
  for (size_t i = 0; i < ev->headers.len; i++) {
    plugin_string_t header = ev->headers.ptr[i].f0;
    if (header.len != name_len) continue;
    size_t j = 0;
    while (j < name_len && lower(header.ptr[j]) == lower((unsigned char)name[j])) j++;
    if (j == name_len) {
      *value = ev->headers.ptr[i].f1;
      return true;
    }
  }
  return false;
}

bool sy_string_equals(plugin_string_t value, const char *text) {
  size_t len = strlen(text);
  return value.len == len && memcmp(value.ptr, text, len) == 0;
}

/* --- the host ------------------------------------------------------------------------ */

static plugin_string_t borrowed(const char *text) {
  plugin_string_t string = {(uint8_t *)text, strlen(text)};
  return string;
}

static void owned(plugin_string_t *string, const char *text) { plugin_string_dup(string, text); }

void sy_log(switchyard_plugin_host_level_t level, const char *message) {
  plugin_string_t text = borrowed(message);
  switchyard_plugin_host_log(level, &text);
}

char *sy_config(const char *key) {
  plugin_string_t name = borrowed(key);
  plugin_string_t value;
  if (!switchyard_plugin_host_config(&name, &value)) return NULL;
  char *copy = malloc(value.len + 1);
  if (copy != NULL) {
    memcpy(copy, value.ptr, value.len);
    copy[value.len] = '\0';
  }
  plugin_string_free(&value);
  return copy;
}

uint64_t sy_now_ms(void) { return switchyard_plugin_host_now_ms(); }

bool sy_hmac_sha256_verify(const char *secret, const uint8_t *data, size_t data_len,
                           const uint8_t *mac, size_t mac_len, bool *valid,
                           plugin_failure_t *err) {
  plugin_string_t name = borrowed(secret);
  plugin_list_u8_t content = {(uint8_t *)data, data_len};
  plugin_list_u8_t expected = {(uint8_t *)mac, mac_len};
  switchyard_plugin_crypto_crypto_error_t error;
  if (switchyard_plugin_crypto_hmac_sha256_verify(&name, &content, &expected, valid, &error)) {
    return true;
  }
  const char *why = error.tag == SWITCHYARD_PLUGIN_CRYPTO_CRYPTO_ERROR_UNKNOWN_SECRET
                        ? "unknown secret `"
                    : error.tag == SWITCHYARD_PLUGIN_CRYPTO_CRYPTO_ERROR_NOT_ALLOWED
                        ? "secret not listed in this plugin's `secrets`: `"
                        : "bad crypto input: `";
  sy_buffer message = {0};
  sy_buffer_append_str(&message, why);
  sy_buffer_append(&message, error.val.unknown_secret.ptr, error.val.unknown_secret.len);
  sy_buffer_append_str(&message, "`");
  sy_buffer_append(&message, "", 1);
  switchyard_plugin_crypto_crypto_error_free(&error);
  sy_fatal(err, (const char *)message.data);
  sy_buffer_free(&message);
  return false;
}

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

long sy_decode_hex(plugin_string_t text, uint8_t *out, size_t capacity) {
  if (text.len % 2 != 0 || text.len / 2 > capacity) return -1;
  for (size_t i = 0; i < text.len / 2; i++) {
    int high = hex_digit(text.ptr[2 * i]);
    int low = hex_digit(text.ptr[2 * i + 1]);
    if (high < 0 || low < 0) return -1;
    out[i] = (uint8_t)(high << 4 | low);
  }
  return (long)(text.len / 2);
}

/* --- answers --------------------------------------------------------------------------- */

bool sy_pass(plugin_verdict_t *ret) {
  ret->tag = SWITCHYARD_PLUGIN_TYPES_VERDICT_PASS;
  return true;
}

bool sy_drop(plugin_verdict_t *ret) {
  ret->tag = SWITCHYARD_PLUGIN_TYPES_VERDICT_DROP;
  return true;
}

bool sy_reject(plugin_verdict_t *ret, uint16_t status, const char *code, const char *message) {
  ret->tag = SWITCHYARD_PLUGIN_TYPES_VERDICT_REJECT;
  ret->val.reject.status = status;
  owned(&ret->val.reject.code, code);
  owned(&ret->val.reject.message, message);
  return true;
}

bool sy_missing_signature(plugin_verdict_t *ret, const char *message) {
  return sy_reject(ret, 401, "missing_signature", message);
}

bool sy_bad_signature(plugin_verdict_t *ret, const char *message) {
  return sy_reject(ret, 401, "bad_signature", message);
}

bool sy_stale_timestamp(plugin_verdict_t *ret, const char *message) {
  return sy_reject(ret, 401, "stale_timestamp", message);
}

static void empty_patch(plugin_verdict_t *ret) {
  ret->tag = SWITCHYARD_PLUGIN_TYPES_VERDICT_MODIFY;
  memset(&ret->val.modify, 0, sizeof ret->val.modify);
}

static plugin_tuple2_string_string_t *one_pair(const char *name, const uint8_t *value,
                                               size_t len) {
  plugin_tuple2_string_string_t *pair = malloc(sizeof *pair);
  if (pair == NULL) abort();
  owned(&pair->f0, name);
  plugin_string_dup_n(&pair->f1, (const char *)value, len);
  return pair;
}

bool sy_accept(plugin_verdict_t *ret, const plugin_string_t *dedupe_key) {
  if (dedupe_key == NULL) return sy_pass(ret);
  empty_patch(ret);
  ret->val.modify.set_metadata.ptr = one_pair("dedupe-key", dedupe_key->ptr, dedupe_key->len);
  ret->val.modify.set_metadata.len = 1;
  return true;
}

bool sy_modify_body(plugin_verdict_t *ret, const uint8_t *body, size_t len,
                    const char *content_type) {
  empty_patch(ret);
  switchyard_plugin_types_patch_t *patch = &ret->val.modify;
  patch->body.is_some = true;
  patch->body.val.ptr = malloc(len > 0 ? len : 1);
  if (patch->body.val.ptr == NULL) abort();
  memcpy(patch->body.val.ptr, body, len);
  patch->body.val.len = len;
  if (content_type != NULL) {
    patch->set_headers.ptr =
        one_pair("content-type", (const uint8_t *)content_type, strlen(content_type));
    patch->set_headers.len = 1;
  }
  return true;
}

bool sy_fatal(plugin_failure_t *err, const char *message) {
  err->tag = SWITCHYARD_PLUGIN_TYPES_FAILURE_FATAL;
  owned(&err->val.fatal, message);
  return false;
}

bool sy_retry(plugin_failure_t *err, const char *message) {
  err->tag = SWITCHYARD_PLUGIN_TYPES_FAILURE_RETRY;
  owned(&err->val.retry, message);
  return false;
}

/* --- a growable byte buffer -------------------------------------------------------------- */

void sy_buffer_append(sy_buffer *buffer, const void *bytes, size_t len) {
  if (buffer->len + len > buffer->capacity) {
    size_t capacity = buffer->capacity ? buffer->capacity : 64;
    while (capacity < buffer->len + len) capacity *= 2;
    uint8_t *data = realloc(buffer->data, capacity);
    if (data == NULL) abort();
    buffer->data = data;
    buffer->capacity = capacity;
  }
  if (len > 0) memcpy(buffer->data + buffer->len, bytes, len);
  buffer->len += len;
}

void sy_buffer_append_str(sy_buffer *buffer, const char *text) {
  sy_buffer_append(buffer, text, strlen(text));
}

void sy_buffer_append_u64(sy_buffer *buffer, uint64_t number) {
  char digits[20];
  size_t count = 0;
  do {
    digits[count++] = (char)('0' + number % 10);
    number /= 10;
  } while (number > 0);
  while (count > 0) sy_buffer_append(buffer, &digits[--count], 1);
}

void sy_buffer_append_json_string(sy_buffer *buffer, const uint8_t *bytes, size_t len) {
  static const char hex[] = "0123456789abcdef";
  sy_buffer_append(buffer, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    uint8_t c = bytes[i];
    const char *escape = NULL;
    switch (c) {
      case '"': escape = "\\\""; break;
      case '\\': escape = "\\\\"; break;
      case '\b': escape = "\\b"; break;
      case '\f': escape = "\\f"; break;
      case '\n': escape = "\\n"; break;
      case '\r': escape = "\\r"; break;
      case '\t': escape = "\\t"; break;
      default: break;
    }
    if (escape != NULL) {
      sy_buffer_append_str(buffer, escape);
    } else if (c < 0x20) {
      char unicode[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      sy_buffer_append(buffer, unicode, sizeof unicode);
    } else {
      sy_buffer_append(buffer, &c, 1);
    }
  }
  sy_buffer_append(buffer, "\"", 1);
}

void sy_buffer_free(sy_buffer *buffer) {
  free(buffer->data);
  buffer->data = NULL;
  buffer->len = buffer->capacity = 0;
}

/* --- reading JSON ------------------------------------------------------------------------ */

/* A cursor over the document; every skip_* validates what it passes over. */
typedef struct cursor {
  const uint8_t *at;
  const uint8_t *end;
  int depth;
} cursor;

enum { MAX_DEPTH = 128 };

static void skip_space(cursor *c) {
  while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\n' || *c->at == '\r'))
    c->at++;
}

static bool skip_literal(cursor *c, const char *word) {
  size_t len = strlen(word);
  if ((size_t)(c->end - c->at) < len || memcmp(c->at, word, len) != 0) return false;
  c->at += len;
  return true;
}

/* Skips one UTF-8 encoded character of two to four bytes whose first byte is `lead`
 * (already consumed); false for anything that is not well-formed UTF-8. */
static bool skip_utf8_tail(cursor *c, uint8_t lead) {
  int more;
  uint32_t code;
  if (lead >= 0xC2 && lead <= 0xDF) {
    more = 1;
    code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    more = 2;
    code = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    more = 3;
    code = lead & 0x07;
  } else {
    return false;
  }
  for (int i = 0; i < more; i++) {
    if (c->at >= c->end || (*c->at & 0xC0) != 0x80) return false;
    code = code << 6 | (*c->at++ & 0x3F);
  }
  static const uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
  return code >= smallest[more] && code <= 0x10FFFF && !(code >= 0xD800 && code < 0xE000);
}

static bool skip_string(cursor *c) {
  if (c->at >= c->end || *c->at != '"') return false;
  c->at++;
  while (c->at < c->end) {
    uint8_t byte = *c->at++;
    if (byte == '"') return true;
    if (byte < 0x20) return false;
    if (byte >= 0x80) {
      if (!skip_utf8_tail(c, byte)) return false;
      continue;
    }
    if (byte == '\\') {
      if (c->at >= c->end) return false;
      uint8_t escaped = *c->at++;
      if (escaped == 'u') {
        for (int i = 0; i < 4; i++) {
          if (c->at >= c->end || hex_digit(*c->at++) < 0) return false;
        }
      } else if (!strchr("\"\\/bfnrt", escaped) || escaped == '\0') {
        return false;
      }
    }
  }
  return false;
}

static bool skip_digits(cursor *c) {
  const uint8_t *start = c->at;
  while (c->at < c->end && *c->at >= '0' && *c->at <= '9') c->at++;
  return c->at > start;
}

static bool skip_number(cursor *c) {
  if (c->at < c->end && *c->at == '-') c->at++;
  if (c->at < c->end && *c->at == '0') {
    c->at++;
  } else if (!skip_digits(c)) {
    return false;
  }
  if (c->at < c->end && *c->at == '.') {
    c->at++;
    if (!skip_digits(c)) return false;
  }
  if (c->at < c->end && (*c->at == 'e' || *c->at == 'E')) {
    c->at++;
    if (c->at < c->end && (*c->at == '+' || *c->at == '-')) c->at++;
    if (!skip_digits(c)) return false;
  }
  return true;
}

static sy_json_kind skip_value(cursor *c);

static bool skip_container(cursor *c, uint8_t close, bool object) {
  if (++c->depth > MAX_DEPTH) return false;
  c->at++;
  skip_space(c);
  if (c->at < c->end && *c->at == close) {
    c->at++;
    c->depth--;
    return true;
  }
  for (;;) {
    skip_space(c);
    if (object) {
      if (!skip_string(c)) return false;
      skip_space(c);
      if (c->at >= c->end || *c->at++ != ':') return false;
      skip_space(c);
    }
    if (skip_value(c) == SY_JSON_INVALID) return false;
    skip_space(c);
    if (c->at >= c->end) return false;
    uint8_t next = *c->at++;
    if (next == close) break;
    if (next != ',') return false;
  }
  c->depth--;
  return true;
}

static sy_json_kind skip_value(cursor *c) {
  if (c->at >= c->end) return SY_JSON_INVALID;
  switch (*c->at) {
    case '{': return skip_container(c, '}', true) ? SY_JSON_OBJECT : SY_JSON_INVALID;
    case '[': return skip_container(c, ']', false) ? SY_JSON_ARRAY : SY_JSON_INVALID;
    case '"': return skip_string(c) ? SY_JSON_STRING : SY_JSON_INVALID;
    case 't': return skip_literal(c, "true") ? SY_JSON_BOOL : SY_JSON_INVALID;
    case 'f': return skip_literal(c, "false") ? SY_JSON_BOOL : SY_JSON_INVALID;
    case 'n': return skip_literal(c, "null") ? SY_JSON_NULL : SY_JSON_INVALID;
    default: return skip_number(c) ? SY_JSON_NUMBER : SY_JSON_INVALID;
  }
}

static sy_json invalid(void) {
  sy_json value = {NULL, 0, SY_JSON_INVALID};
  return value;
}

/* The value starting at the cursor (which moves past it). */
static sy_json read_value(cursor *c) {
  skip_space(c);
  const uint8_t *start = c->at;
  sy_json_kind kind = skip_value(c);
  if (kind == SY_JSON_INVALID) return invalid();
  sy_json value = {start, (size_t)(c->at - start), kind};
  return value;
}

sy_json sy_json_parse(const uint8_t *text, size_t len) {
  cursor c = {text, text + len, 0};
  sy_json value = read_value(&c);
  skip_space(&c);
  return c.at == c.end ? value : invalid();
}

sy_json sy_json_get(sy_json object, const char *key) {
  if (object.kind != SY_JSON_OBJECT) return invalid();
  cursor c = {object.start + 1, object.start + object.len, 0};
  sy_buffer name = {0};
  sy_json found = invalid();
  for (;;) {
    skip_space(&c);
    if (c.at >= c.end || *c.at == '}') break;
    sy_json member = read_value(&c);
    name.len = 0;
    if (!sy_json_string(member, &name)) break;
    skip_space(&c);
    c.at++; /* ':' (the object was validated when it was read) */
    sy_json value = read_value(&c);
    if (name.len == strlen(key) && memcmp(name.data, key, name.len) == 0) {
      found = value; /* the last duplicate wins, as in serde_json, JSON.parse and Python */
    }
    skip_space(&c);
    if (c.at < c.end && *c.at == ',') c.at++;
  }
  sy_buffer_free(&name);
  return found;
}

long sy_json_array_length(sy_json array) {
  if (array.kind != SY_JSON_ARRAY) return -1;
  cursor c = {array.start + 1, array.start + array.len, 0};
  long count = 0;
  for (;;) {
    skip_space(&c);
    if (c.at >= c.end || *c.at == ']') return count;
    read_value(&c);
    count++;
    skip_space(&c);
    if (c.at < c.end && *c.at == ',') c.at++;
  }
}

static void append_utf8(sy_buffer *out, uint32_t code) {
  uint8_t bytes[4];
  size_t len;
  if (code < 0x80) {
    bytes[0] = (uint8_t)code;
    len = 1;
  } else if (code < 0x800) {
    bytes[0] = (uint8_t)(0xC0 | code >> 6);
    bytes[1] = (uint8_t)(0x80 | (code & 0x3F));
    len = 2;
  } else if (code < 0x10000) {
    bytes[0] = (uint8_t)(0xE0 | code >> 12);
    bytes[1] = (uint8_t)(0x80 | (code >> 6 & 0x3F));
    bytes[2] = (uint8_t)(0x80 | (code & 0x3F));
    len = 3;
  } else {
    bytes[0] = (uint8_t)(0xF0 | code >> 18);
    bytes[1] = (uint8_t)(0x80 | (code >> 12 & 0x3F));
    bytes[2] = (uint8_t)(0x80 | (code >> 6 & 0x3F));
    bytes[3] = (uint8_t)(0x80 | (code & 0x3F));
    len = 4;
  }
  sy_buffer_append(out, bytes, len);
}

static uint32_t read_hex4(const uint8_t *at) {
  uint32_t code = 0;
  for (int i = 0; i < 4; i++) code = code << 4 | (uint32_t)hex_digit(at[i]);
  return code;
}

bool sy_json_string(sy_json value, sy_buffer *out) {
  if (value.kind != SY_JSON_STRING) return false;
  const uint8_t *at = value.start + 1;
  const uint8_t *end = value.start + value.len - 1;
  while (at < end) {
    if (*at != '\\') {
      sy_buffer_append(out, at++, 1);
      continue;
    }
    uint8_t escaped = at[1];
    at += 2;
    switch (escaped) {
      case 'b': sy_buffer_append(out, "\b", 1); break;
      case 'f': sy_buffer_append(out, "\f", 1); break;
      case 'n': sy_buffer_append(out, "\n", 1); break;
      case 'r': sy_buffer_append(out, "\r", 1); break;
      case 't': sy_buffer_append(out, "\t", 1); break;
      case 'u': {
        uint32_t code = read_hex4(at);
        at += 4;
        if (code >= 0xD800 && code < 0xDC00 && end - at >= 6 && at[0] == '\\' && at[1] == 'u') {
          uint32_t low = read_hex4(at + 2);
          if (low >= 0xDC00 && low < 0xE000) {
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            at += 6;
          }
        }
        /* A lone surrogate cannot be UTF-8: write U+FFFD as the other SDKs' decoders do. */
        if (code >= 0xD800 && code < 0xE000) code = 0xFFFD;
        append_utf8(out, code);
        break;
      }
      default: sy_buffer_append(out, &escaped, 1); break; /* '"', '\\', '/' */
    }
  }
  return true;
}
