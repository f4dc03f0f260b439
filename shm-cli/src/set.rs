//! `shm set`: write one field, parsed by its type code, under the segment's lock.

use shm_core::inspect::RawSegment;

use crate::out::{emit, error};

pub fn run(name: &str, field: &str, value: &str) -> Result<(), String> {
    let raw = RawSegment::open(name).map_err(|e| e.to_string())?;
    let w = raw.set(field, value).map_err(|e| e.to_string())?;
    emit(&format!("{name}: {} = {} (was {})\n", w.path, w.new, w.old));
    if w.poisoned {
        error(&format!(
            "note: the lock of `{name}` is poisoned (a holder of it died or panicked and what it may have half-changed was not repaired); the value was written, and the lock stays poisoned until the program that owns the data calls clear_poison()"
        ));
    }
    Ok(())
}
