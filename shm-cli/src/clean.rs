//! `shm rm` and `shm gc`: remove segments by name, or those their dead creators left behind.

use shm_core::inspect::{self, EntryKind, SHM_DIR};
use shm_core::Error;

use crate::out::{emit, error};

/// Removes each named segment; the others are still tried when one fails. Every failure is
/// reported on its own line.
pub fn rm(names: &[String]) -> Result<(), String> {
    let mut failed = false;
    for name in names {
        match remove_one(name) {
            Ok(()) => emit(&format!("removed {name}\n")),
            Err(message) => {
                error(&message);
                failed = true;
            }
        }
    }
    if failed {
        // Already reported, one line per name.
        Err(String::new())
    } else {
        Ok(())
    }
}

fn remove_one(name: &str) -> Result<(), String> {
    let entry = inspect::examine(name).map_err(|e| e.to_string())?;
    match &entry.kind {
        EntryKind::Segment(_) | EntryKind::Broken(_) => {
            shm_core::remove(name).map_err(|e| e.to_string())
        }
        EntryKind::Denied(Error::PermissionDenied { reason, .. }) => Err(format!(
            "not removing `{name}`: it is not this user's to remove: {reason}"
        )),
        EntryKind::Foreign(reason) => Err(format!(
            "not removing `{name}`: it is not an shm-core segment ({reason}); `rm {SHM_DIR}/{name}` removes any object"
        )),
        other => Err(format!("not removing `{name}`: {other:?}")),
    }
}

/// Removes (or with `dry_run` lists) the stale segments whose name starts with `prefix`.
pub fn gc(dry_run: bool, prefix: Option<&str>) -> Result<(), String> {
    let stale: Vec<_> = inspect::stale()
        .map_err(|e| format!("cannot read {SHM_DIR}: {e}"))?
        .into_iter()
        .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
        .collect();
    if stale.is_empty() {
        emit("no stale segments\n");
        return Ok(());
    }
    let mut failed = false;
    for s in &stale {
        let why = if s.ready {
            format!("creator {} is dead and did not keep it", s.creator_pid)
        } else {
            format!("creator {} died before it was ready", s.creator_pid)
        };
        if dry_run {
            emit(&format!("would remove {} ({why})\n", s.name));
            continue;
        }
        match s.remove() {
            Ok(true) => emit(&format!("removed {} ({why})\n", s.name)),
            Ok(false) => emit(&format!(
                "left {}: it changed since it was examined (no longer stale)\n",
                s.name
            )),
            // Removed by someone else meanwhile: what was asked is done.
            Err(Error::NotFound { .. }) => {}
            Err(e) => {
                error(&e.to_string());
                failed = true;
            }
        }
    }
    if failed {
        Err(String::new())
    } else {
        Ok(())
    }
}
