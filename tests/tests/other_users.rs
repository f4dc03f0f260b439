//! Other users: a process of another uid cannot open a default segment; with group access
//! asked for at create, a member of the group can. Needs root (as CI runs) to change uid.

use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use shm_core::{Error, Options, Value};
use tests::{child_bin, is_root, TestName};

const NOBODY: u32 = 65534;
const GROUP: u32 = 4242;

/// Runs `shm-child try-open NAME MODE` as uid `NOBODY` with primary group `gid`.
fn open_as_other_user(name: &str, mode: &str, gid: u32) -> String {
    let out = Command::new(child_bin())
        .args(["try-open", name, mode])
        .uid(NOBODY)
        .gid(gid)
        .output()
        .expect("start the child as another user (is the build directory readable by others?)");
    assert!(
        out.status.success(),
        "child as uid {NOBODY} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn require_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("SHM_SKIP_ROOT_TESTS").is_some(),
        "this test changes uid and needs root; set SHM_SKIP_ROOT_TESTS=1 to skip it on purpose"
    );
    eprintln!("skipped: not root and SHM_SKIP_ROOT_TESTS is set");
    false
}

#[test]
fn another_user_cannot_open_a_default_segment() {
    if !require_root() {
        return;
    }
    let name = TestName::new("otheruser");
    let _v = Value::<i32>::create(&name, 5).unwrap();
    assert_eq!(
        open_as_other_user(&name, "600", NOBODY),
        "err PermissionDenied"
    );
    // Even asking for group access does not help when not in the segment's group.
    assert_eq!(
        open_as_other_user(&name, "660", NOBODY),
        "err PermissionDenied"
    );
}

#[test]
fn a_group_member_can_open_when_group_access_was_asked() {
    if !require_root() {
        return;
    }
    let name = TestName::new("groupok");
    let _v = Value::<i32>::create_with(&name, 7, &Options::new().mode(0o660)).unwrap();
    chown(name.path(), None, Some(GROUP)).unwrap();
    assert_eq!(open_as_other_user(&name, "660", GROUP), "ok 7");
    // The member must ask for group access itself: by default it accepts only its own.
    assert_eq!(
        open_as_other_user(&name, "600", GROUP),
        "err PermissionDenied"
    );
}

#[test]
fn a_name_squatted_by_another_user_is_refused_by_create_and_open() {
    if !require_root() {
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
    assert!(reason.contains("uid 65534"), "{reason}");
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
