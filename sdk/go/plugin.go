// Package plugin writes Switchyard plugins in Go.
//
// A plugin registers its handler from `init` and has an empty `main`:
//
//	func init() { plugin.Handle(handle) }
//
//	func handle(ev *plugin.Event) (plugin.Verdict, error) { return plugin.Pass(), nil }
//
//	func main() {}
//
// This file owns the handler's shape (the event, verdicts and failures); host.go the host's
// log, config and clock; crypto.go verification with secrets the plugin never sees; json.go
// JSON in and out. The bindings under gen/ are generated from the WIT (see README.md) and
// are not part of the API. The semantics match the other SDKs: header names compare
// case-insensitively, the verifier rejections are 401 `missing_signature` / `bad_signature` /
// `stale_timestamp`, and an accept with a dedupe key is a `modify` setting the metadata key
// `dedupe-key`.
package plugin

import (
	"errors"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"switchyard.dev/plugin/gen/exports/export_wit_world"
	_ "switchyard.dev/plugin/gen/exports/wit_exports" // the `handle` export itself
	types "switchyard.dev/plugin/gen/imports/switchyard_plugin_types"
)

// Event is an event as the host holds it; the fields are the WIT record's (Id, Source, Type,
// Subject, Headers, Body, ReceivedAt, Metadata).
type Event struct {
	types.Event
}

// Verdict is what the plugin decided; build one with Pass, Drop, Reject, Accept, Modify, ….
type Verdict = types.Verdict

// Patch is a small edit of the event: only what changes crosses back.
type Patch = types.Patch

// Pair is a header or metadata entry.
type Pair = witTypes.Tuple2[string, string]

// Handle registers the plugin's handler. A returned error is a failure: a *Failure keeps its
// kind (Retry or Fatal), any other error is fatal with its message.
func Handle(handler func(ev *Event) (Verdict, error)) {
	export_wit_world.Handler = func(raw types.Event) witTypes.Result[types.Verdict, types.Failure] {
		verdict, err := handler(&Event{raw})
		if err == nil {
			return witTypes.Ok[types.Verdict, types.Failure](verdict)
		}
		var failure *Failure
		if errors.As(err, &failure) && failure.retry {
			return witTypes.Err[types.Verdict](types.MakeFailureRetry(failure.message))
		}
		return witTypes.Err[types.Verdict](types.MakeFailureFatal(err.Error()))
	}
}

// Header answers the first value of header `name`, compared case-insensitively.
func (ev *Event) Header(name string) (string, bool) {
	for _, header := range ev.Headers {
		if strings.EqualFold(header.F0, name) {
			return header.F1, true
		}
	}
	return "", false
}

// MetadataValue answers the value of metadata `key`.
func (ev *Event) MetadataValue(key string) (string, bool) {
	for _, entry := range ev.Metadata {
		if entry.F0 == key {
			return entry.F1, true
		}
	}
	return "", false
}

// === verdicts ===

// Pass lets the event go on unchanged.
func Pass() Verdict { return types.MakeVerdictPass() }

// Drop stops the event on this path (counted, not an error).
func Drop() Verdict { return types.MakeVerdictDrop() }

// Reject refuses the event (verify stage only) with a 4xx status, a snake_case code and a
// sentence for the sender.
func Reject(status uint16, code, message string) Verdict {
	return types.MakeVerdictReject(types.Rejection{Status: status, Code: code, Message: message})
}

// MissingSignature is the verifiers' 401 `missing_signature`.
func MissingSignature(message string) Verdict { return Reject(401, "missing_signature", message) }

// BadSignature is the verifiers' 401 `bad_signature`.
func BadSignature(message string) Verdict { return Reject(401, "bad_signature", message) }

// StaleTimestamp is the verifiers' 401 `stale_timestamp`.
func StaleTimestamp(message string) Verdict { return Reject(401, "stale_timestamp", message) }

// Accept is a verifier's accept: `pass` without a dedupe key (""), a `modify` setting the
// metadata key `dedupe-key` with one.
func Accept(dedupeKey string) Verdict {
	if dedupeKey == "" {
		return Pass()
	}
	return Modify(Patch{SetMetadata: []Pair{{F0: "dedupe-key", F1: dedupeKey}}})
}

// Modify lets the event go on with `patch` applied.
func Modify(patch Patch) Verdict { return types.MakeVerdictModify(patch) }

// ModifyBody replaces the body; `content-type` is set to `contentType` unless the event
// already has exactly that value, so the patch holds only what changes (as the other SDKs'
// transforms answer).
func ModifyBody(ev *Event, body []byte, contentType string) Verdict {
	patch := Patch{Body: witTypes.Some(body)}
	if current, ok := ev.Header("content-type"); !ok || current != contentType {
		patch.SetHeaders = []Pair{{F0: "content-type", F1: contentType}}
	}
	return Modify(patch)
}

// Replace lets the event go on replaced by `replacement` (the host keeps the id, source and
// received-at).
func Replace(replacement *Event) Verdict { return types.MakeVerdictReplace(replacement.Event) }

// Split replaces the event by `events` (at most 100), each delivered on its own.
func Split(events []*Event) Verdict {
	raw := make([]types.Event, 0, len(events))
	for _, event := range events {
		raw = append(raw, event.Event)
	}
	return types.MakeVerdictSplit(raw)
}

// === failures ===

// Failure is why the plugin could not decide: Fatal (the binding's `on_error` policy applies)
// or Retry (the sender is asked to retry).
type Failure struct {
	retry   bool
	message string
}

func (failure *Failure) Error() string { return failure.message }

// Fatal is a failure the plugin cannot handle: the binding's `on_error` policy applies.
func Fatal(message string) error { return &Failure{message: message} }

// Retry is a transient failure: the sender is asked to retry; nothing is stored.
func Retry(message string) error { return &Failure{retry: true, message: message} }
