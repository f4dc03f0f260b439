//! Descriptor bytes as another process could write them: parse, never panic; whatever parses
//! must describe itself consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shm_core::Descriptor;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Descriptor::parse(data) {
        assert!(d.align.is_power_of_two() && d.size % d.align == 0);
        // A parsed descriptor compares with itself without a difference.
        assert_eq!(d.first_difference(&d), None);
        let _ = d.to_string();
    }
});
