//! [`Placer`]: the cluster as placement sees it, kept across decisions and
//! indexed, so that a decision does not scan every instance.
//!
//! What it keeps beside the instances (each updated by every placement):
//!
//! - **Indexes**, one per request shape seen (the request's static filter
//!   and static host ports, the attribute its first strategy spreads over,
//!   and the sort order its other strategies give). An index holds the
//!   instances that pass the static filter (ACTIVE, agent connected,
//!   `requiresAttributes`, and the `memberOf` conditions that don't read
//!   `task:group`, evaluated once per instance) and have the ports free (an
//!   instance leaves the index when a placement takes one), split by the
//!   spread attribute's value, each part sorted by the strategies' keys
//!   (remaining CPU, remaining memory, tasks of the group on the instance)
//!   in blocks that know their largest remaining CPU and memory. The best
//!   candidate is the first entry, from the smallest key that can fit, that
//!   passes the dynamic checks (CPU and memory, distinctInstance, the
//!   `memberOf` conditions on `task:group`); blocks without room for the
//!   task are skipped whole.
//! - **Spread counts**: tasks of a group per value of an attribute, over all
//!   instances, ordered by count, so spread visits the values with the
//!   fewest tasks first and stops at the first count that has a candidate.
//! - **Group counts**: tasks of each group seen per instance.
//!
//! Strategy lists the indexes don't cover (a spread by attribute after the
//! first strategy, spread without a task group) fall back to a scan of every
//! instance, with the same result. Either way the decisions are exactly
//! those of the straightforward algorithm described at [`super::place`]
//! (the tests compare them with it on random clusters).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::query::{Expr, Subject};
use super::{
    BinpackField, Constraint, Decision, Failure, Instance, PlaceError, Request, SpreadField,
    Strategy, REASON_AGENT, REASON_ATTRIBUTE, REASON_CPU, REASON_DISTINCT_INSTANCE,
    REASON_MEMBER_OF, REASON_MEMORY, REASON_PORTS, REASON_PORTS_UDP,
};

/// Sort keys an index can hold (ECS allows 5 strategies per task).
const MAX_KEYS: usize = 5;
type Key = [i64; MAX_KEYS];
/// Entries per block of a sorted part (a block is split at twice this).
const BLOCK: usize = 64;
/// Indexes and spread counts kept; the least recently used go first.
const MAX_INDEXES: usize = 8;
const MAX_SPREADS: usize = 32;

/// Placement state for a cluster, built once from a snapshot of its
/// container instances and updated by each placement, so that a series of
/// requests (RunTask calls arriving one after another) each sees the tasks
/// the previous ones placed.
///
/// `Placer::new(snapshot).place(req, rng)` is exactly [`super::place`]; a
/// long-lived `Placer` answers each further request the same way `place`
/// would on a snapshot with the earlier placements applied (remaining CPU
/// and memory, ports, pending count, task groups), without copying or
/// scanning the snapshot. The snapshot is borrowed; an instance is copied
/// the first time a task is placed on it.
pub struct Placer<'a> {
    insts: Vec<Cow<'a, Instance>>,
    active: usize,
    group_ids: HashMap<String, u32>,
    /// Per instance: (group id, tasks of that group) for each interned group
    /// it runs.
    group_counts: Vec<Vec<(u32, u32)>>,
    attrs: Vec<AttrValues>,
    spreads: Vec<SpreadCounts>,
    indexes: Vec<Index>,
    clock: u64,
    /// Tasks of the current request per instance, and where it is non-zero.
    placed_here: Vec<u32>,
    touched: Vec<usize>,
}

impl<'a> Placer<'a> {
    /// A placer over `instances` (borrowed; copied one by one on write).
    pub fn new(instances: &'a [Instance]) -> Placer<'a> {
        Placer::from_cows(instances.iter().map(Cow::Borrowed).collect())
    }

    /// A placer that owns its instances.
    pub fn from_owned(instances: Vec<Instance>) -> Placer<'static> {
        Placer::from_cows(instances.into_iter().map(Cow::Owned).collect())
    }

    fn from_cows(insts: Vec<Cow<'a, Instance>>) -> Placer<'a> {
        let n = insts.len();
        assert!(n <= u32::MAX as usize, "too many instances");
        Placer {
            active: insts.iter().filter(|i| i.active).count(),
            insts,
            group_ids: HashMap::new(),
            group_counts: vec![Vec::new(); n],
            attrs: Vec::new(),
            spreads: Vec::new(),
            indexes: Vec::new(),
            clock: 0,
            placed_here: vec![0; n],
            touched: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// The instance at `k` as it is now (earlier placements applied).
    pub fn instance(&self, k: usize) -> &Instance {
        &self.insts[k]
    }

    /// The instances as they are now, in the snapshot's order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> + '_ {
        self.insts.iter().map(|c| &**c)
    }

    /// Replaces the instance at `k` (a task stopped, the agent
    /// disconnected, attributes changed, …): what the placer derived from it
    /// is recomputed.
    pub fn set_instance(&mut self, k: usize, inst: Instance) {
        // Take the old instance out of everything derived from it.
        for ix in &mut self.indexes {
            if ix.member[k] {
                let part = ix.part_of(k, &self.attrs);
                ix.parts[part].remove(&ix.entry[k]);
                ix.member[k] = false;
            }
        }
        for sc in &mut self.spreads {
            let c = count_of(&self.group_counts[k], sc.gid);
            if c > 0 {
                sc.add(self.attrs[sc.attr].of[k], -(c as i64));
            }
        }
        if self.insts[k].active {
            self.active -= 1;
        }
        if inst.active {
            self.active += 1;
        }
        let mut counts: Vec<(u32, u32)> = Vec::new();
        for g in &inst.task_groups {
            if let Some(&gid) = self.group_ids.get(g) {
                match counts.iter_mut().find(|(id, _)| *id == gid) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((gid, 1)),
                }
            }
        }
        self.group_counts[k] = counts;
        self.insts[k] = Cow::Owned(inst);
        let inst = &*self.insts[k];
        for a in &mut self.attrs {
            a.of[k] = a.id(inst.attribute(&a.name));
        }
        // Put the new one back.
        for sc in &mut self.spreads {
            sc.ensure(self.attrs[sc.attr].values);
            let c = count_of(&self.group_counts[k], sc.gid);
            if c > 0 {
                sc.add(self.attrs[sc.attr].of[k], c as i64);
            }
        }
        for ix in &mut self.indexes {
            if ix.spec.admits(inst) {
                let e = make_entry(&ix.spec.sort, inst, &self.group_counts[k], k);
                let part = ix.part_of(k, &self.attrs);
                if ix.parts.len() <= part {
                    ix.parts.resize_with(part + 1, Sorted::default);
                }
                ix.parts[part].insert(e);
                ix.member[k] = true;
                ix.entry[k] = e;
            }
        }
    }

    /// Places `req.count` tasks, as [`super::place`] does, and keeps them:
    /// the next request sees them.
    pub fn place(
        &mut self,
        req: &Request,
        rng: &mut impl FnMut(usize) -> usize,
    ) -> Result<Decision, PlaceError> {
        if self.active == 0 {
            return Err(PlaceError::NoContainerInstances);
        }
        let mut decision = Decision::default();
        if req.count == 0 {
            return Ok(decision);
        }
        let plan = self.prepare(req);
        let mut ties: Vec<u32> = Vec::new();
        for _ in 0..req.count {
            ties.clear();
            match plan.route {
                Route::Scan => self.scan_ties(req, &mut ties),
                Route::Indexed { index, spread } => {
                    self.indexed_ties(req, &plan, index, spread, &mut ties)
                }
            }
            if ties.is_empty() {
                decision.failures = self.failures(req);
                break;
            }
            let n = ties.len();
            let k = ties[if n <= 1 { 0 } else { rng(n) % n }] as usize;
            self.apply(k, req, plan.gid);
            decision.placed.push(self.insts[k].arn.clone());
        }
        for k in self.touched.drain(..) {
            self.placed_here[k] = 0;
        }
        Ok(decision)
    }

    /// Resolves what the request needs: its group's id, its static and
    /// dynamic `memberOf` conditions, and the index (built if new) and
    /// spread counts that answer its strategies.
    fn prepare<'r>(&mut self, req: &'r Request) -> Plan<'r> {
        self.clock += 1;
        let gid = req.group.as_deref().map(|g| self.group_id(g));
        let mut statics = Vec::new();
        let mut dynamics = Vec::new();
        let mut distinct = false;
        for c in &req.constraints {
            match c {
                Constraint::DistinctInstance => distinct = true,
                Constraint::MemberOf(e) => {
                    for part in e.conjuncts() {
                        if part.reads_task_groups() {
                            dynamics.push(part);
                        } else {
                            statics.push(part);
                        }
                    }
                }
            }
        }
        let route = match self.sort_plan(req, gid) {
            None => Route::Scan,
            Some((partition, sort)) => {
                let partition = partition.map(|name| self.attr_id(name));
                let spread = match (partition, gid) {
                    (Some(a), Some(g)) => Some(self.spread_id(a, g)),
                    _ => None,
                };
                let index = self.index_id(req, &statics, partition, &sort);
                Route::Indexed { index, spread }
            }
        };
        Plan {
            gid,
            dynamics,
            distinct,
            route,
        }
    }

    /// The strategies as an index sees them: the attribute the first one
    /// spreads over, if it does, and the sort keys of the others, up to the
    /// first random one (which, like the end of the list, leaves the choice
    /// among the tied instances to `rng`). `None`: a shape the indexes don't
    /// cover.
    fn sort_plan<'r>(
        &self,
        req: &'r Request,
        gid: Option<u32>,
    ) -> Option<(Option<&'r str>, Vec<SortKey>)> {
        let end = req
            .strategies
            .iter()
            .position(|s| *s == Strategy::Random)
            .unwrap_or(req.strategies.len());
        let effective = &req.strategies[..end];
        let (partition, rest) = match effective.first() {
            Some(Strategy::Spread(SpreadField::Attribute(name))) => {
                gid?;
                (Some(name.as_str()), &effective[1..])
            }
            _ => (None, effective),
        };
        if rest.len() > MAX_KEYS {
            return None;
        }
        let mut sort = Vec::with_capacity(rest.len());
        for s in rest {
            sort.push(match s {
                Strategy::Binpack(BinpackField::Cpu) => SortKey::Cpu,
                Strategy::Binpack(BinpackField::Memory) => SortKey::Memory,
                Strategy::Spread(SpreadField::InstanceId) => SortKey::Group(gid?),
                Strategy::Spread(SpreadField::Attribute(_)) | Strategy::Random => return None,
            });
        }
        Some((partition, sort))
    }

    fn group_id(&mut self, g: &str) -> u32 {
        if let Some(&id) = self.group_ids.get(g) {
            return id;
        }
        let id = self.group_ids.len() as u32;
        self.group_ids.insert(g.to_string(), id);
        for (k, inst) in self.insts.iter().enumerate() {
            let c = inst.task_groups.iter().filter(|t| *t == g).count();
            if c > 0 {
                self.group_counts[k].push((id, c as u32));
            }
        }
        id
    }

    fn attr_id(&mut self, name: &str) -> usize {
        if let Some(a) = self.attrs.iter().position(|a| a.name == name) {
            return a;
        }
        let mut a = AttrValues {
            name: name.to_string(),
            absent: None,
            valueless: None,
            by_value: HashMap::new(),
            values: 0,
            of: Vec::with_capacity(self.insts.len()),
        };
        for inst in &self.insts {
            let v = a.id(inst.attribute(name));
            a.of.push(v);
        }
        self.attrs.push(a);
        self.attrs.len() - 1
    }

    fn spread_id(&mut self, attr: usize, gid: u32) -> usize {
        let clock = self.clock;
        if let Some(s) = self
            .spreads
            .iter()
            .position(|s| s.attr == attr && s.gid == gid)
        {
            self.spreads[s].used = clock;
            return s;
        }
        if self.spreads.len() >= MAX_SPREADS {
            let oldest = (0..self.spreads.len())
                .min_by_key(|&s| self.spreads[s].used)
                .expect("spreads is full, not empty");
            self.spreads.remove(oldest);
        }
        let values = &self.attrs[attr];
        let mut counts = vec![0i64; values.values as usize];
        for (k, gc) in self.group_counts.iter().enumerate() {
            counts[values.of[k] as usize] += count_of(gc, gid) as i64;
        }
        let by_count = counts
            .iter()
            .enumerate()
            .map(|(v, &c)| (c, v as u32))
            .collect();
        self.spreads.push(SpreadCounts {
            attr,
            gid,
            counts,
            by_count,
            used: clock,
        });
        self.spreads.len() - 1
    }

    fn index_id(
        &mut self,
        req: &Request,
        statics: &[&Expr],
        partition: Option<usize>,
        sort: &[SortKey],
    ) -> usize {
        let clock = self.clock;
        let found = self.indexes.iter().position(|ix| {
            ix.spec.partition == partition
                && ix.spec.sort == sort
                && ix.spec.ports_tcp == req.ports_tcp
                && ix.spec.ports_udp == req.ports_udp
                && ix.spec.required == req.required_attributes
                && ix.spec.statics.len() == statics.len()
                && ix.spec.statics.iter().zip(statics).all(|(a, b)| a == *b)
        });
        if let Some(i) = found {
            self.indexes[i].used = clock;
            return i;
        }
        if self.indexes.len() >= MAX_INDEXES {
            let oldest = (0..self.indexes.len())
                .min_by_key(|&i| self.indexes[i].used)
                .expect("indexes is full, not empty");
            self.indexes.remove(oldest);
        }
        let spec = IndexSpec {
            required: req.required_attributes.clone(),
            statics: statics.iter().map(|e| (*e).clone()).collect(),
            ports_tcp: req.ports_tcp.clone(),
            ports_udp: req.ports_udp.clone(),
            partition,
            sort: sort.to_vec(),
        };
        let n = self.insts.len();
        let parts_n = partition
            .map_or(1, |a| self.attrs[a].values as usize)
            .max(1);
        let mut lists: Vec<Vec<Entry>> = vec![Vec::new(); parts_n];
        let mut member = vec![false; n];
        let mut entry = vec![Entry::MIN; n];
        for (k, inst) in self.insts.iter().enumerate() {
            if spec.admits(inst) {
                let e = make_entry(&spec.sort, inst, &self.group_counts[k], k);
                let part = partition.map_or(0, |a| self.attrs[a].of[k] as usize);
                lists[part].push(e);
                member[k] = true;
                entry[k] = e;
            }
        }
        let parts = lists
            .into_iter()
            .map(|mut l| {
                l.sort_unstable();
                Sorted::from_sorted(l)
            })
            .collect();
        self.indexes.push(Index {
            spec,
            member,
            entry,
            parts,
            used: clock,
        });
        self.indexes.len() - 1
    }

    /// The checks an index can't answer ahead of time: distinctInstance
    /// and the `memberOf` conditions on `task:group`. (CPU and memory are
    /// checked on the index entry; ports by membership of the index.)
    fn dynamic_ok(&self, k: usize, plan: &Plan) -> bool {
        let inst = &*self.insts[k];
        if plan.distinct
            && (self.placed_here[k] > 0
                || plan
                    .gid
                    .is_some_and(|g| count_of(&self.group_counts[k], g) > 0))
        {
            return false;
        }
        plan.dynamics.iter().all(|e| e.eval(inst))
    }

    /// The candidates the strategies leave tied, in instance order, from
    /// the index.
    fn indexed_ties(
        &self,
        req: &Request,
        plan: &Plan,
        index: usize,
        spread: Option<usize>,
        ties: &mut Vec<u32>,
    ) {
        let ix = &self.indexes[index];
        let sort = &ix.spec.sort;
        let mut ok = |k: usize| self.dynamic_ok(k, plan);
        let Some(sid) = spread else {
            least(&ix.parts[0], sort, req.cpu, req.memory, &mut ok, ties);
            return;
        };
        // Values in order of their task count; the first count with a
        // candidate wins, and the other strategies choose among all of
        // its values' candidates.
        let mut level = None;
        let mut best: Option<Key> = None;
        for &(count, vid) in &self.spreads[sid].by_count {
            if level != Some(count) {
                if best.is_some() {
                    break;
                }
                level = Some(count);
            }
            let Some(part) = ix.parts.get(vid as usize) else {
                continue;
            };
            let start = ties.len();
            let Some(key) = least(part, sort, req.cpu, req.memory, &mut ok, ties) else {
                continue;
            };
            match best.map(|b| key.cmp(&b)) {
                None => best = Some(key),
                Some(Ordering::Less) => {
                    ties.drain(..start);
                    best = Some(key);
                }
                Some(Ordering::Equal) => {}
                Some(Ordering::Greater) => ties.truncate(start),
            }
        }
        ties.sort_unstable();
    }

    /// The candidates the strategies leave tied, in instance order, by a
    /// scan of every instance (strategy lists the indexes don't cover).
    fn scan_ties(&self, req: &Request, ties: &mut Vec<u32>) {
        let insts = &self.insts;
        let placed = &self.placed_here;
        let mut set: Vec<usize> = (0..insts.len())
            .filter(|&k| {
                insts[k].active && reject_reason(&insts[k], placed[k] as usize, req).is_none()
            })
            .collect();
        let group_tasks = |k: usize| match &req.group {
            Some(g) => insts[k].task_groups.iter().filter(|t| *t == g).count(),
            None => placed[k] as usize,
        };
        for s in &req.strategies {
            if set.len() <= 1 {
                break;
            }
            match s {
                Strategy::Random => break,
                Strategy::Binpack(field) => {
                    let left = |k: usize| match field {
                        BinpackField::Cpu => insts[k].remaining_cpu,
                        BinpackField::Memory => insts[k].remaining_memory,
                    };
                    let least = set.iter().map(|&k| left(k)).min().unwrap_or(0);
                    set.retain(|&k| left(k) == least);
                }
                Strategy::Spread(SpreadField::InstanceId) => {
                    let fewest = set.iter().map(|&k| group_tasks(k)).min().unwrap_or(0);
                    set.retain(|&k| group_tasks(k) == fewest);
                }
                Strategy::Spread(SpreadField::Attribute(name)) => {
                    let mut per_value: BTreeMap<Option<Option<&str>>, usize> = BTreeMap::new();
                    for (k, inst) in insts.iter().enumerate() {
                        *per_value.entry(inst.attribute(name)).or_default() += group_tasks(k);
                    }
                    let tasks = |k: usize| per_value[&insts[k].attribute(name)];
                    let fewest = set.iter().map(|&k| tasks(k)).min().unwrap_or(0);
                    set.retain(|&k| tasks(k) == fewest);
                }
            }
        }
        ties.extend(set.into_iter().map(|k| k as u32));
    }

    /// Why each ACTIVE instance can't take the task, in instance order.
    fn failures(&self, req: &Request) -> Vec<Failure> {
        self.insts
            .iter()
            .enumerate()
            .filter(|(_, inst)| inst.active)
            .filter_map(|(k, inst)| {
                let reason = reject_reason(inst, self.placed_here[k] as usize, req);
                debug_assert!(reason.is_some(), "no candidate, yet {} fits", inst.arn);
                reason.map(|r| Failure {
                    arn: Some(inst.arn.clone()),
                    reason: r.to_string(),
                })
            })
            .collect()
    }

    /// Places one task of `req` on instance `k`.
    fn apply(&mut self, k: usize, req: &Request, gid: Option<u32>) {
        let inst = self.insts[k].to_mut();
        inst.remaining_cpu -= req.cpu;
        inst.remaining_memory -= req.memory;
        inst.ports_tcp.extend(req.ports_tcp.iter().copied());
        inst.ports_udp.extend(req.ports_udp.iter().copied());
        inst.pending_tasks_count += 1;
        if let Some(g) = &req.group {
            inst.task_groups.push(g.clone());
        }
        if self.placed_here[k] == 0 {
            self.touched.push(k);
        }
        self.placed_here[k] += 1;
        if let Some(gid) = gid {
            let counts = &mut self.group_counts[k];
            match counts.iter_mut().find(|(id, _)| *id == gid) {
                Some((_, c)) => *c += 1,
                None => counts.push((gid, 1)),
            }
            for sc in &mut self.spreads {
                if sc.gid == gid {
                    sc.add(self.attrs[sc.attr].of[k], 1);
                }
            }
        }
        let inst = &*self.insts[k];
        for ix in &mut self.indexes {
            if !ix.member[k] {
                continue;
            }
            let part = ix.part_of(k, &self.attrs);
            let old = ix.entry[k];
            if !ix.spec.ports_free(inst) {
                // the task took a port this index's requests need
                ix.parts[part].remove(&old);
                ix.member[k] = false;
                continue;
            }
            let e = make_entry(&ix.spec.sort, inst, &self.group_counts[k], k);
            if (e.key, e.cpu, e.mem) != (old.key, old.cpu, old.mem) {
                ix.parts[part].remove(&old);
                ix.parts[part].insert(e);
                ix.entry[k] = e;
            }
        }
    }
}

/// Why `inst` can't take one more task of `req`, or `None` when it can:
/// the filters of [`super::place`], in order.
pub(super) fn reject_reason(
    inst: &Instance,
    placed_here: usize,
    req: &Request,
) -> Option<&'static str> {
    if !inst.agent_connected {
        return Some(REASON_AGENT);
    }
    if !has_required_attributes(inst, &req.required_attributes) {
        return Some(REASON_ATTRIBUTE);
    }
    if inst.remaining_cpu < req.cpu {
        return Some(REASON_CPU);
    }
    if inst.remaining_memory < req.memory {
        return Some(REASON_MEMORY);
    }
    if req.ports_tcp.iter().any(|p| inst.ports_tcp.contains(p)) {
        return Some(REASON_PORTS);
    }
    if req.ports_udp.iter().any(|p| inst.ports_udp.contains(p)) {
        return Some(REASON_PORTS_UDP);
    }
    for c in &req.constraints {
        match c {
            Constraint::DistinctInstance => {
                let group_here = req
                    .group
                    .as_ref()
                    .is_some_and(|g| inst.task_groups.contains(g));
                if placed_here > 0 || group_here {
                    return Some(REASON_DISTINCT_INSTANCE);
                }
            }
            Constraint::MemberOf(e) => {
                if !e.eval(inst) {
                    return Some(REASON_MEMBER_OF);
                }
            }
        }
    }
    None
}

fn has_required_attributes(inst: &Instance, required: &[(String, Option<String>)]) -> bool {
    required
        .iter()
        .all(|(name, value)| match (inst.attributes.get(name), value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
        })
}

fn count_of(counts: &[(u32, u32)], gid: u32) -> u32 {
    counts
        .iter()
        .find(|(id, _)| *id == gid)
        .map_or(0, |(_, c)| *c)
}

fn make_entry(sort: &[SortKey], inst: &Instance, groups: &[(u32, u32)], k: usize) -> Entry {
    let mut key = [0; MAX_KEYS];
    for (slot, s) in key.iter_mut().zip(sort) {
        *slot = match s {
            SortKey::Cpu => inst.remaining_cpu,
            SortKey::Memory => inst.remaining_memory,
            SortKey::Group(g) => count_of(groups, *g) as i64,
        };
    }
    Entry {
        key,
        idx: k as u32,
        cpu: inst.remaining_cpu,
        mem: inst.remaining_memory,
    }
}

/// The feasible entries of `part` with the least key: appends their
/// instances to `ties` (in instance order) and returns the key. An entry is
/// feasible when its instance has `need_cpu` and `need_mem` left and `ok`
/// accepts it.
fn least(
    part: &Sorted,
    sort: &[SortKey],
    need_cpu: i64,
    need_mem: i64,
    ok: &mut impl FnMut(usize) -> bool,
    ties: &mut Vec<u32>,
) -> Option<Key> {
    // The first resource key, when only task counts come before it: the
    // entries of one count that lack the resource are skipped by a seek.
    let seekable = sort
        .iter()
        .position(|s| !matches!(s, SortKey::Group(_)))
        .map(|r| {
            let need = if sort[r] == SortKey::Cpu {
                need_cpu
            } else {
                need_mem
            };
            (r, need)
        });
    let mut lo = Entry::MIN;
    if let Some((0, need)) = seekable {
        lo.key[0] = need;
    }
    let (mut b, mut p) = part.seek(&lo);
    let mut best: Option<Key> = None;
    while b < part.blocks.len() {
        let blk = &part.blocks[b];
        if blk.max_cpu < need_cpu || blk.max_mem < need_mem {
            // Nothing here fits. Past the best key, nothing further ties.
            if best.is_some_and(|k| blk.entries[blk.entries.len() - 1].key != k) {
                break;
            }
            b += 1;
            p = 0;
            continue;
        }
        let mut seek_to = None;
        for e in &blk.entries[p..] {
            if let Some(k) = best {
                if e.key != k {
                    return best;
                }
            }
            if e.cpu < need_cpu || e.mem < need_mem {
                if let (None, Some((r, need))) = (best, seekable) {
                    if r > 0 && e.key[r] < need {
                        let mut to = Entry::MIN;
                        to.key[..r].copy_from_slice(&e.key[..r]);
                        to.key[r] = need;
                        seek_to = Some(to);
                        break;
                    }
                }
                continue;
            }
            if ok(e.idx as usize) {
                best.get_or_insert(e.key);
                ties.push(e.idx);
            }
        }
        match seek_to {
            Some(to) => (b, p) = part.seek(&to),
            None => {
                b += 1;
                p = 0;
            }
        }
    }
    best
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Cpu,
    Memory,
    /// Tasks of the group (by id) on the instance.
    Group(u32),
}

/// An instance in an index: ordered by its sort key, then its position;
/// carries its remaining resources for the blocks' summaries.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Key,
    idx: u32,
    cpu: i64,
    mem: i64,
}

impl Entry {
    const MIN: Entry = Entry {
        key: [i64::MIN; MAX_KEYS],
        idx: 0,
        cpu: 0,
        mem: 0,
    };
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.key, self.idx).cmp(&(other.key, other.idx))
    }
}

/// Entries in order, in blocks that know the most CPU and memory any of
/// their instances has left. Blocks are never empty.
#[derive(Default)]
struct Sorted {
    blocks: Vec<Block>,
}

struct Block {
    entries: Vec<Entry>,
    max_cpu: i64,
    max_mem: i64,
}

impl Block {
    fn new(entries: Vec<Entry>) -> Block {
        let mut b = Block {
            entries,
            max_cpu: i64::MIN,
            max_mem: i64::MIN,
        };
        b.refresh();
        b
    }

    fn refresh(&mut self) {
        self.max_cpu = self.entries.iter().map(|e| e.cpu).max().unwrap_or(i64::MIN);
        self.max_mem = self.entries.iter().map(|e| e.mem).max().unwrap_or(i64::MIN);
    }
}

impl Sorted {
    fn from_sorted(entries: Vec<Entry>) -> Sorted {
        Sorted {
            blocks: entries
                .chunks(BLOCK)
                .map(|c| Block::new(c.to_vec()))
                .collect(),
        }
    }

    /// The block that holds `e`, or would.
    fn block_for(&self, e: &Entry) -> usize {
        self.blocks
            .partition_point(|b| b.entries[0] <= *e)
            .saturating_sub(1)
    }

    /// The position of the first entry not below `lo`: (block, offset);
    /// the offset may be the block's length.
    fn seek(&self, lo: &Entry) -> (usize, usize) {
        if self.blocks.is_empty() {
            return (0, 0);
        }
        let b = self.block_for(lo);
        (b, self.blocks[b].entries.partition_point(|x| x < lo))
    }

    fn insert(&mut self, e: Entry) {
        if self.blocks.is_empty() {
            self.blocks.push(Block::new(vec![e]));
            return;
        }
        let b = self.block_for(&e);
        let blk = &mut self.blocks[b];
        let p = blk.entries.partition_point(|x| *x < e);
        blk.entries.insert(p, e);
        blk.max_cpu = blk.max_cpu.max(e.cpu);
        blk.max_mem = blk.max_mem.max(e.mem);
        if blk.entries.len() > 2 * BLOCK {
            let tail = blk.entries.split_off(BLOCK);
            blk.refresh();
            self.blocks.insert(b + 1, Block::new(tail));
        }
    }

    fn remove(&mut self, e: &Entry) {
        let b = self.block_for(e);
        let blk = &mut self.blocks[b];
        let p = blk
            .entries
            .binary_search(e)
            .expect("an indexed instance is in its part");
        let old = blk.entries.remove(p);
        if blk.entries.is_empty() {
            self.blocks.remove(b);
        } else if old.cpu >= blk.max_cpu || old.mem >= blk.max_mem {
            blk.refresh();
        }
    }
}

struct IndexSpec {
    required: Vec<(String, Option<String>)>,
    /// `memberOf` conditions that don't read `task:group`.
    statics: Vec<Expr>,
    /// The static host ports the requests need.
    ports_tcp: Vec<u16>,
    ports_udp: Vec<u16>,
    /// The attribute (id) whose values split the index.
    partition: Option<usize>,
    sort: Vec<SortKey>,
}

struct Index {
    spec: IndexSpec,
    /// Per instance: passes the static filter, and so is in a part.
    member: Vec<bool>,
    /// Per instance: its entry, when a member.
    entry: Vec<Entry>,
    /// One per value of the partition attribute (one in all without it).
    parts: Vec<Sorted>,
    used: u64,
}

impl IndexSpec {
    /// Whether `inst` belongs in the index: it passes the checks that
    /// placing tasks doesn't change, and has the ports free (placing a task
    /// only ever takes ports).
    fn admits(&self, inst: &Instance) -> bool {
        inst.active
            && inst.agent_connected
            && has_required_attributes(inst, &self.required)
            && self.ports_free(inst)
            && self.statics.iter().all(|e| e.eval(inst))
    }

    fn ports_free(&self, inst: &Instance) -> bool {
        !self.ports_tcp.iter().any(|p| inst.ports_tcp.contains(p))
            && !self.ports_udp.iter().any(|p| inst.ports_udp.contains(p))
    }
}

impl Index {
    fn part_of(&self, k: usize, attrs: &[AttrValues]) -> usize {
        self.spec.partition.map_or(0, |a| attrs[a].of[k] as usize)
    }
}

/// The values of one attribute, numbered, and each instance's.
struct AttrValues {
    name: String,
    absent: Option<u32>,
    valueless: Option<u32>,
    by_value: HashMap<String, u32>,
    values: u32,
    of: Vec<u32>,
}

impl AttrValues {
    fn id(&mut self, v: Option<Option<&str>>) -> u32 {
        let next = self.values;
        let id = match v {
            None => *self.absent.get_or_insert(next),
            Some(None) => *self.valueless.get_or_insert(next),
            Some(Some(s)) => match self.by_value.get(s) {
                Some(&id) => id,
                None => {
                    self.by_value.insert(s.to_string(), next);
                    next
                }
            },
        };
        if id == next {
            self.values += 1;
        }
        id
    }
}

/// Tasks of a group per value of an attribute, over every instance.
struct SpreadCounts {
    attr: usize,
    gid: u32,
    counts: Vec<i64>,
    /// (count, value), every value.
    by_count: BTreeSet<(i64, u32)>,
    used: u64,
}

impl SpreadCounts {
    /// Makes room for `values` values (new ones count 0).
    fn ensure(&mut self, values: u32) {
        while self.counts.len() < values as usize {
            self.by_count.insert((0, self.counts.len() as u32));
            self.counts.push(0);
        }
    }

    fn add(&mut self, vid: u32, delta: i64) {
        let c = &mut self.counts[vid as usize];
        self.by_count.remove(&(*c, vid));
        *c += delta;
        self.by_count.insert((*c, vid));
    }
}

struct Plan<'r> {
    gid: Option<u32>,
    /// `memberOf` conditions that read `task:group`, checked per candidate.
    dynamics: Vec<&'r Expr>,
    distinct: bool,
    route: Route,
}

#[derive(Clone, Copy)]
enum Route {
    Scan,
    Indexed { index: usize, spread: Option<usize> },
}
