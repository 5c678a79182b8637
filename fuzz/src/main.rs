//! `switchyard-fuzz [--time 2m] [--target NAME] [--seed N]`: fuzzes every target (or one)
//! for a total of `--time`, shared evenly, and prints executions and findings per target.
//! Exits 1 when a target panicked; its input is in `fuzz/crashes/<target>/`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard::config::values::parse_duration;
use switchyard_fuzz::{Target, quiet_panics, run, targets};

const DEFAULT_TIME: Duration = Duration::from_secs(120);

struct Options {
    time: Duration,
    target: Option<String>,
    seed: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        time: DEFAULT_TIME,
        target: None,
        seed: SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |now| now.as_nanos() as u64),
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = || arguments.next().ok_or(format!("`{argument}` needs a value"));
        match argument.as_str() {
            "--time" => options.time = parse_duration(&value()?)?,
            "--target" => options.target = Some(value()?),
            "--seed" => {
                let text = value()?;
                options.seed = text.parse().map_err(|_| format!("`{text}` is not a seed"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; expected --time, --target, --seed"
                ));
            }
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let chosen: Vec<&Target> = match &options.target {
        None => targets::ALL.iter().collect(),
        Some(name) => match targets::named(name) {
            Some(target) => vec![target],
            None => {
                let names: Vec<&str> = targets::ALL.iter().map(|target| target.name).collect();
                eprintln!("error: no target `{name}`; the targets: {}", names.join(", "));
                return ExitCode::from(2);
            }
        },
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let each = options.time / chosen.len() as u32;
    println!("fuzzing {} target(s), {:?} each, seed {}", chosen.len(), each, options.seed);
    quiet_panics();
    let mut found = 0;
    println!(
        "{:<12} {:>12} {:>10} {:>9} {:>7} {:>8}",
        "target", "executions", "per second", "outcomes", "corpus", "crashes"
    );
    for target in chosen {
        let report = run(target, each, options.seed, &root.join("corpus"), &root.join("crashes"));
        let rate = report.executions as f64 / each.as_secs_f64().max(0.001);
        println!(
            "{:<12} {:>12} {:>10.0} {:>9} {:>7} {:>8}",
            report.target,
            report.executions,
            rate,
            report.outcomes,
            report.corpus,
            report.crashes.len()
        );
        for (message, path) in &report.crashes {
            println!("  panic: {message}\n  input: {}", path.display());
        }
        found += report.crashes.len();
    }
    if found > 0 {
        eprintln!(
            "error: {found} crash(es) found\nhint: fix each, then copy its input to \
             fuzz/regressions/<target>/ so that `cargo test -p switchyard-fuzz` replays it"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
