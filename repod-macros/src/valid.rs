//! The rules, checked on the model without producing tokens. Every broken rule is collected so
//! one build shows them all, each on the user's token at fault.

use std::fmt::Display;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, FnArg, GenericParam, Item, Type};

use crate::ast::{Action, Dispatcher, Kind, MessageInput, ParamKind};

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
    let shape = format!("handlers are `fn(&mut self, [ctx: {ctx_ty},] [msg: Payload])`");
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
    if a.params.len() > 2 {
        for param in &a.params[2..] {
            at(
                errors,
                param,
                format!("too many parameters: {shape}; remove this one"),
            );
        }
    }
    let mut seen_ctx = false;
    let mut seen_payload = false;
    for param in a.params.iter().take(2) {
        match param.kind {
            ParamKind::Context if seen_payload => at(
                errors,
                param,
                format!("the context must come before the payload: {shape}; swap them"),
            ),
            ParamKind::Context if seen_ctx => at(
                errors,
                param,
                format!("a handler takes one context (`&mut`) parameter: {shape}; remove this one"),
            ),
            ParamKind::Context => seen_ctx = true,
            ParamKind::Payload if seen_payload => at(
                errors,
                param,
                format!("a handler takes at most one payload: {shape}; put the fields into one message type"),
            ),
            ParamKind::Payload => seen_payload = true,
            ParamKind::SharedRef => at(
                errors,
                param,
                format!("a payload is taken by value, the context by `&mut`: {shape}; remove the `&`"),
            ),
        }
    }
}

/// Checks a derive input.
pub fn check_message(m: &MessageInput<'_>, errors: &mut Errors) {
    let input = m.input;
    match &input.data {
        Data::Struct(data) => {
            for field in &data.fields {
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
    fn snake() {
        assert_eq!(to_snake("JoinTeam"), "join_team");
        assert_eq!(to_snake("Chat"), "chat");
    }
}
