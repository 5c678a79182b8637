"""The component's imports (`wit_world.imports`) and the bindings' `Err`, imported once.

An import statement inside a function runs on every call (about a microsecond each in a
component), and a warm call made several. Inside a component these modules exist before the
plugin's module is imported; outside one (native unit tests) they do not, and using one raises
a `RuntimeError` that says so.
"""

from __future__ import annotations

from typing import Any


class _Outside:
    """Stands in for a module that exists only inside a component."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(
            f"`{self._name}.{attribute}` exists only inside a component: build the plugin and "
            "run it with `switchyard plugin run` or `switchyard plugin test`"
        )


try:
    from componentize_py_types import Err
    from wit_world.imports import crypto, host, types
except ImportError:
    Err = type("Err", (Exception,), {})  # never raised outside a component
    crypto = _Outside("wit_world.imports.crypto")
    host = _Outside("wit_world.imports.host")
    types = _Outside("wit_world.imports.types")

__all__ = ["Err", "crypto", "host", "types"]
