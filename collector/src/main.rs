//! `tillsyn-collector`: parses arguments, sets up logging, and hands over to the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tillsyn_agent::telemetry::{self, LogFormat};
use tillsyn_collector::admin;
use tillsyn_collector::ca::CertificateAuthority;
use tillsyn_collector::config::CollectorDir;
use tillsyn_collector::output::Format;
use tillsyn_collector::quickstart;
use tillsyn_collector::server::{self, ServerState};

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
    },
    /// Everything at once on this machine: collector, local agent, inventory, results.
    Quickstart,
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Enrolled agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Stored assets with their controls.
    Assets {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a single-use token; it is printed alone on the last line.
    Create {
        /// Lifetime, e.g. 90s, 15m, 2h, 7d (default from collector.toml).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<time::Duration>,
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
    /// Revoke an agent: its certificate is refused from the next call on.
    Revoke {
        /// The agent id.
        agent_id: String,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
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
    let default_dir = if matches!(cli.command, Command::Quickstart) {
        "tillsyn-quickstart"
    } else {
        "/var/lib/tillsyn-collector"
    };
    let dir = CollectorDir::new(cli.dir.unwrap_or_else(|| PathBuf::from(default_dir)));
    match cli.command {
        Command::Init { server_names } => println!("{}", admin::init(&dir, &server_names).await?),
        Command::Serve { listen } => serve(&dir, listen).await?,
        Command::Quickstart => print!("{}", quickstart::run(&dir).await?),
        Command::Token { command: TokenCommand::Create { ttl } } => {
            let store = admin::open_store(&dir).await?;
            println!("{}", admin::create_token(&dir, store.as_ref(), ttl).await?);
        }
        Command::Agent { command } => {
            let store = admin::open_store(&dir).await?;
            let text = match command {
                AgentCommand::List { format } => admin::list_agents(store.as_ref(), format).await?,
                AgentCommand::Revoke { agent_id, reason } => {
                    admin::revoke_agent(store.as_ref(), &agent_id, &reason).await?
                }
            };
            println!("{text}");
        }
        Command::Assets { format } => {
            let store = admin::open_store(&dir).await?;
            println!("{}", admin::list_assets(store.as_ref(), format).await?);
        }
    }
    Ok(())
}

async fn serve(dir: &CollectorDir, listen: Option<String>) -> anyhow::Result<()> {
    let config = dir.load_config()?;
    let addr = match listen {
        Some(raw) => raw.parse().with_context(|| format!("--listen {raw:?}: not an address like 127.0.0.1:7443"))?,
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
    let state = ServerState { store, ca, config };
    server::serve(dir, state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    Ok(())
}
