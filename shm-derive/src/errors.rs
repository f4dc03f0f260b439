//! Errors collected while reading and checking one input, so that a user sees every problem of a
//! struct in one build rather than one per build.

use std::fmt::Display;

use quote::ToTokens;

/// The errors found so far.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(all) => all.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records an error spanning `tokens` (from their first token to their last).
    pub(crate) fn at<T: ToTokens, M: Display>(&mut self, tokens: T, message: M) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at one span.
    pub(crate) fn at_span<M: Display>(&mut self, span: proc_macro2::Span, message: M) {
        self.push(syn::Error::new(span, message));
    }

    /// `Err` with every error recorded, if any.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        match self.combined {
            Some(all) => Err(all),
            None => Ok(()),
        }
    }
}
