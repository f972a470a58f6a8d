//! The replay matrix: the cross product of the timing, proxy, cache and
//! network-fault axes, in a stable order (timing slowest, network fault
//! fastest), each cell run `--runs` times.

use std::fmt;

/// A timing condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timing {
    None,
    Slow,
    Jitter,
    Cpu1,
    Load,
    Trace,
    /// Threads moved between random CPU sets and starved in short windows.
    Chaos,
    /// Co-located CPU, memory and fsync stress at a random intensity.
    Noise,
    /// The run in a cgroup whose `cpu.max` allows this percentage of one CPU.
    Quota(u16),
    /// Random short sleeps at thread start, locks, condition variables,
    /// semaphores and joins, injected with `LD_PRELOAD`; sibling threads
    /// held to start together.
    Delay,
}

/// `quota` without a percentage: half a CPU.
pub const DEFAULT_QUOTA: u16 = 50;
/// The highest `quota:PCT`: ten CPUs' worth.
pub const MAX_QUOTA: u16 = 1000;

impl Timing {
    pub const ALL: [Self; 10] = [
        Self::None,
        Self::Slow,
        Self::Jitter,
        Self::Cpu1,
        Self::Load,
        Self::Trace,
        Self::Chaos,
        Self::Noise,
        Self::Quota(DEFAULT_QUOTA),
        Self::Delay,
    ];

    /// A `--timing` value: one of [`Self::ALL`]'s names, or `quota:PCT`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(pct) = text.strip_prefix("quota:") {
            return match pct.parse::<u16>() {
                Ok(p) if (1..=MAX_QUOTA).contains(&p) => Some(Self::Quota(p)),
                _ => None,
            };
        }
        Self::ALL.into_iter().find(|t| t.to_string() == text)
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Slow => "slow",
            Self::Jitter => "jitter",
            Self::Cpu1 => "cpu1",
            Self::Load => "load",
            Self::Trace => "trace",
            Self::Chaos => "chaos",
            Self::Noise => "noise",
            Self::Delay => "delay",
            Self::Quota(DEFAULT_QUOTA) => "quota",
            Self::Quota(pct) => return write!(f, "quota:{pct}"),
        })
    }
}

/// A cache condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cache {
    /// A fresh proxy cache and home per run.
    Cold,
    /// The cell keeps its proxy cache and home across its runs.
    Warm,
}

impl Cache {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "cold" => Some(Self::Cold),
            "warm" => Some(Self::Warm),
            _ => None,
        }
    }
}

impl fmt::Display for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cold => "cold",
            Self::Warm => "warm",
        })
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub timing: Timing,
    /// `none`, or a proxy mode as `--proxy` spells it.
    pub proxy: String,
    pub cache: Cache,
    /// `none`, or a network fault as `--net-fault` spells it.
    pub net_fault: String,
}

/// The cells for the given axis values, in a stable order; empty lists mean
/// the defaults (`none`, `none`, `cold`, `none`). Duplicates are dropped.
pub fn cells(
    timing: &[Timing],
    proxy: &[String],
    cache: &[Cache],
    net_fault: &[String],
) -> Vec<Cell> {
    let timing: Vec<Timing> = if timing.is_empty() {
        vec![Timing::None]
    } else {
        dedup(timing)
    };
    let proxy: Vec<String> = if proxy.is_empty() {
        vec!["none".to_owned()]
    } else {
        dedup(proxy)
    };
    let cache: Vec<Cache> = if cache.is_empty() {
        vec![Cache::Cold]
    } else {
        dedup(cache)
    };
    let net_fault: Vec<String> = if net_fault.is_empty() {
        vec!["none".to_owned()]
    } else {
        dedup(net_fault)
    };
    let mut out = Vec::with_capacity(timing.len() * proxy.len() * cache.len() * net_fault.len());
    for t in &timing {
        for p in &proxy {
            for c in &cache {
                for n in &net_fault {
                    out.push(Cell {
                        timing: *t,
                        proxy: p.clone(),
                        cache: *c,
                        net_fault: n.clone(),
                    });
                }
            }
        }
    }
    out
}

fn dedup<T: Clone + PartialEq>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_axes_is_one_default_cell() {
        let c = cells(&[], &[], &[], &[]);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (
                c[0].timing,
                c[0].proxy.as_str(),
                c[0].cache,
                c[0].net_fault.as_str()
            ),
            (Timing::None, "none", Cache::Cold, "none")
        );
    }

    #[test]
    fn cross_product_in_a_stable_order() {
        let c = cells(
            &[Timing::None, Timing::Slow, Timing::None],
            &["none".into(), "cache".into()],
            &[Cache::Cold, Cache::Warm],
            &["none".into(), "reset:10".into()],
        );
        assert_eq!(c.len(), 16);
        assert_eq!(c[1].net_fault, "reset:10");
        assert_eq!(c[2].cache, Cache::Warm);
        assert_eq!(c[4].proxy, "cache");
        assert_eq!(c[8].timing, Timing::Slow);
        assert_eq!(Timing::parse("cpu1"), Some(Timing::Cpu1));
        assert_eq!(Timing::parse("fast"), None);
    }
}
