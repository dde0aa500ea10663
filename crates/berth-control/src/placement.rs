//! Placing new tasks: plan on a snapshot with the pure scheduler, commit
//! each placement through an applier that re-checks the node's capacity
//! in the same transaction, and re-plan on a fresh snapshot when a node
//! filled up (or went) meanwhile. RunTask uses it today; services,
//! schedules and Spot replacements will.
//!
//! The store is behind [`PlacementTarget`], so this does no I/O itself.

use std::future::Future;

use berth_model::task::Task;

use crate::scheduler::{self, Demand, Shortage, Snapshot};

/// How often one task is re-planned after its placement lost a race.
pub const ATTEMPTS: usize = 3;

/// What the applier did with one placement.
#[derive(Debug, Clone, PartialEq)]
pub enum Commit<P> {
    /// Stored on the node.
    Placed(P),
    /// The node no longer has room (or no longer exists): plan again.
    NoRoom,
}

/// Where placements are read from and committed to (the store).
pub trait PlacementTarget: Sync {
    /// What a committed task comes back as (e.g. the stored record).
    type Placed: Send;
    type Error: Send;

    /// The nodes now, with what their live tasks reserve.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, Self::Error>> + Send;

    /// Stores `task` on `node_id` if `demand` still fits there, checked in
    /// the same transaction that stores it.
    fn commit(
        &self,
        task: &Task,
        node_id: &str,
        demand: Demand,
    ) -> impl Future<Output = Result<Commit<Self::Placed>, Self::Error>> + Send;
}

/// Places `tasks`, in order, each on a node of the snapshot with room for
/// it (its node and zone set), or reports why none has. A task that is
/// not placed is not stored.
pub async fn apply<T: PlacementTarget>(
    target: &T,
    tasks: Vec<Task>,
) -> Result<Vec<Result<T::Placed, Shortage>>, T::Error> {
    let snapshot = target.snapshot().await?;
    let demands: Vec<Demand> = tasks.iter().map(demand).collect();
    let plan = scheduler::place(&snapshot, &demands);
    let mut out = Vec::with_capacity(tasks.len());
    for (task, decision) in tasks.into_iter().zip(plan) {
        out.push(commit(target, task, decision, &snapshot).await?);
    }
    Ok(out)
}

/// What a task reserves on its node.
pub fn demand(task: &Task) -> Demand {
    Demand {
        cpu: task.size.cpu,
        memory: task.size.memory,
        spot: berth_model::capacity::is_spot(task.capacity_provider.as_deref()),
    }
}

async fn commit<T: PlacementTarget>(
    target: &T,
    mut task: Task,
    mut decision: Result<String, Shortage>,
    first: &Snapshot,
) -> Result<Result<T::Placed, Shortage>, T::Error> {
    let demand = demand(&task);
    let mut snapshot = None;
    for _ in 0..ATTEMPTS {
        let node_id = match decision {
            Ok(node_id) => node_id,
            Err(shortage) => return Ok(Err(shortage)),
        };
        let nodes = snapshot.as_ref().unwrap_or(first);
        task.availability_zone = nodes.nodes.iter().find(|n| n.id == node_id).map(|n| n.zone.clone());
        if let Commit::Placed(placed) = target.commit(&task, &node_id, demand).await? {
            return Ok(Ok(placed));
        }
        // The node filled up or went away since the snapshot: plan again.
        let fresh = target.snapshot().await?;
        decision = scheduler::place(&fresh, &[demand]).remove(0);
        snapshot = Some(fresh);
    }
    Ok(Err(decision.err().unwrap_or(Shortage::Cpu)))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use berth_model::task::{NewTask, build};
    use berth_model::testing;

    use super::*;
    use crate::scheduler::Node;

    /// Nodes in memory; `steal` takes capacity away right before the next
    /// commit, as a concurrent RunTask would.
    struct Nodes {
        nodes: Mutex<Vec<Node>>,
        steal: Mutex<Option<(String, u32)>>,
        commits: Mutex<Vec<String>>,
    }

    impl PlacementTarget for Nodes {
        type Placed = (String, Option<String>);
        type Error = ();

        async fn snapshot(&self) -> Result<Snapshot, ()> {
            Ok(Snapshot { nodes: self.nodes.lock().unwrap().clone() })
        }

        async fn commit(&self, task: &Task, node_id: &str, d: Demand) -> Result<Commit<Self::Placed>, ()> {
            let mut nodes = self.nodes.lock().unwrap();
            if let Some((id, cpu)) = self.steal.lock().unwrap().take() {
                nodes.iter_mut().filter(|n| n.id == id).for_each(|n| n.cpu_used += cpu);
            }
            self.commits.lock().unwrap().push(node_id.to_owned());
            let Some(n) = nodes.iter_mut().find(|n| n.id == node_id) else { return Ok(Commit::NoRoom) };
            if !scheduler::fits(n, d) {
                return Ok(Commit::NoRoom);
            }
            n.cpu_used += d.cpu;
            n.memory_used += d.memory;
            n.tasks += 1;
            Ok(Commit::Placed((node_id.to_owned(), task.availability_zone.clone())))
        }
    }

    fn node(id: &str, zone: &str, cpu: u32) -> Node {
        Node {
            id: id.into(),
            zone: zone.into(),
            cpu_total: cpu,
            memory_total: 8192,
            cpu_used: 0,
            memory_used: 0,
            tasks: 0,
            schedulable: true,
            spot: scheduler::SpotPool::default(),
        }
    }

    fn tasks(n: usize) -> Vec<Task> {
        let acct = testing::account();
        let def = testing::definition(&acct, "web", &["c"]);
        (0..n)
            .map(|i| {
                let id = format!("{i:032x}");
                build(NewTask::plain(&acct, "default", &id, &def, 0.0)).unwrap()
            })
            .collect()
    }

    fn target(nodes: Vec<Node>) -> Nodes {
        Nodes { nodes: Mutex::new(nodes), steal: Mutex::new(None), commits: Mutex::default() }
    }

    #[tokio::test]
    async fn places_what_fits_and_reports_the_rest() {
        let t = target(vec![node("a", "z1", 512)]);
        let out = apply(&t, tasks(3)).await.unwrap();
        assert_eq!(out[0], Ok(("a".into(), Some("z1".into()))), "the task carries its node's zone");
        assert!(out[1].is_ok());
        assert_eq!(out[2], Err(Shortage::Cpu));
        assert_eq!(t.commits.lock().unwrap().len(), 2, "a task the plan cannot place is never committed");
    }

    #[tokio::test]
    async fn a_lost_race_is_planned_again_on_a_fresh_snapshot() {
        let t = target(vec![node("a", "z1", 1024), node("b", "z2", 256)]);
        // Someone fills node a between the snapshot and the commit.
        *t.steal.lock().unwrap() = Some(("a".into(), 1024));
        let out = apply(&t, tasks(1)).await.unwrap();
        assert_eq!(out[0], Ok(("b".into(), Some("z2".into()))));
        assert_eq!(*t.commits.lock().unwrap(), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_node_that_went_away_leaves_a_shortage_not_an_error() {
        let t = target(vec![node("a", "z1", 1024)]);
        *t.steal.lock().unwrap() = Some(("a".into(), 1024));
        let out = apply(&t, tasks(1)).await.unwrap();
        assert_eq!(out[0], Err(Shortage::Cpu));
        assert_eq!(t.commits.lock().unwrap().len(), 1, "re-planned once, nothing left to try");
    }
}
