//! Reading the per-CPU verdict counters, summed over CPUs.

use aya::maps::{MapData, MapError, PerCpuArray};
use rampart_common::{Counter, Reason};

pub struct StatsMap(pub(super) PerCpuArray<MapData, Counter>);

impl StatsMap {
    /// Totals per reason, in `Reason::ALL` order.
    pub fn totals(&self) -> Result<Vec<(Reason, Counter)>, MapError> {
        Reason::ALL
            .iter()
            .map(|&reason| {
                let per_cpu = self.0.get(&(reason as u32), 0)?;
                let sum = per_cpu.iter().fold(Counter::default(), |acc, c| Counter {
                    packets: acc.packets.wrapping_add(c.packets),
                    bytes: acc.bytes.wrapping_add(c.bytes),
                });
                Ok((reason, sum))
            })
            .collect()
    }
}
