//! Reading the per-CPU verdict counters, summed over CPUs.

use aya::maps::{MapData, MapError, PerCpuArray};
use rampart_common::stats::EVENTS_LOST_SLOT;
use rampart_common::{Counter, Reason};

pub struct StatsMap(pub(super) PerCpuArray<MapData, Counter>);

impl StatsMap {
    /// Totals per reason, in `Reason::ALL` order.
    pub fn totals(&self) -> Result<Vec<(Reason, Counter)>, MapError> {
        Reason::ALL
            .iter()
            .map(|&reason| Ok((reason, self.sum(reason as u32)?)))
            .collect()
    }

    /// Drop events the ring buffer had no room for.
    pub fn events_lost(&self) -> Result<u64, MapError> {
        Ok(self.sum(EVENTS_LOST_SLOT)?.packets)
    }

    fn sum(&self, slot: u32) -> Result<Counter, MapError> {
        let per_cpu = self.0.get(&slot, 0)?;
        Ok(per_cpu.iter().fold(Counter::default(), |acc, c| Counter {
            packets: acc.packets.wrapping_add(c.packets),
            bytes: acc.bytes.wrapping_add(c.bytes),
        }))
    }
}
