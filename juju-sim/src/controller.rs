//! Several models in one controller, with offers and cross-model relations (CMR) as Juju has
//! them:
//!
//! - `juju offer <app>:<endpoint>[,<endpoint>...] [<offer-name>]` in the offering model
//!   ([`Controller::offer`]);
//! - `juju consume <model>.<offer> [<alias>]` in the consuming model ([`Controller::consume`]):
//!   the offered application appears there as a remote application (a SAAS) named by the offer
//!   name or the alias, its units as `<name>/<n>`;
//! - `juju integrate <app>[:<endpoint>] <saas>` in the consuming model
//!   ([`Controller::relate`], or [`Model::relate`] on that model): the offering model gets the
//!   consuming application as a remote application named `remote-<token>` (32 lowercase hex
//!   digits), its units as `remote-<token>/<n>`.
//!
//! Each model keeps its own copy of the relation, under its own relation id, with the other
//! side's application and units as remote ones that run no hooks. The controller plays Juju's
//! remote-relations workers: it copies each side's unit and application bags into the other
//! model's copy, has remote units join and depart as the other side's units enter and leave
//! scope, ends the relation on one side when it is removed on the other, and gives the
//! consuming side a copy of every secret (Juju 3.3 and later) granted to it across the
//! relation, kept at the owner's revisions. Hooks see these changes as they would a local
//! unit's: relation-joined, -changed, -departed, -broken and secret-changed.
//!
//! [`Controller::cut`] partitions a model from the others: its hooks go on, but nothing crosses
//! between it and the other models until [`Controller::restore`], when the bags that changed
//! meanwhile are delivered (relation-changed), units that came or went join or depart, and
//! relations removed meanwhile end on the other side.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::charm::{CharmMeta, Role};
use crate::state::{
    ActionTask, App, Bag, CharmKind, HookEvent, RelationEnd, RemoteApp, StatusRecord, Unit, World,
};
use crate::{MAX_HOOKS_PER_SETTLE, Model};

/// The oldest Juju whose consumers read secrets granted across a cross-model relation (its
/// CrossModelSecrets facade).
const CROSS_MODEL_SECRETS: (u32, u32) = (3, 3);

/// `juju offer`: an application's endpoints made available to other models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The offering model.
    pub model: String,
    /// The offered application.
    pub app: String,
    /// The offered endpoints.
    pub endpoints: Vec<String>,
    /// The offer name (the application's name unless given).
    pub name: String,
}

impl Offer {
    /// The offer's URL, as `juju offers` shows it and `juju consume` takes it:
    /// `admin/<model>.<offer>`.
    pub fn url(&self) -> String {
        format!("admin/{}.{}", self.model, self.name)
    }
}

/// One side of a cross-model relation: the model's own copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationSide {
    pub model: String,
    /// The relation's id in this model.
    pub relation: u32,
    /// This model's application in the relation.
    pub app: String,
    /// Its endpoint.
    pub endpoint: String,
    /// What this model calls the other side's application: the offer name or alias in the
    /// consuming model, `remote-<token>` in the offering model.
    pub remote_app: String,
}

/// A cross-model relation: the offering model's copy and the consuming model's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossModelRelation {
    pub offer: RelationSide,
    pub consumer: RelationSide,
}

impl CrossModelRelation {
    fn sides(&self) -> [(&RelationSide, &RelationSide); 2] {
        [(&self.offer, &self.consumer), (&self.consumer, &self.offer)]
    }
}

/// A simulated Juju controller: models by name, the offers made in them and the cross-model
/// relations between them. Each model is a [`Model`] with the whole single-model API; this adds
/// what spans models, and one [`Controller::settle`] for all of them.
pub struct Controller {
    juju_version: String,
    models: BTreeMap<String, Model>,
    offers: Vec<Offer>,
    links: Vec<CrossModelRelation>,
    cut: BTreeSet<String>,
}

impl Controller {
    /// A controller on Juju 3.6.1, with no model yet.
    pub fn new() -> Controller {
        Controller::with_juju_version("3.6.1")
    }

    /// A controller on this Juju version; every model added runs it.
    pub fn with_juju_version(version: &str) -> Controller {
        Controller {
            juju_version: version.to_owned(),
            models: BTreeMap::new(),
            offers: Vec::new(),
            links: Vec::new(),
            cut: BTreeSet::new(),
        }
    }

    /// `juju add-model <name>`: a model with its own UUID (`JUJU_MODEL_NAME` and
    /// `JUJU_MODEL_UUID` in its hooks), its own block of unit addresses, and secret URIs that
    /// name it (`secret://<uuid>/<id>`), so that they can be handed to another model.
    pub fn add_model(&mut self, name: &str) -> Result<&mut Model> {
        let valid = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if !valid {
            bail!("invalid model name {name:?}");
        }
        if self.models.contains_key(name) {
            bail!("model {name:?} already exists");
        }
        let index = self.models.len();
        let block = u8::try_from(index + 1)
            .ok()
            .filter(|b| *b < 255)
            .context("a controller holds at most 254 models")?;
        let model = Model::with_juju_version(&self.juju_version)?;
        {
            let mut world = model.world();
            world.model_name = name.to_owned();
            world.model_uuid = uuid_of(&format!("model {name}"));
            world.address_block = block;
            world.secret_uris_name_model = true;
            // Secret IDs are unique across the controller, as Juju's are.
            world.next_secret = index as u64 * 1_000_000_000_000 + 1;
        }
        Ok(self.models.entry(name.to_owned()).or_insert(model))
    }

    /// The model of that name.
    pub fn model(&self, name: &str) -> Result<&Model> {
        self.models
            .get(name)
            .ok_or_else(|| anyhow!("model {name:?} not found"))
    }

    /// The model of that name, to act on it.
    pub fn model_mut(&mut self, name: &str) -> Result<&mut Model> {
        self.models
            .get_mut(name)
            .ok_or_else(|| anyhow!("model {name:?} not found"))
    }

    /// The models' names.
    pub fn models(&self) -> Vec<String> {
        self.models.keys().cloned().collect()
    }

    /// `juju offer -m <model> <app>:<endpoint>[,<endpoint>...] [<offer-name>]`; the offer's
    /// URL.
    pub fn offer(&mut self, model: &str, endpoints: &str, name: Option<&str>) -> Result<String> {
        let Some((app, list)) = endpoints.split_once(':') else {
            bail!("offer {endpoints:?} needs <application>:<endpoint>");
        };
        let names: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            bail!("offer {endpoints:?} names no endpoint");
        }
        {
            let world = self.model(model)?.world();
            let Some(application) = world.apps.get(app) else {
                bail!("application {app:?} not found in model {model:?}");
            };
            if world.is_remote_app(app) {
                bail!("{app:?} is an application of another model: offer it from there");
            }
            for endpoint in &names {
                match application.meta.endpoint(endpoint) {
                    None => bail!("application {app:?} has no {endpoint:?} endpoint"),
                    Some(e) if e.role == Role::Peers => {
                        bail!("{app}:{endpoint} is a peer endpoint and cannot be offered")
                    }
                    Some(e) if e.container_scope => {
                        bail!("{app}:{endpoint} is container-scoped and cannot be offered")
                    }
                    Some(_) => {}
                }
            }
        }
        let name = name.unwrap_or(app).to_owned();
        if self
            .offers
            .iter()
            .any(|o| o.model == model && o.name == name)
        {
            bail!("offer {name:?} already exists in model {model:?}");
        }
        let offer = Offer {
            model: model.to_owned(),
            app: app.to_owned(),
            endpoints: names,
            name,
        };
        let url = offer.url();
        self.offers.push(offer);
        Ok(url)
    }

    /// The offers made so far.
    pub fn offers(&self) -> &[Offer] {
        &self.offers
    }

    /// `juju consume -m <model> [<controller>:][<owner>/]<model>.<offer> [<alias>]`: the
    /// offered application becomes a remote application of `model`, named `alias` or the offer
    /// name; its name.
    pub fn consume(&mut self, model: &str, url: &str, alias: Option<&str>) -> Result<String> {
        let path = url.rsplit_once(':').map_or(url, |(_, p)| p);
        let path = path.rsplit_once('/').map_or(path, |(_, p)| p);
        let Some((offer_model, offer_name)) = path.split_once('.') else {
            bail!("offer URL {url:?} is not [<owner>/]<model>.<offer>");
        };
        let offer = self
            .offers
            .iter()
            .find(|o| o.model == offer_model && o.name == offer_name)
            .cloned()
            .ok_or_else(|| anyhow!("offer {url:?} not found"))?;
        if offer.model == model {
            bail!(
                "offer {url:?} is in model {model:?} itself: relate to {:?}",
                offer.app
            );
        }
        let saas = alias.unwrap_or(&offer.name).to_owned();
        let meta = {
            let world = self.model(&offer.model)?.world();
            let Some(app) = world.apps.get(&offer.app) else {
                bail!("the offered application {:?} is gone", offer.app);
            };
            CharmMeta {
                name: app.meta.name.clone(),
                endpoints: app
                    .meta
                    .endpoints
                    .iter()
                    .filter(|e| offer.endpoints.contains(&e.name))
                    .cloned()
                    .collect(),
                ..CharmMeta::default()
            }
        };
        let mut world = self.model(model)?.world();
        if world.apps.contains_key(&saas) {
            bail!("application {saas:?} already exists in model {model:?}");
        }
        world.apps.insert(
            saas.clone(),
            remote_app_record(
                &saas,
                meta,
                RemoteApp {
                    model: offer.model.clone(),
                    app: offer.app.clone(),
                    offer: Some(offer.url()),
                },
            ),
        );
        Ok(saas)
    }

    /// `juju integrate -m <model> <a> <b>`, where one side may be a consumed offer: the
    /// relation's id in `model`. A cross-model relation reaches the offering model at once
    /// (or when the models are no longer cut off).
    pub fn relate(&mut self, model: &str, a: &str, b: &str) -> Result<u32> {
        let id = self.model_mut(model)?.relate(a, b)?;
        self.link_new_relations()?;
        Ok(id)
    }

    /// `juju remove-relation -m <model> <id>`: for a cross-model relation, the other model's
    /// copy ends too once the models can reach each other.
    pub fn remove_relation(&mut self, model: &str, id: u32) -> Result<()> {
        self.model_mut(model)?.unrelate(id)
    }

    /// The cross-model relations, each as both models see it.
    pub fn cross_model_relations(&self) -> &[CrossModelRelation] {
        &self.links
    }

    /// The cross-model relation that is relation `id` of `model`, on either side.
    pub fn cross_model_relation(&self, model: &str, id: u32) -> Option<&CrossModelRelation> {
        self.links.iter().find(|l| {
            (l.offer.model == model && l.offer.relation == id)
                || (l.consumer.model == model && l.consumer.relation == id)
        })
    }

    /// Cuts `model` off from the other models (a network partition between sites): its hooks
    /// go on, but no data, unit, relation removal or secret crosses between it and another
    /// model until [`Controller::restore`].
    pub fn cut(&mut self, model: &str) -> Result<()> {
        self.model(model)?;
        self.cut.insert(model.to_owned());
        Ok(())
    }

    /// Ends [`Controller::cut`]: the next settle delivers what changed meanwhile.
    pub fn restore(&mut self, model: &str) -> Result<()> {
        self.model(model)?;
        self.cut.remove(model);
        Ok(())
    }

    /// Whether `model` is cut off from the others.
    pub fn is_cut(&self, model: &str) -> bool {
        self.cut.contains(model)
    }

    /// Runs every model's hooks until none is pending anywhere and nothing is left to cross
    /// between models. Models take turns, one hook each, and what a hook changed crosses to the
    /// other models before the next turn.
    pub fn settle(&mut self) -> Result<()> {
        self.sync()?;
        for _ in 0..MAX_HOOKS_PER_SETTLE {
            let mut ran = false;
            for model in self.models.values_mut() {
                ran |= model.step()?;
            }
            if ran {
                self.sync()?;
                continue;
            }
            for model in self.models.values_mut() {
                model.settled()?;
            }
            if !self.sync()? {
                self.drop_ended_links();
                return Ok(());
            }
        }
        Err(anyhow!(
            "the controller's models did not settle within {MAX_HOOKS_PER_SETTLE} rounds"
        ))
    }

    /// `juju run -m <model> <unit> <action>`: the controller settles first and after, as
    /// [`Model::run_action`] does for its model alone.
    pub fn run_action(
        &mut self,
        model: &str,
        unit: &str,
        name: &str,
        params: Map<String, Value>,
    ) -> Result<ActionTask> {
        self.settle()?;
        let id = self.model_mut(model)?.queue_action(unit, name, params)?;
        self.settle()?;
        let world = self.model(model)?.world();
        world
            .actions
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("action {id} vanished"))
    }

    // -----------------------------------------------------------------------------------------
    // Playing Juju's remote-relations workers.

    /// Whether the two models can reach each other.
    fn connected(&self, a: &str, b: &str) -> bool {
        !self.cut.contains(a) && !self.cut.contains(b)
    }

    /// Brings everything that crosses models up to date; whether anything changed.
    fn sync(&mut self) -> Result<bool> {
        let mut changed = self.link_new_relations()?;
        for link in self.links.clone() {
            if !self.connected(&link.offer.model, &link.consumer.model) {
                continue;
            }
            for (source, target) in link.sides() {
                changed |= self.sync_side(source, target)?;
            }
        }
        changed |= self.sync_secrets()?;
        Ok(changed)
    }

    /// Gives each new relation of a consuming model with a consumed offer its copy in the
    /// offering model: a relation between the offered application and the consuming
    /// application's `remote-<token>` stand-in, created on the offered application's units.
    fn link_new_relations(&mut self) -> Result<bool> {
        let mut found = Vec::new();
        for (name, model) in &self.models {
            let world = model.world();
            for rel in world.relations.values().filter(|r| !r.dying) {
                if self.cross_model_relation(name, rel.id).is_some() {
                    continue;
                }
                for end in &rel.ends {
                    if let Some(App {
                        charm: CharmKind::Remote(remote),
                        ..
                    }) = world.apps.get(&end.app)
                        && remote.offer.is_some()
                        && let Some(local) = rel.ends.iter().find(|e| e.app != end.app)
                    {
                        found.push((name.clone(), rel.id, local.clone(), end.clone()));
                    }
                }
            }
        }
        let mut changed = false;
        for (consumer_model, id, local, saas) in found {
            let remote = {
                let world = self.model(&consumer_model)?.world();
                match world.apps.get(&saas.app).map(|a| &a.charm) {
                    Some(CharmKind::Remote(remote)) => remote.clone(),
                    _ => continue,
                }
            };
            if !self.connected(&consumer_model, &remote.model) {
                continue;
            }
            let (consumer_meta, consumer_uuid) = {
                let world = self.model(&consumer_model)?.world();
                let endpoint = world
                    .apps
                    .get(&local.app)
                    .and_then(|a| a.meta.endpoint(&local.endpoint))
                    .cloned()
                    .with_context(|| format!("{}:{} not found", local.app, local.endpoint))?;
                (endpoint, world.model_uuid.clone())
            };
            let stand_in = format!("remote-{}", token(&consumer_uuid, &local.app));
            let offer_id = {
                let mut world = self.model(&remote.model)?.world();
                if !world.apps.contains_key(&remote.app) {
                    continue;
                }
                let app = world.apps.entry(stand_in.clone()).or_insert_with(|| {
                    remote_app_record(
                        &stand_in,
                        CharmMeta {
                            name: stand_in.clone(),
                            ..CharmMeta::default()
                        },
                        RemoteApp {
                            model: consumer_model.clone(),
                            app: local.app.clone(),
                            offer: None,
                        },
                    )
                });
                if app.meta.endpoint(&consumer_meta.name).is_none() {
                    app.meta.endpoints.push(consumer_meta.clone());
                }
                let ends = vec![
                    RelationEnd {
                        app: remote.app.clone(),
                        endpoint: saas.endpoint.clone(),
                    },
                    RelationEnd {
                        app: stand_in.clone(),
                        endpoint: local.endpoint.clone(),
                    },
                ];
                let offer_id = world.add_relation(ends, false);
                for unit in world.live_units_of(&remote.app) {
                    crate::queue_relation_hook(&mut world, &unit, offer_id, "created", None, None);
                }
                offer_id
            };
            self.links.push(CrossModelRelation {
                offer: RelationSide {
                    model: remote.model.clone(),
                    relation: offer_id,
                    app: remote.app.clone(),
                    endpoint: saas.endpoint.clone(),
                    remote_app: stand_in,
                },
                consumer: RelationSide {
                    model: consumer_model.clone(),
                    relation: id,
                    app: local.app.clone(),
                    endpoint: local.endpoint.clone(),
                    remote_app: saas.app.clone(),
                },
            });
            changed = true;
        }
        Ok(changed)
    }

    /// Brings `target`'s copy of a cross-model relation up to date with `source`'s: the
    /// relation's end, the source application's units (as remote units that join once they
    /// are in scope and depart once they go), their bags and the application bag. Whether
    /// anything changed.
    fn sync_side(&self, source: &RelationSide, target: &RelationSide) -> Result<bool> {
        let from = self.model(&source.model)?.world();
        let mut to = self.model(&target.model)?.world();
        let Some(target_dying) = to.relations.get(&target.relation).map(|r| r.dying) else {
            return Ok(false);
        };
        let Some(source_rel) = from.relations.get(&source.relation).filter(|r| !r.dying) else {
            // Removed on the source side: it ends on this side too.
            if target_dying {
                return Ok(false);
            }
            crate::unrelate(&mut to, target.relation)?;
            return Ok(true);
        };
        if target_dying {
            return Ok(false);
        }
        let mut changed = false;
        let number = |unit: &str| unit.rsplit('/').next().unwrap_or_default().to_owned();
        let source_alive = |unit: &str| from.units.get(unit).is_some_and(|u| u.alive && !u.dying);
        let watchers: Vec<String> = to
            .live_units_of(&target.app)
            .into_iter()
            .filter(|w| to.runs_hooks(w))
            .collect();
        // Units in scope on the source side join every unit of this side.
        let present: Vec<&String> = source_rel
            .in_scope
            .iter()
            .filter(|u| World::app_of(u) == source.app && source_alive(u))
            .collect();
        for unit in present {
            let remote = format!("{}/{}", target.remote_app, number(unit));
            if !to.units.contains_key(&remote) {
                let address = from
                    .units
                    .get(unit)
                    .map(|u| u.address.clone())
                    .unwrap_or_default();
                let record = remote_unit(&remote, &target.remote_app, address);
                to.units.insert(remote.clone(), record);
                changed = true;
            }
            let bag = source_rel.unit_data.get(unit).cloned().unwrap_or_default();
            changed |= copy_bag(&mut to, target.relation, &remote, bag);
            for watcher in &watchers {
                if !eventually_sees(&to, watcher, target.relation, &remote) {
                    crate::queue_join(&mut to, watcher, target.relation, &remote);
                    changed = true;
                }
            }
        }
        // Units removed on the source side depart from every unit that sees them.
        let gone: Vec<String> = to
            .units
            .values()
            .filter(|u| u.app == target.remote_app)
            .filter(|u| !source_alive(&format!("{}/{}", source.app, number(&u.name))))
            .map(|u| u.name.clone())
            .collect();
        for remote in gone {
            for watcher in &watchers {
                if eventually_sees(&to, watcher, target.relation, &remote) {
                    crate::queue_relation_hook(
                        &mut to,
                        watcher,
                        target.relation,
                        "departed",
                        Some(&remote),
                        Some(&remote),
                    );
                    changed = true;
                }
            }
            if let Some(u) = to.units.get_mut(&remote)
                && u.alive
            {
                u.alive = false;
                changed = true;
            }
        }
        let app_bag = source_rel
            .app_data
            .get(&source.app)
            .cloned()
            .unwrap_or_default();
        changed |= copy_bag(&mut to, target.relation, &target.remote_app, app_bag);
        Ok(changed)
    }

    /// Gives each consuming model a copy of every secret granted to it across a cross-model
    /// relation (owner, revisions, grants translated to its names), drops copies whose grants
    /// are gone, and queues secret-changed for consumers tracking an older revision than a
    /// copy now has. Copies between models that are cut off stay as they were.
    fn sync_secrets(&self) -> Result<bool> {
        // The copies each model should hold: by model, by secret ID.
        let mut wanted: BTreeMap<String, BTreeMap<String, crate::state::Secret>> = BTreeMap::new();
        for link in &self.links {
            if !self.connected(&link.offer.model, &link.consumer.model) {
                continue;
            }
            for (source, target) in link.sides() {
                let from = self.model(&source.model)?.world();
                if !from.version_at_least(CROSS_MODEL_SECRETS) {
                    continue;
                }
                let live = from
                    .relations
                    .get(&source.relation)
                    .is_some_and(|r| !r.dying);
                if !live {
                    continue;
                }
                for secret in from.secrets.values().filter(|s| from.owns_secret(s)) {
                    let grants: Vec<String> = secret
                        .grants
                        .iter()
                        .filter(|(grantee, relation)| {
                            **relation == source.relation
                                && World::app_of(grantee) == source.remote_app
                        })
                        .map(|(grantee, _)| match grantee.split_once('/') {
                            Some((_, n)) => format!("{}/{n}", target.app),
                            None => target.app.clone(),
                        })
                        .collect();
                    if grants.is_empty() {
                        continue;
                    }
                    let copy = wanted
                        .entry(target.model.clone())
                        .or_default()
                        .entry(secret.id.clone())
                        .or_insert_with(|| crate::state::Secret {
                            id: secret.id.clone(),
                            owner: rename_owner(&secret.owner, &target.remote_app),
                            label: None,
                            description: None,
                            rotate: None,
                            revisions: secret.revisions.clone(),
                            grants: BTreeMap::new(),
                            tracked: BTreeMap::new(),
                            consumer_labels: BTreeMap::new(),
                            source_model: Some(from.model_uuid.clone()),
                        });
                    for grantee in grants {
                        copy.grants.insert(grantee, target.relation);
                    }
                }
            }
        }
        let uuids: BTreeMap<String, String> = self
            .models
            .iter()
            .map(|(name, m)| (m.world().model_uuid.clone(), name.clone()))
            .collect();
        let mut changed = false;
        for (name, model) in &self.models {
            let mut world = model.world();
            let mut wanted = wanted.remove(name).unwrap_or_default();
            let copies: Vec<String> = world
                .secrets
                .values()
                .filter(|s| !world.owns_secret(s))
                .map(|s| s.id.clone())
                .collect();
            for id in copies {
                let source = world
                    .secrets
                    .get(&id)
                    .and_then(|s| s.source_model.as_ref())
                    .and_then(|uuid| uuids.get(uuid));
                if source.is_some_and(|s| !self.connected(s, name)) {
                    wanted.remove(&id);
                    continue;
                }
                match wanted.remove(&id) {
                    None => {
                        world.secrets.remove(&id);
                        changed = true;
                    }
                    Some(copy) => changed |= update_copy(&mut world, copy),
                }
            }
            for (id, copy) in wanted {
                world.secrets.insert(id, copy);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Forgets cross-model relations gone from both models, and the offering side's
    /// `remote-<token>` applications left with no relation.
    fn drop_ended_links(&mut self) {
        let gone = |models: &BTreeMap<String, Model>, side: &RelationSide| {
            models
                .get(&side.model)
                .is_none_or(|m| !m.world().relations.contains_key(&side.relation))
        };
        let (ended, kept): (Vec<CrossModelRelation>, Vec<CrossModelRelation>) = self
            .links
            .drain(..)
            .partition(|l| gone(&self.models, &l.offer) && gone(&self.models, &l.consumer));
        self.links = kept;
        for link in ended {
            let Some(model) = self.models.get(&link.offer.model) else {
                continue;
            };
            let mut world = model.world();
            let stand_in = &link.offer.remote_app;
            if world.relations.values().any(|r| r.involves(stand_in)) {
                continue;
            }
            world.apps.remove(stand_in);
            world.units.retain(|_, u| u.app != *stand_in);
        }
    }
}

impl Default for Controller {
    fn default() -> Controller {
        Controller::new()
    }
}

/// A remote application's record in a model: no leader, no config, units that run no hooks.
fn remote_app_record(name: &str, meta: CharmMeta, remote: RemoteApp) -> App {
    App::new(name, meta, CharmKind::Remote(remote), Map::new())
}

/// A remote unit's record: it stands for a unit of another model, at that unit's address.
fn remote_unit(name: &str, app: &str, address: String) -> Unit {
    Unit {
        name: name.to_owned(),
        app: app.to_owned(),
        address,
        status: StatusRecord::default(),
        ports: BTreeSet::new(),
        queue: Default::default(),
        failed: None,
        alive: true,
        dying: false,
        agent_error: None,
        machine_down: false,
        agent_stopped: false,
    }
}

/// Replaces a bag of relation `id` with `content` when it differs, and queues relation-changed
/// on the units that see it; whether it differed.
fn copy_bag(world: &mut World, id: u32, bag: &str, content: Bag) -> bool {
    let Some(rel) = world.relations.get_mut(&id) else {
        return false;
    };
    let slot = if bag.contains('/') {
        rel.unit_data.entry(bag.to_owned()).or_default()
    } else {
        rel.app_data.entry(bag.to_owned()).or_default()
    };
    if *slot == content {
        return false;
    }
    *slot = content;
    crate::notify_bag_changed(world, id, bag, None);
    true
}

/// Whether `watcher` will see `remote` in relation `id` once its queued hooks have run: it has
/// seen it join, or a join of it is queued, and no departure or end of the relation after.
fn eventually_sees(world: &World, watcher: &str, id: u32, remote: &str) -> bool {
    let Some(unit) = world.units.get(watcher) else {
        return false;
    };
    let mut sees = world
        .relations
        .get(&id)
        .and_then(|r| r.joined.get(watcher))
        .is_some_and(|seen| seen.contains(remote));
    let failed = unit.failed.iter().map(|(event, _)| event);
    for event in failed.chain(unit.queue.iter()) {
        if event.relation != Some(id) {
            continue;
        }
        let about = event.remote_unit.as_deref() == Some(remote);
        if event.name.ends_with("-relation-joined") && about {
            sees = true;
        } else if (event.name.ends_with("-relation-departed") && about)
            || event.name.ends_with("-relation-broken")
        {
            sees = false;
        }
    }
    sees
}

/// `application:<app>` or `unit:<app>/<n>` as the consuming model names the owner.
fn rename_owner(owner: &str, remote_app: &str) -> String {
    match owner.split_once(':') {
        Some(("unit", unit)) => {
            let number = unit.rsplit('/').next().unwrap_or_default();
            format!("unit:{remote_app}/{number}")
        }
        _ => format!("application:{remote_app}"),
    }
}

/// Brings a model's copy of another model's secret up to `copy` (its consumers' tracking and
/// labels kept); secret-changed for consumers tracking an older revision than it now has.
/// Whether anything changed.
fn update_copy(world: &mut World, copy: crate::state::Secret) -> bool {
    let Some(secret) = world.secrets.get_mut(&copy.id) else {
        return false;
    };
    let grew = copy.revisions.len() > secret.revisions.len();
    let changed = secret.revisions != copy.revisions
        || secret.grants != copy.grants
        || secret.owner != copy.owner;
    secret.revisions = copy.revisions;
    secret.grants = copy.grants;
    secret.owner = copy.owner;
    if !grew {
        return changed;
    }
    let latest = secret.latest();
    let uri = secret.uri();
    let consumers: Vec<(String, Option<String>)> = secret
        .tracked
        .iter()
        .filter(|(_, revision)| **revision < latest)
        .map(|(consumer, _)| {
            (
                consumer.clone(),
                secret.consumer_labels.get(consumer).cloned(),
            )
        })
        .collect();
    for (consumer, label) in consumers {
        let mut event = HookEvent::simple("secret-changed");
        event.secret = Some((uri.clone(), label, latest));
        world.queue(&consumer, event);
    }
    true
}

/// A UUID (version 4 layout) derived from `seed`: stable across runs, distinct per seed.
fn uuid_of(seed: &str) -> String {
    let hex = token_hex(seed);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The token Juju gives a consuming application (a UUID), without its dashes: what follows
/// `remote-` in the offering model's name for it.
fn token(consumer_model_uuid: &str, app: &str) -> String {
    token_hex(&format!("application {consumer_model_uuid} {app}"))
}

/// 32 lowercase hex digits of a version 4 UUID derived from `seed`.
fn token_hex(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_lowercase_hex_digits_of_a_version_4_uuid() {
        let t = token("5a1d9c2e-0000-4000-8000-00000000cafe", "client");
        assert_eq!(t.len(), 32);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_eq!(&t[12..13], "4");
        assert!("89ab".contains(&t[16..17]));
        assert_ne!(t, token("5a1d9c2e-0000-4000-8000-00000000cafe", "other"));
        let uuid = uuid_of("model central");
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.matches('-').count(), 4);
    }

    #[test]
    fn owners_are_renamed_for_the_consuming_model() {
        assert_eq!(
            rename_owner("application:provider", "identity"),
            "application:identity"
        );
        assert_eq!(
            rename_owner("unit:provider/2", "identity"),
            "unit:identity/2"
        );
    }
}
