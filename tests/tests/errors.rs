//! Every error a user can meet when creating or opening a segment, provoked on purpose.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::time::{Duration, Instant};

use shm_core::{Array, Error, Options, Value};
use tests::{requires_root, Child, TestName};

tests::child_roles!();

fn assert_names_segment(e: &Error, name: &str) {
    assert!(
        e.to_string().contains(name),
        "message does not name the segment: {e}"
    );
    assert_eq!(e.name(), name);
}

#[test]
fn invalid_names_are_refused_before_reaching_the_system() {
    let long = "x".repeat(256);
    for (bad, why) in [
        ("", "empty"),
        ("a/b", "'/'"),
        ("/lead", "'/'"),
        ("nul\0byte", "NUL"),
        (long.as_str(), "255"),
        ("..", "directories"),
    ] {
        for e in [
            Value::<i32>::create(bad, 0).unwrap_err(),
            Value::<i32>::open(bad).unwrap_err(),
            Array::<i32>::open_or_create(bad, &[1]).unwrap_err(),
            shm_core::remove(bad).unwrap_err(),
        ] {
            match &e {
                Error::InvalidName { name, reason } => {
                    assert_eq!(name, bad);
                    assert!(reason.contains(why), "{bad:?}: {reason}");
                }
                other => panic!("{bad:?}: expected InvalidName, got {other:?}"),
            }
        }
    }
    // The longest allowed name works.
    let max = TestName::new("max");
    let name = format!("{}{}", &*max, "y".repeat(255 - max.len()));
    let v = Value::<i32>::create(&name, 1).unwrap();
    assert_eq!(
        Value::<i32>::open(&name)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(v);
}

#[test]
fn create_on_an_existing_name_is_already_exists() {
    let name = TestName::new("exists");
    let _v = Value::<i32>::create(&name, 1).unwrap();
    let e = Value::<i32>::create(&name, 2).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_names_segment(&e, &name);
    // The original is untouched.
    assert_eq!(
        Value::<i32>::open(&name)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn open_of_a_missing_name_is_not_found() {
    let name = TestName::new("missing");
    let e = Value::<i32>::open(&name).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_names_segment(&e, &name);
    assert!(matches!(
        shm_core::remove(&name),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn opening_an_i32_as_f32_is_a_layout_mismatch() {
    let name = TestName::new("mismatch");
    let _v = Value::<i32>::create(&name, 1).unwrap();
    let e = Value::<f32>::open(&name).unwrap_err();
    let Error::LayoutMismatch { detail, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(detail, "segment holds i32, this program expects f32");
    assert_names_segment(&e, &name);
    // Same type, other shape: a single value is not an array, nor the reverse.
    let e = Array::<i32>::open(&name).unwrap_err();
    let Error::LayoutMismatch { detail, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        detail,
        "the segment holds a single i32, this program expects an array of i32"
    );
}

#[test]
fn array_length_and_element_type_are_checked() {
    let name = TestName::new("arrlen");
    let _a = Array::<[i32; 2]>::create(&name, &[[1, 2], [3, 4]]).unwrap();
    let e = Array::<[i32; 3]>::open(&name).unwrap_err();
    let Error::LayoutMismatch { detail, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        detail,
        "segment holds [i32; 2], this program expects [i32; 3]"
    );
    let e = Array::<[i32; 2]>::open_or_create(&name, &[[0, 0]; 3]).unwrap_err();
    let Error::LayoutMismatch { detail, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        detail,
        "the segment holds an array of 2 [i32; 2], this program expects an array of 3 [i32; 2]"
    );
    assert_eq!(Array::<[i32; 2]>::open(&name).unwrap().len(), 2);
}

#[test]
fn an_object_truncated_below_a_header_is_corrupt() {
    let name = TestName::new("short");
    name.plant(&[0u8; 100], 0o600);
    let e = Value::<i32>::open(&name).unwrap_err();
    let Error::Corrupt { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("100 bytes"), "{reason}");
    assert_names_segment(&e, &name);
}

#[test]
fn a_segment_cut_short_after_creation_is_corrupt() {
    let name = TestName::new("cut");
    let _a = Array::<u64>::create(&name, &[1; 64]).unwrap();
    let f = fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap();
    f.set_len(400).unwrap();
    let e = Array::<u64>::open(&name).unwrap_err();
    let Error::Corrupt { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("does not add up"), "{reason}");
}

#[test]
fn an_object_of_random_bytes_is_corrupt() {
    let name = TestName::new("garbage");
    // A fixed xorshift stream: reproducible garbage.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    name.plant(&bytes, 0o600);
    let e = Value::<i32>::open(&name).unwrap_err();
    let Error::Corrupt { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("magic"), "{reason}");
    assert_names_segment(&e, &name);
    // open_or_create must not treat garbage as something to wait for or overwrite.
    let e = Value::<i32>::open_or_create(&name, 0).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
}

#[test]
fn a_segment_open_to_everyone_is_refused() {
    let name = TestName::new("mode666");
    let _v = Value::<i32>::create_with(&name, 5, &Options::new().mode(0o666)).unwrap();
    let mode = fs::metadata(name.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    let e = Value::<i32>::open(&name).unwrap_err();
    let Error::PermissionDenied { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("0o666"), "{reason}");
    assert_names_segment(&e, &name);
    // Asking for that much access explicitly is fine.
    Value::<i32>::open_with(&name, &Options::new().mode(0o666)).unwrap();
}

#[test]
fn a_planted_world_writable_object_is_refused_by_create_and_open() {
    let name = TestName::new("planted");
    name.plant(&[0u8; 4096], 0o666);
    assert!(matches!(
        Value::<i32>::create(&name, 0),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Value::<i32>::open(&name),
        Err(Error::PermissionDenied { .. })
    ));
    assert!(matches!(
        Value::<i32>::open_or_create(&name, 0),
        Err(Error::PermissionDenied { .. })
    ));
}

#[test]
fn a_symlink_under_the_name_is_refused() {
    let target = TestName::new("target");
    let name = TestName::new("link");
    let _v = Value::<i32>::create(&target, 1).unwrap();
    std::os::unix::fs::symlink(target.path(), name.path()).unwrap();
    let e = Value::<i32>::open(&name).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(matches!(
        Value::<i32>::create(&name, 0),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
fn a_segment_owned_by_another_user_is_refused() {
    if !requires_root("makes another user's segment with chown") {
        return;
    }
    let name = TestName::new("foreign");
    let _v = Value::<i32>::create_with(&name, 1, &Options::new().keep(true)).unwrap();
    chown(name.path(), Some(12345), Some(12345)).unwrap();
    let e = Value::<i32>::open(&name).unwrap_err();
    let Error::PermissionDenied { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("uid 12345"), "{reason}");
    assert_names_segment(&e, &name);
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    // SAFETY: umask only sets this process's file-creation mask.
    let old = unsafe { libc::umask(0) };
    let name = TestName::new("umask0");
    let made = Value::<i32>::create(&name, 0);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let _v = made.unwrap();
    assert_eq!(
        fs::metadata(name.path()).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // SAFETY: as above.
    let old = unsafe { libc::umask(0o077) };
    let name = TestName::new("umask77");
    let made = Value::<i32>::create_with(&name, 0, &Options::new().mode(0o660));
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let _v = made.unwrap();
    assert_eq!(
        fs::metadata(name.path()).unwrap().permissions().mode() & 0o777,
        0o660
    );
}

#[test]
fn bad_modes_are_refused() {
    let name = TestName::new("badmode");
    for mode in [0o400, 0o700, 0o4600, 0o000] {
        let e = Value::<i32>::create_with(&name, 0, &Options::new().mode(mode)).unwrap_err();
        assert!(
            matches!(e, Error::PermissionDenied { .. }),
            "{mode:o}: {e:?}"
        );
        assert!(!name.exists());
    }
}

#[test]
fn a_creator_killed_before_ready_is_reported_not_waited_for() {
    let name = TestName::new("diedinit");
    let mut child = Child::spawn(&["hang-in-init", &name]);
    child.wait_for("initializing");
    // While it lives, an opener waits (here: up to 200 ms) and then gives up.
    let e = Value::<i32>::open_with(&name, &Options::new().wait(Duration::from_millis(200)))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    let pid = child.pid();
    child.kill9();
    let start = Instant::now();
    let long_wait = Options::new().wait(Duration::from_secs(30));
    let e = Value::<i32>::open_or_create_with(&name, 0, &long_wait).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    let Error::CreatorDied { pid: reported, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*reported, pid);
    assert_names_segment(&e, &name);
    assert!(matches!(
        Value::<i32>::open(&name),
        Err(Error::CreatorDied { .. })
    ));
    // The way out the message gives works.
    shm_core::remove(&name).unwrap();
    assert!(Value::<i32>::open_or_create(&name, 3).unwrap().is_owner());
}

#[test]
fn an_empty_object_nobody_finishes_times_out() {
    let name = TestName::new("empty");
    name.plant(&[], 0o600);
    let start = Instant::now();
    let e = Value::<i32>::open_with(&name, &Options::new().wait(Duration::from_millis(150)))
        .unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_names_segment(&e, &name);
}

#[test]
fn a_directory_under_the_name_is_refused() {
    let name = TestName::new("dir");
    fs::create_dir(name.path()).unwrap();
    let e = Value::<i32>::open(&name).unwrap_err();
    fs::remove_dir(name.path()).unwrap();
    let Error::PermissionDenied { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("not a regular"), "{reason}");
}
