module {{name}}

go 1.27.1

require (
	go.bytecodealliance.org/pkg v0.4.0
	switchyard.dev/plugin v0.1.0
)

// The SDK and its one dependency, by directory: the build never reaches the network.
replace switchyard.dev/plugin => {{sdk_go}}

replace go.bytecodealliance.org/pkg => {{go_pkg_go}}
