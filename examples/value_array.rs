//! Python's `multiprocessing.Value` and `multiprocessing.Array` lesson, line by line, in Rust.
//!
//! ```text
//! cargo run --example value_array
//! ```
//!
//! Python's tutorial shares a number and an array with a child process:
//!
//! ```python
//! from multiprocessing import Process, Value, Array
//!
//! def f(n, a):
//!     n.value = 3.1415927
//!     for i in range(len(a)):
//!         a[i] = -a[i]
//!
//! if __name__ == '__main__':
//!     num = Value('d', 0.0)
//!     arr = Array('i', range(10))
//!     p = Process(target=f, args=(num, arr))
//!     p.start()
//!     p.join()
//!     print(num.value)
//!     print(arr[:])
//! ```
//!
//! Here the child is a second run of this binary that knows only the segments' names, the
//! type codes become Rust types (`'i'` is `i32`, `'d'` is `f64`), and one more thing works that
//! Python refuses: an array of arrays. Exit status 1 if the parent does not see what the child
//! wrote.

// 3.14 and 3.1415927 are the values of Python's lesson, copied as they are, not tries at π.
#![allow(clippy::approx_constant)]

use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, TypeCode, Value};

/// The segments' names, derived from the parent's pid so that runs do not collide.
struct Names {
    counter: String,
    num: String,
    arr: String,
    matrix: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        Names {
            counter: format!("{prefix}-counter"),
            num: format!("{prefix}-num"),
            arr: format!("{prefix}-arr"),
            matrix: format!("{prefix}-matrix"),
        }
    }
}

/// Python's `f(n, a)`, plus the counter and the matrix.
fn child(names: &Names) -> shm_core::Result<()> {
    let counter = Value::<i32>::open(&names.counter)?;
    let num = Value::<f64>::open(&names.num)?;
    let arr = Array::<i32>::open(&names.arr)?;
    let matrix = Array::<[i32; 3]>::open(&names.matrix)?;

    counter.fetch_add(1, Relaxed); // counter.value += 1, as one atomic step
    num.store(3.1415927, Relaxed); // n.value = 3.1415927
    for a in arr.iter() {
        // for i in range(len(a)): a[i] = -a[i]
        a.store(-a.load(Relaxed), Relaxed);
    }
    for row in matrix.iter() {
        for cell in row {
            cell.fetch_add(100, Relaxed);
        }
    }
    Ok(())
}

fn parent() -> Result<bool, Box<dyn std::error::Error>> {
    let prefix = format!("value-array-{}", std::process::id());
    let names = Names::new(&prefix);

    // Python: counter = Value('i', 0)
    let counter = Value::<i32>::create(&names.counter, 0)?;
    // Python: num = Value('d', 3.14)
    let num = Value::<f64>::create(&names.num, 3.14)?;
    // Python: arr = Array('i', [1, 2, 3, 4])
    let arr = Array::<i32>::create(&names.arr, &[1, 2, 3, 4])?;
    // Python: Array('i', [[1, 2, 3], [4, 5, 6]])
    //   TypeError: 'list' object cannot be interpreted as an integer
    // Here an array of arrays is an array like any other.
    let matrix = Array::<[i32; 3]>::create(&names.matrix, &[[1, 2, 3], [4, 5, 6]])?;

    println!(
        "before the child: counter = {}, num = {}, arr = {:?}, matrix = {:?}",
        counter.load(Relaxed),
        num.load(Relaxed),
        arr.snapshot(),
        matrix.snapshot()
    );

    // Python: p = Process(target=f, args=(num, arr)); p.start(); p.join()
    let status = Command::new(std::env::current_exe()?)
        .args(["child", &prefix])
        .status()?;

    let (c, n, a, m) = (
        counter.load(Relaxed),
        num.load(Relaxed),
        arr.snapshot(),
        matrix.snapshot(),
    );
    println!("after the child:  counter = {c}, num = {n}, arr = {a:?}, matrix = {m:?}");
    // Python: print(num.value); print(arr[:])
    println!("{n}\n{a:?}");

    println!("\nPython's type codes, each with one fixed width here:");
    println!("  code  Rust    bytes");
    for code in TypeCode::ALL {
        println!(
            "  {:<4}  {:<6}  {}",
            code.as_char(),
            code.rust_name(),
            code.size()
        );
    }
    for alias in ['l', 'L', 'c'] {
        if let Some(code) = TypeCode::from_char(alias) {
            println!(
                "  {alias:<4}  {:<6}  {}  (alias of '{}')",
                code.rust_name(),
                code.size(),
                code.as_char()
            );
        }
    }

    let right = status.success()
        && c == 1
        && n == 3.1415927
        && a == [-1, -2, -3, -4]
        && m == [[101, 102, 103], [104, 105, 106]];
    println!(
        "\n{}",
        if right {
            "the parent sees everything the child wrote"
        } else {
            "WRONG VALUES"
        }
    );
    Ok(right)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, prefix] if cmd == "child" => child(&Names::new(prefix))
            .map(|()| true)
            .map_err(Into::into),
        _ => parent(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("value_array: {e}");
            ExitCode::FAILURE
        }
    }
}
