"""The four kinds of plugin and the glue between them and the world's `handle` export.

Decorate exactly one function of your plugin module with `filter`, `transform`, `verify` or
`plugin`; the build wrapper exports it as `handle`. Each decorator also makes the function
callable on a plain `Event` in native tests, answering the verdict the host would see (see
`run`).

Owns the translation of each kind's answer into `result<verdict, failure>`, and of the WIT
records to and from `Event`. Must not call the host: logging or reading config is the plugin
function's business.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import _world
from .event import Event
from .verdicts import (
    Drop,
    Failure,
    Modify,
    Pass,
    Patch,
    Reject,
    Rejection,
    Replace,
    Split,
    Verdict,
    Verification,
    from_change,
)

__all__ = ["filter", "transform", "verify", "plugin", "run", "exported_handler"]

# (kind, function) of every decorated function, in the order the module defined them.
_registered: list[tuple[str, Callable[..., Any]]] = []


class Handler:
    """A decorated plugin function: `handler(event)` runs it through the kind's glue and
    answers the `Verdict` (or raises the `Failure`) the host would see."""

    def __init__(self, kind: str, function: Callable[..., Any]):
        self.kind = kind
        self.function = function
        self.__doc__ = function.__doc__
        self.__name__ = getattr(function, "__name__", kind)

    def __call__(self, event: Event) -> Verdict:
        return run(self.kind, self.function, event)


def _register(kind: str, function: Callable[..., Any]) -> Handler:
    _registered.append((kind, function))
    return Handler(kind, function)


def filter(function: Callable[[Event], bool]) -> Handler:  # noqa: A001 - mirrors the kind's name
    """`function(event) -> bool`: `True` passes the event, `False` drops it."""
    return _register("filter", function)


def transform(function: Callable[[Event], Event]) -> Handler:
    """`function(event) -> Event`: gets a copy of the event to change and return; the host
    sees the smallest verdict describing the change (`Pass`, `Modify` or `Replace`)."""
    return _register("transform", function)


def verify(function: Callable[[Event], "Verification | Rejection"]) -> Handler:
    """`function(event) -> Verification` (or a `Rejection`): `Pass`, `Modify` setting the
    dedupe key, or `Reject`."""
    return _register("verify", function)


def plugin(function: Callable[[Event], Verdict]) -> Handler:
    """`function(event) -> Verdict`: full control; the verdict goes to the host as it is."""
    return _register("plugin", function)


def run(kind: str, function: Callable[..., Any], event: Event) -> Verdict:
    """Runs `function` on `event` as a plugin of `kind`; raises `Failure`."""
    if kind == "filter":
        keep = function(event)
        if not isinstance(keep, bool):
            raise Failure.fatal(f"a filter answers True or False, not {type(keep).__name__}")
        return Pass() if keep else Drop()
    if kind == "transform":
        after = function(event.copy())
        if not isinstance(after, Event):
            raise Failure.fatal(f"a transform answers an Event, not {type(after).__name__}")
        return from_change(event, after)
    if kind == "verify":
        answer = function(event)
        if isinstance(answer, Rejection):
            return Reject(answer)
        if not isinstance(answer, Verification):
            raise Failure.fatal(f"a verifier answers a Verification, not {type(answer).__name__}")
        return answer.to_verdict()
    if kind == "plugin":
        verdict = function(event)
        if not isinstance(verdict, (Pass, Drop, Modify, Replace, Split, Reject)):
            raise Failure.fatal(f"a plugin answers a Verdict, not {type(verdict).__name__}")
        return verdict
    raise ValueError(f"unknown plugin kind `{kind}`")


# --- the component boundary ---------------------------------------------------------------


def exported_handler() -> Callable[[Any], Any]:
    """The `handle` export for the one decorated function: WIT event in, WIT verdict out,
    failures raised as the WIT `failure`. Called by the entry module the build wrapper
    writes."""
    if len(_registered) != 1:
        names = ", ".join(f"`{function.__name__}`" for _, function in _registered) or "none"
        raise RuntimeError(
            "decorate exactly one function with @filter, @transform, @verify or @plugin; "
            f"found {len(_registered)}: {names}"
        )
    kind, function = _registered[0]

    def handle(wit_event: Any) -> Any:
        types = _world.types
        try:
            verdict = run(kind, function, _from_wit(wit_event))
        except Failure as failure:
            wit_failure = types.Failure_Retry if failure.kind == "retry" else types.Failure_Fatal
            raise _world.Err(wit_failure(failure.message)) from None
        except Exception as error:  # noqa: BLE001 - any other error is the plugin's bug
            raise _world.Err(types.Failure_Fatal(f"{type(error).__name__}: {error}")) from None
        return _verdict_to_wit(verdict)

    return handle


def _from_wit(wit: Any) -> Event:
    return Event(
        id=wit.id,
        source=wit.source,
        type=wit.type,
        subject=wit.subject,
        headers=list(wit.headers),
        body=bytes(wit.body),
        received_at=wit.received_at,
        metadata=list(wit.metadata),
    )


def _event_to_wit(event: Event) -> Any:
    types = _world.types

    return types.Event(
        id=event.id,
        source=event.source,
        type=event.type,
        subject=event.subject,
        headers=[(str(name), str(value)) for name, value in event.headers],
        body=bytes(event.body),
        received_at=int(event.received_at),
        metadata=[(str(key), str(value)) for key, value in event.metadata],
    )


def _patch_to_wit(patch: Patch) -> Any:
    types = _world.types

    return types.Patch(
        set_headers=list(patch.set_headers),
        remove_headers=list(patch.remove_headers),
        set_metadata=list(patch.set_metadata),
        type=patch.type,
        subject=patch.subject,
        body=None if patch.body is None else bytes(patch.body),
    )


def _verdict_to_wit(verdict: Verdict) -> Any:
    types = _world.types

    if isinstance(verdict, Pass):
        return types.Verdict_Pass()
    if isinstance(verdict, Drop):
        return types.Verdict_Drop()
    if isinstance(verdict, Modify):
        return types.Verdict_Modify(_patch_to_wit(verdict.patch))
    if isinstance(verdict, Replace):
        return types.Verdict_Replace(_event_to_wit(verdict.event))
    if isinstance(verdict, Split):
        return types.Verdict_Split([_event_to_wit(event) for event in verdict.events])
    rejection: Optional[Rejection] = verdict.rejection if isinstance(verdict, Reject) else None
    if rejection is None:
        raise TypeError(f"not a verdict: {verdict!r}")
    return types.Verdict_Reject(types.Rejection(rejection.status, rejection.code, rejection.message))
