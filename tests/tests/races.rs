//! Many processes racing to create the same name, round after round.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Value};
use tests::{Child, TestName};

tests::child_roles!();

const RACERS: usize = 16;
const ROUNDS: usize = 500;

#[test]
fn sixteen_processes_five_hundred_rounds_one_creator_each() {
    let name = TestName::new("race16");
    let control = TestName::new("racectl");
    let _arrived = Value::<u64>::create(&format!("{}-arrived", &*control), 0).unwrap();
    let owners = Array::<u64>::create_zeroed(&format!("{}-owners", &*control), ROUNDS).unwrap();
    let (rounds, racers) = (ROUNDS.to_string(), RACERS.to_string());
    let children: Vec<_> = (0..RACERS)
        .map(|_| Child::spawn(&["race", &name, &control, &rounds, &racers]))
        .collect();
    for c in children {
        c.finish();
    }
    let per_round: Vec<u64> = owners.iter().map(|o| o.load(Relaxed)).collect();
    for (round, n) in per_round.iter().enumerate() {
        assert_eq!(*n, 1, "round {round} had {n} creators");
    }
    assert!(!name.exists(), "the last round's segment leaked");
}
