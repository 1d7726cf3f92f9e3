//! What is emitted for invalid input: the user's item with `#[action]` attributes stripped, the
//! errors, and stubs of the generated items, so one mistake does not cascade into errors about
//! missing traits or types elsewhere.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{ImplItem, Item};

use crate::ast::{Dispatcher, Kind};
use crate::attr;

/// Removes `#[action]` attributes from the methods of an impl block.
pub fn strip_actions(item: &mut Item) {
    if let Item::Impl(imp) = item {
        for impl_item in &mut imp.items {
            if let ImplItem::Fn(method) = impl_item {
                method.attrs.retain(|a| !attr::is_action(a));
            }
        }
    }
}

/// The item that is not an inherent impl, stripped, beside the error.
pub fn item(mut item: Item, error: syn::Error) -> TokenStream {
    strip_actions(&mut item);
    let error = error.to_compile_error();
    quote!(#item #error)
}

/// The stripped impl, stubs of the trait impl and the message enum, and the errors.
pub fn dispatcher(d: &Dispatcher, error: syn::Error) -> TokenStream {
    let item = &d.item;
    let error = error.to_compile_error();
    let mut out = quote!(#item #error);
    let Some(self_ident) = &d.self_ident else {
        return out;
    };
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    out.extend(match d.kind {
        Kind::Channel => {
            let state = match &d.args.state {
                Some(ty) => quote!(#ty),
                None => quote!(()),
            };
            quote! {
                impl #impl_generics ::repod::__private::Channel for #self_ty #where_clause {
                    type State = #state;
                    type Inbound = ::repod::__private::RawMessage;
                    const ACTIONS: &'static [&'static str] = &[];
                    fn decode(msg: ::repod::__private::RawMessage) -> ::repod::__private::RawMessage {
                        msg
                    }
                    fn dispatch(&mut self, _: &mut ::repod::__private::Context<'_, Self>, _: ::repod::__private::RawMessage) {
                        ::core::unreachable!()
                    }
                }
            }
        }
        Kind::Listener => quote! {
            impl #impl_generics ::repod::__private::Listener for #self_ty #where_clause {
                const ACTIONS: &'static [&'static str] = &[];
                fn dispatch(&mut self, _: &mut ::repod::__private::ClientContext<'_>, _: ::repod::__private::RawMessage) {
                    ::core::unreachable!()
                }
            }
        },
    });
    let enum_ident = format_ident!("{}Message", self_ident);
    let vis = &d.args.vis;
    out.extend(quote! {
        #vis enum #enum_ident {}
    });
    out
}
