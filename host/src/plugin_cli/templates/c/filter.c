/* A filter: lets through events whose JSON body has "action" equal to the `action` config
 * value (default `opened`), drops the rest. */
#include <stdlib.h>
#include <string.h>

#include "switchyard.h"

bool exports_plugin_handle(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err) {
  (void)err;
  char *configured = sy_config("action");
  const char *wanted = configured != NULL ? configured : "opened";
  sy_json body = sy_json_parse(ev->body.ptr, ev->body.len);
  sy_buffer action = {0};
  bool keep = sy_json_string(sy_json_get(body, "action"), &action) &&
              action.len == strlen(wanted) && memcmp(action.data, wanted, action.len) == 0;
  sy_buffer_free(&action);
  free(configured);
  plugin_event_free(ev);
  return keep ? sy_pass(ret) : sy_drop(ret);
}
