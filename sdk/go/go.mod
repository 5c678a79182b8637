module switchyard.dev/plugin

go 1.27.1

require go.bytecodealliance.org/pkg v0.4.0

// The runtime support the generated bindings import: `switchyard-c go-runtime` (the C SDK's
// tool) writes it there from the `wit-bindgen-go` crate it is built with, and `plugin.mk` runs
// it before every build, so builds never reach the network.
replace go.bytecodealliance.org/pkg => ../c/tools/target/go-pkg
