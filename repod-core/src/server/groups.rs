//! Named groups of channels (rooms), kept by the dispatch loop.
//!
//! Members are the slot indexes of the hub, so a group send pushes straight into each member's
//! outbox without looking ids up. Every group keeps its members in a vector (for sending) and a
//! map from slot to position in that vector (for O(1) joins and leaves, with `swap_remove`).
//! Each slot also keeps the names of its groups, so a closing channel leaves all of them in time
//! proportional to how many it is in. A group exists only while it has members.

use std::collections::HashMap;
use std::sync::Arc;

struct Group {
    members: Vec<usize>,
    position: HashMap<usize, usize>,
}

/// Group name → members, and slot → group names.
#[derive(Default)]
pub(crate) struct Groups {
    by_name: HashMap<Arc<str>, Group>,
    /// The groups of each slot, in the order they were joined.
    of_slot: Vec<Vec<Arc<str>>>,
}

impl Groups {
    /// Adds `slot` to the group `name`, creating the group if needed. Returns `false` if the
    /// slot was already a member.
    pub(crate) fn join(&mut self, slot: usize, name: &str) -> bool {
        if self.of_slot.len() <= slot {
            self.of_slot.resize_with(slot + 1, Vec::new);
        }
        let key = match self.by_name.get_key_value(name) {
            Some((_, group)) if group.position.contains_key(&slot) => return false,
            Some((key, _)) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(name);
                self.by_name.insert(
                    key.clone(),
                    Group {
                        members: Vec::new(),
                        position: HashMap::new(),
                    },
                );
                key
            }
        };
        let group = self
            .by_name
            .get_mut(name)
            .expect("the group was found or inserted above");
        group.position.insert(slot, group.members.len());
        group.members.push(slot);
        self.of_slot[slot].push(key);
        true
    }

    /// Removes `slot` from the group `name`, dropping the group when it empties. Returns
    /// `false` if the slot was not a member.
    pub(crate) fn leave(&mut self, slot: usize, name: &str) -> bool {
        if !self.remove_member(slot, name) {
            return false;
        }
        if let Some(names) = self.of_slot.get_mut(slot) {
            if let Some(i) = names.iter().position(|n| **n == *name) {
                names.remove(i);
            }
        }
        true
    }

    /// Removes `slot` from every group it is in; returns how many.
    pub(crate) fn leave_all(&mut self, slot: usize) -> usize {
        let Some(names) = self.of_slot.get_mut(slot) else {
            return 0;
        };
        let names = std::mem::take(names);
        for name in &names {
            self.remove_member(slot, name);
        }
        names.len()
    }

    fn remove_member(&mut self, slot: usize, name: &str) -> bool {
        let Some(group) = self.by_name.get_mut(name) else {
            return false;
        };
        let Some(i) = group.position.remove(&slot) else {
            return false;
        };
        group.members.swap_remove(i);
        if let Some(&moved) = group.members.get(i) {
            group.position.insert(moved, i);
        }
        if group.members.is_empty() {
            self.by_name.remove(name);
        }
        true
    }

    /// The member slots of a group, in no particular order; empty for an unknown group.
    pub(crate) fn members(&self, name: &str) -> &[usize] {
        self.by_name
            .get(name)
            .map_or(&[][..], |group| &group.members[..])
    }

    /// Whether `slot` is in the group `name`.
    pub(crate) fn contains(&self, slot: usize, name: &str) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|group| group.position.contains_key(&slot))
    }

    /// The groups of `slot`, in the order joined.
    pub(crate) fn of_slot(&self, slot: usize) -> impl Iterator<Item = &str> + '_ {
        self.of_slot
            .get(slot)
            .into_iter()
            .flatten()
            .map(|name| &**name)
    }

    /// How many groups exist (have members).
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Every group and its size, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.by_name
            .iter()
            .map(|(name, group)| (&**name, group.members.len()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    /// Checks every internal index against a plain model.
    fn check(groups: &Groups, model: &BTreeMap<String, BTreeSet<usize>>) {
        assert_eq!(groups.len(), model.len());
        for (name, members) in model {
            let got: BTreeSet<usize> = groups.members(name).iter().copied().collect();
            assert_eq!(&got, members, "members of {name}");
            assert_eq!(
                groups.members(name).len(),
                members.len(),
                "duplicates in {name}"
            );
            let group = &groups.by_name[name.as_str()];
            for (i, slot) in group.members.iter().enumerate() {
                assert_eq!(group.position[slot], i);
            }
            assert_eq!(group.position.len(), group.members.len());
            for &slot in members {
                assert!(groups.contains(slot, name));
                assert!(groups.of_slot(slot).any(|n| n == name));
            }
        }
        for (slot, names) in groups.of_slot.iter().enumerate() {
            let got: BTreeSet<&str> = names.iter().map(|n| &**n).collect();
            assert_eq!(got.len(), names.len(), "slot {slot} lists a group twice");
            let want: BTreeSet<&str> = model
                .iter()
                .filter(|(_, m)| m.contains(&slot))
                .map(|(n, _)| n.as_str())
                .collect();
            assert_eq!(got, want, "groups of slot {slot}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join(usize, u8),
        Leave(usize, u8),
        LeaveAll(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..12usize, 0..5u8).prop_map(|(s, g)| Op::Join(s, g)),
            3 => (0..12usize, 0..5u8).prop_map(|(s, g)| Op::Leave(s, g)),
            1 => (0..12usize).prop_map(Op::LeaveAll),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_plain_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut groups = Groups::default();
            let mut model: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Join(slot, g) => {
                        let name = format!("g{g}");
                        let fresh = model.entry(name.clone()).or_default().insert(slot);
                        prop_assert_eq!(groups.join(slot, &name), fresh);
                    }
                    Op::Leave(slot, g) => {
                        let name = format!("g{g}");
                        let was = model.get_mut(&name).is_some_and(|m| m.remove(&slot));
                        if model.get(&name).is_some_and(BTreeSet::is_empty) {
                            model.remove(&name);
                        }
                        prop_assert_eq!(groups.leave(slot, &name), was);
                    }
                    Op::LeaveAll(slot) => {
                        let mut n = 0;
                        for members in model.values_mut() {
                            n += usize::from(members.remove(&slot));
                        }
                        model.retain(|_, m| !m.is_empty());
                        prop_assert_eq!(groups.leave_all(slot), n);
                    }
                }
                check(&groups, &model);
            }
        }
    }

    #[test]
    fn empty_groups_disappear() {
        let mut groups = Groups::default();
        assert!(groups.join(3, "a"));
        assert!(!groups.join(3, "a"));
        assert!(groups.join(1, "a"));
        assert_eq!(groups.iter().collect::<Vec<_>>(), [("a", 2)]);
        assert!(groups.leave(3, "a"));
        assert!(!groups.leave(3, "a"));
        assert_eq!(groups.members("a"), [1]);
        assert!(groups.leave(1, "a"));
        assert_eq!(groups.len(), 0);
        assert!(groups.members("a").is_empty());
        assert!(!groups.leave(7, "never"));
        assert_eq!(groups.leave_all(99), 0);
    }
}
