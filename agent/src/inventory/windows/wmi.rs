//! The WMI classes the Windows inventory reads besides BitLocker, and their one parser each:
//! installed hotfixes (`Win32_QuickFixEngineering`), the last boot
//! (`Win32_OperatingSystem.LastBootUpTime`), installed roles and features
//! (`Win32_ServerFeature` on servers, else `Win32_OptionalFeature` with `InstallState` 1), and
//! Defender's running state (`MSFT_MpComputerStatus`).
//!
//! Both inputs give the same rows, JSON objects keyed by the class's property names:
//! - live, `wmi_live` runs each class's WQL ([`WmiClass::query`]) and turns the answer's
//!   variants into JSON values (a CIM_DATETIME stays the text WMI sends);
//! - offline, the file [`WmiClass::recorded`] under `DIR/recorded/` holds what PowerShell's
//!   `ConvertTo-Json` writes for the class, one object or an array (the exact commands are in
//!   `agent/tests/fixtures/windows/README.md` and on each [`WmiClass`]); a missing file means
//!   "not recorded", no observation and no error.
//!
//! So a row is parsed here once, whichever input it came from. PowerShell writes dates as
//! `/Date(ms)/` (5.1), ISO 8601 (7) or an object whose `value` is one of those; WMI itself as
//! CIM_DATETIME (`yyyymmddHHMMSS.ffffff+UUU`, UUU the offset in minutes); all four are read.
//! `Win32_QuickFixEngineering.InstalledOn` is a free string (`M/D/YYYY` in practice, sometimes
//! a hex FILETIME, `D/M/YYYY` under wine): read when it is one of these forms, kept as text
//! either way.
//!
//! Nothing here decides a control: each fact is an observation whose evidence names the
//! namespace, class and property (live) or the recorded file and the property (offline).
//!
//! # Layout
//! - [`WmiClass`] and the class constants, [`Origin`], [`WmiRows`], [`WmiError`].
//! - [`parse_recorded`]: recorded JSON to rows (fuzzed).
//! - [`hotfixes`], [`last_boot`], [`features`], [`defender`]: rows to observations.
//! - [`datetime`]: the four date forms.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::inventory::{Evidence, Observation};

/// Named as the probe in evidence.
pub const PROBE: &str = "windows_wmi";
/// Largest recorded WMI file read.
pub const MAX_RECORDED_BYTES: usize = 8 * 1024 * 1024;

/// One WMI class: where it lives, the WQL the live agent runs and the recording's file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WmiClass {
    /// WMI namespace, as evidence names it (`root\cimv2`).
    pub namespace: &'static str,
    /// Class name.
    pub class: &'static str,
    /// The WQL run live; it selects only the properties parsed here.
    pub query: &'static str,
    /// File under `DIR/recorded/` holding the PowerShell recording.
    pub recorded: &'static str,
    /// The property the evidence names for the fact as a whole.
    pub property: &'static str,
}

/// `Get-CimInstance Win32_QuickFixEngineering | Select-Object HotFixID,Description,InstalledOn
/// | ConvertTo-Json`.
pub const QUICK_FIX: WmiClass = WmiClass {
    namespace: "root\\cimv2",
    class: "Win32_QuickFixEngineering",
    query: "SELECT HotFixID, Description, InstalledOn FROM Win32_QuickFixEngineering",
    recorded: "Win32_QuickFixEngineering.json",
    property: "HotFixID",
};

/// `Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,LastBootUpTime |
/// ConvertTo-Json`.
pub const OPERATING_SYSTEM: WmiClass = WmiClass {
    namespace: "root\\cimv2",
    class: "Win32_OperatingSystem",
    query: "SELECT Caption, Version, LastBootUpTime FROM Win32_OperatingSystem",
    recorded: "Win32_OperatingSystem.json",
    property: "LastBootUpTime",
};

/// `Get-CimInstance Win32_ServerFeature | Select-Object ID,ParentID,Name | ConvertTo-Json`
/// (Windows Server only: the class does not exist on a client).
pub const SERVER_FEATURE: WmiClass = WmiClass {
    namespace: "root\\cimv2",
    class: "Win32_ServerFeature",
    query: "SELECT ID, ParentID, Name FROM Win32_ServerFeature",
    recorded: "Win32_ServerFeature.json",
    property: "Name",
};

/// `Get-CimInstance Win32_OptionalFeature -Filter 'InstallState = 1' | Select-Object
/// Name,Caption,InstallState | ConvertTo-Json`.
pub const OPTIONAL_FEATURE: WmiClass = WmiClass {
    namespace: "root\\cimv2",
    class: "Win32_OptionalFeature",
    query: "SELECT Name, Caption, InstallState FROM Win32_OptionalFeature WHERE InstallState = 1",
    recorded: "Win32_OptionalFeature.json",
    property: "Name",
};

/// `Get-MpComputerStatus | Select-Object RealTimeProtectionEnabled,AntivirusEnabled,
/// AMServiceEnabled,AntivirusSignatureAge,AntivirusSignatureLastUpdated | ConvertTo-Json`
/// (`Get-MpComputerStatus` returns this class's one instance).
pub const DEFENDER_STATUS: WmiClass = WmiClass {
    namespace: "root\\Microsoft\\Windows\\Defender",
    class: "MSFT_MpComputerStatus",
    query: "SELECT RealTimeProtectionEnabled, AntivirusEnabled, AMServiceEnabled, \
            AntivirusSignatureAge, AntivirusSignatureLastUpdated FROM MSFT_MpComputerStatus",
    recorded: "MSFT_MpComputerStatus.json",
    property: "RealTimeProtectionEnabled",
};

/// Where rows came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A WMI query on this host.
    Live,
    /// A recorded file, by its path under the root (`/recorded/...`).
    Recorded(String),
}

/// The instances of one class, each a JSON object keyed by property name.
#[derive(Clone, Debug, PartialEq)]
pub struct WmiRows {
    /// The class read.
    pub class: WmiClass,
    /// Where from.
    pub origin: Origin,
    /// One object per instance.
    pub rows: Vec<Map<String, Value>>,
}

/// Why a class could not be read or its rows not parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct WmiError {
    /// `WMI root\cimv2 Win32_QuickFixEngineering` live, or the recorded file.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

/// BitLocker's class; it needs packet privacy (see `tillsyn_netapi::require_packet_privacy`).
pub const ENCRYPTABLE_VOLUME: WmiClass = WmiClass {
    namespace: "root\\CIMV2\\Security\\MicrosoftVolumeEncryption",
    class: "Win32_EncryptableVolume",
    query: "",
    recorded: "Win32_EncryptableVolume.json",
    property: "ProtectionStatus",
};

/// What `wmi_live` puts in the message of a class that did not answer within its timeout.
pub const HUNG: &str = "WMI hung; given up";

/// WMI asked at most until it hangs once, within one inventory: a stuck Winmgmt or provider
/// would otherwise cost the whole timeout once per class (six classes, 48 s). After a class
/// went unanswered, the later ones fail at once with an error naming it, and BitLocker goes
/// straight to its `manage-bde` fallback.
#[derive(Debug, Default)]
pub struct Patience {
    /// The source that hung.
    hung: Option<String>,
}

impl Patience {
    /// Runs `query` for `source_name` unless WMI already hung in this inventory.
    pub fn ask<T>(
        &mut self,
        source_name: String,
        query: impl FnOnce() -> Result<T, WmiError>,
    ) -> Result<T, WmiError> {
        if let Some(hung) = &self.hung {
            return Err(WmiError {
                source_name,
                message: format!("not asked: {hung} did not answer earlier in this inventory"),
            });
        }
        let answer = query();
        if let Err(e) = &answer
            && e.message.contains(HUNG)
        {
            self.hung = Some(e.source_name.clone());
        }
        answer
    }
}

/// Whether `error` says the class does not exist here (a client asked for
/// `Win32_ServerFeature`): `wmi_live` names `WBEM_E_INVALID_CLASS` in its message.
pub fn is_invalid_class(error: &WmiError) -> bool {
    error.message.contains("WBEM_E_INVALID_CLASS")
}

impl WmiClass {
    /// The source a live error or evidence names: `WMI <namespace> <class>`.
    pub fn live_source(&self) -> String {
        format!("WMI {} {}", self.namespace, self.class)
    }
}

impl WmiRows {
    /// The name errors give: the live class or the file.
    pub fn source_name(&self) -> String {
        match &self.origin {
            Origin::Live => self.class.live_source(),
            Origin::Recorded(file) => file.clone(),
        }
    }

    fn evidence(&self, property: &str, detail: impl std::fmt::Display) -> Evidence {
        let (source, detail) = match &self.origin {
            Origin::Live => (
                format!("{}.{property}", self.class.live_source()),
                detail.to_string(),
            ),
            Origin::Recorded(file) => (
                file.clone(),
                format!("{}.{property} {detail}", self.class.class),
            ),
        };
        Evidence {
            source,
            line: 0,
            probe: PROBE.into(),
            detail,
        }
    }

    fn fail(&self, message: String) -> WmiError {
        WmiError {
            source_name: self.source_name(),
            message,
        }
    }

    /// Each row as `T`; a row that does not fit is an error naming its index.
    fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, WmiError> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                serde_json::from_value(Value::Object(row.clone()))
                    .map_err(|e| self.fail(format!("instance {i}: {e}")))
            })
            .collect()
    }
}

/// Parses a recorded class (`ConvertTo-Json` of one object or an array of them; a UTF-8 BOM is
/// allowed). Anything else (not JSON, an item that is not an object) is an error naming
/// `source`.
pub fn parse_recorded(text: &str, source: &str) -> Result<Vec<Map<String, Value>>, WmiError> {
    let fail = |message: String| WmiError {
        source_name: source.into(),
        message,
    };
    let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| fail(e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => Ok(map),
            other => Err(fail(format!(
                "instance {i} is {}, not an object",
                kind_of(&other)
            ))),
        })
        .collect()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Deserialize)]
struct QuickFix {
    #[serde(rename = "HotFixID")]
    hotfix_id: Option<String>,
    #[serde(rename = "Description")]
    description: Option<String>,
    #[serde(rename = "InstalledOn", default)]
    installed_on: Value,
}

/// One `package` observation per hotfix (manager `windows-hotfix`, named by its `HotFixID`),
/// with its description and install date; rows without an id are skipped, a repeated id
/// (`File 1` on old systems) is told apart by its position.
pub fn hotfixes(rows: &WmiRows) -> Result<Vec<Observation>, WmiError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, fix) in rows.typed::<QuickFix>()?.into_iter().enumerate() {
        let Some(id) = fix.hotfix_id.filter(|id| !id.trim().is_empty()) else {
            continue;
        };
        let raw = match &fix.installed_on {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Null | Value::String(_) => None,
            other => Some(other.to_string()),
        };
        let installed = installed_on(&fix.installed_on);
        let name = if seen.insert(id.clone()) {
            id.clone()
        } else {
            format!("{id} [{i}]")
        };
        out.push(Observation {
            category: "package".into(),
            name,
            value: json!({
                "manager": "windows-hotfix",
                "description": fix.description.filter(|d| !d.is_empty()),
                "installed_on": installed,
                "installed_on_text": raw,
            }),
            evidence: vec![rows.evidence("HotFixID", &id)],
        });
    }
    Ok(out)
}

/// `InstalledOn` as `YYYY-MM-DD`: `M/D/YYYY`, a hex FILETIME, or one of [`datetime`]'s forms.
fn installed_on(value: &Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let numbers = match parts.as_slice() {
            [m, d, y] => m
                .parse::<u8>()
                .ok()
                .zip(d.parse::<u8>().ok())
                .zip(y.parse::<i32>().ok()),
            _ => None,
        };
        if let Some(((m, d), y)) = numbers {
            // Windows writes `M/D/YYYY`; wine `D/M/YYYY` (`22/2/2022`), which is read as such
            // only where it cannot be a month first.
            let (m, d) = if m > 12 && d <= 12 { (d, m) } else { (m, d) };
            return time::Month::try_from(m)
                .ok()
                .and_then(|month| time::Date::from_calendar_date(y, month, d).ok())
                .map(|date| date.to_string());
        }
        if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ticks = i128::from(u64::from_str_radix(text, 16).ok()?);
            // FILETIME counts 100 ns from 1601-01-01, 11 644 473 600 s before the Unix epoch.
            let unix_ns = (ticks - 116_444_736_000_000_000) * 100;
            return OffsetDateTime::from_unix_timestamp_nanos(unix_ns)
                .ok()
                .map(|t| t.date().to_string());
        }
    }
    datetime(value).map(|t| t.date().to_string())
}

#[derive(Deserialize)]
struct OperatingSystem {
    #[serde(rename = "Caption")]
    caption: Option<String>,
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "LastBootUpTime", default)]
    last_boot: Value,
}

/// The `windows_host`/`last_boot` observation and the boot time in Unix seconds, from the one
/// `Win32_OperatingSystem` instance; `Ok(None)` when there is none. A `LastBootUpTime` that is
/// there but in no known form is an error (quoting it).
pub fn last_boot(rows: &WmiRows) -> Result<Option<(Observation, i64)>, WmiError> {
    let Some(os) = rows.typed::<OperatingSystem>()?.into_iter().next() else {
        return Ok(None);
    };
    if os.last_boot.is_null() {
        return Ok(None);
    }
    let boot = datetime(&os.last_boot)
        .ok_or_else(|| rows.fail(format!("LastBootUpTime {} is not a date", os.last_boot)))?
        .to_offset(time::UtcOffset::UTC);
    let text = boot
        .format(&Rfc3339)
        .map_err(|e| rows.fail(format!("LastBootUpTime: {e}")))?;
    let raw = os
        .last_boot
        .as_str()
        .map_or_else(|| text.clone(), str::to_string);
    Ok(Some((
        Observation {
            category: "windows_host".into(),
            name: "last_boot".into(),
            value: json!({
                "last_boot_up_time": text,
                "boot_time_unix": boot.unix_timestamp(),
                "caption": os.caption,
                "version": os.version,
            }),
            evidence: vec![rows.evidence("LastBootUpTime", raw)],
        },
        boot.unix_timestamp(),
    )))
}

#[derive(Deserialize)]
struct ServerFeature {
    #[serde(rename = "ID")]
    id: Option<u32>,
    #[serde(rename = "ParentID")]
    parent_id: Option<u32>,
    #[serde(rename = "Name")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct OptionalFeature {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Caption")]
    caption: Option<String>,
    #[serde(rename = "InstallState")]
    install_state: Option<u32>,
}

/// One `windows_feature` observation per installed role or feature: every
/// `Win32_ServerFeature` instance (the class lists installed ones only), or each
/// `Win32_OptionalFeature` with `InstallState` 1 (enabled; a recording may hold others).
pub fn features(rows: &WmiRows) -> Result<Vec<Observation>, WmiError> {
    let mut out: Vec<Observation> = Vec::new();
    if rows.class == SERVER_FEATURE {
        for feature in rows.typed::<ServerFeature>()? {
            let Some(name) = feature.name.filter(|n| !n.is_empty()) else {
                continue;
            };
            out.push(Observation {
                category: "windows_feature".into(),
                name: name.clone(),
                value: json!({
                    "class": SERVER_FEATURE.class,
                    "id": feature.id,
                    "parent_id": feature.parent_id.filter(|p| *p != 0),
                }),
                evidence: vec![rows.evidence("Name", &name)],
            });
        }
    } else {
        for feature in rows.typed::<OptionalFeature>()? {
            let Some(name) = feature.name.filter(|n| !n.is_empty()) else {
                continue;
            };
            if feature.install_state != Some(1) {
                continue;
            }
            out.push(Observation {
                category: "windows_feature".into(),
                name: name.clone(),
                value: json!({
                    "class": OPTIONAL_FEATURE.class,
                    "caption": feature.caption,
                    "install_state": "enabled",
                }),
                evidence: vec![rows.evidence("InstallState", format_args!("{name} = 1"))],
            });
        }
    }
    // Names are unique per class; a second one with the same name is told apart by its class.
    let mut seen = std::collections::BTreeSet::new();
    for observation in &mut out {
        if !seen.insert(observation.name.clone()) {
            observation.name = format!("{} [{}]", observation.name, rows.class.class);
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DefenderStatus {
    real_time_protection_enabled: Option<bool>,
    antivirus_enabled: Option<bool>,
    #[serde(rename = "AMServiceEnabled")]
    am_service_enabled: Option<bool>,
    antivirus_signature_age: Option<u32>,
    #[serde(default)]
    antivirus_signature_last_updated: Value,
}

/// The `hardening`/`defender_status` observation: whether Defender's real-time protection,
/// antivirus and antimalware service are running now (the registry's
/// `defender_realtime_disabled` is only the policy) and how old its signatures are, in days.
pub fn defender(rows: &WmiRows) -> Result<Option<Observation>, WmiError> {
    let Some(status) = rows.typed::<DefenderStatus>()?.into_iter().next() else {
        return Ok(None);
    };
    let updated = datetime(&status.antivirus_signature_last_updated)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .and_then(|t| t.format(&Rfc3339).ok());
    let realtime = status
        .real_time_protection_enabled
        .map_or_else(|| "null".to_string(), |b| b.to_string());
    Ok(Some(Observation {
        category: "hardening".into(),
        name: "defender_status".into(),
        value: json!({
            "real_time_protection_enabled": status.real_time_protection_enabled,
            "antivirus_enabled": status.antivirus_enabled,
            "am_service_enabled": status.am_service_enabled,
            "antivirus_signature_age_days": status.antivirus_signature_age,
            "antivirus_signature_last_updated": updated,
        }),
        evidence: vec![rows.evidence("RealTimeProtectionEnabled", realtime)],
    }))
}

/// A date in any of the forms WMI or PowerShell write: CIM_DATETIME
/// (`20240110080000.000000+060`), `/Date(1704870000000)/`, ISO 8601 / RFC 3339, or an object
/// whose `value` is one of them (PowerShell 5.1's `DateTime` with its extra properties).
pub fn datetime(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::Object(map) => map.get("value").and_then(datetime),
        Value::String(text) => {
            let text = text.trim();
            if let Some(ms) = text
                .strip_prefix("/Date(")
                .and_then(|rest| rest.strip_suffix(")/"))
            {
                // `/Date(ms)/` may carry a `+0100` display offset after the number; the
                // number alone is the instant.
                // (The search starts after a leading minus of a date before 1970.)
                let end = ms
                    .get(1..)
                    .and_then(|rest| rest.find(['+', '-']))
                    .map_or(ms.len(), |at| at + 1);
                let ms: i128 = ms.get(..end)?.parse().ok()?;
                return OffsetDateTime::from_unix_timestamp_nanos(ms.checked_mul(1_000_000)?).ok();
            }
            if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
                return Some(t);
            }
            cim_datetime(text)
        }
        _ => None,
    }
}

/// CIM_DATETIME: `yyyymmddHHMMSS.mmmmmmsUUU`, `s` the sign and `UUU` the offset in minutes.
fn cim_datetime(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() != 25 || b[14] != b'.' || !matches!(b[21], b'+' | b'-') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let clock = time::Time::from_hms_micro(
        u8::try_from(num(8..10)?).ok()?,
        u8::try_from(num(10..12)?).ok()?,
        u8::try_from(num(12..14)?).ok()?,
        num(15..21)?,
    )
    .ok()?;
    let minutes = i32::try_from(num(22..25)?).ok()?;
    let minutes = if b[21] == b'-' { -minutes } else { minutes };
    let offset = time::UtcOffset::from_whole_seconds(minutes * 60).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_offset(offset))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn wmi_is_not_asked_again_after_a_class_hung() {
        let mut patience = Patience::default();
        let failed = |message: &str| {
            Err::<(), _>(WmiError {
                source_name: QUICK_FIX.live_source(),
                message: message.into(),
            })
        };
        // An ordinary failure does not stop the next class.
        assert!(
            patience
                .ask(QUICK_FIX.live_source(), || failed("access denied"))
                .is_err()
        );
        let mut asked = false;
        assert!(
            patience
                .ask(OPERATING_SYSTEM.live_source(), || {
                    asked = true;
                    Ok(())
                })
                .is_ok()
        );
        assert!(asked);
        let hung = format!("no answer within 8 s ({HUNG})");
        assert!(
            patience
                .ask(QUICK_FIX.live_source(), || failed(&hung))
                .is_err()
        );
        let mut asked = false;
        let skipped = patience
            .ask(DEFENDER_STATUS.live_source(), || {
                asked = true;
                Ok(())
            })
            .unwrap_err();
        assert!(!asked, "asked WMI again after it hung");
        assert_eq!(skipped.source_name, DEFENDER_STATUS.live_source());
        assert_eq!(
            skipped.message,
            format!(
                "not asked: {} did not answer earlier in this inventory",
                QUICK_FIX.live_source()
            )
        );
    }

    fn rows(class: WmiClass, origin: Origin, json: &str) -> WmiRows {
        WmiRows {
            class,
            origin,
            rows: parse_recorded(json, "test.json").unwrap(),
        }
    }

    #[test]
    fn the_four_date_forms_are_the_same_instant() {
        let expected = OffsetDateTime::from_unix_timestamp(1_704_870_000).unwrap();
        for form in [
            json!("20240110080000.000000+060"),
            json!("20240110070000.000000+000"),
            json!("/Date(1704870000000)/"),
            json!("/Date(1704870000000+0100)/"),
            json!("2024-01-10T08:00:00+01:00"),
            json!("2024-01-10T07:00:00.0000000Z"),
            json!({"value": "/Date(1704870000000)/", "DisplayHint": 2, "DateTime": "x"}),
        ] {
            assert_eq!(datetime(&form), Some(expected), "{form}");
        }
        for bad in [
            json!("20241310070000.000000+000"),
            json!("/Date(x)/"),
            json!("/Date()/"),
            json!("/Date(é)/"),
            json!(7),
            json!(""),
        ] {
            assert_eq!(datetime(&bad), None, "{bad}");
        }
    }

    #[test]
    fn hotfixes_live_and_recorded_are_one_parse() {
        let json = r#"[{"HotFixID":"KB5034129","Description":"Security Update","InstalledOn":"1/10/2024"},
            {"HotFixID":"KB5032310","InstalledOn":"/Date(1700006400000)/"},
            {"HotFixID":"KB5033914","Description":"Update","InstalledOn":{"value":"/Date(1702252800000)/"}},
            {"HotFixID":"KB1234567","Description":null,"InstalledOn":null},
            {"HotFixID":"","Description":"no id"}]"#;
        let live = hotfixes(&rows(QUICK_FIX, Origin::Live, json)).unwrap();
        assert_eq!(live.len(), 4);
        assert_eq!(live[0].name, "KB5034129");
        assert_eq!(live[0].value["manager"], "windows-hotfix");
        assert_eq!(live[0].value["installed_on"], "2024-01-10");
        assert_eq!(live[1].value["installed_on"], "2023-11-15");
        assert_eq!(live[2].value["installed_on"], "2023-12-11");
        assert_eq!(live[3].value["installed_on"], Value::Null);
        assert_eq!(
            live[0].evidence[0].source,
            "WMI root\\cimv2 Win32_QuickFixEngineering.HotFixID"
        );
        assert_eq!(live[0].evidence[0].detail, "KB5034129");
        let file = Origin::Recorded("/recorded/Win32_QuickFixEngineering.json".into());
        let recorded = hotfixes(&rows(QUICK_FIX, file, json)).unwrap();
        assert_eq!(recorded[0].value, live[0].value);
        assert_eq!(
            recorded[0].evidence[0].detail,
            "Win32_QuickFixEngineering.HotFixID KB5034129"
        );
    }

    #[test]
    fn wine_day_first_install_date_is_read_only_when_unambiguous() {
        assert_eq!(
            installed_on(&json!("22/2/2022")).as_deref(),
            Some("2022-02-22")
        );
        assert_eq!(
            installed_on(&json!("2/3/2022")).as_deref(),
            Some("2022-02-03")
        );
        assert_eq!(installed_on(&json!("13/13/2022")), None);
    }

    #[test]
    fn filetime_install_dates_are_read() {
        // FILETIME ticks (100 ns since 1601) of 2024-01-10T00:00:00Z.
        let ticks: u64 = (1_704_844_800 + 11_644_473_600) * 10_000_000;
        assert_eq!(
            installed_on(&json!(format!("{ticks:016x}"))).as_deref(),
            Some("2024-01-10")
        );
    }

    #[test]
    fn last_boot_is_utc_and_a_bad_date_is_an_error_quoting_it() {
        let ok = rows(
            OPERATING_SYSTEM,
            Origin::Live,
            r#"{"Caption":"Microsoft Windows Server 2022 Datacenter","Version":"10.0.20348","LastBootUpTime":"20240110080000.500000+060"}"#,
        );
        let (obs, unix) = last_boot(&ok).unwrap().unwrap();
        assert_eq!(unix, 1_704_870_000);
        assert_eq!(obs.value["last_boot_up_time"], "2024-01-10T07:00:00.5Z");
        assert_eq!(obs.evidence[0].detail, "20240110080000.500000+060");
        let bad = rows(
            OPERATING_SYSTEM,
            Origin::Live,
            r#"{"LastBootUpTime":"yesterday"}"#,
        );
        let e = last_boot(&bad).unwrap_err();
        assert!(
            e.to_string()
                .contains("Win32_OperatingSystem: LastBootUpTime \"yesterday\""),
            "{e}"
        );
        assert!(
            last_boot(&rows(OPERATING_SYSTEM, Origin::Live, "[]"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn optional_features_keep_only_enabled_ones() {
        let json = r#"[{"Name":"TelnetClient","Caption":"Telnet Client","InstallState":1},
            {"Name":"SMB1Protocol","Caption":"SMB 1.0","InstallState":2}]"#;
        let found = features(&rows(OPTIONAL_FEATURE, Origin::Live, json)).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "TelnetClient");
        assert_eq!(
            found[0].evidence[0].source,
            "WMI root\\cimv2 Win32_OptionalFeature.InstallState"
        );
    }

    #[test]
    fn defender_status_reads_the_running_state() {
        let json = r#"{"RealTimeProtectionEnabled":false,"AntivirusEnabled":true,
            "AMServiceEnabled":true,"AntivirusSignatureAge":3,
            "AntivirusSignatureLastUpdated":"2024-01-07T06:00:00+01:00"}"#;
        let obs = defender(&rows(DEFENDER_STATUS, Origin::Live, json))
            .unwrap()
            .unwrap();
        assert_eq!(obs.value["real_time_protection_enabled"], false);
        assert_eq!(obs.value["antivirus_signature_age_days"], 3);
        assert_eq!(
            obs.value["antivirus_signature_last_updated"],
            "2024-01-07T05:00:00Z"
        );
        assert_eq!(
            obs.evidence[0].source,
            "WMI root\\Microsoft\\Windows\\Defender MSFT_MpComputerStatus.RealTimeProtectionEnabled"
        );
    }

    #[test]
    fn bad_recordings_are_errors_naming_the_file_and_instance() {
        let e = parse_recorded("[{}, 3]", "/recorded/x.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/recorded/x.json: instance 1 is a number, not an object"
        );
        assert!(parse_recorded("{", "f").is_err());
        let wrong = rows(
            QUICK_FIX,
            Origin::Recorded("/recorded/Win32_QuickFixEngineering.json".into()),
            r#"[{"HotFixID":5}]"#,
        );
        let e = hotfixes(&wrong).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/recorded/Win32_QuickFixEngineering.json: instance 0"),
            "{e}"
        );
    }
}
