"""Write Switchyard plugins in Python.

A plugin is a WebAssembly component exporting one function, `handle`, that takes an event and
answers a verdict (the world `plugin` in `wit/switchyard.wit`, whose comments say what the host
does with each answer). Decorate exactly one function of your module:

| decorator    | your function                         | what the host sees              |
|--------------|---------------------------------------|---------------------------------|
| `@filter`    | `(Event) -> bool`                     | `pass` for True, `drop` for False |
| `@transform` | `(Event) -> Event`                    | `pass`, `modify` or `replace`   |
| `@verify`    | `(Event) -> Verification | Rejection` | `pass`, `modify` (dedupe key) or `reject` |
| `@plugin`    | `(Event) -> Verdict`                  | exactly what you return         |

Raise `Failure.retry(...)` or `Failure.fatal(...)` when you cannot decide; any other exception
is a fatal failure. Build with `switchyard plugin build` (or `python -m switchyard_plugin.build`).
"""

from . import crypto, host
from .event import DEDUPE_KEY, Event
from .kinds import filter, plugin, run, transform, verify
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

__all__ = [
    "DEDUPE_KEY",
    "Drop",
    "Event",
    "Failure",
    "Modify",
    "Pass",
    "Patch",
    "Reject",
    "Rejection",
    "Replace",
    "Split",
    "Verdict",
    "Verification",
    "crypto",
    "filter",
    "from_change",
    "host",
    "plugin",
    "run",
    "transform",
    "verify",
]
