//! The `churnserve` binary: parses the command line, binds the listener and serves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use churn_registry::{Location, Registry, Severity};
use churnserve::{Config, ExportProgress, ExportRequest, RegistryArgs, Telemetry};
use clap::{CommandFactory, Parser, Subcommand};
use tokio::net::TcpListener;

// Decoding a batch allocates a string per feature value; mimalloc frees them several
// times faster than glibc's allocator (measured in tests/benches/scoring.rs). With the
// crate's `override` feature it also serves ONNX Runtime's own malloc calls, which were
// 17% of the server's CPU on single-customer Score (about 10% more requests/s on one core).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Churn scoring with versioned ONNX models over gRPC.
#[derive(Debug, Parser)]
#[command(name = "churnserve", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the gRPC server.
    #[command(args_override_self = true)]
    Serve {
        /// A TOML file of settings, keyed by flag name with underscores (`max_batch_rows =
        /// 5000`); environment variables and flags override it.
        #[arg(long, env = "CHURNSERVE_CONFIG")]
        config: Option<PathBuf>,
        /// Print the effective settings as TOML (tokens redacted) and exit.
        #[arg(long)]
        print_config: bool,
        #[command(flatten)]
        settings: Box<Config>,
    },
    /// Verify a registry offline (read-only; safe beside running servers): database
    /// integrity and schema version, every artifact's presence and SHA-256, aliases, the
    /// audit log. Prints each problem with its fix; exits 1 on damage.
    Check {
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Write the prediction log of a range as Parquet (zstd), one folder per UTC day
    /// (`TO/date=YYYY-MM-DD/`), to a local directory or an object store (the URLs and
    /// variables of --artifact-store). Exporting a range again replaces what earlier
    /// exports wrote for it, so each prediction appears once.
    ExportPredictions {
        #[command(flatten)]
        registry: RegistryArgs,
        /// The first instant, RFC 3339 (`2026-12-01T00:00:00Z`).
        #[arg(
            long,
            required_unless_present = "last_days",
            conflicts_with = "last_days"
        )]
        since: Option<String>,
        /// The end, excluded, RFC 3339.
        #[arg(
            long,
            required_unless_present = "last_days",
            conflicts_with = "last_days"
        )]
        until: Option<String>,
        /// Scheduled mode, for a daily CronJob: the N whole UTC days before today.
        #[arg(long)]
        last_days: Option<u32>,
        /// A directory, file://PATH, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or
        /// az://CONTAINER[/PREFIX].
        #[arg(long)]
        to: String,
    },
    /// Apply the registry's pending schema migrations and exit (`serve` applies them too;
    /// run this before rolling out a new release to several replicas).
    Migrate {
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// The command line again, with the file's settings placed before the caller's flags
/// (so flags win) and skipped where a `CHURNSERVE_*` variable is set (so it wins).
fn with_config_file(path: &Path) -> anyhow::Result<Cli> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let serve = Cli::command()
        .find_subcommand("serve")
        .cloned()
        .expect("serve is a subcommand");
    let mut file_args = Vec::new();
    for (key, value) in table {
        // A setting's former name (`metrics_listen` for `http_listen`) is its flag alias.
        let flag = key.replace('_', "-");
        let argument = serve
            .get_arguments()
            .filter(|a| a.get_long().is_some())
            .find(|a| {
                a.get_id().as_str() == key
                    || a.get_all_aliases()
                        .is_some_and(|aliases| aliases.contains(&flag.as_str()))
            })
            .with_context(|| {
                format!(
                    "{}: `{key}` is not a setting (see `churnserve serve --help`)",
                    path.display()
                )
            })?;
        let long = argument.get_long().expect("filtered on long flags");
        if argument
            .get_env()
            .is_some_and(|variable| std::env::var_os(variable).is_some())
        {
            continue;
        }
        match value {
            toml::Value::Boolean(true) => file_args.push(format!("--{long}")),
            toml::Value::Boolean(false) => {}
            toml::Value::String(text) => file_args.push(format!("--{long}={text}")),
            toml::Value::Integer(n) => file_args.push(format!("--{long}={n}")),
            toml::Value::Float(x) => file_args.push(format!("--{long}={x}")),
            other => anyhow::bail!(
                "{}: `{key}` = {other} is not a single value",
                path.display()
            ),
        }
    }
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let serve_at = args
        .iter()
        .position(|a| a == "serve")
        .map_or(args.len(), |i| i + 1);
    args.splice(serve_at..serve_at, file_args.into_iter().map(Into::into));
    Ok(Cli::try_parse_from(args)?)
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let Command::Serve {
        config: Some(path), ..
    } = &cli.command
    else {
        return start(cli);
    };
    match with_config_file(&path.clone()) {
        Ok(merged) => cli = merged,
        Err(error) => {
            eprintln!("churnserve: {error:#}");
            return ExitCode::FAILURE;
        }
    }
    start(cli)
}

fn start(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve {
            print_config,
            settings,
            ..
        } => serve(print_config, *settings),
        Command::Check { registry } => check(&registry),
        Command::Migrate { registry } => migrate(&registry),
        Command::ExportPredictions {
            registry,
            since,
            until,
            last_days,
            to,
        } => export(&registry, since, until, last_days, to),
    }
}

/// A progress bar on a terminal; nothing elsewhere.
struct ExportBar(indicatif::ProgressBar);

impl ExportProgress for ExportBar {
    fn total(&self, rows: u64) {
        self.0.set_length(rows);
    }

    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }
}

fn instant(flag: &str, text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("--{flag} {text:?}: {e}; expected RFC 3339, as 2026-12-01T00:00:00Z"))
}

fn export(
    registry: &RegistryArgs,
    since: Option<String>,
    until: Option<String>,
    last_days: Option<u32>,
    to: String,
) -> ExitCode {
    const DAY_MILLIS: i64 = 86_400_000;
    let range = match (since, until, last_days) {
        (Some(since), Some(until), _) => {
            instant("since", &since).and_then(|s| Ok((s, instant("until", &until)?)))
        }
        (_, _, Some(days)) => {
            let now = chrono::Utc::now().timestamp_millis();
            let today = now - now.rem_euclid(DAY_MILLIS);
            Ok((today - i64::from(days) * DAY_MILLIS, today))
        }
        _ => Err("give --since and --until, or --last-days".to_owned()),
    };
    let (since_millis, until_millis) = match range {
        Ok(range) => range,
        Err(error) => {
            eprintln!("churnserve export-predictions: {error}");
            return ExitCode::FAILURE;
        }
    };
    let request = ExportRequest {
        since_millis,
        until_millis,
        to,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} predictions ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("churnserve export-predictions: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let exported = runtime.block_on(churnserve::export_predictions(
        registry,
        &request,
        &ExportBar(bar.clone()),
    ));
    bar.finish_and_clear();
    match exported {
        Ok(summary) => {
            let utc = |millis: i64| {
                chrono::DateTime::from_timestamp_millis(millis)
                    .map_or_else(|| millis.to_string(), |t| t.to_rfc3339())
            };
            println!(
                "exported {} predictions scored in [{}, {}) to {} in {} file(s); {} earlier file(s) replaced",
                summary.rows,
                utc(summary.since_millis),
                utc(summary.until_millis),
                request.to,
                summary.files,
                summary.replaced
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("churnserve export-predictions: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one registry operation on a single-threaded runtime; errors as one line.
fn offline<T>(
    registry: &RegistryArgs,
    operation: impl AsyncFnOnce(&Location) -> Result<T, churn_registry::RegistryError>,
) -> Result<(Location, T), String> {
    let location = registry.location().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let value = runtime
        .block_on(operation(&location))
        .map_err(|e| format!("registry {location}: {e}"))?;
    Ok((location, value))
}

fn migrate(registry: &RegistryArgs) -> ExitCode {
    match offline(registry, async |location| Registry::migrate(location).await) {
        Ok((location, ())) => {
            println!("registry {location}: migrations applied");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("churnserve migrate: {error}");
            ExitCode::FAILURE
        }
    }
}

fn check(registry: &RegistryArgs) -> ExitCode {
    let (location, findings) = match offline(registry, async |location| {
        churn_registry::check(location).await
    }) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("churnserve check: {error}");
            return ExitCode::FAILURE;
        }
    };
    for finding in &findings {
        let severity = match finding.severity {
            Severity::Damage => "DAMAGE",
            Severity::Leftover => "leftover",
        };
        println!(
            "{severity}: {}
  fix: {}",
            finding.problem, finding.fix
        );
    }
    if findings.iter().any(|f| f.severity == Severity::Damage) {
        return ExitCode::FAILURE;
    }
    println!("registry {location}: ok");
    ExitCode::SUCCESS
}

fn serve(print_config: bool, config: Config) -> ExitCode {
    if print_config {
        match toml::to_string(&config) {
            Ok(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(error) => {
                eprintln!("churnserve: cannot print the settings: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("churnserve: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _runtime_context = runtime.enter();
    let telemetry = match Telemetry::install(config.log_format) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("churnserve: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(config));
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("churnserve: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // SIGXFSZ, sent when a write passes the process's file-size limit, would kill the
    // server; handled, the write fails with EFBIG instead and the request gets
    // RESOURCE_EXHAUSTED like any full disk. The listener must live as long as the server.
    const SIGXFSZ: i32 = 25;
    let _file_size_limit =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ))
            .map_err(|e| anyhow::anyhow!("cannot handle SIGXFSZ: {e}"))?;
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    churnserve::serve(config, listener, shutdown).await?;
    Ok(())
}

/// Watches Ctrl-C and SIGTERM from now on (a signal that arrives while the server is still
/// starting must not kill it) and completes on either, so that in-flight requests drain
/// before exit.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind: SignalKind| {
        signal(kind).map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C and SIGTERM: {e}"))
    };
    let mut interrupt = watch(SignalKind::interrupt())?;
    let mut terminate = watch(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down; draining in-flight requests");
    })
}
