//! Interleaved timing: every case of a group runs one batch per round, in an order that rotates
//! from round to round, so that whatever else the machine does at a moment slows all of them
//! alike; each case's figure is the median over the rounds, with its quartiles, and the ratio of
//! two cases is the median of their per-round ratios.

use std::time::Instant;

/// Median, quartiles and extremes of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The smallest value.
    pub min: f64,
    /// The first quartile (25th percentile).
    pub q1: f64,
    /// The median.
    pub median: f64,
    /// The third quartile (75th percentile).
    pub q3: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `xs` (percentiles interpolated linearly between order statistics).
    ///
    /// # Panics
    /// If `xs` is empty.
    pub fn of(xs: &[f64]) -> Spread {
        assert!(!xs.is_empty(), "the spread of no values");
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Spread {
            min: v[0],
            q1: at(0.25),
            median: at(0.5),
            q3: at(0.75),
            max: v[v.len() - 1],
        }
    }

    /// `median [q1-q3]` with `digits` decimals.
    pub fn iqr(&self, digits: usize) -> String {
        format!(
            "{:.d$} [{:.d$}-{:.d$}]",
            self.median,
            self.q1,
            self.q3,
            d = digits
        )
    }

    /// `median (min-max)` with `digits` decimals.
    pub fn range(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}-{:.d$})",
            self.median,
            self.min,
            self.max,
            d = digits
        )
    }
}

/// One timed case: `run(n)` performs the operation `n` times (the loop is the caller's own code,
/// so the operation is compiled into it as in a user's loop). Whatever a case needs besides the
/// operations (buffers, handles) it makes before, not in `run`: `run` is timed whole.
pub struct Case<'a> {
    /// What it is, as the table shows it.
    pub name: String,
    run: Box<dyn FnMut(u64) + 'a>,
    /// Operations per batch, chosen by [`Group::run`].
    batch: u64,
    /// Nanoseconds per operation, one per round.
    samples: Vec<f64>,
}

/// Operations a batch has at least, so that reading the clock is a small part of it.
const MIN_BATCH: u64 = 16;

/// Cases timed together, interleaved.
pub struct Group<'a> {
    /// The group's title.
    pub title: String,
    cases: Vec<Case<'a>>,
}

/// The figures of one case after a run.
#[derive(Clone, Debug)]
pub struct Timing {
    /// The case's name.
    pub name: String,
    /// Nanoseconds per operation over the rounds.
    pub ns: Spread,
    /// The per-round samples (ns per operation), in round order.
    pub samples: Vec<f64>,
}

impl Timing {
    /// The spread of the per-round ratios of `self` to `base` (rounds paired by index: both
    /// were timed within the same round).
    pub fn ratio_to(&self, base: &Timing) -> Spread {
        let r: Vec<f64> = self
            .samples
            .iter()
            .zip(&base.samples)
            .map(|(a, b)| a / b)
            .collect();
        Spread::of(&r)
    }
}

impl<'a> Group<'a> {
    /// An empty group.
    pub fn new(title: impl Into<String>) -> Group<'a> {
        Group {
            title: title.into(),
            cases: Vec::new(),
        }
    }

    /// Adds a case; `run(n)` must perform the operation `n` times.
    pub fn case(&mut self, name: impl Into<String>, run: impl FnMut(u64) + 'a) -> &mut Self {
        self.cases.push(Case {
            name: name.into(),
            run: Box::new(run),
            batch: 1,
            samples: Vec::new(),
        });
        self
    }

    /// Runs `rounds` rounds, each case one batch of about `batch_ns` nanoseconds per round, in
    /// an order rotated by one case each round (and reversed every other round). Returns the
    /// timings in the order the cases were added.
    pub fn run(mut self, rounds: usize, batch_ns: f64) -> Vec<Timing> {
        // Size each case's batch: one untimed call first (first touches, page faults, lazy
        // initialisation), then double until a batch takes a quarter of the target, then scale.
        for c in &mut self.cases {
            (c.run)(1);
            let mut n = 1u64;
            loop {
                let t = Instant::now();
                (c.run)(n);
                let ns = t.elapsed().as_nanos() as f64;
                if ns >= batch_ns / 4.0 || n >= 1 << 40 {
                    c.batch = ((n as f64 * batch_ns / ns.max(1.0)).ceil() as u64).max(MIN_BATCH);
                    break;
                }
                n *= 2;
            }
            // One batch of the chosen size, untimed: caches and branch predictors warm.
            (c.run)(c.batch);
        }
        let k = self.cases.len();
        for round in 0..rounds {
            for j in 0..k {
                let i = if round % 2 == 0 {
                    (round / 2 + j) % k
                } else {
                    (round / 2 + k - 1 - j) % k
                };
                let c = &mut self.cases[i];
                let t = Instant::now();
                (c.run)(c.batch);
                let ns = t.elapsed().as_nanos() as f64;
                c.samples.push(ns / c.batch as f64);
            }
        }
        self.cases
            .into_iter()
            .map(|c| Timing {
                ns: Spread::of(&c.samples),
                name: c.name,
                samples: c.samples,
            })
            .collect()
    }
}

/// `ns` nanoseconds (median and quartiles) in the unit that suits the median.
pub fn time_iqr(ns: &Spread) -> String {
    let (div, unit) = if ns.median >= 1e6 {
        (1e6, "ms")
    } else if ns.median >= 1e4 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    };
    let d = if ns.median / div >= 100.0 { 0 } else { 2 };
    format!(
        "{:.d$} [{:.d$}-{:.d$}] {unit}",
        ns.median / div,
        ns.q1 / div,
        ns.q3 / div
    )
}

/// Prints `timings` as a table: each case's time per operation (median and quartiles), and its
/// ratio to the case named in `base_of` for it (median and quartiles of the per-round ratios).
pub fn print_table(title: &str, timings: &[Timing], base_of: impl Fn(&str) -> Option<String>) {
    println!("\n{title}");
    println!(
        "{:<56} | {:>27} | {:>22} | vs",
        "", "time/op median [IQR]", "ratio median [IQR]"
    );
    println!("{}", "-".repeat(125));
    for t in timings {
        let (ratio, vs) = match base_of(&t.name)
            .and_then(|b| timings.iter().find(|x| x.name == b).map(|x| (x, b)))
        {
            Some((base, b)) if base.name != t.name => (t.ratio_to(base).iqr(3), b),
            _ => (String::new(), String::new()),
        };
        println!(
            "{:<56} | {:>27} | {:>22} | {}",
            t.name,
            time_iqr(&t.ns),
            ratio,
            vs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn quartiles_of_a_known_sample() {
        let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(
            (s.min, s.q1, s.median, s.q3, s.max),
            (1.0, 2.0, 3.0, 4.0, 5.0)
        );
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((s.q1, s.median, s.q3), (1.75, 2.5, 3.25));
    }
}
