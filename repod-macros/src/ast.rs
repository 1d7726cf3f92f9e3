//! The typed model of a `#[repod::channel]` / `#[repod::listener]` impl and of a
//! `#[derive(repod::Message)]` input. Parsing only: the rules live in `valid.rs`.

use proc_macro2::Span;
use syn::{
    Attribute, DeriveInput, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, PatType, Type,
};

use crate::attr::{self, Args};
use crate::valid::{self, Errors};

/// Which trait the impl block gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[repod::channel]`: `Channel`, with state and lifecycle hooks.
    Channel,
    /// `#[repod::listener]`: `Listener`.
    Listener,
}

impl Kind {
    /// The macro as users write it, for messages.
    pub fn macro_name(self) -> &'static str {
        match self {
            Kind::Channel => "`#[repod::channel]`",
            Kind::Listener => "`#[repod::listener]`",
        }
    }
}

/// A parsed impl block.
pub struct Dispatcher {
    pub kind: Kind,
    pub args: Args,
    /// The user's impl with every `#[action]` attribute removed.
    pub item: ItemImpl,
    /// The last segment of the self type (`GameChannel`), if the self type is a path.
    pub self_ident: Option<Ident>,
    pub actions: Vec<Action>,
    /// `network_received`, if present and not itself a handler.
    pub fallback: Option<Fallback>,
    /// `on_connect` / `on_close` / `on_error` found in the impl (channels only).
    pub hooks: Vec<Hook>,
    /// Every other method (no `#[action]`, not a hook, not the fallback), checked for a
    /// forgotten `#[action]` or a misspelt hook.
    pub others: Vec<ImplItemFn>,
    /// Methods carrying more than one `#[action]`: the extra attributes.
    pub extra_attrs: Vec<Attribute>,
    /// Malformed `#[action…]` attributes.
    pub attr_errors: Option<syn::Error>,
}

/// The user's `network_received`.
pub struct Fallback {
    pub ident: Ident,
    /// Whether it takes a context before the raw message.
    pub has_ctx: bool,
}

/// A lifecycle hook of a channel: `on_connect`, `on_close` or `on_error`.
pub struct Hook {
    pub ident: Ident,
    /// The method as written.
    pub method: ImplItemFn,
    /// The parameters after the receiver.
    pub params: Vec<Param>,
}

impl Hook {
    /// The context parameter, if the hook takes one.
    pub fn ctx(&self) -> Option<&Param> {
        self.params.iter().find(|p| p.kind == ParamKind::Context)
    }

    /// The borrowed event parameter (`reason` / `error`), if the hook takes one.
    pub fn event(&self) -> Option<&Param> {
        self.params.iter().find(|p| p.kind == ParamKind::SharedRef)
    }
}

/// One handler.
pub struct Action {
    /// The written name, `None` for `#[action]`.
    pub name: Option<LitStr>,
    /// The `#[action…]` attribute.
    pub attr: Attribute,
    /// Whether the attribute failed to parse (already reported).
    pub malformed: bool,
    /// The method as written (attributes already stripped).
    pub method: ImplItemFn,
    /// The parameters after the receiver.
    pub params: Vec<Param>,
}

/// A parameter after the receiver, classified by its type.
pub struct Param {
    pub kind: ParamKind,
    pub ty: Type,
    /// `name: Type`, for errors.
    pub arg: PatType,
    /// Which context type the parameter names, through a reference or not.
    pub ctx_name: Option<CtxName>,
}

/// A context type recognised by its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CtxName {
    /// `Context<'_, Self>`: the server's.
    Server,
    /// `ClientContext<'_>`: the client's.
    Client,
}

impl CtxName {
    /// The context type of a dispatcher kind.
    pub fn of(kind: Kind) -> Self {
        match kind {
            Kind::Channel => CtxName::Server,
            Kind::Listener => CtxName::Client,
        }
    }
}

impl Param {
    /// For `&T` / `&mut T`, the referenced type; else the type itself.
    pub fn referent(&self) -> &Type {
        match &self.ty {
            Type::Reference(r) => &r.elem,
            other => other,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `&mut T`: the context.
    Context,
    /// `&T`: neither a context nor a payload.
    SharedRef,
    /// An owned type: the payload.
    Payload,
    /// An owned `ReplyTo<…>`: the token answering a request later.
    Reply,
}

impl Action {
    /// One span covering `[action…]`, for generated checks about the attribute.
    pub fn attr_span(&self) -> Span {
        self.attr.bracket_token.span.join()
    }

    pub fn ident(&self) -> &Ident {
        &self.method.sig.ident
    }

    /// The method's `#[cfg(…)]` attributes, copied onto everything generated for it.
    pub fn cfgs(&self) -> impl Iterator<Item = &Attribute> {
        self.method
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
    }

    /// The `ReplyTo` parameter, if the handler answers later.
    pub fn reply_token(&self) -> Option<&Param> {
        self.params.iter().find(|p| p.kind == ParamKind::Reply)
    }

    pub fn payload(&self) -> Option<&Type> {
        self.params
            .iter()
            .find(|p| p.kind == ParamKind::Payload && p.ctx_name.is_none())
            .map(|p| &p.ty)
    }

    /// The payload type as intended: the owned payload, or else the type behind a borrowed
    /// `&Payload` (an error reported on its own, which must not also hide the payload).
    fn intended_payload(&self) -> Option<&Type> {
        self.payload().or_else(|| {
            self.params
                .iter()
                .find(|p| p.kind == ParamKind::SharedRef && p.ctx_name.is_none())
                .map(Param::referent)
        })
    }

    /// The generated variant's identifier: from the name, or from the payload type's name for
    /// `#[action]`. The identifier carries the method's span.
    pub fn variant(&self) -> Result<Ident, String> {
        let span = self.ident().span();
        if let Some(name) = &self.name {
            return match valid::variant_name(&name.value()) {
                Some(v) => Ok(Ident::new(&v, span)),
                None => Err(format!(
                    "action name {:?} yields no valid enum variant identifier; start it with a letter and use letters, digits, `_` or `-`",
                    name.value()
                )),
            };
        }
        match self.intended_payload() {
            Some(Type::Path(tp)) if tp.qself.is_none() => match tp.path.segments.last() {
                Some(seg) => Ok(Ident::new(&seg.ident.to_string(), span)),
                None => Err(String::from("this payload type has no name")),
            },
            Some(_) => Err(String::from(
                "cannot name the enum variant after this payload type; write the name: `#[action(\"name\")]`",
            )),
            None => Err(String::from(
                "`#[action]` without a name takes it from the payload type, but this handler has no payload; write the name: `#[action(\"name\")]`",
            )),
        }
    }
}

/// Parses the impl block. Only an item that is not an inherent impl fails here; the rest is
/// collected by `valid::check`.
pub fn parse_dispatcher(
    kind: Kind,
    args: Args,
    item: syn::Item,
) -> Result<Dispatcher, Box<syn::Item>> {
    let mut item = match item {
        syn::Item::Impl(item) if item.trait_.is_none() => item,
        other => return Err(Box::new(other)),
    };
    let self_ident = match &*item.self_ty {
        Type::Path(tp) if tp.qself.is_none() => tp.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let mut actions = Vec::new();
    let mut extra_attrs = Vec::new();
    let mut fallback = None;
    let mut hooks = Vec::new();
    let mut others = Vec::new();
    let mut attr_errors = Errors::default();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut found: Option<(attr::ActionAttr, Attribute, bool)> = None;
        let mut kept = Vec::new();
        for a in std::mem::take(&mut method.attrs) {
            if !attr::is_action(&a) {
                kept.push(a);
                continue;
            }
            if found.is_some() {
                extra_attrs.push(a);
                continue;
            }
            match attr::parse_action(&a) {
                Ok(parsed) => found = Some((parsed, a, false)),
                Err(e) => {
                    attr_errors.push(e);
                    // Still a handler, so it is not reported as a stray method.
                    found = Some((attr::ActionAttr { name: None }, a, true));
                }
            }
        }
        method.attrs = kept;
        let ident = method.sig.ident.to_string();
        match found {
            Some((parsed, attr, malformed)) => actions.push(Action {
                name: parsed.name,
                attr,
                malformed,
                params: params_of(method),
                method: method.clone(),
            }),
            None if ident == "network_received" => {
                let has_ctx = method
                    .sig
                    .inputs
                    .iter()
                    .filter(|a| matches!(a, FnArg::Typed(_)))
                    .count()
                    >= 2;
                fallback = Some(Fallback {
                    ident: method.sig.ident.clone(),
                    has_ctx,
                });
            }
            None if kind == Kind::Channel
                && matches!(ident.as_str(), "on_connect" | "on_close" | "on_error") =>
            {
                hooks.push(Hook {
                    ident: method.sig.ident.clone(),
                    params: params_of(method),
                    method: method.clone(),
                });
            }
            None => others.push(method.clone()),
        }
    }
    Ok(Dispatcher {
        kind,
        args,
        item,
        self_ident,
        actions,
        fallback,
        hooks,
        others,
        extra_attrs,
        attr_errors: attr_errors.into_error(),
    })
}

/// The parameters of a method after its receiver, classified.
pub fn params_of(method: &ImplItemFn) -> Vec<Param> {
    method
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(pt) => {
                let (kind, ctx_name) = match &*pt.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        (ParamKind::Context, ctx_name(&r.elem, false))
                    }
                    Type::Reference(r) => (ParamKind::SharedRef, ctx_name(&r.elem, false)),
                    other if is_reply_token(other) => (ParamKind::Reply, None),
                    other => (ParamKind::Payload, ctx_name(other, true)),
                };
                Some(Param {
                    kind,
                    ty: (*pt.ty).clone(),
                    arg: pt.clone(),
                    ctx_name,
                })
            }
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Whether a type is a reply token, by the last segment of its path: `ReplyTo<…>`.
fn is_reply_token(ty: &Type) -> bool {
    let Type::Path(tp) = ty else {
        return false;
    };
    tp.qself.is_none()
        && tp.path.segments.last().is_some_and(|last| {
            last.ident == "ReplyTo"
                && matches!(last.arguments, syn::PathArguments::AngleBracketed(_))
        })
}

/// Which context a type names, by the last segment of its path: `Context` or `ClientContext`.
/// An owned type counts only with a lifetime argument (`Context<'_, Self>`), since a message
/// type may itself be called `Context`.
fn ctx_name(ty: &Type, owned: bool) -> Option<CtxName> {
    let Type::Path(tp) = ty else {
        return None;
    };
    let last = tp.path.segments.last()?;
    let has_lifetime = match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .any(|a| matches!(a, syn::GenericArgument::Lifetime(_))),
        _ => false,
    };
    if owned && !has_lifetime {
        return None;
    }
    match last.ident.to_string().as_str() {
        "Context" => Some(CtxName::Server),
        "ClientContext" => Some(CtxName::Client),
        _ => None,
    }
}

/// A `#[derive(repod::Message)]` input.
pub struct MessageInput<'a> {
    pub input: &'a DeriveInput,
    pub name: Option<LitStr>,
    /// Whether a name attribute was written (even a malformed one).
    pub has_attr: bool,
    /// The codec declared with `#[repod(codec = "…")]`, if any.
    pub codec: Option<attr::CodecDecl>,
    /// The reply type of a request: `#[reply(Type)]`.
    pub reply: Option<Type>,
}

/// Parses a derive input; attribute mistakes go into `errors`.
pub fn parse_message<'a>(input: &'a DeriveInput, errors: &mut Errors) -> MessageInput<'a> {
    let attrs = attr::parse_message_attrs(&input.attrs, errors);
    MessageInput {
        input,
        name: attrs.name,
        has_attr: attrs.name_written,
        codec: attrs.codec,
        reply: attrs.reply,
    }
}
