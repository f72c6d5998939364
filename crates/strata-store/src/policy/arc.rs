//! PLACEHOLDER: to be implemented.

use super::list::{Links, List};
use super::{EvictionPolicy, PolicyKind, Slot, SlotInfo};

#[derive(Debug, Default)]
pub(crate) struct Arc {
    links: Links,
    list: List,
}

impl EvictionPolicy for Arc {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Arc
    }
    fn set_capacity(&mut self, _capacity: u64) {}
    fn on_miss(&mut self, _hash: u64) {}
    fn on_hit(&mut self, slot: Slot, _hash: u64, _info: &dyn SlotInfo) {
        self.links.move_to_head(&mut self.list, slot);
    }
    fn on_insert(&mut self, slot: Slot, _hash: u64, _weight: u32, _info: &dyn SlotInfo) {
        self.links.push_head(&mut self.list, slot, 0);
    }
    fn on_update(&mut self, slot: Slot, _hash: u64, _old: u32, _new: u32, _info: &dyn SlotInfo) {
        self.links.move_to_head(&mut self.list, slot);
    }
    fn on_remove(&mut self, slot: Slot, _hash: u64, _weight: u32) {
        self.links.unlink(&mut self.list, slot, 0);
    }
    fn evict(&mut self, _info: &dyn SlotInfo) -> Option<Slot> {
        let victim = self.list.tail()?;
        self.links.unlink(&mut self.list, victim, 0);
        Some(victim)
    }
    fn clear(&mut self) {
        self.links.clear();
        self.list = List::default();
    }
    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes()
    }
}
