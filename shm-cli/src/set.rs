//! `shm set`: write one field, parsed by its type code, under the segment's lock.

use std::time::{Duration, Instant};

use shm_core::inspect::{FieldError, RawSegment};

use crate::out::{emit, error};
use crate::units;

/// How long `set` waits for the lock before it says who holds it.
const NOTICE_AFTER: Duration = Duration::from_secs(1);

pub fn run(name: &str, field: &str, value: &str, timeout: Duration) -> Result<(), String> {
    let raw = RawSegment::open(name).map_err(|e| e.to_string())?;
    let start = Instant::now();
    // Wait a second; if the lock is still held, say by whom (once), then wait the rest.
    let first = raw.set_timeout(field, value, timeout.min(NOTICE_AFTER));
    let written = match first {
        Err(FieldError::LockTimeout { holder, .. }) if timeout > NOTICE_AFTER => {
            let by = holder.map_or_else(
                || "its lock word names no holder".to_owned(),
                |h| format!("held by {h}"),
            );
            error(&format!(
                "segment `{name}`: waiting for its lock, {by}; giving up after {} (--timeout)",
                units::interval(timeout)
            ));
            raw.set_timeout(field, value, timeout.saturating_sub(start.elapsed()))
        }
        other => other,
    };
    let w = written.map_err(|mut e| {
        if let FieldError::LockTimeout { waited, .. } = &mut e {
            // The whole wait, both parts.
            *waited = start.elapsed();
            return format!("{e}; --timeout sets how long to wait");
        }
        e.to_string()
    })?;
    emit(&format!("{name}: {} = {} (was {})\n", w.path, w.new, w.old));
    if w.poisoned {
        error(&format!(
            "note: the lock of `{name}` is poisoned (a holder of it died or panicked and what it may have half-changed was not repaired); the value was written, and the lock stays poisoned until the program that owns the data calls clear_poison()"
        ));
    }
    Ok(())
}
