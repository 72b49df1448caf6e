//! The serving collector's evaluation, kept current round by round: the first round after it
//! takes the evaluation lease judges the whole estate ([`crate::incremental::Incremental`]
//! built from everything stored) and writes every finding; later rounds ask the store only
//! what changed, judge that again, and write only the findings and links of what they judged.
//!
//! # What a round reads, and why it misses nothing
//!
//! - **Assets and agents**: every asset and agent row carries a `revision` that grows by one
//!   in the same statement as any change of what the evaluation reads from it (migration
//!   0015). A round reads all (id, revision) pairs ([`Store::revisions`], one small JSON text
//!   per table) and fetches only the rows whose pair differs from the one remembered, or that
//!   are new; ids no longer listed are removed. No order between writers is assumed: a change
//!   committed after the pairs were read has a revision higher than the one read and is found
//!   by the next round, whichever collector wrote it and whenever it committed. The pairs are
//!   read before the rows, so what is held in memory is never older than the revision
//!   remembered for it (at worst a row is fetched once more than needed). An agent's change
//!   (certificate renewed, revoked) re-reads its assets, whose certificate and labels it gives.
//! - **Register**: read every round (it is small) and compared with the one judged; a change
//!   re-links every asset in memory (no store reads) and re-judges what
//!   [`Incremental::replace_systems`] finds changed. The built-in `tillsyn` system is dated
//!   today, so it changes once a day.
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
//! the pairs, the register and the accepted findings, and records the evaluation (so open
//! findings stay "last seen" now); it judges nothing. Any error, and the loss of the lease,
//! drops the state: the next round starts from the whole estate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::catalog::System;
use crate::evaluation;
use crate::incremental::{Incremental, Judged};
use crate::linking::{LinkSubject, Linker};
use crate::rules::{AgentCertificate, RuleConfig};
use crate::store::{
    AgentRecord, AssetRecord, EvaluationScope, EvaluationSummary, Revisions, Store, StoreError,
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

/// What an agent gives its assets.
struct AgentView {
    labels: BTreeMap<String, String>,
    /// None once revoked.
    certificate: Option<AgentCertificate>,
}

/// What linking uses of an asset, kept to re-link it when the register changes.
struct Linkable {
    subject: LinkSubject,
    kind: String,
}

struct State {
    verdicts: Incremental,
    /// Revision per asset id, as read before the row.
    assets: HashMap<String, i64>,
    /// Revision per agent id, as read before the row.
    agents: HashMap<String, i64>,
    agent_views: HashMap<String, AgentView>,
    /// Asset ids per agent id.
    agent_assets: HashMap<String, BTreeSet<String>>,
    linkable: HashMap<String, Linkable>,
    /// The register as stored, and as evaluated (with the built-in).
    stored_register: Vec<System>,
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
        let revisions = store.revisions().await?;
        let agents = store.agents().await?;
        let assets = store.assets().await?;
        let stored_register = store.systems().await?;
        let agent_views: HashMap<String, AgentView> = agents.iter().map(view).collect();
        let systems = evaluation::register(
            stored_register.clone(),
            agent_views.values().map(|v| &v.labels),
        );
        let linker = Linker::new(&systems);
        let mut state = State {
            verdicts: Incremental::new(self.config.clone(), systems.clone(), vec![], now_ms),
            assets: revisions.assets.into_iter().collect(),
            agents: revisions.agents.into_iter().collect(),
            agent_views,
            agent_assets: HashMap::new(),
            linkable: HashMap::new(),
            stored_register,
            systems,
            linker,
            generation: revisions.findings,
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
        let revisions = store.revisions().await?;
        if revisions.findings != state.generation {
            return Ok(None);
        }
        let Revisions { assets, agents, .. } = revisions;
        let mut refetch = state.changed_agents(store, agents).await?;
        let listed: HashMap<String, i64> = assets.into_iter().collect();
        let removed: Vec<String> = state
            .assets
            .keys()
            .filter(|id| !listed.contains_key(*id))
            .cloned()
            .collect();
        for (id, revision) in &listed {
            if state.assets.get(id) != Some(revision) {
                refetch.insert(id.clone());
            }
        }
        refetch.retain(|id| listed.contains_key(id));
        state.assets = listed;

        state.replace_register(store.systems().await?, now_ms);
        let ids: Vec<String> = refetch.into_iter().collect();
        let changed: Vec<_> = store
            .assets_by_id(&ids)
            .await?
            .into_iter()
            .map(|asset| state.track(asset))
            .collect();
        for id in &removed {
            state.untrack(id);
        }
        state.verdicts.remove_assets(&removed, now_ms);
        state.verdicts.upsert_assets(changed, now_ms);
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
        let round = Round {
            summary: applied.summary,
            full: false,
            judged,
        };
        Ok(Some((state, round)))
    }
}

/// An agent's labels and certificate, by its id.
fn view(agent: &AgentRecord) -> (String, AgentView) {
    let view = AgentView {
        labels: agent.labels.clone(),
        certificate: evaluation::certificate(agent),
    };
    (agent.agent_id.clone(), view)
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

    fn untrack(&mut self, asset_id: &str) {
        self.linkable.remove(asset_id);
        for assets in self.agent_assets.values_mut() {
            assets.remove(asset_id);
        }
    }

    /// Reads the agents whose revision changed and returns the ids of their assets.
    async fn changed_agents(
        &mut self,
        store: &dyn Store,
        listed: Vec<(String, i64)>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let listed: HashMap<String, i64> = listed.into_iter().collect();
        let changed: Vec<&String> = listed
            .iter()
            .filter(|(id, revision)| self.agents.get(*id) != Some(revision))
            .map(|(id, _)| id)
            .collect();
        let gone: Vec<String> = self
            .agents
            .keys()
            .filter(|id| !listed.contains_key(*id))
            .cloned()
            .collect();
        let mut records = Vec::new();
        if changed.len() > AGENTS_READ_ONE_BY_ONE {
            records = store.agents().await?;
        } else {
            for id in &changed {
                records.extend(store.agent(id).await?);
            }
        }
        let mut assets = BTreeSet::new();
        for id in changed
            .iter()
            .map(|id| id.as_str())
            .chain(gone.iter().map(String::as_str))
        {
            self.agent_views.remove(id);
            assets.extend(self.agent_assets.get(id).into_iter().flatten().cloned());
        }
        for record in &records {
            if changed.contains(&&record.agent_id) {
                let (id, view) = view(record);
                self.agent_views.insert(id, view);
            }
        }
        self.agents = listed;
        Ok(assets)
    }

    /// Takes the stored register (and the built-in, from the agents' labels today); when the
    /// evaluated register changed, re-links every asset and re-judges what changed.
    fn replace_register(&mut self, stored: Vec<System>, now_ms: i64) {
        let systems =
            evaluation::register(stored.clone(), self.agent_views.values().map(|v| &v.labels));
        self.stored_register = stored;
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
        self.systems = systems.clone();
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
