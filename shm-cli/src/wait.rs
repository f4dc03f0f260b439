//! `shm wait`: block until a field compares with a value, for shell scripts.
//!
//! Exit status as `grep`'s: 0 when the comparison holds, 1 when it did not hold within
//! --timeout, 2 on any error (usage, no such segment or field, a value the field cannot hold,
//! the segment removed while waited on).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use shm_core::inspect::{Compare, RawSegment};

use crate::out::{emit, error};
use crate::units;

/// How often a wait looks whether the segment was removed meanwhile.
const CHECK_REMOVED: Duration = Duration::from_millis(500);

/// The exit status of an error (not a timeout).
const ERROR: u8 = 2;

/// OP's parser: `==`, `!=`, `<`, `<=`, `>`, `>=`.
pub fn parse_op(text: &str) -> Result<Compare, String> {
    text.parse()
}

pub fn run(
    name: &str,
    field: &str,
    op: Compare,
    value: &str,
    timeout: Option<Duration>,
) -> ExitCode {
    let fail = |message: &str| {
        error(message);
        ExitCode::from(ERROR)
    };
    // Read-write, so as to register as a waiter and be woken at once; a user who may only read
    // waits read-only, seeing each change at its re-check (within 100 ms).
    let raw = match RawSegment::open(name) {
        Ok(raw) => raw,
        Err(shm_core::Error::PermissionDenied { .. }) => match RawSegment::open_readonly(name) {
            Ok(raw) => raw,
            Err(e) => return fail(&e.to_string()),
        },
        Err(e) => return fail(&e.to_string()),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = deadline.map_or(CHECK_REMOVED, |d| {
            d.saturating_duration_since(Instant::now())
                .min(CHECK_REMOVED)
        });
        match raw.wait_for(field, op, value, slice) {
            Ok(Some(now)) => {
                emit(&format!("{name}: {field} = {now}\n"));
                return ExitCode::SUCCESS;
            }
            Ok(None) => {}
            Err(e) => return fail(&e.to_string()),
        }
        if let (Some(d), Some(t)) = (deadline, timeout) {
            if Instant::now() >= d {
                let now = raw
                    .get(field)
                    .map_or_else(|e| e.to_string(), |v| v.to_string());
                error(&format!(
                    "segment `{name}`: `{field} {op} {value}` did not hold within {} (--timeout); `{field}` is {now}",
                    units::interval(t)
                ));
                return ExitCode::FAILURE;
            }
        }
        if raw.is_removed() {
            return fail(&format!(
                "segment `{name}` was removed while waiting for `{field} {op} {value}`"
            ));
        }
    }
}
