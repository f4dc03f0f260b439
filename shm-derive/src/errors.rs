//! Errors collected while reading and checking one input, so that a user sees every problem of a
//! struct in one build rather than one per build.

use std::fmt::Display;

use quote::ToTokens;

/// The errors found so far.
///
/// Taken with [`Errors::finish`]. Dropping errors that were recorded and never taken panics
/// (unless the thread is already panicking): forgetting them would expand a refused input as if
/// it had passed.
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
    pub(crate) fn finish(mut self) -> Result<(), syn::Error> {
        match self.combined.take() {
            Some(all) => Err(all),
            None => Ok(()),
        }
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if self.combined.is_some() && !std::thread::panicking() {
            panic!("`Errors` dropped with errors never taken: call `finish` and expand them");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Errors;
    use proc_macro2::Span;

    #[test]
    fn finish_returns_every_error() {
        let mut errors = Errors::default();
        errors.at_span(Span::call_site(), "first");
        errors.at_span(Span::call_site(), "second");
        let all = errors.finish().unwrap_err();
        let messages: Vec<String> = all.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn dropping_no_errors_is_fine() {
        drop(Errors::default());
        assert!(Errors::default().finish().is_ok());
    }

    #[test]
    #[should_panic(expected = "`Errors` dropped with errors never taken")]
    fn dropping_errors_unchecked_panics() {
        let mut errors = Errors::default();
        errors.at_span(Span::call_site(), "lost");
        drop(errors);
    }

    #[test]
    fn dropping_errors_while_panicking_keeps_the_first_panic() {
        // A second panic during unwinding would abort the test process instead.
        let payload = std::panic::catch_unwind(|| {
            let mut errors = Errors::default();
            errors.at_span(Span::call_site(), "lost");
            panic!("the first panic");
        })
        .unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the first panic"));
    }
}
