//! `#[derive(SharedLayout)]`; use it through `shm-core`.
use proc_macro::TokenStream;

/// Derives `shm_core::SharedLayout`.
#[proc_macro_derive(SharedLayout, attributes(shm))]
pub fn derive_shared_layout(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
