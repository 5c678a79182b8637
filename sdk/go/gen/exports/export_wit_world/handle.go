// Package export_wit_world holds the world's export, `handle`, which the generated
// `wit_exports` calls. Written by hand (the generator leaves this package to the user): it
// forwards to the handler that `plugin.Handle` registers, so a plugin never touches the
// bindings. It must not decide anything itself.
package export_wit_world

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"switchyard.dev/plugin/gen/imports/switchyard_plugin_types"
)

// Handler is the plugin's handler, set once by `plugin.Handle` (from an `init` function).
var Handler func(switchyard_plugin_types.Event) witTypes.Result[switchyard_plugin_types.Verdict, switchyard_plugin_types.Failure]

// Handle is the export; without a handler every call is a fatal failure saying so.
func Handle(ev switchyard_plugin_types.Event) witTypes.Result[switchyard_plugin_types.Verdict, switchyard_plugin_types.Failure] {
	if Handler == nil {
		return witTypes.Err[switchyard_plugin_types.Verdict](
			switchyard_plugin_types.MakeFailureFatal("the plugin registered no handler: call `plugin.Handle` from `init`"),
		)
	}
	return Handler(ev)
}
