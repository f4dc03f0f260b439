//! `shm rm` and `shm gc`: remove segments by name, or those their dead creators left behind.

use shm_core::inspect::{self, EntryKind, SHM_DIR};
use shm_core::Error;

use crate::out::{emit, error};

/// Removes each named segment; the others are still tried when one fails. Every failure is
/// reported on its own line. Without `force`, a segment whose creator is alive is refused.
pub fn rm(names: &[String], force: bool) -> Result<(), String> {
    let mut failed = false;
    for name in names {
        match remove_one(name, force) {
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

fn remove_one(name: &str, force: bool) -> Result<(), String> {
    let entry = inspect::examine(name).map_err(|e| e.to_string())?;
    match &entry.kind {
        EntryKind::Segment(info) if info.creator_alive && !force => Err(format!(
            "not removing `{name}`: its creator, pid {}, is alive and may still be using it; `shm rm --force {name}` removes it anyway",
            info.creator_pid
        )),
        EntryKind::Broken(Error::Timeout { .. }) if !force => Err(format!(
            "not removing `{name}`: it is still being created; `shm rm --force {name}` removes it anyway"
        )),
        EntryKind::Segment(_) | EntryKind::Broken(_) => {
            shm_core::remove(name).map_err(|e| e.to_string())
        }
        EntryKind::Journal(j) if j.orphan => shm_core::remove(name).map_err(|e| e.to_string()),
        EntryKind::Journal(j) => Err(format!(
            "not removing `{name}`: it is the side journal of `{}`, which needs it; `shm rm {}` removes both",
            j.segment, j.segment
        )),
        EntryKind::Denied(Error::PermissionDenied { reason, .. }) => Err(format!(
            "not removing `{name}`: it is not this user's to remove: {reason}"
        )),
        EntryKind::Foreign(reason) => Err(format!(
            "not removing `{name}`: it is not an shm-core segment ({reason}); `rm {SHM_DIR}/{name}` removes any object"
        )),
        other => Err(format!("not removing `{name}`: {other:?}")),
    }
}

/// Reads `gc --prefix`: an empty prefix (an unset variable in a script) would select every stale
/// segment, which is what leaving the option out asks for; it is refused instead.
pub fn parse_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(
            "the prefix is empty, which would select every segment; leave out --prefix to consider them all"
                .to_owned(),
        );
    }
    Ok(text.to_owned())
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
        let why = if let Some(segment) = &s.journal_of {
            format!("side journal of `{segment}`, which is gone")
        } else if s.ready {
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
