//! What an input expands to. A struct that passed every check: the atomic twin, `impl
//! SharedLayout`, `Default` and `Debug` for the twin, the compile-time proofs that the twin
//! matches the struct, and a check that its descriptor fits the format, each from a function of
//! its own. An enum that passed: see `expand_enum`. One that did not: its errors and a stand-in
//! (`fallback`).
//!
//! A field type that is not `SharedLayout` must be reported once, at the field's type, with the
//! trait's `on_unimplemented` message, rather than once for every item that uses the twin. So the
//! twin's fields are the one place that states the bound; every impl that uses the twin holds
//! `where for<'__shm> T: SharedLayout` for each field's type (or array element type) `T` that is
//! not a primitive (a bound with a bound lifetime is not checked where it is written, only
//! assumed inside, so an impl whose field type is refused is simply not there); and the proofs
//! at the definition compute the twin's layout from the fields' `LAYOUT`s instead of naming the
//! twin. The same error from the twin's field and from the proofs' one mention of the field's
//! type, both spanned at it, is reported once.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, Type};

use crate::check::check;
use crate::errors::Errors;
use crate::parse::{Data, Field, Input, Struct, Style};
use crate::{expand_enum, fallback};

/// What `#[derive(SharedLayout)]` on `input` expands to: the expansion below if every check
/// passed, else every error and a stand-in (`fallback`).
pub(crate) fn derive(input: &syn::DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let model = Input::from_syn(input, &mut errors);
    check(&model, &mut errors);
    match (errors.finish(), &model.data) {
        (Ok(()), Data::Struct(s)) => expand(&model, s),
        (Ok(()), Data::Enum(e)) => expand_enum::expand(&model, e),
        (Err(all), _) => fallback::expand(&model, all),
        (Ok(()), Data::Union(_)) => unreachable!("`check` refuses every union"),
    }
}

/// The expansion of a struct that passed every check: the twin, and in an anonymous constant
/// the impls and the proofs.
fn expand(input: &Input, s: &Struct) -> TokenStream {
    let cx = Cx::new(input, s);
    let twin = twin_struct(&cx);
    let shared_layout = impl_shared_layout(&cx);
    let default = impl_default(&cx);
    let debug = impl_debug(&cx);
    let proofs = proofs(&cx);
    let fits = descriptor_fits(&cx);
    quote! {
        #twin

        const _: () = {
            #shared_layout
            #default
            #debug
            #proofs
            #fits
        };
    }
}

/// What every part of the expansion names.
struct Cx<'a> {
    input: &'a Input,
    s: &'a Struct,
    /// The runtime crate's path.
    krate: TokenStream,
    /// `core`, reached through the runtime crate.
    core: TokenStream,
    /// The struct's name as a user writes it (without `r#`), for messages.
    shown: String,
    /// The twin's identifier, and as shown in messages.
    twin: Ident,
    twin_shown: String,
    /// `for<'__shm> T: SharedLayout` for each distinct field type (or array element type) that
    /// is not a primitive, in the order of the fields.
    bounds: Vec<TokenStream>,
    /// `for<'__shm> <T as SharedLayout>::Atomic: Debug` for the same types.
    debug_bounds: Vec<TokenStream>,
}

impl<'a> Cx<'a> {
    fn new(input: &'a Input, s: &'a Struct) -> Self {
        let krate = input.krate();
        let core = quote!(#krate::__private::core);
        let twin = input.twin_ident();
        let mut bounds = Vec::new();
        let mut debug_bounds = Vec::new();
        let mut bounded = Vec::<String>::new();
        for elem in s.fields.iter().filter_map(|field| bound_type(&field.ty)) {
            let shown = elem.to_token_stream().to_string();
            if bounded.contains(&shown) {
                continue;
            }
            bounded.push(shown);
            let span = elem.span();
            let shared_trait = respan(quote!(#krate::SharedLayout), span);
            let debug = respan(quote!(#core::fmt::Debug), span);
            bounds.push(quote_spanned!(span=> for<'__shm> #elem: #shared_trait));
            debug_bounds
                .push(quote_spanned!(span=> for<'__shm> <#elem as #shared_trait>::Atomic: #debug));
        }
        Cx {
            input,
            s,
            shown: input.ident.unraw().to_string(),
            twin_shown: twin.to_string(),
            twin,
            krate,
            core,
            bounds,
            debug_bounds,
        }
    }

    /// `<T as SharedLayout>` for the field's type `T`, spanned at the type, so that what is
    /// wrong with it is reported there.
    fn shared(&self, field: &Field) -> TokenStream {
        let ty = &field.ty;
        let span = ty.span();
        let krate = &self.krate;
        let shared_trait = respan(quote!(#krate::SharedLayout), span);
        quote_spanned!(span=> <#ty as #shared_trait>)
    }

    /// `&<T as SharedLayout>::LAYOUT` for the field's type `T`, spanned at the type.
    fn field_layout(&self, field: &Field) -> TokenStream {
        let shared = self.shared(field);
        quote_spanned!(field.ty.span()=> &#shared::LAYOUT)
    }

    /// The `where` clause of every impl that uses the twin.
    fn where_clause(&self) -> TokenStream {
        let bounds = &self.bounds;
        if bounds.is_empty() {
            TokenStream::new()
        } else {
            quote!(where #(#bounds,)*)
        }
    }
}

/// Names of the generated code's own locals and items. Locals are hygienic at the mixed site,
/// but a parameter's name would still be read as a pattern naming the user's `const` of that
/// name, so the names are also prefixed.
pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The atomic twin: the struct's fields in order, each as its type's atomic twin, with the
/// struct's visibility, the fields' visibilities and doc comments, and the struct's `align(N)`.
fn twin_struct(cx: &Cx) -> TokenStream {
    let Cx { shown, twin, .. } = cx;
    let vis = &cx.input.vis;
    let aligns = cx.input.repr.aligns();
    let doc = format!(
        " The atomic twin of [`{shown}`], generated by `#[derive(SharedLayout)]`: what a shared-memory segment holding a `{shown}` contains.\n\n Each field of `{shown}`, in the same order and at the same offset, as its atomic (`<T as SharedLayout>::Atomic`), so every process can use every field at once. `Shared<{shown}>` derefs to it; `SharedLayout::load` and `SharedLayout::store` copy a whole `{shown}` out of and into it, field by field. `Default` is all zeros; `Debug` shows relaxed loads."
    );
    let fields = cx.s.fields.iter().map(|field| {
        let Field {
            member, vis, docs, ..
        } = field;
        let shared = cx.shared(field);
        let ty = quote_spanned!(field.ty.span()=> #shared::Atomic);
        match cx.s.style {
            Style::Named => quote!(#(#docs)* #vis #member: #ty),
            _ => quote!(#(#docs)* #vis #ty),
        }
    });
    let body = match cx.s.style {
        Style::Named => quote!({ #(#fields,)* }),
        _ => quote!(( #(#fields,)* );),
    };
    quote! {
        #[doc = #doc]
        #[repr(C #(, align(#aligns))*)]
        #vis struct #twin #body
    }
}

/// `impl SharedLayout` for the struct: the twin, the descriptor, and field-by-field load and
/// store.
fn impl_shared_layout(cx: &Cx) -> TokenStream {
    let Cx {
        krate,
        core,
        shown,
        twin,
        twin_shown,
        ..
    } = cx;
    let ident = &cx.input.ident;
    let layout_name = cx.input.layout_name();
    let where_clause = cx.where_clause();
    let atomic = local("__shm_atomic");
    let value = local("__shm_value");
    let order = local("__shm_order");
    let old = local("__shm_old");
    let mut twin_offsets = Vec::new();
    let mut descriptor_fields = Vec::new();
    let mut loads = Vec::new();
    let mut stores = Vec::new();
    let mut changed_stores = Vec::new();
    for field in &cx.s.fields {
        let Field { member, name, .. } = field;
        let span = field.ty.span();
        let shared = cx.shared(field);
        let layout = cx.field_layout(field);
        twin_offsets.push(quote! {
            && #core::mem::offset_of!(#ident, #member) == #core::mem::offset_of!(#twin, #member)
        });
        descriptor_fields.push(quote! {
            #krate::Field {
                name: #name,
                offset: #core::mem::offset_of!(#twin, #member),
                layout: #layout,
            }
        });
        loads.push(quote_spanned!(span=> #member: #shared::load(&#atomic.#member, #order)));
        stores.push(
            quote_spanned!(span=> #shared::store(&#atomic.#member, &#value.#member, #order);),
        );
        changed_stores.push(quote_spanned!(span=>
            #shared::store_changed(&#atomic.#member, &#old.#member, &#value.#member, #order);
        ));
    }
    let twin_differs = format!(
        "the atomic twin `{twin_shown}` is not laid out like `{shown}` on this target: the errors at `{shown}` and its fields say where (without them, the `SharedLayout` impl of a field's type misdescribes its twin)"
    );
    // SAFETY (of the generated impl): the twin's fields are, in order, the twins of the struct's
    // fields, each `SharedLayout` (the twin's field types require it), so each is made of
    // atomics only, valid for all bit patterns, pointer-free and without `Drop`; the twin is
    // `#[repr(C)]` and has no other field, so its padding holds no value either. `LAYOUT` takes
    // its size and alignment from the twin itself, each field's offset from `offset_of!` on the
    // twin, and each field's layout from the field type's own `LAYOUT`, so it describes the
    // twin exactly. `LAYOUT` also checks the real twin against the struct (the proofs computed
    // the twin's layout from the fields' instead).
    quote! {
        #[automatically_derived]
        unsafe impl #krate::SharedLayout for #ident #where_clause {
            type Atomic = #twin;

            const LAYOUT: #krate::Layout = {
                #core::assert!(
                    #core::mem::size_of::<#ident>() == #core::mem::size_of::<#twin>()
                        && #core::mem::align_of::<#ident>() == #core::mem::align_of::<#twin>()
                        #(#twin_offsets)*,
                    #twin_differs
                );
                #krate::Layout {
                    name: #layout_name,
                    size: #core::mem::size_of::<#twin>(),
                    align: #core::mem::align_of::<#twin>(),
                    kind: #krate::Kind::Struct {
                        fields: &[#(#descriptor_fields),*],
                    },
                }
            };

            #[inline]
            fn load(#atomic: &#twin, #order: #core::sync::atomic::Ordering) -> Self {
                Self { #(#loads,)* }
            }

            #[inline]
            fn store(#atomic: &#twin, #value: &Self, #order: #core::sync::atomic::Ordering) {
                #(#stores)*
            }

            #[inline]
            fn store_changed(
                #atomic: &#twin,
                #old: &Self,
                #value: &Self,
                #order: #core::sync::atomic::Ordering,
            ) {
                #(#changed_stores)*
            }
        }
    }
}

/// `Default` for the twin: all zeros.
fn impl_default(cx: &Cx) -> TokenStream {
    let Cx {
        krate, core, twin, ..
    } = cx;
    let ident = &cx.input.ident;
    let where_clause = cx.where_clause();
    quote! {
        #[automatically_derived]
        impl #core::default::Default for #twin #where_clause {
            /// All zeros: every field's atomic holding zero (`false`, `'\0'`, `0.0`).
            #[inline]
            fn default() -> Self {
                #krate::__private::zeroed_twin::<#ident>()
            }
        }
    }
}

/// `Debug` for the twin: each field loaded with `Relaxed`, shown as the twin's name and fields.
fn impl_debug(cx: &Cx) -> TokenStream {
    let Cx {
        core,
        twin,
        twin_shown,
        bounds,
        debug_bounds,
        ..
    } = cx;
    let where_clause = if bounds.is_empty() {
        TokenStream::new()
    } else {
        quote!(where #(#bounds,)* #(#debug_bounds,)*)
    };
    let formatter = local("__shm_f");
    let (start, fields): (_, Vec<_>) = match cx.s.style {
        Style::Named => (
            format_ident!("debug_struct"),
            cx.s.fields
                .iter()
                .map(|Field { member, name, .. }| quote!(.field(#name, &self.#member)))
                .collect(),
        ),
        _ => (
            format_ident!("debug_tuple"),
            cx.s.fields
                .iter()
                .map(|Field { member, .. }| quote!(.field(&self.#member)))
                .collect(),
        ),
    };
    quote! {
        #[automatically_derived]
        impl #core::fmt::Debug for #twin #where_clause {
            fn fmt(&self, #formatter: &mut #core::fmt::Formatter<'_>) -> #core::fmt::Result {
                #formatter.#start(#twin_shown) #(#fields)* .finish()
            }
        }
    }
}

/// The proofs, evaluated where the struct is defined: the twin, laid out as `#[repr(C)]` lays
/// out its fields' twins, has the struct's size, alignment and field offsets, and every atomic
/// in it is lock-free on this target. One constant each, so that every failed proof is
/// reported, not only the first, at the field it names or at the struct's name.
fn proofs(cx: &Cx) -> TokenStream {
    let Cx {
        krate,
        core,
        shown,
        twin_shown,
        ..
    } = cx;
    let ident = &cx.input.ident;
    let computed = local("__SHM_TWIN_LAYOUT");
    let layouts = local("__SHM_FIELD_LAYOUTS");
    let aligns: Vec<_> = cx.input.repr.aligns().collect();
    // The largest `align(N)`, as the compiler takes it; 1 without one.
    let min_align = quote!({
        let mut align: usize = 1;
        #(if #aligns > align { align = #aligns; })*
        align
    });
    let field_count = cx.s.fields.len();
    // The one mention of the field types here, spanned at each.
    let field_layouts = cx.s.fields.iter().map(|field| cx.field_layout(field));
    let field_proofs = cx.s.fields.iter().enumerate().map(|(i, field)| {
        let Field { member, name, .. } = field;
        let moved = format!(
            "field `{name}` of `{shown}` is at another offset in its atomic twin `{twin_shown}` on this target, where an atomic is more aligned than its plain type: add padding fields so that every field's offset is a multiple of its size"
        );
        let not_lock_free = format!(
            "field `{name}` of `{shown}` needs an atomic that is not lock-free on this target, so two processes could not share it: use a narrower type"
        );
        respan(
            quote! {
                const _: () = #core::assert!(
                    #core::mem::offset_of!(#ident, #member) == #computed.offsets[#i],
                    #moved
                );
                const _: () = #core::assert!(
                    #krate::__private::lock_free(#layouts[#i]),
                    #not_lock_free
                );
            },
            member.span(),
        )
    });
    let zero_sized = format!(
        "`{shown}` is zero-sized: a zero-sized type has nothing to share, and a segment needs at least one byte; give it a field such as `flag: u8`"
    );
    let size_differs = format!(
        "`{shown}` and its atomic twin `{twin_shown}` differ in size on this target, where an atomic is more aligned than its plain type: add padding fields so that every field's offset is a multiple of its size, and the size a multiple of the largest"
    );
    let align_differs = format!(
        "`{shown}` and its atomic twin `{twin_shown}` differ in alignment on this target, where an atomic is more aligned than its plain type: add `align(N)` to its `#[repr(C)]`, N the largest field size"
    );
    let struct_proofs = respan(
        quote! {
            const _: () = #core::assert!(#computed.size != 0, #zero_sized);
            const _: () = #core::assert!(
                #core::mem::size_of::<#ident>() == #computed.size,
                #size_differs
            );
            const _: () = #core::assert!(
                #core::mem::align_of::<#ident>() == #computed.align,
                #align_differs
            );
        },
        ident.span(),
    );
    quote! {
        const _: () = {
            const #layouts: [&#krate::Layout; #field_count] = [#(#field_layouts),*];
            const #computed: #krate::__private::ReprC<#field_count> =
                #krate::__private::repr_c(#layouts, #min_align);
            #(#field_proofs)*
            #struct_proofs
        };
    }
}

/// A function that evaluates the struct's fingerprint, so that a descriptor the format cannot
/// hold (nesting too deep) fails wherever this crate is built rather than in the first crate
/// that uses it.
fn descriptor_fits(cx: &Cx) -> TokenStream {
    let krate = &cx.krate;
    let ident = &cx.input.ident;
    let where_clause = cx.where_clause();
    quote! {
        #[allow(dead_code)]
        fn __shm_descriptor_fits() #where_clause {
            let _: u64 = const { <#ident as #krate::SharedLayout>::LAYOUT.fingerprint() };
        }
    }
}

/// The type that must be `SharedLayout` for the field type `ty` to be: its element type,
/// through arrays (`[T; N]` is `SharedLayout` when `T` is), unless that is a primitive.
fn bound_type(ty: &Type) -> Option<&Type> {
    const PRIMITIVES: [&str; 12] = [
        "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "char",
    ];
    match ty {
        Type::Array(array) => bound_type(&array.elem),
        Type::Paren(inner) => bound_type(&inner.elem),
        Type::Group(inner) => bound_type(&inner.elem),
        Type::Path(path)
            if path.qself.is_none()
                && path
                    .path
                    .get_ident()
                    .is_some_and(|ident| PRIMITIVES.contains(&ident.to_string().as_str())) =>
        {
            None
        }
        _ => Some(ty),
    }
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
