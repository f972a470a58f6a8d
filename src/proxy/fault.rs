//! The faults `slow` and `flaky` inject, drawn from one seeded PRNG.
//!
//! Reproducibility is the point: the same seed and the same order of
//! connections and responses give the same delays and the same resets, so a
//! failing replay can be run again exactly. Nothing here may use an unseeded
//! source of randomness.

use std::sync::Mutex;
use std::time::Duration;

use super::Mode;

/// `slow`'s jitter: each delay is the configured mean ±10%.
const JITTER: f64 = 0.1;

/// Decides, in order, which connections to reset and how long to hold each response.
#[derive(Debug)]
pub(crate) struct Faults {
    mode: Mode,
    rng: Mutex<fastrand::Rng>,
}

impl Faults {
    pub(crate) fn new(mode: Mode, seed: u64) -> Self {
        Self {
            mode,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    /// The next draw in `[0, 1)`.
    fn draw(&self) -> f64 {
        // A poisoned lock only means another connection's task panicked
        // between two draws; the generator's state is still a valid state.
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rng.f64()
    }

    /// Whether to reset the connection just accepted (`flaky` only; draws
    /// nothing in other modes, so they stay independent of connection count).
    pub(crate) fn reset_connection(&self) -> bool {
        match self.mode {
            Mode::Flaky { p } => self.draw() < p,
            _ => false,
        }
    }

    /// The status to answer the next request with in place of the origin
    /// (`status` only; draws nothing in other modes).
    pub(crate) fn injected_status(&self) -> Option<u16> {
        match self.mode {
            Mode::Status { code, p } => (self.draw() < p).then_some(code),
            _ => None,
        }
    }

    /// How long to hold the next response (`slow` only).
    pub(crate) fn response_delay(&self) -> Option<Duration> {
        match self.mode {
            Mode::Slow { ms } => {
                let factor = 1.0 - JITTER + 2.0 * JITTER * self.draw();
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "ms is at most an hour, far inside f64's exact range, and factor is positive"
                )]
                let millis = (ms as f64 * factor).round() as u64;
                Some(Duration::from_millis(millis))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(seed: u64) -> Vec<Duration> {
        let faults = Faults::new(Mode::Slow { ms: 200 }, seed);
        (0..20).filter_map(|_| faults.response_delay()).collect()
    }

    #[test]
    fn slow_jitter_stays_within_ten_percent_and_repeats_per_seed() {
        let first = delays(7);
        assert_eq!(first.len(), 20);
        assert!(first.iter().all(|d| (180..=220).contains(&d.as_millis())));
        assert_eq!(first, delays(7), "same seed, same delays");
        assert_ne!(first, delays(8), "another seed, other delays");
        assert!(first.iter().any(|d| *d != first[0]), "there is jitter");
    }

    #[test]
    fn flaky_extremes_and_repeatability() {
        let all = Faults::new(Mode::Flaky { p: 1.0 }, 1);
        assert!((0..100).all(|_| all.reset_connection()));
        let none = Faults::new(Mode::Flaky { p: 0.0 }, 1);
        assert!((0..100).all(|_| !none.reset_connection()));
        let run = |seed| {
            let f = Faults::new(Mode::Flaky { p: 0.5 }, seed);
            (0..64).map(|_| f.reset_connection()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn other_modes_inject_nothing() {
        let f = Faults::new(Mode::Pass, 1);
        assert!(!f.reset_connection());
        assert_eq!(f.response_delay(), None);
    }
}
