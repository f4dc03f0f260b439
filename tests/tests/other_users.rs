//! Other users: a process of another uid cannot open a default segment; with group access
//! asked for at create, a member of the group can. Every refusal names the owner, group and mode
//! and exactly the causes that hold. Needs root (as CI runs) to change uid.

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};

use shm_core::{Error, Options, Value};
use tests::{requires_root, run_as, TestName, NOBODY};

tests::child_roles!();

const GROUP: u32 = 4242;

/// Runs the role `try-open NAME MODE` as uid `NOBODY` with primary group `gid` (and no other
/// group): `ok VALUE`, or `err KIND: MESSAGE`.
fn open_as_other_user(name: &str, mode: &str, gid: u32) -> String {
    run_as(NOBODY, gid, &["try-open", name, mode])
}

/// The message of a refusal to open another user's `name`, owned by this (root) process.
fn refused(name: &TestName, gid: u32, mode: u32, causes: &str) -> String {
    format!(
        "err PermissionDenied: segment `{}`: permission denied: it belongs to uid 0 (group {gid}, mode {mode:#o}), not to this user (uid {NOBODY}): {causes}",
        &**name
    )
}

#[test]
fn another_user_cannot_open_a_default_segment() {
    if !requires_root("changes uid") {
        return;
    }
    let name = TestName::new("otheruser");
    let _v = Value::<i32>::create(&name, 5).unwrap();
    let gid = std::fs::metadata(name.path()).unwrap().gid();
    assert_ne!(gid, NOBODY);
    assert_eq!(
        open_as_other_user(&name, "600", NOBODY),
        refused(
            &name,
            gid,
            0o600,
            &format!("this user is not in its group {gid}; its mode 0o600 does not give its group read and write access; this program did not ask for group access (it accepts mode 0o600)")
        )
    );
    // Asking for group access does not help when not in the segment's group, nor when its mode
    // gives the group nothing; and asked, it is not suggested.
    assert_eq!(
        open_as_other_user(&name, "660", NOBODY),
        refused(
            &name,
            gid,
            0o600,
            &format!("this user is not in its group {gid}; its mode 0o600 does not give its group read and write access")
        )
    );
    // What `shm ls --all` shows for it (a tool asks for any access, and lists read-only): the
    // same causes, for read access.
    assert_eq!(
        run_as(NOBODY, NOBODY, &["try-examine", &name]),
        format!(
            "denied: segment `{}`: permission denied: it belongs to uid 0 (group {gid}, mode 0o600), not to this user (uid {NOBODY}): this user is not in its group {gid}; its mode 0o600 does not give its group read access",
            &*name
        )
    );
    // And `shm rm`: another user's object in the sticky /dev/shm.
    assert_eq!(
        run_as(NOBODY, NOBODY, &["try-remove", &name]),
        format!(
            "err PermissionDenied: segment `{}`: permission denied: it belongs to uid 0 (group {gid}, mode 0o600), not to this user (uid {NOBODY}); in /dev/shm (a sticky directory) only its owner or root may remove it",
            &*name
        )
    );
    assert!(name.exists());
}

#[test]
fn each_reason_a_group_member_is_refused_is_named() {
    if !requires_root("changes uid") {
        return;
    }
    // Not in the segment's group, although group access was asked on both sides.
    let name = TestName::new("notingroup");
    let _v = Value::<i32>::create_with(&name, 7, &Options::new().mode(0o660)).unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    assert_eq!(
        open_as_other_user(&name, "660", NOBODY),
        refused(
            &name,
            GROUP,
            0o660,
            &format!("this user is not in its group {GROUP}")
        )
    );
    // In the group, but this opener did not ask for group access: told how to.
    assert_eq!(
        open_as_other_user(&name, "600", GROUP),
        refused(
            &name,
            GROUP,
            0o660,
            "this program did not ask for group access (it accepts mode 0o600; open with `Options::new().mode(0o660)` to share a segment with its group)"
        )
    );
    // In the group and asking, but the segment's mode gives the group nothing.
    let private = TestName::new("nogroupbits");
    let _p = Value::<i32>::create(&private, 8).unwrap();
    chown(private.path(), None, Some(GROUP)).unwrap();
    assert_eq!(
        open_as_other_user(&private, "660", GROUP),
        refused(
            &private,
            GROUP,
            0o600,
            "its mode 0o600 does not give its group read and write access"
        )
    );
}

#[test]
fn a_group_member_can_open_when_group_access_was_asked() {
    if !requires_root("changes uid") {
        return;
    }
    let name = TestName::new("groupok");
    let _v = Value::<i32>::create_with(&name, 7, &Options::new().mode(0o660)).unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    assert_eq!(open_as_other_user(&name, "660", GROUP), "ok 7");
    // The member must ask for group access itself: by default it accepts only its own.
    assert!(open_as_other_user(&name, "600", GROUP).starts_with("err PermissionDenied: "));
}

#[test]
fn a_name_squatted_by_another_user_is_refused_by_create_and_open() {
    if !requires_root("changes uid") {
        return;
    }
    let name = TestName::new("squat");
    std::fs::write(name.path(), vec![0u8; 4096]).unwrap();
    std::fs::set_permissions(name.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
    chown(name.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    assert!(matches!(
        Value::<i32>::create(&name, 0),
        Err(Error::AlreadyExists { .. })
    ));
    let e = Value::<i32>::open(&name).unwrap_err();
    let Error::PermissionDenied { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        reason,
        "it belongs to uid 65534 (group 65534, mode 0o666), not to this user (uid 0): this user is not in its group 65534; this program did not ask for group access (it accepts mode 0o600)"
    );
    assert!(matches!(
        Value::<i32>::open_or_create(&name, 0),
        Err(Error::PermissionDenied { .. })
    ));
    // A symlink planted by another user is refused as well.
    let link = TestName::new("squatlink");
    std::os::unix::fs::symlink(name.path(), link.path()).unwrap();
    assert!(matches!(
        Value::<i32>::create(&link, 0),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Value::<i32>::open(&link),
        Err(Error::PermissionDenied { .. })
    ));
}
