//! `--budget DUR|N`: keep running the matrix until the budget is spent,
//! spreading the runs over the cells by how likely each is to reproduce.
//!
//! Every cell first gets [`WARM_UP`] runs, in turn. After that each new run
//! goes to the cell whose draw from its Beta(k + 1, n − k + 1) posterior
//! (k reproductions in n finished runs) is highest: Thompson sampling. A
//! cell that reproduced once in a few runs is then tried far more often
//! than the nineteen that never did, while each of those keeps a chance in
//! proportion to how little is known of it. Draws come from the replay's
//! seed, so the same results give the same spread.

use std::time::{Duration, Instant};

/// The timing values this machine can give (those [`super::axes::prepare`]
/// accepts): the default `--timing` of a budget.
pub fn usable_timings() -> Vec<super::matrix::Timing> {
    super::matrix::Timing::ALL
        .into_iter()
        .filter(|&timing| {
            let cell = super::matrix::Cell {
                timing,
                proxy: "none".to_owned(),
                cache: super::matrix::Cache::Cold,
                net_fault: "none".to_owned(),
            };
            super::axes::prepare(&cell).is_ok()
        })
        .collect()
}

/// Reproducing runs of a budget that keep their output and diagnostics; the
/// later ones keep their outcome and reason only, so that a hunt of
/// thousands of runs stays a report one can read.
pub const KEPT_IN_FULL: u32 = 5;

/// Runs every cell gets before the allocation turns adaptive.
pub const WARM_UP: u32 = 3;

/// How much a replay may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At most this many runs (a whole number: `--budget 500`).
    Runs(u64),
    /// Start no run after this long (`--budget 10m`).
    Time(Duration),
}

impl Budget {
    /// `500` (runs) or a duration such as `90s`, `10m`, `1h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || {
            format!("--budget {text:?}: give a number of runs (500) or a duration (90s, 10m, 1h)")
        };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u64>() {
                Ok(0) | Err(_) => Err(bad()),
                Ok(n) => Ok(Self::Runs(n)),
            };
        }
        match crate::scenario::parse_duration("--budget", text) {
            Ok(d) if !d.is_zero() => Ok(Self::Time(d)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Runs(1) => f.write_str("1 run"),
            Self::Runs(n) => write!(f, "{n} runs"),
            Self::Time(d) => f.write_str(&humantime::format_duration(*d).to_string()),
        }
    }
}

/// What a cell has had so far.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// Runs handed out (the next run's index).
    started: u32,
    /// Runs whose result is in.
    finished: u32,
    reproduced: u32,
}

/// Hands out the budget's runs, one at a time, to the cells.
#[derive(Debug)]
pub struct Allocator {
    budget: Budget,
    started_at: Instant,
    handed_out: u64,
    cells: Vec<Tally>,
    rng: fastrand::Rng,
}

impl Allocator {
    pub fn new(budget: Budget, cells: usize, seed: u64) -> Self {
        Self {
            budget,
            started_at: Instant::now(),
            handed_out: 0,
            cells: vec![Tally::default(); cells],
            rng: fastrand::Rng::with_seed(seed ^ 0x6275_6467_6574),
        }
    }

    /// The next run, as (cell, index), or `None` once the budget is spent.
    pub fn next_run(&mut self) -> Option<(usize, u32)> {
        let spent = match self.budget {
            Budget::Runs(n) => self.handed_out >= n,
            Budget::Time(d) => self.started_at.elapsed() >= d,
        };
        if spent || self.cells.is_empty() {
            return None;
        }
        let cell = self.pick();
        let tally = &mut self.cells[cell];
        let index = tally.started;
        tally.started = tally.started.saturating_add(1);
        self.handed_out += 1;
        Some((cell, index))
    }

    /// A run's result is in: `reproduced` or not (an error counts as not:
    /// a cell that cannot run here should not draw the budget).
    pub fn finished(&mut self, cell: usize, reproduced: bool) {
        if let Some(t) = self.cells.get_mut(cell) {
            t.finished += 1;
            t.reproduced += u32::from(reproduced);
        }
    }

    fn pick(&mut self) -> usize {
        // The warm-up, in turn: the cell with the fewest runs handed out.
        if let Some((cell, _)) = self
            .cells
            .iter()
            .enumerate()
            .filter(|(_, t)| t.started < WARM_UP)
            .min_by_key(|(_, t)| t.started)
        {
            return cell;
        }
        let mut best = (0, f64::MIN);
        for (cell, t) in self.cells.iter().enumerate() {
            let k = f64::from(t.reproduced);
            let n = f64::from(t.finished);
            let draw = beta(&mut self.rng, k + 1.0, n - k + 1.0);
            if draw > best.1 {
                best = (cell, draw);
            }
        }
        best.0
    }
}

/// A draw from Beta(a, b), as X / (X + Y) for X ~ Gamma(a), Y ~ Gamma(b).
fn beta(rng: &mut fastrand::Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

/// A draw from Gamma(shape, 1) for shape ≥ 1, by Marsaglia and Tsang's
/// method (2000), in the paper's own names.
#[allow(clippy::many_single_char_names)]
fn gamma(rng: &mut fastrand::Rng, shape: f64) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let (x, v) = loop {
            let x = normal(rng);
            let v = 1.0 + c * x;
            if v > 0.0 {
                break (x, v * v * v);
            }
        };
        let u = rng.f64();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u = 1.0 - rng.f64();
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The highest failure rate that `n` runs without a reproduction leave
/// plausible at 95 % confidence: the p for which (1 − p)^n = 0.05. About
/// 3/n for large n (the rule of three).
pub fn zero_in(n: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss, reason = "run counts are far below 2^52")]
    let n = n as f64;
    Some(1.0 - 0.05_f64.powf(1.0 / n))
}

/// Runs without a reproduction that show a rate at least `factor` times
/// rarer than `rate`, at 95 %.
pub fn runs_to_show(rate: f64, factor: f64) -> Option<u64> {
    let target = rate / factor;
    if !(target > 0.0 && target < 1.0) {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive count, rounded up"
    )]
    Some((0.05_f64.ln() / (1.0 - target).ln()).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_runs_or_a_duration() {
        assert_eq!(Budget::parse("500"), Ok(Budget::Runs(500)));
        assert_eq!(
            Budget::parse("10m"),
            Ok(Budget::Time(Duration::from_mins(10)))
        );
        assert_eq!(
            Budget::parse("90s"),
            Ok(Budget::Time(Duration::from_secs(90)))
        );
        for bad in ["0", "", "-5", "soon", "0s", "1.5"] {
            assert!(Budget::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Budget::Runs(500).to_string(), "500 runs");
        assert_eq!(Budget::Time(Duration::from_mins(10)).to_string(), "10m");
    }

    #[test]
    fn the_bound_for_zero_reproductions_is_the_rule_of_three() {
        for n in [300_u64, 3000, 30_000] {
            let bound = zero_in(n).unwrap();
            #[allow(clippy::cast_precision_loss)]
            let three = 3.0 / n as f64;
            assert!(
                (bound - three).abs() / three < 0.01,
                "{n}: {bound} vs {three}"
            );
        }
        assert!((zero_in(1).unwrap() - 0.95).abs() < 1e-12);
        assert_eq!(zero_in(0), None);
        // A 1 % bug, shown 10× rarer: about 3 / 0.001 runs.
        let n = runs_to_show(0.01, 10.0).unwrap();
        assert!((2990..=3000).contains(&n), "{n}");
    }

    #[test]
    fn every_cell_warms_up_then_the_reproducing_cell_gets_most_runs() {
        let mut a = Allocator::new(Budget::Runs(400), 20, 7);
        let mut runs = [0_u32; 20];
        while let Some((cell, index)) = a.next_run() {
            assert_eq!(index, runs[cell], "indices count up per cell");
            runs[cell] += 1;
            // Cell 13 reproduces one run in four; the others never.
            a.finished(cell, cell == 13 && index % 4 == 0);
        }
        assert_eq!(runs.iter().sum::<u32>(), 400);
        assert!(runs.iter().all(|&n| n >= WARM_UP), "{runs:?}");
        // Uniform allocation would give it 20; the nineteen others keep
        // being tried now and then, as long as little is known of them.
        assert!(runs[13] > 100, "{runs:?}");
    }

    #[test]
    fn the_same_seed_spreads_the_same_way() {
        let spread = |seed| {
            let mut a = Allocator::new(Budget::Runs(100), 5, seed);
            let mut order = Vec::new();
            while let Some((cell, index)) = a.next_run() {
                order.push(cell);
                a.finished(cell, index % 3 == 0 && cell == 2);
            }
            order
        };
        assert_eq!(spread(1), spread(1));
    }

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = fastrand::Rng::with_seed(3);
        let n = 20_000;
        let mean: f64 = (0..n).map(|_| beta(&mut rng, 2.0, 8.0)).sum::<f64>() / f64::from(n);
        assert!((mean - 0.2).abs() < 0.01, "{mean}");
    }
}
