//! Procedural macros of [repod](https://docs.rs/repod): `#[repod::channel]`,
//! `#[repod::listener]`, `#[derive(repod::Message)]` and the `#[action]` marker.
//!
//! Use them through the `repod` crate, whose documentation carries the compiled examples.
//! Each macro is parsed (`ast.rs`, `attr.rs`), checked (`valid.rs`) and expanded
//! (`expand.rs`); invalid input still yields the user's code (`fallback.rs`).
//!
//! Set `REPOD_MACROS_DEBUG=1` while building to print every expansion to stderr.

extern crate proc_macro;

mod ast;
mod attr;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use syn::{parse_macro_input, DeriveInput, Item};

use crate::ast::Kind;
use crate::valid::Errors;

/// Turns a server channel's `impl` block into a dispatcher.
///
/// Arguments: `state = Type` (the `Channel::State`, default `()`), `vis = pub` (the visibility
/// of the message enum, default private to the module).
///
/// Handlers are the methods marked `#[action("name")]`, `#[action]` (name taken from the payload
/// type's `#[action]`, the recommended form) or `#[repod::action(…)]`. Their shape is
/// `fn(&mut self, [ctx: &mut repod::Context<'_, Self>,] [msg: Payload]) [-> Result<(), E: Display>]`;
/// no payload makes a unit action. `network_received(&mut self, [ctx,] msg: RawMessage)` is the
/// optional fallback; `on_connect`, `on_close` and `on_error` are forwarded to the trait's hooks
/// and, like handlers, may leave out the context and the event. A method shaped like a handler
/// of a `Message` but without `#[action]`, and a name close to a hook's, are errors.
///
/// Generated for `impl GameChannel`: `impl repod::Channel for GameChannel` (`ACTIONS` in
/// declaration order, `dispatch` as a `match` on the action name) and
/// `enum GameChannelMessage` with one UpperCamelCase variant per action (`"join_team"` →
/// `JoinTeam`; for `#[action]`, the payload type's name), `action()` and `decode()`.
///
/// The compiled examples live on the `repod` crate's re-export (`repod::channel`); this crate
/// cannot depend on `repod`.
///
/// ```ignore
/// #[repod::channel(state = Lobby)]
/// impl GameChannel {
///     #[action]
///     fn chat(&mut self, ctx: &mut repod::Context<'_, Self>, msg: Chat) {
///         ctx.send_to_all(&msg);
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn channel(args: TokenStream, input: TokenStream) -> TokenStream {
    dispatcher(
        Kind::Channel,
        args.into(),
        parse_macro_input!(input as Item),
    )
}

/// Turns a client listener's `impl` block into a dispatcher.
///
/// The rules of `channel`, with `&mut repod::ClientContext<'_>` as the context and no state or
/// lifecycle hooks; the built-in events (`connected`, `socketConnect`, `disconnected`, `error`)
/// are ordinary actions. Generated for `impl Game`: `impl repod::Listener for Game` and
/// `enum GameMessage`. Argument: `vis = pub`.
///
/// ```ignore
/// #[repod::listener]
/// impl Game {
///     #[action]
///     fn connected(&mut self, ctx: &mut repod::ClientContext<'_>, _: repod::Connected) {}
/// }
/// ```
#[proc_macro_attribute]
pub fn listener(args: TokenStream, input: TokenStream) -> TokenStream {
    dispatcher(
        Kind::Listener,
        args.into(),
        parse_macro_input!(input as Item),
    )
}

/// Binds a struct to an action name: `#[derive(repod::Message)]` with `#[action("name")]` (or
/// `#[repod(action = "name")]`), generating `impl repod::Message for T { const ACTION = "name"; }`.
/// With `#[reply(Type)]` the message is a request, and `impl repod::Request for T { type Reply
/// = Type; }` is generated too.
///
/// Named, tuple and unit structs, generics passed through. Rejected: enums and unions, a
/// missing or invalid name, a field named `action`, and serde options one codec cannot honour
/// unless `#[repod(codec = "msgpack" | "bincode")]` declares the other codec.
///
/// ```ignore
/// #[derive(serde::Serialize, serde::Deserialize, repod::Message)]
/// #[action("chat")]
/// pub struct Chat { pub text: String }
/// ```
#[proc_macro_derive(Message, attributes(action, repod, reply))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = Errors::default();
    let model = ast::parse_message(&input, &mut errors);
    valid::check_message(&model, &mut errors);
    let mut out = expand::message_impl(&model);
    if let Some(error) = errors.into_error() {
        out.extend(error.to_compile_error());
    }
    debug_print("derive(Message)", &out);
    out.into()
}

/// Marks a handler inside a `#[repod::channel]` or `#[repod::listener]` impl.
///
/// Those macros consume the attribute; when this one runs, it was placed anywhere else, which
/// is an error. The method is kept unless it names the server's `Context`, which would be
/// reported again for a type that is not a channel.
#[proc_macro_attribute]
pub fn action(_args: TokenStream, input: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        Span::call_site(),
        "`#[action]` belongs on a method inside a `#[repod::channel]` or `#[repod::listener]` impl; put one of those macros on the impl block",
    )
    ;
    fallback::stray_action(error, input.into()).into()
}

fn dispatcher(kind: Kind, args: TokenStream2, item: Item) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse_args(kind, args).unwrap_or_else(|e| {
        errors.push(e);
        attr::Args::default()
    });
    let d = match ast::parse_dispatcher(kind, args, item) {
        Ok(d) => d,
        Err(item) => {
            errors.push(valid::not_an_impl(kind, &item));
            let error = errors.into_error().expect("an error was just pushed");
            return fallback::item(*item, error).into();
        }
    };
    if let Err(e) = valid::check(&d) {
        errors.push(e);
    }
    let out = match (errors.into_error(), expand::Generator::new(&d)) {
        (None, Some(generator)) => generator.expand(),
        (Some(error), _) => fallback::dispatcher(&d, error),
        (None, None) => unreachable!("valid::check rejects a dispatcher without a self ident"),
    };
    debug_print(kind.macro_name(), &out);
    out.into()
}

fn debug_print(what: &str, tokens: &TokenStream2) {
    if std::env::var_os("REPOD_MACROS_DEBUG").is_some() {
        eprintln!("// {what}\n{tokens}");
    }
}
