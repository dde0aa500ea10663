//! Fargate's two capacity providers and capacity provider strategies:
//! ECS's validation rules and how a strategy splits tasks between
//! providers. Pure rules, no I/O.
//!
//! ECS documents the split: the provider with a `base` runs that many
//! tasks first; every task beyond the bases goes by `weight` (for weights
//! 1 and 4, one task on the first provider for every four on the second).
//! [`assign`] keeps a running set of tasks as close to that ratio as whole
//! tasks allow, so a service that replaces an interrupted Spot task
//! replaces it on Spot again.

use crate::ModelError;
use crate::service::CapacityProviderItem;

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

/// The providers every cluster can use, as ECS names them.
pub const PROVIDERS: [&str; 2] = [FARGATE, FARGATE_SPOT];

/// ECS's limits on a strategy item.
pub const MAX_BASE: u32 = 100_000;
pub const MAX_WEIGHT: u32 = 1_000;
/// A strategy holds at most this many providers (ECS: 20; only two exist here).
pub const MAX_ITEMS: usize = 20;

/// The reason Fargate gives when it interrupts a Spot task.
pub const SPOT_INTERRUPTED_REASON: &str = "Your Spot Task was interrupted.";

/// Whether `name` is one of Fargate's providers.
pub fn is_provider(name: &str) -> bool {
    PROVIDERS.contains(&name)
}

/// Whether tasks recorded with this provider run on Spot capacity.
pub fn is_spot(provider: Option<&str>) -> bool {
    provider == Some(FARGATE_SPOT)
}

/// Checks a strategy as ECS does: known providers associated with the
/// cluster (`associated`; every provider when `None`), no provider twice,
/// base and weight in range, a base on at most one provider, and some
/// weight above zero.
pub fn validate_strategy(items: &[CapacityProviderItem], associated: Option<&[String]>) -> Result<(), ModelError> {
    if items.len() > MAX_ITEMS {
        return Err(ModelError::invalid(format!(
            "A capacity provider strategy can contain at most {MAX_ITEMS} capacity providers; {} were given.",
            items.len()
        )));
    }
    for (i, item) in items.iter().enumerate() {
        let name = item.capacity_provider.as_str();
        if !is_provider(name) {
            return Err(ModelError::invalid(format!(
                "The specified capacity provider {name} was not found. The Fargate capacity providers are FARGATE and FARGATE_SPOT."
            )));
        }
        if associated.is_some_and(|a| !a.iter().any(|p| p == name)) {
            return Err(ModelError::invalid(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster ({name}). Associate the capacity provider with the cluster or specify a valid capacity provider and try again."
            )));
        }
        if items[..i].iter().any(|o| o.capacity_provider == name) {
            return Err(ModelError::invalid(format!(
                "The capacity provider strategy cannot contain duplicate capacity providers ({name})."
            )));
        }
        if item.weight > MAX_WEIGHT {
            return Err(ModelError::invalid(format!(
                "The weight of capacity provider {name} must be between 0 and {MAX_WEIGHT}; {} was given.",
                item.weight
            )));
        }
        if item.base > MAX_BASE {
            return Err(ModelError::invalid(format!(
                "The base of capacity provider {name} must be between 0 and {MAX_BASE}; {} was given.",
                item.base
            )));
        }
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(ModelError::invalid(
            "Only one capacity provider in a capacity provider strategy can have a base value greater than 0.",
        ));
    }
    if !items.is_empty() && items.iter().all(|i| i.weight == 0) {
        return Err(ModelError::invalid(
            "At least one capacity provider in a capacity provider strategy must have a weight greater than zero.",
        ));
    }
    Ok(())
}

/// Checks PutClusterCapacityProviders' request: known providers, each
/// once, and a default strategy of associated providers.
pub fn validate_cluster_providers(providers: &[String], default: &[CapacityProviderItem]) -> Result<(), ModelError> {
    for (i, p) in providers.iter().enumerate() {
        if !is_provider(p) {
            return Err(ModelError::invalid(format!(
                "The specified capacity provider {p} does not exist. The Fargate capacity providers are FARGATE and FARGATE_SPOT."
            )));
        }
        if providers[..i].contains(p) {
            return Err(ModelError::invalid(format!("The capacity provider {p} is given more than once.")));
        }
    }
    validate_strategy(default, Some(providers))
}

/// Which strategy item each of `count` new tasks goes to (indices into
/// `strategy`), given how many live tasks each item's provider already
/// runs (`running`, one count per item). Bases are filled first; past
/// them, each task goes where it keeps the tasks beyond the bases closest
/// to the weights (the item whose `(beyond + 1) / weight` is smallest;
/// ties to the larger weight, then to the earlier item). Items of weight
/// 0 take only their base. An empty strategy assigns nothing.
pub fn assign(strategy: &[CapacityProviderItem], running: &[u32], count: u32) -> Vec<usize> {
    let mut have: Vec<u32> = (0..strategy.len()).map(|i| running.get(i).copied().unwrap_or(0)).collect();
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let short_of_base = strategy.iter().enumerate().find(|(i, item)| have[*i] < item.base).map(|(i, _)| i);
        let pick = short_of_base.or_else(|| {
            strategy
                .iter()
                .enumerate()
                .filter(|(_, item)| item.weight > 0)
                .min_by(|(a, ia), (b, ib)| {
                    let beyond = |i: usize, item: &CapacityProviderItem| u64::from(have[i].saturating_sub(item.base)) + 1;
                    // (beyond_a / w_a) vs (beyond_b / w_b), cross-multiplied.
                    let left = beyond(*a, ia) * u64::from(ib.weight);
                    let right = beyond(*b, ib) * u64::from(ia.weight);
                    left.cmp(&right).then(ib.weight.cmp(&ia.weight)).then(a.cmp(b))
                })
                .map(|(i, _)| i)
        });
        let Some(i) = pick else { break };
        have[i] += 1;
        out.push(i);
    }
    out
}

/// [`assign`] counted per item: how many of `count` new tasks each takes.
pub fn split(strategy: &[CapacityProviderItem], running: &[u32], count: u32) -> Vec<u32> {
    let mut counts = vec![0; strategy.len()];
    for i in assign(strategy, running, count) {
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, base: u32, weight: u32) -> CapacityProviderItem {
        CapacityProviderItem { capacity_provider: name.into(), base, weight }
    }

    #[test]
    fn base_first_then_the_rest_by_weight() {
        // The service: FARGATE base 1, FARGATE_SPOT weight 3; 4 tasks.
        let s = [item(FARGATE, 1, 0), item(FARGATE_SPOT, 0, 3)];
        assert_eq!(split(&s, &[0, 0], 4), [1, 3]);
        // With a weight on FARGATE too, three beyond the base still go 0:3
        // (the nearest whole split of 3 by 1:3 is 0.75:2.25).
        let s = [item(FARGATE, 1, 1), item(FARGATE_SPOT, 0, 3)];
        assert_eq!(split(&s, &[0, 0], 4), [1, 3]);
        assert_eq!(split(&s, &[0, 0], 9), [3, 6], "base 1, then 8 split 2:6");
    }

    #[test]
    fn ecs_documented_examples() {
        // ECS: "capacityProviderA weight 1, capacityProviderB weight 4:
        // for every one task run on A, four tasks use B."
        let s = [item(FARGATE, 0, 1), item(FARGATE_SPOT, 0, 4)];
        assert_eq!(split(&s, &[0, 0], 5), [1, 4]);
        assert_eq!(split(&s, &[0, 0], 10), [2, 8]);
        // A base of 2 on FARGATE, weight 1 on both: two base tasks, then
        // alternately (ties go to the earlier item).
        let s = [item(FARGATE, 2, 1), item(FARGATE_SPOT, 0, 1)];
        assert_eq!(assign(&s, &[0, 0], 6), [0, 0, 0, 1, 0, 1]);
        assert_eq!(split(&s, &[0, 0], 6), [4, 2]);
        // Only Spot, by weight alone.
        assert_eq!(split(&[item(FARGATE_SPOT, 0, 1)], &[0], 3), [3]);
    }

    #[test]
    fn replacements_restore_the_ratio() {
        let s = [item(FARGATE, 1, 0), item(FARGATE_SPOT, 0, 3)];
        // One Spot task was interrupted: its replacement goes on Spot.
        assert_eq!(assign(&s, &[1, 2], 1), [1]);
        // The base task went: it comes back on FARGATE.
        assert_eq!(assign(&s, &[0, 3], 1), [0]);
    }

    #[test]
    fn weight_zero_takes_only_its_base_and_empty_assigns_nothing() {
        let s = [item(FARGATE, 2, 0), item(FARGATE_SPOT, 0, 1)];
        assert_eq!(split(&s, &[0, 0], 5), [2, 3]);
        assert!(assign(&[], &[], 3).is_empty());
        // A strategy whose only item has weight 0 takes its base and stops.
        assert_eq!(assign(&[item(FARGATE, 1, 0)], &[0], 3), [0]);
    }

    #[test]
    fn validation_follows_ecs() {
        let ok = [item(FARGATE, 1, 1), item(FARGATE_SPOT, 0, 3)];
        assert!(validate_strategy(&ok, None).is_ok());
        let two_bases = [item(FARGATE, 1, 1), item(FARGATE_SPOT, 1, 3)];
        assert!(validate_strategy(&two_bases, None).unwrap_err().to_string().contains("base"));
        let no_weight = [item(FARGATE, 1, 0)];
        assert!(validate_strategy(&no_weight, None).unwrap_err().to_string().contains("weight greater than zero"));
        let unknown = [item("EC2_ASG", 0, 1)];
        assert_eq!(validate_strategy(&unknown, None).unwrap_err().aws_type(), "InvalidParameterException");
        let twice = [item(FARGATE, 0, 1), item(FARGATE, 0, 1)];
        assert!(validate_strategy(&twice, None).unwrap_err().to_string().contains("duplicate"));
        let heavy = [item(FARGATE, 0, 1001)];
        assert!(validate_strategy(&heavy, None).is_err());
        let only_fargate = vec![FARGATE.to_owned()];
        let err = validate_strategy(&[item(FARGATE_SPOT, 0, 1)], Some(&only_fargate)).unwrap_err();
        assert!(err.to_string().contains("not associated with the cluster"), "{err}");
        assert!(validate_cluster_providers(&["FARGATE".into(), "FARGATE".into()], &[]).is_err());
        assert!(validate_cluster_providers(&["FARGATE".into()], &[item(FARGATE, 0, 1)]).is_ok());
    }
}
