//! What a refused input expands to besides its errors: a stand-in twin and `impl SharedLayout`,
//! so that the errors the user reads are the derive's, not every later use of the type failing
//! for want of the trait (thiserror's fallback does the same).

use proc_macro2::TokenStream;
use quote::quote;

use crate::parse::Input;

/// The errors `input` was refused with, and a stand-in for it, or only the errors where a
/// stand-in would itself fail to compile (a generic input).
pub(crate) fn expand(input: &Input, errors: syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return errors;
    }
    let krate = input.krate();
    let core = quote!(#krate::__private::core);
    let ident = &input.ident;
    let twin = input.twin_ident();
    let vis = &input.vis;
    quote! {
        #errors

        #[doc(hidden)]
        #vis struct #twin {}

        const _: () = {
            // SAFETY: never compiled into a program: it is emitted only next to a
            // `compile_error!`, which fails the build.
            #[automatically_derived]
            unsafe impl #krate::SharedLayout for #ident {
                type Atomic = #twin;

                const LAYOUT: #krate::Layout = #krate::Layout {
                    name: "",
                    size: 0,
                    align: 1,
                    kind: #krate::Kind::Struct { fields: &[] },
                };

                fn load(_: &#twin, _: #core::sync::atomic::Ordering) -> Self {
                    #core::unreachable!()
                }

                fn store(_: &#twin, _: &Self, _: #core::sync::atomic::Ordering) {
                    #core::unreachable!()
                }
            }
        };
    }
}
