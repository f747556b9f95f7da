//! Paired timing: what a variant adds over a baseline, measured so that a machine's drift cancels.
//!
//! On a shared VM the same binary runs at different speeds from one minute to the next: criterion
//! runs its variants one after the other, so a slow spell that falls on one variant is read as that
//! variant's cost. [`Paired`] runs every variant for a short block in each round instead, rotating
//! which goes first, and reports the median over rounds of each variant's block time minus the
//! baseline's block time *in the same round*. A drift slower than a round (a few milliseconds)
//! cancels in that difference. The median, with a distribution-free 95 % interval, is what a
//! variant adds per iteration.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tracewire_shared::testing::paired::Paired;
//!
//! let report = Paired::new()
//!     .rounds(20)
//!     .block(10)
//!     .variant("bare", |iters| {
//!         let start = Instant::now();
//!         for i in 0..iters {
//!             std::hint::black_box(i);
//!         }
//!         start.elapsed()
//!     })
//!     .variant("sleepy", |iters| {
//!         let start = Instant::now();
//!         for _ in 0..iters {
//!             std::thread::sleep(Duration::from_micros(50));
//!         }
//!         start.elapsed()
//!     })
//!     .run();
//! let added = report.added("sleepy", "bare").unwrap();
//! assert!(added.median_ns >= 50_000.0);
//! println!("{report}");
//! ```

use std::fmt;
use std::time::Duration;

/// One variant: runs `iters` iterations and returns how long they took, as criterion's
/// `iter_custom`.
type Routine<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// Variants run in alternating blocks; see the [module](self).
pub struct Paired<'a> {
    rounds: usize,
    warm_up_rounds: usize,
    block: u64,
    variants: Vec<(String, Routine<'a>)>,
}

impl fmt::Debug for Paired<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paired")
            .field("rounds", &self.rounds)
            .field("warm_up_rounds", &self.warm_up_rounds)
            .field("block", &self.block)
            .field(
                "variants",
                &self.variants.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Paired<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Paired<'a> {
    /// 300 rounds of 100 iterations per variant, after 3 rounds of warm-up.
    pub fn new() -> Self {
        Self {
            rounds: 300,
            warm_up_rounds: 3,
            block: 100,
            variants: Vec::new(),
        }
    }

    /// Measured rounds (at least 1).
    pub fn rounds(mut self, rounds: usize) -> Self {
        self.rounds = rounds.max(1);
        self
    }

    /// Iterations per variant per round (at least 1). A block should last well under the time the
    /// machine takes to change speed, and well over the clock's resolution.
    pub fn block(mut self, iterations: u64) -> Self {
        self.block = iterations.max(1);
        self
    }

    /// Takes `--rounds N` and `--block N` from the command line (`cargo bench --bench paired --
    /// --rounds 2000`), ignoring every other argument (cargo passes `--bench`).
    pub fn args(mut self) -> Self {
        let args: Vec<String> = std::env::args().collect();
        for pair in args.windows(2) {
            match (pair[0].as_str(), pair[1].parse::<u64>()) {
                ("--rounds", Ok(n)) => self = self.rounds(usize::try_from(n).unwrap_or(usize::MAX)),
                ("--block", Ok(n)) => self = self.block(n),
                _ => {}
            }
        }
        self
    }

    /// Adds a variant. `routine` runs the given number of iterations and returns their time.
    pub fn variant(
        mut self,
        name: impl Into<String>,
        routine: impl FnMut(u64) -> Duration + 'a,
    ) -> Self {
        self.variants.push((name.into(), Box::new(routine)));
        self
    }

    /// Runs every round and returns the per-iteration block times.
    pub fn run(mut self) -> PairedReport {
        let count = self.variants.len();
        let mut times = vec![Vec::with_capacity(self.rounds); count];
        for round in 0..self.warm_up_rounds + self.rounds {
            // Rotated, so that each variant runs first in turn: none always starts a round, when
            // whatever ran before the round (a reallocation, a page fault) is still being paid for.
            for offset in 0..count {
                let index = (round + offset) % count;
                let elapsed = (self.variants[index].1)(self.block);
                if round >= self.warm_up_rounds {
                    times[index].push(elapsed.as_nanos() as f64 / self.block as f64);
                }
            }
        }
        PairedReport {
            names: self.variants.into_iter().map(|(name, _)| name).collect(),
            times,
        }
    }
}

/// Per-iteration block times of every variant, round by round.
#[derive(Clone, Debug)]
pub struct PairedReport {
    names: Vec<String>,
    /// `times[variant][round]`, nanoseconds per iteration.
    times: Vec<Vec<f64>>,
}

/// A median with its distribution-free 95 % confidence interval, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The median.
    pub median_ns: f64,
    /// Lower end of the 95 % interval.
    pub low_ns: f64,
    /// Upper end of the 95 % interval.
    pub high_ns: f64,
}

impl Estimate {
    /// The median and the order statistics around it that bracket the population median with
    /// about 95 % confidence (normal approximation to the binomial).
    fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let half_width = (0.98 * (n as f64).sqrt()).ceil() as usize;
        let middle = n / 2;
        Some(Self {
            median_ns: values[middle],
            low_ns: values[middle.saturating_sub(half_width)],
            high_ns: values[(middle + half_width).min(n - 1)],
        })
    }

    /// This added cost scaled to a reference machine: `calibration` is what a variant known to add
    /// `reference` there (another library's instrumentation, say) added here, measured the same
    /// way. `None` when the calibration added nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracewire_shared::testing::paired::Estimate;
    ///
    /// let ours = Estimate { median_ns: 200.0, low_ns: 190.0, high_ns: 210.0 };
    /// let theirs = Estimate { median_ns: 1_000.0, low_ns: 950.0, high_ns: 1_050.0 };
    /// // Theirs adds 1.5 µs on the reference machine, so ours would add 0.3 µs there.
    /// assert_eq!(ours.scaled_to(&theirs, Duration::from_nanos(1_500)), Some(Duration::from_nanos(300)));
    /// ```
    pub fn scaled_to(&self, calibration: &Estimate, reference: Duration) -> Option<Duration> {
        (calibration.median_ns > 0.0).then(|| {
            let ns = self.median_ns * reference.as_nanos() as f64 / calibration.median_ns;
            Duration::from_nanos(ns.max(0.0).round() as u64)
        })
    }
}

impl PairedReport {
    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The variants' names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The median time per iteration of `name` (its own rounds, not paired).
    pub fn time(&self, name: &str) -> Option<Estimate> {
        Estimate::of(self.times[self.index(name)?].clone())
    }

    /// What `name` adds per iteration over `baseline`: the median over rounds of the difference
    /// between the two variants' block times in the same round.
    pub fn added(&self, name: &str, baseline: &str) -> Option<Estimate> {
        let (a, b) = (self.index(name)?, self.index(baseline)?);
        Estimate::of(
            self.times[a]
                .iter()
                .zip(&self.times[b])
                .map(|(x, y)| x - y)
                .collect(),
        )
    }

    /// What `name` adds over `baseline`, scaled to a reference machine where `calibration`, a
    /// variant of the same rounds, is known to add `reference` (see [`Estimate::scaled_to`]).
    pub fn scaled(
        &self,
        name: &str,
        baseline: &str,
        calibration: &str,
        reference: Duration,
    ) -> Option<Duration> {
        self.added(name, baseline)?
            .scaled_to(&self.added(calibration, baseline)?, reference)
    }
}

impl fmt::Display for PairedReport {
    /// Each variant's median time per iteration, what it adds over the first variant (with its
    /// interval), and its ratio to the first variant's median.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounds = self.times.first().map_or(0, Vec::len);
        writeln!(
            f,
            "{:<44} {:>12} {:>12} {:>7}   95 % interval of added ({rounds} rounds)",
            "variant", "median", "added", "ratio"
        )?;
        let Some(baseline) = self.names.first() else {
            return Ok(());
        };
        let base = self.time(baseline).map_or(f64::NAN, |t| t.median_ns);
        for name in &self.names {
            let time = self.time(name).map_or(f64::NAN, |t| t.median_ns);
            write!(f, "{name:<44} {:>9.3} µs", time / 1e3)?;
            match self.added(name, baseline).filter(|_| name != baseline) {
                Some(added) => writeln!(
                    f,
                    " {:>+9.3} µs {:>7.2}   [{:+.3}, {:+.3}]",
                    added.median_ns / 1e3,
                    time / base,
                    added.low_ns / 1e3,
                    added.high_ns / 1e3
                )?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_brackets_the_median() {
        let estimate = Estimate::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(estimate.median_ns, 51.0);
        // n = 100: half-width ⌈0.98 × 10⌉ = 10 ranks either side.
        assert_eq!(estimate.low_ns, 41.0);
        assert_eq!(estimate.high_ns, 61.0);
        assert_eq!(Estimate::of(Vec::new()), None);
        let one = Estimate::of(vec![7.0]).unwrap();
        assert_eq!((one.low_ns, one.median_ns, one.high_ns), (7.0, 7.0, 7.0));
    }

    #[test]
    fn differences_are_taken_within_a_round() {
        // The machine slows down tenfold halfway through; the variant always costs 5 more than the
        // baseline in the same round. Unpaired medians would mix the two speeds; the paired one
        // does not.
        let mut round = 0_u32;
        let speed = std::cell::Cell::new(1.0);
        let report = Paired::new()
            .rounds(40)
            .block(1)
            .variant("base", |_| {
                round += 1;
                if round > 20 {
                    speed.set(10.0);
                }
                Duration::from_nanos((100.0 * speed.get()) as u64)
            })
            .variant("plus", |_| {
                Duration::from_nanos((100.0 * speed.get()) as u64 + 5)
            })
            .run();
        let added = report.added("plus", "base").unwrap();
        assert_eq!(added.median_ns, 5.0);
        assert_eq!(report.added("nope", "base"), None);
        assert_eq!(report.names().collect::<Vec<_>>(), ["base", "plus"]);
        // Scaled by itself, an added cost is the reference; by nothing, it is unknown.
        assert_eq!(
            added.scaled_to(&added, Duration::from_nanos(10)),
            Some(Duration::from_nanos(10))
        );
        let nothing = report.added("base", "base").unwrap();
        assert_eq!(added.scaled_to(&nothing, Duration::from_nanos(10)), None);
        assert_eq!(
            report.scaled("plus", "base", "plus", Duration::from_nanos(10)),
            Some(Duration::from_nanos(10))
        );
        assert_eq!(
            report.scaled("plus", "base", "base", Duration::from_nanos(10)),
            None
        );
        assert_eq!(
            report.scaled("nope", "base", "plus", Duration::from_nanos(10)),
            None
        );
        let table = report.to_string();
        assert!(table.contains("plus"), "{table}");
        assert!(table.contains("+0.005 µs"), "{table}");
        // The ratio of medians: (100 + 5) / 100 at the first speed, (1000 + 5) / 1000 at the
        // second, 1.00 once rounded either way.
        assert!(table.contains("   1.00   ["), "{table}");
    }

    #[test]
    fn every_variant_leads_in_turn() {
        let order = std::cell::RefCell::new(Vec::new());
        Paired::new()
            .rounds(3)
            .block(1)
            .variant("a", |_| {
                order.borrow_mut().push('a');
                Duration::ZERO
            })
            .variant("b", |_| {
                order.borrow_mut().push('b');
                Duration::ZERO
            })
            .run();
        // 3 warm-up rounds, then 3 measured; round r starts with variant r mod 2.
        assert_eq!(
            order.into_inner().iter().collect::<String>(),
            "abbaabbaabba"
        );
    }
}
