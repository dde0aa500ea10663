//! Placement of tasks on nodes by free CPU and memory.
//!
//! `place` is pure: it reads a [`Snapshot`] and returns a [`Plan`]; it
//! does no I/O and never mutates the snapshot. Tasks of one call are
//! placed one after another against the capacity the earlier ones took,
//! spread over zones first (as Fargate spreads tasks over Availability
//! Zones), then onto the node with the most free memory.
//!
//! A node may offer part of its capacity as Fargate Spot (`spot`): Spot
//! demands are placed within that part, on-demand ones within the rest.

use std::collections::BTreeMap;

/// What a node can give and what it has given, in ECS units (CPU units,
/// 1024 per core; memory in MiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub zone: String,
    pub cpu_total: u32,
    pub memory_total: u32,
    pub cpu_used: u32,
    pub memory_used: u32,
    /// Live tasks on the node (for zone spread).
    pub tasks: u32,
    /// Only schedulable nodes take new tasks (not draining, heartbeat fresh).
    pub schedulable: bool,
    /// The Spot part of the totals, and what Spot tasks use of it (part
    /// of the totals' use).
    pub spot: SpotPool,
}

/// The part of a node's capacity offered as Fargate Spot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpotPool {
    pub cpu_total: u32,
    pub memory_total: u32,
    pub cpu_used: u32,
    pub memory_used: u32,
}

impl Node {
    /// CPU free for a demand of this kind: in the Spot part for Spot, in
    /// the rest for on-demand.
    fn cpu_free_for(&self, spot: bool) -> u32 {
        free_in_part(self.cpu_total, self.cpu_used, self.spot.cpu_total, self.spot.cpu_used, spot)
    }

    fn memory_free_for(&self, spot: bool) -> u32 {
        free_in_part(self.memory_total, self.memory_used, self.spot.memory_total, self.spot.memory_used, spot)
    }

    fn take(&mut self, demand: Demand) {
        self.cpu_used += demand.cpu;
        self.memory_used += demand.memory;
        if demand.spot {
            self.spot.cpu_used += demand.cpu;
            self.spot.memory_used += demand.memory;
        }
        self.tasks += 1;
    }
}

/// The nodes as the scheduler sees them at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
}

/// What is free of one resource in the Spot part (`spot`) or in the rest.
fn free_in_part(total: u32, used: u32, spot_total: u32, spot_used: u32, spot: bool) -> u32 {
    if spot {
        spot_total.saturating_sub(spot_used)
    } else {
        total.saturating_sub(spot_total).saturating_sub(used.saturating_sub(spot_used))
    }
}

/// What one task needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub cpu: u32,
    pub memory: u32,
    /// A FARGATE_SPOT task: placed in nodes' Spot part.
    pub spot: bool,
}

/// Why a task could not be placed, in ECS's failure reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortage {
    /// "RESOURCE:CPU": no schedulable node has the CPU.
    Cpu,
    /// "RESOURCE:MEMORY": CPU would fit somewhere, memory does not.
    Memory,
}

impl Shortage {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Cpu => "RESOURCE:CPU",
            Self::Memory => "RESOURCE:MEMORY",
        }
    }
}

/// One decision per demand, in the order given.
pub type Plan = Vec<Result<String, Shortage>>;

/// Places each demand on a node, against the capacity earlier demands of
/// the same call took. Deterministic for a given snapshot.
pub fn place(snapshot: &Snapshot, demands: &[Demand]) -> Plan {
    let mut nodes: Vec<Node> = snapshot.nodes.iter().filter(|n| n.schedulable).cloned().collect();
    demands.iter().map(|d| place_one(&mut nodes, *d)).collect()
}

fn place_one(nodes: &mut [Node], demand: Demand) -> Result<String, Shortage> {
    let mut zone_load: BTreeMap<&str, u32> = BTreeMap::new();
    for n in nodes.iter() {
        *zone_load.entry(n.zone.as_str()).or_default() += n.tasks;
    }
    let best = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| room(n, demand))
        // Least-loaded zone, then most free memory, then most free CPU, then id.
        .min_by(|(_, a), (_, b)| {
            let key = |n: &Node| {
                (std::cmp::Reverse(n.memory_free_for(demand.spot)), std::cmp::Reverse(n.cpu_free_for(demand.spot)))
            };
            (zone_load[a.zone.as_str()], key(a), &a.id).cmp(&(zone_load[b.zone.as_str()], key(b), &b.id))
        })
        .map(|(i, _)| i);
    match best {
        Some(i) => {
            let n = &mut nodes[i];
            n.take(demand);
            Ok(n.id.clone())
        }
        None if nodes.iter().any(|n| n.cpu_free_for(demand.spot) >= demand.cpu) => Err(Shortage::Memory),
        None => Err(Shortage::Cpu),
    }
}

fn room(node: &Node, demand: Demand) -> bool {
    node.cpu_free_for(demand.spot) >= demand.cpu && node.memory_free_for(demand.spot) >= demand.memory
}

/// The applier's re-check: does `demand` still fit on `node` as stored now?
pub fn fits(node: &Node, demand: Demand) -> bool {
    node.schedulable && room(node, demand)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, zone: &str, cpu: u32, mem: u32) -> Node {
        Node {
            id: id.into(),
            zone: zone.into(),
            cpu_total: cpu,
            memory_total: mem,
            cpu_used: 0,
            memory_used: 0,
            tasks: 0,
            schedulable: true,
            spot: SpotPool::default(),
        }
    }

    const SMALL: Demand = Demand { cpu: 256, memory: 512, spot: false };
    const SPOT: Demand = Demand { cpu: 256, memory: 512, spot: true };

    #[test]
    fn spot_tasks_stay_in_the_spot_part_and_on_demand_in_the_rest() {
        let mut n = node("a", "z1", 1024, 2048);
        n.spot = SpotPool { cpu_total: 512, memory_total: 1024, ..SpotPool::default() };
        let snap = Snapshot { nodes: vec![n.clone()] };
        let plan = place(&snap, &[SPOT; 3]);
        assert_eq!(plan.iter().filter(|p| p.is_ok()).count(), 2, "512 Spot units hold two: {plan:?}");
        assert_eq!(plan[2], Err(Shortage::Cpu));
        let plan = place(&snap, &[SMALL, SMALL, SMALL, SPOT, SPOT]);
        assert_eq!(plan[2], Err(Shortage::Cpu), "on-demand tasks keep out of the Spot part");
        assert!(plan[3].is_ok() && plan[4].is_ok());
        // A node with no Spot part takes no Spot task.
        assert_eq!(place(&Snapshot { nodes: vec![node("b", "z1", 4096, 8192)] }, &[SPOT]), vec![Err(Shortage::Cpu)]);
        // The applier's re-check counts Spot use apart.
        n.cpu_used = 512;
        n.memory_used = 1024;
        n.spot.cpu_used = 512;
        n.spot.memory_used = 1024;
        assert!(!fits(&n, SPOT));
        assert!(fits(&n, SMALL));
    }

    #[test]
    fn never_over_commits_within_one_call() {
        let snap = Snapshot { nodes: vec![node("a", "z1", 1024, 2048)] };
        let plan = place(&snap, &[SMALL; 6]);
        let placed = plan.iter().filter(|p| p.is_ok()).count();
        assert_eq!(placed, 4, "1024 CPU holds four 256-CPU tasks: {plan:?}");
        assert_eq!(plan[4], Err(Shortage::Cpu));
    }

    #[test]
    fn reasons_say_which_resource_is_short() {
        let snap = Snapshot { nodes: vec![node("a", "z1", 4096, 1024)] };
        assert_eq!(place(&snap, &[Demand { cpu: 512, memory: 2048, spot: false }]), vec![Err(Shortage::Memory)]);
        assert_eq!(place(&snap, &[Demand { cpu: 8192, memory: 512, spot: false }]), vec![Err(Shortage::Cpu)]);
        assert_eq!(Shortage::Cpu.reason(), "RESOURCE:CPU");
        assert_eq!(Shortage::Memory.reason(), "RESOURCE:MEMORY");
        assert_eq!(place(&Snapshot::default(), &[SMALL]), vec![Err(Shortage::Cpu)]);
    }

    #[test]
    fn spreads_over_zones_then_most_free_memory() {
        let snap = Snapshot {
            nodes: vec![node("a1", "z1", 4096, 8192), node("a2", "z1", 4096, 16384), node("b1", "z2", 4096, 4096)],
        };
        let plan: Vec<String> = place(&snap, &[SMALL; 4]).into_iter().map(Result::unwrap).collect();
        // z1 and z2 alternate; inside z1 the node with more free memory wins.
        assert_eq!(plan, vec!["a2", "b1", "a2", "b1"]);
    }

    #[test]
    fn unschedulable_nodes_take_nothing() {
        let mut draining = node("d", "z1", 4096, 8192);
        draining.schedulable = false;
        let snap = Snapshot { nodes: vec![draining.clone()] };
        assert_eq!(place(&snap, &[SMALL]), vec![Err(Shortage::Cpu)]);
        assert!(!fits(&draining, SMALL));
    }

    #[test]
    fn is_pure() {
        let snap = Snapshot { nodes: vec![node("a", "z1", 1024, 2048)] };
        let before = snap.clone();
        let first = place(&snap, &[SMALL; 3]);
        assert_eq!(snap, before, "the snapshot is not changed");
        assert_eq!(place(&snap, &[SMALL; 3]), first, "same snapshot, same plan");
    }
}
