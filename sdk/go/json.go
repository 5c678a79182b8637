package plugin

// JSON in and out with encoding/json, written the way the other SDKs write it (serde_json,
// JSON.stringify, Python's json.dumps(ensure_ascii=False)): no HTML escaping, no trailing
// newline. One difference remains: encoding/json escapes U+2028 and U+2029, the others do not.

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// BodyJSON decodes the body into `value`; an error is a fatal failure saying the body is not
// JSON.
func (ev *Event) BodyJSON(value any) error {
	if err := json.Unmarshal(ev.Body, value); err != nil {
		return Fatal(fmt.Sprintf("body is not JSON: %v", err))
	}
	return nil
}

// MarshalJSON encodes `value` compactly without HTML escaping.
func MarshalJSON(value any) ([]byte, error) {
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return nil, Fatal(fmt.Sprintf("cannot encode JSON: %v", err))
	}
	return bytes.TrimSuffix(buffer.Bytes(), []byte("\n")), nil
}

// ModifyBodyJSON replaces the body by `value` as JSON, with `content-type: application/json`
// (in the patch only when it changes).
func ModifyBodyJSON(ev *Event, value any) (Verdict, error) {
	body, err := MarshalJSON(value)
	if err != nil {
		return Verdict{}, err
	}
	return ModifyBody(ev, body, "application/json"), nil
}
