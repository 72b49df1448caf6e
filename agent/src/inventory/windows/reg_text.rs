//! Parser of `reg export` text, the "Windows Registry Editor Version 5.00" format that
//! `reg.exe export` and regedit write: UTF-16LE with a byte-order mark as Windows writes it,
//! UTF-8 (with or without BOM) as other tools and people write it, and the older ANSI
//! `REGEDIT4` header.
//!
//! Layout, after the header line:
//!
//! ```text
//! [HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Terminal Server]   key
//! "fDenyTSConnections"=dword:00000001                                       REG_DWORD
//! "Name"="text with \"quotes\" and \\ backslashes"                          REG_SZ
//! @="default value"                                                         the (Default) value
//! "Bin"=hex:01,02,\                                                          REG_BINARY, continued
//!   03                                                                       on the next line
//! "Path"=hex(2):25,00,53,00,00,00                                           REG_EXPAND_SZ (UTF-16LE)
//! "List"=hex(7):61,00,00,00,00,00                                           REG_MULTI_SZ
//! "Big"=hex(b):01,00,00,00,00,00,00,00                                      REG_QWORD
//! "Gone"=-                                                                   value deletion
//! [-HKEY_LOCAL_MACHINE\SOFTWARE\Old]                                        key deletion
//! ; comment
//! ```
//!
//! Every key and value keeps its 1-based line, so evidence names the file and line. Anything
//! the format does not allow is an error naming the line: a verdict must not rest on a file
//! that was only half understood. This module only parses; it reads no files and knows no
//! controls. It is fuzzed (`agent/fuzz`, target `reg_text`).

use std::collections::BTreeMap;

use super::registry::{Data, Value, canonical_key};

/// Largest export accepted, in bytes: a full `HKLM\SOFTWARE` export of a busy server is
/// ~200 MiB, but the keys the agent reads fit in far less; callers export the subtrees they
/// need. The limit keeps a hostile file from making the agent allocate without bound.
pub const MAX_EXPORT_BYTES: usize = 64 * 1024 * 1024;

/// One `[...]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportedKey {
    /// The path as written, e.g. `HKEY_LOCAL_MACHINE\SYSTEM\Select`.
    pub path: String,
    /// Line of the `[...]` header.
    pub line: u32,
    /// Values in file order; a later line for the same name replaces the earlier one.
    pub values: Vec<Value>,
}

/// A parsed export: keys by [`canonical_key`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegExport {
    /// Keys by canonical path.
    pub keys: BTreeMap<String, ExportedKey>,
}

/// Why an export could not be parsed; `line` is 1-based (0 for the encoding).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RegTextError {
    /// Where the problem is.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

fn error(line: u32, message: impl Into<String>) -> RegTextError {
    RegTextError {
        line,
        message: message.into(),
    }
}

/// Decodes the bytes of an export: UTF-16LE when they start with its BOM (`FF FE`), else
/// UTF-8 (an optional BOM is dropped).
pub fn decode(bytes: &[u8]) -> Result<String, RegTextError> {
    if bytes.len() > MAX_EXPORT_BYTES {
        return Err(error(
            0,
            format!("larger than the {MAX_EXPORT_BYTES} byte limit"),
        ));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        if rest.len() % 2 != 0 {
            return Err(error(
                0,
                "UTF-16LE text with an odd number of bytes (truncated?)",
            ));
        }
        let units = rest
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
        return char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|e| error(0, format!("invalid UTF-16LE: {e}")));
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(error(0, "UTF-16 big-endian is not a reg export encoding"));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|e| error(0, format!("neither UTF-16LE with BOM nor UTF-8: {e}")))
}

/// Parses export bytes (see [`decode`]).
pub fn parse_bytes(bytes: &[u8]) -> Result<RegExport, RegTextError> {
    parse(&decode(bytes)?)
}

/// Parses export text.
pub fn parse(text: &str) -> Result<RegExport, RegTextError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (line_no(i), l));
    let header = lines.by_ref().find(|(_, l)| !l.trim().is_empty());
    match header {
        Some((_, l))
            if matches!(
                l.trim(),
                "Windows Registry Editor Version 5.00" | "REGEDIT4"
            ) => {}
        Some((n, _)) => {
            return Err(error(
                n,
                "expected the header \"Windows Registry Editor Version 5.00\" or \"REGEDIT4\"",
            ));
        }
        None => return Err(error(1, "empty file: no header")),
    }
    let mut export = RegExport::default();
    // The canonical path of the key being filled; `None` after a deletion section.
    let mut current: Option<String> = None;
    let mut in_key = false;
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let path = inner
                .strip_suffix(']')
                .ok_or_else(|| error(n, "key header without its closing ']'"))?;
            in_key = true;
            if let Some(deleted) = path.strip_prefix('-') {
                export.keys.remove(&canonical_key(deleted));
                current = None;
                continue;
            }
            if path.trim().is_empty() {
                return Err(error(n, "empty key path"));
            }
            let canonical = canonical_key(path);
            export
                .keys
                .entry(canonical.clone())
                .or_insert_with(|| ExportedKey {
                    path: path.to_string(),
                    line: n,
                    values: Vec::new(),
                });
            current = Some(canonical);
            continue;
        }
        if !in_key {
            return Err(error(n, "a value before the first [key] header"));
        }
        // A hex value may continue over lines ending in a backslash.
        let mut logical = line.to_string();
        while logical.ends_with('\\') && is_hex_assignment(&logical) {
            logical.pop();
            let Some((_, next)) = lines.next() else {
                return Err(error(n, "hex data continued past the end of the file"));
            };
            logical.push_str(next.trim());
        }
        let (name, data) = parse_value_line(&logical).map_err(|m| error(n, m))?;
        let Some(key) = current.as_ref().and_then(|k| export.keys.get_mut(k)) else {
            // Values under a deleted key are ignored by regedit too.
            continue;
        };
        key.values.retain(|v| !v.name.eq_ignore_ascii_case(&name));
        if let Some(data) = data {
            key.values.push(Value {
                name,
                data,
                line: n,
            });
        }
    }
    Ok(export)
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Whether `line` assigns hex data, the only kind that may continue on the next line.
fn is_hex_assignment(line: &str) -> bool {
    split_name(line).is_ok_and(|(_, rest)| rest.trim_start().starts_with("hex"))
}

/// Splits `"name"=rest` or `@=rest` into the unescaped name and the text after `=`.
fn split_name(line: &str) -> Result<(String, &str), String> {
    if let Some(rest) = line.strip_prefix('@') {
        let rest = rest
            .trim_start()
            .strip_prefix('=')
            .ok_or("'@' not followed by '='")?;
        return Ok((String::new(), rest));
    }
    let body = line
        .strip_prefix('"')
        .ok_or("a value line must start with '\"' or '@'")?;
    let (name, end) = quoted(body).ok_or("value name without its closing quote")?;
    let rest = body[end..]
        .trim_start()
        .strip_prefix('=')
        .ok_or("value name not followed by '='")?;
    Ok((name, rest))
}

/// Reads a quoted string whose opening quote is already consumed: returns the unescaped text
/// and the byte offset just past the closing quote.
fn quoted(body: &str) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((text, i + 1)),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => text.push('\n'),
                    'r' => text.push('\r'),
                    't' => text.push('\t'),
                    '0' => text.push('\0'),
                    other => text.push(other),
                }
            }
            other => text.push(other),
        }
    }
    None
}

/// Parses one logical value line; `None` data is a deletion (`"name"=-`).
fn parse_value_line(line: &str) -> Result<(String, Option<Data>), String> {
    let (name, rest) = split_name(line)?;
    let rest = rest.trim();
    if rest == "-" {
        return Ok((name, None));
    }
    if let Some(body) = rest.strip_prefix('"') {
        let (text, end) = quoted(body).ok_or("string data without its closing quote")?;
        if !body[end..].trim().is_empty() {
            return Err("text after the closing quote of string data".into());
        }
        return Ok((name, Some(Data::String(text))));
    }
    if let Some(hex) = rest.strip_prefix("dword:") {
        let hex = hex.trim();
        if hex.is_empty() || hex.len() > 8 {
            return Err(format!("dword data {hex:?} is not 1 to 8 hex digits"));
        }
        let value =
            u32::from_str_radix(hex, 16).map_err(|_| format!("dword data {hex:?} is not hex"))?;
        return Ok((name, Some(Data::Dword(value))));
    }
    if let Some(after) = rest.strip_prefix("hex") {
        let (kind, bytes) = if let Some(bytes) = after.strip_prefix(':') {
            (3, bytes)
        } else {
            let inner = after
                .strip_prefix('(')
                .and_then(|a| a.split_once("):"))
                .ok_or("hex data must be hex: or hex(N):")?;
            let kind = u32::from_str_radix(inner.0.trim(), 16)
                .map_err(|_| format!("hex({}) is not a hex value type", inner.0))?;
            (kind, inner.1)
        };
        let bytes = hex_bytes(bytes)?;
        return Data::from_raw(kind, bytes).map(|d| (name, Some(d)));
    }
    Err(format!(
        "unrecognised data {:?} (expected \"string\", dword:, hex: or -)",
        rest.chars().take(24).collect::<String>()
    ))
}

/// Parses `01,02,ff` (spaces allowed, empty allowed).
fn hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|b| {
            let b = b.trim();
            if b.is_empty() || b.len() > 2 {
                return Err(format!("hex byte {b:?} is not 1 or 2 hex digits"));
            }
            u8::from_str_radix(b, 16).map_err(|_| format!("hex byte {b:?} is not hex"))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    const TEXT: &str = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server]\r\n\
\"fDenyTSConnections\"=dword:00000000\r\n\
@=\"default \\\"quoted\\\" C:\\\\x\"\r\n\
\"Bin\"=hex:01,02,\\\r\n  ff\r\n\
\"Exp\"=hex(2):25,00,53,00,00,00\r\n\
\"Multi\"=hex(7):61,00,00,00,62,00,00,00,00,00\r\n\
\"Q\"=hex(b):01,00,00,00,00,00,00,00\r\n\
; comment\r\n\
\"Gone\"=dword:1\r\n\
\"Gone\"=-\r\n";

    #[test]
    fn every_value_type_is_read_with_its_line() {
        let export = parse(TEXT).unwrap();
        let key = &export.keys[&canonical_key(
            "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server",
        )];
        assert_eq!(key.line, 3);
        let get = |name: &str| key.values.iter().find(|v| v.name == name).unwrap();
        assert_eq!(get("fDenyTSConnections").data, Data::Dword(0));
        assert_eq!(get("fDenyTSConnections").line, 4);
        assert_eq!(
            get("").data,
            Data::String("default \"quoted\" C:\\x".into())
        );
        assert_eq!(get("Bin").data, Data::Binary(vec![1, 2, 0xff]));
        assert_eq!(get("Exp").data, Data::ExpandString("%S".into()));
        assert_eq!(
            get("Multi").data,
            Data::MultiString(vec!["a".into(), "b".into()])
        );
        assert_eq!(get("Q").data, Data::Qword(1));
        assert!(key.values.iter().all(|v| v.name != "Gone"));
    }

    #[test]
    fn utf16le_with_bom_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in TEXT.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(parse_bytes(&bytes).unwrap(), parse(TEXT).unwrap());
        bytes.pop();
        let e = parse_bytes(&bytes).unwrap_err();
        assert!(e.message.contains("odd number of bytes"), "{e}");
    }

    #[test]
    fn deleted_key_is_dropped() {
        let text = "REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"x\"=\"1\"\n[-HKEY_LOCAL_MACHINE\\A]\n\"y\"=\"2\"\n";
        assert!(parse(text).unwrap().keys.is_empty());
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, line, needle) in [
            ("hello\n", 1, "header"),
            ("", 1, "empty"),
            ("REGEDIT4\n\"x\"=dword:1\n", 2, "before the first"),
            ("REGEDIT4\n[HKLM\\A\n", 2, "closing ']'"),
            ("REGEDIT4\n[HKLM\\A]\n\"x\"=dword:123456789\n", 3, "1 to 8"),
            ("REGEDIT4\n[HKLM\\A]\n\"x\"=hex:1g\n", 3, "not hex"),
            ("REGEDIT4\n[HKLM\\A]\n\"x\"=hex:01,\\\n", 3, "past the end"),
            ("REGEDIT4\n[HKLM\\A]\n\"x\"=\"open\n", 3, "closing quote"),
            ("REGEDIT4\n[HKLM\\A]\n\"x\"=hex(b):01\n", 3, "REG_QWORD"),
            ("REGEDIT4\n[HKLM\\A]\nbare\n", 3, "must start"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }
}
