//! Reads a `syn::DeriveInput` into the small model the checks and the expansion work on: the
//! struct's shape and fields or the enum's variants, its `#[repr]` (every hint with its tokens,
//! so an error can point at it) and its `#[shm(...)]` options. Malformed attributes are recorded as errors here; whether a
//! well-formed input may be shared is decided in `check`.

use proc_macro2::{Group, Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Generics, Ident, LitInt, LitStr, Member, Type, Visibility};

use crate::errors::Errors;

/// One input of the derive.
pub(crate) struct Input {
    pub ident: Ident,
    pub vis: Visibility,
    pub generics: Generics,
    pub data: Data,
    pub repr: Repr,
    pub options: Options,
}

/// What kind of item the derive is on.
pub(crate) enum Data {
    Struct(Struct),
    Enum(Enum),
    /// A union, with its `union` token.
    Union(syn::token::Union),
}

/// A struct's fields.
pub(crate) struct Struct {
    pub style: Style,
    pub fields: Vec<Field>,
    /// The tokens of the field list (`{ ... }`, `( ... )`, or nothing for a unit struct).
    pub body: TokenStream,
}

/// An enum's variants.
pub(crate) struct Enum {
    pub variants: Vec<Variant>,
}

/// One variant of an enum.
pub(crate) struct Variant {
    pub ident: Ident,
    /// The name in the layout descriptor: the identifier without `r#`.
    pub name: String,
    /// Its fields, if it has any (a shared enum's variants have none).
    pub fields: Option<syn::Fields>,
    /// Its `#[default]` attribute, if it has one.
    pub default: Option<Attribute>,
}

/// How a struct's fields are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `struct S { a: T }`
    Named,
    /// `struct S(T);`
    Tuple,
    /// `struct S;`
    Unit,
}

/// One field.
pub(crate) struct Field {
    /// `a`, or `0` in a tuple struct.
    pub member: Member,
    /// The name in the layout descriptor: the identifier without `r#`, or `"0"`, `"1"`, ...
    pub name: String,
    pub vis: Visibility,
    pub ty: Type,
    /// The field's doc comments, copied onto the twin's field.
    pub docs: Vec<Attribute>,
}

/// The struct's `#[repr(...)]` attributes, hint by hint.
#[derive(Default)]
pub(crate) struct Repr {
    /// Every `#[repr(...)]` attribute, for an error about the attribute as a whole.
    pub attrs: Vec<Attribute>,
    pub hints: Vec<ReprHint>,
}

/// One hint inside `#[repr(...)]`.
pub(crate) struct ReprHint {
    pub kind: ReprKind,
    /// The hint's tokens, e.g. `packed(2)`.
    pub tokens: TokenStream,
}

/// What a `#[repr]` hint asks for.
pub(crate) enum ReprKind {
    C,
    Align(LitInt),
    Packed,
    Transparent,
    Rust,
    /// `u8`, `i32`, ...: a discriminant type, which means nothing for a struct and is what an
    /// enum needs.
    Int(Ident),
    /// Anything else, left to the compiler.
    Other,
}

impl Repr {
    /// Whether `#[repr(C)]` is present.
    pub(crate) fn has_c(&self) -> bool {
        self.hints.iter().any(|h| matches!(h.kind, ReprKind::C))
    }

    /// The first integer hint (`u8` of `#[repr(u8)]`), if any.
    pub(crate) fn int(&self) -> Option<&Ident> {
        self.hints.iter().find_map(|h| match &h.kind {
            ReprKind::Int(int) => Some(int),
            _ => None,
        })
    }

    /// The `align(N)` hints.
    pub(crate) fn aligns(&self) -> impl Iterator<Item = &LitInt> {
        self.hints.iter().filter_map(|h| match &h.kind {
            ReprKind::Align(n) => Some(n),
            _ => None,
        })
    }
}

/// The `#[shm(...)]` options on the struct.
#[derive(Default)]
pub(crate) struct Options {
    /// `crate = "path"`: where `shm_core` is, for code that re-exports it.
    pub krate: Option<syn::Path>,
    /// `name = "StableName"`: the type name in the descriptor.
    pub name: Option<LitStr>,
}

impl Input {
    /// Reads `input`, recording malformed `repr` and `shm` attributes in `errors`.
    pub(crate) fn from_syn(input: &syn::DeriveInput, errors: &mut Errors) -> Input {
        let data = match &input.data {
            syn::Data::Struct(s) => Data::Struct(read_struct(s, errors)),
            syn::Data::Enum(e) => Data::Enum(read_enum(e, errors)),
            syn::Data::Union(u) => Data::Union(u.union_token),
        };
        Input {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            generics: input.generics.clone(),
            data,
            repr: read_repr(&input.attrs, errors),
            options: read_options(&input.attrs, errors),
        }
    }

    /// The type name in the descriptor: `#[shm(name)]`, or the bare identifier.
    pub(crate) fn layout_name(&self) -> String {
        match &self.options.name {
            Some(name) => name.value(),
            None => self.ident.unraw().to_string(),
        }
    }

    /// The span the type name comes from, for an error about it.
    pub(crate) fn layout_name_span(&self) -> Span {
        match &self.options.name {
            Some(name) => name.span(),
            None => self.ident.span(),
        }
    }

    /// The path of the runtime crate: `#[shm(crate)]`, or `::shm_core`.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.options.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::shm_core),
        }
    }

    /// The atomic twin's identifier: `AtomicStats` for `Stats`.
    pub(crate) fn twin_ident(&self) -> Ident {
        Ident::new(&format!("Atomic{}", self.ident.unraw()), self.ident.span())
    }
}

fn read_struct(s: &syn::DataStruct, errors: &mut Errors) -> Struct {
    let style = match s.fields {
        syn::Fields::Named(_) => Style::Named,
        syn::Fields::Unnamed(_) => Style::Tuple,
        syn::Fields::Unit => Style::Unit,
    };
    let fields = s
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            for attr in f.attrs.iter().filter(|a| a.path().is_ident("shm")) {
                errors.at(
                    attr,
                    "`#[shm(...)]` goes on the struct, not on a field: there are no field options",
                );
            }
            let (member, name) = match &f.ident {
                Some(ident) => (Member::Named(ident.clone()), ident.unraw().to_string()),
                None => (
                    Member::Unnamed(syn::Index {
                        index: i as u32,
                        span: f.ty.span(),
                    }),
                    i.to_string(),
                ),
            };
            Field {
                member,
                name,
                vis: f.vis.clone(),
                ty: f.ty.clone(),
                docs: f
                    .attrs
                    .iter()
                    .filter(|a| a.path().is_ident("doc"))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    Struct {
        style,
        fields,
        body: s.fields.to_token_stream(),
    }
}

fn read_enum(e: &syn::DataEnum, errors: &mut Errors) -> Enum {
    let variants = e
        .variants
        .iter()
        .map(|v| {
            for attr in v.attrs.iter().filter(|a| a.path().is_ident("shm")) {
                errors.at(
                    attr,
                    "`#[shm(...)]` goes on the enum, not on a variant: there are no variant options",
                );
            }
            let mut defaults = v.attrs.iter().filter(|a| a.path().is_ident("default"));
            let default = defaults.next().cloned();
            for extra in defaults {
                errors.at(extra, "`#[default]` is given twice: keep one");
            }
            if let Some(attr) = &default {
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    errors.at(attr, "`#[default]` takes no arguments: write `#[default]`");
                }
            }
            Variant {
                ident: v.ident.clone(),
                name: v.ident.unraw().to_string(),
                fields: (!matches!(v.fields, syn::Fields::Unit)).then(|| v.fields.clone()),
                default,
            }
        })
        .collect();
    Enum { variants }
}

fn read_repr(attrs: &[Attribute], errors: &mut Errors) -> Repr {
    let mut repr = Repr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
        repr.attrs.push(attr.clone());
        let parsed = attr.parse_nested_meta(|meta| {
            let path = meta.path.clone();
            // Arguments such as `(64)` in `align(64)`, kept with the hint for its error span.
            let args: Option<Group> = if meta.input.peek(syn::token::Paren) {
                Some(meta.input.parse()?)
            } else {
                None
            };
            let tokens = quote!(#path #args);
            let word = match path.get_ident() {
                Some(ident) => ident.to_string(),
                None => String::new(),
            };
            let kind = match word.as_str() {
                "C" => ReprKind::C,
                "align" => match &args {
                    Some(group) => ReprKind::Align(syn::parse2(group.stream())?),
                    None => ReprKind::Other,
                },
                "packed" => ReprKind::Packed,
                "transparent" => ReprKind::Transparent,
                "Rust" => ReprKind::Rust,
                "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
                | "i128" | "isize" => match path.get_ident() {
                    Some(ident) => ReprKind::Int(ident.clone()),
                    None => ReprKind::Other,
                },
                _ => ReprKind::Other,
            };
            repr.hints.push(ReprHint { kind, tokens });
            Ok(())
        });
        if let Err(err) = parsed {
            errors.push(err);
        }
    }
    repr
}

fn read_options(attrs: &[Attribute], errors: &mut Errors) -> Options {
    let mut options = Options::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("shm")) {
        if let syn::Meta::Path(_) = attr.meta {
            errors.at(
                attr,
                "`#[shm]` needs options: write `#[shm(name = \"StableName\")]` or `#[shm(crate = \"path::to::shm_core\")]`",
            );
            continue;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit = string_value(&meta, "crate")?;
                let path = lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "`shm(crate)` must be a path such as `\"my_crate::shm\"`, not `{:?}`",
                            lit.value()
                        ),
                    )
                })?;
                if options.krate.replace(path).is_some() {
                    errors.at(&meta.path, "`shm(crate)` is given twice: keep one");
                }
            } else if meta.path.is_ident("name") {
                let lit = string_value(&meta, "name")?;
                if options.name.replace(lit).is_some() {
                    errors.at(&meta.path, "`shm(name)` is given twice: keep one");
                }
            } else {
                let key = meta.path.to_token_stream().to_string().replace(' ', "");
                errors.at(
                    &meta.path,
                    format!(
                        "unknown option `{key}` in `#[shm(...)]`: the options are `crate = \"path::to::shm_core\"` and `name = \"StableName\"`"
                    ),
                );
                // Skip the value, so the options after it are still read.
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let _: Group = meta.input.parse()?;
                }
            }
            Ok(())
        });
        if let Err(err) = parsed {
            errors.push(err);
        }
    }
    options
}

/// The string after `key =` in `#[shm(...)]`.
fn string_value(meta: &syn::meta::ParseNestedMeta, key: &str) -> syn::Result<LitStr> {
    let value: syn::Expr = meta.value()?.parse()?;
    match value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(lit),
        other => {
            let shown = other.to_token_stream().to_string().replace(' ', "");
            Err(syn::Error::new_spanned(
                other,
                format!("`shm({key})` takes a string in quotes: write `{key} = \"{shown}\"`"),
            ))
        }
    }
}
