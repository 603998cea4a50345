//! Derive macros of [`inngest-sdk`](https://docs.rs/inngest-sdk): typed events.
//!
//! Use them through the SDK's re-exports (`inngest_sdk::Event`, `inngest_sdk::EventSet`); the
//! generated code names the SDK as `::inngest_sdk`, or the path given with
//! `#[event(crate = "my_alias")]` when the SDK is renamed in `Cargo.toml`.
//!
//! * `#[derive(Event)] #[event(name = "shop/order.created")]` on a struct (or any type with
//!   serde's `Serialize` and `Deserialize`) implements `inngest_sdk::EventType`: the one place
//!   that binds the event's name to its data type.
//! * `#[derive(EventSet)]` on an enum of newtype variants, each holding an event type,
//!   implements `inngest_sdk::EventSet` (decoding by the event's name) and
//!   `inngest_sdk::IntoEvent` (sending the variant's event).

#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::too_many_lines)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Fields, LitStr, Path};

/// Prefix of Inngest's own events; user events may not use it.
const RESERVED_PREFIX: &str = "inngest/";

/// Implements `inngest_sdk::EventType` with the name given in `#[event(name = "...")]`.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand_event(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `inngest_sdk::EventSet` and `inngest_sdk::IntoEvent` for an enum whose variants
/// each hold one event type, e.g. `enum ShopEvent { Created(OrderCreated), Paid(OrderPaid) }`.
#[proc_macro_derive(EventSet, attributes(event))]
pub fn derive_event_set(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand_event_set(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What `#[event(...)]` says.
struct EventAttr {
    name: Option<LitStr>,
    krate: Option<Path>,
}

fn parse_attrs(input: &DeriveInput) -> syn::Result<EventAttr> {
    let mut attr = EventAttr {
        name: None,
        krate: None,
    };
    for a in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        a.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let value = meta.value()?;
                let lit: LitStr = value.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "the event name must be a string literal, e.g. `name = \"shop/order.created\"`",
                    )
                })?;
                attr.name = Some(lit);
                Ok(())
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                attr.krate = Some(lit.parse()?);
                Ok(())
            } else {
                Err(meta.error("unknown `event` option: expected `name = \"...\"` or `crate = \"...\"`"))
            }
        })?;
    }
    Ok(attr)
}

fn krate(attr: &EventAttr) -> TokenStream2 {
    match &attr.krate {
        Some(path) => quote!(#path),
        None => quote!(::inngest_sdk),
    }
}

/// Checks the name like the SDK does before sending: non-empty, not `inngest/…`.
fn check_name(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    if name.trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "the event name must not be empty",
        ));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(syn::Error::new(
            lit.span(),
            format!("the event name {name:?} uses the reserved `{RESERVED_PREFIX}` prefix"),
        ));
    }
    Ok(())
}

fn expand_event(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let attr = parse_attrs(input)?;
    let Some(name) = attr.name.as_ref() else {
        return Err(syn::Error::new(
            input.ident.span(),
            "missing the event name: add `#[event(name = \"app/thing.happened\")]`",
        ));
    };
    check_name(name)?;
    let krate = krate(&attr);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #krate::EventType for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
        }
    })
}

fn expand_event_set(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let attr = parse_attrs(input)?;
    if let Some(name) = &attr.name {
        return Err(syn::Error::new(
            name.span(),
            "an event set takes its names from its variants' event types; remove `name`",
        ));
    }
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "`EventSet` derives only on an enum, e.g. `enum ShopEvent { Created(OrderCreated) }`",
        ));
    };
    if data.variants.is_empty() {
        return Err(syn::Error::new(
            input.ident.span(),
            "an event set needs at least one variant",
        ));
    }
    let mut variants = Vec::new();
    let mut types = Vec::new();
    for v in &data.variants {
        match &v.fields {
            Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                variants.push(v.ident.clone());
                types.push(f.unnamed[0].ty.clone());
            }
            _ => {
                return Err(syn::Error::new(
                    v.span(),
                    "each variant holds exactly one event type, e.g. `Created(OrderCreated)`",
                ))
            }
        }
    }
    let krate = krate(&attr);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let decode = quote! {
        fn names() -> ::std::vec::Vec<&'static str> {
            ::std::vec![#(<#types as #krate::EventType>::NAME),*]
        }
        fn from_parts(
            name: &str,
            data: #krate::event::JsonValue,
        ) -> ::std::result::Result<Self, #krate::event::DecodeError> {
            #(
                if name == <#types as #krate::EventType>::NAME {
                    return #krate::event::decode_data::<#types>(data).map(Self::#variants);
                }
            )*
            ::std::result::Result::Err(#krate::event::DecodeError::unknown_name(
                name,
                &<Self as #krate::EventSet>::names(),
            ))
        }
    };
    Ok(quote! {
        impl #impl_generics #krate::EventSet for #ident #ty_generics #where_clause {
            #decode
        }
        impl #impl_generics #krate::IntoEvent for #ident #ty_generics #where_clause {
            fn into_event(
                self,
            ) -> ::std::result::Result<#krate::Event, #krate::event::EncodeError> {
                match self {
                    #(Self::#variants(e) => #krate::IntoEvent::into_event(e),)*
                }
            }
        }
    })
}
