//! The statistics a report shows: rates with Wilson intervals, medians,
//! commonest reasons. Pure functions, tested here.

use std::collections::HashMap;

/// The 95% Wilson score interval for `k` successes in `n` trials.
pub fn wilson(k: u32, n: u32) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = f64::from(n);
    let p = f64::from(k) / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Rounds to four decimals, for stable JSON.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The median of `values` (the lower middle for an even count).
pub fn median(values: &[u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    Some(sorted[(sorted.len() - 1) / 2])
}

/// The most frequent item; ties go to the one seen first.
pub fn commonest<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, item) in items.enumerate() {
        counts.entry(item).or_insert((0, i)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(item, _)| item.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // DESIGN.md's example: 3 of 3 gives [0.44, 1.0].
        let (lo, hi) = wilson(3, 3);
        assert_eq!((round4(lo), round4(hi)), (0.4385, 1.0));
        let (lo, hi) = wilson(0, 10);
        assert_eq!((round4(lo), round4(hi)), (0.0, 0.2775));
        let (lo, hi) = wilson(5, 10);
        assert_eq!((round4(lo), round4(hi)), (0.2366, 0.7634));
    }

    #[test]
    fn medians_and_reasons() {
        assert_eq!(median(&[30, 10, 20]), Some(20));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2));
        assert_eq!(median(&[]), None);
        assert_eq!(
            commonest(["exit", "hang", "hang"].into_iter()).as_deref(),
            Some("hang")
        );
        assert_eq!(
            commonest(["exit", "hang"].into_iter()).as_deref(),
            Some("exit")
        );
    }
}
