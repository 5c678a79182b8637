/* A GitHub push event as a chat message: {"text": "<pusher> pushed <n> commits to <repo>"}
 * ("1 commit" for one). An event without those fields is a fatal failure. */
#include <string.h>

#include "switchyard.h"

static bool answer(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err) {
  sy_json push = sy_json_parse(ev->body.ptr, ev->body.len);
  if (push.kind == SY_JSON_INVALID) return sy_fatal(err, "body is not JSON");
  sy_buffer pusher = {0}, repository = {0}, text = {0}, body = {0};
  long commits = sy_json_array_length(sy_json_get(push, "commits"));
  bool ok = false;
  if (!sy_json_string(sy_json_get(sy_json_get(push, "pusher"), "name"), &pusher)) {
    sy_fatal(err, "not a push event: no `pusher.name`");
  } else if (!sy_json_string(sy_json_get(sy_json_get(push, "repository"), "full_name"),
                             &repository)) {
    sy_fatal(err, "not a push event: no `repository.full_name`");
  } else if (commits < 0) {
    sy_fatal(err, "not a push event: no `commits`");
  } else {
    sy_buffer_append(&text, pusher.data, pusher.len);
    sy_buffer_append_str(&text, " pushed ");
    sy_buffer_append_u64(&text, (uint64_t)commits);
    sy_buffer_append_str(&text, commits == 1 ? " commit to " : " commits to ");
    sy_buffer_append(&text, repository.data, repository.len);
    sy_buffer_append_str(&body, "{\"text\":");
    sy_buffer_append_json_string(&body, text.data, text.len);
    sy_buffer_append_str(&body, "}");
    /* Like the other SDKs' transforms: the header goes in the patch only if it changes. */
    plugin_string_t content_type;
    bool unchanged = sy_header(ev, "content-type", &content_type) &&
                     sy_string_equals(content_type, "application/json");
    ok = sy_modify_body(ret, body.data, body.len, unchanged ? NULL : "application/json");
  }
  sy_buffer_free(&pusher);
  sy_buffer_free(&repository);
  sy_buffer_free(&text);
  sy_buffer_free(&body);
  return ok;
}

bool exports_plugin_handle(plugin_event_t *ev, plugin_verdict_t *ret, plugin_failure_t *err) {
  bool ok = answer(ev, ret, err);
  plugin_event_free(ev);
  return ok;
}
