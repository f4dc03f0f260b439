//! Writing to stdout and stderr: a closed pipe (`shm ls | head`) ends the command quietly instead
//! of panicking, and every error is one line.

use std::io::{self, Write};

/// Writes `text` to stdout and flushes it. If the reader has gone away, exits at once with
/// status 0: whoever closed the pipe has what they wanted.
pub fn emit(text: &str) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            error(&format!("cannot write to standard output: {e}"));
            std::process::exit(1);
        }
    }
}

/// Prints `shm: MESSAGE` to stderr, on one line. An empty message means the errors were already
/// printed, one per line, and prints nothing.
pub fn error(message: &str) {
    if message.is_empty() {
        return;
    }
    let one_line = message.replace(['\n', '\r'], " ");
    let _ = writeln!(io::stderr().lock(), "shm: {one_line}");
}
