"""A GitHub push event as a chat message: {"text": "<pusher> pushed <n> commits to <repo>"}
("1 commit" for one). An event without those fields is a fatal failure."""

from switchyard_plugin import Event, Failure, transform


@transform
def push_to_chat(event: Event) -> Event:
    push = event.body_json()
    pusher = _string(push, "pusher", "name")
    repository = _string(push, "repository", "full_name")
    commits = push.get("commits") if isinstance(push, dict) else None
    if not isinstance(commits, list):
        raise Failure.fatal("not a push event: no `commits`")
    noun = "commit" if len(commits) == 1 else "commits"
    event.set_body_json({"text": f"{pusher} pushed {len(commits)} {noun} to {repository}"})
    event.set_header("content-type", "application/json")
    return event


def _string(push: object, outer: str, inner: str) -> str:
    parent = push.get(outer) if isinstance(push, dict) else None
    value = parent.get(inner) if isinstance(parent, dict) else None
    if not isinstance(value, str):
        raise Failure.fatal(f"not a push event: no `{outer}.{inner}`")
    return value
