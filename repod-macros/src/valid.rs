//! The rules, checked on the model without producing tokens. Every broken rule is collected so
//! one build shows them all, each on the user's token at fault.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Data, FnArg, GenericParam, ImplItemFn, Item, Type};

use crate::ast::{Action, CtxName, Dispatcher, Hook, Kind, MessageInput, ParamKind};
use crate::attr::CodecDecl;

/// Collected errors.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn extend(&mut self, error: Option<syn::Error>) {
        if let Some(e) = error {
            self.push(e);
        }
    }

    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Why an action name is unusable, or `None` if it is fine.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an action name cannot be empty (`\"\"` is what a MessagePack map without \"action\" routes to); write a name like \"chat\"")
    } else if name.chars().any(char::is_control) {
        Some("an action name cannot contain control characters; use letters, digits, `_` or `-`")
    } else if name.chars().any(char::is_whitespace) {
        Some("an action name cannot contain whitespace; join the words with `_` or camelCase")
    } else {
        None
    }
}

/// The enum variant for an action name, in UpperCamelCase: `"join_team"` → `JoinTeam`,
/// `"socketConnect"` → `SocketConnect`. `None` if no valid identifier results.
pub fn variant_name(action: &str) -> Option<String> {
    let mut out = String::with_capacity(action.len());
    for part in action.split(|c: char| !c.is_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_numeric()) {
        return None;
    }
    syn::parse_str::<syn::Ident>(&out).ok().map(|_| out)
}

/// Checks a parsed impl block.
pub fn check(d: &Dispatcher) -> syn::Result<()> {
    let mut errors = Errors::default();
    errors.extend(d.attr_errors.clone());
    let enum_name = d.self_ident.as_ref().map_or_else(
        || String::from("the message enum"),
        |i| format!("`{i}Message`"),
    );
    if d.self_ident.is_none() {
        errors.push(syn::Error::new_spanned(
            &d.item.self_ty,
            format!(
                "{} needs a named self type such as `impl GameChannel {{ … }}`, to name the generated message enum",
                d.kind.macro_name()
            ),
        ));
    }
    for attr in &d.extra_attrs {
        errors.push(syn::Error::new_spanned(
            attr,
            "a handler takes one `#[action]`; to bind several actions, write one handler per action",
        ));
    }
    let mut variants: Vec<(String, &Action, String)> = Vec::new();
    for (i, a) in d.actions.iter().enumerate() {
        if let Some(name) = &a.name {
            let value = name.value();
            if let Some(problem) = name_problem(&value) {
                errors.at(name.span(), problem);
            } else if let Some(event) =
                near_client_event(&value).filter(|_| d.kind == Kind::Listener)
            {
                errors.at(
                    name.span(),
                    format!("{value:?} is not one of the client's events; did you mean {event:?}? (the events are \"connected\", \"socketConnect\", \"disconnected\" and \"error\")"),
                );
            } else if let Some(first) = d.actions[..i]
                .iter()
                .filter_map(|b| b.name.as_ref())
                .find(|b| b.value() == value)
            {
                let mut e = syn::Error::new(
                    name.span(),
                    format!("duplicate action {value:?}: each action has one handler; rename or remove this one"),
                );
                e.combine(syn::Error::new(
                    first.span(),
                    format!("first handler of {value:?} is here"),
                ));
                errors.push(e);
            }
        }
        check_signature(d.kind, a, &mut errors);
        let valid_name = a
            .name
            .as_ref()
            .is_none_or(|n| name_problem(&n.value()).is_none());
        if !valid_name || a.malformed {
            continue;
        }
        let label = a.name.as_ref().map_or_else(
            || format!("`{}`", a.ident()),
            |n| format!("{:?}", n.value()),
        );
        let at = |message: String| match &a.name {
            Some(name) => syn::Error::new(name.span(), message),
            None => syn::Error::new_spanned(&a.attr, message),
        };
        match a.variant() {
            Ok(variant) => {
                let v = variant.to_string();
                if let Some((_, first, first_label)) = variants
                    .iter()
                    .find(|(name, _, l)| *name == v && *l != label)
                {
                    let message = if a.name.is_none() && first.name.is_none() {
                        format!("duplicate action: handlers {first_label} and {label} both take the action of their payload type `{v}`; each action has one handler")
                    } else {
                        format!("actions {first_label} and {label} both map to variant `{v}` of {enum_name}; rename one of them")
                    };
                    let mut e = at(message);
                    e.combine(match &first.name {
                        Some(name) => {
                            syn::Error::new(name.span(), format!("{first_label} is here"))
                        }
                        None => {
                            syn::Error::new_spanned(&first.attr, format!("{first_label} is here"))
                        }
                    });
                    errors.push(e);
                }
                variants.push((v, a, label));
            }
            Err(message) => errors.push(at(message)),
        }
    }
    for hook in &d.hooks {
        check_hook(hook, &mut errors);
    }
    for method in &d.others {
        check_other(d.kind, method, &mut errors);
    }
    errors.finish()
}

fn check_signature(kind: Kind, a: &Action, errors: &mut Errors) {
    let sig = &a.method.sig;
    let ctx_ty = match kind {
        Kind::Channel => "&mut repod::Context<'_, Self>",
        Kind::Listener => "&mut repod::ClientContext<'_>",
    };
    if let Some(asyncness) = &sig.asyncness {
        errors.at(
            asyncness.span,
            "async handlers are not supported: handlers run on the dispatch loop; make it a plain `fn` and spawn work from it",
        );
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            errors.push(syn::Error::new_spanned(
                param,
                "generic handlers are not supported: the payload type must be known; name a concrete type",
            ));
        }
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if matches!(&*r.ty, Type::Reference(t) if t.mutability.is_some()) =>
            {}
        Some(FnArg::Receiver(r)) => errors.push(syn::Error::new_spanned(
            r,
            "a handler takes `&mut self`; change the receiver to `&mut self`",
        )),
        _ => errors.push(syn::Error::new_spanned(
            &sig.ident,
            "a handler takes `&mut self` as its first parameter; add `&mut self`",
        )),
    }
    let shape = match kind {
        Kind::Channel => format!(
            "handlers are `fn(&mut self, [ctx: {ctx_ty},] [msg: Payload] [, reply: ReplyTo<Payload>])`"
        ),
        Kind::Listener => format!("handlers are `fn(&mut self, [ctx: {ctx_ty},] [msg: Payload])`"),
    };
    let at = |errors: &mut Errors, param: &crate::ast::Param, message: String| {
        errors.push(syn::Error::new_spanned(&param.arg, message));
    };
    for param in &a.params {
        if let Type::ImplTrait(_) = param.ty {
            at(
                errors,
                param,
                String::from("generic handlers are not supported: `impl Trait` parameters are generic; name a concrete type"),
            );
        }
    }
    check_reply_token(kind, a, errors);
    let positional: Vec<&crate::ast::Param> = a
        .params
        .iter()
        .filter(|p| p.kind != ParamKind::Reply)
        .collect();
    if positional.len() > 2 {
        for param in &positional[2..] {
            at(
                errors,
                param,
                format!("too many parameters: {shape}; remove this one"),
            );
        }
    }
    let mut seen_ctx = false;
    let mut seen_payload = false;
    let expected_ctx = CtxName::of(kind);
    for param in positional.iter().copied().take(2) {
        let pat = tokens_text(&param.arg.pat);
        if let Some(name) = param.ctx_name {
            // A context, whatever the reference: one error that says what to write.
            let problem = if name != expected_ctx {
                Some(wrong_ctx(kind))
            } else if param.kind != ParamKind::Context {
                Some(format!(
                    "the context is passed as `&mut`: write `{pat}: &mut {}`",
                    ctx_type(kind)
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                at(errors, param, problem);
            }
        }
        let is_ctx = param.kind == ParamKind::Context || param.ctx_name.is_some();
        if is_ctx {
            if seen_payload {
                at(
                    errors,
                    param,
                    format!("the context must come before the payload: {shape}; swap them"),
                );
            } else if seen_ctx {
                at(
                    errors,
                    param,
                    format!(
                        "a handler takes one context (`&mut`) parameter: {shape}; remove this one"
                    ),
                );
            }
            seen_ctx = true;
            continue;
        }
        match param.kind {
            ParamKind::Payload | ParamKind::SharedRef if seen_payload => at(
                errors,
                param,
                format!("a handler takes at most one payload: {shape}; put the fields into one message type"),
            ),
            ParamKind::SharedRef => {
                seen_payload = true;
                at(
                    errors,
                    param,
                    format!(
                        "a payload is taken by value, not borrowed: write `{pat}: {}`",
                        tokens_text(param.referent())
                    ),
                );
            }
            _ => seen_payload = true,
        }
    }
}

/// Checks a handler's `ReplyTo` parameter: channels only, one, last, after a payload.
fn check_reply_token(kind: Kind, a: &Action, errors: &mut Errors) {
    let Some(token) = a.reply_token() else {
        return;
    };
    let at = |errors: &mut Errors, param: &crate::ast::Param, message: &str| {
        errors.push(syn::Error::new_spanned(&param.arg, message));
    };
    if kind == Kind::Listener {
        at(
            errors,
            token,
            "a listener does not answer requests: `ReplyTo` belongs in a `#[repod::channel]` handler; remove this parameter",
        );
        return;
    }
    for extra in a
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Reply)
        .skip(1)
    {
        at(
            errors,
            extra,
            "a handler answers one request: keep one `ReplyTo` parameter",
        );
    }
    if a.payload().is_none() {
        at(
            errors,
            token,
            "`ReplyTo` answers the request the handler receives: take the request as the payload before it, `req: Request, reply: ReplyTo<Request>`",
        );
    } else if a.params.last().is_some_and(|p| p.kind != ParamKind::Reply) {
        at(
            errors,
            token,
            "the `ReplyTo` parameter comes last: `fn(&mut self, [ctx: &mut Context<'_, Self>,] req: Request, reply: ReplyTo<Request>)`",
        );
    }
}

/// The context type of a dispatcher kind, as written in a signature.
fn ctx_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Channel => "Context<'_, Self>",
        Kind::Listener => "ClientContext<'_>",
    }
}

/// The error for a server context in a listener, or a client context in a channel.
fn wrong_ctx(kind: Kind) -> String {
    match kind {
        Kind::Listener => String::from(
            "`Context` is the server's context; a listener's handlers take the client's: `ctx: &mut ClientContext<'_>`",
        ),
        Kind::Channel => String::from(
            "`ClientContext` is the client's context; a channel's handlers and hooks take the server's: `ctx: &mut Context<'_, Self>`",
        ),
    }
}

/// Tokens as users write them: `&mut Context<'_, Self>` rather than `& mut Context < '_ , Self >`.
pub fn tokens_text(tokens: &impl ToTokens) -> String {
    let mut s = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("& mut ", "&mut "),
        ("& ", "&"),
        ("' ", "'"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// Checks the signature of a lifecycle hook: `&mut self`, then optionally the context, then
/// optionally the event (`&CloseReason` / `&ChannelError`).
pub fn check_hook(h: &Hook, errors: &mut Errors) {
    let sig = &h.method.sig;
    let name = h.ident.to_string();
    let shape = match name.as_str() {
        "on_connect" => "`fn on_connect(&mut self, [ctx: &mut Context<'_, Self>])`",
        "on_close" => {
            "`fn on_close(&mut self, [ctx: &mut Context<'_, Self>,] [reason: &CloseReason])`"
        }
        _ => "`fn on_error(&mut self, [ctx: &mut Context<'_, Self>,] [error: &ChannelError])`",
    };
    let (event_name, event_ty) = match name.as_str() {
        "on_close" => ("reason", "&CloseReason"),
        _ => ("error", "&ChannelError"),
    };
    if let Some(asyncness) = &sig.asyncness {
        errors.at(
            asyncness.span,
            format!("a hook cannot be `async`: it runs on the dispatch loop; the hook is {shape}"),
        );
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            errors.push(syn::Error::new_spanned(
                param,
                format!("a hook cannot be generic: the hook is {shape}"),
            ));
        }
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if matches!(&*r.ty, Type::Reference(t) if t.mutability.is_some()) =>
            {}
        Some(FnArg::Receiver(r)) => errors.push(syn::Error::new_spanned(
            r,
            format!("a hook takes `&mut self`: the hook is {shape}"),
        )),
        _ => errors.push(syn::Error::new_spanned(
            &sig.ident,
            format!("a hook takes `&mut self` as its first parameter: the hook is {shape}"),
        )),
    }
    let mut seen_ctx = false;
    let mut seen_event = false;
    for (i, param) in h.params.iter().enumerate() {
        let pat = tokens_text(&param.arg.pat);
        let is_ctx = param.kind == ParamKind::Context || param.ctx_name.is_some();
        let message = if i >= 2 {
            Some(format!(
                "too many parameters: the hook is {shape}; remove this one"
            ))
        } else if is_ctx {
            let m = if param.ctx_name.is_some_and(|c| c != CtxName::Server) {
                Some(wrong_ctx(Kind::Channel))
            } else if param.kind != ParamKind::Context {
                Some(format!(
                    "the context is passed as `&mut`: write `{pat}: &mut Context<'_, Self>`"
                ))
            } else if seen_event {
                Some(format!(
                    "the context must come first: the hook is {shape}; swap them"
                ))
            } else if seen_ctx {
                Some(format!(
                    "a hook takes one context: the hook is {shape}; remove this one"
                ))
            } else {
                None
            };
            seen_ctx = true;
            m
        } else if name == "on_connect" {
            Some(format!(
                "`on_connect` takes no other parameter: the hook is {shape}; remove this one"
            ))
        } else {
            let m = if seen_event {
                Some(format!(
                    "too many parameters: the hook is {shape}; remove this one"
                ))
            } else if matches!(param.kind, ParamKind::Payload | ParamKind::Reply) {
                Some(format!(
                    "the {event_name} is borrowed: write `{pat}: {event_ty}`"
                ))
            } else {
                None
            };
            seen_event = true;
            m
        };
        if let Some(message) = message {
            errors.push(syn::Error::new_spanned(&param.arg, message));
        }
    }
}

/// Checks a method that is neither a handler, a hook nor the fallback: a name that looks like
/// a misspelt hook, a client event written as a plain method, or a Python `Network_` handler.
/// Methods that cannot be hooks or handlers (no `&mut self`) are left alone.
pub fn check_other(kind: Kind, method: &ImplItemFn, errors: &mut Errors) {
    let sig = &method.sig;
    let takes_mut_self = matches!(
        sig.inputs.first(),
        Some(FnArg::Receiver(r)) if matches!(&*r.ty, Type::Reference(t) if t.mutability.is_some())
    );
    if !takes_mut_self {
        return;
    }
    let name = sig.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let params = crate::ast::params_of(method);
    if let Some(action) = name.strip_prefix("Network_") {
        if !action.is_empty() && normalize(name) != "networkreceived" {
            errors.push(syn::Error::new_spanned(
                &sig.ident,
                format!(
                    "`{name}` is never called: repod binds a handler with `#[action]`, not by a `Network_` prefix; did you mean `#[action(\"{action}\")]` on this method?"
                ),
            ));
            return;
        }
    }
    let unit_return = match &sig.output {
        syn::ReturnType::Default => true,
        syn::ReturnType::Type(_, ty) => matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()),
    };
    let hook_shaped = unit_return && sig.asyncness.is_none() && params.len() <= 2;
    if !hook_shaped {
        return;
    }
    match kind {
        Kind::Channel => {
            if let Some(hook) = near_hook(name) {
                let builder = if normalize(name).starts_with("ondisconnect") {
                    "`on_disconnect` is the server builder's hook; "
                } else {
                    ""
                };
                errors.push(syn::Error::new_spanned(
                    &sig.ident,
                    format!(
                        "`{name}` is not a channel hook, so it is never called; did you mean `{hook}`? ({builder}a helper of this name belongs in an `impl` block without `#[repod::channel]`)"
                    ),
                ));
            }
        }
        Kind::Listener => {
            if let Some((action, ty)) = client_event(name) {
                if params.iter().all(|p| p.kind == ParamKind::Context) && params.len() <= 1 {
                    errors.push(syn::Error::new_spanned(
                        &sig.ident,
                        format!(
                            "`{name}` is never called: a listener has no hooks, the client's events are actions; did you mean `#[action(\"{action}\")]` on this method (or `#[action]` with a `_: repod::{ty}` parameter)?"
                        ),
                    ));
                }
            } else if near_hook(name) == Some("network_received") {
                errors.push(syn::Error::new_spanned(
                    &sig.ident,
                    format!(
                        "`{name}` is never called; did you mean `network_received`, the fallback?"
                    ),
                ));
            }
        }
    }
}

/// Lowercase without `_` or `-`: `onConnect`, `on_connect` and `On_Connect` are alike.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The channel hook (or fallback) a method name seems to mean, if it is not that name.
fn near_hook(name: &str) -> Option<&'static str> {
    const HOOKS: [&str; 4] = ["on_connect", "on_close", "on_error", "network_received"];
    const ALIASES: [(&str, &str); 8] = [
        ("onconnected", "on_connect"),
        ("onconnection", "on_connect"),
        ("onopen", "on_connect"),
        ("onopened", "on_connect"),
        ("ondisconnect", "on_close"),
        ("ondisconnected", "on_close"),
        ("ondisconnection", "on_close"),
        ("onnetworkreceived", "network_received"),
    ];
    if HOOKS.contains(&name) {
        return None;
    }
    let n = normalize(name);
    HOOKS
        .iter()
        .find(|h| edit_distance(&n, &normalize(h)) <= 1)
        .copied()
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == n).map(|(_, h)| *h))
}

/// The client event (action name, message type) a listener method name seems to mean.
fn client_event(name: &str) -> Option<(&'static str, &'static str)> {
    match normalize(name).as_str() {
        "connected" | "onconnect" | "onconnected" | "onconnection" | "onopen" => {
            Some(("connected", "Connected"))
        }
        "socketconnect" | "onsocketconnect" => Some(("socketConnect", "SocketConnect")),
        "disconnected" | "ondisconnect" | "ondisconnected" | "onclose" | "onclosed" => {
            Some(("disconnected", "Disconnected"))
        }
        "error" | "onerror" => Some(("error", "ErrorMessage")),
        _ => None,
    }
}

/// For a name written on a listener's handler: the built-in event it seems to misspell
/// (`"socket_connect"` → `"socketConnect"`), if it is not that event.
pub fn near_client_event(action: &str) -> Option<&'static str> {
    const EVENTS: [&str; 4] = ["connected", "socketConnect", "disconnected", "error"];
    if EVENTS.contains(&action) {
        return None;
    }
    let n = normalize(action);
    EVENTS.iter().copied().find(|e| {
        let en = normalize(e);
        n == en || (en.len() >= 9 && edit_distance(&n, &en) == 1)
    })
}

/// Edit distance with adjacent transpositions (optimal string alignment), on chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Checks a derive input.
pub fn check_message(m: &MessageInput<'_>, errors: &mut Errors) {
    let input = m.input;
    match &input.data {
        Data::Struct(data) => {
            for field in &data.fields {
                let bincode_only = m.codec == Some(CodecDecl::Bincode);
                if m.reply.is_some()
                    && !bincode_only
                    && field.ident.as_ref().is_some_and(|i| i == "rid")
                {
                    errors.push(syn::Error::new_spanned(
                        field.ident.as_ref(),
                        "a request cannot have a field named `rid`: it would clash with the \"rid\" key holding the request id in MessagePack; rename the field, or, if this request only travels with bincode, declare it: `#[repod(codec = \"bincode\")]`",
                    ));
                }
                if field.ident.as_ref().is_some_and(|i| i == "action") {
                    errors.push(syn::Error::new_spanned(
                        field.ident.as_ref(),
                        "a message cannot have a field named `action`: it would clash with the \"action\" key on the wire; rename the field, e.g. to `kind`",
                    ));
                }
            }
        }
        Data::Enum(data) => errors.push(syn::Error::new(
            data.enum_token.span,
            "cannot derive Message on an enum: derive Message on a struct; an enum of messages is generated by `#[repod::channel]`",
        )),
        Data::Union(data) => errors.push(syn::Error::new(
            data.union_token.span,
            "cannot derive Message on a union: derive Message on a struct",
        )),
    }
    match &m.name {
        Some(name) => {
            if let Some(problem) = name_problem(&name.value()) {
                errors.at(name.span(), problem);
            }
        }
        None if matches!(input.data, Data::Struct(_)) && !m.has_attr => errors.push(syn::Error::new_spanned(
            &input.ident,
            format!(
                "missing action name: add `#[action(\"name\")]` below the derive, e.g. `#[action({:?})]`",
                to_snake(&input.ident.to_string())
            ),
        )),
        None => {}
    }
    check_codec_clashes(m, errors);
}

/// A serde attribute that one of the codecs cannot honour.
struct CodecClash {
    /// The codec that fails.
    breaks: CodecDecl,
    message: String,
}

/// The serde options written in `#[serde(…)]` attributes, with their path for spans. Attributes
/// that do not parse are left to serde's derive to report.
fn serde_options(attrs: &[syn::Attribute]) -> Vec<syn::Path> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        if let Ok(list) = attr.parse_args_with(
            syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
        ) {
            out.extend(list.into_iter().map(|m| m.path().clone()));
        }
    }
    out
}

const MSGPACK_ONLY: &str = "or, if this message only travels with MessagePack, declare it: `#[repod(codec = \"msgpack\")]`";

/// What is wrong with a serde option of a message's container, for one codec.
fn container_clash(option: &str) -> Option<CodecClash> {
    match option {
        "tag" => Some(CodecClash {
            breaks: CodecDecl::Bincode,
            message: format!("`#[serde(tag = …)]` does not work with bincode, repod's default codec: the tag is an extra field the decoding side does not expect; remove it (the action already names the message), {MSGPACK_ONLY}"),
        }),
        "deny_unknown_fields" => Some(CodecClash {
            breaks: CodecDecl::MsgPack,
            message: String::from("`deny_unknown_fields` rejects every MessagePack message, whose map also holds the \"action\" key; remove it, or, if this message only travels with bincode, declare it: `#[repod(codec = \"bincode\")]`"),
        }),
        _ => None,
    }
}

/// What is wrong with a serde option of a message's field, for one codec; `all` holds every
/// option of that field.
fn field_clash(option: &str, all: &[String]) -> Option<CodecClash> {
    let has = |o: &str| all.iter().any(|a| a == o);
    let message = match option {
        "skip_serializing_if" => format!("`skip_serializing_if` does not work with bincode, repod's default codec: bincode writes fields by position, not by name, so a field left out shifts the ones after it and the body no longer decodes; always send the field (a `None` costs one byte), {MSGPACK_ONLY}"),
        "skip_serializing" if !has("skip_deserializing") => format!("`skip_serializing` alone does not work with bincode, repod's default codec: the field is not sent but still expected; use `#[serde(skip)]` to leave it out on both sides, {MSGPACK_ONLY}"),
        "skip_deserializing" if !has("skip_serializing") => format!("`skip_deserializing` alone does not work with bincode, repod's default codec: the field is sent but not expected; use `#[serde(skip)]` to leave it out on both sides, {MSGPACK_ONLY}"),
        "flatten" => format!("`flatten` does not work with bincode, repod's default codec, which cannot encode or decode a map of unknown length; write the fields out, or keep the inner struct as an ordinary field, {MSGPACK_ONLY}"),
        _ => return None,
    };
    Some(CodecClash {
        breaks: CodecDecl::Bincode,
        message,
    })
}

/// Serde options one of the codecs cannot honour, unless the message declares the other codec.
fn check_codec_clashes(m: &MessageInput<'_>, errors: &mut Errors) {
    let mut report = |path: &syn::Path, clash: CodecClash| {
        let declared_other = m.codec.is_some_and(|declared| declared != clash.breaks);
        if !declared_other {
            errors.push(syn::Error::new_spanned(path, clash.message));
        }
    };
    for path in serde_options(&m.input.attrs) {
        let name = path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if let Some(clash) = container_clash(&name) {
            report(&path, clash);
        }
    }
    let Data::Struct(data) = &m.input.data else {
        return;
    };
    for field in &data.fields {
        let options = serde_options(&field.attrs);
        let names: Vec<String> = options
            .iter()
            .map(|p| p.get_ident().map(ToString::to_string).unwrap_or_default())
            .collect();
        for (path, name) in options.iter().zip(&names) {
            if let Some(clash) = field_clash(name, &names) {
                report(path, clash);
            }
        }
    }
}

fn to_snake(ident: &str) -> String {
    let mut out = String::new();
    for (i, c) in ident.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The error for a macro placed on something other than an inherent impl.
pub fn not_an_impl(kind: Kind, item: &Item) -> syn::Error {
    let name = kind.macro_name();
    match item {
        Item::Impl(imp) => {
            let (_, path, _) = imp.trait_.as_ref().expect("only trait impls are rejected");
            syn::Error::new_spanned(
                path,
                format!("{name} goes on an inherent impl, not a trait impl; move the handlers into `impl Type {{ … }}`"),
            )
        }
        Item::Fn(f) => syn::Error::new_spanned(
            &f.sig.ident,
            format!("{name} goes on an `impl` block, not a function; put the handler inside `impl Type {{ … }}` under {name}"),
        ),
        other => syn::Error::new(
            item_ident_span(other),
            format!("{name} goes on an `impl` block holding the handlers: `impl Type {{ … }}`"),
        ),
    }
}

fn item_ident_span(item: &Item) -> Span {
    match item {
        Item::Struct(s) => s.ident.span(),
        Item::Enum(e) => e.ident.span(),
        Item::Trait(t) => t.ident.span(),
        other => other.span(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names() {
        assert_eq!(variant_name("chat").as_deref(), Some("Chat"));
        assert_eq!(variant_name("join_team").as_deref(), Some("JoinTeam"));
        assert_eq!(
            variant_name("socketConnect").as_deref(),
            Some("SocketConnect")
        );
        assert_eq!(variant_name("setName"), variant_name("set_name"));
        assert_eq!(variant_name("game-over").as_deref(), Some("GameOver"));
        assert_eq!(variant_name("__x__").as_deref(), Some("X"));
        assert_eq!(variant_name("v2_move").as_deref(), Some("V2Move"));
        assert_eq!(variant_name("été").as_deref(), Some("Été"));
    }

    #[test]
    fn names_without_variant() {
        assert_eq!(variant_name(""), None);
        assert_eq!(variant_name("___"), None);
        assert_eq!(variant_name("42"), None);
        assert_eq!(variant_name("self"), None);
    }

    #[test]
    fn name_rules() {
        assert!(name_problem("chat").is_none());
        assert!(name_problem("socketConnect").is_none());
        assert!(name_problem("a.b-c_d").is_none());
        assert!(name_problem("").unwrap().contains("empty"));
        assert!(name_problem("two words").unwrap().contains("whitespace"));
        assert!(name_problem("tab\there").unwrap().contains("control"));
        assert!(name_problem("nl\n").unwrap().contains("control"));
    }

    #[test]
    fn misspelt_hooks() {
        assert_eq!(near_hook("on_disconnect"), Some("on_close"));
        assert_eq!(near_hook("on_disconnected"), Some("on_close"));
        assert_eq!(near_hook("on_closed"), Some("on_close"));
        assert_eq!(near_hook("onConnect"), Some("on_connect"));
        assert_eq!(near_hook("on_connected"), Some("on_connect"));
        assert_eq!(near_hook("on_conect"), Some("on_connect"));
        assert_eq!(near_hook("on_errors"), Some("on_error"));
        assert_eq!(near_hook("network_recieved"), Some("network_received"));
        assert_eq!(near_hook("Network_received"), Some("network_received"));
        assert_eq!(near_hook("network_receive"), Some("network_received"));
        for hook in ["on_connect", "on_close", "on_error", "network_received"] {
            assert_eq!(near_hook(hook), None, "{hook}");
        }
    }

    #[test]
    fn helper_names_are_not_hooks() {
        for name in [
            "on_tick",
            "on_update",
            "on_move",
            "on_join",
            "on_leave",
            "on_chat",
            "on_login",
            "on_start",
            "on_stop",
            "on_message",
            "on_reconnect",
            "on_enter",
            "on_exit",
            "on_hit",
            "on_death",
            "connect",
            "close",
            "error",
            "disconnect",
            "receive",
        ] {
            assert_eq!(near_hook(name), None, "{name}");
        }
    }

    #[test]
    fn client_events() {
        assert_eq!(client_event("on_connect"), Some(("connected", "Connected")));
        assert_eq!(client_event("connected"), Some(("connected", "Connected")));
        assert_eq!(
            client_event("on_close"),
            Some(("disconnected", "Disconnected"))
        );
        assert_eq!(
            client_event("socket_connect"),
            Some(("socketConnect", "SocketConnect"))
        );
        assert_eq!(client_event("on_error"), Some(("error", "ErrorMessage")));
        assert_eq!(client_event("chat"), None);
        assert_eq!(near_client_event("socket_connect"), Some("socketConnect"));
        assert_eq!(near_client_event("Connected"), Some("connected"));
        assert_eq!(near_client_event("conected"), Some("connected"));
        assert_eq!(near_client_event("disconected"), Some("disconnected"));
        for fine in ["connected", "socketConnect", "disconnected", "error"] {
            assert_eq!(near_client_event(fine), None, "{fine}");
        }
        for other in [
            "connect",
            "disconnect",
            "errors",
            "err",
            "chat",
            "reconnected",
        ] {
            assert_eq!(near_client_event(other), None, "{other}");
        }
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("recieved", "received"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn written_tokens() {
        let ty: Type = syn::parse_quote!(&mut repod::Context<'_, Self>);
        assert_eq!(tokens_text(&ty), "&mut repod::Context<'_, Self>");
        let ty: Type = syn::parse_quote!(Vec<Option<u8>>);
        assert_eq!(tokens_text(&ty), "Vec<Option<u8>>");
    }

    #[test]
    fn snake() {
        assert_eq!(to_snake("JoinTeam"), "join_team");
        assert_eq!(to_snake("Chat"), "chat");
    }
}
