//! What is emitted for invalid input: the user's item with `#[action]` attributes stripped, the
//! errors, and stubs of the generated items, so one mistake does not cascade into errors about
//! missing traits or types elsewhere.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, ImplItem, ImplItemFn, Item};

use crate::ast::{self, Action, CtxName, Dispatcher, Kind};
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
///
/// Handlers taking the other side's context (a listener's handler taking the server's
/// `Context`, a channel's taking `ClientContext`) are left out: their signature or body would
/// only repeat the reported mistake as type errors.
pub fn dispatcher(d: &Dispatcher, error: syn::Error) -> TokenStream {
    let own = CtxName::of(d.kind);
    let wrong_side: Vec<&Ident> = d
        .actions
        .iter()
        .filter(|a| {
            a.params
                .iter()
                .any(|p| p.ctx_name.is_some_and(|c| c != own))
        })
        .map(Action::ident)
        .collect();
    let mut item = d.item.clone();
    item.items.retain(|i| match i {
        ImplItem::Fn(f) => !wrong_side.contains(&&f.sig.ident),
        _ => true,
    });
    let item = &item;
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

/// What the `#[action]` attribute emits when it runs, that is outside a `#[repod::channel]` or
/// `#[repod::listener]` impl: the error and the method, unless the method names the server's
/// `Context`, whose type is then not a channel (it would be reported again, once for the
/// signature and once per use in the body).
pub fn stray_action(error: syn::Error, input: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    match syn::parse2::<ImplItemFn>(input.clone()) {
        Ok(method)
            if ast::params_of(&method)
                .iter()
                .any(|p| p.ctx_name == Some(CtxName::Server)) =>
        {
            error
        }
        _ => quote!(#error #input),
    }
}
