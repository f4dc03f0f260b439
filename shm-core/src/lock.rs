//! The segment's lock: a robust, process-shared pthread mutex in the header.

use std::io;

use crate::header::LockWord;
use crate::{Error, Result};

/// Initialises the mutex in a new segment's header: process-shared, so every process that maps
/// the segment can use it, and robust, so a holder that dies does not block the others forever.
pub(crate) fn init(name: &str, word: &LockWord) -> Result<()> {
    let fail = |op: &'static str, code: i32| Error::Io {
        name: name.to_owned(),
        op,
        source: io::Error::from_raw_os_error(code),
    };
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is writable memory for a mutexattr; init fills it in.
    let rc = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
    if rc != 0 {
        return Err(fail("pthread_mutexattr_init", rc));
    }
    let attr_ptr = attr.as_mut_ptr();
    // SAFETY: `attr_ptr` was initialised above; the calls only set fields of it, and `word` is
    // 64 bytes aligned to 64, room for a pthread_mutex_t (asserted in header.rs), in the
    // segment this process just created and that nobody uses before it is ready.
    let rc = unsafe {
        let mut rc = libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED);
        if rc == 0 {
            rc = libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST);
        }
        if rc == 0 {
            rc = libc::pthread_mutex_init(word.0.get() as *mut libc::pthread_mutex_t, attr_ptr);
        }
        libc::pthread_mutexattr_destroy(attr_ptr);
        rc
    };
    if rc != 0 {
        return Err(fail("pthread_mutex_init", rc));
    }
    Ok(())
}
