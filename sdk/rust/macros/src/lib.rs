//! The attribute macros of `switchyard-sdk`: `filter`, `transform`, `verify` and `plugin`.
//!
//! Owns the expansion of one plugin function into the component's `handle-packed` export. It
//! checks only the shape of the function (one argument, by reference or by value, a return type)
//! and leaves the types to the compiler; the conversion of answers lives in
//! `switchyard_sdk::entry`, where it can be tested natively. Use these macros through
//! `switchyard_sdk`, whose documentation shows each one: the expansion names
//! `::switchyard_sdk`, so the SDK must be a dependency under that name.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// Marks `fn(&Event) -> bool` (or `Result<bool, E>`): `true` is `pass`, `false` is `drop`.
#[proc_macro_attribute]
pub fn filter(attribute: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Filter, attribute, item)
}

/// Marks `fn(Event) -> Result<Event, E>` (or `Event`): the change becomes `pass`, `modify` or
/// `replace`.
#[proc_macro_attribute]
pub fn transform(attribute: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Transform, attribute, item)
}

/// Marks `fn(&Event) -> Result<Verification, E>` (or `Verification`): `pass`, `modify` with a
/// dedupe key, or `reject`.
#[proc_macro_attribute]
pub fn verify(attribute: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Verify, attribute, item)
}

/// Marks `fn(Event) -> Result<Verdict, E>` (or `Verdict`): full control.
#[proc_macro_attribute]
pub fn plugin(attribute: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Plugin, attribute, item)
}

#[derive(Clone, Copy)]
enum Kind {
    Filter,
    Transform,
    Verify,
    Plugin,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Transform => "transform",
            Kind::Verify => "verify",
            Kind::Plugin => "plugin",
        }
    }

    fn signature(self) -> &'static str {
        match self {
            Kind::Filter => "fn(&Event) -> bool or fn(&Event) -> Result<bool, Failure>",
            Kind::Transform => "fn(Event) -> Result<Event, Failure>",
            Kind::Verify => "fn(&Event) -> Result<Verification, Failure>",
            Kind::Plugin => "fn(Event) -> Result<Verdict, Failure>",
        }
    }

    fn borrows(self) -> bool {
        matches!(self, Kind::Filter | Kind::Verify)
    }
}

fn expand(kind: Kind, attribute: TokenStream, item: TokenStream) -> TokenStream {
    let attribute = proc_macro2::TokenStream::from(attribute);
    let result = if attribute.is_empty() {
        syn::parse::<ItemFn>(item).and_then(|function| expand_function(kind, function))
    } else {
        Err(syn::Error::new(
            attribute.span(),
            format!("`#[switchyard_sdk::{}]` takes no arguments", kind.name()),
        ))
    };
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}

fn expand_function(kind: Kind, function: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    check_shape(kind, &function)?;
    let name = &function.sig.ident;
    let glue = syn::Ident::new(kind.name(), Span::call_site());
    // Type errors in the call (a wrong argument or answer type) point at the signature.
    let call = quote_spanned! {function.sig.span()=>
        ::switchyard_sdk::entry::#glue(event, #name)
    };
    Ok(quote! {
        #function

        /// The component's `handle-packed` export, written by a `switchyard_sdk` attribute
        /// macro; only one such attribute may appear in a crate.
        #[doc(hidden)]
        struct __SwitchyardPlugin;

        impl ::switchyard_sdk::bindings::Guest for __SwitchyardPlugin {
            fn handle_packed(
                head: ::std::vec::Vec<u8>,
                body: ::std::vec::Vec<u8>,
                received_at: u64,
            ) -> ::core::result::Result<::switchyard_sdk::Verdict, ::switchyard_sdk::Failure> {
                let event = ::switchyard_sdk::packed::unpack(&head, body, received_at)?;
                #call
            }
        }

        ::switchyard_sdk::bindings::export!(
            __SwitchyardPlugin with_types_in ::switchyard_sdk::bindings
        );
    })
}

/// Refuses shapes the glue cannot call, with the signature the kind expects.
fn check_shape(kind: Kind, function: &ItemFn) -> syn::Result<()> {
    let signature = &function.sig;
    let wrong = |span: Span, problem: &str| {
        syn::Error::new(
            span,
            format!(
                "`#[switchyard_sdk::{}]` {problem}; expected `{}`",
                kind.name(),
                kind.signature()
            ),
        )
    };
    if let Some(token) = &signature.asyncness {
        return Err(wrong(token.span(), "cannot be async"));
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        return Err(wrong(signature.generics.span(), "cannot be generic"));
    }
    if signature.inputs.len() != 1 {
        return Err(wrong(signature.inputs.span(), "takes exactly one argument, the event"));
    }
    match &signature.inputs[0] {
        FnArg::Receiver(receiver) => {
            return Err(wrong(receiver.span(), "must be a free function, not a method"));
        }
        FnArg::Typed(argument) => {
            let by_reference = matches!(*argument.ty, Type::Reference(_));
            if kind.borrows() && !by_reference {
                return Err(wrong(argument.ty.span(), "takes the event by reference"));
            }
            if !kind.borrows() && by_reference {
                return Err(wrong(argument.ty.span(), "takes the event by value"));
            }
        }
    }
    if let ReturnType::Default = signature.output {
        return Err(wrong(signature.span(), "must return an answer"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(kind: Kind, source: &str) -> Result<(), String> {
        let function: ItemFn = syn::parse_str(source).expect("test source parses");
        check_shape(kind, &function).map_err(|error| error.to_string())
    }

    #[test]
    fn accepts_each_kind_in_its_expected_shape() {
        assert_eq!(shape(Kind::Filter, "fn f(e: &Event) -> bool { true }"), Ok(()));
        assert_eq!(shape(Kind::Verify, "fn f(e: &Event) -> Verification { todo!() }"), Ok(()));
        assert_eq!(shape(Kind::Transform, "fn f(mut e: Event) -> Event { e }"), Ok(()));
        assert_eq!(
            shape(Kind::Plugin, "pub fn f(e: Event) -> Result<Verdict, Failure> { x }"),
            Ok(())
        );
    }

    #[test]
    fn refuses_other_shapes_with_the_expected_signature() {
        for (kind, source, problem) in [
            (Kind::Filter, "fn f(e: Event) -> bool { true }", "takes the event by reference"),
            (Kind::Plugin, "fn f(e: &Event) -> Verdict { x }", "takes the event by value"),
            (Kind::Filter, "fn f() -> bool { true }", "takes exactly one argument"),
            (Kind::Filter, "fn f(a: &Event, b: u8) -> bool { true }", "takes exactly one argument"),
            (Kind::Filter, "async fn f(e: &Event) -> bool { true }", "cannot be async"),
            (Kind::Filter, "fn f<T>(e: &T) -> bool { true }", "cannot be generic"),
            (Kind::Filter, "fn f(e: &Event) { }", "must return an answer"),
            (Kind::Verify, "fn f(&self) -> Verification { x }", "must be a free function"),
        ] {
            let message = shape(kind, source).expect_err(source);
            assert!(message.contains(problem), "{source}: {message}");
            assert!(message.contains(kind.signature()), "{source}: {message}");
        }
    }
}
