//! What every step of a hook (and every action) works with: the [`Hook`] context.
//!
//! A step is `fn(&mut Hook) -> Result<Vec<Condition>>`: it reads what it needs through the
//! context (Juju through [`Hook::juju`], the machine through [`Hook::machine`], what earlier
//! steps found through [`Hook::facts`]), does its work, and returns its part of the status. An
//! `Err` is a failure Juju should retry (a tool or a service that did not answer); a reason the
//! operator must act on is a [`Condition::Blocked`] instead.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::addresses::{Addresses, Binding};
use crate::certificate::KeptCertificate;
use crate::config::{Config, ConfigProblems};
use crate::event::Event;
use crate::facts::{Declared, FactName, Facts};
use crate::identity::EndpointUrls;
use crate::juju::Juju;
use crate::key_sets::RotationRequest;
use crate::keystone_api::http::LocalEndpoint;
use crate::keystone_api::{KeystoneApi, PasswordCredentials, Scope};
use crate::machine::Machine;
use crate::paths;
use crate::peers::Peers;
use crate::release::UpgradeRequest;
pub use crate::status::Condition;

/// A step that takes this long says so in the log.
const SLOW_STEP: std::time::Duration = std::time::Duration::from_millis(500);

/// What a step does: reads what it needs through the hook, acts, reports its conditions.
pub type StepFn = fn(&mut Hook<'_>) -> Result<Vec<Condition>>;

/// One concern of a hook (a relation, the packages, Keystone's files, ...) and the facts it
/// reads and writes ([`crate::facts`]).
#[derive(Clone, Copy)]
pub struct Step {
    pub name: &'static str,
    pub run: StepFn,
    pub reads: &'static [FactName],
    pub writes: &'static [FactName],
}

impl Step {
    pub const fn new(name: &'static str, run: StepFn) -> Step {
        Step {
            name,
            run,
            reads: &[],
            writes: &[],
        }
    }

    pub const fn reads(self, reads: &'static [FactName]) -> Step {
        Step { reads, ..self }
    }

    pub const fn writes(self, writes: &'static [FactName]) -> Step {
        Step { writes, ..self }
    }
}

/// Where `steps` read a fact that no earlier step writes, a fact is written by more than one
/// step, or a step adds to a gathered fact after a step read it: one line each, empty when the
/// order holds.
pub fn fact_order_problems(steps: &[Step]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut written: Vec<(FactName, &str)> = Vec::new();
    let mut read: Vec<(FactName, &str)> = Vec::new();
    for step in steps {
        for fact in step.reads {
            // A gathered fact no step added to is empty, not missing.
            if !fact.gathers()
                && !written.iter().any(|(w, _)| w == fact)
                && !step.writes.contains(fact)
            {
                problems.push(format!(
                    "the {} step reads {fact:?}, which no step before it writes",
                    step.name
                ));
            }
            read.push((*fact, step.name));
        }
        for fact in step.writes {
            if fact.gathers() {
                if let Some((_, reader)) = read.iter().find(|(r, _)| r == fact) {
                    problems.push(format!(
                        "the {} step adds to {fact:?} after the {reader} step read it",
                        step.name
                    ));
                }
            } else if let Some((_, other)) = written.iter().find(|(w, _)| w == fact) {
                problems.push(format!(
                    "{fact:?} is written by both the {other} and the {} steps",
                    step.name
                ));
            }
            written.push((*fact, step.name));
        }
    }
    problems
}

/// One hook's context, shared by its steps in order.
pub struct Hook<'a> {
    pub juju: &'a Juju,
    pub machine: &'a Machine,
    pub event: &'a Event,
    pub config: Config,
    pub leader: bool,
    /// The operator paused this unit (the pause action): no service is started.
    pub paused: bool,
    /// Why the leader would rotate the fernet keys in this hook: when due, or because
    /// rotate-fernet asks (the action sets it before it runs the steps).
    pub rotation: RotationRequest,
    /// Whether openstack-upgrade asks this unit to upgrade to the release its sources offer.
    pub release_upgrade: UpgradeRequest,
    /// The certificate the certificates relation issued, as kept on the machine: read before
    /// the steps (every hook serves it); the certificates step keeps it up to date.
    pub kept_certificate: Option<KeptCertificate>,
    /// The cluster peer relation, its application bag read once (None before
    /// cluster-relation-created): every step reads and writes the peer bags through it.
    pub peers: Option<Peers<'a>>,
    /// What earlier steps of this hook found.
    pub facts: Facts,
    /// Keystone's API on this unit: opened by the first step that needs it, then shared.
    keystone: Option<Box<dyn KeystoneApi + 'a>>,
    logged_in: bool,
}

impl<'a> Hook<'a> {
    /// Reads the config and leadership. An invalid config is returned as is: nothing may be
    /// written until the operator fixes it.
    pub fn new(
        juju: &'a Juju,
        machine: &'a Machine,
        event: &'a Event,
    ) -> Result<std::result::Result<Hook<'a>, ConfigProblems>> {
        let options = juju
            .config()
            .context("cannot read the charm configuration")?;
        let mut config = match Config::from_options(&options) {
            Ok(config) => config,
            Err(problems) => return Ok(Err(problems)),
        };
        // The certificate the certificates relation issued is served in every hook, without
        // asking Juju (its step asks only in the hooks that can change it).
        // The hook keeps it for that step, so the file is read once per hook.
        let kept = machine
            .files
            .read(Path::new(paths::CERTIFICATE_STATE))
            .context("cannot read the kept certificate")?
            .map(|bytes| KeptCertificate::parse(&bytes));
        if let Some(issued) = kept.as_ref().and_then(|k| k.issued.as_ref()) {
            config.serve_issued(issued);
        }
        let leader = juju
            .is_leader()
            .context("cannot tell whether this unit is the leader")?;
        let paused = machine.is_paused()?;
        let peers = Peers::read(juju)?;
        Ok(Ok(Hook {
            juju,
            machine,
            event,
            config,
            leader,
            paused,
            rotation: RotationRequest::Scheduled,
            release_upgrade: UpgradeRequest::Scheduled,
            kept_certificate: kept,
            peers,
            facts: Facts::default(),
            keystone: None,
            logged_in: false,
        }))
    }

    /// The cluster relation, which the caller knows exists (a step that runs only once it
    /// does, or a leader that records what it served).
    pub fn peers(&self) -> Result<&Peers<'a>> {
        self.peers
            .as_ref()
            .context("the cluster relation is missing: this unit has no peer relation yet")
    }

    /// The cluster application bag as it stands now (empty before the relation exists).
    pub fn peer_app(&self) -> crate::juju::Databag {
        self.peers.as_ref().map(Peers::app).unwrap_or_default()
    }

    /// Runs `steps` in order until one reports a condition that stops the hook; everything
    /// they reported.
    pub fn run_steps(&mut self, steps: &[Step]) -> Result<Vec<Condition>> {
        let mut conditions = Vec::new();
        for step in steps {
            let found = self.run_step(step)?;
            let stop = found.iter().any(Condition::stops_the_hook);
            conditions.extend(found);
            if stop {
                tracing::debug!(
                    "the {} step is blocked: the steps after it did not run",
                    step.name
                );
                break;
            }
        }
        Ok(conditions)
    }

    /// Runs `step`, holding it to the facts it declares.
    pub fn run_step(&mut self, step: &Step) -> Result<Vec<Condition>> {
        self.facts.enter(Declared {
            step: step.name,
            reads: step.reads,
            writes: step.writes,
        });
        let started = std::time::Instant::now();
        let conditions = (step.run)(self);
        self.facts.leave();
        // Where a slow hook spends its time, in its log (the deploy profile reads it).
        let took = started.elapsed();
        if took >= SLOW_STEP {
            tracing::info!("the {} step took {:.1} s", step.name, took.as_secs_f64());
        }
        conditions.with_context(|| format!("the {} step failed", step.name))
    }

    /// Keystone's API on this unit, not logged in: enough for the readiness check.
    pub fn keystone(&mut self) -> Result<&mut (dyn KeystoneApi + 'a)> {
        if self.keystone.is_none() {
            let endpoint = local_endpoint(&self.config);
            self.keystone = Some(
                self.machine
                    .keystone
                    .connect(&endpoint)
                    .context("cannot reach Keystone's API on this unit")?,
            );
        }
        match self.keystone.as_deref_mut() {
            Some(api) => Ok(api),
            None => anyhow::bail!("Keystone's API client vanished"),
        }
    }

    /// Keystone's API on this unit, logged in (once per hook) with `credentials`, system-scoped.
    pub fn keystone_as(
        &mut self,
        credentials: &PasswordCredentials,
    ) -> Result<&mut (dyn KeystoneApi + 'a)> {
        let logged_in = self.logged_in;
        let api = self.keystone()?;
        if !logged_in {
            api.login(credentials, &Scope::System)
                .context("the charm's admin user cannot log in to Keystone")?;
        }
        self.logged_in = true;
        self.keystone()
    }
}

impl Hook<'_> {
    /// This unit's public, internal and admin hosts ([`crate::addresses`]): network-get is
    /// asked only for the bindings the configuration does not settle, once per hook.
    pub fn addresses(&self) -> Result<Addresses> {
        Addresses::resolve(&self.config, |role| {
            let info = self
                .juju
                .network_get(role.binding())
                .with_context(|| format!("cannot read this unit's {} binding", role.binding()))?;
            Ok(Binding::from_network(&info))
        })
    }

    /// Keystone's own endpoint URLs, on [`Hook::addresses`].
    pub fn endpoint_urls(&self) -> Result<EndpointUrls> {
        Ok(EndpointUrls::of(&self.config, &self.addresses()?))
    }
}

/// The local API endpoint for `config`: Apache's port, the prefix, and over TLS the CA to trust
/// and the certificate's name to ask for.
pub fn local_endpoint(config: &Config) -> LocalEndpoint {
    LocalEndpoint {
        port: config.apache_service_port(),
        path_prefix: config.service_path_prefix.clone(),
    }
}
