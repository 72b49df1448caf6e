//! Incremental evaluation: the rules' verdicts kept in memory per subject (each asset, each
//! system), so a change re-judges only what it touches instead of the whole estate.
//!
//! - A report ([`Incremental::upsert_assets`]) re-judges its asset and the systems it is linked
//!   to, before and after the change.
//! - A register change ([`Incremental::replace_systems`]) re-judges the systems that changed,
//!   their members, and the assets whose links changed (with the systems on both sides). The
//!   caller re-links; this module only compares links.
//! - Time ([`Incremental::advance`]): every subject's verdict is valid until its next due date,
//!   the earliest instant at which time alone could change one of its findings: an asset's age
//!   in whole days once it nears the stale window, its certificate's last third and expiry; a
//!   system's review date (then daily, the message counts days), the day after an attestation
//!   expires. Due dates live in an ordered index; a round pops those that have passed.
//!
//! The invariant, proved by the randomised test below: [`Incremental::drafts`] equals
//! [`rules::evaluate`] over the same systems and assets (members in asset-id order) at the
//! time of the last call. Pure: no store, no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::catalog::System;
use crate::linking::AssetLinks;
use crate::rules::{self, EvalAsset, FindingDraft, RuleConfig};

const DAY_MS: i64 = 86_400_000;

/// A subject whose verdicts are kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Subject {
    Asset(String),
    System(String),
}

/// An asset as last judged.
struct Tracked {
    eval: EvalAsset,
    links: AssetLinks,
}

/// How much a change made the evaluator judge again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Assets re-judged.
    pub assets: usize,
    /// Systems re-judged.
    pub systems: usize,
}

/// The verdicts of an estate, kept current by changes and by time.
pub struct Incremental {
    config: RuleConfig,
    /// The register, by system id.
    systems: BTreeMap<String, System>,
    /// The assets, by asset id.
    assets: BTreeMap<String, Tracked>,
    /// Linked asset ids per system id (also for ids not in the register).
    members: HashMap<String, BTreeSet<String>>,
    /// Findings of the asset- and member-scope rules, per asset id.
    asset_drafts: HashMap<String, Vec<FindingDraft>>,
    /// Findings of the system-scope rules, per system id.
    system_drafts: HashMap<String, Vec<FindingDraft>>,
    /// (due instant ms, subject): when time alone may change a subject's findings.
    due: BTreeSet<(i64, Subject)>,
    /// The due instant of each subject in `due`.
    due_at: HashMap<Subject, i64>,
    /// Subjects judged since the last [`Incremental::take_judged`], by kind.
    judged: BTreeSet<Subject>,
}

/// The subjects judged again, whose findings and links the store must now be told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judged {
    /// Asset ids (also of assets removed).
    pub assets: Vec<String>,
    /// System ids (also of systems removed).
    pub systems: Vec<String>,
}

impl Incremental {
    /// Judges a whole estate at `now_ms` (the full evaluation).
    pub fn new(
        config: RuleConfig,
        systems: Vec<System>,
        assets: Vec<(EvalAsset, AssetLinks)>,
        now_ms: i64,
    ) -> Self {
        let mut this = Self {
            config,
            systems: systems.into_iter().map(|s| (s.id.clone(), s)).collect(),
            assets: BTreeMap::new(),
            members: HashMap::new(),
            asset_drafts: HashMap::new(),
            system_drafts: HashMap::new(),
            due: BTreeSet::new(),
            due_at: HashMap::new(),
            judged: BTreeSet::new(),
        };
        for (eval, links) in assets {
            this.insert(eval, links);
        }
        let assets: BTreeSet<String> = this.assets.keys().cloned().collect();
        let systems: BTreeSet<String> = this.systems.keys().cloned().collect();
        this.judge(&assets, &systems, now_ms);
        this
    }

    /// Every finding that holds, systems' first.
    pub fn drafts(&self) -> Vec<FindingDraft> {
        let mut drafts: Vec<FindingDraft> = Vec::new();
        for id in self.systems.keys() {
            drafts.extend(self.system_drafts.get(id).into_iter().flatten().cloned());
        }
        for id in self.assets.keys() {
            drafts.extend(self.asset_drafts.get(id).into_iter().flatten().cloned());
        }
        drafts
    }

    /// Assets known.
    pub fn asset_count(&self) -> usize {
        self.assets.len()
    }

    /// The subjects judged since the last call (all of them after [`Incremental::new`]).
    pub fn take_judged(&mut self) -> Judged {
        let mut judged = Judged::default();
        for subject in std::mem::take(&mut self.judged) {
            match subject {
                Subject::Asset(id) => judged.assets.push(id),
                Subject::System(id) => judged.systems.push(id),
            }
        }
        judged
    }

    /// The findings that hold for these subjects: of the assets (their asset- and member-scope
    /// rules) and of the systems (their system-scope rules).
    pub fn drafts_of(&self, assets: &[String], systems: &[String]) -> Vec<FindingDraft> {
        let of_systems = systems.iter().filter_map(|id| self.system_drafts.get(id));
        let of_assets = assets.iter().filter_map(|id| self.asset_drafts.get(id));
        of_systems.chain(of_assets).flatten().cloned().collect()
    }

    /// The asset's current links, if it is known.
    pub fn links(&self, asset_id: &str) -> Option<&AssetLinks> {
        self.assets.get(asset_id).map(|t| &t.links)
    }

    /// Every known asset's id with its links.
    pub fn all_links(&self) -> impl Iterator<Item = (&String, &AssetLinks)> {
        self.assets.iter().map(|(id, t)| (id, &t.links))
    }

    /// Replaces (or adds) these assets with their new links and re-judges them and the systems
    /// they are or were linked to; due subjects are judged first.
    pub fn upsert_assets(&mut self, changed: Vec<(EvalAsset, AssetLinks)>, now_ms: i64) -> Touched {
        let mut touched = self.advance(now_ms);
        let mut assets = BTreeSet::new();
        let mut systems = BTreeSet::new();
        for (eval, links) in changed {
            let id = eval.asset_id.clone();
            if let Some(old) = self.remove(&id) {
                systems.extend(old.links.links.into_iter().map(|l| l.system_id));
            }
            systems.extend(links.links.iter().map(|l| l.system_id.clone()));
            self.insert(eval, links);
            assets.insert(id);
        }
        let more = self.judge(&assets, &systems, now_ms);
        touched.assets += more.assets;
        touched.systems += more.systems;
        touched
    }

    /// Forgets these assets and re-judges the systems they were linked to.
    pub fn remove_assets(&mut self, ids: &[String], now_ms: i64) -> Touched {
        let mut touched = self.advance(now_ms);
        let mut systems = BTreeSet::new();
        let mut assets = BTreeSet::new();
        for id in ids {
            if let Some(old) = self.remove(id) {
                systems.extend(old.links.links.into_iter().map(|l| l.system_id));
                assets.insert(id.clone());
            }
        }
        let more = self.judge(&assets, &systems, now_ms);
        touched.assets += more.assets;
        touched.systems += more.systems;
        touched
    }

    /// Replaces the register. `links` are every asset's links under the new register (the
    /// caller's [`crate::linking::Linker`]); only systems that changed, their members, and
    /// assets whose links changed are judged again.
    pub fn replace_systems(
        &mut self,
        systems: Vec<System>,
        links: Vec<(String, AssetLinks)>,
        now_ms: i64,
    ) -> Touched {
        let mut touched = self.advance(now_ms);
        let new: BTreeMap<String, System> =
            systems.into_iter().map(|s| (s.id.clone(), s)).collect();
        let mut changed: BTreeSet<String> = self
            .systems
            .iter()
            .filter(|(id, old)| new.get(*id) != Some(*old))
            .map(|(id, _)| id.clone())
            .collect();
        changed.extend(
            new.keys()
                .filter(|id| !self.systems.contains_key(*id))
                .cloned(),
        );
        self.systems = new;
        let mut assets = BTreeSet::new();
        let mut judged_systems = changed.clone();
        for (id, new_links) in links {
            let Some(tracked) = self.assets.get(&id) else {
                continue;
            };
            if tracked.links == new_links {
                continue;
            }
            let Some(old) = self.remove(&id) else {
                continue;
            };
            judged_systems.extend(old.links.links.iter().map(|l| l.system_id.clone()));
            judged_systems.extend(new_links.links.iter().map(|l| l.system_id.clone()));
            self.insert(old.eval, new_links);
            assets.insert(id);
        }
        for system in &changed {
            assets.extend(self.members.get(system).into_iter().flatten().cloned());
        }
        let more = self.judge(&assets, &judged_systems, now_ms);
        touched.assets += more.assets;
        touched.systems += more.systems;
        touched
    }

    /// Judges again every subject whose due date is at or before `now_ms`.
    pub fn advance(&mut self, now_ms: i64) -> Touched {
        let mut assets = BTreeSet::new();
        let mut systems = BTreeSet::new();
        while let Some((at, _)) = self.due.first() {
            if *at > now_ms {
                break;
            }
            let Some((_, subject)) = self.due.pop_first() else {
                break;
            };
            self.due_at.remove(&subject);
            match subject {
                Subject::Asset(id) => {
                    if let Some(tracked) = self.assets.get(&id) {
                        systems.extend(tracked.links.links.iter().map(|l| l.system_id.clone()));
                    }
                    assets.insert(id);
                }
                Subject::System(id) => {
                    // An attestation that lapses changes its members' verdicts too.
                    if self
                        .systems
                        .get(&id)
                        .is_some_and(|s| !s.attestations.is_empty())
                    {
                        assets.extend(self.members.get(&id).into_iter().flatten().cloned());
                    }
                    systems.insert(id);
                }
            }
        }
        self.judge(&assets, &systems, now_ms)
    }

    fn insert(&mut self, eval: EvalAsset, links: AssetLinks) {
        let id = eval.asset_id.clone();
        for link in &links.links {
            self.members
                .entry(link.system_id.clone())
                .or_default()
                .insert(id.clone());
        }
        self.assets.insert(id, Tracked { eval, links });
    }

    fn remove(&mut self, id: &str) -> Option<Tracked> {
        let old = self.assets.remove(id)?;
        for link in &old.links.links {
            if let Some(members) = self.members.get_mut(&link.system_id) {
                members.remove(id);
                if members.is_empty() {
                    self.members.remove(&link.system_id);
                }
            }
        }
        Some(old)
    }

    fn judge(
        &mut self,
        assets: &BTreeSet<String>,
        systems: &BTreeSet<String>,
        now_ms: i64,
    ) -> Touched {
        let ctx = crate::evaluation::context(&self.config, now_ms);
        for id in assets {
            let Some(tracked) = self.assets.get(id) else {
                self.judged.insert(Subject::Asset(id.clone()));
                self.asset_drafts.remove(id);
                self.schedule(Subject::Asset(id.clone()), None);
                continue;
            };
            let member_of: Vec<&System> = tracked
                .links
                .links
                .iter()
                .filter_map(|l| self.systems.get(&l.system_id))
                .collect();
            self.judged.insert(Subject::Asset(id.clone()));
            let drafts = rules::evaluate_asset(&tracked.eval, &member_of, &ctx);
            let due = asset_due(&tracked.eval, &ctx);
            self.asset_drafts.insert(id.clone(), drafts);
            self.schedule(Subject::Asset(id.clone()), due);
        }
        for id in systems {
            self.judged.insert(Subject::System(id.clone()));
            let Some(system) = self.systems.get(id) else {
                self.system_drafts.remove(id);
                self.schedule(Subject::System(id.clone()), None);
                continue;
            };
            let members: Vec<&EvalAsset> = self
                .members
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|a| self.assets.get(a).map(|t| &t.eval))
                .collect();
            let drafts = rules::evaluate_system(system, &members, &ctx);
            let due = system_due(system, &ctx);
            self.system_drafts.insert(id.clone(), drafts);
            self.schedule(Subject::System(id.clone()), due);
        }
        Touched {
            assets: assets.len(),
            systems: systems.len(),
        }
    }

    fn schedule(&mut self, subject: Subject, at: Option<i64>) {
        if let Some(old) = self.due_at.remove(&subject) {
            self.due.remove(&(old, subject.clone()));
        }
        if let Some(at) = at {
            self.due.insert((at, subject.clone()));
            self.due_at.insert(subject, at);
        }
    }
}

/// The earliest instant after `ctx.now_ms` at which time alone could change the asset's
/// findings (or those of its systems): its age in whole days, once the next age reaches the
/// stale window (the stale finding and `unverified-system` count days); the day an administrator
/// becomes dormant (`k23-privileged`); its certificate's last
/// third and its expiry. Early is harmless (a re-judge that changes nothing); late is a bug.
fn asset_due(asset: &EvalAsset, ctx: &rules::Context) -> Option<i64> {
    let now = i128::from(ctx.now_ms);
    let seen = i128::from(asset.last_seen_at);
    let day = i128::from(DAY_MS);
    let age = now - seen;
    // `/` truncates toward zero, as the rules' own day count does.
    let days = age / day;
    let next_change = if age >= 0 {
        seen + (days + 1) * day
    } else if days == 0 {
        seen + day
    } else {
        seen + days * day + 1
    };
    let stale_days = i128::from(ctx.config.stale_after_days);
    let mut due = if age >= 0 && days + 1 < stale_days {
        // Nothing depends on the age until it reaches the window.
        seen + stale_days * day
    } else {
        next_change
    };
    if let Some(day) = rules::next_dormancy(asset, ctx.today, ctx.config.dormant_admin_after_days) {
        // `today` is a local date: the day begins in the furthest zone east (UTC+14) 14 hours
        // before UTC midnight. Early is harmless.
        let at = i128::from(day.midnight().assume_utc().unix_timestamp()) * 1000 - 14 * 3_600_000;
        due = due.min(at.max(now + 1));
    }
    if let Some(cert) = &asset.certificate {
        let (issued, expires) = (i128::from(cert.issued_at), i128::from(cert.not_after));
        for at in [issued + (expires - issued) * 2 / 3, expires] {
            if at > now {
                due = due.min(at);
            }
        }
    }
    (due > now).then(|| i64::try_from(due).unwrap_or(i64::MAX))
}

/// The earliest instant after `ctx.now_ms` at which the date alone could change the system's
/// findings or its members': the day its review falls due (then every day, as the message
/// counts them), and the day after each attestation's last valid day.
fn system_due(system: &System, ctx: &rules::Context) -> Option<i64> {
    let midnight = |date: time::Date| -> i128 {
        i128::from(date.midnight().assume_utc().unix_timestamp()) * i128::from(DAY_MS / 86_400)
    };
    let now = i128::from(ctx.now_ms);
    let tomorrow = ctx.today.next_day().map(midnight);
    let mut due: Option<i128> = None;
    let mut consider = |at: i128| {
        if at > now {
            due = Some(due.map_or(at, |d| d.min(at)));
        }
    };
    if let Some(classification) = &system.classification {
        let review = midnight(classification.classified_at)
            + (i128::from(ctx.config.review_after_days) + 1) * i128::from(DAY_MS);
        if review > now {
            consider(review);
        } else if let Some(tomorrow) = tomorrow {
            consider(tomorrow);
        }
    }
    for attestation in &system.attestations {
        if let Some(lapse) = attestation.expires_at.next_day() {
            consider(midnight(lapse));
        }
    }
    due.map(|d| i64::try_from(d).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Attestation, Classification, LinkRules, Person};
    use crate::linking::Link;
    use crate::rules::AgentCertificate;
    use crate::store::ControlRecord;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const START_MS: i64 = 1_795_000_000_000;
    const STATES: &[&str] = &[
        "enforced",
        "available",
        "absent",
        "unknown",
        "encrypted",
        "plaintext",
        "unencrypted",
        "forwarded",
        "local",
        "local_only",
        "none",
        "restricted",
        "unrestricted",
        "exposed",
        "attested",
    ];

    fn date(ms: i64) -> time::Date {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .unwrap()
            .date()
    }

    fn random_system(rng: &mut StdRng, id: &str, now: i64) -> System {
        let day =
            |rng: &mut StdRng, spread: i64| date(now + rng.random_range(-spread..=spread) * DAY_MS);
        let attestations = (0..rng.random_range(0..3))
            .map(|_| Attestation {
                control: [
                    "mfa",
                    "transit_encryption",
                    "rest_encryption",
                    NO_FOOTPRINT_NAME,
                ][rng.random_range(0..4)]
                .into(),
                statement: "s".into(),
                attested_by: "CISO".into(),
                attested_at: day(rng, 400),
                expires_at: day(rng, 6),
            })
            .collect();
        System {
            id: id.into(),
            name: format!("System {id}"),
            description: String::new(),
            system_owner: rng.random_bool(0.8).then(|| Person {
                name: "Anna".into(),
                email: None,
            }),
            system_administrator: None,
            information_owner: None,
            classification: rng.random_bool(0.85).then(|| Classification {
                k: rng.random_range(0..=3),
                r: 1,
                t: 1,
                s: rng.random_bool(0.3).then(|| rng.random_range(0..=3)),
                // Around the 365-day review boundary.
                classified_at: day(rng, 4).saturating_sub(time::Duration::days(365)),
                classified_by: "CISO".into(),
                rationale: String::new(),
            }),
            critical_to_society: rng.random_bool(0.2),
            business_critical: rng.random_bool(0.2),
            links: LinkRules::default(),
            attestations,
        }
    }

    const NO_FOOTPRINT_NAME: &str = crate::rules::NO_FOOTPRINT;

    fn random_asset(
        rng: &mut StdRng,
        id: &str,
        now: i64,
        systems: usize,
    ) -> (EvalAsset, AssetLinks) {
        let names: Vec<&str> = crate::catalog::CONTROLS
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.7))
            .collect();
        let controls = names
            .iter()
            .map(|name| {
                let state = STATES[rng.random_range(0..STATES.len())];
                // Administrators' last logins around the dormancy threshold (90 days), so the
                // passage of time makes some of them dormant during the run.
                let evidence = if *name == "privileged_access" {
                    (0..rng.random_range(0..3))
                        .map(|i| {
                            let detail = if rng.random_bool(0.2) {
                                format!("adm{i}: never logged in")
                            } else {
                                let at = now - rng.random_range(50 * DAY_MS..100 * DAY_MS);
                                let at = time::OffsetDateTime::from_unix_timestamp(at / 1000)
                                    .unwrap()
                                    .format(&time::format_description::well_known::Rfc3339)
                                    .unwrap();
                                format!("adm{i}: last login {at}")
                            };
                            crate::store::StoredEvidence {
                                source: "/var/log/lastlog".into(),
                                line: 0,
                                probe: "last-login".into(),
                                detail,
                            }
                        })
                        .collect()
                } else {
                    vec![]
                };
                (
                    (*name).to_string(),
                    ControlRecord {
                        name: (*name).into(),
                        state: state.into(),
                        reason: "r".into(),
                        evidence,
                    },
                )
            })
            .collect();
        let certificate = rng.random_bool(0.7).then(|| {
            let issued = now - rng.random_range(0..60) * DAY_MS;
            AgentCertificate {
                agent_id: format!("agent-{id}"),
                issued_at: issued,
                not_after: issued + rng.random_range(1..90) * DAY_MS,
            }
        });
        let eval = EvalAsset {
            asset_id: id.into(),
            kind: if rng.random_bool(0.8) {
                "host"
            } else {
                "device"
            }
            .into(),
            label: format!("host-{id}"),
            controls,
            // Up to 10 days back, a few hours ahead (clock skew).
            last_seen_at: now - rng.random_range(-4 * 3_600_000..10 * DAY_MS),
            certificate,
        };
        let mut links = AssetLinks::default();
        for _ in 0..rng.random_range(0..=3) {
            // Index `systems` is a system not in the register.
            let system_id = format!("s{}", rng.random_range(0..=systems));
            if !links.links.iter().any(|l| l.system_id == system_id) {
                links.links.push(Link {
                    system_id,
                    reason: "test".into(),
                    explicit: rng.random_bool(0.5),
                });
            }
        }
        (eval, links)
    }

    fn sorted(mut drafts: Vec<FindingDraft>) -> Vec<FindingDraft> {
        drafts.sort_by_key(FindingDraft::key);
        drafts
    }

    fn full(
        systems: &BTreeMap<String, System>,
        assets: &BTreeMap<String, (EvalAsset, AssetLinks)>,
        config: &RuleConfig,
        now: i64,
    ) -> Vec<FindingDraft> {
        let systems: Vec<System> = systems.values().cloned().collect();
        let (evals, links): (Vec<EvalAsset>, Vec<AssetLinks>) = assets.values().cloned().unzip();
        sorted(rules::evaluate(
            &systems,
            &evals,
            &links,
            &crate::evaluation::context(config, now),
        ))
    }

    /// An estate large enough for the full evaluation to judge it in parallel parts
    /// ([`crate::parallel`]): the parts together give what judging each subject on its own does.
    #[test]
    fn a_full_evaluation_in_parallel_parts_equals_judging_each_subject() {
        let config = RuleConfig::default();
        let mut rng = StdRng::seed_from_u64(99);
        let now = START_MS;
        let system_count = 300;
        let systems: BTreeMap<String, System> = (0..system_count)
            .map(|i| {
                let id = format!("s{i}");
                (id.clone(), random_system(&mut rng, &id, now))
            })
            .collect();
        let assets: BTreeMap<String, (EvalAsset, AssetLinks)> = (0..9_000)
            .map(|i| {
                let id = format!("a{i:05}");
                (id.clone(), random_asset(&mut rng, &id, now, system_count))
            })
            .collect();
        let inc = Incremental::new(
            config.clone(),
            systems.values().cloned().collect(),
            assets.values().cloned().collect(),
            now,
        );
        let full = full(&systems, &assets, &config, now);
        assert!(
            full.len() > 9_000,
            "the estate judged: {} findings",
            full.len()
        );
        assert_eq!(sorted(inc.drafts()), full);
    }

    /// Random reports, removals, register edits and the passage of time, checked after every
    /// step against a full evaluation of the same estate.
    #[test]
    fn incremental_and_full_evaluation_give_identical_findings_on_a_randomised_estate() {
        let config = RuleConfig::default();
        for seed in 0..12 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut now = START_MS + rng.random_range(0..DAY_MS);
            let system_count = 10;
            let mut systems: BTreeMap<String, System> = (0..system_count)
                .map(|i| {
                    let id = format!("s{i}");
                    (id.clone(), random_system(&mut rng, &id, now))
                })
                .collect();
            let mut assets: BTreeMap<String, (EvalAsset, AssetLinks)> = (0..50)
                .map(|i| {
                    let id = format!("a{i:03}");
                    (id.clone(), random_asset(&mut rng, &id, now, system_count))
                })
                .collect();
            let mut inc = Incremental::new(
                config.clone(),
                systems.values().cloned().collect(),
                assets.values().cloned().collect(),
                now,
            );
            assert_eq!(sorted(inc.drafts()), full(&systems, &assets, &config, now));
            let mut opened = 0;
            for step in 0..80 {
                // Time moves by up to a day and a half per step, sometimes not at all.
                if rng.random_bool(0.6) {
                    now += rng.random_range(0..36 * 3_600_000);
                }
                match rng.random_range(0..10) {
                    0..=3 => {
                        let changed: Vec<(EvalAsset, AssetLinks)> = (0..rng.random_range(1..4))
                            .map(|_| {
                                let id = format!("a{:03}", rng.random_range(0..60));
                                random_asset(&mut rng, &id, now, system_count)
                            })
                            .collect();
                        for (eval, links) in &changed {
                            assets.insert(eval.asset_id.clone(), (eval.clone(), links.clone()));
                        }
                        let touched = inc.upsert_assets(changed, now);
                        assert!(touched.assets >= 1);
                    }
                    4 => {
                        let id = format!("a{:03}", rng.random_range(0..60));
                        assets.remove(&id);
                        inc.remove_assets(&[id], now);
                    }
                    5 | 6 => {
                        // A register import: some systems edited, one maybe gone or new, some
                        // assets re-linked.
                        for _ in 0..rng.random_range(1..3) {
                            let id = format!("s{}", rng.random_range(0..=system_count));
                            if rng.random_bool(0.2) {
                                systems.remove(&id);
                            } else {
                                systems.insert(id.clone(), random_system(&mut rng, &id, now));
                            }
                        }
                        for _ in 0..rng.random_range(0..4) {
                            let id = format!("a{:03}", rng.random_range(0..60));
                            if let Some((eval, _)) = assets.get(&id).cloned() {
                                let (_, links) = random_asset(&mut rng, &id, now, system_count);
                                assets.insert(id, (eval, links));
                            }
                        }
                        let links = assets
                            .iter()
                            .map(|(id, (_, links))| (id.clone(), links.clone()))
                            .collect();
                        inc.replace_systems(systems.values().cloned().collect(), links, now);
                    }
                    _ => {
                        inc.advance(now);
                    }
                }
                let expected = full(&systems, &assets, &config, now);
                opened += expected.len();
                assert_eq!(
                    sorted(inc.drafts()),
                    expected,
                    "seed {seed}, step {step}, at {now}"
                );
            }
            assert!(opened > 0, "the estate produced findings");
        }
    }

    #[test]
    fn a_report_re_judges_its_asset_and_its_systems_only() {
        let config = RuleConfig::default();
        let mut rng = StdRng::seed_from_u64(7);
        let now = START_MS;
        let systems: Vec<System> = (0..20)
            .map(|i| random_system(&mut rng, &format!("s{i}"), now))
            .collect();
        let assets: Vec<(EvalAsset, AssetLinks)> = (0..500)
            .map(|i| random_asset(&mut rng, &format!("a{i:03}"), now, 20))
            .collect();
        let (eval, links) = assets[3].clone();
        let linked = links.links.len();
        let mut inc = Incremental::new(config, systems, assets, now);
        let touched = inc.upsert_assets(vec![(eval, links)], now);
        assert_eq!(
            touched,
            Touched {
                assets: 1,
                systems: linked
            }
        );
    }
}
