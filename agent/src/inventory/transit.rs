//! The `transit_encryption` control: are the services this host exposes encrypted on the wire?
//!
//! Exposed means a TCP listener not bound to loopback. The verdict is `plaintext` if any exposed
//! service was identified as plaintext (STARTTLS offers included: the client may skip them),
//! else `unknown` if any could not be decided or was not probed (fixture roots are never
//! probed), else `encrypted` (every exposed service speaks TLS or SSH). `unknown` is never ok.
//! UDP services are not probed; exposed ones are named in the reason so nobody reads the
//! verdict as covering them. This module decides only; it does not probe.

use std::collections::BTreeMap;

use super::listeners::{Listener, Transport};
use super::tls_probe::{Encryption, ServiceVerdict};
use super::{Control, Evidence};

/// Derives the control from the listeners and the probe verdicts keyed by [`Listener::key`].
pub fn control(listeners: &[Listener], verdicts: &BTreeMap<String, ServiceVerdict>) -> Control {
    let exposed: Vec<&Listener> = listeners
        .iter()
        .filter(|l| l.transport == Transport::Tcp && l.is_exposed())
        .collect();
    let udp = listeners
        .iter()
        .filter(|l| l.transport == Transport::Udp && l.is_exposed())
        .count();
    let udp_note = if udp > 0 {
        format!("; {udp} exposed UDP listener(s) not assessed")
    } else {
        String::new()
    };
    let mut plaintext = Vec::new();
    let mut undecided = Vec::new();
    let mut encrypted = Vec::new();
    for listener in &exposed {
        let key = listener.key();
        match verdicts.get(&key) {
            Some(v) if v.encryption == Encryption::Plaintext => {
                plaintext.push((*listener, Some(v)));
            }
            Some(v) if v.encryption == Encryption::Encrypted => {
                encrypted.push((*listener, Some(v)));
            }
            other => undecided.push((*listener, other)),
        }
    }
    let (state, reason, named) = if !plaintext.is_empty() {
        let names = describe(&plaintext);
        (
            "plaintext",
            format!("exposed plaintext service(s): {names}{udp_note}"),
            plaintext,
        )
    } else if !undecided.is_empty() {
        let names = describe(&undecided);
        (
            "unknown",
            format!("exposed service(s) not identified: {names}{udp_note}"),
            undecided,
        )
    } else if exposed.is_empty() {
        (
            "encrypted",
            format!("no TCP service is exposed beyond loopback{udp_note}"),
            Vec::new(),
        )
    } else {
        let names = describe(&encrypted);
        (
            "encrypted",
            format!("every exposed TCP service is TLS or SSH: {names}{udp_note}"),
            encrypted,
        )
    };
    Control {
        name: "transit_encryption".into(),
        state: state.into(),
        reason,
        evidence: named
            .iter()
            .map(|(listener, verdict)| evidence(listener, *verdict))
            .collect(),
    }
}

fn describe(list: &[(&Listener, Option<&ServiceVerdict>)]) -> String {
    list.iter()
        .map(|(listener, verdict)| {
            let protocol = verdict.map_or("not probed", |v| v.protocol.as_str());
            format!("{} ({protocol})", listener.key())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn evidence(listener: &Listener, verdict: Option<&ServiceVerdict>) -> Evidence {
    let mut evidence = listener.evidence();
    if let Some(verdict) = verdict {
        evidence.detail = format!(
            "{} via {}: {}",
            verdict.protocol, verdict.target, evidence.detail
        );
    }
    evidence
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;
    use crate::inventory::listeners::parse_table;
    use std::net::SocketAddr;

    const TCP: &str = "header\n 0: 00000000:0016 00000000:0000 0A 0:0 0:0 0 0 0 11 1\n 1: 00000000:0050 00000000:0000 0A 0:0 0:0 0 0 0 12 1\n 2: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 13 1\n";

    fn verdict(encryption: Encryption, protocol: &str) -> ServiceVerdict {
        ServiceVerdict::new(SocketAddr::from(([127, 0, 0, 1], 1)), encryption, protocol)
    }

    fn listeners() -> Vec<Listener> {
        parse_table(TCP, Transport::Tcp, "/proc/net/tcp").0
    }

    #[test]
    fn plaintext_wins_and_names_the_service() {
        let mut verdicts = BTreeMap::new();
        verdicts.insert(
            "tcp 0.0.0.0:22".to_string(),
            verdict(Encryption::Encrypted, "ssh"),
        );
        verdicts.insert(
            "tcp 0.0.0.0:80".to_string(),
            verdict(Encryption::Plaintext, "http"),
        );
        let control = control(&listeners(), &verdicts);
        assert_eq!(control.state, "plaintext");
        assert!(
            control.reason.contains("tcp 0.0.0.0:80 (http)"),
            "{}",
            control.reason
        );
        assert_eq!(control.evidence.len(), 1);
        assert_eq!(control.evidence[0].line, 3);
    }

    #[test]
    fn unprobed_is_unknown_and_loopback_is_ignored() {
        let mut verdicts = BTreeMap::new();
        verdicts.insert(
            "tcp 0.0.0.0:22".to_string(),
            verdict(Encryption::Encrypted, "ssh"),
        );
        verdicts.insert(
            "tcp 127.0.0.1:8080".to_string(),
            verdict(Encryption::Plaintext, "http"),
        );
        let control = control(&listeners(), &verdicts);
        assert_eq!(control.state, "unknown");
        assert!(control.reason.contains("tcp 0.0.0.0:80 (not probed)"));
        verdicts.insert(
            "tcp 0.0.0.0:80".to_string(),
            verdict(Encryption::Encrypted, "tls"),
        );
        assert_eq!(super::control(&listeners(), &verdicts).state, "encrypted");
    }

    #[test]
    fn nothing_exposed_is_encrypted() {
        let control = control(&[], &BTreeMap::new());
        assert_eq!(control.state, "encrypted");
        assert!(control.evidence.is_empty());
    }
}
