"""Unit tests of the SDK's pure parts under plain CPython: events, verdicts, each kind's glue
and durations. The host imports only exist inside a component; the end-to-end tests cover
them. Run: `python -m unittest discover -s tests` with `src` on PYTHONPATH."""

import unittest

from switchyard_plugin import (
    Drop,
    Event,
    Failure,
    Modify,
    Pass,
    Patch,
    Reject,
    Rejection,
    Replace,
    Verification,
    crypto,
    from_change,
    host,
    run,
)
from switchyard_plugin.host import duration_value, parse_duration


def base() -> Event:
    return Event(
        source="github",
        type="github.push",
        headers=[("content-type", "application/json"), ("x-a", "1")],
        metadata=[("k", "v")],
        body=b'{"a":1}',
    )


class EventTests(unittest.TestCase):
    def test_headers_are_case_insensitive_and_set_in_place(self):
        event = base()
        self.assertEqual(event.header("X-A"), "1")
        event.set_header("X-A", "2")
        event.set_header("x-b", "3")
        self.assertEqual(
            event.headers, [("content-type", "application/json"), ("x-a", "2"), ("x-b", "3")]
        )
        event.remove_header("CONTENT-TYPE")
        self.assertIsNone(event.header("content-type"))

    def test_bodies(self):
        self.assertEqual(base().body_json(), {"a": 1})
        with self.assertRaises(Failure) as raised:
            Event(source="s", type="t", body=b"\xff").body_json()
        self.assertEqual(raised.exception.kind, "fatal")
        event = base()
        event.set_body_json({"text": "zoë \x01"})
        self.assertEqual(event.body, '{"text":"zoë \\u0001"}'.encode())

    def test_a_copy_edited_in_every_way_leaves_the_original_as_it_was(self):
        original = base()
        original.headers.append(["x-list", "1"])  # a pair given as a list can change in place
        original.body = bytearray(b"abc")
        edited = original.copy()
        edited.headers[2][1] = "changed"
        edited.set_header("x-a", "2")
        edited.metadata.append(("n", "m"))
        edited.body[0] = ord("z")
        edited.type = "other"
        self.assertEqual(original.header("x-a"), "1")
        self.assertEqual(original.headers[2], ["x-list", "1"])
        self.assertEqual(original.metadata, [("k", "v")])
        self.assertEqual(original.body, bytearray(b"abc"))
        self.assertEqual(original.type, "github.push")
        self.assertEqual(base().copy(), base())


class VerdictTests(unittest.TestCase):
    def test_the_smallest_verdict(self):
        self.assertEqual(from_change(base(), base()), Pass())
        after = base()
        after.set_header("x-a", "2")
        after.set_metadata("n", "m")
        after.type = "other"
        self.assertEqual(
            from_change(base(), after),
            Modify(Patch(set_headers=[("x-a", "2")], set_metadata=[("n", "m")], type="other")),
        )
        reordered = base()
        reordered.headers.reverse()
        self.assertEqual(from_change(base(), reordered), Pass())
        removed = base()
        removed.metadata = []
        self.assertIsInstance(from_change(base(), removed), Replace)
        two_values = base().with_header("x-a", "again")
        self.assertIsInstance(from_change(base(), two_values), Replace)
        rewritten = base()
        rewritten.set_body_json({"a": 2})
        self.assertEqual(from_change(base(), rewritten), Modify(Patch(body=b'{"a":2}')))

    def test_each_kind(self):
        self.assertEqual(run("filter", lambda event: True, base()), Pass())
        self.assertEqual(run("filter", lambda event: False, base()), Drop())
        self.assertEqual(run("verify", lambda event: Verification.accept(), base()), Pass())
        self.assertEqual(
            run("verify", lambda event: Verification.accept("d-1"), base()),
            Modify(Patch(set_metadata=[("dedupe-key", "d-1")])),
        )
        rejection = Rejection.bad_signature("no")
        self.assertEqual(run("verify", lambda event: rejection, base()), Reject(rejection))
        self.assertEqual(rejection.status, 401)
        with self.assertRaises(Failure):
            run("filter", lambda event: "yes", base())

    def test_durations(self):
        self.assertEqual(parse_duration("5m"), 300_000)
        self.assertEqual(parse_duration(" 1500ms "), 1500)
        for text in ["", "5", "5M", "1.5s", "-5s", "5m30s"]:
            with self.assertRaises(ValueError):
                parse_duration(text)
        self.assertEqual(duration_value("tolerance", None, 7), 7)
        with self.assertRaises(Failure):
            duration_value("tolerance", "soon", 7)


class OutsideAComponentTests(unittest.TestCase):
    def test_calling_the_host_says_it_needs_a_component(self):
        for call in [lambda: host.config("key"), lambda: host.now_ms(), lambda: crypto.sha256(b"")]:
            with self.assertRaisesRegex(RuntimeError, "exists only inside a component"):
                call()


if __name__ == "__main__":
    unittest.main()
