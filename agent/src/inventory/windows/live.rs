//! The live registry of the Windows host the agent runs on, through the Win32 registry API
//! (`RegOpenKeyExW`, `RegEnumValueW`, `RegEnumKeyExW` via the `winreg` crate), read-only
//! (`KEY_READ`). 64-bit view (`KEY_WOW64_64KEY`), so a 32-bit build would still see the keys
//! the 64-bit system uses; the 32-bit Uninstall hive is read by its own `WOW6432Node` path.
//! Built for Windows only; under wine this is wine's registry, which `wine reg add` edits.

use std::io::ErrorKind;

use winreg::RegKey;
use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY};

use super::registry::{Data, Key, RegistryError, RegistrySource, Value, canonical_key};

/// The origin named in evidence and errors.
const ORIGIN: &str = "registry";

/// The host's own registry.
#[derive(Debug, Default)]
pub struct LiveRegistry;

fn open(path: &str) -> Result<Option<RegKey>, RegistryError> {
    let canonical = canonical_key(path);
    let Some(rest) = canonical.strip_prefix("HKLM\\") else {
        return Err(RegistryError::Source {
            origin: ORIGIN.into(),
            message: format!("{path}: only HKLM is read"),
        });
    };
    match RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey_with_flags(rest, KEY_READ | KEY_WOW64_64KEY)
    {
        Ok(key) => Ok(Some(key)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::Source {
            origin: ORIGIN.into(),
            message: format!("{path}: {e}"),
        }),
    }
}

impl RegistrySource for LiveRegistry {
    fn key(&self, path: &str) -> Result<Option<Key>, RegistryError> {
        let Some(key) = open(path)? else {
            return Ok(None);
        };
        let mut values = Vec::new();
        for entry in key.enum_values() {
            let (name, value) = entry.map_err(|e| RegistryError::Source {
                origin: ORIGIN.into(),
                message: format!("{path}: enumerating values: {e}"),
            })?;
            let kind = value.vtype as u32;
            let data = Data::from_raw(kind, value.bytes.into_owned()).map_err(|message| {
                RegistryError::Source {
                    origin: ORIGIN.into(),
                    message: format!("{path}\\{name}: {message}"),
                }
            })?;
            values.push(Value {
                name,
                data,
                line: 0,
            });
        }
        Ok(Some(Key {
            path: canonical_key(path),
            values,
            origin: ORIGIN.into(),
        }))
    }

    fn subkeys(&self, path: &str) -> Result<Vec<String>, RegistryError> {
        let Some(key) = open(path)? else {
            return Ok(Vec::new());
        };
        let mut names = key
            .enum_keys()
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| RegistryError::Source {
                origin: ORIGIN.into(),
                message: format!("{path}: enumerating subkeys: {e}"),
            })?;
        names.sort_by_key(|n| n.to_lowercase());
        Ok(names)
    }

    fn origin(&self) -> String {
        ORIGIN.into()
    }
}
