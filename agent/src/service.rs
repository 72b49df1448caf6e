//! The agent as a Windows service (Windows builds only): `service install` registers it with
//! the Service Control Manager (SCM) and restricts the state directory, `service uninstall`
//! stops and removes it, and `service run` is the command line the SCM starts, which hands
//! the reporting loop ([`crate::run::run`]) to the SCM's dispatcher and stops it cleanly on
//! the SCM's Stop or Shutdown control. The SCM bindings are the `windows-service` crate's; no
//! `unsafe` is written here (the workspace forbids it).
//!
//! The service runs as LocalSystem, starts automatically, and takes its state directory from
//! its command line (`--dir DIR service run`), so nothing is read from the SCM's start
//! arguments. At start it enrolls from `%ProgramData%\Tillsyn\agent.env` when not enrolled
//! yet (as the systemd unit does). Its log goes to `service.log` in the state directory (stderr goes nowhere under
//! the SCM), rotated once to `service.log.1` at start when it has grown past 8 MiB.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use crate::enroll::{self, EnrollArgs, EnrollError, EnrollOutcome};
use crate::run::{self, OnceOptions, RunOptions};
use crate::state::{AgentDir, StateError};
use crate::telemetry::LogFormat;

/// The service's key name under `HKLM\SYSTEM\CurrentControlSet\Services` (`sc.exe` and the
/// .msi's ServiceInstall use the same).
pub const SERVICE_NAME: &str = "tillsyn-agent";
/// The name the Services console shows.
const DISPLAY_NAME: &str = "Tillsyn agent";
const DESCRIPTION: &str =
    "Inventories this host and reports to a Tillsyn collector over mutual TLS.";
/// `service.log` is rotated at start past this size, bytes.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;
/// How long `uninstall` waits for a running service to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Win32 `ERROR_SERVICE_EXISTS`.
const ERROR_SERVICE_EXISTS: i32 = 1073;
/// Win32 `ERROR_SERVICE_DOES_NOT_EXIST`.
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
/// Win32 `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT`: `service run` started from a console.
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
/// The service-specific exit code the SCM records when the loop stopped on an error (the
/// error itself is in `service.log`).
const EXIT_ON_ERROR: u32 = 1;
/// The service-specific exit code of a service that found itself not enrolled and had no
/// settings to enroll with.
const EXIT_NOT_ENROLLED: u32 = 2;
/// Seconds between reports written by an enrollment at start (`enroll --interval`'s default).
const DEFAULT_INTERVAL_SECONDS: u64 = 3600;

/// Errors of installing, removing or running the service; each says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An SCM call failed; `detail` carries the Win32 error.
    #[error("{action}: {detail}")]
    Scm {
        /// What was being done, e.g. "create the service tillsyn-agent".
        action: String,
        /// The crate's error with the OS error it wraps.
        detail: String,
    },
    /// The state directory could not be created or restricted.
    #[error(transparent)]
    State(#[from] StateError),
    /// `service run` was started from a console instead of by the SCM.
    #[error(
        "`service run` is what the Service Control Manager starts; in a console use `run`, or \
         start the service with `sc.exe start {SERVICE_NAME}`"
    )]
    NotUnderScm,
    /// The service did not reach the stopped state in time.
    #[error("the service {SERVICE_NAME} did not stop within {} s", STOP_TIMEOUT.as_secs())]
    StopTimeout,
    /// The service log could not be opened.
    #[error("{path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What `service install` registers.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// The agent's state directory, passed to the service as `--dir`.
    pub dir: PathBuf,
    /// The binary the SCM starts (normally the running one).
    pub executable: PathBuf,
}

/// What `install` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    /// The service was created.
    Created,
    /// It existed; its binary, arguments and start type were set anew (an upgrade).
    Updated,
}

/// What `uninstall` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uninstalled {
    /// The service was stopped if it ran, then deleted.
    Removed,
    /// There was no such service.
    NotInstalled,
}

/// The service's command line after the binary: the state directory, then `service run`.
pub fn launch_arguments(dir: &Path) -> Vec<OsString> {
    vec![
        "--dir".into(),
        dir.as_os_str().to_owned(),
        "service".into(),
        "run".into(),
    ]
}

/// Creates (or updates) the service and restricts the state directory, and its parent when
/// that is `%ProgramData%\Tillsyn` (the environment file with the token lives there), to
/// SYSTEM and Administrators. The service is not started (`sc.exe start tillsyn-agent`).
pub fn install(options: &InstallOptions) -> Result<Installed, ServiceError> {
    AgentDir::new(&options.dir).create()?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: options.executable.clone(),
        launch_arguments: launch_arguments(&options.dir),
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(scm("open the Service Control Manager"))?;
    let (service, outcome) = match manager.create_service(&info, ServiceAccess::CHANGE_CONFIG) {
        Ok(service) => (service, Installed::Created),
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_SERVICE_EXISTS) =>
        {
            let service = manager
                .open_service(SERVICE_NAME, ServiceAccess::CHANGE_CONFIG)
                .map_err(scm(&format!("open the service {SERVICE_NAME}")))?;
            service
                .change_config(&info)
                .map_err(scm(&format!("update the service {SERVICE_NAME}")))?;
            (service, Installed::Updated)
        }
        Err(e) => return Err(scm(&format!("create the service {SERVICE_NAME}"))(e)),
    };
    service
        .set_description(DESCRIPTION)
        .map_err(scm(&format!("describe the service {SERVICE_NAME}")))?;
    Ok(outcome)
}

/// Stops the service if it runs (waiting up to 30 s) and deletes it. The state directory
/// (identity, spool) is kept: a reinstall goes on as the same agent.
pub fn uninstall() -> Result<Uninstalled, ServiceError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(scm("open the Service Control Manager"))?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    let service = match manager.open_service(SERVICE_NAME, access) {
        Ok(service) => service,
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST) =>
        {
            return Ok(Uninstalled::NotInstalled);
        }
        Err(e) => return Err(scm(&format!("open the service {SERVICE_NAME}"))(e)),
    };
    let query = || {
        service
            .query_status()
            .map_err(scm(&format!("query the service {SERVICE_NAME}")))
    };
    if query()?.current_state != ServiceState::Stopped {
        // A stop that races the service's own exit fails harmlessly; the wait below decides.
        if let Err(error) = service.stop() {
            tracing::debug!(%error, "stop control");
        }
        let started = Instant::now();
        while query()?.current_state != ServiceState::Stopped {
            if started.elapsed() > STOP_TIMEOUT {
                return Err(ServiceError::StopTimeout);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    service
        .delete()
        .map_err(scm(&format!("delete the service {SERVICE_NAME}")))?;
    Ok(Uninstalled::Removed)
}

/// The state directory of this process's service, set once before the dispatcher starts: the
/// SCM calls [`ffi_service_main`] with no way to pass it.
static SERVICE_DIR: OnceLock<(PathBuf, LogFormat)> = OnceLock::new();

/// Connects to the SCM and runs the service until it is stopped; blocks this thread. Must be
/// called outside any async runtime (the service builds its own).
pub fn run_dispatcher(dir: &Path, log_format: LogFormat) -> Result<(), ServiceError> {
    let _ = SERVICE_DIR.set((dir.to_path_buf(), log_format));
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => Ok(()),
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            Err(ServiceError::NotUnderScm)
        }
        Err(e) => Err(scm("connect to the Service Control Manager")(e)),
    }
}

/// The entry point the SCM calls on its own thread. The start arguments (`argc`, `argv`) are
/// not read: everything comes from the service's command line, so no raw pointer is touched.
extern "system" fn ffi_service_main(_argc: u32, _argv: *mut *mut u16) {
    let Some((dir, log_format)) = SERVICE_DIR.get() else {
        return;
    };
    let dir = AgentDir::new(dir);
    // Without the log file the service still runs; its log lines are lost (stderr goes
    // nowhere under the SCM), its exit code is still reported.
    let _ = init_log(&dir, *log_format);
    if let Err(error) = serve(&dir) {
        tracing::error!(%error, "the service could not run");
    }
}

/// Opens `service.log` (rotating it first when it is large) as the log's destination.
fn init_log(dir: &AgentDir, format: LogFormat) -> Result<(), ServiceError> {
    let path = dir.root().join("service.log");
    let log_error = |source| ServiceError::Log {
        path: path.clone(),
        source,
    };
    // Created with its ACL (SYSTEM and Administrators) before the first line is written.
    dir.create()?;
    if fs::metadata(&path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        fs::rename(&path, path.with_extension("log.1")).map_err(log_error)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(log_error)?;
    crate::telemetry::init_writer(format, Mutex::new(file));
    Ok(())
}

/// Registers the control handler, reports Running, runs the loop until Stop or Shutdown, and
/// reports Stopped with exit code 0, or the service-specific code 1 when the loop failed.
fn serve(dir: &AgentDir) -> Result<(), ServiceError> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(SERVICE_NAME, handler)
        .map_err(scm("register the service control handler"))?;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            set_status(
                status,
                ServiceState::Stopped,
                ServiceExitCode::ServiceSpecific(EXIT_ON_ERROR),
            );
            return Err(ServiceError::Runtime(e));
        }
    };
    // As the systemd unit's `ExecStartPre=-tillsyn-agent enroll`: an image that carries
    // agent.env enrolls at its first start, a copied state directory is enrolled anew, and an
    // agent with neither stops here, once, with what to do (no failure actions: no loop).
    if let Err(error) = runtime.block_on(enroll_if_needed(dir)) {
        tracing::error!(%error, "not enrolled; the service stops");
        set_status(
            status,
            ServiceState::Stopped,
            ServiceExitCode::ServiceSpecific(EXIT_NOT_ENROLLED),
        );
        return Ok(());
    }
    set_status(status, ServiceState::Running, ServiceExitCode::Win32(0));
    tracing::info!(dir = %dir.root().display(), "service started");
    let shutdown = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tracing::info!("stop requested by the Service Control Manager");
        set_status(status, ServiceState::StopPending, ServiceExitCode::Win32(0));
    };
    let options = RunOptions {
        once: false,
        root: PathBuf::from("/"),
    };
    let result = runtime.block_on(run::run(dir, &options, &OnceOptions::default(), shutdown));
    let exit = match &result {
        Ok(()) => {
            tracing::info!("service stopped");
            ServiceExitCode::Win32(0)
        }
        Err(error) => {
            tracing::error!(%error, "the reporting loop stopped");
            ServiceExitCode::ServiceSpecific(EXIT_ON_ERROR)
        }
    };
    // Outstanding tasks (a report in flight) are dropped; the spool keeps what was not sent.
    runtime.shutdown_timeout(Duration::from_secs(5));
    set_status(status, ServiceState::Stopped, exit);
    Ok(())
}

/// Enrolls from `%ProgramData%\Tillsyn\agent.env` (or the environment) unless this host is
/// enrolled already with an unexpired certificate.
async fn enroll_if_needed(dir: &AgentDir) -> Result<(), EnrollError> {
    let root = Path::new("/");
    if enroll::current_enrollment(dir, root).is_some() {
        return Ok(());
    }
    let args = EnrollArgs {
        interval_seconds: DEFAULT_INTERVAL_SECONDS,
        env_file: enroll::default_env_file(),
        root: root.to_path_buf(),
        ..EnrollArgs::default()
    };
    let options = enroll::resolve(&args)?;
    match enroll::enroll(dir, &options).await? {
        EnrollOutcome::Enrolled(agent_id) => {
            tracing::info!(%agent_id, env_file = %args.env_file.display(), "enrolled at start");
        }
        EnrollOutcome::AlreadyEnrolled(_) => {}
    }
    Ok(())
}

/// Tells the SCM the service's state; a failure is logged (the SCM then sees the process end).
fn set_status(handle: ServiceStatusHandle, state: ServiceState, exit_code: ServiceExitCode) {
    let controls_accepted = if state == ServiceState::Running {
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
    } else {
        ServiceControlAccept::empty()
    };
    let wait_hint = if state == ServiceState::StopPending {
        Duration::from_secs(10)
    } else {
        Duration::default()
    };
    let status = ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted,
        exit_code,
        checkpoint: 0,
        wait_hint,
        process_id: None,
    };
    if let Err(error) = handle.set_service_status(status) {
        tracing::warn!(%error, ?state, "cannot report the service status");
    }
}

/// Maps the crate's error to [`ServiceError::Scm`], keeping the Win32 error it wraps.
fn scm(action: &str) -> impl Fn(windows_service::Error) -> ServiceError + '_ {
    move |error| {
        let detail = match std::error::Error::source(&error) {
            Some(inner) => format!("{error}: {inner}"),
            None => error.to_string(),
        };
        ServiceError::Scm {
            action: action.to_string(),
            detail,
        }
    }
}
