"""The benchmarks' Python transform: masks the values at the JSON pointers of the config key
`pointers` (comma-separated), as the first-party Rust `redact` plugin does, so the rows
`S1-redact` and `S1-python` do the same work in two languages. A body that is not JSON is a
fatal failure. With the config key `mode = "pass"` it answers at once with the event untouched:
what a call costs before the plugin does any work (the interpreter and the event's conversion)."""

from switchyard_plugin import Event, Failure, host, transform

MASK = "[redacted]"


@transform
def redact(event: Event) -> Event:
    if host.config("mode") == "pass":
        return event
    pointers = [p.strip() for p in host.require_config("pointers").split(",") if p.strip()]
    body = event.body_json()
    masked = 0
    for pointer in pointers:
        if not pointer.startswith("/"):
            raise Failure.fatal(f"config key `pointers`: `{pointer}` is not a JSON pointer")
        masked += _mask(body, pointer)
    if masked:
        event.set_body_json(body)
    return event


def _mask(body: object, pointer: str) -> int:
    """Replaces the value at `pointer` (RFC 6901) with the mask; answers 1 if it existed."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    parent = body
    for token in tokens[:-1]:
        parent = _child(parent, token)
        if parent is None:
            return 0
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        parent[last] = MASK
        return 1
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = MASK
        return 1
    return 0


def _child(value: object, token: str) -> object:
    if isinstance(value, dict):
        return value.get(token)
    if isinstance(value, list) and token.isdigit() and int(token) < len(value):
        return value[int(token)]
    return None
