//! Offline registry hive files, as Windows keeps them on disk: `HKLM\SYSTEM` in
//! `DIR/Windows/System32/config/SYSTEM` and `HKLM\SOFTWARE` in `.../SOFTWARE` under
//! `--root DIR` ([`HIVE_DIR`], [`HIVES`]), read through [`HiveSource`], a
//! [`RegistrySource`] like the export and live ones, so every collector reads hives unchanged.
//!
//! The format (regf: a 4 KiB base block, then hive bins of cells holding key nodes, value
//! lists, values and data) is parsed by the `regf` crate, chosen because it is MIT-licensed,
//! parses an in-memory buffer (the caller reads the file with a size cap; nothing is
//! memory-mapped) and brings no dependency that the workspace did not already have. `nt-hive`
//! and `nt_hive2` are GPL, `winreg-core` memory-maps and pulls binrw, jiff and miette,
//! `frnsc-hive` pulls the forensic-rs framework, `notatin` a terminal UI library.
//!
//! `regf` checks the whole file when it is loaded, before any look-up: every bin header and
//! cell size, the key graph from the root (parents, sorted and hashed subkey lists, no cycles),
//! every value's data and the security descriptors' links. A truncated or corrupt hive is
//! therefore one [`HiveError`] naming the file, and the caller leaves the registry-based
//! controls `unknown`. A dirty hive (base block sequence numbers differ, or its checksum is
//! wrong: Windows' last writes are still in `SYSTEM.LOG1`/`.LOG2`) is refused too, because
//! those logs are not replayed here and the primary file alone may predate the settings.
//! Values are converted by [`Data::from_raw`], as live ones are, so a `REG_DWORD` of the wrong
//! size is an error naming the file, key and value; a value of the wrong type surfaces through
//! the typed look-ups of [`super::registry::Registry`].
//!
//! It never writes a hive, and reads no other hive (SAM, SECURITY, user hives).

use super::registry::{
    ALIAS, ControlSetAlias, Data, Key, RegistryError, RegistrySource, SELECT, Value, canonical_key,
    select_current,
};

/// Where the hives are under an offline root, as on the system drive.
pub const HIVE_DIR: &str = "/Windows/System32/config";

/// The hives read: file name under [`HIVE_DIR`] and the canonical key it is mounted at.
pub const HIVES: [(&str, &str); 2] = [("SYSTEM", "HKLM\\system"), ("SOFTWARE", "HKLM\\software")];

/// Largest hive accepted, in bytes. A busy server's SOFTWARE hive is ~100 MiB; the parser keeps
/// the file and its bins in memory (about twice the size), so the cap bounds what a hostile
/// file can make the agent allocate.
pub const MAX_HIVE_BYTES: usize = 256 * 1024 * 1024;

/// Why a hive file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HiveError {
    /// The bytes are not a complete, consistent hive (truncated, garbage, a bad cell).
    #[error("{file}: not a readable registry hive: {reason}")]
    Malformed {
        /// The hive file, as under the root.
        file: String,
        /// What the parser found.
        reason: String,
    },
    /// The hive's last writes are in its transaction logs, which are not replayed.
    #[error(
        "{file}: the hive is dirty (its base block's sequence numbers differ or its checksum is wrong: Windows' last writes are in the .LOG1/.LOG2 transaction logs, which are not replayed); copy it with `reg save` or from a cleanly shut down system"
    )]
    Dirty {
        /// The hive file, as under the root.
        file: String,
    },
}

/// One parsed hive file.
pub struct HiveFile {
    /// The file as named in evidence (`/Windows/System32/config/SYSTEM`).
    file: String,
    hive: regf::RegistryHive,
}

impl std::fmt::Debug for HiveFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // regf's hive has no Debug; its bytes would say nothing useful anyway.
        f.debug_struct("HiveFile")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl HiveFile {
    /// Parses and checks the whole hive in `bytes`, read from `file`.
    pub fn parse(file: &str, bytes: Vec<u8>) -> Result<HiveFile, HiveError> {
        let hive = regf::RegistryHive::from_bytes(bytes).map_err(|e| HiveError::Malformed {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        if hive.is_dirty() {
            return Err(HiveError::Dirty {
                file: file.to_string(),
            });
        }
        Ok(HiveFile {
            file: file.to_string(),
            hive,
        })
    }

    fn error(&self, path: &str, e: &regf::Error) -> RegistryError {
        RegistryError::Source {
            origin: self.file.clone(),
            message: format!("{path}: {e}"),
        }
    }

    /// The key at `rest` below the hive's root (`\`-separated, empty for the root).
    fn open(
        &self,
        rest: &str,
        path: &str,
    ) -> Result<Option<regf::hive::RegistryKey<'_>>, RegistryError> {
        match self.hive.open_key(rest) {
            Ok(key) => Ok(Some(key)),
            Err(regf::Error::KeyNotFound(_)) => Ok(None),
            Err(e) => Err(self.error(path, &e)),
        }
    }

    fn values(
        &self,
        key: &regf::hive::RegistryKey<'_>,
        path: &str,
    ) -> Result<Vec<Value>, RegistryError> {
        let entries = key.values().map_err(|e| self.error(path, &e))?;
        entries
            .iter()
            .map(|entry| {
                let name = entry.name();
                let raw = entry
                    .raw_data()
                    .map_err(|e| self.error(&format!("{path}\\{name}"), &e))?;
                let data = Data::from_raw(entry.raw_data_type(), raw).map_err(|message| {
                    RegistryError::Source {
                        origin: self.file.clone(),
                        message: format!("{path}\\{name}: {message}"),
                    }
                })?;
                Ok(Value {
                    name,
                    data,
                    line: 0,
                })
            })
            .collect()
    }
}

/// Offline registry data from hive files, each mounted at its `HKLM` key.
#[derive(Debug)]
pub struct HiveSource {
    /// Canonical mount key (`HKLM\system`) and its hive.
    hives: Vec<(String, HiveFile)>,
    /// Where the hives were found, for evidence on absent keys.
    directory: String,
    alias: ControlSetAlias,
}

impl HiveSource {
    /// A source over `hives`, each with the key it is mounted at (`HKLM\SYSTEM`, any case).
    pub fn new(directory: &str, hives: Vec<(String, HiveFile)>) -> HiveSource {
        let mut source = HiveSource {
            hives: hives
                .into_iter()
                .map(|(mount, hive)| (canonical_key(&mount), hive))
                .collect(),
            directory: directory.to_string(),
            alias: ControlSetAlias::default(),
        };
        // A hive on disk never holds the alias (the kernel links it at boot), but a hive
        // written by other tools might; the unresolved look-ups decide, as for exports.
        // Errors count as unset here; the same look-up fails again, named, when it matters.
        let has_alias = matches!(source.raw_key(ALIAS, ALIAS), Ok(Some(_)));
        let current = match source.raw_key(SELECT, SELECT) {
            Ok(Some(key)) => select_current(&key.values),
            _ => None,
        };
        source.alias = ControlSetAlias::new(has_alias, current);
        source
    }

    /// The hive holding the canonical `path`, and the path below its root.
    fn mounted<'p>(&self, path: &'p str) -> Option<(&HiveFile, &'p str)> {
        self.hives.iter().find_map(|(mount, hive)| {
            let rest = path.strip_prefix(mount.as_str())?;
            if rest.is_empty() {
                Some((hive, rest))
            } else {
                rest.strip_prefix('\\').map(|r| (hive, r))
            }
        })
    }

    /// The key at the canonical `path`, without resolving `CurrentControlSet`; errors name it
    /// as `shown`, the caller's spelling.
    fn raw_key(&self, path: &str, shown: &str) -> Result<Option<Key>, RegistryError> {
        let Some((hive, rest)) = self.mounted(path) else {
            return Ok(None);
        };
        let Some(key) = hive.open(rest, shown)? else {
            return Ok(None);
        };
        Ok(Some(Key {
            path: canonical_key(shown),
            values: hive.values(&key, shown)?,
            origin: hive.file.clone(),
        }))
    }
}

impl RegistrySource for HiveSource {
    fn key(&self, path: &str) -> Result<Option<Key>, RegistryError> {
        self.raw_key(&self.alias.resolve(&canonical_key(path)), path)
    }

    fn subkeys(&self, path: &str) -> Result<Vec<String>, RegistryError> {
        let canonical = self.alias.resolve(&canonical_key(path));
        let mut names = match self.mounted(&canonical) {
            Some((hive, rest)) => match hive.open(rest, path)? {
                Some(key) => key
                    .subkeys()
                    .map_err(|e| hive.error(path, &e))?
                    .iter()
                    .map(regf::hive::RegistryKey::name)
                    .collect(),
                None => Vec::new(),
            },
            // `HKLM` itself: the mounted hives, named as Windows names them.
            None if canonical == "HKLM" => HIVES
                .iter()
                .filter(|(_, mount)| self.hives.iter().any(|(m, _)| m == mount))
                .map(|(name, _)| (*name).to_string())
                .collect(),
            None => Vec::new(),
        };
        names.sort_by_key(|n| n.to_lowercase());
        Ok(names)
    }

    fn origin(&self) -> String {
        self.directory.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;
    use crate::inventory::windows::registry::Registry;
    use regf::{DataType, HiveBuilder};

    const FILE: &str = "/Windows/System32/config/SYSTEM";

    /// A SYSTEM hive written by regf's own writer (a third-party writer: this module only
    /// reads), with `Select\Current` 2 and a few values of each type under ControlSet002.
    fn system_hive() -> Vec<u8> {
        let mut b = HiveBuilder::new().unwrap();
        let root = b.root_offset();
        let select = b.add_key(root, "Select").unwrap();
        b.add_value(select, "Current", DataType::Dword, &2u32.to_le_bytes())
            .unwrap();
        let set = b.add_key(root, "ControlSet002").unwrap();
        let control = b.add_key(set, "Control").unwrap();
        let ts = b.add_key(control, "Terminal Server").unwrap();
        b.add_value(
            ts,
            "fDenyTSConnections",
            DataType::Dword,
            &1u32.to_le_bytes(),
        )
        .unwrap();
        b.add_value(ts, "Text", DataType::String, &utf16("RDP\0"))
            .unwrap();
        b.add_value(ts, "Path", DataType::ExpandString, &utf16("%SystemRoot%\0"))
            .unwrap();
        b.add_value(ts, "List", DataType::MultiString, &utf16("a\0b\0\0"))
            .unwrap();
        b.add_value(ts, "Big", DataType::Qword, &7u64.to_le_bytes())
            .unwrap();
        b.add_value(ts, "Blob", DataType::Binary, &[1, 2, 3])
            .unwrap();
        let bad = b.add_key(control, "Bad").unwrap();
        b.add_value(bad, "Short", DataType::Dword, &[1, 2]).unwrap();
        let services = b.add_key(set, "Services").unwrap();
        b.add_key(services, "WinRM").unwrap();
        b.add_key(services, "sshd").unwrap();
        b.to_bytes().unwrap()
    }

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn source(bytes: Vec<u8>) -> HiveSource {
        HiveSource::new(
            HIVE_DIR,
            vec![("HKLM\\SYSTEM".into(), HiveFile::parse(FILE, bytes).unwrap())],
        )
    }

    #[test]
    fn current_control_set_follows_select_and_values_keep_their_types() {
        let s = source(system_hive());
        let registry = Registry::new(&s, "test");
        let key = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server";
        let deny = registry.dword(key, "fdenytsconnections").unwrap().unwrap();
        assert_eq!(deny.value, 1);
        assert_eq!(deny.evidence.source, format!("{key}\\fDenyTSConnections"));
        assert_eq!(
            deny.evidence.detail,
            "REG_DWORD 1 (0x00000001) in /Windows/System32/config/SYSTEM"
        );
        assert_eq!(registry.string(key, "Text").unwrap().unwrap().value, "RDP");
        assert_eq!(
            registry.raw(key, "Path").unwrap().unwrap().value,
            Data::ExpandString("%SystemRoot%".into())
        );
        assert_eq!(
            registry.strings(key, "List").unwrap().unwrap().value,
            ["a", "b"]
        );
        assert_eq!(
            registry.raw(key, "Big").unwrap().unwrap().value,
            Data::Qword(7)
        );
        assert_eq!(
            registry.raw(key, "Blob").unwrap().unwrap().value,
            Data::Binary(vec![1, 2, 3])
        );
        assert_eq!(
            registry
                .subkeys("HKLM\\SYSTEM\\CurrentControlSet\\Services")
                .unwrap(),
            ["sshd", "WinRM"]
        );
        assert_eq!(registry.subkeys("HKLM").unwrap(), ["SYSTEM"]);
        assert!(!registry.exists("HKLM\\SYSTEM\\ControlSet001").unwrap());
        assert!(!registry.exists("HKLM\\SOFTWARE\\Microsoft").unwrap());
        assert!(registry.exists("HKLM\\SYSTEM").unwrap());
    }

    #[test]
    fn bad_values_name_the_file_key_and_value() {
        let s = source(system_hive());
        let registry = Registry::new(&s, "test");
        // A REG_DWORD of two bytes spoils the whole key, as it does live.
        let e = registry
            .dword("HKLM\\SYSTEM\\CurrentControlSet\\Control\\Bad", "Other")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/Windows/System32/config/SYSTEM: HKLM\\SYSTEM\\CurrentControlSet\\Control\\Bad\\Short: REG_DWORD of 2 bytes, not 4"
        );
    }

    #[test]
    fn wrong_type_names_the_hive_file() {
        let mut b = HiveBuilder::new().unwrap();
        let root = b.root_offset();
        let key = b.add_key(root, "Select").unwrap();
        b.add_value(key, "Current", DataType::String, &utf16("1\0"))
            .unwrap();
        let s = source(b.to_bytes().unwrap());
        let e = Registry::new(&s, "test")
            .dword("HKLM\\SYSTEM\\Select", "Current")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "HKLM\\SYSTEM\\Select\\Current in /Windows/System32/config/SYSTEM is REG_SZ, expected REG_DWORD"
        );
    }

    #[test]
    fn truncated_garbage_and_dirty_hives_are_errors_naming_the_file() {
        let bytes = system_hive();
        for cut in [0, 100, 4096, bytes.len() - 1] {
            let e = HiveFile::parse(FILE, bytes[..cut].to_vec()).unwrap_err();
            assert!(
                matches!(&e, HiveError::Malformed { file, .. } if file == FILE),
                "{cut}: {e}"
            );
        }
        let e = HiveFile::parse(FILE, b"REGEDIT4\r\n".repeat(2000)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/Windows/System32/config/SYSTEM: not a readable registry hive: ")
        );
        // The secondary sequence number (base block offset 8) one behind the primary, as a
        // write interrupted before the logs were applied leaves it.
        let mut dirty = bytes.clone();
        dirty[8] = dirty[8].wrapping_sub(1);
        let e = HiveFile::parse(FILE, dirty).unwrap_err();
        assert!(
            matches!(&e, HiveError::Dirty { file } if file == FILE),
            "{e}"
        );
    }
}
