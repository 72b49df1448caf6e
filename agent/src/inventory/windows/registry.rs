//! The one way Windows collectors read the registry: the [`RegistrySource`] trait, with three
//! implementations, offline `reg export` files under `--root DIR` ([`ExportSource`]), offline
//! hive files (`super::hive`) and the live Win32 registry API (`super::live`, built for Windows
//! only), plus the typed look-ups every collector uses ([`Registry`]).
//!
//! Paths are written `HKLM\SYSTEM\CurrentControlSet\...`; `HKEY_LOCAL_MACHINE` and `HKLM` are
//! the same hive, case does not matter. Offline exports and hives may hold `ControlSet001`
//! instead of `CurrentControlSet`: the `Select\Current` value says which set is current, as on
//! a booted system ([`ControlSetAlias`]). A value of the wrong type is an error naming key,
//! value and source, never a guess.

use std::collections::BTreeMap;
use std::fmt;

use super::reg_text::{ExportedKey, RegExport};
use crate::inventory::Evidence;

/// Registry value data, by type (winnt.h `REG_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// `REG_SZ`.
    String(String),
    /// `REG_EXPAND_SZ`: a string with `%VAR%` references, not expanded here.
    ExpandString(String),
    /// `REG_MULTI_SZ`.
    MultiString(Vec<String>),
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_QWORD`.
    Qword(u64),
    /// `REG_BINARY`.
    Binary(Vec<u8>),
    /// Any other type (`REG_NONE`, `REG_LINK`, resource lists, ...), kept raw.
    Other {
        /// The type number.
        kind: u32,
        /// The raw bytes.
        bytes: Vec<u8>,
    },
}

impl Data {
    /// Data of type `kind` from its raw bytes, as the registry stores them.
    pub fn from_raw(kind: u32, bytes: Vec<u8>) -> Result<Data, String> {
        Ok(match kind {
            1 => Data::String(utf16z(&bytes)?),
            2 => Data::ExpandString(utf16z(&bytes)?),
            3 => Data::Binary(bytes),
            4 => {
                let raw: [u8; 4] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("REG_DWORD of {} bytes, not 4", bytes.len()))?;
                Data::Dword(u32::from_le_bytes(raw))
            }
            7 => {
                let text = utf16z(&bytes)?;
                Data::MultiString(
                    text.split('\0')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            11 => {
                let raw: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("REG_QWORD of {} bytes, not 8", bytes.len()))?;
                Data::Qword(u64::from_le_bytes(raw))
            }
            kind => Data::Other { kind, bytes },
        })
    }

    /// The `REG_*` name of the type.
    pub fn type_name(&self) -> String {
        match self {
            Data::String(_) => "REG_SZ".into(),
            Data::ExpandString(_) => "REG_EXPAND_SZ".into(),
            Data::MultiString(_) => "REG_MULTI_SZ".into(),
            Data::Dword(_) => "REG_DWORD".into(),
            Data::Qword(_) => "REG_QWORD".into(),
            Data::Binary(_) => "REG_BINARY".into(),
            Data::Other { kind, .. } => format!("type {kind}"),
        }
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::String(s) | Data::ExpandString(s) => write!(f, "{s:?}"),
            Data::MultiString(list) => write!(f, "{list:?}"),
            Data::Dword(n) => write!(f, "{n} (0x{n:08x})"),
            Data::Qword(n) => write!(f, "{n}"),
            Data::Binary(b) | Data::Other { bytes: b, .. } => write!(f, "{} bytes", b.len()),
        }
    }
}

/// UTF-16LE text up to the first NUL pair (or the end); an odd trailing byte is ignored, as
/// Windows does.
fn utf16z(bytes: &[u8]) -> Result<String, String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    // REG_MULTI_SZ keeps inner NULs; the caller splits. Trailing NULs are dropped.
    let end = units.iter().rposition(|&u| u != 0).map_or(0, |i| i + 1);
    String::from_utf16(&units[..end]).map_err(|e| format!("invalid UTF-16LE string: {e}"))
}

/// One value in a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The name; empty for the key's `(Default)` value.
    pub name: String,
    /// The data.
    pub data: Data,
    /// 1-based line in the export it came from; 0 when read live.
    pub line: u32,
}

/// A key as a source returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The canonical path, see [`canonical_key`].
    pub path: String,
    /// Its values.
    pub values: Vec<Value>,
    /// Where it was read: the export or hive file, or `registry` for the live API.
    pub origin: String,
}

/// Why the registry could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The source failed (API error, unreadable or malformed export).
    #[error("{origin}: {message}")]
    Source {
        /// The file or API.
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// A value has another type than the setting needs.
    #[error("{key}\\{value} in {origin} is {found}, expected {expected}")]
    WrongType {
        /// Key path.
        key: String,
        /// Value name.
        value: String,
        /// The type it has.
        found: String,
        /// The type the setting needs.
        expected: &'static str,
        /// The file or API.
        origin: String,
    },
}

/// A registry to read keys from; one implementation per origin.
pub trait RegistrySource {
    /// The key at the canonical `path` with its values, `None` when it does not exist.
    fn key(&self, path: &str) -> Result<Option<Key>, RegistryError>;
    /// The names of the subkeys of `path`, sorted; empty when it does not exist.
    fn subkeys(&self, path: &str) -> Result<Vec<String>, RegistryError>;
    /// What the evidence names as the origin when a key is absent (`registry`, a directory).
    fn origin(&self) -> String;
}

/// `HKEY_LOCAL_MACHINE\X` and `HKLM\x` as one canonical path: the root abbreviated, the rest
/// lower-cased, runs of backslashes collapsed, no trailing backslash.
pub fn canonical_key(path: &str) -> String {
    let mut parts = path.split('\\').filter(|p| !p.is_empty());
    let root = match parts.next().map(str::to_ascii_uppercase).as_deref() {
        Some("HKEY_LOCAL_MACHINE" | "HKLM") => "HKLM".to_string(),
        Some("HKEY_CURRENT_USER" | "HKCU") => "HKCU".to_string(),
        Some("HKEY_USERS" | "HKU") => "HKU".to_string(),
        Some("HKEY_CLASSES_ROOT" | "HKCR") => "HKCR".to_string(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    std::iter::once(root)
        .chain(parts.map(str::to_lowercase))
        .collect::<Vec<_>>()
        .join("\\")
}

/// Offline registry data: the keys of every `reg export` file given, later files overriding
/// earlier ones key by key.
#[derive(Debug, Default)]
pub struct ExportSource {
    keys: BTreeMap<String, (ExportedKey, String)>,
    /// Where the exports were found, for evidence on absent keys.
    directory: String,
    alias: ControlSetAlias,
}

/// What `HKLM\SYSTEM\CurrentControlSet` stands for in offline data. On a booted system the
/// alias is a link the kernel makes; an export or a hive file holds `ControlSetNNN` and
/// `Select\Current` instead, so both offline sources resolve it here, the same way.
#[derive(Debug, Default)]
pub struct ControlSetAlias {
    /// `None` when the data holds the alias itself, else the `ControlSetNNN` that
    /// `Select\Current` names (1 when unset), canonical.
    current_set: Option<String>,
}

impl ControlSetAlias {
    /// The alias for data that holds the alias key itself (`has_alias`) or else names its
    /// current set in `Select\Current` (`current`, `None` when absent).
    pub fn new(has_alias: bool, current: Option<u32>) -> ControlSetAlias {
        ControlSetAlias {
            current_set: (!has_alias)
                .then(|| format!("HKLM\\system\\controlset{:03}", current.unwrap_or(1))),
        }
    }

    /// `CurrentControlSet` replaced by the current set, when the data holds the set and not
    /// the alias. `path` is canonical.
    pub fn resolve(&self, path: &str) -> String {
        match (&self.current_set, path.strip_prefix(ALIAS)) {
            (Some(set), Some(rest)) if rest.is_empty() || rest.starts_with('\\') => {
                format!("{set}{rest}")
            }
            _ => path.to_string(),
        }
    }
}

impl ExportSource {
    /// A source over `exports`, each with the file it came from.
    pub fn new(directory: &str, exports: Vec<(String, RegExport)>) -> ExportSource {
        let mut keys = BTreeMap::new();
        for (file, export) in exports {
            for (path, key) in export.keys {
                keys.insert(path, (key, file.clone()));
            }
        }
        let has_alias = keys.keys().any(|k| k.starts_with(ALIAS));
        let current = keys
            .get(SELECT)
            .and_then(|(key, _)| select_current(&key.values));
        ExportSource {
            keys,
            directory: directory.to_string(),
            alias: ControlSetAlias::new(has_alias, current),
        }
    }

    fn resolve(&self, path: &str) -> String {
        self.alias.resolve(path)
    }
}

/// The canonical `CurrentControlSet` alias.
pub const ALIAS: &str = "HKLM\\system\\currentcontrolset";
/// The canonical key whose `Current` value names the current control set.
pub const SELECT: &str = "HKLM\\system\\select";

/// The `Current` `REG_DWORD` among the values of `Select`; another type counts as unset.
pub fn select_current(values: &[Value]) -> Option<u32> {
    values.iter().find_map(|v| match v.data {
        Data::Dword(n) if v.name.eq_ignore_ascii_case("Current") => Some(n),
        _ => None,
    })
}

impl RegistrySource for ExportSource {
    fn key(&self, path: &str) -> Result<Option<Key>, RegistryError> {
        let canonical = self.resolve(&canonical_key(path));
        Ok(self.keys.get(&canonical).map(|(key, file)| Key {
            path: canonical_key(path),
            values: key.values.clone(),
            origin: file.clone(),
        }))
    }

    fn subkeys(&self, path: &str) -> Result<Vec<String>, RegistryError> {
        let prefix = format!("{}\\", self.resolve(&canonical_key(path)));
        let mut names: Vec<String> = self
            .keys
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, (key, _))| {
                let rest = k.strip_prefix(&prefix)?;
                // The name as written, from the key's own path (exports keep the case).
                let depth = rest.split('\\').count();
                let written: Vec<&str> = key.path.split('\\').filter(|p| !p.is_empty()).collect();
                let name = written.get(written.len().checked_sub(depth)?)?;
                Some((*name).to_string())
            })
            .collect();
        names.sort_by_key(|n| n.to_lowercase());
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        Ok(names)
    }

    fn origin(&self) -> String {
        self.directory.clone()
    }
}

/// A value found, with the evidence that names it.
#[derive(Clone, Debug)]
pub struct Found<T> {
    /// The typed value.
    pub value: T,
    /// Key path and value name, the file and line when offline.
    pub evidence: Evidence,
}

/// Typed look-ups over a source, each with evidence naming `key\value`.
pub struct Registry<'a> {
    source: &'a dyn RegistrySource,
    /// The collector named in evidence.
    probe: &'static str,
}

impl<'a> Registry<'a> {
    /// Look-ups over `source`, with `probe` in their evidence.
    pub fn new(source: &'a dyn RegistrySource, probe: &'static str) -> Registry<'a> {
        Registry { source, probe }
    }

    /// The same source for another collector.
    #[must_use]
    pub fn with_probe(&self, probe: &'static str) -> Registry<'a> {
        Registry {
            source: self.source,
            probe,
        }
    }

    /// The source itself.
    pub fn source(&self) -> &'a dyn RegistrySource {
        self.source
    }

    /// The raw value `name` of `key` (empty name: the default value).
    pub fn raw(&self, key: &str, name: &str) -> Result<Option<Found<Data>>, RegistryError> {
        let Some(found) = self.source.key(key)? else {
            return Ok(None);
        };
        Ok(found
            .values
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
            .map(|v| Found {
                evidence: self.evidence(key, &found.origin, v),
                value: v.data.clone(),
            }))
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> Result<bool, RegistryError> {
        Ok(self.source.key(key)?.is_some())
    }

    /// Subkey names of `key`.
    pub fn subkeys(&self, key: &str) -> Result<Vec<String>, RegistryError> {
        self.source.subkeys(key)
    }

    /// A `REG_DWORD` value.
    pub fn dword(&self, key: &str, name: &str) -> Result<Option<Found<u32>>, RegistryError> {
        self.typed(key, name, "REG_DWORD", |d| match d {
            Data::Dword(n) => Some(*n),
            _ => None,
        })
    }

    /// A `REG_SZ` or `REG_EXPAND_SZ` value (not expanded).
    pub fn string(&self, key: &str, name: &str) -> Result<Option<Found<String>>, RegistryError> {
        self.typed(key, name, "REG_SZ", |d| match d {
            Data::String(s) | Data::ExpandString(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// A `REG_MULTI_SZ` value; a `REG_SZ` counts as a list of one.
    pub fn strings(
        &self,
        key: &str,
        name: &str,
    ) -> Result<Option<Found<Vec<String>>>, RegistryError> {
        self.typed(key, name, "REG_MULTI_SZ", |d| match d {
            Data::MultiString(list) => Some(list.clone()),
            Data::String(s) => Some(vec![s.clone()]),
            _ => None,
        })
    }

    /// Evidence for a value that is absent, so a verdict resting on a default names the key
    /// and value it looked for.
    pub fn absent(&self, key: &str, name: &str, meaning: &str) -> Evidence {
        Evidence {
            source: value_path(key, name),
            line: 0,
            probe: self.probe.into(),
            detail: format!("not set in {}: {meaning}", self.source.origin()),
        }
    }

    fn typed<T>(
        &self,
        key: &str,
        name: &str,
        expected: &'static str,
        pick: impl Fn(&Data) -> Option<T>,
    ) -> Result<Option<Found<T>>, RegistryError> {
        let Some(found) = self.source.key(key)? else {
            return Ok(None);
        };
        let Some(value) = found
            .values
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
        else {
            return Ok(None);
        };
        match pick(&value.data) {
            Some(typed) => Ok(Some(Found {
                value: typed,
                evidence: self.evidence(key, &found.origin, value),
            })),
            None => Err(RegistryError::WrongType {
                key: key.to_string(),
                value: name.to_string(),
                found: value.data.type_name(),
                expected,
                origin: found.origin,
            }),
        }
    }

    fn evidence(&self, key: &str, origin: &str, value: &Value) -> Evidence {
        Evidence {
            source: value_path(key, &value.name),
            line: value.line,
            probe: self.probe.into(),
            detail: format!("{} {} in {origin}", value.data.type_name(), value.data),
        }
    }
}

/// `key\name`, or `key\(Default)` for the default value.
pub fn value_path(key: &str, name: &str) -> String {
    if name.is_empty() {
        format!("{key}\\(Default)")
    } else {
        format!("{key}\\{name}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;
    use crate::inventory::windows::reg_text;

    fn source(text: &str) -> ExportSource {
        ExportSource::new(
            "/registry",
            vec![("/registry/a.reg".into(), reg_text::parse(text).unwrap())],
        )
    }

    #[test]
    fn current_control_set_follows_select() {
        let s = source(
            "REGEDIT4\n[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]\n\"Current\"=dword:00000002\n\
             [HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Control\\Terminal Server]\n\
             \"fDenyTSConnections\"=dword:00000001\n\
             [HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services\\Sshd]\n\
             [HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services\\WinRM\\Parameters]\n",
        );
        let registry = Registry::new(&s, "test");
        let found = registry
            .dword(
                "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server",
                "fdenytsconnections",
            )
            .unwrap()
            .unwrap();
        assert_eq!(found.value, 1);
        assert_eq!(found.evidence.line, 5);
        assert_eq!(
            found.evidence.source,
            "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\fDenyTSConnections"
        );
        assert!(found.evidence.detail.contains("/registry/a.reg"));
        assert_eq!(
            registry
                .subkeys("HKLM\\SYSTEM\\CurrentControlSet\\Services")
                .unwrap(),
            ["Sshd", "WinRM"]
        );
    }

    #[test]
    fn wrong_type_names_key_value_and_file() {
        let s = source("REGEDIT4\n[HKLM\\A]\n\"n\"=\"text\"\n");
        let e = Registry::new(&s, "test").dword("HKLM\\A", "n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "HKLM\\A\\n in /registry/a.reg is REG_SZ, expected REG_DWORD"
        );
    }
}
