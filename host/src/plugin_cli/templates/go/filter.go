// A filter: lets through events whose JSON body has "action" equal to the `action` config
// value (default `opened`), drops the rest.
package main

import "switchyard.dev/plugin"

func init() { plugin.Handle(handle) }

func handle(ev *plugin.Event) (plugin.Verdict, error) {
	wanted, ok := plugin.Config("action")
	if !ok {
		wanted = "opened"
	}
	var body struct {
		Action *string `json:"action"`
	}
	if ev.BodyJSON(&body) != nil || body.Action == nil || *body.Action != wanted {
		return plugin.Drop(), nil
	}
	return plugin.Pass(), nil
}

func main() {}
