"""The host's log, config and clock: wrappers over the world's `host` imports.

Owns the config conventions every plugin shares (a missing required key and an unparsable
duration are fatal failures naming the key). The functions that call the host work only inside
a component; `parse_duration` and `duration_value` are pure.
"""

from __future__ import annotations

import re
from typing import Optional

from . import _world
from .verdicts import Failure

__all__ = [
    "log",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "config",
    "require_config",
    "config_duration_ms",
    "now_ms",
    "parse_duration",
    "duration_value",
]

_LEVELS = ("trace", "debug", "info", "warn", "error")


def log(level: str, message: str) -> None:
    """Writes a line to the host's log (`level` is one of trace, debug, info, warn, error),
    tagged with the plugin id and the event id; the host keeps at most 4 KiB per call."""
    if level not in _LEVELS:
        raise ValueError(f"a log level is one of {', '.join(_LEVELS)}, not `{level}`")
    _world.host.log(_world.host.Level[level.upper()], message)


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)


def config(key: str) -> Optional[str]:
    """The value of `key` in the binding's `config` map, if it has one.

    Each key is asked of the host once per instance and kept: a binding's config does not change
    during an instance's life, and an ask costs a crossing out of the sandbox and back."""
    try:
        return _known_config[key]
    except KeyError:
        value = _world.host.config(key)
        if len(_known_config) < _MAX_KNOWN_CONFIG:
            _known_config[key] = value
        return value


# What the host answered for each key asked so far; a plugin that makes up keys as it goes
# asks the host for the keys past the first 64.
_known_config: "dict[str, Optional[str]]" = {}
_MAX_KNOWN_CONFIG = 64


def require_config(key: str) -> str:
    """The value of `key` in the binding's `config` map, or a fatal failure naming the key."""
    value = config(key)
    if value is None:
        raise Failure.fatal(f"missing config key `{key}`: set it in the plugin binding's `config`")
    return value


def config_duration_ms(key: str, default_ms: int) -> int:
    """The duration in `key` of the config map (`"300s"`, `"5m"`, …) in milliseconds, or
    `default_ms` when the key is absent; a fatal failure when the value does not parse."""
    return duration_value(key, config(key), default_ms)


def now_ms() -> int:
    """The current time in unix milliseconds (fixed by `switchyard plugin test` fixtures)."""
    return _world.host.now_ms()


_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> int:
    """Milliseconds of `"1500ms"`, `"300s"`, `"5m"`, `"24h"` or `"7d"` (the host's syntax);
    raises ValueError for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"`{text}` is not a duration: expected a whole number and a unit "
            "(`ms`, `s`, `m`, `h` or `d`), e.g. `5m`"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def duration_value(key: str, value: Optional[str], default_ms: int) -> int:
    """`config_duration_ms` without the host: `value` is what the config map holds."""
    if value is None:
        return default_ms
    try:
        return parse_duration(value)
    except ValueError as problem:
        raise Failure.fatal(f"config key `{key}`: {problem}") from None
