//! Code generation from a checked model. Generated code names only `::repod::__private::…`
//! and `::core::…` paths, so it compiles under `#![no_implicit_prelude]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, FnArg, GenericParam, Ident, ImplItemFn, LitStr, ReturnType, Type};

use crate::ast::{self, Action, CtxName, Dispatcher, Kind, MessageInput, ParamKind};

/// Generates everything for a checked impl block.
pub struct Generator<'a> {
    d: &'a Dispatcher,
    self_ident: &'a Ident,
}

impl<'a> Generator<'a> {
    /// `None` if the model has no self ident (rejected by `valid::check`).
    pub fn new(d: &'a Dispatcher) -> Option<Self> {
        Some(Generator {
            self_ident: d.self_ident.as_ref()?,
            d,
        })
    }

    /// `"chat"`, or `<Nick as Message>::ACTION` for `#[action]`.
    fn name_expr(a: &Action) -> TokenStream {
        match (&a.name, a.payload()) {
            (Some(name), _) => name.to_token_stream(),
            (None, Some(ty)) => quote_spanned! {ty.span()=>
                <#ty as ::repod::__private::Message>::ACTION
            },
            (None, None) => quote!(""),
        }
    }

    /// The pattern of a `match` on the action name.
    fn pattern(a: &Action) -> TokenStream {
        match &a.name {
            Some(name) => name.to_token_stream(),
            None => {
                let name = Self::name_expr(a);
                quote!(__repod_action if __repod_action == #name)
            }
        }
    }

    fn variant(a: &Action) -> Ident {
        a.variant()
            .expect("variant identifiers are checked by valid::check")
    }

    fn ctx_ty(&self) -> TokenStream {
        match self.d.kind {
            Kind::Channel => quote!(::repod::__private::Context<'_, Self>),
            Kind::Listener => quote!(::repod::__private::ClientContext<'_>),
        }
    }

    fn actions_const(&self) -> TokenStream {
        let names = self.d.actions.iter().map(|a| {
            let cfgs = a.cfgs();
            let name = Self::name_expr(a);
            quote!(#(#cfgs)* #name)
        });
        quote!(&[#(#names),*])
    }

    /// The statement calling one handler (with `__repod_payload` if it takes one) and
    /// reporting its result.
    fn call(a: &Action) -> TokenStream {
        let name = Self::name_expr(a);
        let method = a.ident();
        // Arguments carry the span of the parameter they fill, so a type mismatch the macro
        // cannot see (a context type alias to another channel, say) lands on that parameter.
        let ctx_arg = a
            .params
            .iter()
            .find(|p| p.kind == ParamKind::Context)
            .map(|p| quote_spanned!(p.ty.span()=> __repod_ctx,));
        let payload_arg = a.payload().map(|_| quote!(__repod_payload));
        let ret_span = match &a.method.sig.output {
            ReturnType::Default => method.span(),
            ReturnType::Type(_, ty) => ty.span(),
        };
        let call = quote_spanned! {method.span()=> Self::#method(self, #ctx_arg #payload_arg) };
        quote_spanned! {ret_span=>
            ::repod::__private::HandlerResult::report(#call, __repod_ctx, #name);
        }
    }

    /// The statements calling one channel handler and answering the request it may have
    /// received (`__repod_rid`): through the payload's responder, or a `ReplyTo` made for the
    /// handler.
    fn channel_call(a: &Action) -> TokenStream {
        let name = Self::name_expr(a);
        let method = a.ident();
        let ctx_arg = a
            .params
            .iter()
            .find(|p| p.kind == ParamKind::Context)
            .map(|p| quote_spanned!(p.ty.span()=> __repod_ctx,));
        let ret_span = match &a.method.sig.output {
            ReturnType::Default => method.span(),
            ReturnType::Type(_, ty) => ty.span(),
        };
        let Some(payload) = a.payload() else {
            let call = quote_spanned! {method.span()=> Self::#method(self, #ctx_arg) };
            return quote_spanned! {ret_span=>
                ::repod::__private::HandlerResult::report(#call, __repod_ctx, #name);
                ::repod::__private::not_answered(__repod_ctx, #name, __repod_rid);
            };
        };
        if let Some(token) = a.reply_token() {
            let make = quote_spanned! {token.ty.span()=>
                ::repod::__private::Context::reply_to::<#payload>(__repod_ctx, __repod_rid)
            };
            let call = quote_spanned! {method.span()=>
                Self::#method(self, #ctx_arg __repod_payload, __repod_reply)
            };
            return quote_spanned! {ret_span=>
                let __repod_reply = #make;
                ::repod::__private::HandlerResult::report(#call, __repod_ctx, #name);
            };
        }
        let call = quote_spanned! {method.span()=> Self::#method(self, #ctx_arg __repod_payload) };
        let responder = quote_spanned! {payload.span()=>
            (&::repod::__private::ReplyProbe::<#payload>::new()).__repod_responder()
        };
        quote_spanned! {ret_span=>
            #[allow(unused_imports)]
            use ::repod::__private::{PlainProbe as _, RequestProbe as _};
            #responder.respond(#call, __repod_ctx, #name, __repod_rid);
        }
    }

    /// The expression decoding `msg` (a `&RawMessage`) into the payload type `ty`.
    ///
    /// The decoder is picked by whether `ty` is a `Message`: if it is not, that is reported once
    /// by the `Message` check of `checks()`, not a second time as a missing `Deserialize`.
    fn decode_expr(ty: &Type, msg: &TokenStream) -> TokenStream {
        quote_spanned! {ty.span()=>
            {
                #[allow(unused_imports)]
                use ::repod::__private::{MessageProbe as _, OtherProbe as _};
                (&::repod::__private::PayloadProbe::<#ty>::new()).__repod_decoder().decode(#msg)
            }
        }
    }

    /// The `match` arm decoding and calling one handler (listeners).
    fn arm(a: &Action) -> TokenStream {
        let pattern = Self::pattern(a);
        let pattern = {
            let cfgs = a.cfgs();
            quote!(#(#cfgs)* #pattern)
        };
        let body = Self::call(a);
        match a.payload() {
            None => quote!(#pattern => { #body }),
            Some(ty) => {
                let decode = Self::decode_expr(ty, &quote!(&__repod_msg));
                quote! {
                    #pattern => match #decode {
                        ::core::result::Result::Ok(__repod_payload) => { #body }
                        ::core::result::Result::Err(__repod_error) => {
                            ::repod::__private::DispatchContext::invalid_body(__repod_ctx, &__repod_msg, __repod_error);
                        }
                    }
                }
            }
        }
    }

    /// The fallback statement for `__repod_msg`: `network_received` or the context's default.
    fn fallback_call(&self) -> TokenStream {
        match &self.d.fallback {
            Some(f) => {
                let ident = &f.ident;
                let ctx_arg = f.has_ctx.then(|| quote!(__repod_ctx,));
                let call = quote_spanned! {ident.span()=>
                    Self::#ident(self, #ctx_arg __repod_msg)
                };
                quote! {
                    ::repod::__private::HandlerResult::report(#call, __repod_ctx, "network_received");
                }
            }
            None => quote! {
                ::repod::__private::DispatchContext::unhandled(__repod_ctx, &__repod_msg);
            },
        }
    }

    fn fallback_arm(&self) -> TokenStream {
        let call = self.fallback_call();
        quote!(_ => { #call })
    }

    /// The hidden enum a channel's `decode` produces off the dispatch loop.
    fn inbound_ident(&self) -> Ident {
        format_ident!("__{}Inbound", self.self_ident)
    }

    fn inbound_enum(&self) -> TokenStream {
        let ident = self.inbound_ident();
        let variants = self.d.actions.iter().map(|a| {
            let cfgs = a.cfgs();
            let variant = Self::variant(a);
            match a.payload() {
                Some(ty) => quote!(#(#cfgs)* #variant(#ty, ::core::option::Option<u64>)),
                None => quote!(#(#cfgs)* #variant(::core::option::Option<u64>)),
            }
        });
        quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types, private_interfaces, dead_code, clippy::large_enum_variant)]
            pub enum #ident {
                #(#variants,)*
                __RepodInvalid(::repod::__private::RawMessage, ::repod::__private::CodecError),
                __RepodUnknown(::repod::__private::RawMessage),
            }
        }
    }

    /// `Channel::decode` and `Channel::dispatch`: decode on the connection's task, run the
    /// handler on the loop.
    fn channel_fns(&self, ctx_ty: &TokenStream) -> TokenStream {
        let inbound = self.inbound_ident();
        let decode_arms = self.d.actions.iter().map(|a| {
            let cfgs: Vec<_> = a.cfgs().collect();
            let pattern = Self::pattern(a);
            let variant = Self::variant(a);
            match a.payload() {
                Some(ty) => {
                    let decode = Self::decode_expr(ty, &quote!(&__repod_msg));
                    quote! {
                        #(#cfgs)* #pattern => match #decode {
                            ::core::result::Result::Ok(__repod_payload) => #inbound::#variant(__repod_payload, __repod_rid),
                            ::core::result::Result::Err(__repod_error) => #inbound::__RepodInvalid(__repod_msg, __repod_error),
                        },
                    }
                }
                None => quote!(#(#cfgs)* #pattern => #inbound::#variant(__repod_rid),),
            }
        });
        let dispatch_arms = self.d.actions.iter().map(|a| {
            let cfgs: Vec<_> = a.cfgs().collect();
            let variant = Self::variant(a);
            let body = Self::channel_call(a);
            match a.payload() {
                Some(_) => {
                    quote!(#(#cfgs)* #inbound::#variant(__repod_payload, __repod_rid) => { #body })
                }
                None => quote!(#(#cfgs)* #inbound::#variant(__repod_rid) => { #body }),
            }
        });
        let fallback = match &self.d.fallback {
            // A request the fallback leaves unanswered gets an error reply after it.
            Some(_) => {
                let call = self.fallback_call();
                quote! {
                    let __repod_request = ::repod::__private::pending_request(&__repod_msg);
                    #call
                    ::repod::__private::Context::__after_fallback(__repod_ctx, __repod_request);
                }
            }
            None => self.fallback_call(),
        };
        quote! {
            type Inbound = #inbound;

            fn decode(__repod_msg: ::repod::__private::RawMessage) -> #inbound {
                #[allow(unused_variables)]
                let __repod_rid = ::repod::__private::RawMessage::request_id(&__repod_msg);
                match ::repod::__private::RawMessage::action(&__repod_msg) {
                    #(#decode_arms)*
                    _ => #inbound::__RepodUnknown(__repod_msg),
                }
            }

            fn dispatch(&mut self, __repod_ctx: &mut #ctx_ty, __repod_inbound: #inbound) {
                match __repod_inbound {
                    #(#dispatch_arms)*
                    #inbound::__RepodInvalid(__repod_msg, __repod_error) => {
                        ::repod::__private::DispatchContext::invalid_body(__repod_ctx, &__repod_msg, __repod_error);
                    }
                    #inbound::__RepodUnknown(__repod_msg) => { #fallback }
                }
            }
        }
    }

    /// The trait's hook methods, forwarded to the user's hooks of the same name. A hook may
    /// leave out the context and the event, as handlers may.
    fn hooks(&self) -> TokenStream {
        self.d
            .hooks
            .iter()
            .map(|hook| {
                let ident = &hook.ident;
                let ctx_arg = hook
                    .ctx()
                    .map(|p| quote_spanned!(p.ty.span()=> __repod_ctx,));
                let event_arg = hook
                    .event()
                    .map(|p| quote_spanned!(p.ty.span()=> __repod_event));
                let call = quote_spanned! {ident.span()=> Self::#ident(self, #ctx_arg #event_arg) };
                let ctx_ty = quote!(&mut ::repod::__private::Context<'_, Self>);
                match ident.to_string().as_str() {
                    "on_connect" => quote! {
                        fn on_connect(&mut self, __repod_ctx: #ctx_ty) { #call; }
                    },
                    "on_close" => quote! {
                        fn on_close(&mut self, __repod_ctx: #ctx_ty, __repod_event: &::repod::__private::CloseReason) { #call; }
                    },
                    _ => quote! {
                        fn on_error(&mut self, __repod_ctx: #ctx_ty, __repod_event: &::repod::__private::ChannelError) { #call; }
                    },
                }
            })
            .collect()
    }

    /// `impl Channel for X` / `impl Listener for X`.
    fn trait_impl(&self) -> TokenStream {
        let item = &self.d.item;
        let self_ty = &item.self_ty;
        let (impl_generics, _, where_clause) = item.generics.split_for_impl();
        let ctx_ty = self.ctx_ty();
        let actions = self.actions_const();
        let (trait_path, state, hooks) = match self.d.kind {
            Kind::Channel => {
                let state = match &self.d.args.state {
                    Some(ty) => ty.to_token_stream(),
                    None => quote!(()),
                };
                (
                    quote!(::repod::__private::Channel),
                    quote!(type State = #state;),
                    self.hooks(),
                )
            }
            Kind::Listener => {
                // A listener type without lifetimes is `'static`, so it can offer itself as
                // `Any` to request callbacks written for it.
                let is_static =
                    item.generics.params.is_empty() && !has_lifetime(self_ty.to_token_stream());
                let as_any = is_static.then(|| {
                    quote! {
                        fn as_any_mut(&mut self) -> ::core::option::Option<&mut dyn ::core::any::Any> {
                            ::core::option::Option::Some(self)
                        }
                    }
                });
                (
                    quote!(::repod::__private::Listener),
                    quote!(),
                    as_any.unwrap_or_default(),
                )
            }
        };
        let fns = match self.d.kind {
            Kind::Channel => self.channel_fns(&ctx_ty),
            Kind::Listener => {
                let arms = self.d.actions.iter().map(Self::arm);
                let fallback = self.fallback_arm();
                quote! {
                    fn dispatch(&mut self, __repod_ctx: &mut #ctx_ty, __repod_msg: ::repod::__private::RawMessage) {
                        match ::repod::__private::RawMessage::action(&__repod_msg) {
                            #(#arms)*
                            #fallback
                        }
                    }
                }
            }
        };
        quote! {
            #[automatically_derived]
            #[allow(unused_qualifications, clippy::used_underscore_binding)]
            impl #impl_generics #trait_path for #self_ty #where_clause {
                #state
                const ACTIONS: &'static [&'static str] = #actions;

                #fns

                #hooks
            }
        }
    }

    /// The typed message enum and its inherent impl.
    fn message_enum(&self) -> TokenStream {
        let enum_ident = format_ident!("{}Message", self.self_ident);
        let vis = &self.d.args.vis;
        let kind = match self.d.kind {
            Kind::Channel => "channel",
            Kind::Listener => "listener",
        };
        let doc = format!(
            " The messages handled by the [`{}`] {kind}, one variant per action, decoded by [`{enum_ident}::decode`].",
            self.self_ident
        );
        let actions = self.actions_const();
        let mut variants = Vec::new();
        let mut action_arms = Vec::new();
        let mut decode_arms = Vec::new();
        for a in &self.d.actions {
            let variant = Self::variant(a);
            let name = Self::name_expr(a);
            let cfgs: Vec<_> = a.cfgs().collect();
            let pattern = Self::pattern(a);
            let pattern = quote!(#(#cfgs)* #pattern);
            let variant_doc = match &a.name {
                Some(n) => format!(" The `{:?}` action.", n.value()),
                None => String::from(" The action of its payload type."),
            };
            match a.payload() {
                Some(ty) => {
                    variants.push(quote!(#(#cfgs)* #[doc = #variant_doc] #variant(#ty)));
                    action_arms.push(quote!(#(#cfgs)* #enum_ident::#variant(..) => #name));
                    let decode = Self::decode_expr(ty, &quote!(msg));
                    decode_arms.push(quote! {
                        #pattern => match #decode {
                            ::core::result::Result::Ok(payload) => ::core::result::Result::Ok(::core::option::Option::Some(#enum_ident::#variant(payload))),
                            ::core::result::Result::Err(error) => ::core::result::Result::Err(error),
                        }
                    });
                }
                None => {
                    variants.push(quote!(#(#cfgs)* #[doc = #variant_doc] #variant));
                    action_arms.push(quote!(#(#cfgs)* #enum_ident::#variant => #name));
                    decode_arms.push(quote! {
                        #pattern => ::core::result::Result::Ok(::core::option::Option::Some(#enum_ident::#variant)),
                    });
                }
            }
        }
        quote! {
            #[doc = #doc]
            #[allow(clippy::large_enum_variant, dead_code)]
            #vis enum #enum_ident {
                #(#variants,)*
            }

            #[automatically_derived]
            #[allow(unused_qualifications, dead_code)]
            impl #enum_ident {
                /// The action names, in declaration order.
                pub const ACTIONS: &'static [&'static str] = #actions;

                /// The action name of this message.
                pub fn action(&self) -> &'static str {
                    match *self {
                        #(#action_arms,)*
                    }
                }

                /// Decodes a raw message into its variant; `Ok(None)` for an action this type does
                /// not handle, `Err` when the body does not fit the payload type.
                pub fn decode(
                    msg: &::repod::__private::RawMessage,
                ) -> ::core::result::Result<::core::option::Option<Self>, ::repod::__private::CodecError> {
                    match ::repod::__private::RawMessage::action(msg) {
                        #(#decode_arms)*
                        _ => ::core::result::Result::Ok(::core::option::Option::None),
                    }
                }
            }
        }
    }

    /// Compile-time checks: payload types are messages, written names agree with the types,
    /// and names taken from types do not repeat.
    fn checks(&self) -> TokenStream {
        let mut out = TokenStream::new();
        for (i, a) in self.d.actions.iter().enumerate() {
            let cfgs: Vec<_> = a.cfgs().collect();
            if let Some(ty) = a.payload() {
                // Written as the same projection as every other use of the name, so that a
                // payload type that is not a `Message` yields one error, not one per use.
                out.extend(quote_spanned! {ty.span()=>
                    #(#cfgs)*
                    const _: &str = <#ty as ::repod::__private::Message>::ACTION;
                });
                if let Some(name) = &a.name {
                    let message = format!(
                        "`#[action({:?})]` disagrees with the `#[action]` of the payload type `{}`; use the type's name, or write `#[action]` to take it from the type",
                        name.value(),
                        ty.to_token_stream().to_string().replace(' ', ""),
                    );
                    out.extend(quote_spanned! {name.span()=>
                        #(#cfgs)*
                        const _: () = ::core::assert!(
                            ::repod::__private::str_eq(#name, <#ty as ::repod::__private::Message>::ACTION),
                            #message
                        );
                    });
                }
            }
            for b in &self.d.actions[..i] {
                if a.name.is_some() && b.name.is_some() {
                    continue;
                }
                let (x, y) = (Self::name_expr(b), Self::name_expr(a));
                let message = format!(
                    "handlers `{}` and `{}` receive the same action; each action has one handler",
                    b.ident(),
                    a.ident()
                );
                let span = a.name.as_ref().map_or_else(|| a.attr_span(), LitStr::span);
                let both = a.cfgs().chain(b.cfgs());
                out.extend(quote_spanned! {span=>
                    #(#both)*
                    const _: () = ::core::assert!(!::repod::__private::str_eq(#x, #y), #message);
                });
            }
        }
        out.extend(self.missing_action_checks());
        out
    }

    /// For each method shaped like a handler but without `#[action]`: a check that fails to
    /// compile when its would-be payload type is a `Message` ("did you mean `#[action]`?").
    /// Generic impls are not checked: the check lives outside the impl.
    fn missing_action_checks(&self) -> TokenStream {
        if !self.d.item.generics.params.is_empty() {
            return TokenStream::new();
        }
        let mut out = TokenStream::new();
        for method in &self.d.others {
            let Some(ty) = handler_shaped(self.d.kind, method) else {
                continue;
            };
            let cfgs = method.attrs.iter().filter(|a| a.path().is_ident("cfg"));
            let span = method.sig.ident.span();
            let probe = quote_spanned! {ty.span()=>
                (&::repod::__private::PayloadProbe::<#ty>::new()).__repod_decoder()
            };
            out.extend(quote_spanned! {span=>
                #(#cfgs)*
                const _: () = {
                    #[allow(dead_code, unused_imports)]
                    fn __repod_missing_action() {
                        use ::repod::__private::{MessageProbe as _, OtherProbe as _};
                        ::repod::__private::no_action::<#ty, _>(#probe);
                    }
                };
            });
        }
        out
    }

    pub fn expand(&self) -> TokenStream {
        let item = &self.d.item;
        let mut out = quote!(#item);
        if self.d.kind == Kind::Channel {
            out.extend(self.inbound_enum());
        }
        out.extend(self.trait_impl());
        out.extend(self.message_enum());
        out.extend(self.checks());
        out
    }
}

/// The payload type of a method without `#[action]` that has a handler's shape: `&mut self`,
/// optionally the kind's context, one owned parameter, no generics, returning `()` or a
/// `Result`. `None` also when the type cannot be named outside the impl (`Self`, lifetimes).
fn handler_shaped(kind: Kind, method: &ImplItemFn) -> Option<Type> {
    let sig = &method.sig;
    let mut_self = matches!(
        sig.inputs.first(),
        Some(FnArg::Receiver(r)) if matches!(&*r.ty, Type::Reference(t) if t.mutability.is_some())
    );
    if !mut_self || sig.asyncness.is_some() || !sig.generics.params.is_empty() {
        return None;
    }
    let returns_ok = match &sig.output {
        ReturnType::Default => true,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) => t.elems.is_empty(),
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
    };
    if !returns_ok {
        return None;
    }
    let params = ast::params_of(method);
    let payload = match params.as_slice() {
        [payload] => payload,
        [ctx, payload]
            if ctx.kind == ParamKind::Context && ctx.ctx_name == Some(CtxName::of(kind)) =>
        {
            payload
        }
        _ => return None,
    };
    if payload.kind != ParamKind::Payload || payload.ctx_name.is_some() {
        return None;
    }
    nameable_outside(payload.ty.to_token_stream()).then(|| payload.ty.clone())
}

/// Whether tokens hold a lifetime (`'a`, `'_`), at any depth.
fn has_lifetime(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '\'',
        proc_macro2::TokenTree::Group(g) => has_lifetime(g.stream()),
        _ => false,
    })
}

/// Whether a type can be named at module level: no `Self`, `impl`, `_`, or lifetime other
/// than `'static`.
fn nameable_outside(tokens: TokenStream) -> bool {
    let mut lifetime_next = false;
    for tt in tokens {
        match tt {
            proc_macro2::TokenTree::Ident(i) => {
                if i == "Self" || i == "impl" || i == "_" || (lifetime_next && i != "static") {
                    return false;
                }
                lifetime_next = false;
            }
            proc_macro2::TokenTree::Punct(p) => {
                lifetime_next = p.as_char() == '\'';
            }
            proc_macro2::TokenTree::Group(g) => {
                if !nameable_outside(g.stream()) {
                    return false;
                }
                lifetime_next = false;
            }
            proc_macro2::TokenTree::Literal(_) => lifetime_next = false,
        }
    }
    true
}

/// `impl Message for T`.
pub fn message_impl(m: &MessageInput<'_>) -> TokenStream {
    let input: &DeriveInput = m.input;
    if !matches!(input.data, Data::Struct(_)) {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let name = match &m.name {
        Some(name) => name.clone(),
        None => LitStr::new("", Span::call_site()),
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let generic = input
        .generics
        .params
        .iter()
        .any(|p| matches!(p, GenericParam::Type(_)));
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(ToTokens::to_token_stream).collect())
        .unwrap_or_default();
    if generic {
        predicates.push(quote!(Self: ::repod::__private::serde::Serialize));
    }
    let where_clause = (!predicates.is_empty()).then(|| quote!(where #(#predicates),*));
    let request = m.reply.as_ref().map(|reply| {
        // Spanned on the reply type, so a type that cannot be a reply is reported there.
        let reply_ty = quote_spanned!(reply.span()=> #reply);
        quote! {
            #[automatically_derived]
            impl #impl_generics ::repod::__private::Request for #ident #ty_generics #where_clause {
                type Reply = #reply_ty;
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #impl_generics ::repod::__private::Message for #ident #ty_generics #where_clause {
            const ACTION: &'static str = #name;
        }
        #request
    }
}
