// A transform: wraps the JSON body as {"type": <event type>, "data": <body>}.
package main

import (
	"encoding/json"

	"switchyard.dev/plugin"
)

func init() { plugin.Handle(handle) }

func handle(ev *plugin.Event) (plugin.Verdict, error) {
	var data json.RawMessage
	if err := ev.BodyJSON(&data); err != nil {
		return plugin.Verdict{}, err
	}
	envelope := struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}{ev.Type, data}
	return plugin.ModifyBodyJSON(ev, envelope)
}

func main() {}
