//! Writes valid segments into `seeds/`, the fuzz targets' starting corpora: `cargo run --bin seed`.

use std::sync::atomic::Ordering::Relaxed;

use shm_core::{Array, Shared, Text};
use shm_fuzz::{Probe, ProbeState};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    std::fs::create_dir_all(dir.join("open_segment"))?;
    std::fs::create_dir_all(dir.join("parse_descriptor"))?;
    let pid = std::process::id();

    let name = format!("shm-fuzz-seed-s-{pid}");
    let s = Shared::<Probe>::create(&name, Probe::default())?;
    s.count.store(3, Relaxed);
    s.update(|p| {
        p.grid[1][2] = 9;
        p.state = ProbeState::Stopping;
        p.note = Text::truncated("seed");
    });
    let bytes = std::fs::read(format!("/dev/shm/{name}"))?;
    std::fs::write(dir.join("open_segment/probe"), &bytes)?;
    let desc_len = u32::from_ne_bytes(bytes[24..28].try_into()?) as usize;
    std::fs::write(
        dir.join("parse_descriptor/probe"),
        &bytes[256..256 + desc_len],
    )?;

    let name = format!("shm-fuzz-seed-a-{pid}");
    let _a = Array::<u32>::create(&name, &[1, 2, 3, 4])?;
    std::fs::write(
        dir.join("open_segment/array"),
        std::fs::read(format!("/dev/shm/{name}"))?,
    )?;
    Ok(())
}
