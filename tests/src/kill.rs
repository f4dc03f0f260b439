//! Killing writers at random moments, and telling whether a kill landed inside a write window
//! (the header's `seq` odd), for the tests of killed writers.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use crate::{Child, TestName};

/// The header's `seq` (bytes 128..136), read from the object: odd while a write is in progress,
/// or after its writer died inside it.
pub fn seq(name: &TestName) -> u64 {
    let f = std::fs::File::open(name.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, 128).unwrap();
    u64::from_ne_bytes(b)
}

/// Waits until the writer of `name` is inside a write window (`seq` odd), polling; gives up
/// after `patience` (a writer that never starts one is caught by the checks that follow).
pub fn wait_for_write_window(name: &TestName, patience: Duration) {
    let start = Instant::now();
    while seq(name).is_multiple_of(2) && start.elapsed() < patience {
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// How long the write windows of the writer role `role` on `name` last here, in microseconds:
/// the shortest of three, watched from outside (the counter odd, then even again). The writer is
/// killed afterwards, perhaps inside a window: the caller's next reader rolls it back.
pub fn window_length(role: &str, name: &TestName) -> u64 {
    let mut writer = Child::spawn(&[role, name]);
    writer.wait_for("started");
    let mut shortest = u64::MAX;
    for _ in 0..3 {
        wait_for_write_window(name, Duration::from_secs(30));
        let opened = Instant::now();
        while seq(name) % 2 == 1 && opened.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_micros(20));
        }
        shortest = shortest.min(opened.elapsed().as_micros() as u64);
        // Into the next update, whose window comes later.
        std::thread::sleep(Duration::from_micros(50));
    }
    writer.kill9();
    shortest.max(1)
}

/// A pseudo-random number generator for kill times (xorshift), seeded from the clock.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn new() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        Rng(t.as_nanos() as u64 | 1)
    }

    /// A number in `0..n` (0 for `n` = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

impl Default for Rng {
    fn default() -> Rng {
        Rng::new()
    }
}

/// Kills `writer` at a random moment: in even rounds anywhere within `span` microseconds of
/// now; in odd rounds, once it is inside a write window, anywhere within the next `window`
/// microseconds — so that kills land inside write windows however short a part of the writer's
/// time they are.
pub fn kill_at_random(
    writer: &mut Child,
    name: &TestName,
    round: u32,
    (span, window): (u64, u64),
    rng: &mut Rng,
) {
    if round % 2 == 1 {
        wait_for_write_window(name, Duration::from_secs(30));
        std::thread::sleep(Duration::from_micros(rng.below(window)));
    } else {
        std::thread::sleep(Duration::from_micros(rng.below(span + 1000)));
    }
    writer.kill9();
}
