//! Writes `docs/vectors/*.json` from this implementation:
//!
//! ```text
//! cargo test -p tests --test vectors -- --ignored regenerate
//! ```
//!
//! The cases (bytes, patches, keywords) are written here by hand; what shm-core does with them
//! (parse errors and their offsets, header fields of a created segment, the error kind at open,
//! the payload after recovery) is recorded as the expected outcome. Regenerated vectors are a
//! change of the spec: review the diff before committing it, and check the other implementation
//! against it.

#[macro_use]
mod json;
mod descriptors;
mod journal;
mod locks;
mod segments;
mod waiting;

use shm_core::{Descriptor, SharedLayout, FORMAT_VERSION};

use crate::run::{self, hex};
use crate::type_tree;
use crate::types::{self, Visit};
use json::{hex64, J};

/// Writes `j` to `docs/vectors/<file>`.
fn write(file: &str, j: &J) {
    let mut out = String::new();
    j.pretty(0, 0, &mut out);
    out.push('\n');
    let path = run::vectors_dir().join(file);
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `layouts.json`: every type of `types.rs`, its descriptor and fingerprint.
fn layouts() -> J {
    struct Describe<'a>(&'a str);
    impl Visit for Describe<'_> {
        type Out = J;
        fn visit<T: SharedLayout + Default>(self) -> J {
            let l = &T::LAYOUT;
            obj! {
                "id": self.0,
                "type": J::from_value(&type_tree(&Descriptor::from_layout(l))),
                "size": l.size,
                "align": l.align,
                "descriptor": hex(&l.encode()),
                "fingerprint": hex64(l.fingerprint()),
            }
        }
    }
    obj! {
        "format_version": u64::from(FORMAT_VERSION),
        "layouts": types::IDS
            .iter()
            .map(|id| types::visit(id, Describe(id)).expect("a known id"))
            .collect::<Vec<_>>(),
    }
}

#[test]
#[ignore = "rewrites docs/vectors from this implementation: run on purpose, then review the diff"]
fn regenerate() {
    write("layouts.json", &layouts());
    write("descriptors.json", &descriptors::descriptors());
    write("segments.json", &segments::segments());
    write("journal.json", &journal::journal());
    write("waiting.json", &waiting::waiting());
    write("locks.json", &locks::locks());
}
