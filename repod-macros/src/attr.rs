//! Attribute parsing: the macro arguments (`state = …`, `vis = …`), `#[action(…)]` on
//! handlers, and `#[action("…")]` / `#[repod(action = "…")]` on derived messages.

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, LitStr, Meta, Token, Type, Visibility};

use crate::ast::Kind;
use crate::valid::Errors;

/// The arguments of `#[repod::channel(…)]` / `#[repod::listener(…)]`.
#[derive(Default)]
pub struct Args {
    /// `state = T`: the channel's `Channel::State` (default `()`).
    pub state: Option<Type>,
    /// `vis = pub`: the visibility of the generated message enum (default: inherited).
    pub vis: Option<Visibility>,
}

/// Parses the macro arguments; every mistake is collected into one error.
pub fn parse_args(kind: Kind, tokens: TokenStream) -> syn::Result<Args> {
    let parser = |input: ParseStream| -> syn::Result<Args> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if !lookahead.peek(Ident) {
                return Err(lookahead.error());
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let name = key.to_string();
            if seen.contains(&name) {
                errors.push(syn::Error::new(
                    key.span(),
                    format!("`{name}` is specified more than once; keep one `{name} = …`"),
                ));
            }
            seen.push(name.clone());
            match name.as_str() {
                "state" => {
                    let ty: Type = input.parse()?;
                    if kind == Kind::Listener {
                        errors.push(syn::Error::new(
                            key.span(),
                            "a listener has no server state; remove `state = …` (it belongs on `#[repod::channel]`)",
                        ));
                    } else {
                        args.state = Some(ty);
                    }
                }
                "vis" => args.vis = Some(input.parse()?),
                _ => {
                    let expected = match kind {
                        Kind::Channel => "expected `state = Type` or `vis = pub`",
                        Kind::Listener => "expected `vis = pub`",
                    };
                    errors.push(syn::Error::new(
                        key.span(),
                        format!("unknown argument `{name}`: {expected}"),
                    ));
                    // Skip the value so the remaining arguments are still checked.
                    input.parse::<syn::Expr>()?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        errors.finish()?;
        Ok(args)
    };
    parser.parse2(tokens)
}

/// Whether an attribute is `#[action]`, `#[repod::action]` or `#[::repod::action]`.
pub fn is_action(attr: &Attribute) -> bool {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [one] => path.leading_colon.is_none() && one == "action",
        [krate, one] => krate == "repod" && one == "action",
        _ => false,
    }
}

/// A parsed `#[action]` / `#[action("name")]` on a handler.
pub struct ActionAttr {
    /// The written name, if any.
    pub name: Option<LitStr>,
}

/// Parses one `#[action…]` attribute of a handler.
pub fn parse_action(attr: &Attribute) -> syn::Result<ActionAttr> {
    match &attr.meta {
        Meta::Path(_) => Ok(ActionAttr { name: None }),
        Meta::List(list) => {
            let name: LitStr = list.parse_args().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the action name as a string literal: `#[action(\"chat\")]`, or `#[action]` to take it from the payload type",
                )
            })?;
            Ok(ActionAttr { name: Some(name) })
        }
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(
            nv,
            "expected `#[action(\"name\")]` or `#[action]`, not `#[action = …]`",
        )),
    }
}

/// The codec a message declares it travels with: `#[repod(codec = "…")]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CodecDecl {
    Bincode,
    MsgPack,
}

/// What the attributes of a derived message say.
#[derive(Default)]
pub struct MessageAttrs {
    /// The action name, if one parsed.
    pub name: Option<LitStr>,
    /// Whether an action name was written at all (even a malformed one).
    pub name_written: bool,
    /// `#[repod(codec = "…")]`, if given.
    pub codec: Option<CodecDecl>,
    /// `#[reply(Type)]`: the message is a request answered with this type.
    pub reply: Option<Type>,
}

/// Parses `#[action("name")]` and `#[repod(action = "name", codec = "msgpack")]` on a derived
/// message; mistakes go into `errors`.
pub fn parse_message_attrs(attrs: &[Attribute], errors: &mut Errors) -> MessageAttrs {
    let mut out = MessageAttrs::default();
    let mut codec_seen = false;
    for attr in attrs {
        let mut names: Vec<LitStr> = Vec::new();
        if attr.path().is_ident("reply") {
            match &attr.meta {
                Meta::List(list) => match list.parse_args::<Type>() {
                    Ok(ty) if out.reply.is_some() => errors.push(syn::Error::new_spanned(
                        ty,
                        "the reply type is given more than once; keep one `#[reply(Type)]`",
                    )),
                    Ok(ty) => out.reply = Some(ty),
                    Err(_) => errors.push(syn::Error::new_spanned(
                        &list.tokens,
                        "expected the reply type: `#[reply(RoomList)]`",
                    )),
                },
                _ => errors.push(syn::Error::new_spanned(
                    attr,
                    "a request names its reply type: `#[reply(RoomList)]`",
                )),
            }
            continue;
        }
        if attr.path().is_ident("action") {
            out.name_written = true;
            match &attr.meta {
                Meta::List(list) => match list.parse_args::<LitStr>() {
                    Ok(name) => names.push(name),
                    Err(_) => errors.push(syn::Error::new_spanned(
                        &list.tokens,
                        "expected the action name as a string literal: `#[action(\"chat\")]`",
                    )),
                },
                _ => errors.push(syn::Error::new_spanned(
                    attr,
                    "a message needs its action name written out: `#[action(\"chat\")]`",
                )),
            }
        } else if attr.path().is_ident("repod") {
            let mut empty = true;
            let result = attr.parse_nested_meta(|meta| {
                empty = false;
                if meta.path.is_ident("action") {
                    out.name_written = true;
                    names.push(meta.value()?.parse::<LitStr>()?);
                    Ok(())
                } else if meta.path.is_ident("codec") {
                    let value: LitStr = meta.value()?.parse()?;
                    if codec_seen {
                        errors.push(syn::Error::new(
                            value.span(),
                            "the codec is given more than once; keep one `codec = \"…\"`",
                        ));
                    }
                    codec_seen = true;
                    out.codec = match value.value().as_str() {
                        "msgpack" => Some(CodecDecl::MsgPack),
                        "bincode" => Some(CodecDecl::Bincode),
                        _ => {
                            errors.push(syn::Error::new(
                                value.span(),
                                "unknown codec: expected `codec = \"msgpack\"` or `codec = \"bincode\"`",
                            ));
                            out.codec
                        }
                    };
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown repod option: expected `action = \"name\"` or `codec = \"msgpack\"`",
                    ))
                }
            });
            match result {
                Ok(()) if empty => errors.push(syn::Error::new_spanned(
                    attr,
                    "expected `#[repod(action = \"name\")]` or `#[repod(codec = \"msgpack\")]`",
                )),
                Ok(()) => {}
                Err(e) => {
                    // Whatever was meant, do not also report a missing name.
                    out.name_written = true;
                    errors.push(e);
                }
            }
        }
        for name in names {
            if out.name.is_some() {
                errors.push(syn::Error::new(
                    name.span(),
                    "the action name is given more than once; keep one `#[action(\"…\")]`",
                ));
            } else {
                out.name = Some(name);
            }
        }
    }
    out
}
