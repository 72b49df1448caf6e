//! The serving collector's evaluation, kept current round by round: the first round after it
//! takes the evaluation lease judges the whole estate ([`crate::incremental::Incremental`]
//! built from everything stored) and writes every finding; later rounds ask the store only
//! what changed, judge that again, and write only the findings and links of what they judged.
//!
//! # What a round reads, and why it misses nothing
//!
//! - **Assets and agents**: every write transaction that changes what the evaluation reads
//!   from an asset or an agent (report, enrollment, renewal, revocation) takes the next number
//!   of one store-wide counter and stamps it on the rows it writes (migration 0016). Taking a
//!   number locks the counter row until that transaction ends, so the next writer gets its
//!   number only after it committed or rolled back: numbers follow commit order whichever
//!   collector writes, on PostgreSQL too, without assuming it (SQLite has one writer anyway).
//!   A round reads, in one statement and so one snapshot ([`Store::changes`]), the counter W
//!   and the ids numbered above the previous round's W (by index); every write that snapshot
//!   holds is numbered at or below W, every other one (committed later, or still running)
//!   above it, so the next round lists it. The changed rows are fetched after that statement, so what is held is
//!   never older than W (at worst a row is fetched once more than needed). An agent's change
//!   (certificate renewed, revoked) re-reads its assets, whose certificate and labels it
//!   gives. Nothing removes assets or agents, but a removal would still be seen: every row
//!   in the snapshot is held or listed, so the same statement's row counts equal the ids held
//!   plus the new ones listed unless a held row is gone, and then the round starts again
//!   from the whole estate.
//! - **Register**: every write of it (import, review, attestation) takes a change number too
//!   and records it as the register's; the register is read again only when that number, an
//!   agent or the day changed (the built-in `tillsyn` system is dated today and exists when
//!   an agent carries its label). A change re-links every asset in memory (no store reads)
//!   and re-judges what [`Incremental::replace_systems`] finds changed.
//! - **Time**: [`Incremental::advance`] re-judges the subjects whose due date passed.
//! - **Acceptances** are made by people between rounds: every accepted finding is read (few,
//!   by the state index) and its subject judged again when the acceptance expired or the
//!   finding no longer holds, as a full evaluation would reopen or resolve it.
//! - **Someone else's writes**: the CLI, `catalog import`, the web's "evaluate now" and
//!   scheduled evaluation jobs write findings from a full evaluation, possibly of an older
//!   snapshot. Every write of findings or links counts up one generation; a round that finds
//!   another generation than its own last write's starts again from the whole estate, and the
//!   scoped write itself is refused when the generation moved in between (checked in its
//!   transaction).
//!
//! So after every round the stored findings and links are those a full evaluation at the same
//! instant would store (proved by the randomised tests below against
//! [`crate::evaluation::evaluate`] on both back-ends). A round in which nothing changed reads
//! the changes (one statement: no ids, the counter, two row counts, the register's number and
//! the findings generation) and the accepted findings, and records the evaluation (so open
//! findings stay "last seen" now, and the summary's counts come from counting findings by
//! state, as a full evaluation's do); it judges nothing. The two row counts and the count of
//! findings by state are what of a quiet round still grows with the estate. Agent labels are
//! fixed at enrollment, so an agent's labels change only by it being new. Any error, and the
//! loss of the lease, drops the state: the next round starts from the whole estate.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::catalog::System;
use crate::evaluation;
use crate::incremental::{Incremental, Judged};
use crate::linking::{LinkSubject, Linker};
use crate::rules::RuleConfig;
use crate::store::{
    AgentView, AssetRecord, Changes, EvaluationScope, EvaluationSummary, Store, StoreError,
};

/// Changed agents above which one read of all agents is cheaper than one read each.
const AGENTS_READ_ONE_BY_ONE: usize = 32;

/// What one round did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    /// The evaluation as recorded.
    pub summary: EvaluationSummary,
    /// The whole estate was judged (first round, or after someone else wrote findings).
    pub full: bool,
    /// The subjects judged again and written (every subject in a full round).
    pub judged: Judged,
}

/// The serving collector's evaluation state, across rounds; empty until the first round.
pub struct Evaluator {
    config: RuleConfig,
    state: Option<State>,
}

/// What linking uses of an asset, kept to re-link it when the register changes.
struct Linkable {
    subject: LinkSubject,
    kind: String,
}

struct State {
    verdicts: Incremental,
    /// The store's change number read before the rows held (the next round asks for what
    /// changed after it).
    watermark: i64,
    /// Ids of the assets and agents held.
    assets: HashSet<String>,
    agents: HashSet<String>,
    agent_views: HashMap<String, AgentView>,
    /// Asset ids per agent id.
    agent_assets: HashMap<String, BTreeSet<String>>,
    linkable: HashMap<String, Linkable>,
    /// The register's change number, read before the register held.
    register: i64,
    /// The day the built-in system in `systems` is dated.
    register_day: time::Date,
    /// The register as evaluated (with the built-in).
    systems: Vec<System>,
    linker: Linker,
    /// The findings generation after this evaluator's last write.
    generation: i64,
}

impl Evaluator {
    /// An evaluator that judges with `config`.
    pub fn new(config: RuleConfig) -> Self {
        Self {
            config,
            state: None,
        }
    }

    /// Forgets the state (the lease was lost): the next round judges the whole estate.
    pub fn forget(&mut self) {
        self.state = None;
    }

    /// True when the next round will be incremental.
    pub fn is_warm(&self) -> bool {
        self.state.is_some()
    }

    /// One round at `now_ms`; on an error the state is dropped.
    pub async fn round(&mut self, store: &dyn Store, now_ms: i64) -> Result<Round, StoreError> {
        let outcome = match self.state.take() {
            Some(state) => self.incremental(state, store, now_ms).await?,
            None => None,
        };
        if let Some((state, round)) = outcome {
            self.state = Some(state);
            return Ok(round);
        }
        let (state, round) = self.full(store, now_ms).await?;
        self.state = Some(state);
        Ok(round)
    }

    /// Judges the whole estate and writes every finding and link.
    async fn full(&self, store: &dyn Store, now_ms: i64) -> Result<(State, Round), StoreError> {
        // Read before the rows, so nothing held is older than the watermark.
        let changes = store.changes(None).await?;
        let register_day = today();
        let (agents, assets, stored_register) =
            tokio::try_join!(store.agent_views(), store.assets(), store.systems())?;
        let agent_views: HashMap<String, AgentView> = agents
            .into_iter()
            .map(|view| (view.agent_id.clone(), view))
            .collect();
        let systems =
            evaluation::register(stored_register, agent_views.values().map(|v| &v.labels));
        let linker = Linker::new(&systems);
        let mut state = State {
            verdicts: Incremental::new(self.config.clone(), systems.clone(), vec![], now_ms),
            watermark: changes.watermark,
            assets: assets.iter().map(|a| a.asset_id.clone()).collect(),
            agents: agent_views.keys().cloned().collect(),
            agent_views,
            agent_assets: HashMap::new(),
            linkable: HashMap::new(),
            register: changes.register,
            register_day,
            systems,
            linker,
            generation: changes.findings,
        };
        let judged_assets = assets.into_iter().map(|a| state.track(a)).collect();
        state.verdicts = Incremental::new(
            self.config.clone(),
            state.systems.clone(),
            judged_assets,
            now_ms,
        );
        let judged = state.verdicts.take_judged();
        let links = state.links_of(state.verdicts.all_links().map(|(id, _)| id.as_str()));
        let drafts = state.verdicts.drafts();
        let applied = store
            .apply_evaluation(&EvaluationScope::All, &drafts, &links, None, now_ms)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an unconditional write was refused".into()))?;
        state.generation = applied.generation;
        let round = Round {
            summary: applied.summary,
            full: true,
            judged,
        };
        Ok((state, round))
    }

    /// Judges what changed since the last round; None when the whole estate must be judged
    /// again (someone else wrote findings).
    async fn incremental(
        &self,
        mut state: State,
        store: &dyn Store,
        now_ms: i64,
    ) -> Result<Option<(State, Round)>, StoreError> {
        let changes = store.changes(Some(state.watermark)).await?;
        if changes.findings != state.generation || state.lost_rows(&changes) {
            return Ok(None);
        }
        let mut refetch = state.changed_agents(store, &changes.agents).await?;
        refetch.extend(changes.assets.iter().cloned());
        state.assets.extend(changes.assets.iter().cloned());
        let day = today();
        if changes.register != state.register
            || !changes.agents.is_empty()
            || day != state.register_day
        {
            state.replace_register(store.systems().await?, now_ms);
            (state.register, state.register_day) = (changes.register, day);
        }
        let ids: Vec<String> = refetch.into_iter().collect();
        let fetched: Vec<_> = store
            .assets_by_id(&ids)
            .await?
            .into_iter()
            .map(|asset| state.track(asset))
            .collect();
        state.verdicts.upsert_assets(fetched, now_ms);
        state.verdicts.advance(now_ms);

        let mut judged = state.verdicts.take_judged();
        state
            .recheck_acceptances(store, &mut judged, now_ms)
            .await?;
        let drafts = state.verdicts.drafts_of(&judged.assets, &judged.systems);
        let links = state.links_of(judged.assets.iter().map(String::as_str));
        let scope = EvaluationScope::Subjects {
            assets: judged.assets.clone(),
            systems: judged.systems.clone(),
        };
        let applied = store
            .apply_evaluation(&scope, &drafts, &links, Some(state.generation), now_ms)
            .await?;
        let Some(applied) = applied else {
            return Ok(None);
        };
        state.generation = applied.generation;
        state.watermark = changes.watermark;
        let round = Round {
            summary: applied.summary,
            full: false,
            judged,
        };
        Ok(Some((state, round)))
    }
}

/// The day the built-in system is dated by ([`evaluation::register`] dates it today).
fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

impl State {
    /// Remembers what linking uses of `asset` and returns what the rules judge, linked.
    fn track(
        &mut self,
        asset: AssetRecord,
    ) -> (crate::rules::EvalAsset, crate::linking::AssetLinks) {
        let agent = self.agent_views.get(&asset.agent_id);
        let subject = evaluation::subject(&asset, agent.map(|a| &a.labels));
        let links = evaluation::link(&self.linker, &subject, &asset.kind);
        let mut eval = evaluation::eval_asset(&asset);
        if asset.kind == "host" {
            eval.certificate = agent.and_then(|a| a.certificate.clone());
        }
        self.agent_assets
            .entry(asset.agent_id.clone())
            .or_default()
            .insert(asset.asset_id.clone());
        self.linkable.insert(
            asset.asset_id,
            Linkable {
                subject,
                kind: asset.kind,
            },
        );
        (eval, links)
    }

    /// True when the store holds fewer assets or agents than this state would after taking
    /// `changes`: a row was removed. Every row in the snapshot `changes` was read in is held
    /// or listed as changed (it was in the previous round's snapshot, or written after it),
    /// so equal counts mean that no held row is gone.
    fn lost_rows(&self, changes: &Changes) -> bool {
        let new = |held: &HashSet<String>, ids: &[String]| {
            ids.iter().filter(|id| !held.contains(*id)).count()
        };
        changes.asset_count != self.assets.len() + new(&self.assets, &changes.assets)
            || changes.agent_count != self.agents.len() + new(&self.agents, &changes.agents)
    }

    /// Reads the agents that changed and returns the ids of their assets.
    async fn changed_agents(
        &mut self,
        store: &dyn Store,
        changed: &[String],
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut records = Vec::new();
        if changed.len() > AGENTS_READ_ONE_BY_ONE {
            records = store.agent_views().await?;
        } else {
            for id in changed {
                records.extend(store.agent(id).await?.as_ref().map(AgentView::of));
            }
        }
        let changed: HashSet<&String> = changed.iter().collect();
        let mut assets = BTreeSet::new();
        for id in &changed {
            self.agent_views.remove(*id);
            self.agents.insert((*id).clone());
            assets.extend(self.agent_assets.get(*id).into_iter().flatten().cloned());
        }
        for record in records {
            if changed.contains(&record.agent_id) {
                self.agent_views.insert(record.agent_id.clone(), record);
            }
        }
        Ok(assets)
    }

    /// Takes the stored register (and the built-in, from the agents' labels today); when the
    /// evaluated register changed, re-links every asset and re-judges what changed.
    fn replace_register(&mut self, stored: Vec<System>, now_ms: i64) {
        let systems = evaluation::register(stored, self.agent_views.values().map(|v| &v.labels));
        if systems == self.systems {
            return;
        }
        self.linker = Linker::new(&systems);
        let links = self
            .linkable
            .iter()
            .map(|(id, l)| {
                (
                    id.clone(),
                    evaluation::link(&self.linker, &l.subject, &l.kind),
                )
            })
            .collect();
        self.systems.clone_from(&systems);
        self.verdicts.replace_systems(systems, links, now_ms);
    }

    /// Adds the subjects of accepted findings whose acceptance expired or that no longer hold.
    async fn recheck_acceptances(
        &self,
        store: &dyn Store,
        judged: &mut Judged,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut assets: BTreeSet<String> = judged.assets.iter().cloned().collect();
        let mut systems: BTreeSet<String> = judged.systems.iter().cloned().collect();
        for accepted in store.accepted_findings().await? {
            let expired = accepted.accepted_until.is_some_and(|until| until <= now_ms);
            let (of_assets, of_systems): (Vec<String>, Vec<String>) =
                match (&accepted.asset_id, &accepted.system_id) {
                    (Some(asset), _) => (vec![asset.clone()], vec![]),
                    (None, Some(system)) => (vec![], vec![system.clone()]),
                    (None, None) => continue,
                };
            let holds = self
                .verdicts
                .drafts_of(&of_assets, &of_systems)
                .iter()
                .any(|d| d.key() == accepted.finding_key);
            if expired || !holds {
                assets.extend(of_assets);
                systems.extend(of_systems);
            }
        }
        judged.assets = assets.into_iter().collect();
        judged.systems = systems.into_iter().collect();
        Ok(())
    }

    /// The (system id, asset id) links of these assets.
    fn links_of<'a>(&self, assets: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
        assets
            .filter_map(|id| Some((id, self.verdicts.links(id)?)))
            .flat_map(|(id, links)| {
                links
                    .links
                    .iter()
                    .map(move |l| (l.system_id.clone(), id.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::catalog::{Classification, LinkRules, Person};
    use crate::store::pg_scratch::ScratchCluster;
    use crate::store::{
        Acceptance, AuditEvent, ControlInput, NewAgent, NewToken, RenewedCertificate, ReportInput,
        SqlStore,
    };

    const DAY_MS: i64 = 86_400_000;
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
        "none",
        "restricted",
        "unrestricted",
    ];

    async fn sqlite() -> SqlStore {
        SqlStore::in_memory().await.unwrap()
    }

    async fn postgres() -> SqlStore {
        let url = ScratchCluster::shared()
            .unwrap()
            .fresh_database()
            .await
            .unwrap();
        SqlStore::connect_postgres(&url, 4).await.unwrap()
    }

    fn event() -> AuditEvent {
        AuditEvent {
            actor: "alice".into(),
            action: "test".into(),
            subject: "test".into(),
            detail: serde_json::json!({}),
        }
    }

    fn date(ms: i64) -> time::Date {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .unwrap()
            .date()
    }

    /// A random register of up to six systems, linked by host-name pattern or agent label.
    fn register(rng: &mut StdRng, now: i64) -> Vec<System> {
        (0..rng.random_range(2..=6))
            .map(|i| System {
                id: format!("s{i}"),
                name: format!("System {i}"),
                description: String::new(),
                system_owner: rng.random_bool(0.8).then(|| Person {
                    name: "Anna".into(),
                    email: None,
                }),
                system_administrator: None,
                information_owner: None,
                classification: rng.random_bool(0.9).then(|| Classification {
                    k: rng.random_range(0..=3),
                    r: 1,
                    t: 1,
                    s: None,
                    // Around the 365-day review boundary, so time passing makes some due.
                    classified_at: date(now - rng.random_range(355..370) * DAY_MS),
                    classified_by: "CISO".into(),
                    rationale: String::new(),
                }),
                critical_to_society: false,
                business_critical: rng.random_bool(0.3),
                links: LinkRules {
                    hostnames: if rng.random_bool(0.6) {
                        vec![format!("h{}-*", rng.random_range(0..4))]
                    } else {
                        vec![]
                    },
                    labels: if rng.random_bool(0.4) {
                        [(
                            "site".to_string(),
                            format!("ward{}", rng.random_range(0..3)),
                        )]
                        .into()
                    } else {
                        BTreeMap::new()
                    },
                    ..LinkRules::default()
                },
                attestations: vec![],
            })
            .collect()
    }

    /// One full report of agent `agent` with random controls and host name.
    fn report(rng: &mut StdRng, agent: &str, n: usize) -> ReportInput {
        let mut controls = Vec::new();
        for name in crate::catalog::CONTROLS {
            if rng.random_bool(0.7) {
                controls.push(ControlInput {
                    name: (*name).into(),
                    state: STATES[rng.random_range(0..STATES.len())].into(),
                    reason: "r".into(),
                    evidence: vec![],
                });
            }
        }
        ReportInput {
            agent_id: agent.into(),
            report_id: format!("{agent}-r{n}"),
            collected_at: 1,
            size_bytes: 1,
            agent_version: "1".into(),
            hostname: format!("h{}-{agent}", rng.random_range(0..5)),
            host_facts: serde_json::json!({}),
            observations: vec![],
            controls,
            devices: vec![],
            sequence: 0,
            delta_base: None,
            removed_observations: vec![],
            job_id: None,
        }
    }

    fn labels(rng: &mut StdRng) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        if rng.random_bool(0.6) {
            labels.insert("site".into(), format!("ward{}", rng.random_range(0..3)));
        }
        if rng.random_bool(0.05) {
            labels.insert(
                crate::builtin::LABEL_KEY.into(),
                crate::builtin::LABEL_VALUE.into(),
            );
        }
        labels
    }

    async fn enroll(store: &dyn Store, id: &str, labels: &BTreeMap<String, String>, now: i64) {
        let hash = format!("{id:>12}-token");
        let token = NewToken {
            token_hash: hash.clone(),
            created_at: now,
            expires_at: i64::MAX,
            created_by: "alice".into(),
        };
        store.create_token(token, now).await.unwrap();
        let agent = NewAgent {
            agent_id: id.into(),
            hostname: id.into(),
            cert_sha256: format!("cert-{id}-0"),
            cert_not_after: now + 30 * DAY_MS,
            labels: labels.clone(),
            agent_version: "1".into(),
        };
        store.enroll_agent(&hash, agent, now).await.unwrap();
    }

    /// Findings as (rule, system, the asset's agent) -> state: asset ids are made by each store.
    async fn findings(store: &dyn Store) -> BTreeMap<(String, String, String), String> {
        let agents: HashMap<String, String> = store
            .assets()
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.asset_id, a.agent_id))
            .collect();
        store
            .findings()
            .await
            .unwrap()
            .into_iter()
            .map(|f| {
                let agent = f.asset_id.map(|a| agents[&a].clone()).unwrap_or_default();
                ((f.rule, f.system_id.unwrap_or_default(), agent), f.state)
            })
            .collect()
    }

    async fn links(store: &SqlStore) -> BTreeSet<(String, String)> {
        sqlx::query_as::<_, (String, String)>(
            "SELECT l.system_id, a.agent_id FROM system_links l JOIN assets a ON a.asset_id = l.asset_id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// The finding id in `store` of the finding with this translated key.
    async fn finding_id(store: &dyn Store, key: &(String, String, String)) -> String {
        let agents: HashMap<String, String> = store
            .assets()
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.asset_id, a.agent_id))
            .collect();
        store
            .findings()
            .await
            .unwrap()
            .into_iter()
            .find(|f| {
                let agent = f
                    .asset_id
                    .as_ref()
                    .map(|a| agents[a].clone())
                    .unwrap_or_default();
                (&f.rule, f.system_id.as_deref().unwrap_or_default(), &agent)
                    == (&key.0, key.1.as_str(), &key.2)
            })
            .map(|f| f.finding_id)
            .unwrap()
    }

    /// Accepts a random open finding (half the time one of a system, whose verdicts time
    /// re-judges least often) on every store, for one to three days.
    async fn accept_one(rng: &mut StdRng, stores: [&dyn Store; 2], full: &SqlStore, now: i64) {
        let of_systems = rng.random_bool(0.5);
        let open: Vec<_> = findings(full)
            .await
            .into_iter()
            .filter(|(key, state)| state == "open" && (!of_systems || key.2.is_empty()))
            .map(|(key, _)| key)
            .collect();
        if open.is_empty() {
            return;
        }
        let key = &open[rng.random_range(0..open.len())];
        let acceptance = Acceptance {
            by: "Bo".into(),
            reason: "r".into(),
            until: now + rng.random_range(1..4) * DAY_MS,
        };
        for store in stores {
            let id = finding_id(store, key).await;
            store
                .accept_finding(&id, acceptance.clone(), now)
                .await
                .unwrap();
        }
    }

    /// Random reports, enrollments, renewals, revocations, register imports, acceptances and
    /// the passage of time, fed to two stores: one kept by the evaluator, one evaluated in
    /// full after every step. Their findings (state per rule, system and asset) and system
    /// links must be equal after every step.
    async fn incremental_rounds_equal_full_evaluations(
        incremental: SqlStore,
        full: SqlStore,
        seed: u64,
    ) {
        let config = RuleConfig::default();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut now = crate::server::now_ms();
        let mut evaluator = Evaluator::new(config.clone());
        let mut agents: Vec<String> = Vec::new();
        let mut reports = 0;
        let stores: [&dyn Store; 2] = [&incremental, &full];
        let systems = register(&mut rng, now);
        for store in stores {
            store.replace_catalog(&systems, event(), now).await.unwrap();
        }
        let (mut incremental_rounds, mut findings_seen) = (0, 0);
        for step in 0..STEPS {
            if rng.random_bool(0.5) {
                now += rng.random_range(0..3 * DAY_MS);
            }
            match rng.random_range(0..13) {
                0..=1 => {
                    let id = format!("agent{}", agents.len());
                    let labels = labels(&mut rng);
                    for store in stores {
                        enroll(store, &id, &labels, now).await;
                    }
                    agents.push(id);
                }
                2..=6 if !agents.is_empty() => {
                    for _ in 0..rng.random_range(1..=3) {
                        let agent = &agents[rng.random_range(0..agents.len())];
                        reports += 1;
                        let report = report(&mut rng, agent, reports);
                        for store in stores {
                            // A revoked agent's report is refused by both alike.
                            let _ = store.ingest_report(report.clone(), now).await;
                        }
                    }
                }
                7 => {
                    let systems = register(&mut rng, now);
                    for store in stores {
                        store.replace_catalog(&systems, event(), now).await.unwrap();
                    }
                }
                8 if !agents.is_empty() => {
                    let agent = &agents[rng.random_range(0..agents.len())];
                    let record = incremental.agent(agent).await.unwrap().unwrap();
                    let renewed = RenewedCertificate {
                        presented_sha256: record.cert_sha256.clone(),
                        cert_sha256: format!("{}+", record.cert_sha256),
                        cert_not_after: now + rng.random_range(1..40) * DAY_MS,
                    };
                    for store in stores {
                        let _ = store.renew_agent_certificate(agent, &renewed, now).await;
                    }
                }
                9 if agents.len() > 3 => {
                    let agent = &agents[rng.random_range(0..agents.len())];
                    for store in stores {
                        store.revoke_agent(agent, event(), now).await.unwrap();
                    }
                }
                10 | 11 => accept_one(&mut rng, stores, &full, now).await,
                _ => {}
            }
            let round = evaluator.round(&incremental, now).await.unwrap();
            incremental_rounds += usize::from(!round.full);
            evaluation::evaluate(&full, &config, now).await.unwrap();
            let (got, want) = (findings(&incremental).await, findings(&full).await);
            findings_seen += want.len();
            assert_eq!(got, want, "findings after step {step}");
            assert_eq!(
                links(&incremental).await,
                links(&full).await,
                "links after step {step}"
            );
        }
        assert_eq!(
            incremental_rounds,
            STEPS - 1,
            "only the first round judges everything"
        );
        assert!(findings_seen > 100, "the estate produced findings");
        let states: BTreeSet<String> = findings(&full).await.into_values().collect();
        assert!(states.contains("resolved"), "{states:?}");
    }

    const STEPS: usize = 80;

    #[tokio::test]
    async fn incremental_rounds_equal_full_evaluations_on_sqlite() {
        for seed in 0..4 {
            incremental_rounds_equal_full_evaluations(sqlite().await, sqlite().await, seed).await;
        }
    }

    #[tokio::test]
    async fn incremental_rounds_equal_full_evaluations_on_postgres() {
        for seed in 0..2 {
            incremental_rounds_equal_full_evaluations(postgres().await, postgres().await, seed)
                .await;
        }
    }

    /// The stored findings hold exactly where a full evaluation of the store at `now` finds
    /// something (open or accepted), and are resolved elsewhere.
    async fn assert_current(store: &dyn Store, now: i64) {
        let snapshot = evaluation::snapshot(store).await.unwrap();
        let want: BTreeSet<String> = evaluation::drafts(&snapshot, &RuleConfig::default(), now)
            .iter()
            .map(crate::rules::FindingDraft::key)
            .collect();
        let stored = store.findings().await.unwrap();
        let holding: BTreeSet<String> = stored
            .iter()
            .filter(|f| f.state != "resolved")
            .map(|f| {
                format!(
                    "{}|{}|{}",
                    f.rule,
                    f.system_id.as_deref().unwrap_or(""),
                    f.asset_id.as_deref().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(holding, want);
    }

    fn system(id: &str, hostnames: &[&str], classified: bool, now: i64) -> System {
        System {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            system_owner: Some(Person {
                name: "Anna".into(),
                email: None,
            }),
            system_administrator: None,
            information_owner: None,
            classification: classified.then(|| Classification {
                k: 2,
                r: 1,
                t: 1,
                s: None,
                classified_at: date(now),
                classified_by: "CISO".into(),
                rationale: String::new(),
            }),
            critical_to_society: false,
            business_critical: false,
            links: LinkRules {
                hostnames: hostnames.iter().map(|h| (*h).to_string()).collect(),
                ..LinkRules::default()
            },
            attestations: vec![],
        }
    }

    /// Five agents reporting, two systems by host name and one without members.
    async fn small_estate(store: &dyn Store, now: i64) -> StdRng {
        let mut rng = StdRng::seed_from_u64(3);
        let systems = [
            system("journal", &["journal-*"], true, now),
            system("school", &["school-*"], true, now),
            system("paper", &[], false, now),
        ];
        store.replace_catalog(&systems, event(), now).await.unwrap();
        for i in 0..5 {
            let id = format!("agent{i}");
            enroll(store, &id, &BTreeMap::new(), now).await;
            let mut report = report(&mut rng, &id, i);
            report.hostname = format!("{}-{i}", ["journal", "school"][i % 2]);
            store.ingest_report(report, now).await.unwrap();
        }
        rng
    }

    #[tokio::test]
    async fn a_report_re_judges_only_its_asset_and_its_systems() {
        let store = sqlite().await;
        let now = crate::server::now_ms();
        let mut rng = small_estate(&store, now).await;
        let mut evaluator = Evaluator::new(RuleConfig::default());
        let first = evaluator.round(&store, now).await.unwrap();
        assert!(first.full);
        assert_eq!(
            (first.judged.assets.len(), first.judged.systems.len()),
            (5, 3)
        );

        let quiet = evaluator.round(&store, now + 1000).await.unwrap();
        assert!(!quiet.full);
        assert_eq!(
            quiet.judged,
            Judged::default(),
            "nothing changed, nothing judged"
        );
        assert_eq!(quiet.summary.judged, Some(crate::store::Judged::default()));

        let mut changed = report(&mut rng, "agent2", 100);
        changed.hostname = "journal-2".into();
        let asset = store
            .ingest_report(changed, now + 2000)
            .await
            .unwrap()
            .asset_id;
        let round = evaluator.round(&store, now + 3000).await.unwrap();
        assert_eq!(round.judged.assets, [asset]);
        assert_eq!(round.judged.systems, ["journal"]);
        assert_current(&store, now + 3000).await;
        let recorded = store.evaluations().await.unwrap();
        assert_eq!(
            recorded.last().unwrap().1.judged,
            Some(crate::store::Judged {
                assets: 1,
                systems: 1
            })
        );
    }

    #[tokio::test]
    async fn an_expired_acceptance_reopens_when_nothing_else_changed() {
        let store = sqlite().await;
        let now = crate::server::now_ms();
        small_estate(&store, now).await;
        let mut evaluator = Evaluator::new(RuleConfig::default());
        evaluator.round(&store, now).await.unwrap();
        let finding = store
            .findings()
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.rule == "unclassified-system")
            .unwrap();
        let acceptance = Acceptance {
            by: "Bo".into(),
            reason: "r".into(),
            until: now + 3_600_000,
        };
        store
            .accept_finding(&finding.finding_id, acceptance, now)
            .await
            .unwrap();
        evaluator.round(&store, now + 60_000).await.unwrap();
        assert_eq!(finding_state(&store, &finding.finding_id).await, "accepted");
        let round = evaluator.round(&store, now + 2 * 3_600_000).await.unwrap();
        assert_eq!(round.judged.systems, ["paper"]);
        assert_eq!(finding_state(&store, &finding.finding_id).await, "open");
    }

    /// Two collectors on one PostgreSQL, reports arriving at either: the evaluation lease
    /// moves, the new holder judges the whole estate, and the findings stay those of a full
    /// evaluation throughout; a full evaluation by someone else (the CLI) makes the holder
    /// start again from the whole estate.
    #[tokio::test]
    async fn two_collectors_on_one_postgres_keep_findings_current_as_the_lease_moves() {
        let url = ScratchCluster::shared()
            .unwrap()
            .fresh_database()
            .await
            .unwrap();
        let one = SqlStore::connect_postgres(&url, 2).await.unwrap();
        let two = SqlStore::connect_postgres(&url, 2).await.unwrap();
        let mut now = crate::server::now_ms();
        let mut rng = small_estate(&one, now).await;
        let config = RuleConfig::default();
        let (mut first, mut second) = (Evaluator::new(config.clone()), Evaluator::new(config));
        let lease = 90_000;
        let last_judged = |store: &SqlStore| {
            let store = store.clone();
            async move { store.evaluations().await.unwrap().last().unwrap().1.judged }
        };

        crate::background::leased_round(&one, &mut first, "one", lease, now)
            .await
            .unwrap();
        assert!(first.is_warm());
        assert_eq!(
            last_judged(&one).await,
            None,
            "the first round is a full one"
        );
        for n in 0..3 {
            now += 30_000;
            let agent = format!("agent{}", rng.random_range(0..5));
            let arrived = report(&mut rng, &agent, 10 + n);
            two.ingest_report(arrived, now).await.unwrap();
            crate::background::leased_round(&two, &mut second, "two", lease, now)
                .await
                .unwrap();
            assert!(!second.is_warm(), "the lease is the first collector's");
            crate::background::leased_round(&one, &mut first, "one", lease, now)
                .await
                .unwrap();
            assert!(last_judged(&one).await.is_some(), "an incremental round");
            assert_current(&one, now).await;
        }

        // The first collector stops; once its lease lapsed the second takes over.
        now += lease + 1;
        let moved = report(&mut rng, "agent1", 20);
        one.ingest_report(moved, now).await.unwrap();
        crate::background::leased_round(&two, &mut second, "two", lease, now)
            .await
            .unwrap();
        assert!(second.is_warm());
        assert_eq!(
            last_judged(&two).await,
            None,
            "the new holder judges everything"
        );
        assert_current(&two, now).await;
        now += 30_000;
        crate::background::leased_round(&one, &mut first, "one", lease, now)
            .await
            .unwrap();
        assert!(!first.is_warm(), "the old holder forgets what it held");

        // Someone else's full evaluation: the holder starts again from the whole estate.
        evaluation::evaluate(&one, &RuleConfig::default(), now)
            .await
            .unwrap();
        let later = report(&mut rng, "agent3", 30);
        one.ingest_report(later, now).await.unwrap();
        now += 30_000;
        crate::background::leased_round(&two, &mut second, "two", lease, now)
            .await
            .unwrap();
        assert_eq!(last_judged(&two).await, None);
        assert_current(&two, now).await;
        now += 30_000;
        crate::background::leased_round(&two, &mut second, "two", lease, now)
            .await
            .unwrap();
        assert!(last_judged(&two).await.is_some());
        assert_current(&two, now).await;
    }

    async fn finding_state(store: &dyn Store, id: &str) -> String {
        let all = store.findings().await.unwrap();
        all.into_iter().find(|f| f.finding_id == id).unwrap().state
    }
}
