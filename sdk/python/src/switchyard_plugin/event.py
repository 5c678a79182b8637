"""The event a plugin receives, with helpers for headers, metadata and JSON bodies.

Owns the reading and editing conventions every plugin shares (the same as the Rust SDK's):
header names are compared case-insensitively and stored lower case, lookups answer the first
value, and setting a header replaces all of its values in place. Pure: never calls the host,
so it works in native unit tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from .verdicts import Failure

__all__ = ["Event", "DEDUPE_KEY"]

#: The metadata key whose value a verify plugin sets to give the event a dedupe key.
DEDUPE_KEY = "dedupe-key"

# `json.dumps` with arguments builds a new encoder on every call; this one is built once.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass
class Event:
    """An event as the host holds it (the WIT record `event`).

    `id`, `source` and `received_at` belong to the host: changing them has no effect.
    """

    source: str
    type: str
    id: str = ""
    subject: Optional[str] = None
    #: (name, value) pairs, names lower case, in the order received; a name may repeat.
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The body exactly as received: signatures are computed over these bytes.
    body: bytes = b""
    #: When the host received it, in unix milliseconds.
    received_at: int = 0
    #: A string map that travels with the event from stage to stage.
    metadata: list[tuple[str, str]] = field(default_factory=list)

    # --- reading -------------------------------------------------------------------------

    def header(self, name: str) -> Optional[str]:
        """The first value of the header `name`, compared case-insensitively."""
        wanted = name.lower()
        for header, value in self.headers:
            if header.lower() == wanted:
                return value
        return None

    def header_values(self, name: str) -> Iterator[str]:
        """Every value of the header `name`, compared case-insensitively, in order."""
        wanted = name.lower()
        return (value for header, value in self.headers if header.lower() == wanted)

    def metadata_value(self, key: str) -> Optional[str]:
        """The first value of the metadata key `key` (compared exactly)."""
        for name, value in self.metadata:
            if name == key:
                return value
        return None

    def body_text(self) -> Optional[str]:
        """The body as text, or None when it is not valid UTF-8."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def body_json(self) -> Any:
        """The body parsed as JSON.

        Raises `Failure.fatal("body is not JSON: …")` when it does not parse, so a plugin that
        lets it propagate hands bad input to the binding's `on_error` policy.
        """
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise Failure.fatal(f"body is not JSON: {error}") from None

    # --- editing -------------------------------------------------------------------------

    def set_header(self, name: str, value: str) -> None:
        """Sets the header `name` (stored lower case) to `value`, replacing every earlier
        value: the first existing entry keeps its position, the others are removed; a new
        header goes last."""
        name = name.lower()
        kept: list[tuple[str, str]] = []
        replaced = False
        for header, old in self.headers:
            if header.lower() != name:
                kept.append((header, old))
            elif not replaced:
                kept.append((name, value))
                replaced = True
        if not replaced:
            kept.append((name, value))
        self.headers = kept

    def remove_header(self, name: str) -> None:
        """Removes every value of the header `name`, compared case-insensitively."""
        wanted = name.lower()
        self.headers = [(header, value) for header, value in self.headers if header.lower() != wanted]

    def set_metadata(self, key: str, value: str) -> None:
        """Sets the metadata key `key` to `value`, replacing the value of an existing key."""
        for index, (name, _) in enumerate(self.metadata):
            if name == key:
                self.metadata[index] = (key, value)
                return
        self.metadata.append((key, value))

    def set_body(self, body: bytes | str) -> None:
        """Replaces the body (text is encoded as UTF-8). Set `content-type` when its format
        changes."""
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)

    def set_body_json(self, value: Any) -> None:
        """Replaces the body with `value` as compact JSON (UTF-8, non-ASCII kept as is)."""
        self.body = _COMPACT_JSON.encode(value).encode("utf-8")

    def with_header(self, name: str, value: str) -> "Event":
        """This event with one more header value (for tests and split events)."""
        self.headers.append((name.lower(), value))
        return self

    def copy(self) -> "Event":
        """A deep copy: editing it leaves this event as it was.

        Written out: `copy.deepcopy`'s generic walk cost more than the rest of a warm call, and
        `dataclasses.replace` twice this. Strings, tuples and bytes cannot change, so new lists
        (and new pairs where a pair is a list) are all a copy needs."""
        body = bytearray(self.body) if isinstance(self.body, bytearray) else self.body
        return Event(
            source=self.source,
            type=self.type,
            id=self.id,
            subject=self.subject,
            headers=[list(pair) if isinstance(pair, list) else pair for pair in self.headers],
            body=body,
            received_at=self.received_at,
            metadata=[list(pair) if isinstance(pair, list) else pair for pair in self.metadata],
        )

