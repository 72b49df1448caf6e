//! `tillsyn-collector`: parses arguments, sets up logging, and hands over to the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tillsyn_agent::telemetry::{self, LogFormat};
use tillsyn_collector::admin;
use tillsyn_collector::audit;
use tillsyn_collector::ca::CertificateAuthority;
use tillsyn_collector::compliance::{self, FindingFilter, FindingFormat};
use tillsyn_collector::config::CollectorDir;
use tillsyn_collector::output::{ExportFormat, Format};
use tillsyn_collector::quickstart;
use tillsyn_collector::report::{self, ReportFormat};
use tillsyn_collector::rules::Severity;
use tillsyn_collector::scans::{self, JobKind, JobParams, ScheduleSpec};
use tillsyn_collector::server::{self, ServerState};

// glibc's allocator spent about a quarter of the serving collector's CPU under the fleet
// simulator (perf, 300 agents: `_int_malloc`, `unlink_chunk`, `malloc_consolidate` and the
// frees, from decoding and storing ~150 KB reports on many threads); mimalloc's per-thread
// heaps do the same work for a fraction (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tillsyn collector: enrolls agents, stores inventories, shows classification gaps.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// State directory: config, CA, database. Default /var/lib/tillsyn-collector, or
    /// ./tillsyn-quickstart for `quickstart`.
    #[arg(long, global = true, env = "TILLSYN_COLLECTOR_DIR")]
    dir: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the CA, server certificate, config and database.
    Init {
        /// Extra DNS names or IP addresses for the server certificate (repeatable).
        #[arg(long = "server-name")]
        server_names: Vec<String>,
    },
    /// Serve agents over mutual-TLS gRPC until Ctrl-C.
    Serve {
        /// Listen address (default from collector.toml).
        #[arg(long)]
        listen: Option<String>,
        /// Also serve the web interface (HTTPS) on this address, e.g. 127.0.0.1:8443
        /// (default: `[web] listen` when `[web]` is in collector.toml; none without either).
        #[arg(long)]
        web: Option<String>,
    },
    /// Copy this collector's SQLite store into an empty PostgreSQL database and verify it.
    Migrate {
        /// The source, `sqlite:PATH` (the collector's database file, tillsyn.db).
        #[arg(long)]
        from: String,
        /// The target, `postgres://user@host/db?sslmode=verify-full&sslrootcert=CA.pem`.
        #[arg(long)]
        to: String,
    },
    /// Local accounts of the web interface.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Everything at once on this machine: collector, local agent, inventory, results.
    Quickstart {
        /// Then keep serving, with the web interface on this address (e.g. 127.0.0.1:8443),
        /// and print its URL and the first coordinator's enrolment link; until Ctrl-C.
        #[arg(long)]
        web: Option<std::net::SocketAddr>,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The collector's CA: rotate it without re-enrolling agents.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// The server certificate.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Enrolled agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Stored assets with their controls.
    Assets {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Table)]
        format: ExportFormat,
    },
    /// The system register.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Systems from the register with their assets and open findings.
    Systems {
        #[command(subcommand)]
        command: Option<SystemsCommand>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Table)]
        format: ExportFormat,
    },
    /// The rule table.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Findings: rules broken by systems and assets (evaluates first).
    Findings {
        /// Only systems where this e-mail is system owner, administrator or information owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only this system.
        #[arg(long)]
        system: Option<String>,
        /// Only these severities (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        severity: Vec<Severity>,
        /// Include resolved findings.
        #[arg(long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FindingFormat::Table)]
        format: FindingFormat,
    },
    /// One finding: accept its risk, or show its history.
    Finding {
        #[command(subcommand)]
        command: FindingCommand,
    },
    /// Run the rules now and store the findings.
    Evaluate,
    /// Scheduled scans: inventory runs, discovery sweeps, evaluations.
    Scan {
        #[command(subcommand)]
        command: ScanCommand,
    },
    /// What changed in the inventory (observation history).
    Changes {
        /// Only this asset (id, host name or device address).
        #[arg(long)]
        asset: Option<String>,
        /// How far back, e.g. 7d, 12h.
        #[arg(long, default_value = "7d", value_parser = parse_ttl_any)]
        since: time::Duration,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The hash-chained audit log of every change made by a person.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The management-review report (ledningens genomgång).
    Report {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Language of the page: sv (default) or en.
        #[arg(long, default_value = "sv")]
        lang: String,
        /// Write here instead of standard output (required for pdf).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SystemsCommand {
    /// Who can log in to the system's hosts and with which privilege (the access review).
    Access {
        /// The system's register id.
        system: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FindingFormat::Table)]
        format: FindingFormat,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Every rule with its policy clause, ISO 27001 and NIS2 mapping.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Entries in order: who changed what, when.
    List {
        /// Only entries this recent, e.g. 7d, 12h.
        #[arg(long, value_parser = parse_ttl_any)]
        since: Option<time::Duration>,
        /// Only entries by this person.
        #[arg(long)]
        by: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Table)]
        format: ExportFormat,
    },
    /// Walk the hash chain; exits non-zero naming the first broken entry.
    Verify {
        /// The head from a management report (SEQ:HASH): the log must still contain it.
        #[arg(long)]
        head: Option<tillsyn_collector::audit::Head>,
    },
}

#[derive(Subcommand)]
enum ScanCommand {
    /// Add a schedule.
    Add {
        /// Unique name.
        name: String,
        /// What to run.
        #[arg(long, value_enum)]
        kind: JobKind,
        /// Cron expression, e.g. "0 2 * * 1" (Mondays 02:00).
        #[arg(long)]
        cron: String,
        /// IANA time zone of the expression.
        #[arg(long, default_value = "Europe/Stockholm")]
        timezone: String,
        /// all, agent:ID or label:KEY=VALUE.
        #[arg(long, default_value = "all")]
        target: String,
        /// Discovery: CIDR to sweep (repeatable).
        #[arg(long = "discovery-target")]
        discovery_targets: Vec<String>,
        /// Discovery: port to probe, PORT or PORT/PROTOCOL (repeatable; default: the agent's OT
        /// port list).
        #[arg(long = "discovery-port")]
        discovery_ports: Vec<String>,
        /// Agents wait a random 0..N seconds before running, so a fleet does not stampede.
        #[arg(long, default_value_t = 300)]
        jitter_seconds: u32,
    },
    /// List schedules with their next run.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Create the schedule's jobs now.
    RunNow {
        /// The schedule.
        name: String,
    },
    /// Jobs and their outcome, newest first.
    History {
        /// Only this schedule.
        name: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove a schedule (its history stays).
    Remove {
        /// The schedule.
        name: String,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Import a register (CSV or YAML); all rows or none.
    Import {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum FindingCommand {
    /// Accept the risk of a finding until a date.
    Accept {
        /// The finding id (from `findings`).
        id: String,
        /// The person accepting.
        #[arg(long)]
        by: String,
        /// The justification.
        #[arg(long)]
        reason: String,
        /// Last day the acceptance holds, YYYY-MM-DD.
        #[arg(long)]
        until: String,
    },
    /// Every state change of a finding.
    History {
        /// The finding id.
        id: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the one-time enrolment link is printed alone on the last line.
    Add {
        /// E-mail address (the register's owner e-mails decide what an owner sees).
        #[arg(long)]
        email: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// coordinator, owner, administrator, auditor or management.
        #[arg(long)]
        role: String,
    },
    /// List accounts.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Disable an account and end its sessions.
    Disable {
        /// E-mail address.
        email: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token (single-use unless --uses); it is printed alone on the last line.
    Create {
        /// Lifetime, e.g. 90s, 15m, 2h, 7d (default from collector.toml).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<time::Duration>,
        /// How many agents may enroll with it (a fleet roll-out: one token for N hosts).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// Label KEY=VALUE set on every agent enrolled with it; agents cannot override it
        /// (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Name for `token list` and `token revoke` (default: derived from the token).
        #[arg(long)]
        name: Option<String>,
    },
    /// Tokens with their uses left, expiry and labels (never the secret).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke a token: no further enrollments; agents enrolled with it keep working.
    Revoke {
        /// The token's name (from `token list`).
        name: String,
    },
}

fn parse_label(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label {raw:?} must look like KEY=VALUE"))
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a new CA; the current one stays trusted during the overlap (restart to apply).
    Rotate {
        /// How long the previous CA stays trusted, e.g. 30d, 12h, 90s.
        #[arg(long, default_value = "30d", value_parser = parse_ttl_any)]
        overlap: time::Duration,
    },
    /// The rotation in progress: when the previous CA retires, agents still on it.
    Status,
    /// Stop trusting the previous CA now (restart to apply).
    Retire {
        /// Even if agents still hold certificates from it (they will need new tokens).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Issue a new server certificate from the current CA (restart to apply).
    Renew {
        /// Even if agents have not yet learned the current CA (they will need new tokens).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// List agents.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// How many agents run each version.
    Versions,
    /// Revoke an agent: its certificate is refused from the next call on.
    Revoke {
        /// The agent id.
        agent_id: String,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

async fn scan_command(
    store: &dyn tillsyn_collector::store::Store,
    command: ScanCommand,
) -> anyhow::Result<String> {
    let now = server::now_ms();
    Ok(match command {
        ScanCommand::Add {
            name,
            kind,
            cron,
            timezone,
            target,
            discovery_targets,
            discovery_ports,
            jitter_seconds,
        } => {
            let params = JobParams {
                discovery_targets,
                discovery_ports,
                jitter_seconds,
            };
            let spec = ScheduleSpec {
                name: name.clone(),
                kind,
                cron,
                timezone,
                target,
                params,
            };
            let next = scans::add(store, spec, &admin::actor(), now).await?;
            format!(
                "schedule {name} added; first run {}",
                tillsyn_collector::output::people_time(Some(next))
            )
        }
        ScanCommand::List { format } => admin::list_schedules(store, format).await?,
        ScanCommand::RunNow { name } => {
            let jobs = scans::run_now(store, &name, &admin::actor(), now).await?;
            format!("{} job(s) created for {name}", jobs.len())
        }
        ScanCommand::History { name, format } => {
            admin::list_jobs(store, name.as_deref(), format).await?
        }
        ScanCommand::Remove { name } => {
            let event = tillsyn_collector::store::AuditEvent {
                actor: admin::actor(),
                action: "scan.remove".into(),
                subject: name.clone(),
                detail: serde_json::json!({}),
            };
            if store.delete_schedule(&name, event, now).await? {
                format!("schedule {name} removed")
            } else {
                anyhow::bail!("no schedule named {name:?}")
            }
        }
    })
}

/// A duration like 90s, 15m, 2h or 7d, any length.
fn parse_ttl_any(raw: &str) -> Result<time::Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{raw:?}: expected a number with a unit, e.g. 7d"))?;
    match unit {
        "s" => Ok(time::Duration::seconds(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "h" => Ok(time::Duration::hours(n)),
        "d" | "" => Ok(time::Duration::days(n)),
        _ => Err(format!("{raw:?}: unit must be s, m, h or d")),
    }
}

fn parse_ttl(raw: &str) -> Result<time::Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{raw:?}: expected a number with a unit, e.g. 15m"))?;
    let ttl = match unit {
        "s" => time::Duration::seconds(n),
        "m" | "" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => return Err(format!("{raw:?}: unit must be s, m, h or d")),
    };
    if ttl <= time::Duration::ZERO || ttl > time::Duration::days(30) {
        return Err(format!("{raw:?}: must be more than 0 and at most 30 days"));
    }
    Ok(ttl)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let default_dir = if matches!(cli.command, Command::Quickstart { .. }) {
        "tillsyn-quickstart"
    } else {
        "/var/lib/tillsyn-collector"
    };
    let dir = CollectorDir::new(cli.dir.unwrap_or_else(|| PathBuf::from(default_dir)));
    match cli.command {
        Command::Init { server_names } => println!("{}", admin::init(&dir, &server_names).await?),
        Command::Serve { listen, web } => serve(&dir, listen, web).await?,
        Command::User { command } => println!("{}", user_command(&dir, command).await?),
        Command::Migrate { from, to } => migrate(&from, &to).await?,
        Command::Quickstart { web: None } => print!("{}", quickstart::run(&dir).await?),
        Command::Quickstart { web: Some(web) } => quickstart::run_and_serve(&dir, web).await?,
        Command::Token { command } => {
            let store = admin::open_store(&dir).await?;
            let text = match command {
                TokenCommand::Create {
                    ttl,
                    uses,
                    labels,
                    name,
                } => {
                    let request = admin::TokenRequest {
                        ttl,
                        uses,
                        labels,
                        name,
                    };
                    admin::create_scoped_token(&dir, store.as_ref(), &request).await?
                }
                TokenCommand::List { format } => admin::list_tokens(store.as_ref(), format).await?,
                TokenCommand::Revoke { name } => admin::revoke_token(store.as_ref(), &name).await?,
            };
            println!("{text}");
        }
        Command::Agent { command } => {
            let store = admin::open_store(&dir).await?;
            let text = match command {
                AgentCommand::List { format } => admin::list_agents(store.as_ref(), format).await?,
                AgentCommand::Versions => admin::agent_versions(store.as_ref()).await?,
                AgentCommand::Revoke { agent_id, reason } => {
                    admin::revoke_agent(store.as_ref(), &agent_id, &reason).await?
                }
            };
            println!("{text}");
        }
        Command::Ca { command } => {
            use tillsyn_collector::rotation;
            let text = match command {
                CaCommand::Rotate { overlap } => rotation::rotate(&dir, overlap)?,
                CaCommand::Status => {
                    rotation::status(&dir, admin::open_store(&dir).await?.as_ref()).await?
                }
                CaCommand::Retire { force } => {
                    rotation::retire(&dir, admin::open_store(&dir).await?.as_ref(), force).await?
                }
            };
            println!("{text}");
        }
        Command::Cert {
            command: CertCommand::Renew { force },
        } => {
            let store = admin::open_store(&dir).await?;
            println!(
                "{}",
                tillsyn_collector::rotation::renew_server(&dir, store.as_ref(), force).await?
            );
        }
        Command::Assets { format } => {
            let store = admin::open_store(&dir).await?;
            println!("{}", admin::list_assets(store.as_ref(), format).await?);
        }
        command => compliance_command(&dir, command).await?,
    }
    Ok(())
}

async fn compliance_command(dir: &CollectorDir, command: Command) -> anyhow::Result<()> {
    let store = admin::open_store(dir).await?;
    let store = store.as_ref();
    let text = match command {
        Command::Catalog {
            command: CatalogCommand::Import { file },
        } => compliance::import(dir, store, &file).await?,
        Command::Systems {
            command: None,
            format,
        } => compliance::systems(dir, store, format).await?,
        Command::Systems {
            command: Some(SystemsCommand::Access { system, format }),
            ..
        } => tillsyn_collector::access::access(dir, store, &system, format).await?,
        Command::Rules {
            command: RulesCommand::List { format },
        } => compliance::rules_list(dir, format)?,
        Command::Findings {
            owner,
            system,
            severity,
            all,
            format,
        } => {
            let filter = FindingFilter {
                owner,
                system,
                severities: severity,
                all,
            };
            compliance::findings(dir, store, &filter, format).await?
        }
        Command::Finding {
            command:
                FindingCommand::Accept {
                    id,
                    by,
                    reason,
                    until,
                },
        } => compliance::accept(store, &id, &by, &reason, &until).await?,
        Command::Finding {
            command: FindingCommand::History { id },
        } => compliance::history(store, &id).await?,
        Command::Evaluate => compliance::evaluate(dir, store).await?,
        Command::Report {
            format,
            lang,
            output,
        } => {
            let text = report::report(dir, store, format, &lang, output.as_deref()).await?;
            match (&output, format) {
                (Some(path), ReportFormat::Html | ReportFormat::Json) => {
                    std::fs::write(path, format!("{text}\n"))
                        .with_context(|| format!("writing {}", path.display()))?;
                    format!("wrote {}", path.display())
                }
                _ => text,
            }
        }
        Command::Audit {
            command: AuditCommand::List { since, by, format },
        } => {
            let filter = audit::AuditFilter {
                since_ms: since.map(|since| {
                    server::now_ms()
                        - i64::try_from(since.whole_milliseconds()).unwrap_or(i64::MAX / 2)
                }),
                by,
            };
            audit::list(store, &filter, format).await?
        }
        Command::Audit {
            command: AuditCommand::Verify { head },
        } => audit::verify(store, head.as_ref()).await?,
        Command::Scan { command } => scan_command(store, command).await?,
        Command::Changes {
            asset,
            since,
            format,
        } => {
            let since_ms = server::now_ms()
                - i64::try_from(since.whole_milliseconds()).unwrap_or(i64::MAX / 2);
            admin::changes(store, asset.as_deref(), since_ms, format).await?
        }
        _ => unreachable!("handled in main"),
    };
    println!("{text}");
    Ok(())
}

async fn user_command(dir: &CollectorDir, command: UserCommand) -> anyhow::Result<String> {
    use tillsyn_collector::web::{self, users};
    let store = admin::open_store(dir).await?;
    Ok(match command {
        UserCommand::Add { email, name, role } => {
            let settings = web::settings_for(&dir.load_config()?, None)?;
            users::add(
                store.as_ref(),
                &settings,
                &email,
                &name,
                &role,
                &admin::actor(),
            )
            .await?
        }
        UserCommand::List { format } => users::list(store.as_ref(), format).await?,
        UserCommand::Disable { email } => {
            users::disable(store.as_ref(), &email, &admin::actor()).await?
        }
    })
}

async fn migrate(from: &str, to: &str) -> anyhow::Result<()> {
    let path = from
        .strip_prefix("sqlite:")
        .with_context(|| format!("--from {from:?}: expected sqlite:PATH"))?;
    let report = tillsyn_collector::store::copy::sqlite_to_postgres(
        std::path::Path::new(path),
        to,
        tillsyn_collector::config::DEFAULT_DATABASE_MAX_CONNECTIONS,
    )
    .await?;
    for (table, rows) in &report.tables {
        println!("{table:<22} {rows:>10} rows");
    }
    match &report.audit_head {
        Some(head) => println!("audit log verified; chain ends in {head}"),
        None => println!("audit log empty"),
    }
    println!("copied and verified; set database = \"postgres://...\" in collector.toml");
    Ok(())
}

async fn serve(
    dir: &CollectorDir,
    listen: Option<String>,
    web: Option<String>,
) -> anyhow::Result<()> {
    let config = dir.load_config()?;
    let web_addr = match web {
        Some(raw) => Some(
            raw.parse()
                .with_context(|| format!("--web {raw:?}: not an address like 127.0.0.1:8443"))?,
        ),
        None => None,
    };
    let addr = match listen {
        Some(raw) => raw
            .parse()
            .with_context(|| format!("--listen {raw:?}: not an address like 127.0.0.1:7443"))?,
        None => config.listen,
    };
    let store = admin::open_store(dir).await?;
    let ca = Arc::new(CertificateAuthority::load(dir.root())?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "collector listening");
    // Tests and scripts wait for this line on stdout.
    println!("listening on {bound}");
    // Fires schedules and keeps findings current; the period bounds how late a schedule fires.
    let evaluator = tokio::spawn(tillsyn_collector::background::run(
        store.clone(),
        config.rules.clone(),
        config.background_period,
    ));
    let web = tillsyn_collector::web::start(dir, store.clone(), &config, web_addr).await?;
    if let Some(web) = &web {
        tracing::info!(bound = %web.addr, "web interface listening");
        // Scripts and tests wait for this line too.
        println!("web interface on {}", web.settings.public_url);
    }
    let state = ServerState { store, ca, config };
    server::serve(dir, state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    evaluator.abort();
    if let Some(web) = web {
        web.task.abort();
    }
    Ok(())
}
