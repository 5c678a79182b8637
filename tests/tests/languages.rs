//! Plugins in every language, through the real binary: the SDKs' own unit tests and the
//! TypeScript declarations, the Go SDK's committed bindings against the WIT, `plugin new` →
//! `build` → `test` in Python, JavaScript, C, Go and Zig (Rust's is in `plugins.rs`), the same
//! from a binary outside the checkout (C, Go and Zig from the SDKs it embeds; Rust, Python and
//! JavaScript from SDK packages built by the test), the six
//! implementations of `examples/plugin-languages` agreeing byte for byte on its shared fixtures
//! through the real router (Python, JavaScript and Go on warm instances), the provider
//! verifiers against the providers' own signers, and `to-cloudevents`.
//!
//! Cost: Python, JavaScript and Go components take seconds to build and to compile, so every
//! CLI call shares one `.cwasm` cache (`target/plugin-languages/cache`) and Go's and Zig's
//! build caches live beside it, each project is built once, and the router that loads them gets
//! a longer start timeout than `TestHost`'s (its data dir is new, so it compiles them again).
//! The C parts run when `clang-19` is installed (see `sdk/c/README.md`) and say so when they
//! are skipped. Go and Zig come from the tools venv (`cargo xtask setup`); outside CI they are
//! skipped with a note when missing, in CI their absence fails the tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchyard_e2e::{
    CliOutput, TestHost, TestReceiver, plugin_wasm, post_webhook, run_cli, tools_python,
    workspace_root,
};

const WAIT: Duration = Duration::from_secs(60);
/// A router compiling Python and JavaScript components in a debug build on a busy machine.
const SLOW_START: Duration = Duration::from_secs(300);

fn cache_dir() -> PathBuf {
    workspace_root().join("target/plugin-languages/cache")
}

/// `PATH` with the test tools' venv first, so `python3` is the one with componentize-py.
fn tool_path() -> String {
    let venv = workspace_root().join(".tools/venv/bin");
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", venv.display())
}

fn cli(directory: &Path, arguments: &[&str], extra: &[(&str, &str)]) -> CliOutput {
    let path = tool_path();
    let cache = cache_dir();
    let mut environment: Vec<(String, String)> =
        ["HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"]
            .into_iter()
            .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
            .collect();
    environment.push(("PATH".into(), path));
    environment.push(("SWITCHYARD_PLUGIN_CACHE".into(), cache.display().to_string()));
    for (name, directory) in [("GOCACHE", "go-cache"), ("ZIG_GLOBAL_CACHE_DIR", "zig-cache")] {
        let directory = workspace_root().join("target/plugin-languages").join(directory);
        environment.push((name.into(), directory.display().to_string()));
    }
    environment.extend(extra.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    let pairs: Vec<(&str, &str)> =
        environment.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    run_cli(directory, arguments, &pairs)
}

/// Whether the optional C toolchain is installed; prints why the C parts are skipped if not.
fn c_toolchain() -> bool {
    let found = Command::new("clang-19")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("skipping the C plugin checks: `clang-19` is not installed (sdk/c/README.md)");
    }
    found
}

/// Whether `command` (run with the tools venv first on `PATH`) works: Go and Zig come from
/// PyPI through `cargo xtask setup`. Missing outside CI, the caller's checks are skipped with a
/// note; missing in CI is a failure, since setup installs them there.
fn venv_toolchain(language: &str, program: &str, arguments: &[&str]) -> bool {
    let found = Command::new(program)
        .args(arguments)
        .env("PATH", tool_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{language} is missing in CI: `cargo xtask setup` installs it from tests/requirements.txt"
        );
        eprintln!(
            "skipping the {language} plugin checks: `{program} {}` fails; `cargo xtask setup` \
             installs it",
            arguments.join(" ")
        );
    }
    found
}

fn go_toolchain() -> bool {
    venv_toolchain("Go", "go", &["version"])
}

fn zig_toolchain() -> bool {
    venv_toolchain("Zig", "python3", &["-m", "ziglang", "version"])
}

/// `plugin build` in `project`; answers the component's path (the last stdout line).
fn build(project: &Path, extra: &[(&str, &str)]) -> PathBuf {
    build_from(project, None, extra)
}

/// `plugin build <relative>` run from `directory` (a project named by a relative path, whose
/// manifest names its SDK by a relative path too), or `plugin build` inside it.
fn build_from(directory: &Path, relative: Option<&str>, extra: &[(&str, &str)]) -> PathBuf {
    let project = relative.map_or_else(|| directory.to_path_buf(), |path| directory.join(path));
    let arguments: Vec<&str> = ["plugin", "build"].into_iter().chain(relative).collect();
    let built = cli(directory, &arguments, extra);
    assert_eq!(built.code, Some(0), "{}: {}", project.display(), built.stderr);
    let wasm = PathBuf::from(built.stdout.lines().last().expect("a path"));
    assert!(wasm.is_file(), "{}", wasm.display());
    wasm
}

/// `plugin test` of `wasm` against `fixtures`; asserts every case passes.
fn golden(wasm: &Path, fixtures: &Path) -> usize {
    let tested = cli(
        &workspace_root(),
        &["plugin", "test", wasm.to_str().unwrap(), fixtures.to_str().unwrap()],
        &[],
    );
    assert_eq!(tested.code, Some(0), "{}:\n{}\n{}", wasm.display(), tested.stdout, tested.stderr);
    let summary = tested.stdout.lines().last().unwrap_or_default();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    summary.split(' ').next().unwrap().parse().unwrap()
}

fn command_succeeds(command: &mut Command) {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_sdks_pass_their_unit_tests_and_the_typescript_declarations_match_the_wit() {
    let root = workspace_root();
    // The SDKs ship the one WIT (links to sdk/wit; JavaScript's is a copy, as `npm pack` leaves
    // links out), so they cannot build against another.
    let wit = std::fs::read(root.join("sdk/wit/switchyard.wit")).unwrap();
    for copy in [
        "sdk/rust/wit",
        "sdk/python/src/switchyard_plugin/wit",
        "sdk/js/wit",
        "sdk/c/wit",
        "sdk/go/wit",
        "sdk/zig/wit",
    ] {
        assert_eq!(std::fs::read(root.join(copy).join("switchyard.wit")).unwrap(), wit, "{copy}");
    }
    // Includes regenerating types/world.d.ts from the WIT and comparing.
    command_succeeds(
        Command::new("node").args(["--test", "test/"]).current_dir(root.join("sdk/js")),
    );
    command_succeeds(
        Command::new(tools_python())
            .args(["-m", "unittest", "discover", "-s", "tests"])
            .env("PYTHONPATH", root.join("sdk/python/src"))
            .current_dir(root.join("sdk/python")),
    );
    // The TypeScript example type-checks against the SDK's declarations.
    command_succeeds(
        Command::new("node")
            .arg(root.join("sdk/js/node_modules/typescript/bin/tsc"))
            .args(["-p", "."])
            .current_dir(root.join("examples/plugin-languages/js")),
    );
}

/// The Go SDK commits the bindings `switchyard-c go-bindings` generates from the WIT; they
/// must be what the generator writes today (a WIT change without regenerating fails here).
#[test]
fn the_go_sdk_bindings_are_generated_from_the_wit() {
    if !go_toolchain() {
        return;
    }
    let root = workspace_root();
    let tools = root.join("sdk/c/tools");
    command_succeeds(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--manifest-path"])
            .arg(tools.join("Cargo.toml")),
    );
    let output = Command::new("go").args(["env", "GOROOT"]).env("PATH", tool_path()).output();
    let goroot = String::from_utf8(output.unwrap().stdout).unwrap();
    // gofmt formats the generated files; it sits in GOROOT/bin, not beside `go`.
    let path = format!("{}/bin:{}", goroot.trim(), tool_path());
    let generated = tempfile::tempdir().unwrap();
    command_succeeds(
        Command::new(tools.join("target/debug/switchyard-c"))
            .arg("go-bindings")
            .arg(root.join("sdk/wit"))
            .arg(generated.path())
            .arg("switchyard.dev/plugin/gen")
            .env("PATH", path),
    );
    let committed = root.join("sdk/go/gen");
    let mut compared = 0;
    for entry in walk(generated.path()) {
        let relative = entry.strip_prefix(generated.path()).unwrap();
        let expected = std::fs::read(&entry).unwrap();
        let actual = std::fs::read(committed.join(relative))
            .unwrap_or_else(|error| panic!("sdk/go/gen/{}: {error}", relative.display()));
        assert!(actual == expected, "sdk/go/gen/{} is stale; regenerate it", relative.display());
        compared += 1;
    }
    assert!(compared >= 5, "the generator wrote {compared} files");
    // The module the bindings import comes from the `wit-bindgen-go` crate, written where the
    // SDK's go.mod replaces it by, as `plugin.mk` does before every build.
    let runtime = tools.join("target/go-pkg");
    command_succeeds(
        Command::new(tools.join("target/debug/switchyard-c")).arg("go-runtime").arg(&runtime),
    );
    let module = std::fs::read_to_string(runtime.join("go.mod")).unwrap();
    assert!(module.starts_with("module go.bytecodealliance.org/pkg\n"), "{module}");
    assert!(runtime.join("LICENSE").is_file(), "the module keeps its licence");
    assert!(runtime.join("wit/runtime/runtime.go").is_file(), "the runtime package is written");
    // The hand-written parts pass `go vet` (the generated code trips its `unsafeptr` check,
    // as canonical-ABI glue must).
    command_succeeds(
        Command::new("go")
            .args(["vet", ".", "./gen/exports/export_wit_world"])
            .current_dir(root.join("sdk/go"))
            .env("PATH", tool_path())
            .envs([("GOOS", "wasip1"), ("GOARCH", "wasm"), ("GOTOOLCHAIN", "local")])
            .envs([("GOPROXY", "off"), ("GOFLAGS", "-mod=mod")])
            .env("GOCACHE", root.join("target/plugin-languages/go-cache")),
    );
}

/// Every file under `directory`, recursively.
fn walk(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn plugin_new_build_and_test_work_in_python_javascript_c_go_and_zig() {
    let directory = tempfile::tempdir().unwrap();
    // Python and JavaScript builds take tens of seconds: one kind each (the verifier, which
    // reaches the host's config and crypto); the examples cover their transforms.
    let mut projects = vec![("python", "verify"), ("js", "verify")];
    if c_toolchain() {
        projects.extend([("c", "filter"), ("c", "transform"), ("c", "verify")]);
    }
    if go_toolchain() {
        projects.extend([("go", "filter"), ("go", "transform"), ("go", "verify")]);
    }
    if zig_toolchain() {
        projects.extend([("zig", "filter"), ("zig", "transform"), ("zig", "verify")]);
    }
    for (language, kind) in projects {
        let name = format!("{language}-{kind}");
        let created = cli(
            directory.path(),
            &["plugin", "new", "--lang", language, "--kind", kind, &name],
            &[],
        );
        assert_eq!(created.code, Some(0), "{name}: {}", created.stderr);
        let project = directory.path().join(&name);
        let wasm = build(&project, &[]);
        assert!(wasm.starts_with(&project), "{}", wasm.display());
        assert!(golden(&wasm, &project.join("fixtures")) >= 2, "{name} has fixtures");
    }
}

/// A binary copied out of the checkout scaffolds C, Go and Zig plugins from the SDKs it
/// embeds (installed under `SWITCHYARD_SDK_HOME`), and they build and pass their fixtures.
#[test]
fn a_binary_outside_the_checkout_scaffolds_c_go_and_zig_plugins_from_its_embedded_sdks() {
    let mut languages = Vec::new();
    if c_toolchain() {
        languages.push("c");
    }
    if go_toolchain() {
        languages.push("go");
    }
    if zig_toolchain() {
        languages.push("zig");
    }
    let directory = tempfile::tempdir().unwrap();
    let binary = directory.path().join("bin/switchyard");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::copy(switchyard_e2e::switchyard_binary(), &binary).unwrap();
    // Kept between runs, so the SDK's `switchyard-c` tool is built once per target directory.
    let sdk_home = workspace_root().join("target/plugin-languages/sdk-home");
    let sdk_home = sdk_home.to_str().unwrap();
    let run = |directory: &Path, arguments: &[&str]| {
        let output = Command::new(&binary)
            .args(arguments)
            .current_dir(directory)
            .env("PATH", tool_path())
            .env("SWITCHYARD_SDK_HOME", sdk_home)
            .env("SWITCHYARD_PLUGIN_CACHE", cache_dir())
            .env("GOCACHE", workspace_root().join("target/plugin-languages/go-cache"))
            .env("ZIG_GLOBAL_CACHE_DIR", workspace_root().join("target/plugin-languages/zig-cache"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{arguments:?}:\n{stdout}\n{stderr}");
        stdout
    };
    for language in languages {
        let name = format!("{language}-verify");
        run(directory.path(), &["plugin", "new", "--lang", language, "--kind", "verify", &name]);
        let project = directory.path().join(&name);
        let build_file = if language == "go" { "go.mod" } else { "Makefile" };
        let manifest = std::fs::read_to_string(project.join(build_file)).unwrap();
        assert!(
            manifest.contains(&format!("{sdk_home}/")),
            "{name} names the installed SDK:\n{manifest}"
        );
        let built = run(&project, &["plugin", "build"]);
        let wasm = built.lines().last().expect("a component path");
        let tested = run(
            directory.path(),
            &["plugin", "test", wasm, project.join("fixtures").to_str().unwrap()],
        );
        assert!(tested.trim_end().ends_with("3 passed, 0 failed"), "{name}: {tested}");
    }
}

/// Runs `command`, asserts it succeeds, and answers its stdout.
fn stdout_of(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{command:?}:\n{stdout}\n{stderr}");
    stdout
}

/// The one file in `directory` whose name ends with `suffix`.
fn only_file(directory: &Path, suffix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = walk(directory)
        .into_iter()
        .filter(|path| path.to_str().is_some_and(|path| path.ends_with(suffix)))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// A binary copied out of the checkout scaffolds Rust, Python and JavaScript plugins that name
/// their SDKs as packages at the WIT package's version, and with the SDKs installed from
/// packages built here (once per run) they build and pass their fixtures. Rust: the `.crate`
/// files of `cargo package`, unpacked and put in place of the crates.io versions with
/// `[patch.crates-io]` in the project's `.cargo/config.toml` (cargo's offline way to use a
/// package it has not downloaded); Python: the wheel of `pip wheel`, installed with `--no-index`
/// into the project's `.venv` (which sees the tools venv's componentize-py through a `.pth`
/// file); JavaScript: the tarball of `npm pack`, installed with `npm install`.
#[test]
fn a_binary_outside_the_checkout_scaffolds_rust_python_and_javascript_plugins_from_packages() {
    let root = workspace_root();
    let sdk = root.join("sdk");
    let directory = tempfile::tempdir().unwrap();
    let binary = directory.path().join("bin/switchyard");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::copy(switchyard_e2e::switchyard_binary(), &binary).unwrap();
    let packages = directory.path().join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    let wit = std::fs::read_to_string(sdk.join("wit/switchyard.wit")).unwrap();
    let version = wit
        .lines()
        .find_map(|line| line.strip_prefix("package switchyard:plugin@")?.strip_suffix(';'))
        .expect("the WIT package's version")
        .to_owned();

    // The packages, built once.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let package_target = root.join("target/plugin-languages/sdk-package");
    stdout_of(
        Command::new(&cargo)
            .current_dir(sdk.join("rust"))
            .args(["package", "--workspace", "--no-verify", "--allow-dirty", "--target-dir"])
            .arg(&package_target),
    );
    let crates = packages.join("rust");
    std::fs::create_dir_all(&crates).unwrap();
    for name in ["switchyard-sdk", "switchyard-sdk-macros"] {
        let file = package_target.join(format!("package/{name}-{version}.crate"));
        stdout_of(Command::new("tar").arg("-xzf").arg(&file).arg("-C").arg(&crates));
    }
    stdout_of(
        Command::new(tools_python())
            .args(["-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir"])
            .arg(packages.join("python"))
            .arg(sdk.join("python")),
    );
    let wheel = only_file(&packages.join("python"), ".whl");
    assert!(wheel.to_str().unwrap().ends_with(&format!("-{version}-py3-none-any.whl")));
    std::fs::create_dir_all(packages.join("js")).unwrap();
    stdout_of(
        Command::new("npm")
            .current_dir(sdk.join("js"))
            .args(["pack", "--silent", "--pack-destination"])
            .arg(packages.join("js")),
    );
    let tarball = only_file(&packages.join("js"), ".tgz");
    assert!(tarball.to_str().unwrap().ends_with(&format!("switchyard-plugin-{version}.tgz")));

    let run = |directory: &Path, arguments: &[&str]| {
        stdout_of(
            Command::new(&binary)
                .args(arguments)
                .current_dir(directory)
                .env("PATH", tool_path())
                .env("SWITCHYARD_PLUGIN_CACHE", cache_dir())
                // The Rust template's target directory in `plugins.rs`: its dependencies are
                // compiled there already.
                .env("CARGO_TARGET_DIR", root.join("target/plugin-new")),
        )
    };
    for language in ["rust", "python", "js"] {
        let name = format!("{language}-verify");
        run(directory.path(), &["plugin", "new", "--lang", language, "--kind", "verify", &name]);
        let project = directory.path().join(&name);
        match language {
            "rust" => {
                let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
                assert!(
                    manifest.contains(&format!("switchyard-sdk = \"{version}\"\n")),
                    "{manifest}"
                );
                let patch = |name: &str| {
                    let path = crates.join(format!("{name}-{version}"));
                    format!("{name} = {{ path = {:?} }}\n", path.to_str().unwrap())
                };
                let config = format!(
                    "[patch.crates-io]\n{}{}",
                    patch("switchyard-sdk"),
                    patch("switchyard-sdk-macros")
                );
                std::fs::create_dir_all(project.join(".cargo")).unwrap();
                std::fs::write(project.join(".cargo/config.toml"), config).unwrap();
            }
            "python" => {
                let manifest = std::fs::read_to_string(project.join("pyproject.toml")).unwrap();
                let dependency = format!("dependencies = [\"switchyard-plugin=={version}\"]\n");
                assert!(manifest.contains(&dependency), "{manifest}");
                assert!(!manifest.contains("sdk ="), "{manifest}");
                stdout_of(
                    Command::new(tools_python())
                        .current_dir(&project)
                        .args(["-m", "venv", ".venv"]),
                );
                let venv_python = project.join(".venv/bin/python");
                let site = |python: &Path| {
                    let script = "import sysconfig; print(sysconfig.get_paths()['purelib'])";
                    PathBuf::from(stdout_of(Command::new(python).args(["-c", script])).trim())
                };
                let tools_site = site(&tools_python());
                std::fs::write(
                    site(&venv_python).join("switchyard-tools.pth"),
                    format!("{}\n", tools_site.display()),
                )
                .unwrap();
                stdout_of(
                    Command::new(&venv_python)
                        .args(["-m", "pip", "install", "--quiet", "--no-index"])
                        .arg(&wheel),
                );
            }
            _ => {
                let manifest = std::fs::read_to_string(project.join("package.json")).unwrap();
                let package: Value = serde_json::from_str(&manifest).unwrap();
                assert_eq!(package["devDependencies"]["@switchyard/plugin"], json!(version));
                assert_eq!(package["switchyard"].get("sdk"), None, "{manifest}");
                stdout_of(
                    Command::new("npm")
                        .current_dir(&project)
                        .args(["install", "--prefer-offline", "--no-audit", "--no-fund"])
                        .arg(&tarball),
                );
            }
        }
        let built = run(&project, &["plugin", "build"]);
        let wasm = built.lines().last().expect("a component path");
        let tested = run(
            directory.path(),
            &["plugin", "test", wasm, project.join("fixtures").to_str().unwrap()],
        );
        assert!(tested.trim_end().ends_with("3 passed, 0 failed"), "{name}: {tested}");
    }
}

/// A fixture event as an HTTP request: its headers and body.
struct Request {
    name: String,
    headers: Vec<(String, String)>,
    body: String,
    /// The body the expected verdict's patch sets.
    expected_body: String,
}

/// The shared fixtures whose answer is a new body (the failures are `plugin test`'s business).
fn transformed_fixtures(fixtures: &Path) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_str().unwrap().ends_with(".event.json"))
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_str().unwrap().trim_end_matches(".event.json");
        let verdict: Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures.join(format!("{name}.verdict.json"))).unwrap(),
        )
        .unwrap();
        let Some(expected_body) = verdict["patch"]["body"].as_str() else { continue };
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let headers = event["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
            .collect();
        requests.push(Request {
            name: name.to_owned(),
            headers,
            body: event["body"].as_str().unwrap().to_owned(),
            expected_body: expected_body.to_owned(),
        });
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_examples_agree_byte_for_byte_through_the_router() {
    let example = workspace_root().join("examples/plugin-languages");
    let fixtures = example.join("fixtures");
    // Rust shares the target directory of `plugins.rs`'s template builds: the SDK compiles once.
    let rust_target = workspace_root().join("target/plugin-new");
    let mut languages = vec![
        (
            "rust",
            build(&example.join("rust"), &[("CARGO_TARGET_DIR", rust_target.to_str().unwrap())]),
        ),
        // Named from their parent, as `cargo xtask bench` names its transforms.
        ("python", build_from(&example, Some("python"), &[])),
        ("js", build_from(&example, Some("js"), &[])),
    ];
    if c_toolchain() {
        languages.push(("c", build(&example.join("c"), &[])));
    }
    if go_toolchain() {
        languages.push(("go", build(&example.join("go"), &[])));
    }
    if zig_toolchain() {
        languages.push(("zig", build(&example.join("zig"), &[])));
    }
    let cases = std::fs::read_dir(&fixtures)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().to_str().unwrap().ends_with(".event.json"))
        .count();
    for (language, wasm) in &languages {
        assert_eq!(golden(wasm, &fixtures), cases, "{language}");
    }

    // One router, one endpoint per language, each with its language's plugin as the endpoint
    // transform; Python, JavaScript and Go keep warm instances.
    let mut receiver = TestReceiver::start().await;
    let mut config = String::new();
    for (language, wasm) in &languages {
        let warm = matches!(*language, "python" | "js" | "go");
        config.push_str(&format!(
            "[plugins.chat-{language}]\npath = \"{}\"\ntimeout = \"2s\"\n{}\n",
            wasm.display(),
            if warm { "instances = \"warm\"\n" } else { "" }
        ));
        config.push_str(&format!(
            "[endpoints.{language}]\nurl = \"{}\"\ntransform = \"chat-{language}\"\n\n",
            receiver.url(&format!("/{language}"))
        ));
    }
    let endpoints: Vec<String> =
        languages.iter().map(|(language, _)| format!("\"{language}\"")).collect();
    config.push_str(&format!(
        "[sources.github]\nevent_type = {{ header = \"x-github-event\", prefix = \"github.\" }}\n\n\
         [routes.pushes]\nfrom = [\"github\"]\nto = [{}]\n",
        endpoints.join(", ")
    ));
    let config = format!("[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n{config}");
    let router = TestHost::start_within("", &config, SLOW_START).await.unwrap();
    let client = reqwest::Client::new();
    let requests = transformed_fixtures(&fixtures);
    assert!(requests.len() >= 4, "the shared fixtures have transformed cases");
    // Twice over, so warm instances serve calls after their first.
    for round in 0..2 {
        for request in &requests {
            let mut post = client.post(router.url("/webhooks/github")).body(request.body.clone());
            for (name, value) in &request.headers {
                // A delivery id would make the second round a duplicate.
                if name != "x-github-delivery" {
                    post = post.header(name.as_str(), value.as_str());
                }
            }
            let response = post.send().await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                202,
                "{}: {}",
                request.name,
                router.logs.snapshot().join("\n")
            );
            let mut bodies = BTreeMap::new();
            for _ in 0..languages.len() {
                let delivered = receiver.next(WAIT).await.unwrap_or_else(|| {
                    panic!("{} (round {round}): a delivery is missing", request.name)
                });
                assert_eq!(delivered.header("content-type"), Some("application/json"));
                bodies.insert(delivered.path.clone(), delivered.body.to_vec());
            }
            assert_eq!(
                bodies.len(),
                languages.len(),
                "{}: one delivery per language",
                request.name
            );
            for (path, body) in &bodies {
                assert_eq!(
                    String::from_utf8_lossy(body),
                    request.expected_body,
                    "{} (round {round}): {path} differs",
                    request.name
                );
            }
        }
    }
    drop(router);
}

// === the provider verifiers ===

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Runs a Python script over JSON lines on stdin; answers its stdout lines.
fn python_lines(script: &str, inputs: &[Value]) -> Vec<String> {
    let mut child = Command::new(tools_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for input in inputs {
        writeln!(stdin, "{input}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python: {output:?}");
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// `stripe-signature` headers made by the `stripe` package's own signer, checked by its own
/// verifier (with a tolerance wide enough for the stale and future cases).
fn stripe_headers(secret: &str, payload: &str, timestamps: &[u64]) -> Vec<String> {
    let script = r#"
import json, sys
from stripe import WebhookSignature
for line in sys.stdin:
    request = json.loads(line)
    t, payload, secret = request["t"], request["payload"], request["secret"]
    header = f"t={t},v1={WebhookSignature._compute_signature(f'{t}.{payload}', secret)}"
    WebhookSignature.verify_header(payload, header, secret, tolerance=10**9)
    print(header)
"#;
    let inputs: Vec<Value> =
        timestamps.iter().map(|t| json!({"t": t, "payload": payload, "secret": secret})).collect();
    python_lines(script, &inputs)
}

/// `x-slack-signature` values made by `slack_sdk`'s `SignatureVerifier`.
fn slack_signatures(secret: &str, body: &str, timestamps: &[u64]) -> Vec<String> {
    let script = r#"
import json, sys
from slack_sdk.signature import SignatureVerifier
for line in sys.stdin:
    request = json.loads(line)
    verifier = SignatureVerifier(request["secret"])
    print(verifier.generate_signature(timestamp=str(request["t"]), body=request["body"]))
"#;
    let inputs: Vec<Value> =
        timestamps.iter().map(|t| json!({"t": t, "body": body, "secret": secret})).collect();
    python_lines(script, &inputs)
}

/// `x-hub-signature-256` made by npm's `@octokit/webhooks-methods` (installed in sdk/js).
fn github_signature(secret: &str, payload: &str) -> String {
    let script = format!(
        "import {{ sign }} from \"@octokit/webhooks-methods\";\nconsole.log(await sign({}, {}));",
        json!(secret),
        json!(payload)
    );
    let output = Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .current_dir(workspace_root().join("sdk/js"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// `x-shopify-hmac-sha256` per Shopify's documentation (base64 HMAC-SHA256 of the raw body):
/// no Shopify signer is installable from the registries the tests use.
fn shopify_signature(secret: &str, body: &str) -> String {
    let script = r#"
import base64, hashlib, hmac, json, sys
request = json.loads(sys.stdin.readline())
mac = hmac.new(request["secret"].encode(), request["body"].encode(), hashlib.sha256).digest()
print(base64.b64encode(mac).decode())
"#;
    python_lines(script, &[json!({"secret": secret, "body": body})]).remove(0)
}

async fn post(
    client: &reqwest::Client,
    host: &TestHost,
    source: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut request = client.post(host.url(&format!("/webhooks/{source}"))).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn verifier(id: &str, secret: &str) -> String {
    format!(
        "[plugins.{id}]\npath = \"{}\"\nsecrets = [\"{secret}\"]\n\
         config = {{ secret = \"{secret}\" }}\n\n\
         [sources.{secret}]\nverify = [\"{id}\"]\n\n",
        plugin_wasm(id).display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifiers_accept_the_providers_signatures_and_refuse_forgeries() {
    const STRIPE_SECRET: &str = "whsec_e2e0b5a7c3d94f1e8a6b2c4d";
    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SHOPIFY_SECRET: &str = "hush-e2e-shopify";
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    let config = format!(
        "[secrets]\nstripe = {{ value = \"{STRIPE_SECRET}\" }}\n\
         slack = {{ value = \"{SLACK_SECRET}\" }}\n\
         shopify = {{ value = \"{SHOPIFY_SECRET}\" }}\n\
         github = {{ value = \"{GITHUB_SECRET}\" }}\n\n{}{}{}{}",
        verifier("verify-stripe", "stripe"),
        verifier("verify-slack", "slack"),
        verifier("verify-shopify", "shopify"),
        verifier("verify-github", "github"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let refused = |answer: (u16, Value), code: &str, case: &str| {
        assert_eq!(answer.0, 401, "{case}: {}", answer.1);
        assert_eq!(answer.1["code"], code, "{case}: {}", answer.1);
    };
    let now = unix_now();

    // Stripe: fresh, stale (10 minutes old), future (10 minutes ahead).
    let payload =
        r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"charge.succeeded"}"#;
    let headers = stripe_headers(STRIPE_SECRET, payload, &[now, now - 600, now + 600]);
    let (fresh, stale, future) = (&headers[0], &headers[1], &headers[2]);
    let accepted = post(&client, &host, "stripe", &[("stripe-signature", fresh)], payload).await;
    assert_eq!(accepted.0, 202, "stripe: {}", accepted.1);
    let tampered = payload.replace("succeeded", "refunded");
    refused(
        post(&client, &host, "stripe", &[("stripe-signature", fresh)], &tampered).await,
        "bad_signature",
        "stripe tampered",
    );
    refused(
        post(&client, &host, "stripe", &[("stripe-signature", stale)], payload).await,
        "stale_timestamp",
        "stripe stale",
    );
    refused(
        post(&client, &host, "stripe", &[("stripe-signature", future)], payload).await,
        "stale_timestamp",
        "stripe future",
    );
    refused(
        post(&client, &host, "stripe", &[], payload).await,
        "missing_signature",
        "stripe unsigned",
    );

    // Slack.
    let body = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&command=%2Fweather&text=94070";
    let signatures = slack_signatures(SLACK_SECRET, body, &[now, now - 600, now + 600]);
    let (fresh, stale, future) =
        (now.to_string(), (now - 600).to_string(), (now + 600).to_string());
    let tampered = body.replace("94070", "10001");
    for (case, timestamp, signature, sent, expected) in [
        ("slack fresh", &fresh, &signatures[0], body, None),
        ("slack tampered", &fresh, &signatures[0], tampered.as_str(), Some("bad_signature")),
        ("slack stale", &stale, &signatures[1], body, Some("stale_timestamp")),
        ("slack future", &future, &signatures[2], body, Some("stale_timestamp")),
    ] {
        let headers = [
            ("x-slack-request-timestamp", timestamp.as_str()),
            ("x-slack-signature", signature.as_str()),
        ];
        let answer = post(&client, &host, "slack", &headers, sent).await;
        match expected {
            None => assert_eq!(answer.0, 202, "{case}: {}", answer.1),
            Some(code) => refused(answer, code, case),
        }
    }
    let unsigned = [("x-slack-request-timestamp", fresh.as_str())];
    refused(
        post(&client, &host, "slack", &unsigned, body).await,
        "missing_signature",
        "slack unsigned",
    );

    // Shopify: no timestamp in the scheme, but the webhook id is the dedupe key.
    let order = r#"{"id":820982911946154508,"total_price":"199.65"}"#;
    let signature = shopify_signature(SHOPIFY_SECRET, order);
    let signed =
        [("x-shopify-hmac-sha256", signature.as_str()), ("x-shopify-webhook-id", "b54557e4-e2e")];
    let first = post_webhook(&client, &host, "shopify", &signed, order).await.unwrap();
    let again = post_webhook(&client, &host, "shopify", &signed, order).await.unwrap();
    assert_eq!(first, again, "a redelivery with the same webhook id is the same event");
    refused(
        post(&client, &host, "shopify", &signed, &order.replace("199.65", "0.01")).await,
        "bad_signature",
        "shopify tampered",
    );
    refused(
        post(&client, &host, "shopify", &[("x-shopify-webhook-id", "x")], order).await,
        "missing_signature",
        "shopify unsigned",
    );

    // GitHub, signed by Octokit.
    let push = r#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#;
    let signature = github_signature(GITHUB_SECRET, push);
    assert!(signature.starts_with("sha256="), "{signature}");
    let accepted =
        post(&client, &host, "github", &[("x-hub-signature-256", &signature)], push).await;
    assert_eq!(accepted.0, 202, "github: {}", accepted.1);
    refused(
        post(
            &client,
            &host,
            "github",
            &[("x-hub-signature-256", &signature)],
            &push.replace("main", "evil"),
        )
        .await,
        "bad_signature",
        "github tampered",
    );
    refused(
        post(&client, &host, "github", &[], push).await,
        "missing_signature",
        "github unsigned",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_cloudevents_delivers_structured_cloudevents() {
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [plugins.to-cloudevents]\npath = \"{}\"\n\
         config = {{ source = \"https://hooks.example.com/github\" }}\n\n\
         [sources.github]\nevent_type = {{ header = \"x-github-event\", prefix = \"github.\" }}\n\n\
         [endpoints.events]\nurl = \"{}\"\ntransform = \"to-cloudevents\"\n\n\
         [routes.all]\nfrom = [\"github\"]\nto = [\"events\"]\n",
        plugin_wasm("to-cloudevents").display(),
        receiver.url("/events"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let body = r#"{"ref":"refs/heads/main","size":1.50}"#;
    let headers = [("x-github-event", "push"), ("content-type", "application/json")];
    let before = unix_now() * 1000;
    let id = post_webhook(&client, &host, "github", &headers, body).await.unwrap();
    let delivered = receiver.next(WAIT).await.expect("a delivery");
    assert_eq!(delivered.header("content-type"), Some("application/cloudevents+json"));
    assert_eq!(delivered.header("webhook-id"), Some(id.as_str()));
    let text = String::from_utf8(delivered.body.to_vec()).unwrap();
    // The data is the body as sent, numbers as written.
    assert!(text.ends_with(&format!(",\"data\":{body}}}")), "{text}");
    let event: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["source"], "https://hooks.example.com/github");
    assert_eq!(event["type"], "github.push");
    assert_eq!(event["datacontenttype"], "application/json");
    // RFC 3339 in UTC with milliseconds, e.g. `2022-04-07T21:39:13.000Z` (the exact clock
    // arithmetic is the plugin's unit tests' business).
    let time = event["time"].as_str().unwrap();
    let shape: String = time.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{time}");
    let year: u64 = time[..4].parse().unwrap();
    let approximate = 1970 + before / 1000 / 31_556_952;
    assert!(year.abs_diff(approximate) <= 1, "{time}");
}
