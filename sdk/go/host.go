package plugin

// What the host offers every plugin: its log, the binding's config and the clock. Nothing
// here reaches files, sockets or the environment (the sandbox has none).

import (
	"fmt"

	host "switchyard.dev/plugin/gen/imports/switchyard_plugin_host"
)

// Level is the level of a log line.
type Level = host.Level

// The log levels.
const (
	LevelTrace Level = host.Level_Trace
	LevelDebug Level = host.Level_Debug
	LevelInfo  Level = host.Level_Info
	LevelWarn  Level = host.Level_Warn
	LevelError Level = host.Level_Error
)

// Log writes a line to the host's log, tagged with the plugin id and the event id.
func Log(level Level, message string) { host.Log(level, message) }

// Logf formats a line (as fmt.Sprintf) and logs it.
func Logf(level Level, format string, arguments ...any) {
	host.Log(level, fmt.Sprintf(format, arguments...))
}

// Config answers the binding's config value of `key`.
func Config(key string) (string, bool) {
	value := host.Config(key)
	if value.IsNone() {
		return "", false
	}
	return value.Some(), true
}

// RequireConfig answers the config value of `key`, or a fatal failure naming the key.
func RequireConfig(key string) (string, error) {
	if value, ok := Config(key); ok {
		return value, nil
	}
	return "", Fatal(fmt.Sprintf("missing config key `%s`", key))
}

// NowMs is the host's clock in unix milliseconds (fixed by `switchyard plugin test` fixtures).
func NowMs() uint64 { return host.NowMs() }
