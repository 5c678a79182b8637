"""Answers: verdicts, patches, rejections, failures and verifications.

Owns the constructors plugins answer with, the three rejection codes every verifier shares,
and the translation of a changed event into the smallest verdict that describes it
(`from_change`, the same rules as the Rust SDK's `Verdict::from_change`). Pure: never calls
the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    from .event import Event

__all__ = [
    "Failure",
    "Rejection",
    "Patch",
    "Pass",
    "Drop",
    "Modify",
    "Replace",
    "Split",
    "Reject",
    "Verdict",
    "Verification",
    "from_change",
]


class Failure(Exception):
    """Why the plugin could not decide; raise it from a plugin function.

    `Failure.retry(message)`: something transient, the sender is asked to retry and nothing is
    stored. `Failure.fatal(message)`: a bug or input the plugin cannot handle, the binding's
    `on_error` policy applies. Any other exception a plugin function raises is a fatal failure.
    """

    def __init__(self, kind: str, message: str):
        if kind not in ("retry", "fatal"):
            raise ValueError(f"a failure is `retry` or `fatal`, not `{kind}`")
        super().__init__(message)
        self.kind = kind
        self.message = message

    @classmethod
    def retry(cls, message: str) -> "Failure":
        return cls("retry", message)

    @classmethod
    def fatal(cls, message: str) -> "Failure":
        return cls("fatal", message)

    def __repr__(self) -> str:
        return f"Failure.{self.kind}({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Failure) and (self.kind, self.message) == (other.kind, other.message)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Rejection:
    """A refusal of the event (verify stage only): the sender gets `status` and
    `{"code": code, "detail": message}`. Never put secrets or expected signatures in it."""

    status: int
    code: str
    message: str

    UNAUTHORIZED = 401

    @classmethod
    def missing_signature(cls, message: str) -> "Rejection":
        """401 `missing_signature`: the signature headers are absent or do not parse."""
        return cls(cls.UNAUTHORIZED, "missing_signature", message)

    @classmethod
    def bad_signature(cls, message: str) -> "Rejection":
        """401 `bad_signature`: no signature matches the body."""
        return cls(cls.UNAUTHORIZED, "bad_signature", message)

    @classmethod
    def stale_timestamp(cls, message: str) -> "Rejection":
        """401 `stale_timestamp`: the signed timestamp is further from now than the tolerance,
        in the past or in the future."""
        return cls(cls.UNAUTHORIZED, "stale_timestamp", message)


@dataclass
class Patch:
    """A small edit of the event; only what changes crosses back to the host."""

    set_headers: list[tuple[str, str]] = field(default_factory=list)
    remove_headers: list[str] = field(default_factory=list)
    set_metadata: list[tuple[str, str]] = field(default_factory=list)
    type: Optional[str] = None
    subject: Optional[str] = None
    body: Optional[bytes] = None

    def is_empty(self) -> bool:
        return self == Patch()


@dataclass
class Pass:
    """The event goes on unchanged."""


@dataclass
class Drop:
    """Not this event: it goes no further on this path."""


@dataclass
class Modify:
    """The event goes on with this patch applied."""

    patch: Patch


@dataclass
class Replace:
    """The event goes on replaced by this one (the host keeps id, source and received-at)."""

    event: "Event"


@dataclass
class Split:
    """The event is replaced by these events (at most 100; none is the same as `Drop`)."""

    events: list["Event"]


@dataclass
class Reject:
    """The event is refused (verify stage only)."""

    rejection: Rejection


Verdict = Union[Pass, Drop, Modify, Replace, Split, Reject]


@dataclass
class Verification:
    """What a verify plugin decided: accept (optionally with a dedupe key) or reject."""

    rejection: Optional[Rejection] = None
    dedupe_key: Optional[str] = None

    @classmethod
    def accept(cls, dedupe_key: Optional[str] = None) -> "Verification":
        """The event is authentic; with a dedupe key (the provider's delivery id), a second
        event with the same key within the source's dedupe window is a duplicate."""
        return cls(dedupe_key=dedupe_key)

    @classmethod
    def reject(cls, rejection: Rejection) -> "Verification":
        return cls(rejection=rejection)

    def to_verdict(self) -> Verdict:
        """`Pass`; `Modify` setting the metadata key `dedupe-key`; or `Reject`."""
        if self.rejection is not None:
            return Reject(self.rejection)
        if self.dedupe_key is not None:
            return Modify(Patch(set_metadata=[("dedupe-key", self.dedupe_key)]))
        return Pass()


def from_change(before: "Event", after: "Event") -> Verdict:
    """The smallest verdict that turns `before` into `after`: what transforms answer.

    Nothing changed → `Pass`; the changes fit a patch → `Modify` carrying only what changed;
    otherwise → `Replace`. A patch cannot remove a metadata key, clear the subject or give a
    header several values. The id, source and receipt time are not compared, and a change in
    header order alone is not a change.
    """
    if (
        before.body == after.body
        and before.headers == after.headers
        and before.type == after.type
        and before.subject == after.subject
        and before.metadata == after.metadata
    ):
        return Pass()  # the common answer, without building an empty patch first
    patch = _patch_between(before, after)
    if patch is None:
        return Replace(after)
    return Pass() if patch.is_empty() else Modify(patch)


def _patch_between(before: "Event", after: "Event") -> Optional[Patch]:
    patch = Patch()
    if before.headers != after.headers:
        old = _group_headers(before.headers)
        new = _group_headers(after.headers)
        for name in old:
            if name not in new:
                patch.remove_headers.append(name)
        for name, values in new.items():
            if old.get(name) == values:
                continue
            if len(values) != 1:
                return None
            patch.set_headers.append((name, values[0]))
    if before.metadata != after.metadata:
        old_metadata = dict(before.metadata)
        new_metadata: dict[str, str] = {}
        for key, value in after.metadata:
            if key in new_metadata:
                return None  # a key given twice: only a replace says which value was meant
            new_metadata[key] = value
        if any(key not in new_metadata for key in old_metadata):
            return None
        for key, value in after.metadata:
            if old_metadata.get(key) != value:
                patch.set_metadata.append((key, value))
    if before.type != after.type:
        patch.type = after.type
    if before.subject != after.subject:
        if after.subject is None:
            return None
        patch.subject = after.subject
    if before.body != after.body:
        patch.body = bytes(after.body)
    return patch


def _group_headers(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Values grouped by lower-cased name, names in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for name, value in headers:
        groups.setdefault(name.lower(), []).append(value)
    return groups
