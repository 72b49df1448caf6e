//! `tillsyn-agent`: parses arguments, sets up logging, and hands over to the library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tillsyn_agent::discovery;
use tillsyn_agent::enroll::{self, EnrollArgs, EnrollOutcome};
use tillsyn_agent::inventory;
use tillsyn_agent::run::{self, OnceOptions, RunOptions};
use tillsyn_agent::state::AgentDir;
use tillsyn_agent::telemetry::{self, LogFormat};

/// Tillsyn agent: inventories this host and reports to a collector over mutual TLS.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// State directory: config, key, certificates, spool.
    /// (Default: /var/lib/tillsyn-agent; on Windows %ProgramData%\Tillsyn\agent.)
    #[arg(long, global = true, default_value_os_t = tillsyn_agent::state::default_dir(), env = "TILLSYN_AGENT_DIR")]
    dir: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll with a collector using a token; does nothing when this host is enrolled already.
    /// Settings not given as flags come from TILLSYN_COLLECTOR, TILLSYN_ENROLL_TOKEN, TILLSYN_CA
    /// (a file or the PEM) and TILLSYN_LABELS in the environment or the --env-file.
    Enroll {
        /// Collector URL, e.g. https://collector.example:7443 (else TILLSYN_COLLECTOR).
        #[arg(long)]
        collector: Option<String>,
        /// Token from `tillsyn-collector token create` (else TILLSYN_ENROLL_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// The collector's CA certificate: its `ca.pem`, or the PEM text (else TILLSYN_CA).
        #[arg(long)]
        ca: Option<String>,
        /// Labels as KEY=VALUE, repeatable (used by system link rules; labels set on the
        /// token by the collector win over these).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Seconds between reports in `run` mode.
        #[arg(long, default_value_t = 3600)]
        interval: u64,
        /// Enroll again even if this host is enrolled already.
        #[arg(long)]
        force: bool,
        /// Environment file with the TILLSYN_* settings (systemd EnvironmentFile syntax).
        /// (Default: /etc/default/tillsyn-agent; on Windows %ProgramData%\Tillsyn\agent.env.)
        #[arg(long, env = "TILLSYN_ENV_FILE", default_value_os_t = enroll::default_env_file())]
        env_file: PathBuf,
        /// Read the machine identity from this root instead of `/` (fixture trees in tests).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Renew the agent certificate now (`run` renews by itself at two thirds of its lifetime).
    Renew {
        /// Read the machine identity from this root instead of `/`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Report to the collector on an interval.
    Run {
        /// Spool one report, send everything spooled, exit 0 once all is acknowledged.
        #[arg(long)]
        once: bool,
        /// Read facts from this root instead of `/` (fixture trees in tests).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// With --once: collect and spool N inventories in a row, sending as it goes (load and
        /// fault tests).
        #[arg(long, default_value_t = 1, requires = "once", value_parser = clap::value_parser!(u32).range(1..))]
        reports: u32,
        /// With --once: keep retrying for this many seconds while the collector is unavailable
        /// (0 = one attempt; the reports stay spooled either way).
        #[arg(long, default_value_t = 0, requires = "once")]
        retry_for: u64,
        /// With --once: first pull scheduled jobs from the collector, waiting up to this many
        /// seconds; pulled jobs run instead of the plain inventory.
        #[arg(long, requires = "once")]
        jobs: Option<u64>,
    },
    /// Discover devices on the network with read-only probes (rate-capped, OT-safe).
    Discover(Box<DiscoverArgs>),
    /// Windows: the agent as a Windows service (LocalSystem, automatic start).
    #[cfg(windows)]
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print this host's inventory; needs no collector.
    Inventory {
        /// Print JSON (the only format so far).
        #[arg(long)]
        json: bool,
        /// Read facts from this root instead of `/`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
}

/// `service` subcommands (Windows).
#[cfg(windows)]
#[derive(Subcommand)]
enum ServiceCommand {
    /// Register the service (or update it) with --dir as its state directory, and restrict
    /// that directory to SYSTEM and Administrators. Does not start it.
    Install,
    /// Stop the service if it runs and remove it; the state directory is kept.
    Uninstall,
    /// What the Service Control Manager starts: the reporting loop until the service is stopped.
    Run,
}

/// `discover` arguments; validated by `discovery::Config::from_options`.
// Independent command-line switches, not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(clap::Args)]
struct DiscoverArgs {
    /// Addresses or CIDRs to sweep, comma-separated (IPv4).
    #[arg(long)]
    target: String,
    /// Addresses or CIDRs never to touch, comma-separated.
    #[arg(long, default_value = "")]
    exclude: String,
    /// Ports as PORT or PORT/PROTOCOL (e.g. 15020/modbus), comma-separated; default: every
    /// registered protocol's well-known port.
    #[arg(long)]
    ports: Option<String>,
    /// Global cap, packets per second (a TCP connect counts as one).
    #[arg(long, default_value_t = 100)]
    pps: u32,
    /// Cap per host, packets per second.
    #[arg(long, default_value_t = 10)]
    per_host_pps: u32,
    /// Timeout per connect, send or reply, milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Largest reply read from a device, bytes.
    #[arg(long, default_value_t = 65536)]
    max_response: usize,
    /// Refuse targets larger than this prefix (default /16) unless --force.
    #[arg(long, default_value_t = 16)]
    max_prefix: u8,
    /// Sweep a target larger than --max-prefix.
    #[arg(long)]
    force: bool,
    /// Hosts probed at the same time (each host sees one probe at a time).
    #[arg(long, default_value_t = 64)]
    host_concurrency: usize,
    /// Modbus unit id to ask (one id, never swept; 0 is refused).
    #[arg(long, default_value_t = 255)]
    modbus_unit: u8,
    /// SNMP communities to try, comma-separated.
    #[arg(long, default_value = "public")]
    snmp_community: String,
    /// RTSP paths to DESCRIBE (does the stream demand credentials?), comma-separated, tried in
    /// order until one answers other than 404; at most 4.
    #[arg(long, default_value = "/")]
    rtsp_path: String,
    /// Print every request that would be sent, send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON (the only format so far).
    #[arg(long)]
    json: bool,
    /// Also send the devices to the collector (with this host's inventory) as `device` assets;
    /// needs an enrolled --dir.
    #[arg(long)]
    report: bool,
}

impl DiscoverArgs {
    fn options(&self) -> discovery::Options {
        let defaults = discovery::Options::default();
        discovery::Options {
            target: self.target.clone(),
            exclude: self.exclude.clone(),
            ports: self.ports.clone().unwrap_or(defaults.ports),
            pps: self.pps,
            per_host_pps: self.per_host_pps,
            timeout_ms: self.timeout_ms,
            max_response: self.max_response,
            max_prefix: self.max_prefix,
            force: self.force,
            host_concurrency: self.host_concurrency,
            settings: discovery::registry::ProbeSettings {
                modbus_unit: self.modbus_unit,
                snmp_communities: self
                    .snmp_community
                    .split(',')
                    .map(str::to_string)
                    .filter(|c| !c.is_empty())
                    .collect(),
                rtsp_paths: self
                    .rtsp_path
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
        }
    }
}

async fn discover(dir: &AgentDir, args: &DiscoverArgs) -> anyhow::Result<()> {
    if !args.json && !args.report {
        bail!("say --json (print the devices) and/or --report (send them to the collector)");
    }
    let config = discovery::Config::from_options(&args.options())?;
    if args.dry_run {
        let requests = discovery::dry_run(&config);
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "dry_run": true, "requests": requests })
            )?
        );
        return Ok(());
    }
    let report = discovery::run(config).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if args.report {
        let devices = report
            .devices
            .iter()
            .map(discovery::Device::to_proto)
            .collect();
        let answer = run::report_devices(dir, std::path::Path::new("/"), devices).await?;
        eprintln!(
            "{} device(s) reported with host asset {}",
            report.devices.len(),
            answer.asset_id
        );
    }
    Ok(())
}

fn parse_label(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label {raw:?} must look like KEY=VALUE"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The service's dispatcher blocks this thread and builds its own runtime on the SCM's.
    #[cfg(windows)]
    if let Command::Service(command) = &cli.command {
        return service(&cli, command);
    }
    telemetry::init(cli.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_command(cli))
}

#[cfg(windows)]
fn service(cli: &Cli, command: &ServiceCommand) -> anyhow::Result<()> {
    use tillsyn_agent::service::{self, InstallOptions, Installed, SERVICE_NAME, Uninstalled};
    // The SCM starts the service with this path in its command line: it must not depend on
    // the installer's working directory.
    let dir =
        std::path::absolute(&cli.dir).with_context(|| format!("--dir {}", cli.dir.display()))?;
    match command {
        ServiceCommand::Run => service::run_dispatcher(&dir, cli.log_format)?,
        ServiceCommand::Install => {
            telemetry::init(cli.log_format);
            let executable =
                std::env::current_exe().context("cannot find this program's own path")?;
            let options = InstallOptions { dir, executable };
            let what = match service::install(&options)? {
                Installed::Created => "installed",
                Installed::Updated => "updated",
            };
            println!(
                "service {SERVICE_NAME} {what}: {} --dir {} service run (LocalSystem, automatic \
                 start); {} is SYSTEM and Administrators only; start it with `sc.exe start {SERVICE_NAME}`",
                options.executable.display(),
                options.dir.display(),
                options.dir.display()
            );
        }
        ServiceCommand::Uninstall => {
            telemetry::init(cli.log_format);
            match service::uninstall()? {
                Uninstalled::Removed => println!(
                    "service {SERVICE_NAME} stopped and removed; the state directory {} is kept",
                    dir.display()
                ),
                Uninstalled::NotInstalled => {
                    println!("service {SERVICE_NAME} is not installed; nothing to do");
                }
            }
        }
    }
    Ok(())
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    let dir = AgentDir::new(&cli.dir);
    match cli.command {
        Command::Enroll {
            collector,
            token,
            ca,
            labels,
            interval,
            force,
            env_file,
            root,
        } => {
            let args = EnrollArgs {
                collector,
                token,
                ca,
                labels,
                interval_seconds: interval,
                force,
                env_file,
                root,
            };
            // Idempotent before anything else: an enrolled host needs no token or collector.
            let current = if force {
                None
            } else {
                enroll::current_enrollment(&dir, &args.root)
            };
            if let Some(agent_id) = current {
                println!(
                    "already enrolled as agent {agent_id} in {}; nothing to do (--force enrolls again)",
                    cli.dir.display()
                );
                return Ok(());
            }
            let options = enroll::resolve(&args)?;
            match enroll::enroll(&dir, &options).await? {
                EnrollOutcome::Enrolled(agent_id) => println!("enrolled as agent {agent_id}"),
                EnrollOutcome::AlreadyEnrolled(agent_id) => println!(
                    "already enrolled as agent {agent_id} in {}; nothing to do (--force enrolls again)",
                    cli.dir.display()
                ),
            }
        }
        Command::Renew { root } => {
            let times = tillsyn_agent::renew::renew(&dir, &root).await?;
            println!(
                "certificate renewed; valid until {}",
                tillsyn_agent::renew::format_ms(times.not_after_ms)
            );
        }
        Command::Run {
            once,
            root,
            reports,
            retry_for,
            jobs,
        } => {
            let options = RunOptions { once, root };
            let once_options = OnceOptions {
                reports,
                retry_for: Duration::from_secs(retry_for),
                jobs_wait: jobs.map(Duration::from_secs),
            };
            run::run(&dir, &options, &once_options, shutdown_signal()).await?;
        }
        Command::Discover(args) => discover(&dir, &args).await?,
        #[cfg(windows)]
        Command::Service(_) => bail!("service commands are handled before the runtime starts"),
        Command::Inventory { json, root } => {
            if !json {
                bail!("only --json output exists so far");
            }
            if !root.is_dir() {
                bail!("--root {}: not a directory", root.display());
            }
            let inventory = tokio::task::spawn_blocking(move || inventory::collect(&root))
                .await
                .context("inventory task")?;
            println!("{}", serde_json::to_string_pretty(&inventory)?);
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    // If the handler cannot be installed the agent still stops on SIGKILL; log and wait forever.
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}
