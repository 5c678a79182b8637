"""A transform: wraps the JSON body as {"type": <event type>, "data": <body>}."""

from switchyard_plugin import Event, transform


@transform
def wrap(event: Event) -> Event:
    data = event.body_json()  # not JSON: a fatal failure, the binding's on_error decides
    event.set_body_json({"type": event.type, "data": data})
    event.set_header("content-type", "application/json")
    return event
