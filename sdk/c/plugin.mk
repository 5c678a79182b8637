# The build of a Switchyard plugin written in C. A project's Makefile sets NAME (the plugin's
# name), SOURCES (its .c files) and SWITCHYARD_C_SDK (this directory), then includes this file:
#
#   `make` builds build/<NAME with underscores>.wasm and prints its absolute path last;
#   `make clean` removes build/.
#
# Steps: `switchyard-c bindings` writes the world's C bindings (plugin.h, plugin.c) into
# build/bindings; clang compiles them, the SDK's helpers and SOURCES for wasm32-wasi as a
# reactor (a library with exports, no `main`) against wasi-libc; `switchyard-c component`
# embeds the world and adapts the WASI preview 1 imports to preview 2 with Wasmtime 48's
# reactor adapter. The `switchyard-c` tool is built from $(SWITCHYARD_C_SDK)/tools with cargo
# the first time. Recipes are quiet and report on stderr: stdout carries the path alone.

CLANG ?= clang-19
CARGO ?= cargo
SWITCHYARD_C_TOOL ?= $(SWITCHYARD_C_SDK)/tools/target/debug/switchyard-c
SWITCHYARD_WIT ?= $(SWITCHYARD_C_SDK)/wit
BUILD ?= build
CFLAGS ?= -O2 -Wall -Wextra
# Debian's wasi-libc lives on clang's multiarch paths, so no --sysroot is needed there;
# elsewhere set WASI_SYSROOT.
WASI_SYSROOT ?=
WASM_FLAGS := --target=wasm32-wasi -mexec-model=reactor $(if $(WASI_SYSROOT),--sysroot=$(WASI_SYSROOT))

WASM := $(BUILD)/$(subst -,_,$(NAME)).wasm
BINDINGS := $(BUILD)/bindings
SDK_SOURCES := $(SWITCHYARD_C_SDK)/src/switchyard.c
SDK_HEADERS := $(SWITCHYARD_C_SDK)/include/switchyard.h

.DEFAULT_GOAL := all
.PHONY: all clean

all: $(WASM)
	@echo "$(abspath $(WASM))"

clean:
	@rm -rf $(BUILD)

$(SWITCHYARD_C_TOOL): $(SWITCHYARD_C_SDK)/tools/src/main.rs $(SWITCHYARD_C_SDK)/tools/build.rs \
		$(SWITCHYARD_C_SDK)/tools/Cargo.toml
	@echo "building switchyard-c (once)" >&2
	@$(CARGO) build --quiet --manifest-path $(SWITCHYARD_C_SDK)/tools/Cargo.toml >&2

$(BINDINGS)/plugin.c: $(SWITCHYARD_WIT)/switchyard.wit $(SWITCHYARD_C_TOOL)
	@echo "bindings $(BINDINGS)" >&2
	@$(SWITCHYARD_C_TOOL) bindings $(SWITCHYARD_WIT) $(BINDINGS)

$(BUILD)/core.wasm: $(SOURCES) $(SDK_SOURCES) $(SDK_HEADERS) $(BINDINGS)/plugin.c
	@echo "clang $(SOURCES)" >&2
	@$(CLANG) $(WASM_FLAGS) $(CFLAGS) -I$(BINDINGS) -I$(SWITCHYARD_C_SDK)/include \
		-o $@ $(SOURCES) $(SDK_SOURCES) $(BINDINGS)/plugin.c

$(WASM): $(BUILD)/core.wasm $(SWITCHYARD_C_TOOL)
	@echo "component $@" >&2
	@$(SWITCHYARD_C_TOOL) component $(SWITCHYARD_WIT) $< $@
