//! The command line: argument parsing, command dispatch, and exit codes.
//!
//! Owns the mapping from outcomes to exit codes (0 ok, 1 runtime failure, 2 usage, 78
//! invalid config) and the rendering of errors on stderr. stdout carries only data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin_cli::AdminClient;
use crate::config::{self, ConfigErrors, ProcessEnvironment, Topology};
use crate::plugin_cli::{self, Kind, Language};
use crate::telemetry::{self, LogFormat};

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about = "A WebAssembly-extensible event router")]
pub struct Cli {
    /// Log format on stderr (`RUST_LOG` sets the level).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the router.
    Run(ConfigArgument),
    /// Check a config file and report every error in it.
    Validate(ConfigArgument),
    /// Make the running router read its config file again and apply it (as SIGHUP does).
    #[command(after_help = "The router re-reads the file it was started with, validates all of \
it and applies it: sources, routes, endpoints, plugins and secrets. An invalid file changes \
nothing; every error is printed and logged. A removed endpoint's pending deliveries are parked \
and resume if it comes back. This command reaches the router through its admin API (address and \
`server.admin_token` from the config given here); without the admin API, send SIGHUP instead: \
`kill -HUP <pid>`.

exit codes: 0 applied, 78 refused (invalid config), 1 router unreachable")]
    Reload(ReloadArguments),
    /// Send dead letters again, or every event of a time range, through the running router.
    Replay(ReplayArguments),
    /// Create, build, run and test plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Explain what the router would do with one event, without running it.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Print the admin API's OpenAPI 3.1 document (what `/v1/admin/openapi.json` serves).
    Openapi,
    /// Describe the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work on the store directly (the router stopped).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Print the completion script for SHELL, e.g. `switchyard completions bash`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `switchyard man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of `switchyard.toml` (what `docs/config.schema.json` holds), for
    /// editors: start a config with `#:schema <path or URL of the schema>`.
    Schema,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Seal every dynamic endpoint's secrets under another store key.
    #[command(after_help = "Records sealed under the current `server.store_key` (or still in \
clear) are opened and sealed again under the key in the `[secrets]` entry SECRET_NAME (32 random \
bytes in base64). Stop the router first: it keeps the key it started with. Then set \
`server.store_key = \"SECRET_NAME\"` and start it. Running the command again finishes an \
interrupted rotation.

exit codes: 0 done, 78 invalid config or key, 1 the store could not be re-sealed")]
    RotateKey(RotateKeyArguments),
    /// Copy a SQLite store into the cluster store the config names.
    #[command(after_help = "Copies dynamic endpoints (their stored records as they are: sealed \
records stay sealed, so keep `server.store_key`), disabled endpoints, every pending, parked and \
dead delivery with its event and payload, and every dedupe key still claimed. Delivered \
deliveries, attempt histories and the audit log are not copied. Stop the SQLite router first. \
Running the command again copies nothing twice (events keep their ids; those already in the \
cluster are skipped), so an interrupted run is finished by running it again.

exit codes: 0 done, 78 invalid config, 1 the store could not be copied")]
    Migrate(MigrateArguments),
}

/// The stores `store migrate` copies between.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StoreKind {
    Sqlite,
    Jetstream,
}

#[derive(Debug, clap::Args)]
struct MigrateArguments {
    #[command(flatten)]
    config: ConfigArgument,
    /// The store to copy from (only `sqlite`).
    #[arg(long = "from", value_enum)]
    from: StoreKind,
    /// The store to copy into (only `jetstream`, configured in the config's `[store]`).
    #[arg(long = "to", value_enum)]
    to: StoreKind,
    /// The SQLite data directory [default: the config's `server.data_dir`].
    #[arg(long = "sqlite-dir", value_name = "DIR")]
    sqlite_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RotateKeyArguments {
    #[command(flatten)]
    config: ConfigArgument,
    /// The `[secrets]` entry holding the new key.
    #[arg(long = "to", value_name = "SECRET_NAME")]
    to: String,
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Trace one event through the config: for each route whether it matched and why not
    /// (source, type glob, subject wildcard, CEL filter), every plugin's verdict in order, and
    /// the deliveries that would be stored with their payloads. Plugins run in the sandbox;
    /// nothing is sent and nothing is stored.
    #[command(after_help = "examples:
  switchyard routes test -c switchyard.toml --event push.event.json
  switchyard routes test -c switchyard.toml --source github \\
      --header 'x-github-event: push' --body @push.json --json")]
    Test(RoutesTestArguments),
}

#[derive(Debug, clap::Args)]
struct RoutesTestArguments {
    #[command(flatten)]
    config: ConfigArgument,
    /// An event file in the plugin fixtures' format (`*.event.json`).
    #[arg(long)]
    event: Option<PathBuf>,
    /// The source the event arrives on [default: the event file's `source`].
    #[arg(long)]
    source: Option<String>,
    /// A header `NAME: VALUE` (repeatable), after the event file's.
    #[arg(long = "header", value_parser = header_pair)]
    headers: Vec<(String, String)>,
    /// The body: text, or `@FILE` for a file's bytes [default: the event file's].
    #[arg(long)]
    body: Option<String>,
    /// The NATS subject (NATS sources).
    #[arg(long)]
    subject: Option<String>,
    /// Print the trace as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgument,
}

fn header_pair(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| format!("`{text}` is not `NAME: VALUE`"))
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Create the plugin project NAME in the current directory, with fixtures.
    New {
        #[arg(long, value_enum, default_value_t = Language::Rust)]
        lang: Language,
        #[arg(long, value_enum)]
        kind: Kind,
        name: String,
        /// The language SDK's directory, named by path [default: the `sdk/<lang>` this binary
        /// was built beside, when run from there; else the Rust, Python and JavaScript SDK
        /// packages by version, and the C, Go and Zig SDKs this binary embeds].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build the plugin project in DIR and print the component's path (last line of stdout).
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        cache: CacheArgument,
    },
    /// Run a plugin on one event: verdict, logs, wall time, instructions, peak memory (JSON).
    Run {
        wasm: PathBuf,
        #[arg(long)]
        event: PathBuf,
        /// A `plugin.toml` binding (config, test secrets, fixed clock).
        #[arg(long)]
        binding: Option<PathBuf>,
        /// A config entry `KEY=VALUE` (repeatable).
        #[arg(long = "config", value_parser = key_value)]
        config: Vec<(String, String)>,
        /// A test secret `NAME=VALUE` (repeatable).
        #[arg(long = "secret", value_parser = key_value)]
        secrets: Vec<(String, String)>,
        /// What `now-ms` answers, in unix milliseconds.
        #[arg(long)]
        now_ms: Option<u64>,
        #[command(flatten)]
        cache: CacheArgument,
    },
    /// Run every `*.event.json` in DIR and compare with its `*.verdict.json`.
    Test {
        wasm: PathBuf,
        dir: PathBuf,
        #[command(flatten)]
        cache: CacheArgument,
    },
    /// Run two versions of a plugin on the same events and print every answer that changed;
    /// exits 1 when any did (for a plugin repository's CI).
    Diff {
        /// The version in use.
        old: PathBuf,
        /// The candidate.
        new: PathBuf,
        /// A directory of `*.event.json` fixtures; its `plugin.toml`, if any, is the binding.
        #[arg(long, value_name = "DIR")]
        events: PathBuf,
        /// A `plugin.toml` binding for both versions instead of the directory's.
        #[arg(long)]
        binding: Option<PathBuf>,
        /// A config entry `KEY=VALUE` for both versions (repeatable).
        #[arg(long = "config", value_parser = key_value)]
        config: Vec<(String, String)>,
        /// A config entry for the old version only, e.g. the binding in production.
        #[arg(long = "old-config", value_parser = key_value)]
        old_config: Vec<(String, String)>,
        /// A config entry for the new version only, e.g. a changed setting to try out.
        #[arg(long = "new-config", value_parser = key_value)]
        new_config: Vec<(String, String)>,
        #[command(flatten)]
        cache: CacheArgument,
    },
}

#[derive(Debug, clap::Args)]
struct CacheArgument {
    /// Keep compiled components in DIR and reuse them while the `.wasm` and this build are
    /// unchanged (Python and JavaScript components take seconds to compile).
    #[arg(long, value_name = "CACHE_DIR", env = "SWITCHYARD_PLUGIN_CACHE")]
    cache_dir: Option<PathBuf>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{text}` is not `KEY=VALUE`"))
}

#[derive(Debug, clap::Args)]
struct ReplayArguments {
    #[command(flatten)]
    config: ConfigArgument,
    #[command(flatten)]
    admin: AdminArguments,
    /// Replay events received within this long ago (e.g. `2h`), instead of dead letters.
    #[arg(long)]
    since: Option<String>,
    /// Only deliveries to this endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    /// Only what this route sends (with `--since`).
    #[arg(long)]
    route: Option<String>,
    /// Say what would be replayed; send nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
struct ReloadArguments {
    #[command(flatten)]
    config: ConfigArgument,
    #[command(flatten)]
    admin: AdminArguments,
}

/// How a command reaches the running router's admin API.
#[derive(Debug, clap::Args)]
struct AdminArguments {
    /// The running router's base URL [default: `server.admin_listen`, else `server.listen`;
    /// https with `server.tls`].
    #[arg(long)]
    url: Option<String>,
    /// A client certificate (PEM) to present, for a router with `server.tls.client_auth`.
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl AdminArguments {
    fn client(self, server: &config::topology::Server) -> anyhow::Result<AdminClient> {
        let identity = self.client_cert.zip(self.client_key);
        AdminClient::new(server, self.url, identity)
    }
}

#[derive(Debug, clap::Args)]
struct ConfigArgument {
    /// The config file.
    #[arg(short, long, default_value = "switchyard.toml")]
    config: PathBuf,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    telemetry::init_logging(cli.log_format);
    match cli.command {
        Command::Run(arguments) => run(&arguments.config),
        Command::Validate(arguments) => validate(&arguments.config),
        Command::Replay(arguments) => replay(arguments),
        Command::Reload(arguments) => reload(arguments),
        Command::Openapi => {
            print!("{}", crate::admin::openapi_json());
            ExitCode::SUCCESS
        }
        Command::Plugin(command) => plugin(command),
        Command::Routes(RoutesCommand::Test(arguments)) => routes_test(&arguments),
        Command::Config(ConfigCommand::Schema) => {
            print!("{}", config::schema::config_schema_text());
            ExitCode::SUCCESS
        }
        Command::Store(StoreCommand::RotateKey(arguments)) => rotate_key(&arguments),
        Command::Store(StoreCommand::Migrate(arguments)) => migrate(&arguments),
        Command::Completions { shell } => {
            print!("{}", crate::shell::completions(shell));
            ExitCode::SUCCESS
        }
        Command::Man => match crate::shell::man_page() {
            Ok(page) => {
                print!("{page}");
                ExitCode::SUCCESS
            }
            Err(error) => runtime_failure(&error),
        },
    }
}

fn routes_test(arguments: &RoutesTestArguments) -> ExitCode {
    let topology = match load(&arguments.config.config) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    if arguments.event.is_none() && arguments.source.is_none() {
        eprintln!("error: give an event: `--event FILE`, or `--source ID` with headers and a body");
        return ExitCode::from(EXIT_USAGE);
    }
    let event = crate::routes_cli::EventArguments {
        event: arguments.event.clone(),
        source: arguments.source.clone(),
        headers: arguments.headers.clone(),
        body: arguments.body.clone(),
        subject: arguments.subject.clone(),
    };
    match crate::routes_cli::run(&topology, &event, arguments.cache.cache_dir.as_deref()) {
        Ok(trace) => {
            let rendered = if arguments.json {
                crate::routes_cli::render_json(&trace)
            } else {
                crate::routes_cli::render_text(&trace)
            };
            print!("{rendered}");
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(&error),
    }
}

fn plugin(command: PluginCommand) -> ExitCode {
    let result = match command {
        PluginCommand::New { lang, kind, name, sdk } => {
            plugin_cli::new(lang, kind, &name, sdk.as_deref()).map(|path| {
                println!(
                    "created `{}`; build it with `switchyard plugin build {}`",
                    path.display(),
                    path.display()
                );
                ExitCode::SUCCESS
            })
        }
        PluginCommand::Build { dir, cache } => plugin_cli::build(&dir, cache.cache_dir.as_deref())
            .map(|wasm| {
                println!("{}", wasm.display());
                ExitCode::SUCCESS
            }),
        PluginCommand::Run { wasm, event, binding, config, secrets, now_ms, cache } => {
            let request = plugin_cli::RunRequest {
                wasm,
                event,
                binding,
                config,
                secrets,
                now_ms,
                cache_dir: cache.cache_dir,
            };
            plugin_cli::run(&request).map(|report| {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("JSON values serialize")
                );
                ExitCode::SUCCESS
            })
        }
        PluginCommand::Diff {
            old,
            new,
            events,
            binding,
            config,
            old_config,
            new_config,
            cache,
        } => {
            let request = plugin_cli::DiffRequest {
                old,
                new,
                events,
                binding,
                config,
                old_config,
                new_config,
                cache_dir: cache.cache_dir,
            };
            plugin_cli::diff(&request).map(|report| {
                println!("{report}");
                if report.is_unchanged() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUNTIME) }
            })
        }
        PluginCommand::Test { wasm, dir, cache } => {
            plugin_cli::test(&wasm, &dir, cache.cache_dir.as_deref()).map(|summary| {
                if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUNTIME) }
            })
        }
    };
    result.unwrap_or_else(|error| runtime_failure(&error))
}

fn load(path: &Path) -> Result<Topology, ExitCode> {
    config::load(path, &ProcessEnvironment).map_err(|errors| {
        print_config_errors(path, &errors);
        ExitCode::from(EXIT_CONFIG)
    })
}

fn print_config_errors(path: &Path, errors: &ConfigErrors) {
    eprint!("error: invalid config `{}`: {errors}", path.display());
}

fn validate(path: &Path) -> ExitCode {
    match load(path) {
        Ok(topology) => {
            for warning in &topology.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "config `{}` is valid: {}, {}, {}, {}",
                path.display(),
                count(topology.sources.len(), "source"),
                count(topology.endpoints.len(), "endpoint"),
                count(topology.routes.len(), "route"),
                count(topology.plugins.len(), "plugin"),
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: &Path) -> ExitCode {
    let topology = match load(path) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return runtime_failure(&anyhow::Error::new(error).context("cannot start")),
    };
    match runtime.block_on(crate::app::run(topology, path.to_path_buf())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => runtime_failure(&error),
    }
}

fn replay(arguments: ReplayArguments) -> ExitCode {
    let topology = match load(&arguments.config.config) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    let since = match arguments.since.as_deref().map(config::values::parse_duration) {
        None => None,
        Some(Ok(ago)) => Some(crate::event::now_millis().saturating_sub(ago.as_millis() as u64)),
        Some(Err(message)) => {
            eprintln!("error: `--since`: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some(token) = topology.server.admin_token.clone() else {
        eprintln!("error: replay goes through the admin API, which is off");
        eprintln!("hint: set `server.admin_token` in the config and restart the router");
        return ExitCode::from(EXIT_RUNTIME);
    };
    let request = crate::admin::ReplayRequest {
        since,
        until: None,
        endpoint: arguments.endpoint,
        route: arguments.route,
        dry_run: arguments.dry_run,
    };
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::new)
        .and_then(|runtime| {
            runtime.block_on(async {
                let client = arguments.admin.client(&topology.server)?;
                send_replay(&client, &token, &request).await
            })
        });
    match answer {
        Ok(answer) => {
            let verb = if answer.dry_run { "would replay" } else { "replayed" };
            println!("{verb} {}", count(answer.deliveries, "delivery"));
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(&error),
    }
}

async fn send_replay(
    client: &AdminClient,
    token: &config::Secret,
    request: &crate::admin::ReplayRequest,
) -> anyhow::Result<crate::admin::ReplayAnswer> {
    let body = serde_json::to_vec(request)?;
    let (status, text) = client.post("/v1/admin/replay", token, Some(body)).await?;
    if !status.is_success() {
        anyhow::bail!("the router answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

fn reload(arguments: ReloadArguments) -> ExitCode {
    let topology = match load(&arguments.config.config) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    let Some(token) = topology.server.admin_token.clone() else {
        eprintln!("error: `switchyard reload` goes through the admin API, which is off");
        eprintln!("hint: send the router SIGHUP instead: `kill -HUP <pid>`");
        return ExitCode::from(EXIT_RUNTIME);
    };
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::new)
        .and_then(|runtime| {
            runtime.block_on(async {
                let client = arguments.admin.client(&topology.server)?;
                send_reload(&client, &token).await
            })
        });
    match answer {
        Ok(crate::reload::Reloaded::Applied {
            endpoints_added,
            endpoints_removed,
            routes,
            plugins,
            warnings,
        }) => {
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            let list = |ids: &[String]| {
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
                }
            };
            println!(
                "config reloaded: {}, {}; endpoints added: {}; removed: {}",
                count(routes, "route"),
                count(plugins, "plugin"),
                list(&endpoints_added),
                list(&endpoints_removed)
            );
            ExitCode::SUCCESS
        }
        Ok(crate::reload::Reloaded::Refused { errors }) => {
            eprintln!("error: the router refused the config; it keeps running the one it has");
            for error in errors {
                eprintln!("- {}", error.replace('\n', "\n  "));
            }
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => runtime_failure(&error),
    }
}

async fn send_reload(
    client: &AdminClient,
    token: &config::Secret,
) -> anyhow::Result<crate::reload::Reloaded> {
    let (status, text) = client.post("/v1/admin/reload", token, None).await?;
    if !status.is_success() && status != reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        anyhow::bail!("the router answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

fn rotate_key(arguments: &RotateKeyArguments) -> ExitCode {
    let topology = match load(&arguments.config.config) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    let name = &arguments.to;
    let Some(secret) = topology.secrets.get(name) else {
        eprintln!("error: `--to`: there is no `[secrets]` entry `{name}`");
        return ExitCode::from(EXIT_CONFIG);
    };
    let to = match crate::seal::StoreKey::from_secret(name, secret) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("error: `--to`: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return runtime_failure(&anyhow::Error::new(error).context("cannot start")),
    };
    match runtime.block_on(crate::app::rotate_store_key(&topology, &to)) {
        Ok(rotation) => {
            println!(
                "re-sealed {} under `{name}` (key id `{}`){}; set `server.store_key = \"{name}\"` \
                 before starting the router",
                count(rotation.resealed, "endpoint"),
                to.id(),
                match rotation.already {
                    0 => String::new(),
                    already => format!(", {} already were", count(already, "endpoint")),
                },
            );
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(&error),
    }
}

fn migrate(arguments: &MigrateArguments) -> ExitCode {
    if !matches!((arguments.from, arguments.to), (StoreKind::Sqlite, StoreKind::Jetstream)) {
        eprintln!("error: `store migrate` copies `--from sqlite --to jetstream` only");
        return ExitCode::from(EXIT_USAGE);
    }
    let topology = match load(&arguments.config.config) {
        Ok(topology) => topology,
        Err(code) => return code,
    };
    let sqlite_dir =
        arguments.sqlite_dir.clone().unwrap_or_else(|| topology.server.data_dir.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return runtime_failure(&anyhow::Error::new(error).context("cannot start")),
    };
    match runtime.block_on(crate::store::migrate::run(&topology, &sqlite_dir)) {
        Ok(report) => {
            println!(
                "copied {}, {} disabled; {} with {} pending, {} parked and {} dead \
                 deliveries, {} claiming a dedupe key; {} already in the cluster",
                count(report.endpoints, "endpoint"),
                count(report.disabled, "endpoint"),
                count(report.events, "event"),
                report.pending,
                report.parked,
                report.dead,
                report.dedupe_keys,
                count(report.already, "event"),
            );
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(&error),
    }
}

fn runtime_failure(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(EXIT_RUNTIME)
}

fn count(number: usize, noun: &str) -> String {
    match (number, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{number} {stem}ies"),
        (_, None) => format!("{number} {noun}s"),
    }
}
