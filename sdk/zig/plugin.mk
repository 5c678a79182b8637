# The build of a Switchyard plugin written in Zig. A project's Makefile sets NAME (the plugin's
# name), ROOT (its root source file, default src/plugin.zig) and SWITCHYARD_ZIG_SDK (this
# directory), then includes this file:
#
#   `make` builds build/<NAME with underscores>.wasm and prints its absolute path last;
#   `make clean` removes build/.
#
# Zig plugins stand on the C SDK (../c): its bindings, helpers and `switchyard-c` tool. Steps:
# `switchyard-c bindings` writes the world's C bindings into build/bindings; `zig translate-c`
# turns `switchyard.h` into build/c.zig (the `c` module); `zig build-exe` compiles ROOT with the
# `switchyard` module (switchyard.zig) and the C files for wasm32-wasi as a reactor with a 64 KiB
# stack (Zig's default of 16 MiB would be every instance's memory); `switchyard-c component`
# embeds the world and adapts WASI preview 1 to preview 2 with Wasmtime 48's reactor adapter.
# Zig comes from PyPI (`pip install ziglang==0.17.1`); the std library changes between
# releases, so use that version. Recipes are quiet and report on stderr: stdout carries the
# path alone.

ZIG ?= python3 -m ziglang
CARGO ?= cargo
ROOT ?= src/plugin.zig
SWITCHYARD_C_SDK ?= $(SWITCHYARD_ZIG_SDK)/../c
SWITCHYARD_C_TOOL ?= $(SWITCHYARD_C_SDK)/tools/target/debug/switchyard-c
SWITCHYARD_WIT ?= $(SWITCHYARD_ZIG_SDK)/wit
BUILD ?= build
OPTIMIZE ?= ReleaseSmall

WASM := $(BUILD)/$(subst -,_,$(NAME)).wasm
BINDINGS := $(BUILD)/bindings
ZIG_SOURCES := $(ROOT) $(wildcard $(dir $(ROOT))*.zig)
SDK_FILES := $(SWITCHYARD_ZIG_SDK)/switchyard.zig $(SWITCHYARD_C_SDK)/src/switchyard.c \
	$(SWITCHYARD_C_SDK)/include/switchyard.h
INCLUDES := -I$(BINDINGS) -I$(SWITCHYARD_C_SDK)/include

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

$(BUILD)/c.zig: $(SWITCHYARD_C_SDK)/include/switchyard.h $(BINDINGS)/plugin.c
	@echo "zig translate-c switchyard.h" >&2
	@$(ZIG) translate-c -target wasm32-wasi -lc $(INCLUDES) $< > $@.part
	@mv $@.part $@

$(BUILD)/core.wasm: $(ZIG_SOURCES) $(SDK_FILES) $(BUILD)/c.zig
	@echo "zig build-exe $(ROOT)" >&2
	@$(ZIG) build-exe -target wasm32-wasi -mexec-model=reactor -fno-entry -O $(OPTIMIZE) \
		-fstrip --stack 65536 -lc --name core $(INCLUDES) -cflags -O2 -- \
		$(SWITCHYARD_C_SDK)/src/switchyard.c $(BINDINGS)/plugin.c \
		--dep switchyard -Mroot=$(ROOT) --dep c -Mswitchyard=$(SWITCHYARD_ZIG_SDK)/switchyard.zig \
		-Mc=$(BUILD)/c.zig -femit-bin=$@

$(WASM): $(BUILD)/core.wasm $(SWITCHYARD_C_TOOL)
	@echo "component $@" >&2
	@$(SWITCHYARD_C_TOOL) component $(SWITCHYARD_WIT) $< $@
