//! The `settlegate` command line. Everything else lives in the library; see `lib.rs` for the module map.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use settlegate::config::Config;

/// mimalloc: glibc's allocator was about a fifth of the gateway's CPU on the settle path (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// settlegate — real-time medical settlement gateway: splits a hospital bill between insurance, relief programs,
/// a charity fund and the patient, atomically, over mutual TLS.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the mTLS API and the ops listener until SIGTERM/SIGINT (requests in flight finish, then exit 0).
    Serve {
        /// Gateway config (TOML); every key can be overridden by SETTLEGATE_<SECTION>_<KEY>.
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
    /// Try it: dev certificates, a private redis-server if none is configured and reachable, the example ruleset
    /// and cardholders, the gateway on https://localhost:8443, and curl commands to paste.
    Demo {
        /// Where certificates and the generated config go.
        #[arg(long, default_value = ".demo")]
        dir: PathBuf,
        /// Use this Redis if it answers (else a private redis-server is started).
        #[arg(long, env = "SETTLEGATE_DEMO_REDIS_URL")]
        redis_url: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        #[arg(long, default_value = "127.0.0.1:9090")]
        ops_listen: String,
        /// The web console (sign in as `admin` with the password the demo prints).
        #[arg(long, default_value = "127.0.0.1:8444")]
        console_listen: String,
        /// Ruleset to publish.
        #[arg(long, default_value = "config/rules.example.toml")]
        rules: PathBuf,
        /// Cardholders to import (NDJSON or CSV).
        #[arg(long, default_value = "config/cardholders.example.ndjson")]
        cardholders: PathBuf,
    },
    /// Make a dev CA, a server certificate and client certificates (CN = each name) with rcgen.
    Certs {
        /// Output directory: ca.pem ca.key server.pem server.key <name>.pem <name>.key.
        #[arg(long)]
        out: PathBuf,
        /// A hospital identity (repeat for several).
        #[arg(long = "hospital")]
        hospitals: Vec<String>,
        /// A relief-office identity (repeat for several); list it in admin.identities.
        #[arg(long = "admin")]
        admins: Vec<String>,
        /// DNS names / IPs of the server certificate.
        #[arg(long = "server-name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        server_names: Vec<String>,
    },
    /// Publish or show rulesets, straight in the configured Redis.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Import cardholders, straight into the configured Redis.
    Cardholders {
        #[command(subcommand)]
        command: CardholdersCommand,
    },
    /// The web console's accounts (stored in the configured Redis; every change is audited).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The audit trail of the relief office's writes.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write the settlement events of each local day FROM..=TO to OUT (one file per day, plus manifest.json with
    /// each file's lines, net relief_fen and sha256). A closed day's file is byte-identical on every run; a day
    /// not yet over is written with a warning. Reads the configured Redis; changes nothing.
    Export {
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// First local day, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        from: chrono::NaiveDate,
        /// Last local day, YYYY-MM-DD (at most limits.max_export_days days after --from, counting both).
        #[arg(long, value_parser = parse_date)]
        to: chrono::NaiveDate,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: settlegate::export::Format,
    },
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    settlegate::domain::date::parse(s).ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate FILE (TOML, or JSON if it ends in .json) and publish it as the next version.
    Publish {
        file: PathBuf,
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
    /// Try DRAFT (TOML, or JSON if it ends in .json; as `publish` reads it) on the standing settlements with a
    /// visit in FROM..=TO, and print before / after / change per program and category, and the pools' exhaustion
    /// dates. Reads the configured Redis; changes nothing, publishes nothing.
    Preview {
        draft: PathBuf,
        /// First visit date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        from: chrono::NaiveDate,
        /// Last visit date, YYYY-MM-DD (at most limits.max_preview_days days, counting both).
        #[arg(long, value_parser = parse_date)]
        to: chrono::NaiveDate,
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
    /// Print the published rulesets (or one version) as JSON.
    Show {
        #[arg(long)]
        version: Option<u64>,
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a console account. The password is asked for on the terminal (twice), or read from the first line of
    /// standard input with --password-stdin; only its argon2id hash (salted) is stored.
    Add {
        /// Account name: 1-64 letters, digits, . _ - @.
        name: String,
        /// `admin` (the relief office: every page) or `street:<label>` (one street's cardholders and report, like
        /// that street's certificate).
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// Read the password from standard input (one line) instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Replace an existing account of this name (new password and role; enabled again).
        #[arg(long)]
        replace: bool,
    },
    /// Disable a console account: it cannot log in, and its open sessions end at their next request.
    Disable {
        name: String,
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
    /// List the console accounts (name, role, street, enabled); never the hashes.
    List {
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain from the first entry: exit 0 when every entry verifies, exit 1 naming the first broken
    /// seq (an entry changed, missing or out of place). Reads the configured Redis; changes nothing.
    Verify {
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum CardholdersCommand {
    /// Import FILE, streamed: NDJSON (one RULES.md cardholder per line) or CSV (a header row, then
    /// card_id,category,valid_from,valid_until,status,tags[,street[,community]], tags separated by ';').
    /// Progress on stderr; the summary on stdout. Exit 1 on a store failure or a refused --suspend-missing.
    Import {
        file: PathBuf,
        #[arg(long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// Validate every line and count what would be stored and suspended; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A full sync: suspend every stored active card not in FILE (refused when FILE had rejected lines).
        #[arg(long)]
        suspend_missing: bool,
        /// With --suspend-missing: suspend even though FILE had rejected lines.
        #[arg(long, requires = "suspend_missing")]
        force: bool,
        /// A progress line on stderr every N lines (and N card keys scanned).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        progress_every: u64,
        /// Cards per store write.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch: u64,
        /// Most cards in FILE when missing cards are looked for (8 bytes of memory each).
        #[arg(long, default_value_t = 20_000_000)]
        max_cards: usize,
    },
}

fn load(path: &std::path::Path) -> Result<Config, String> {
    Config::load(path, std::env::vars()).map_err(|e| e.to_string())
}

/// `serve` reads its config before the runtime exists, since the config sizes the runtime.
fn serve(path: &std::path::Path) -> Result<(), String> {
    let config = load(path)?;
    settlegate::gateway::init_logging(&config.log.level, &config.log.format);
    tracing::info!(?config, "configuration");
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.worker_threads > 0 {
        runtime.worker_threads(config.worker_threads);
    }
    let runtime = runtime.enable_all().build().map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(settlegate::gateway::run(config))
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { .. } => unreachable!("serve builds its own runtime"),
        Command::Demo { dir, redis_url, listen, ops_listen, console_listen, rules, cardholders } => {
            settlegate::gateway::init_logging("warn", "text");
            settlegate::demo::run(settlegate::demo::DemoOptions {
                dir,
                redis_url,
                listen,
                ops_listen,
                console_listen,
                rules,
                cardholders,
            })
            .await
        }
        Command::Certs { out, hospitals, admins, server_names } => {
            let clients: Vec<String> = hospitals.into_iter().chain(admins).collect();
            settlegate::certs::generate(&out, &server_names, &clients)?;
            println!("wrote ca, server and {} client certificates to {}", clients.len(), out.display());
            Ok(())
        }
        Command::Rules { command } => match command {
            RulesCommand::Publish { file, config } => {
                let config = load(&config)?;
                let input = settlegate::demo::read_ruleset(&file)?;
                let (_, store) = settlegate::gateway::open_store(&config).await?;
                let now = chrono::Utc::now().with_timezone(&config.tz()).to_rfc3339();
                let by = settlegate::app::cli_actor();
                let version = store.publish_ruleset(&input, &now, &by).await.map_err(|e| e.to_string())?;
                println!("published {} as version {version}", file.display());
                Ok(())
            }
            RulesCommand::Preview { draft, from, to, config } => {
                use settlegate::app::preview::{preview, table, PreviewLimits, PreviewRequest};
                let config = load(&config)?;
                let ruleset = settlegate::demo::read_ruleset(&draft)?;
                let (_, store) = settlegate::gateway::open_store(&config).await?;
                let req = PreviewRequest { ruleset, from, to };
                let report = preview(&store, config.tz(), &req, PreviewLimits::of(&config.limits))
                    .await
                    .map_err(|e| e.to_string())?;
                print!("{}", table(&report, from, to));
                Ok(())
            }
            RulesCommand::Show { version, config } => {
                let config = load(&config)?;
                let (_, store) = settlegate::gateway::open_store(&config).await?;
                let all = store.load_rulesets().await.map_err(|e| e.to_string())?;
                let shown: Vec<_> = all.into_iter().filter(|r| version.is_none_or(|v| r.version == v)).collect();
                println!("{}", serde_json::to_string_pretty(&shown).expect("json"));
                Ok(())
            }
        },
        Command::Users { command } => users(command).await,
        Command::Audit { command: AuditCommand::Verify { config } } => {
            let config = load(&config)?;
            let (_, store) = settlegate::gateway::open_store(&config).await?;
            match store.verify_audit().await.map_err(|e| e.to_string())? {
                Ok(n) => {
                    println!("audit chain verified: {n} entries");
                    Ok(())
                }
                Err(b) => Err(format!("audit chain broken at seq {}: {}", b.seq, b.reason)),
            }
        }
        Command::Export { config, from, to, out, format } => {
            let config = load(&config)?;
            let (_, store) = settlegate::gateway::open_store(&config).await?;
            let today = chrono::Utc::now().with_timezone(&config.tz()).date_naive();
            let opts = settlegate::export::ExportOptions {
                from,
                to,
                out: out.clone(),
                format,
                max_days: config.limits.max_export_days,
                today,
            };
            let manifest = settlegate::export::run(&store, &opts).await?;
            let lines: u64 = manifest.iter().map(|m| m.lines).sum();
            println!("wrote {} files ({lines} lines) and manifest.json to {}", manifest.len(), out.display());
            Ok(())
        }
        Command::Cardholders {
            command:
                CardholdersCommand::Import {
                    file,
                    config,
                    dry_run,
                    suspend_missing,
                    force,
                    progress_every,
                    batch,
                    max_cards,
                },
        } => {
            let config = load(&config)?;
            let (_, store) = settlegate::gateway::open_store(&config).await?;
            let at =
                chrono::Utc::now().with_timezone(&config.tz()).to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
            let opts = settlegate::sync::SyncOptions {
                file,
                dry_run,
                suspend_missing,
                force,
                batch_cards: usize::try_from(batch).unwrap_or(500),
                progress_every_lines: progress_every,
                max_line_bytes: config.limits.max_import_line_bytes,
                max_cards,
                at,
                by: settlegate::app::cli_actor(),
            };
            let report = settlegate::sync::run(&store, &opts, &mut std::io::stderr()).await?;
            println!("{}", report.summary(dry_run));
            if report.suspend_refused && !dry_run {
                return Err("--suspend-missing refused: the file had rejected lines (see above)".into());
            }
            Ok(())
        }
    }
}

/// `settlegate users ...`.
async fn users(command: UsersCommand) -> Result<(), String> {
    use settlegate::store::console::{ConsoleOutcome, ConsoleWrite};
    let by = settlegate::app::cli_actor();
    match command {
        UsersCommand::Add { name, role, config, password_stdin, replace } => {
            let config = load(&config)?;
            let password = read_password(password_stdin)?;
            let now = chrono::Utc::now().with_timezone(&config.tz()).to_rfc3339();
            let account = settlegate::console::auth::new_account(&name, &role, &password, &now)?;
            if let Some(street) = &account.street {
                if !config.streets.identities.values().any(|s| s == street) {
                    eprintln!(
                        "settlegate: note: no [streets] identity serves {street:?}; the account sees its cards only"
                    );
                }
            }
            let (_, store) = settlegate::gateway::open_store(&config).await?;
            let detail = serde_json::json!({"role": account.role, "street": account.street, "replace": replace});
            let w = ConsoleWrite::Add { account: &account, replace };
            match store.console_write(&w, &now, &by, detail).await.map_err(|e| e.to_string())? {
                ConsoleOutcome::Applied => {
                    println!("added console account {name} ({role})");
                    Ok(())
                }
                _ => Err(format!("an account {name:?} exists; use --replace to give it a new password and role")),
            }
        }
        UsersCommand::Disable { name, config } => {
            let config = load(&config)?;
            let (_, store) = settlegate::gateway::open_store(&config).await?;
            let now = chrono::Utc::now().with_timezone(&config.tz()).to_rfc3339();
            let w = ConsoleWrite::Disable { name: &name };
            match store.console_write(&w, &now, &by, serde_json::json!({})).await.map_err(|e| e.to_string())? {
                ConsoleOutcome::Applied => {
                    println!("disabled console account {name}");
                    Ok(())
                }
                ConsoleOutcome::Unchanged => {
                    println!("console account {name} was already disabled");
                    Ok(())
                }
                _ => Err(format!("no console account {name:?}")),
            }
        }
        UsersCommand::List { config } => {
            let config = load(&config)?;
            let (_, store) = settlegate::gateway::open_store(&config).await?;
            for a in store.accounts().await.map_err(|e| e.to_string())? {
                let role = serde_json::to_value(&a.role).unwrap_or_default();
                let street = a.street.as_deref().unwrap_or("-");
                let state = if a.disabled { "disabled" } else { "enabled" };
                println!("{}\t{}\t{street}\t{state}", a.name, role.as_str().unwrap_or("?"));
            }
            Ok(())
        }
    }
}

/// The new account's password: the first line of standard input, or asked twice on the terminal (not echoed).
fn read_password(from_stdin: bool) -> Result<String, String> {
    use std::io::BufRead;
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password("password: ").map_err(|e| format!("password: {e}"))?;
    let again = rpassword::prompt_password("again: ").map_err(|e| format!("password: {e}"))?;
    if first != again {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve { config } => serve(config),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))
            .and_then(|runtime| runtime.block_on(run(cli))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("settlegate: {e}");
            ExitCode::FAILURE
        }
    }
}
