//! Whole segments as another process could leave them: the bytes become the object under a
//! name, and `open` (typed and as an array) must give a valid handle or a clear error.
#![no_main]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shm_core::{Array, Error, Options, Shared};
use shm_fuzz::Probe;

fn check<T>(r: shm_core::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(
            Error::Corrupt { .. }
            | Error::LayoutMismatch { .. }
            | Error::Timeout { .. }
            | Error::CreatorDied { .. },
        ) => None,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let name = format!("shm-fuzz-{}", std::process::id());
    let path = format!("/dev/shm/{name}");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("write the object");
    f.write_all(data).expect("write the object");
    drop(f);
    let opts = Options::new().wait(Duration::ZERO);
    if let Some(s) = check(Shared::<Probe>::open_with(&name, &opts)) {
        s.count.fetch_add(1, Relaxed);
        // Whatever number and bytes are there read as a variant and a valid text.
        let _ = (s.state.load(Relaxed), s.state.try_load(Relaxed));
        let _ = s.note.load(Relaxed).as_str().len();
        let _ = s.try_lock_for(Duration::from_millis(1));
    }
    if let Some(a) = check(Array::<u32>::open_with(&name, &opts)) {
        for x in a.iter() {
            x.fetch_add(1, Relaxed);
        }
    }
    let _ = std::fs::remove_file(&path);
});
