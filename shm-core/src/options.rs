//! Options for creating and opening segments.

use std::time::Duration;

/// How to create or open a segment: access mode, lifetime, and how long to wait for a segment
/// that another process is still creating.
///
/// ```
/// use shm_core::{Options, Value};
/// use std::time::Duration;
///
/// # let name = format!("doc-options-{}", std::process::id());
/// let opts = Options::new().mode(0o660).wait(Duration::from_millis(200));
/// let v = Value::<u32>::create_with(&name, 1, &opts)?;
/// let w = Value::<u32>::open_with(&name, &opts)?; // accepts a segment open to the group
/// # drop(w); drop(v);
/// # Ok::<(), shm_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) mode: u32,
    pub(crate) keep: bool,
    pub(crate) wait: Duration,
    pub(crate) before_ready: Option<fn()>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: 0o600,
            keep: false,
            wait: Duration::from_secs(1),
            before_ready: None,
        }
    }
}

impl Options {
    /// Mode `0o600` (this user only), not kept, wait up to one second.
    pub fn new() -> Options {
        Options::default()
    }

    /// Permission bits. At create: exactly these, whatever the umask. At open: the most access
    /// this program accepts: a segment open to more users is refused, and one owned by another
    /// user is accepted only if group access (`0o060`) is asked for and it belongs to one of this
    /// process's groups. Must include `0o600`; only read/write bits are allowed. Default `0o600`.
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = mode;
        self
    }

    /// Keep the segment after the creating handle is dropped (default: the creator removes it).
    /// A kept segment stays until [`remove`](crate::remove) or a reboot.
    pub fn keep(mut self, keep: bool) -> Options {
        self.keep = keep;
        self
    }

    /// How long `open` and `open_or_create` wait for a segment that another process is still
    /// creating. Default one second; zero means do not wait.
    pub fn wait(mut self, wait: Duration) -> Options {
        self.wait = wait;
        self
    }

    /// Runs `hook` during creation, after the header is written and before the segment is marked
    /// ready. For tests that kill a creator at that moment.
    #[doc(hidden)]
    pub fn before_ready(mut self, hook: fn()) -> Options {
        self.before_ready = Some(hook);
        self
    }
}
