//! The Rust side of the Python tests (`python/tests`): `py-peer ROLE ARGS...`.
//!
//! Each role creates or opens a segment by name, does one thing, prints what it saw on stdout in
//! a line-oriented form the Python tests parse, and exits 0 (or prints the error on stderr and
//! exits 1). Roles that create a segment hold it until their stdin closes, so a test that dies
//! leaves nothing behind.

use std::io::{BufRead, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shm_core::{Array, Shared, SharedLayout, Text, Value};

/// Every primitive, nested arrays and nested structs (one of them an array of structs).
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Point {
    pub x: i16,
    pub y: i16,
    pub tag: char,
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Nested {
    pub x: u16,
    pub y: [i32; 3],
    pub points: [Point; 2],
    pub on: bool,
}

#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Mixed {
    pub i8_: i8,
    pub u8_: u8,
    pub i16_: i16,
    pub u16_: u16,
    pub i32_: i32,
    pub u32_: u32,
    pub i64_: i64,
    pub u64_: u64,
    pub f32_: f32,
    pub f64_: f64,
    pub flag: bool,
    pub letter: char,
    pub grid: [[f32; 3]; 2],
    pub hist: [u64; 4],
    pub inner: Nested,
    pub tail: u8,
}

/// Kept consistent by every `update`: for some `k`, `a = k * 0x1_0000_0001`, `b = -a`,
/// `c = a as f64`, `d = k as i32`, `e = k as u16`, `f[i] = k + i`.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Ledger {
    pub a: i64,
    pub b: i64,
    pub c: f64,
    pub d: i32,
    pub e: u16,
    pub f: [u32; 4],
    pub updates: u64,
    pub done: u32,
}

impl Ledger {
    fn at(k: u64) -> Ledger {
        let a = (k as i64).wrapping_mul(0x1_0000_0001);
        Ledger {
            a,
            b: a.wrapping_neg(),
            c: a as f64,
            d: k as i32,
            e: k as u16,
            f: [0, 1, 2, 3].map(|i| (k as u32).wrapping_add(i)),
            updates: 0,
            done: 0,
        }
    }

    fn consistent(&self) -> bool {
        let k = self.d as u32 as u64;
        let want = Ledger {
            updates: self.updates,
            done: self.done,
            ..Ledger::at(k)
        };
        *self == want
    }
}

/// Single words stored without a lock: each must always hold one of its two patterns.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Words {
    pub w: u64,
    pub x: f64,
    pub h: u32,
    pub stop: u32,
}

const W: [u64; 2] = [0x0000_0000_FFFF_FFFF, 0xFFFF_FFFF_0000_0000];
const X: [f64; 2] = [1.0, -2.5e-300];
const H: [u32; 2] = [0x0000_FFFF, 0xFFFF_0000];

/// A worker's state: Python reads and writes it by variant name.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(u8)]
pub enum WorkState {
    #[default]
    Idle,
    Busy,
    Stopping = 9,
}

/// Negative values, two bytes.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(i16)]
pub enum Level {
    Low = -300,
    #[default]
    Zero = 0,
    High = 300,
}

/// A scoreboard slot: enums and a text.
#[derive(SharedLayout, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Board {
    pub state: WorkState,
    pub client: Text<16>,
    pub level: Level,
}

/// The board `create-board` makes: three slots, the first set.
fn board_example() -> [Board; 3] {
    let mut b = [Board::default(); 3];
    b[0] = Board {
        state: WorkState::Busy,
        client: Text::try_from("10.0.0.7").unwrap_or_default(),
        level: Level::Low,
    };
    b
}

/// `[i].field=value` lines for a board: states by name and number (`Busy/1`, or `Idle/7` for a
/// number that is no variant), texts as the hex of their UTF-8.
fn dump_board(board: &Array<Board>) {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for (i, slot) in board.snapshot().iter().enumerate() {
        say(&format!(
            "[{i}].state={:?}/{}",
            slot.state,
            board[i].state.load_raw(Relaxed)
        ));
        say(&format!("[{i}].client={}", hex(slot.client.as_str())));
        say(&format!(
            "[{i}].level={:?}/{}",
            slot.level,
            board[i].level.load_raw(Relaxed)
        ));
    }
    say("end");
}

fn mixed_example() -> Mixed {
    Mixed {
        i8_: -128,
        u8_: 255,
        i16_: -32768,
        u16_: 65535,
        i32_: -2_147_483_648,
        u32_: 4_294_967_295,
        i64_: i64::MIN,
        u64_: u64::MAX,
        f32_: 1.5,
        f64_: -2.25e-10,
        flag: true,
        letter: 'é',
        grid: [[0.5, 1.5, 2.5], [-0.5, -1.5, -2.5]],
        hist: [1, 1 << 40, 3, u64::MAX - 1],
        inner: Nested {
            x: 7,
            y: [-1, 0, 1],
            points: [
                Point {
                    x: -3,
                    y: 4,
                    tag: 'A',
                },
                Point {
                    x: 5,
                    y: -6,
                    tag: '🦀',
                },
            ],
            on: false,
        },
        tail: 42,
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("py-peer: {msg}");
    std::process::exit(1)
}

fn ok<T>(r: shm_core::Result<T>) -> T {
    r.unwrap_or_else(|e| fail(&e.to_string()))
}

fn num(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("not a number: {s}")))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Blocks until stdin says `line` (returns true) or closes (returns false).
fn wait_stdin() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_owned()),
    }
}

/// `path=value` lines for every primitive of a `Mixed`, in field order.
fn dump_mixed(m: &Mixed) -> Vec<String> {
    let mut out = vec![
        format!("i8_={}", m.i8_),
        format!("u8_={}", m.u8_),
        format!("i16_={}", m.i16_),
        format!("u16_={}", m.u16_),
        format!("i32_={}", m.i32_),
        format!("u32_={}", m.u32_),
        format!("i64_={}", m.i64_),
        format!("u64_={}", m.u64_),
        format!("f32_={:?}", m.f32_),
        format!("f64_={:?}", m.f64_),
        format!("flag={}", m.flag),
        format!("letter={}", m.letter as u32),
    ];
    for (i, row) in m.grid.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            out.push(format!("grid[{i}][{j}]={v:?}"));
        }
    }
    for (i, v) in m.hist.iter().enumerate() {
        out.push(format!("hist[{i}]={v}"));
    }
    out.push(format!("inner.x={}", m.inner.x));
    for (i, v) in m.inner.y.iter().enumerate() {
        out.push(format!("inner.y[{i}]={v}"));
    }
    for (i, p) in m.inner.points.iter().enumerate() {
        out.push(format!("inner.points[{i}].x={}", p.x));
        out.push(format!("inner.points[{i}].y={}", p.y));
        out.push(format!("inner.points[{i}].tag={}", p.tag as u32));
    }
    out.push(format!("inner.on={}", m.inner.on));
    out.push(format!("tail={}", m.tail));
    out
}

fn report<T>(r: shm_core::Result<T>) {
    match r {
        Ok(_) => say("ok"),
        Err(e) => say(&format!("{} {e}", tests::error_kind(&e))),
    }
}

fn layout_line<T: SharedLayout>(label: &str) -> String {
    let hex: String = T::LAYOUT
        .encode()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{label} {:#018x} {hex}", T::FINGERPRINT)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        // The fingerprint and descriptor bytes of the types the tests share.
        ["layouts"] => {
            say(&layout_line::<Mixed>("Mixed"));
            say(&layout_line::<Nested>("Nested"));
            say(&layout_line::<Point>("Point"));
            say(&layout_line::<Ledger>("Ledger"));
            say(&layout_line::<Words>("Words"));
            say(&layout_line::<f64>("f64"));
            say(&layout_line::<i32>("i32"));
            say(&layout_line::<char>("char"));
            say(&layout_line::<bool>("bool"));
            say(&layout_line::<[[f32; 3]; 2]>("grid"));
        }
        // Create a `Mixed` holding `mixed_example()`; on each stdin line, print its snapshot
        // (then `end`); remove it when stdin closes.
        // An `Array<Board>` of `board_example()`; each line on stdin asks for a dump.
        ["create-board", name] => {
            let b = ok(Array::<Board>::create(name, &board_example()));
            say("ready");
            while wait_stdin().is_some() {
                dump_board(&b);
            }
        }
        // Dump an `Array<Board>` Python created.
        ["dump-board", name] => {
            dump_board(&ok(Array::<Board>::open(name)));
        }
        // A single `WorkState` and a single `Text<8>`: print them, then set them.
        ["state-and-text", state, text] => {
            let s = ok(Shared::<WorkState>::open(state));
            let t = ok(Shared::<Text<8>>::open(text));
            say(&format!("{:?} {:?}", s.load(Relaxed), t.load(Relaxed)));
            s.store(WorkState::Stopping, Relaxed);
            t.update(|t| *t = Text::try_from("from rs").unwrap_or_default());
        }
        ["create-mixed", name] => {
            let s = ok(Shared::<Mixed>::create(name, mixed_example()));
            say("ready");
            while wait_stdin().is_some() {
                for line in dump_mixed(&s.snapshot()) {
                    say(&line);
                }
                say("end");
            }
        }
        ["dump-mixed", name] => {
            let s = ok(Shared::<Mixed>::open(name));
            for line in dump_mixed(&s.snapshot()) {
                say(&line);
            }
        }
        // Check a `Mixed` written by Python holds `mixed_example()`.
        ["check-mixed", name] => {
            let s = ok(Shared::<Mixed>::open(name));
            let got = s.snapshot();
            if got != mixed_example() {
                fail(&format!("got {got:?}"));
            }
            say("same");
        }
        // Create a `Value<f32>` (a layout Python's `Value('d')` must refuse); hold it.
        ["create-f32", name] => {
            let _v = ok(Value::<f32>::create(name, 0.25));
            say("ready");
            while wait_stdin().is_some() {}
        }
        // Python's `Value('d', ...)`: print it, then change it.
        ["value-f64", name, new] => {
            let v = ok(Value::<f64>::open(name));
            say(&format!("{:?}", v.load(Relaxed)));
            let new: f64 = new
                .parse()
                .unwrap_or_else(|_| fail(&format!("not a float: {new}")));
            v.update(|x| *x = new);
        }
        ["add-f64", name, n] => {
            let v = ok(Value::<f64>::open(name));
            for _ in 0..num(n) {
                v.fetch_add(1.0, Relaxed);
            }
        }
        // Python's `Array('i', ...)`: print it, then add 10 * (i + 1) to element i, as one update.
        ["array-i32", name] => {
            let a = ok(Array::<i32>::open(name));
            let now: Vec<String> = a.snapshot().iter().map(i32::to_string).collect();
            say(&now.join(" "));
            a.update(|v| {
                for (i, x) in v.iter_mut().enumerate() {
                    *x += 10 * (i as i32 + 1);
                }
            });
            a[0].fetch_add(1000, Relaxed);
        }
        // Open with a type and report how it went: `ok` or the error's variant and message.
        ["try-open", what, name] => match *what {
            "value-f64" => report(Value::<f64>::open(name)),
            "value-f32" => report(Value::<f32>::open(name)),
            "value-u64" => report(Value::<u64>::open(name)),
            "array-i32" => report(Array::<i32>::open(name)),
            "array-i64" => report(Array::<i64>::open(name)),
            "mixed" => report(Shared::<Mixed>::open(name)),
            "ledger" => report(Shared::<Ledger>::open(name)),
            other => fail(&format!("unknown type {other}")),
        },
        // Take snapshots until `done` is set and at least `min` were taken; print how many
        // were taken, how many were torn, and how many distinct values were seen.
        ["ledger-reader", name, min] => {
            let s = ok(Shared::<Ledger>::open(name));
            let min = num(min);
            let (mut taken, mut torn, mut changes) = (0u64, 0u64, 0u64);
            let mut last = None;
            say("reading");
            loop {
                let v = s.snapshot();
                taken += 1;
                if !v.consistent() {
                    torn += 1;
                    if torn < 5 {
                        eprintln!("py-peer: torn snapshot {v:?}");
                    }
                }
                if last != Some(v.d) {
                    changes += 1;
                    last = Some(v.d);
                }
                if v.done != 0 && taken >= min {
                    break;
                }
            }
            say(&format!("{taken} {torn} {changes}"));
        }
        // `n` updates keeping `Ledger` consistent, then `done = 1`.
        ["ledger-writer", name, n] => {
            let s = ok(Shared::<Ledger>::open(name));
            for i in 0..num(n) {
                s.update(|v| {
                    let updates = v.updates + 1;
                    *v = Ledger {
                        updates,
                        ..Ledger::at(i + 1)
                    };
                });
            }
            s.update(|v| v.done = 1);
        }
        // Load the words until `stop`; print how many loads and how many were neither pattern.
        ["words-reader", name] => {
            let s = ok(Shared::<Words>::open(name));
            let (mut loads, mut torn) = (0u64, 0u64);
            say("reading");
            while s.stop.load(Relaxed) == 0 {
                let (w, x, h) = (s.w.load(Relaxed), s.x.load(Relaxed), s.h.load(Relaxed));
                loads += 1;
                if !W.contains(&w) || !X.iter().any(|p| p.to_bits() == x.to_bits()) {
                    torn += 1;
                }
                if !H.contains(&h) {
                    torn += 1;
                }
            }
            say(&format!("{loads} {torn}"));
        }
        // Store the words' patterns alternately `n` times, then set `stop`.
        ["words-writer", name, n] => {
            let s = ok(Shared::<Words>::open(name));
            for i in 0..num(n) as usize {
                s.w.store(W[i % 2], Relaxed);
                s.x.store(X[i % 2], Relaxed);
                s.h.store(H[i % 2], Relaxed);
            }
            s.stop.store(1, Relaxed);
        }
        // Take the lock of a `Value<u64>` and wait to be killed holding it.
        ["lock-and-hang", name] => {
            let v = ok(Value::<u64>::open(name));
            let _guard = v.lock().unwrap_or_else(|p| p.into_inner());
            say("locked");
            std::thread::sleep(Duration::from_secs(3600));
        }
        // Take the lock of a `Value<u64>` within `ms`, add 1 under it, and say how it was found:
        // `clean`, `poisoned` or `busy`, and how long it took in ms.
        ["lock-once", name, ms] => {
            let v = ok(Value::<u64>::open(name));
            let start = Instant::now();
            let (guard, how) = match v.try_lock_for(Duration::from_millis(num(ms))) {
                Ok(g) => (g, "clean"),
                Err(TryLockError::Poisoned(p)) => (p.into_inner(), "poisoned"),
                Err(TryLockError::WouldBlock) => {
                    say(&format!("busy {}", start.elapsed().as_millis()));
                    return;
                }
            };
            guard.fetch_add(1, Relaxed);
            drop(guard);
            say(&format!("{how} {}", start.elapsed().as_millis()));
        }
        // Start an update of an `Array<i64>` of 3 (a += 1, b -= 1, c += 1) and block inside its
        // closure, holding the lock, until killed (the closure runs before the write itself, so
        // the sequence counter is still even).
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
        // Take the lock of an `Array<i64>` within `ms`; say how it was found (`clean`,
        // `poisoned`, `busy`), how long it took in ms, and the elements seen under it.
        ["lock-array", name, ms] => {
            let a = ok(Array::<i64>::open(name));
            let start = Instant::now();
            let (guard, how) = match a.try_lock_for(Duration::from_millis(num(ms))) {
                Ok(g) => (g, "clean"),
                Err(TryLockError::Poisoned(p)) => (p.into_inner(), "poisoned"),
                Err(TryLockError::WouldBlock) => {
                    say(&format!("busy {}", start.elapsed().as_millis()));
                    return;
                }
            };
            let took = start.elapsed().as_millis();
            let v: Vec<String> = guard.iter().map(|x| x.load(Relaxed).to_string()).collect();
            drop(guard);
            say(&format!("{how} {took} {}", v.join(" ")));
        }
        // Set every element of an `Array<i64>` to 1, 2, 3, ... in one update each, until
        // killed.
        ["update-forever", name] => {
            let a = ok(Array::<i64>::open(name));
            for k in 1.. {
                a.update(|v| v.iter_mut().for_each(|x| *x = k));
                if k == 1 {
                    say("started");
                }
            }
        }
        // A consistent snapshot of an `Array<i64>`, and how long it took in ms.
        ["snapshot-i64", name] => {
            let a = ok(Array::<i64>::open(name));
            let start = Instant::now();
            let v: Vec<String> = a.snapshot().iter().map(i64::to_string).collect();
            say(&format!("{} {}", v.join(" "), start.elapsed().as_millis()));
        }
        _ => fail(&format!("unknown role {args:?}")),
    }
}
