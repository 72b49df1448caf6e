//! Message catalogues: every string shown to people, one TOML file per language in
//! `messages/` (Swedish first, English selectable), embedded in the binary, shared by the
//! management report and the web interface. A missing key shows the key itself (and a test
//! fails); nothing here panics.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// A language with a catalogue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// Svenska: the default.
    #[default]
    Sv,
    /// English.
    En,
}

impl Lang {
    /// From a cookie or query value; unknown values give the default.
    pub fn parse(code: &str) -> Self {
        Self::from_code(code).unwrap_or_default()
    }

    /// Exactly `sv` or `en`; `None` for a language without a catalogue.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "sv" => Some(Self::Sv),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The BCP 47 code used in `<html lang>` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Self::Sv => "sv",
            Self::En => "en",
        }
    }

    /// This language's messages.
    pub fn messages(self) -> Messages {
        Messages {
            lang: self,
            catalogue: match self {
                Self::Sv => &SV,
                Self::En => &EN,
            },
        }
    }
}

/// Source text of the catalogues, by language code.
pub const SOURCES: [(&str, &str); 2] = [
    ("sv", include_str!("messages/sv.toml")),
    ("en", include_str!("messages/en.toml")),
];

/// Parses one catalogue: a flat table of key = "text".
pub fn parse(source: &str) -> Result<BTreeMap<String, String>, toml::de::Error> {
    toml::from_str(source)
}

fn load(index: usize) -> BTreeMap<String, String> {
    parse(SOURCES[index].1).unwrap_or_else(|error| {
        tracing::error!(language = SOURCES[index].0, %error, "message catalogue does not parse");
        BTreeMap::new()
    })
}

static SV: LazyLock<BTreeMap<String, String>> = LazyLock::new(|| load(0));
static EN: LazyLock<BTreeMap<String, String>> = LazyLock::new(|| load(1));

/// The messages of one language.
#[derive(Clone, Copy, Debug)]
pub struct Messages {
    /// The language.
    pub lang: Lang,
    catalogue: &'static BTreeMap<String, String>,
}

impl Messages {
    /// The text for `key`, or the key itself when missing.
    pub fn get<'a>(&self, key: &'a str) -> &'a str {
        self.catalogue.get(key).map_or(key, String::as_str)
    }

    /// The text for `key` when this catalogue has one.
    pub fn lookup(&self, key: &str) -> Option<&'static str> {
        self.catalogue.get(key).map(String::as_str)
    }

    /// The text for `key` with `{}` replaced by `arg`.
    pub fn with(&self, key: &str, arg: &str) -> String {
        self.with_args(key, &[arg])
    }

    /// The text for `key` with each `{}` replaced by the next of `args`, in one pass: an
    /// argument is data (a host name from an agent) and a `{}` inside it stays as it is.
    pub fn with_args(&self, key: &str, args: &[&str]) -> String {
        let template = self.catalogue.get(key).map_or(key, String::as_str);
        let mut text = String::with_capacity(template.len());
        let mut args = args.iter();
        let mut pieces = template.split("{}");
        if let Some(first) = pieces.next() {
            text.push_str(first);
        }
        for piece in pieces {
            match args.next() {
                Some(arg) => text.push_str(arg),
                None => text.push_str("{}"),
            }
            text.push_str(piece);
        }
        text
    }

    /// `<html lang>` value.
    pub fn code(&self) -> &'static str {
        self.lang.code()
    }
}

/// A sentence in no particular language: catalogue clauses with their arguments, joined by
/// `; ` when rendered. Findings store it, so the web interface and the report show them in the
/// reader's language. Arguments are data (host and account names, control states) and are never
/// looked up or expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(pub Vec<Clause>);

/// One clause of a [`Text`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clause {
    /// A catalogue key, `finding.k3-auth`.
    pub key: String,
    /// One per `{}` of the key's text, in order.
    pub args: Vec<String>,
}

impl Text {
    /// A text of one clause.
    pub fn new<A: ToString>(key: &str, args: &[A]) -> Self {
        Self(Vec::new()).and(key, args)
    }

    /// This text with another clause.
    #[must_use]
    pub fn and<A: ToString>(mut self, key: &str, args: &[A]) -> Self {
        self.0.push(Clause {
            key: key.to_string(),
            args: args.iter().map(ToString::to_string).collect(),
        });
        self
    }

    /// The text in the language of `t`.
    pub fn render(&self, t: &Messages) -> String {
        self.0
            .iter()
            .map(|c| {
                t.with_args(
                    &c.key,
                    &c.args.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `t.get("…")` / `t.with("…"` key used in the code that renders for people.
    fn used_keys() -> BTreeSet<String> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join("report.rs"), src.join("rules.rs")];
        for dir in ["report", "web", "web/templates"] {
            let Ok(entries) = std::fs::read_dir(src.join(dir)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rs" || e == "html") {
                    files.push(path);
                }
            }
        }
        let mut keys = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for opener in [
                "t.get(\"",
                "t.with(\"",
                "t.with_args(\"",
                "msg(\"",
                "Text::new(\"",
                ".and(\"",
            ] {
                for piece in text.split(opener).skip(1) {
                    keys.insert(piece.split('"').next().unwrap().to_string());
                }
            }
        }
        keys
    }

    #[test]
    fn catalogues_parse_and_have_the_same_keys() {
        let sv = parse(SOURCES[0].1).unwrap();
        let en = parse(SOURCES[1].1).unwrap();
        // The rule table's own English is the English of `policy.*` and `remediation.*`.
        let own = |k: &&String| !k.starts_with("policy.") && !k.starts_with("remediation.");
        let sv_keys: BTreeSet<_> = sv.keys().filter(own).collect();
        let en_keys: BTreeSet<_> = en.keys().filter(own).collect();
        for rule in crate::rules::RULES {
            for key in [
                format!("policy.{}", rule.id),
                format!("remediation.{}", rule.id),
            ] {
                assert!(sv.contains_key(&key), "sv.toml lacks {key}");
            }
        }
        assert_eq!(
            sv_keys.symmetric_difference(&en_keys).collect::<Vec<_>>(),
            Vec::<&&String>::new(),
            "keys in one catalogue only"
        );
    }

    #[test]
    fn every_key_used_is_in_every_catalogue() {
        let used = used_keys();
        assert!(used.len() > 60, "found only {} keys: {used:?}", used.len());
        for (code, source) in SOURCES {
            let catalogue = parse(source).unwrap();
            let missing: Vec<_> = used
                .iter()
                .filter(|k| !catalogue.contains_key(*k))
                .collect();
            assert!(missing.is_empty(), "{code}.toml lacks {missing:?}");
        }
    }

    #[test]
    fn only_languages_with_a_catalogue_are_accepted() {
        assert_eq!(Lang::from_code("sv"), Some(Lang::Sv));
        assert_eq!(Lang::from_code("de"), None);
        assert_eq!(Lang::parse("de"), Lang::Sv);
        let t = Lang::Sv.messages();
        assert_eq!(t.with_args("report.title", &[]), t.get("report.title"));
        assert!(t.get("report.title").contains('å'));
        assert!(t.get("role.owner").contains('ä'), "{}", t.get("role.owner"));
        assert_eq!(Lang::En.messages().get("role.owner"), "System owner");
    }

    #[test]
    fn arguments_are_data() {
        let t = Lang::En.messages();
        assert_eq!(
            t.with_args("finding.k3-auth", &["{}{}", "absent"]),
            "{}{} holds K3 information but multi-factor authentication is absent, not enforced"
        );
        let text = Text::new("finding.stale-asset", &["db1", "9"]).and("no.such.key", &["x"]);
        assert_eq!(text.render(&t), "db1 was last seen 9 days ago; no.such.key");
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(serde_json::from_str::<Text>(&json).unwrap(), text);
        assert!(
            Text::new("finding.stale-asset", &["db1", "9"])
                .render(&Lang::Sv.messages())
                .contains("db1")
        );
    }
}
