/* A transform: wraps the JSON body as {"type": <event type>, "data": <body>}. */
#include "switchyard.h"

bool exports_plugin_handle(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err) {
  sy_json data = sy_json_parse(ev->body.ptr, ev->body.len);
  if (data.kind == SY_JSON_INVALID) {
    plugin_event_free(ev);
    return sy_fatal(err, "body is not JSON");
  }
  sy_buffer body = {0};
  sy_buffer_append_str(&body, "{\"type\":");
  sy_buffer_append_json_string(&body, ev->type.ptr, ev->type.len);
  sy_buffer_append_str(&body, ",\"data\":");
  sy_buffer_append(&body, data.start, data.len);
  sy_buffer_append_str(&body, "}");
  plugin_string_t content_type;
  bool is_json = sy_header(ev, "content-type", &content_type) &&
                 sy_string_equals(content_type, "application/json");
  sy_modify_body(ret, body.data, body.len, is_json ? NULL : "application/json");
  sy_buffer_free(&body);
  plugin_event_free(ev);
  return true;
}
