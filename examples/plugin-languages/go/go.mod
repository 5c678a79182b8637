module push-to-chat

go 1.27.1

require (
	go.bytecodealliance.org/pkg v0.4.0
	switchyard.dev/plugin v0.1.0
)

replace switchyard.dev/plugin => ../../../sdk/go

replace go.bytecodealliance.org/pkg => ../../../sdk/c/tools/target/go-pkg
