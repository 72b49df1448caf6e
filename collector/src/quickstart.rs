//! `quickstart`: the newcomer's first command. In one working directory it creates a CA and an
//! SQLite database, starts a collector on loopback, enrolls a local agent over the network,
//! inventories this machine, stores it and prints what was found. Re-running reuses the
//! directory and the enrolled agent. It also makes the web interface's first coordinator and
//! prints the URL and that account's one-time enrolment link; with `--web` it then keeps
//! serving, web interface included (without, it finishes, and says the command that serves).

use std::fmt::Write as _;
use std::sync::Arc;

use tillsyn_agent::enroll::{self, EnrollOptions};
use tillsyn_agent::run::{self, RunOptions};
use tillsyn_agent::state::AgentDir;
use tokio::net::TcpListener;

use crate::admin::{self, AdminError};
use crate::ca::CertificateAuthority;
use crate::compliance::{self, FindingFilter, FindingFormat};
use crate::config::CollectorDir;
use crate::server::{self, ServerState};

/// The sample register (Swedish headers, `;`-separated) shipped in `deploy/examples/`; the
/// `patientjournal` system links the quickstart agent through its `source=quickstart` label.
const SAMPLE_REGISTER: &str = include_str!("../../deploy/examples/system-register.csv");

/// Errors of the quickstart, each saying which step failed.
#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    /// Set-up of the collector.
    #[error("setting up the collector: {0}")]
    Admin(#[from] AdminError),
    /// Binding the loopback port.
    #[error("binding 127.0.0.1: {0}")]
    Bind(std::io::Error),
    /// The agent side.
    #[error("local agent: {0}")]
    Agent(String),
    /// The server stopped unexpectedly.
    #[error("collector: {0}")]
    Serve(String),
    /// The web interface could not start or the first account could not be made.
    #[error("web interface: {0}")]
    Web(String),
}

/// E-mail of the coordinator account the quickstart creates.
pub const COORDINATOR_EMAIL: &str = "samordnare@quickstart.invalid";

/// The quickstart, then serving agents and people until Ctrl-C. Prints as it goes, because
/// it does not return until the end.
pub async fn run_and_serve(
    dir: &CollectorDir,
    web: std::net::SocketAddr,
) -> Result<(), QuickstartError> {
    use std::io::Write as _;
    let report = run_with_web(dir, Some(web)).await?;
    print!("{report}");
    let config = dir.load_config().map_err(AdminError::from)?;
    let store = admin::open_store(dir).await?;
    let ca = Arc::new(CertificateAuthority::load(dir.root()).map_err(AdminError::from)?);
    let running = crate::web::start(dir, store.clone(), &config, Some(web))
        .await
        .map_err(|e| QuickstartError::Web(e.to_string()))?
        .ok_or_else(|| QuickstartError::Web("no listener".into()))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(QuickstartError::Bind)?;
    let mut out = format!(
        "
web interface: {url}
collector (agents): https://{grpc}
",
        url = running.settings.public_url,
        grpc = listener.local_addr().map_err(QuickstartError::Bind)?,
    );
    let _ = writeln!(out, "serving until Ctrl-C");
    print!("{out}");
    let _ = std::io::stdout().flush();
    let evaluator = tokio::spawn(crate::background::run(
        store.clone(),
        config.rules.clone(),
        std::time::Duration::from_secs(30),
    ));
    let state = ServerState { store, ca, config };
    let served = server::serve(dir, state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    evaluator.abort();
    running.task.abort();
    served.map_err(|e| QuickstartError::Serve(e.to_string()))
}

/// Runs the quickstart in `dir`; returns the text to print. It finishes: the web interface's
/// first coordinator is made and its enrolment link printed, with the command that serves it.
pub async fn run(dir: &CollectorDir) -> Result<String, QuickstartError> {
    run_with_web(dir, None).await
}

/// The quickstart, with the first coordinator's enrolment link pointing at `web` (else at
/// `[web]` or its default address).
async fn run_with_web(
    dir: &CollectorDir,
    web: Option<std::net::SocketAddr>,
) -> Result<String, QuickstartError> {
    let mut out = String::new();
    if dir.is_initialised() {
        let _ = writeln!(out, "using existing collector in {}", dir.root().display());
    } else {
        let _ = writeln!(out, "{}", admin::init(dir, &[]).await?);
    }
    let config = dir.load_config().map_err(AdminError::from)?;
    let store = admin::open_store(dir).await?;
    let ca = Arc::new(CertificateAuthority::load(dir.root()).map_err(AdminError::from)?);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(QuickstartError::Bind)?;
    let addr = listener.local_addr().map_err(QuickstartError::Bind)?;
    let url = format!("https://127.0.0.1:{}", addr.port());
    let _ = writeln!(out, "collector listening on {url} (mutual TLS)");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = ServerState {
        store: store.clone(),
        ca,
        config,
    };
    let server_dir = dir.clone();
    let server = tokio::spawn(async move {
        server::serve(&server_dir, state, listener, async {
            let _ = stopped.await;
        })
        .await
    });

    let result = enroll_and_report(dir, store.as_ref(), &url, &mut out).await;
    let _ = stop.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(QuickstartError::Serve(e.to_string())),
        Err(e) => return Err(QuickstartError::Serve(e.to_string())),
    }
    result?;
    let settings = crate::web::settings_for(&dir.load_config().map_err(AdminError::from)?, web)
        .map_err(|e| QuickstartError::Web(e.to_string()))?;
    first_coordinator(dir, store.as_ref(), &settings, web.is_none(), &mut out).await?;
    Ok(out)
}

/// Makes the first coordinator account unless it exists, and says how to sign in.
async fn first_coordinator(
    dir: &CollectorDir,
    store: &dyn crate::store::Store,
    settings: &crate::web::WebSettings,
    say_how_to_serve: bool,
    out: &mut String,
) -> Result<(), QuickstartError> {
    let root = dir.root().display();
    let _ = writeln!(
        out,
        "
web interface: {}",
        settings.public_url
    );
    if say_how_to_serve {
        let _ = writeln!(
            out,
            "  served by: tillsyn-collector --dir {root} quickstart --web {}   (until Ctrl-C)",
            settings.listen
        );
    }
    let existing = store
        .user_by_email(COORDINATOR_EMAIL)
        .await
        .map_err(AdminError::from)?;
    if existing.is_some() {
        let _ = writeln!(
            out,
            "coordinator {COORDINATOR_EMAIL} exists already: sign in with its password and TOTP code, or
             follow the enrolment link printed when it was made (another account:
             tillsyn-collector --dir {root} user add --email E --name N --role coordinator)"
        );
        return Ok(());
    }
    let link = crate::web::users::add(
        store,
        settings,
        COORDINATOR_EMAIL,
        "Samordnare (quickstart)",
        "coordinator",
        &admin::actor(),
    )
    .await
    .map_err(|e| QuickstartError::Web(e.to_string()))?;
    let _ = writeln!(
        out,
        "first coordinator: {COORDINATOR_EMAIL}
         open this link once to choose a password and add the TOTP key to an authenticator
         app (the certificate is the collector's own: trust {} or accept it in the browser):
{}",
        dir.ca_cert_path().display(),
        link.lines().last().unwrap_or_default()
    );
    Ok(())
}

async fn enroll_and_report(
    dir: &CollectorDir,
    store: &dyn crate::store::Store,
    url: &str,
    out: &mut String,
) -> Result<(), QuickstartError> {
    let agent_dir = AgentDir::new(dir.root().join("agent"));
    let agent_err = |e: &dyn std::fmt::Display| QuickstartError::Agent(e.to_string());
    if let Ok(mut config) = agent_dir.load_config() {
        // The collector port changes between runs; the enrollment stays valid.
        config.collector = url.to_string();
        agent_dir.save_config(&config).map_err(|e| agent_err(&e))?;
        let _ = writeln!(out, "reusing enrolled agent {}", config.agent_id);
    } else {
        let token_text = admin::create_token(dir, store, Some(time::Duration::minutes(10))).await?;
        let token = token_text.lines().last().unwrap_or_default().to_string();
        let options = EnrollOptions {
            collector: url.to_string(),
            token,
            ca_pem: dir.read(&dir.ca_cert_path()).map_err(|e| agent_err(&e))?,
            // `tillsyn=collector` links this host to the built-in `tillsyn` system (K3).
            labels: [
                ("source".to_string(), "quickstart".to_string()),
                (
                    crate::builtin::LABEL_KEY.to_string(),
                    crate::builtin::LABEL_VALUE.to_string(),
                ),
            ]
            .into(),
            interval_seconds: 3600,
            force: true,
            root: "/".into(),
        };
        let agent_id = match enroll::enroll(&agent_dir, &options)
            .await
            .map_err(|e| agent_err(&e))?
        {
            enroll::EnrollOutcome::Enrolled(id) | enroll::EnrollOutcome::AlreadyEnrolled(id) => id,
        };
        let _ = writeln!(out, "enrolled local agent {agent_id} with a one-time token");
    }
    let options = RunOptions {
        once: true,
        root: "/".into(),
    };
    let response = run::report_once(&agent_dir, &options)
        .await
        .map_err(|e| agent_err(&e))?;
    let _ = writeln!(
        out,
        "inventoried this machine and stored it as asset {}\n",
        response.asset_id
    );
    let assets = admin::list_assets(store, crate::output::ExportFormat::Table).await?;
    let _ = writeln!(out, "{assets}\n");
    for asset in store.assets().await.map_err(AdminError::from)? {
        for control in &asset.controls {
            let line = format!(
                "{} {}: {} ({})",
                asset.hostname, control.name, control.state, control.reason
            );
            let _ = writeln!(out, "{}", crate::output::terminal(&line));
        }
    }
    let register = dir.root().join("system-register.csv");
    if !register.exists() {
        std::fs::write(&register, SAMPLE_REGISTER)
            .map_err(|e| agent_err(&format!("{}: {e}", register.display())))?;
    }
    let imported = compliance::import(dir, store, &register)
        .await
        .map_err(|e| agent_err(&e))?;
    let _ = writeln!(out, "\nsample system register: {imported}\n");
    let findings =
        compliance::findings(dir, store, &FindingFilter::default(), FindingFormat::Table)
            .await
            .map_err(|e| agent_err(&e))?;
    let _ = writeln!(out, "{findings}");
    // Each system's standing in the three states: compliant only on evidence.
    let systems = compliance::systems(dir, store, crate::output::ExportFormat::Table)
        .await
        .map_err(|e| agent_err(&e))?;
    let _ = writeln!(out, "\n{systems}");
    let root = dir.root().display();
    let _ = writeln!(
        out,
        "\nnext:\n  tillsyn-collector --dir {root} findings --format json    every finding with its evidence\n  \
         tillsyn-collector --dir {root} systems access patientjournal   who can log in, with which privilege\n  \
         tillsyn-collector --dir {root} report > review.html     the management review (Swedish; --lang en)"
    );
    Ok(())
}
