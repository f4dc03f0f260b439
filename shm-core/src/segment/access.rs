//! Name and permission checks: which names a segment may have, which modes it may be created
//! with, and which objects this user may open, with the reason for each refusal.

use std::ffi::CString;

use super::Access;
use crate::{Error, Result};

/// Longest segment name, in bytes, without the leading `/` (`NAME_MAX` on Linux).
pub const MAX_NAME_LEN: usize = 255;

/// Checks a name before it reaches the system.
pub(crate) fn validate_name(name: &str) -> Result<CString> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.starts_with('/') {
        return invalid(
            "names are given without the leading '/' (`/dev/shm/web-stats` and `shm_open(\"/web-stats\")` are the segment `web-stats`)",
        );
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is longer than 255 bytes");
    }
    if name.contains('/') {
        return invalid("it contains '/'");
    }
    if name.contains('\0') {
        return invalid("it contains a NUL byte");
    }
    if name == "." || name == ".." {
        return invalid("`.` and `..` name directories");
    }
    // Cannot fail: NUL was refused above.
    CString::new(format!("/{name}")).map_err(|_| Error::InvalidName {
        name: name.to_owned(),
        reason: "it contains a NUL byte",
    })
}

/// This user's groups: the supplementary groups and the effective group.
fn user_groups() -> Vec<libc::gid_t> {
    // SAFETY: with a size of 0, getgroups only returns the count and writes nothing.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0; n.max(0) as usize];
    // SAFETY: `groups` has room for `n` entries, which is what we pass.
    let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    // SAFETY: getegid cannot fail and takes no arguments.
    groups.push(unsafe { libc::getegid() });
    groups
}

/// The user this process acts as.
pub(super) fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

/// Who owns an object and how it is open: what a refusal states.
#[derive(Clone, Copy, Debug)]
pub(super) struct Owner {
    pub(super) uid: u32,
    gid: u32,
    /// Permission bits.
    mode: u32,
}

impl Owner {
    fn of_stat(st: &libc::stat) -> Owner {
        Owner {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o777,
        }
    }

    /// The object under `name` in /dev/shm, as `lstat` sees it now.
    pub(super) fn of_name(name: &str) -> Option<Owner> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(std::path::Path::new(crate::inspect::SHM_DIR).join(name))
            .ok()?;
        Some(Owner {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o777,
        })
    }

    /// `uid 1000 (group 1000, mode 0o600)`.
    pub(super) fn describe(&self) -> String {
        format!(
            "uid {} (group {}, mode {:#o})",
            self.uid, self.gid, self.mode
        )
    }
}

/// Why this user may not open another user's object `owner` accepting `asked` (the mode the
/// opener accepts), or `None` if it may: only through the group, which needs all three of: the
/// opener asked for group access, this user is in the object's group, and the object's mode
/// gives the group read and write access. Every condition that fails is named.
///
/// A read-only attach needs only read access: the group's read bit, and a program that asked for
/// at least group read. A read-write attach refused where a read-only one would be let in says so.
fn other_users_object(
    owner: &Owner,
    me: u32,
    asked: u32,
    in_group: bool,
    access: Access,
) -> Option<String> {
    let (need, what) = match access {
        Access::ReadWrite => (0o060, "read and write"),
        Access::ReadOnly => (0o040, "read"),
    };
    let asked_group = asked & need != 0;
    let gives_group = owner.mode & need == need;
    if asked_group && in_group && gives_group {
        return None;
    }
    let mut why = Vec::new();
    if !in_group {
        why.push(format!("this user is not in its group {}", owner.gid));
    }
    if !gives_group {
        let mut reason = format!(
            "its mode {:#o} does not give its group {what} access",
            owner.mode
        );
        if access == Access::ReadWrite
            && in_group
            && other_users_object(owner, me, asked | 0o040, in_group, Access::ReadOnly).is_none()
        {
            reason.push_str(
                " (its group may read it: attach read-only with `open_readonly`, `shm_core.open(name, readonly=True)`, or the `shm` read commands)",
            );
        }
        why.push(reason);
    }
    if !asked_group {
        why.push(if why.is_empty() {
            format!(
                "this program did not ask for group access (it accepts mode {asked:#o}; open with `Options::new().mode(0o660)` to share a segment with its group)"
            )
        } else {
            format!("this program did not ask for group access (it accepts mode {asked:#o})")
        });
    }
    Some(format!(
        "it belongs to {}, not to this user (uid {me}): {}",
        owner.describe(),
        why.join("; ")
    ))
}

/// The reason for a refusal by the system (`EACCES` from `shm_open`) of the object `name`, found
/// with `lstat`: whose it is and what is missing; `None` if nothing explains it.
pub(super) fn explain_refusal(name: &str, asked: u32, access: Access) -> Option<String> {
    let owner = Owner::of_name(name)?;
    let me = effective_uid();
    if owner.uid != me {
        return other_users_object(
            &owner,
            me,
            asked,
            user_groups().contains(&owner.gid),
            access,
        );
    }
    let (need, what) = match access {
        Access::ReadWrite => (0o600, "read and write"),
        Access::ReadOnly => (0o400, "read"),
    };
    (owner.mode & need != need).then(|| {
        format!(
            "it belongs to this user (uid {me}) but its mode {:#o} does not let its owner {what} it",
            owner.mode
        )
    })
}

/// Refuses an object that is not a regular file, belongs to another user (unless group access
/// was asked for, it belongs to one of our groups, and its mode gives the group access), or is
/// open beyond `mode`.
pub(super) fn check_ownership(
    name: &str,
    st: &libc::stat,
    mode: u32,
    access: Access,
) -> Result<()> {
    let deny = |reason: String| {
        Err(Error::PermissionDenied {
            name: name.to_owned(),
            reason,
        })
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return deny(crate::error::NOT_REGULAR.into());
    }
    let me = effective_uid();
    if st.st_uid != me {
        let owner = Owner::of_stat(st);
        let in_group = user_groups().contains(&st.st_gid);
        if let Some(reason) = other_users_object(&owner, me, mode, in_group, access) {
            return deny(reason);
        }
    }
    let beyond = st.st_mode & 0o777 & !mode;
    if beyond != 0 {
        return deny(format!(
            "its mode {:#o} opens it to more users than the {mode:#o} this program accepts",
            st.st_mode & 0o777
        ));
    }
    Ok(())
}

/// Refuses a mode a segment may not have: one without read and write for its owner, or with
/// bits beyond read and write.
pub(super) fn check_mode(name: &str, mode: u32) -> Result<()> {
    if mode & !0o666 != 0 || mode & 0o600 != 0o600 {
        return Err(Error::PermissionDenied {
            name: name.to_owned(),
            reason: format!(
                "mode {mode:#o} is not allowed: it must give the owner read and write, and may add group and other read/write (e.g. 0o600, 0o660)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_slash_is_refused_with_what_to_write() {
        let e = validate_name("/web-stats").unwrap_err();
        let Error::InvalidName { name, reason } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(name, "/web-stats");
        assert!(
            reason.starts_with("names are given without the leading '/'"),
            "{reason}"
        );
        // Not the generic "contains '/'", which would not say what to write.
        assert!(!reason.contains("contains"), "{reason}");
        assert!(validate_name("web-stats").is_ok());
        assert!(matches!(
            validate_name("a/b"),
            Err(Error::InvalidName {
                reason: "it contains '/'",
                ..
            })
        ));
    }

    /// Every way into another user's object, and the refusal's reason for each way that fails:
    /// owner, group and mode always, then each condition that fails, and the hint to ask for
    /// group access only when asking is all that is missing.
    #[test]
    fn another_users_object_is_refused_for_the_reasons_that_hold() {
        let seg = |mode| Owner {
            uid: 1000,
            gid: 4242,
            mode,
        };
        let why = |owner: Owner, asked, in_group| {
            other_users_object(&owner, 77, asked, in_group, Access::ReadWrite)
        };
        let head = "it belongs to uid 1000 (group 4242, mode 0o660), not to this user (uid 77): ";
        // The one way in: asked, in the group, and the group may read and write.
        assert_eq!(why(seg(0o660), 0o660, true), None);
        assert_eq!(why(seg(0o666), 0o666, true), None);
        assert_eq!(
            why(seg(0o660), 0o660, false).unwrap(),
            format!("{head}this user is not in its group 4242")
        );
        assert_eq!(
            why(seg(0o660), 0o600, true).unwrap(),
            format!("{head}this program did not ask for group access (it accepts mode 0o600; open with `Options::new().mode(0o660)` to share a segment with its group)")
        );
        assert_eq!(
            why(seg(0o660), 0o600, false).unwrap(),
            format!("{head}this user is not in its group 4242; this program did not ask for group access (it accepts mode 0o600)")
        );
        assert_eq!(
            why(seg(0o640), 0o660, true).unwrap(),
            "it belongs to uid 1000 (group 4242, mode 0o640), not to this user (uid 77): its mode 0o640 does not give its group read and write access (its group may read it: attach read-only with `open_readonly`, `shm_core.open(name, readonly=True)`, or the `shm` read commands)"
        );
        // Read-only: the group's read bit is enough, and asking for group read is.
        let ro = |owner: Owner, asked, in_group| {
            other_users_object(&owner, 77, asked, in_group, Access::ReadOnly)
        };
        assert_eq!(ro(seg(0o640), 0o640, true), None);
        assert_eq!(ro(seg(0o660), 0o640, true), None);
        assert_eq!(
            ro(seg(0o600), 0o640, true).unwrap(),
            "it belongs to uid 1000 (group 4242, mode 0o600), not to this user (uid 77): its mode 0o600 does not give its group read access"
        );
        // Outside the group, no hint to attach read-only: it would be refused too.
        assert!(!why(seg(0o640), 0o660, false).unwrap().contains("read-only"));
        assert_eq!(
            why(seg(0o600), 0o600, false).unwrap(),
            "it belongs to uid 1000 (group 4242, mode 0o600), not to this user (uid 77): this user is not in its group 4242; its mode 0o600 does not give its group read and write access; this program did not ask for group access (it accepts mode 0o600)"
        );
        // Group access was asked: never told to ask for it.
        for mode in [0o600, 0o640, 0o660] {
            for in_group in [false, true] {
                if let Some(r) = why(seg(mode), 0o660, in_group) {
                    assert!(!r.contains("ask"), "{r}");
                }
            }
        }
    }
}
