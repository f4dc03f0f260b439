//! What the derive refuses, each with an error at the offending tokens that says what is wrong
//! and what to write instead. Every problem of the input is recorded, not only the first.
//!
//! A field type is refused here only when its tokens alone show it cannot be shared (`usize`,
//! `String`, a reference, ...). Any other type that is not `SharedLayout` is caught by the trait
//! bound in the expansion, whose message comes from the trait's `#[diagnostic::on_unimplemented]`.

use quote::{quote, ToTokens};
use syn::{GenericParam, PathArguments, Type};

use crate::errors::Errors;
use crate::parse::{Data, Enum, Input, ReprKind, Style};

/// Longest type or field name a layout descriptor can hold, in bytes (`shm_core`'s
/// `MAX_NAME_LEN`: the encoding stores the length in one byte).
const MAX_NAME_LEN: usize = 255;

/// Records in `errors` every reason `input` cannot derive `SharedLayout`.
pub(crate) fn check(input: &Input, errors: &mut Errors) {
    let ident = &input.ident;
    match &input.data {
        Data::Struct(s) => {
            check_repr(input, errors);
            if s.fields.is_empty() {
                let what = match s.style {
                    Style::Unit => "a unit struct",
                    _ => "a struct without fields",
                };
                let at = match s.style {
                    Style::Unit => ident.to_token_stream(),
                    _ => s.body.clone(),
                };
                errors.at(
                    at,
                    format!(
                        "`{ident}` is {what}: a zero-sized type has nothing to share, and a segment needs at least one byte; give it a field such as `flag: u8`"
                    ),
                );
            }
            for field in &s.fields {
                check_type(&field.ty, errors);
                if field.name.len() > MAX_NAME_LEN {
                    errors.at(
                        &field.member,
                        format!(
                            "this field's name is {} bytes long; a shared layout stores names of at most {MAX_NAME_LEN} bytes: shorten it",
                            field.name.len()
                        ),
                    );
                }
            }
        }
        Data::Enum(e) => check_enum(input, e, errors),
        Data::Union(token) => errors.at(
            token,
            format!(
                "`#[derive(SharedLayout)]` is for structs and fieldless enums, and `{ident}` is a union: its fields overlap, so no field can be its own atomic; write a `#[repr(C)]` struct, or store the bits in a `u32`/`u64` field and convert"
            ),
        ),
    }
    check_generics(input, errors);
    check_name(input, errors);
}

fn check_repr(input: &Input, errors: &mut Errors) {
    let ident = &input.ident;
    let aligns: Vec<String> = input
        .repr
        .aligns()
        .map(|n| format!(", align({})", n.base10_digits()))
        .collect();
    let write = format!("#[repr(C{})]", aligns.concat());
    let mut refused = false;
    for hint in &input.repr.hints {
        let int_problem;
        let problem = match &hint.kind {
            ReprKind::Packed => "`packed` places fields at unaligned offsets, and every atomic must be aligned",
            ReprKind::Transparent => "`repr(transparent)` does not promise the C layout that every process relies on",
            ReprKind::Rust => "`repr(Rust)` lets the compiler reorder fields, so another process (or another build) could find them elsewhere",
            ReprKind::Int(int) => {
                int_problem = format!("`repr({int})` is for enums, and a shared struct needs the C layout");
                &int_problem
            }
            ReprKind::C | ReprKind::Align(_) | ReprKind::Other => continue,
        };
        refused = true;
        errors.at(&hint.tokens, format!("{problem}: write `{write}`"));
    }
    if input.repr.has_c() || refused {
        return;
    }
    let why = "without it the compiler may reorder fields, so another process (or another build) could find them elsewhere";
    match input.repr.attrs.first() {
        // A `#[repr]` without `C`, such as `#[repr(align(64))]`: the fix goes into it.
        Some(attr) => errors.at(
            attr,
            format!("`#[derive(SharedLayout)]` needs `C` in this `#[repr]`: {why}; write `{write}`"),
        ),
        None => errors.at(
            ident,
            format!(
                "`#[derive(SharedLayout)]` needs `#[repr(C)]` on `{ident}`: {why}; write `#[repr(C)]` above the struct"
            ),
        ),
    }
}

/// The integer `#[repr]`s a shared enum may have: each has a lock-free atomic of fixed width.
pub(crate) const ENUM_REPRS: [&str; 8] = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"];

/// How to write a repr, after "write ": the enum's own integer if it has an accepted one.
fn write_repr(input: &Input) -> String {
    match input.repr.int().map(ToString::to_string) {
        Some(i) if ENUM_REPRS.contains(&i.as_str()) => format!("`#[repr({i})]`"),
        _ => "`#[repr(u8)]` (or `u16`, `u32`, `u64`, `i8` ... `i64`)".to_owned(),
    }
}

fn check_enum(input: &Input, e: &Enum, errors: &mut Errors) {
    let ident = &input.ident;
    check_enum_repr(input, errors);
    if e.variants.is_empty() {
        errors.at(
            ident,
            format!(
                "`{ident}` has no variants: a shared enum is a number that names one of its variants, so it needs at least one, marked `#[default]`"
            ),
        );
        return;
    }
    for v in &e.variants {
        if let Some(fields) = &v.fields {
            let name = &v.ident;
            errors.at(
                fields,
                format!(
                    "variant `{name}` carries data: a shared enum is one number that says which variant is live, with no room for data; make `{name}` a unit variant and put its data in fields of a `#[repr(C)]` struct beside the enum"
                ),
            );
        }
        if v.name.len() > MAX_NAME_LEN {
            errors.at(
                &v.ident,
                format!(
                    "this variant's name is {} bytes long; a shared layout stores names of at most {MAX_NAME_LEN} bytes: shorten it",
                    v.name.len()
                ),
            );
        }
    }
    let mut defaults = e.variants.iter().filter_map(|v| v.default.as_ref());
    if defaults.next().is_none() {
        errors.at(
            ident,
            format!(
                "`{ident}` needs a `#[default]` variant: another process can store any number in a segment, and a number that is no variant reads as the default one; mark one variant `#[default]` (the attribute `#[derive(Default)]` reads)"
            ),
        );
    }
    for extra in defaults {
        errors.at(
            extra,
            "`#[default]` is on more than one variant: keep it on one, the variant that a number that is no variant reads as",
        );
    }
}

/// A shared enum needs exactly one integer `#[repr]` of fixed width, and nothing else.
fn check_enum_repr(input: &Input, errors: &mut Errors) {
    let ident = &input.ident;
    let write = write_repr(input);
    let mut refused = false;
    let mut accepted = 0;
    for hint in &input.repr.hints {
        let problem = match &hint.kind {
            ReprKind::Int(i) if ENUM_REPRS.contains(&i.to_string().as_str()) => {
                accepted += 1;
                if accepted == 1 {
                    continue;
                }
                "a second integer type: an enum's number has one width".to_owned()
            }
            ReprKind::Int(i) if i == "usize" || i == "isize" => format!(
                "`repr({i})` is as wide as a pointer, which differs between processes (a 32-bit and a 64-bit build can share a segment)"
            ),
            ReprKind::Int(i) => format!("`repr({i})` has no lock-free atomic on common targets"),
            ReprKind::C => "`repr(C)` gives an enum the width of a C `int`, which is not the same on every platform".to_owned(),
            ReprKind::Align(_) => "`align(N)` does not apply to a shared enum: its number is stored at its own width and alignment".to_owned(),
            ReprKind::Packed => "`packed` is for structs".to_owned(),
            ReprKind::Transparent => "`repr(transparent)` does not give an enum a fixed width".to_owned(),
            ReprKind::Rust => "`repr(Rust)` lets the compiler choose the enum's width, so another build could choose another".to_owned(),
            ReprKind::Other => continue,
        };
        refused = true;
        errors.at(&hint.tokens, format!("{problem}: write {write}"));
    }
    if accepted > 0 || refused {
        return;
    }
    let why = "without one the compiler chooses the width of the number that says which variant is live, so another build could choose another";
    match input.repr.attrs.first() {
        Some(attr) => errors.at(
            attr,
            format!(
                "`#[derive(SharedLayout)]` needs an integer type in this `#[repr]` of the enum `{ident}`: {why}; write {write}"
            ),
        ),
        None => errors.at(
            ident,
            format!(
                "`#[derive(SharedLayout)]` needs an integer `#[repr]` on the enum `{ident}`: {why}; write {write} above the enum"
            ),
        ),
    }
}

fn check_generics(input: &Input, errors: &mut Errors) {
    let ident = &input.ident;
    for param in &input.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => format!(
                "`{ident}` cannot have a lifetime parameter: a segment outlives every borrow and is seen by other processes, so a shared struct holds values, not references; remove the lifetime"
            ),
            GenericParam::Type(_) => format!(
                "`{ident}` cannot be generic: a segment's layout is one fixed set of bytes that every process must agree on; declare a struct per concrete type"
            ),
            GenericParam::Const(_) => format!(
                "`{ident}` cannot have a const parameter: a segment's layout is one fixed set of bytes that every process must agree on; write the length as a literal or a `const` item"
            ),
        };
        errors.at(param, message);
    }
    if let Some(clause) = &input.generics.where_clause {
        errors.at(
            clause,
            format!("`{ident}` cannot have a `where` clause: a shared struct has no generic parameters; remove it"),
        );
    }
}

fn check_name(input: &Input, errors: &mut Errors) {
    let name = input.layout_name();
    if name.is_empty() {
        errors.at_span(
            input.layout_name_span(),
            "`shm(name)` is empty: a shared layout needs a type name, e.g. `#[shm(name = \"Stats\")]`",
        );
    } else if name.len() > MAX_NAME_LEN {
        errors.at_span(
            input.layout_name_span(),
            format!(
                "the type name `{name}` is {} bytes long; a shared layout stores names of at most {MAX_NAME_LEN} bytes: choose a shorter one with `#[shm(name = \"...\")]`",
                name.len()
            ),
        );
    }
}

/// Refuses a field type whose tokens alone show it cannot be shared; looks into arrays.
fn check_type(ty: &Type, errors: &mut Errors) {
    let message = match ty {
        Type::Array(array) => return check_type(&array.elem, errors),
        Type::Paren(inner) => return check_type(&inner.elem, errors),
        Type::Group(inner) => return check_type(&inner.elem, errors),
        Type::Reference(_) => "a reference is an address in one process's memory, meaningless in another: store the value itself (for text, `shm_core::Text<64>`: UTF-8 of at most 64 bytes, in place)".to_owned(),
        Type::Ptr(_) => "a raw pointer is an address in one process's memory, and each process maps the segment elsewhere: store an index or an offset as `u64`".to_owned(),
        Type::BareFn(_) => "a function pointer is an address in one process's memory, meaningless in another: store a number that says which function, e.g. a `u32`".to_owned(),
        Type::Slice(_) => "a slice has no fixed length: write an array `[T; N]`".to_owned(),
        Type::Tuple(t) if t.elems.is_empty() => "`()` is zero-sized and holds nothing to share: remove the field".to_owned(),
        Type::Tuple(_) => "a tuple has no fixed field order: write an array `[T; N]` or a `#[derive(SharedLayout)]` struct".to_owned(),
        Type::Never(_) => "`!` has no values, so it cannot be shared: remove the field".to_owned(),
        Type::TraitObject(_) | Type::ImplTrait(_) => "a trait object has no fixed size or layout: write a concrete `SharedLayout` type".to_owned(),
        Type::Path(path) if path.qself.is_none() => match known_path(&path.path) {
            Some(message) => message,
            None => return,
        },
        _ => return,
    };
    errors.at(ty, message);
}

/// The error for a path type known not to be shareable, if it is one.
fn known_path(path: &syn::Path) -> Option<String> {
    let last = path.segments.last()?;
    let name = last.ident.to_string();
    let generic = matches!(last.arguments, PathArguments::AngleBracketed(_));
    // A derived struct is never generic, so `Box<...>` is std's; a bare `Box` could be the
    // user's own (a bounding box, say) unless the path says it comes from std.
    let from_std = match path.segments.first() {
        Some(first) if path.segments.len() > 1 => {
            matches!(first.ident.to_string().as_str(), "std" | "core" | "alloc")
        }
        _ => false,
    };
    let bare = path.segments.len() == 1 && !generic;
    let shown = quote!(#path).to_string().replace(' ', "");

    let plain_of_atomic = |name: &str| -> Option<&'static str> {
        Some(match name {
            "AtomicI8" => "i8",
            "AtomicU8" => "u8",
            "AtomicI16" => "i16",
            "AtomicU16" => "u16",
            "AtomicI32" => "i32",
            "AtomicU32" => "u32",
            "AtomicI64" | "AtomicIsize" => "i64",
            "AtomicU64" | "AtomicUsize" => "u64",
            "AtomicF32" => "f32",
            "AtomicF64" => "f64",
            "AtomicBool" => "bool",
            "AtomicChar" => "char",
            _ => return None,
        })
    };

    let message = match name.as_str() {
        "usize" | "isize" if bare => {
            let fixed = if name == "usize" { "u64" } else { "i64" };
            format!(
                "`{name}` is as wide as a pointer, which differs between processes (a 32-bit and a 64-bit build can share a segment): write `{fixed}`"
            )
        }
        "u128" | "i128" if bare => {
            let half = if name == "u128" { "u64" } else { "i64" };
            format!(
                "`{name}` has no lock-free atomic on common targets: split it into `[{half}; 2]` or two `{half}` fields"
            )
        }
        "str" if bare || from_std => "`str` has no fixed length: write `shm_core::Text<64>`, UTF-8 text of at most 64 bytes held in place".to_owned(),
        "String" | "OsString" | "PathBuf" | "CString" if bare || from_std => format!(
            "`{shown}` points into one process's heap, meaningless in another: write `shm_core::Text<64>`, UTF-8 text of at most 64 bytes held in place"
        ),
        "Vec" | "VecDeque" if generic || from_std => format!(
            "`{shown}` points into one process's heap, meaningless in another: write a fixed-size array `[T; N]` (for a run whose length is chosen at run time, use `shm_core::Array<T>`)"
        ),
        "HashMap" | "HashSet" | "BTreeMap" | "BTreeSet" | "BinaryHeap" | "LinkedList"
            if generic || from_std =>
        {
            format!(
                "`{shown}` points into one process's heap, meaningless in another: write fixed-size arrays `[T; N]` of keys and values"
            )
        }
        "Box" | "Rc" | "Arc" if generic || from_std => format!(
            "`{shown}` points into one process's heap, meaningless in another: store the value itself"
        ),
        "Option" if generic || from_std => format!(
            "`{shown}` has no atomic form: store the value itself and a `bool` field that says whether it is set"
        ),
        "Mutex" | "RwLock" | "Condvar" | "Cell" | "RefCell" | "UnsafeCell" | "OnceCell"
        | "OnceLock"
            if generic || from_std || bare =>
        {
            format!(
                "`{shown}` works within one process only; in a segment every field is already an atomic: write the plain type, and use `Shared::update` or `Shared::lock` for the segment's process-shared lock"
            )
        }
        other => {
            let plain = plain_of_atomic(other)?;
            format!(
                "`{shown}` is not needed here: the derive already makes every field an atomic in the segment; write the plain `{plain}`"
            )
        }
    };
    Some(message)
}
