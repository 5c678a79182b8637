"""A filter: lets through events whose JSON body has "action" equal to the `action` config
value (default `opened`), drops the rest."""

from switchyard_plugin import Event, Failure, filter, host


@filter
def keep(event: Event) -> bool:
    wanted = host.config("action") or "opened"
    try:
        body = event.body_json()
    except Failure:
        return False
    return isinstance(body, dict) and body.get("action") == wanted
