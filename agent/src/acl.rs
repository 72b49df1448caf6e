//! The Windows ACL of the agent's state directory: SYSTEM and Administrators only, so that no
//! other local user can read the private key, the certificates or the enrollment token. This
//! module owns the `icacls` argument lists and running them; what the directory holds is
//! [`crate::state`]'s.
//!
//! Why `icacls` and not a crate: setting a DACL through the Win32 security API needs `unsafe`
//! in this crate (the `windows`/`windows-sys` bindings), which the workspace forbids, and the
//! safe wrappers on crates.io (`windows-acl`, `windows-permissions`) are unmaintained since
//! 2021 and pull in `winapi`. `icacls.exe` ships with every Windows since Server 2003 SP2 and
//! applies inheritance to the children itself. It is run by its full path under
//! `%SystemRoot%\System32` (never looked up on `PATH`, which an unprivileged user may extend)
//! with a fixed argument list, no shell. The principals are given as SIDs because their names
//! are localised (Swedish Windows calls the group "Administratörer"):
//! - `S-1-5-18`: LocalSystem, the account the service runs as;
//! - `S-1-5-32-544`: BUILTIN\Administrators.
//!
//! Two calls: `/reset /T` first drops explicit entries anywhere below (a directory that
//! existed before, or a file someone granted to another user), then `/inheritance:r` removes
//! what the directory inherits from `%ProgramData%` (its `Users` read and create entries) and
//! `/grant:r` leaves full control to the two SIDs, inherited by every file and directory inside
//! (`(OI)(CI)`). The owner is left as it is (the administrator or SYSTEM that created it).

use std::ffi::OsString;
use std::path::Path;

/// LocalSystem's SID, `*` marking it as a SID for `icacls`, with full control inherited by
/// files (`OI`) and directories (`CI`).
const SYSTEM_FULL: &str = "*S-1-5-18:(OI)(CI)F";
/// BUILTIN\Administrators' SID, same rights.
const ADMINISTRATORS_FULL: &str = "*S-1-5-32-544:(OI)(CI)F";

/// The two `icacls` argument lists, in order: reset what is below `dir` to inherited entries,
/// then cut inheritance and grant SYSTEM and Administrators alone. `/Q` keeps `icacls` from
/// printing a line per file on stdout (which `enroll` uses for its own answer).
#[cfg_attr(not(windows), allow(dead_code))] // run on Windows only; unit-tested everywhere
pub(crate) fn icacls_arguments(dir: &Path) -> [Vec<OsString>; 2] {
    let dir = OsString::from(dir);
    [
        vec![dir.clone(), "/reset".into(), "/T".into(), "/Q".into()],
        vec![
            dir,
            "/inheritance:r".into(),
            "/grant:r".into(),
            SYSTEM_FULL.into(),
            ADMINISTRATORS_FULL.into(),
            "/Q".into(),
        ],
    ]
}

/// Gives `dir` (which must exist) the SYSTEM + Administrators ACL; the error names the
/// directory and what `icacls` said.
#[cfg(windows)]
pub(crate) fn restrict(dir: &Path) -> std::io::Result<()> {
    let system_root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    let icacls = Path::new(&system_root).join("System32").join("icacls.exe");
    for arguments in icacls_arguments(dir) {
        let output = std::process::Command::new(&icacls)
            .args(&arguments)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", icacls.display())))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            let said = if said.trim().is_empty() {
                String::from_utf8_lossy(&output.stdout)
            } else {
                said
            };
            return Err(std::io::Error::other(format!(
                "{} {} exited with {}: {}",
                icacls.display(),
                arguments[1..]
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                output.status,
                said.trim()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_is_reset_then_cut_to_system_and_administrators_by_sid() {
        let [reset, grant] = icacls_arguments(Path::new(r"C:\ProgramData\Tillsyn"));
        let text = |args: &[OsString]| {
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(&reset),
            [r"C:\ProgramData\Tillsyn", "/reset", "/T", "/Q"]
        );
        assert_eq!(
            text(&grant),
            [
                r"C:\ProgramData\Tillsyn",
                "/inheritance:r",
                "/grant:r",
                "*S-1-5-18:(OI)(CI)F",
                "*S-1-5-32-544:(OI)(CI)F",
                "/Q"
            ]
        );
    }
}
