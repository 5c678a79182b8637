"""Builds a Python plugin project into a component: `python -m switchyard_plugin.build [DIR]`.

Reads `DIR/pyproject.toml` (`[project] name`, and `[tool.switchyard] module`, default
`plugin`), writes a small entry module that exports the one decorated function of that module
as the world's `handle`, and runs componentize-py against the world `plugin` of the WIT this
package ships. The component goes to `DIR/build/<name>.wasm`, whose absolute path is the last
line printed on stdout (what `switchyard plugin build` reads). Needs `componentize-py` (0.25.1)
importable by this Python.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tomllib
from pathlib import Path

WORLD = "plugin"
ENTRY_MODULE = "switchyard_plugin_entry"
ENTRY_SOURCE = """\
# Written by switchyard_plugin.build: exports the decorated function as `handle`.
import {module}
from switchyard_plugin.kinds import exported_handler as _exported_handler
from wit_world import WitWorld as _World

_handle = _exported_handler()


class WitWorld(_World):
    def handle(self, ev):
        return _handle(ev)
"""


def wit_directory() -> Path:
    """The WIT package this SDK is built against (`switchyard:plugin`)."""
    return Path(__file__).resolve().parent / "wit"


def read_project(directory: Path) -> tuple[str, str]:
    """`(name, module)` from the project's pyproject.toml."""
    path = directory / "pyproject.toml"
    try:
        with path.open("rb") as file:
            project = tomllib.load(file)
    except OSError as error:
        raise SystemExit(f"error: cannot read `{path}`: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise SystemExit(f"error: `{path}` is not valid TOML: {error}") from None
    name = project.get("project", {}).get("name")
    if not isinstance(name, str) or not name:
        raise SystemExit(f"error: `{path}` has no `[project] name`")
    module = project.get("tool", {}).get("switchyard", {}).get("module", "plugin")
    if not isinstance(module, str) or not module.isidentifier():
        raise SystemExit(f"error: `{path}`: `[tool.switchyard] module` must be a module name")
    return name, module


def build(directory: Path) -> Path:
    """Builds the project in `directory` and answers the component's path."""
    from componentize_py import script as componentize_py

    directory = directory.resolve()
    name, module = read_project(directory)
    if not (directory / f"{module}.py").is_file() and not (directory / module).is_dir():
        raise SystemExit(f"error: no module `{module}` in `{directory}` (expected `{module}.py`)")
    output = directory / "build" / f"{name.replace('-', '_')}.wasm"
    output.parent.mkdir(parents=True, exist_ok=True)
    sdk_parent = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="switchyard-py-") as staging:
        Path(staging, f"{ENTRY_MODULE}.py").write_text(ENTRY_SOURCE.format(module=module))
        arguments = [
            "componentize-py",
            "--wit-path",
            str(wit_directory()),
            "--world",
            WORLD,
            "componentize",
            ENTRY_MODULE,
            "--python-path",
            staging,
            "--python-path",
            str(directory),
            "--python-path",
            str(sdk_parent),
            "--output",
            str(output),
        ]
        saved_argv, sys.argv = sys.argv, arguments
        # componentize-py prints progress on stdout; keep stdout for the path alone.
        saved_stdout = os.dup(1)
        os.dup2(2, 1)
        try:
            status = componentize_py()
        except SystemExit as exit:
            status = exit.code
        finally:
            sys.stdout.flush()
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)
            sys.argv = saved_argv
    if status not in (None, 0):
        raise SystemExit(f"error: componentize-py failed ({status})")
    return output


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m switchyard_plugin.build",
        description="Build a Switchyard plugin written in Python into a WebAssembly component.",
    )
    parser.add_argument("directory", nargs="?", default=".", help="the project (default: .)")
    arguments = parser.parse_args()
    print(build(Path(arguments.directory)))


if __name__ == "__main__":
    main()
