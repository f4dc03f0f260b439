//! What a child process of a test can do: each role opens or creates a segment by name, does one
//! thing, says what it saw on stdout, and exits 0 (or prints the error on stderr and exits 1), so
//! a test can prove what another process sees and does. [`Child`](crate::Child) starts one.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::error_kind;
use crate::types::{
    Balance, Everything, I16s, I32s, I64s, I8s, Round, Slot, State, U16s, U32s, U64s, U8s, Widths,
    Worker,
};

mod big;
use shm_core::{Array, Options, Shared, Text, Value};

fn num(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("not a number: {s}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("child: {msg}");
    std::process::exit(1)
}

fn ok<T>(r: shm_core::Result<T>) -> T {
    r.unwrap_or_else(|e| fail(&e.to_string()))
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Plays the role `args[0]` with the arguments that follow.
pub(crate) fn play(args: &[&str]) {
    if big::play(args) {
        return;
    }
    match args {
        ["add-i32", name, n] => {
            let v = ok(Value::<i32>::open(name));
            for _ in 0..num(n) {
                v.fetch_add(1, Relaxed);
            }
        }
        ["add-u64", name, n] => {
            let v = ok(Value::<u64>::open(name));
            for _ in 0..num(n) {
                v.fetch_add(1, Relaxed);
            }
        }
        ["add-f64", name, n] => {
            let v = ok(Value::<f64>::open(name));
            for _ in 0..num(n) {
                v.fetch_add(0.5, Relaxed);
            }
        }
        ["add-slot", name, slot, n] => {
            let a = ok(Array::<u64>::open(name));
            let slot = num(slot) as usize;
            let Some(cell) = a.get(slot) else {
                fail("slot out of range")
            };
            for _ in 0..num(n) {
                cell.fetch_add(1, Relaxed);
            }
        }
        // Open, report what was read, and exit: an opener must leave the segment alone.
        ["read-i32", name] => {
            let v = ok(Value::<i32>::open(name));
            say(&v.load(Relaxed).to_string());
        }
        // Open and wait to be killed.
        ["open-and-hang", name] => {
            let _v = ok(Value::<i32>::open(name));
            say("opened");
            std::thread::sleep(Duration::from_secs(3600));
        }
        // Create, and stop for good just before the segment is marked ready.
        ["hang-in-init", name] => {
            fn hang() {
                say("initializing");
                std::thread::sleep(Duration::from_secs(3600));
            }
            let opts = Options::new().before_ready(hang);
            ok(Value::<i32>::create_with(name, 0, &opts));
            fail("create returned although the hook never does");
        }
        // Create a `Value<u64>` holding 7 (not kept), say so, and wait to be killed: the segment
        // outlives its creator.
        ["create-then-hang", name] => {
            let _v = ok(Value::<u64>::create(name, 7));
            say("created");
            std::thread::sleep(Duration::from_secs(3600));
        }
        // Create a `Value<u64>` holding 7 (not kept), take its lock on a thread other than the
        // main one, say `locked TID`, and hold it until killed.
        ["hold-lock-on-a-thread", name] => {
            let v = ok(Value::<u64>::create(name, 7));
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _guard = v.lock().unwrap_or_else(|p| p.into_inner());
                    // SAFETY: gettid takes no arguments and cannot fail.
                    say(&format!("locked {}", unsafe { libc::gettid() }));
                    std::thread::sleep(Duration::from_secs(3600));
                });
            });
        }
        // Race for a name: report whether this process created it, and what it read.
        ["open-or-create", name] => {
            let v = ok(Value::<u64>::open_or_create_with(
                name,
                42,
                &Options::new().keep(true).wait(Duration::from_secs(10)),
            ));
            say(&format!("{} {}", v.is_owner(), v.load(Relaxed)));
        }
        // Take the lock and wait to be killed holding it.
        ["lock-and-hang", name] => {
            let v = ok(Value::<u64>::open(name));
            let _guard = v.lock().unwrap_or_else(|p| p.into_inner());
            say("locked");
            std::thread::sleep(Duration::from_secs(3600));
        }
        // Take the lock of an `Array<i64>`, half-change it (element 0 to 99), and wait to be
        // killed holding it.
        ["lock-array-and-hang", name] => {
            let a = ok(Array::<i64>::open(name));
            let guard = a.lock().unwrap_or_else(|p| p.into_inner());
            guard[0].store(99, Relaxed);
            say("locked");
            std::thread::sleep(Duration::from_secs(3600));
        }
        // One `update` of a `Value<u64>` (+1); say whether the lock is poisoned afterwards.
        ["update-once", name] => {
            let v = ok(Value::<u64>::open(name));
            v.update(|x| *x += 1);
            say(if v.is_poisoned() { "poisoned" } else { "clean" });
        }
        // One `update` of an `Array<i64>` (+1 each); say whether the lock is poisoned afterwards.
        ["update-array-once", name] => {
            let a = ok(Array::<i64>::open(name));
            a.update(|v| v.iter_mut().for_each(|x| *x += 1));
            say(if a.is_poisoned() { "poisoned" } else { "clean" });
        }
        // Set every element of an `Array<i64>` to 1, 2, 3, ... in one `update` each, until
        // killed.
        ["update-forever", name] => {
            let a = ok(Array::<i64>::open(name));
            say("started");
            for k in 1.. {
                a.update(|v| v.fill(k));
            }
        }
        // Wait until a `Value<u64>` is at least TARGET, at most TIMEOUT_MS (`-`: for ever);
        // say `seen V`, or `timeout after MS` with how long it waited.
        ["wait-value", name, target, timeout] => {
            let v = ok(Value::<u64>::open(name));
            let target = num(target);
            let start = std::time::Instant::now();
            let seen = match *timeout {
                "-" => Some(v.wait_until(|x| *x >= target)),
                ms => v.wait_until_timeout(|x| *x >= target, Duration::from_millis(num(ms))),
            };
            match seen {
                Some(x) => say(&format!("seen {x}")),
                None => say(&format!("timeout after {}", start.elapsed().as_millis())),
            }
        }
        // For round 1, 2, ...: wait until every element of an `Array<i64>` is -round, checking
        // that every snapshot seen on the way is whole (all elements equal); say `round R` each
        // time. Every element `i64::MIN` ends it: say `stopped`.
        ["wait-rounds", name] => {
            let a = ok(Array::<i64>::open(name));
            for round in 1.. {
                let seen = a.wait_until_timeout(
                    |v| {
                        if v.iter().any(|x| *x != v[0]) {
                            fail(&format!("round {round}: a torn snapshot"));
                        }
                        v[0] == -round || v[0] == i64::MIN
                    },
                    Duration::from_secs(60),
                );
                match seen {
                    None => fail(&format!("round {round}: not woken within a minute")),
                    Some(v) if v[0] == i64::MIN => {
                        say("stopped");
                        break;
                    }
                    Some(_) => say(&format!("round {round}")),
                }
            }
        }
        // Create a `Value<i32>` kept after exit, say so, and exit or wait to be killed.
        ["create-kept", name, then] => {
            let v = ok(Value::<i32>::create_with(
                name,
                5,
                &Options::new().keep(true),
            ));
            say("created");
            if *then == "hang" {
                std::thread::sleep(Duration::from_secs(3600));
            }
            drop(v);
        }
        // Take the lock once and say how it was found.
        ["lock-once", name] => {
            let v = ok(Value::<u64>::open(name));
            let (guard, how) = match v.lock() {
                Ok(g) => (g, "clean"),
                Err(p) => (p.into_inner(), "poisoned"),
            };
            guard.fetch_add(1, Relaxed);
            drop(guard);
            say(how);
        }
        // Start an update of [a, b, c] and block inside it until killed.
        ["update-and-hang", name] => {
            let a = ok(Array::<i64>::open(name));
            a.update(|v| {
                v[0] += 1;
                v[1] -= 1;
                v[2] += 1;
                say("in-update");
                std::thread::sleep(Duration::from_secs(3600));
            });
        }
        // Take a consistent snapshot of [a, b, c] and print it.
        ["snapshot", name] => {
            let a = ok(Array::<i64>::open(name));
            let v = a.snapshot();
            say(&format!("{} {} {}", v[0], v[1], v[2]));
        }
        // Keep `a + b == 0` and `c == a` through `n` updates, then say so.
        ["balance-writer", name, n] => {
            let s = ok(Shared::<Balance>::open(name));
            for i in 0..num(n) {
                let k = (i % 7) as i64 + 1;
                s.update(|v| {
                    v.a += k;
                    v.b -= k;
                    v.c = v.a;
                    v.updates += 1;
                });
            }
            s.writers_done.fetch_add(1, Relaxed);
        }
        // Take snapshots until all `writers` are done and at least `n` were taken; print how
        // many were taken and how many broke the invariant.
        ["balance-reader", name, writers, n] => {
            let s = ok(Shared::<Balance>::open(name));
            let (writers, n) = (num(writers) as u32, num(n));
            let (mut taken, mut torn) = (0u64, 0u64);
            loop {
                let v = s.snapshot();
                taken += 1;
                if !v.consistent() {
                    torn += 1;
                }
                if taken >= n && v.writers_done == writers {
                    break;
                }
            }
            say(&format!("{taken} {torn}"));
        }
        // `n` atomic operations on every field of `Everything`.
        ["everything", name, n] => {
            let s = ok(Shared::<Everything>::open(name));
            for _ in 0..num(n) {
                s.i8_.fetch_add(1, Relaxed);
                s.u8_.fetch_add(1, Relaxed);
                s.i16_.fetch_sub(1, Relaxed);
                s.u16_.fetch_add(1, Relaxed);
                s.i32_.fetch_sub(3, Relaxed);
                s.u32_.fetch_add(3, Relaxed);
                s.i64_.fetch_sub(5, Relaxed);
                s.u64_.fetch_add(5, Relaxed);
                s.f32_.fetch_add(0.5, Relaxed);
                s.f64_.fetch_add(0.25, Relaxed);
                s.flag.fetch_xor(true, Relaxed);
                let _ = s
                    .letter
                    .fetch_update(Relaxed, Relaxed, |c| char::from_u32(c as u32 + 1));
                for row in &s.grid {
                    for cell in row {
                        cell.fetch_add(1, Relaxed);
                    }
                }
                s.inner.x.fetch_add(1, Relaxed);
                s.inner.y[2].fetch_sub(1, Relaxed);
            }
        }
        // `n` increments of slot `slot` of an array of cache-line slots.
        ["slot", name, slot, n] => {
            let a = ok(Array::<Slot>::open(name));
            let i = num(slot) as usize;
            let Some(mine) = a.get(i) else {
                fail("slot out of range")
            };
            for k in 0..num(n) {
                mine.count.fetch_add(1, Relaxed);
                mine.sum.fetch_add(1.5, Relaxed);
                mine.last.store(k as u32, Relaxed);
            }
            // And one shared slot that everyone updates consistently.
            if let Some(shared) = a.len().checked_sub(1) {
                a.update_range(shared..=shared, |s| s[0].count += 1);
            }
        }
        // `rounds` rounds of: all racers meet; all open_or_create NAME; check it was initialised;
        // the creator counts itself in owners[round]; all meet; the creator removes NAME.
        // Every field of a `Widths` from `Low` to `High` with the twin's swap and
        // compare_exchange, saying what it found.
        ["widths", name] => {
            use std::sync::atomic::Ordering::SeqCst;
            let w = ok(Shared::<Widths>::open(name));
            say(&format!("found {:?}", w.snapshot()));
            let swapped = [
                w.u8_.swap(U8s::High, SeqCst) == U8s::Low,
                w.i8_.compare_exchange(I8s::Low, I8s::High, SeqCst, SeqCst) == Ok(I8s::Low),
                w.u16_.swap(U16s::High, SeqCst) == U16s::Low,
                w.i16_
                    .compare_exchange(I16s::Low, I16s::High, SeqCst, SeqCst)
                    == Ok(I16s::Low),
                w.u32_.swap(U32s::High, SeqCst) == U32s::Low,
                w.i32_
                    .compare_exchange(I32s::Low, I32s::High, SeqCst, SeqCst)
                    == Ok(I32s::Low),
                w.u64_.swap(U64s::High, SeqCst) == U64s::Low,
                w.i64_
                    .compare_exchange(I64s::Low, I64s::High, SeqCst, SeqCst)
                    == Ok(I64s::Low),
            ];
            say(&format!("swapped {swapped:?}"));
        }
        // Claims every idle slot of an `Array<Worker>` it can (Idle to Busy by compare_exchange),
        // writes its name as the client, counts a request, and says how many it claimed.
        ["claim", name, id] => {
            use std::sync::atomic::Ordering::{AcqRel, Acquire};
            let board = ok(Array::<Worker>::open(name));
            let client = Text::try_from(format!("child-{id}").as_str())
                .unwrap_or_else(|e| fail(&e.to_string()));
            let mut claimed = 0;
            for slot in board.iter() {
                if slot
                    .state
                    .compare_exchange(State::Idle, State::Busy, AcqRel, Acquire)
                    .is_ok()
                {
                    slot.client.store(client, Relaxed);
                    slot.requests.fetch_add(1, Relaxed);
                    claimed += 1;
                }
            }
            say(&format!("claimed {claimed}"));
        }
        // N updates of a `Worker`, each writing a whole text of its own (`ID:k` repeated to a
        // length that depends on k) and counting a request.
        ["worker-updates", name, id, n] => {
            let w = ok(Shared::<Worker>::open(name));
            for k in 0..num(n) {
                let text = crate::types::worker_text(id, k);
                w.update(|v| {
                    v.client = Text::try_from(text.as_str()).unwrap_or_default();
                    v.state = if k % 2 == 0 {
                        State::Busy
                    } else {
                        State::Stopping
                    };
                    v.requests += 1;
                });
            }
        }
        ["race", name, control, rounds, racers] => {
            let (rounds, racers) = (num(rounds) as usize, num(racers));
            let arrived = ok(Value::<u64>::open(&format!("{control}-arrived")));
            let owners = ok(Array::<u64>::open(&format!("{control}-owners")));
            let mut meetings = 0u64;
            let mut meet = || {
                meetings += 1;
                arrived.fetch_add(1, Relaxed);
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while arrived.load(Relaxed) < meetings * racers {
                    if std::time::Instant::now() > deadline {
                        fail("another racer never arrived");
                    }
                    std::thread::yield_now();
                }
            };
            let opts = Options::new().keep(true).wait(Duration::from_secs(10));
            for round in 0..rounds {
                meet();
                let want = Round {
                    token: 0xC0FFEE ^ round as u64,
                    joined: 0,
                };
                let seg = ok(Shared::<Round>::open_or_create_with(name, want, &opts));
                let seen = seg.token.load(Relaxed);
                if seen != want.token {
                    fail(&format!(
                        "round {round}: saw token {seen:#x}, not {:#x}",
                        want.token
                    ));
                }
                seg.joined.fetch_add(1, Relaxed);
                if seg.is_owner() {
                    owners[round].fetch_add(1, Relaxed);
                }
                meet();
                if seg.is_owner() {
                    let joined = seg.joined.load(Relaxed);
                    if joined != racers {
                        fail(&format!(
                            "round {round}: {joined} of {racers} racers joined"
                        ));
                    }
                    ok(shm_core::remove(name));
                }
            }
        }
        // Try to open NAME accepting MODE (octal) and say what happened: `ok VALUE`, or the error
        // variant and its message.
        ["try-open", name, mode] => {
            let mode = u32::from_str_radix(mode, 8).unwrap_or_else(|_| fail("mode is octal"));
            match Value::<i32>::open_with(name, &Options::new().mode(mode)) {
                Ok(v) => say(&format!("ok {}", v.load(Relaxed))),
                Err(e) => say(&format!("err {}: {e}", error_kind(&e))),
            }
        }
        // Attach NAME read only, accepting MODE (octal): `ok VALUE` or `err KIND: MESSAGE`.
        ["try-open-readonly", name, mode] => {
            let mode = u32::from_str_radix(mode, 8).unwrap_or_else(|_| fail("mode is octal"));
            match Value::<i32>::open_readonly_with(name, &Options::new().mode(mode)) {
                Ok(v) => say(&format!("ok {}", v.snapshot())),
                Err(e) => say(&format!("err {}: {e}", error_kind(&e))),
            }
        }
        // Attached read only (accepting MODE): take snapshots of a `Balance` until `writers`
        // are done and at least `n` were taken; print how many were taken and how many broke
        // the invariant.
        ["readonly-balance", name, mode, writers, n] => {
            let mode = u32::from_str_radix(mode, 8).unwrap_or_else(|_| fail("mode is octal"));
            let s = ok(Shared::<Balance>::open_readonly_with(
                name,
                &Options::new().mode(mode),
            ));
            let (writers, n) = (num(writers) as u32, num(n));
            let (mut taken, mut torn) = (0u64, 0u64);
            loop {
                let v = s.snapshot();
                taken += 1;
                if !v.consistent() {
                    torn += 1;
                }
                if taken >= n && v.writers_done == writers {
                    break;
                }
            }
            say(&format!("{taken} {torn}"));
        }
        // Add 1 to every element of the `i64` array NAME, one `update` at a time, until killed.
        // Says `started` after the first update, which maps the side journal: from then on a kill
        // lands in the loop's steady state, whatever the machine's load made the start cost.
        ["update-all-forever", name] => {
            let a = ok(Array::<i64>::open(name));
            let add = |v: &mut [i64]| v.iter_mut().for_each(|x| *x += 1);
            a.update(add);
            say("started");
            loop {
                a.update(add);
            }
        }
        // Say what `inspect::examine` (what `shm ls --all` shows) finds under NAME: the kind of
        // entry and, for one refused, the error's message.
        ["try-examine", name] => match shm_core::inspect::examine(name) {
            Ok(e) => match e.kind {
                shm_core::inspect::EntryKind::Denied(e) => say(&format!("denied: {e}")),
                shm_core::inspect::EntryKind::Segment(_) => say("segment"),
                other => say(&format!("other: {other:?}")),
            },
            Err(e) => say(&format!("err {}: {e}", error_kind(&e))),
        },
        // Try to remove NAME and say what happened: `ok` or the error variant and message.
        ["try-remove", name] => match shm_core::remove(name) {
            Ok(()) => say("ok"),
            Err(e) => say(&format!("err {}: {e}", error_kind(&e))),
        },
        // Run inside a private mount namespace whose /dev/shm is a 1 MiB tmpfs.
        _ => fail(&format!("unknown role {args:?}")),
    }
}
