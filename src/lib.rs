//! Typed action-dispatch networking for multiplayer games.
//!
//! repod brings the model of Python's [PodSixNet] and [repod] to Rust: every message has an
//! *action* name and fields, each handler method is bound to an action, and the framework
//! routes every incoming message to its handler. In Rust the binding is checked by the
//! compiler: a misspelt action or a payload of the wrong type does not compile.
//!
//! * `#[derive(repod::Message)]` binds a struct to its action name, in a protocol module shared
//!   by server and client.
//! * [`#[repod::channel]`](channel) turns an `impl` block with `#[action]` handlers into a
//!   server-side dispatcher (a `match` on the action name); [`#[repod::listener]`](listener)
//!   does the same for clients.
//! * A tokio [server](server::Server) with one channel per connection, all handlers on one
//!   dispatch loop (so they reach each other's state without locks), broadcast encoded once,
//!   bounded queues and slow-consumer protection.
//! * A game-loop [client](client::Client) with `pump()`, and an [async one](client::AsyncClient).
//! * Typed requests on the same connection: `#[reply(T)]` on a message declares its answer, a
//!   handler answers by returning it (or later, through a [`ReplyTo`]), and clients await it
//!   with a deadline ([request and reply](guide::request_reply)).
//! * Length-prefixed frames with [bincode](Bincode) (default) or [MessagePack](MsgPack),
//!   byte-compatible with Python repod, so Python clients and servers interoperate.
//!
//! The [guide] covers all of it; the `repod-examples` crate has runnable programs.
//!
//! # Example
//!
//! A chat server and a client in one process (a game hosting and joining its own server):
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use repod::client::Client;
//! use repod::server::Server;
//! use repod::Context;
//! use serde::{Deserialize, Serialize};
//!
//! // The protocol, shared by server and client.
//! #[derive(Debug, Clone, Serialize, Deserialize, repod::Message)]
//! #[action("chat")]
//! pub struct Chat {
//!     pub text: String,
//! }
//!
//! // Server side: one `Player` per connection.
//! #[derive(Default)]
//! struct Player;
//!
//! #[repod::channel]
//! impl Player {
//!     #[action]
//!     fn chat(&mut self, ctx: &mut Context<'_, Self>, msg: Chat) {
//!         ctx.send_to_all(&msg); // everyone, this player included
//!     }
//! }
//!
//! // Client side: handlers for what the server sends.
//! #[derive(Default)]
//! struct Game {
//!     heard: Vec<String>,
//! }
//!
//! #[repod::listener]
//! impl Game {
//!     #[action]
//!     fn chat(&mut self, msg: Chat) {
//!         self.heard.push(msg.text);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::<Player>::builder().start_background("127.0.0.1:0")?;
//! let mut client = Client::connect(server.local_addr())?;
//! client.send(&Chat { text: "hello".into() })?;
//!
//! let mut game = Game::default();
//! let deadline = Instant::now() + Duration::from_secs(10);
//! while game.heard.is_empty() && Instant::now() < deadline {
//!     client.pump(&mut game); // once per frame in a game loop
//!     std::thread::sleep(Duration::from_millis(1));
//! }
//! assert_eq!(game.heard, ["hello"]);
//! # Ok(())
//! # }
//! ```
//!
//! [PodSixNet]: https://github.com/chr15m/PodSixNet
//! [repod]: https://pypi.org/project/repodnet/
#![deny(missing_docs)]

pub mod guide;

#[doc(inline)]
pub use repod_core::*;

#[doc = include_str!("../docs/channel.md")]
pub use repod_macros::channel;

/// Turns an `impl` block of a client listener into a dispatcher.
///
/// The rules of [`channel`] apply, with `&mut repod::ClientContext<'_>` as the context and
/// neither state nor lifecycle hooks: a method named like an event or a hook (`on_connect`,
/// `disconnected`) without `#[action]` is a compile error that suggests the action. The
/// client's built-in events are ordinary actions:
/// `connected` ([`Connected`]), `socketConnect` ([`SocketConnect`]), `disconnected`
/// ([`Disconnected`]) and `error` ([`ErrorMessage`]), handled with those payload types or with
/// none. `network_received(&mut self, [ctx,] msg: RawMessage)` is the optional fallback.
///
/// A handler returning `Err` is logged (a tracing WARN), not sent to the server. A message
/// whose body does not fit the handler's payload type raises a local `error` event, unless it
/// is itself an `error` event, which is then only logged (see the client guide).
///
/// Generated for `impl Game`: `impl repod::Listener for Game` and `enum GameMessage`.
///
/// ```
/// use repod::{ClientContext, Connected, Disconnected, ErrorMessage, Listener};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, repod::Message)]
/// #[action("chat")]
/// pub struct Chat {
///     pub text: String,
/// }
///
/// #[derive(Default)]
/// struct Game {
///     lines: Vec<String>,
/// }
///
/// #[repod::listener]
/// impl Game {
///     #[action]
///     fn connected(&mut self, ctx: &mut ClientContext<'_>, _: Connected) {
///         let _ = ctx.send(&Chat { text: "hello".into() });
///     }
///
///     #[action("socketConnect")]
///     fn socket_connect(&mut self) {}
///
///     #[action]
///     fn chat(&mut self, msg: Chat) {
///         self.lines.push(msg.text);
///     }
///
///     #[action]
///     fn error(&mut self, msg: ErrorMessage) {
///         self.lines.push(format!("error: {}", msg.message));
///     }
///
///     #[action]
///     fn disconnected(&mut self, _: Disconnected) {}
/// }
///
/// assert_eq!(
///     <Game as Listener>::ACTIONS,
///     ["connected", "socketConnect", "chat", "error", "disconnected"]
/// );
/// ```
pub use repod_macros::listener;

/// Binds a struct to an action name: `#[derive(repod::Message)]` with `#[action("name")]`.
///
/// Generates `impl repod::Message for T { const ACTION: &'static str = "name"; }` for named,
/// tuple and unit structs, generics included (the impl requires `T: Serialize`).
/// `#[repod(action = "name")]` is accepted too. The name must be non-empty, without whitespace
/// or control characters; a field named `action` is rejected because it would clash with the
/// `"action"` key of a MessagePack message. Enums are rejected: the enum of a channel's
/// messages is generated by [`channel`].
///
/// No import is needed for `#[action("…")]`: on the struct it is the derive's own attribute,
/// and inside a [`channel`] or [`listener`] impl the macro consumes it. Importing
/// `repod::action` does no harm (the derive's attribute still wins on the struct); the import is
/// merely unused.
///
/// Serde options that one codec cannot honour are rejected where the derive sees them, on the
/// struct and its fields: `skip_serializing_if`, `skip_serializing` or `skip_deserializing`
/// alone, `flatten` and `#[serde(tag = "…")]` break bincode (the default codec, which writes
/// fields by position); `deny_unknown_fields` breaks MessagePack (whose body map also holds the
/// `"action"` key). A message that only travels with one codec declares it with
/// `#[repod(codec = "msgpack")]` or `#[repod(codec = "bincode")]`, and only the other codec's
/// problems are then reported. The declaration does not choose the codec; see the
/// [handlers guide](crate::guide::handlers) for the full table.
///
/// ```
/// use repod::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, repod::Message)]
/// #[action("join_team")]
/// pub struct JoinTeam {
///     pub team: u8,
/// }
///
/// assert_eq!(JoinTeam::ACTION, "join_team");
/// ```
pub use repod_macros::Message;

/// Marks a handler inside a [`channel`] or [`listener`] impl: `#[action("name")]`, or
/// `#[action]` to take the name from the payload type.
///
/// It needs no import inside those impls, which consume it; used anywhere else it is an error.
pub use repod_macros::action;

#[doc(hidden)]
pub mod __private {
    pub use ::bincode;
    pub use ::bytes;
    pub use ::repod_core;
    pub use ::repod_core::{
        Channel, ChannelError, ClientContext, CloseReason, CodecError, Context, DispatchContext,
        HandlerResult, Listener, Message, RawMessage, Request,
    };
    pub use ::rmpv;
    pub use ::serde;
    pub use ::tracing;

    use ::core::marker::PhantomData;
    use ::serde::de::DeserializeOwned;

    /// Picks how a handler's payload is decoded by whether its type is a [`Message`], by
    /// method resolution: `(&PayloadProbe::<T>::new()).__repod_decoder()` is a [`PayloadDecoder`] for
    /// a message type ([`MessageProbe`], found first) and a [`NotAPayload`] for any other
    /// ([`OtherProbe`], found through one more reference).
    ///
    /// The macros also name the type in `<T as Message>::ACTION`, which fails for a type that
    /// is not a message: that is then the one error, where decoding would have added a second
    /// about `Deserialize`.
    pub struct PayloadProbe<T>(PhantomData<fn() -> T>);

    impl<T> PayloadProbe<T> {
        /// The probe of `T`.
        #[must_use]
        pub const fn new() -> Self {
            PayloadProbe(PhantomData)
        }
    }

    impl<T> ::core::default::Default for PayloadProbe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// The [`PayloadProbe`] step taken for message types.
    pub trait MessageProbe<T> {
        /// The decoder of a message type.
        fn __repod_decoder(&self) -> PayloadDecoder<T> {
            PayloadDecoder(PhantomData)
        }
    }

    impl<T: Message> MessageProbe<T> for PayloadProbe<T> {}

    /// The [`PayloadProbe`] step taken for every other type.
    pub trait OtherProbe<T> {
        /// The stand-in decoder of a type that is not a message.
        fn __repod_decoder(&self) -> NotAPayload<T> {
            NotAPayload(PhantomData)
        }
    }

    impl<T> OtherProbe<T> for &PayloadProbe<T> {}

    /// Decodes a message type; requires `Deserialize` (the one error if it is missing).
    pub struct PayloadDecoder<T>(PhantomData<fn() -> T>);

    impl<T> PayloadDecoder<T> {
        /// Decodes the body of `msg` into `T`.
        #[inline]
        pub fn decode(self, msg: &RawMessage) -> ::core::result::Result<T, CodecError>
        where
            T: DeserializeOwned,
        {
            msg.decode()
        }
    }

    /// The stand-in for a payload type that is not a message. Code using it never compiles
    /// (the `Message` check beside it fails), so it never runs.
    pub struct NotAPayload<T>(PhantomData<fn() -> T>);

    impl<T> NotAPayload<T> {
        /// Never called: see the type's documentation.
        pub fn decode(self, _msg: &RawMessage) -> ::core::result::Result<T, CodecError> {
            ::core::unreachable!("a payload type that is not a repod message does not compile")
        }
    }

    /// Implemented only by [`NotAPayload`]: a method shaped like a handler but without
    /// `#[action]` must not take a message.
    #[diagnostic::on_unimplemented(
        message = "`{T}` is a repod message, but this method has no `#[action]`, so it never receives one",
        label = "did you mean `#[action]`?",
        note = "put `#[action]` above the method to make it the handler of `{T}`",
        note = "a helper that takes a message belongs in an `impl` block without `#[repod::channel]` or `#[repod::listener]`"
    )]
    pub trait NoAction<T> {}

    impl<T> NoAction<T> for NotAPayload<T> {}

    /// Fails to compile when `K` is a [`PayloadDecoder`], that is when `T` is a message.
    pub fn no_action<T, K: NoAction<T>>(_probe: K) {}

    /// Picks how a channel handler's return value is used by whether its payload type is a
    /// [`Request`], by method resolution like [`PayloadProbe`]:
    /// `(&ReplyProbe::<T>::new()).__repod_responder()` is a [`RequestResponder`] for a request
    /// type ([`RequestProbe`], found first) and a [`PlainResponder`] for any other
    /// ([`PlainProbe`]).
    pub struct ReplyProbe<T>(PhantomData<fn() -> T>);

    impl<T> ReplyProbe<T> {
        /// The probe of `T`.
        #[must_use]
        pub const fn new() -> Self {
            ReplyProbe(PhantomData)
        }
    }

    impl<T> ::core::default::Default for ReplyProbe<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// The [`ReplyProbe`] step taken for request types.
    pub trait RequestProbe<T> {
        /// The responder of a request type.
        fn __repod_responder(&self) -> RequestResponder<T> {
            RequestResponder(PhantomData)
        }
    }

    impl<T: Request> RequestProbe<T> for ReplyProbe<T> {}

    /// The [`ReplyProbe`] step taken for every other type.
    pub trait PlainProbe<T> {
        /// The responder of a plain message type.
        fn __repod_responder(&self) -> PlainResponder {
            PlainResponder
        }
    }

    impl<T> PlainProbe<T> for &ReplyProbe<T> {}

    /// Answers a request with what its handler returned.
    pub struct RequestResponder<T>(PhantomData<fn() -> T>);

    impl<T: Request> RequestResponder<T> {
        /// Sends the reply (or the error) for a request; for a request type sent as a plain
        /// message, drops the reply and reports an error like any handler's.
        #[inline]
        pub fn respond<Ch: Channel, O: IntoReply<T::Reply>>(
            self,
            out: O,
            ctx: &mut Context<'_, Ch>,
            action: &str,
            request_id: ::core::option::Option<u64>,
        ) {
            match (request_id, out.into_reply()) {
                (::core::option::Option::Some(rid), ::core::result::Result::Ok(value)) => {
                    let _ = ctx.reply_raw(rid, ::core::result::Result::Ok(&value));
                }
                (::core::option::Option::Some(rid), ::core::result::Result::Err(error)) => {
                    let text = ::std::string::ToString::to_string(&error);
                    let _ = ctx.reply_raw::<()>(rid, ::core::result::Result::Err(&text));
                }
                (::core::option::Option::None, ::core::result::Result::Ok(_)) => {
                    ::tracing::trace!(target: "repod::server", action, "a request type sent as a plain message: its reply is dropped");
                }
                (::core::option::Option::None, ::core::result::Result::Err(error)) => {
                    DispatchContext::handler_failed(ctx, action, &error);
                }
            }
        }
    }

    /// Reports what a handler of a plain message returned.
    pub struct PlainResponder;

    impl PlainResponder {
        /// Reports the handler's result; a request that reached it gets an error reply, since
        /// the handler does not answer.
        #[inline]
        pub fn respond<Ch: Channel, O: HandlerResult>(
            self,
            out: O,
            ctx: &mut Context<'_, Ch>,
            action: &str,
            request_id: ::core::option::Option<u64>,
        ) {
            HandlerResult::report(out, ctx, action);
            not_answered(ctx, action, request_id);
        }
    }

    /// Answers a request that reached a handler which does not answer requests.
    pub fn not_answered<Ch: Channel>(
        ctx: &mut Context<'_, Ch>,
        action: &str,
        request_id: ::core::option::Option<u64>,
    ) {
        if let ::core::option::Option::Some(rid) = request_id {
            let text = ::std::format!("action {action:?} does not answer requests");
            ::tracing::debug!(target: "repod::server", action, rid, "a request for a handler that does not answer");
            let _ = ctx.reply_raw::<()>(rid, ::core::result::Result::Err(&text));
        }
    }

    /// The id and action of a request about to reach a fallback handler, to answer it after
    /// the fallback if the fallback did not.
    pub fn pending_request(
        msg: &RawMessage,
    ) -> ::core::option::Option<(u64, ::std::string::String)> {
        msg.request_id()
            .map(|rid| (rid, ::std::borrow::ToOwned::to_owned(msg.action())))
    }

    /// What a request's handler may return: the reply type `R`, or `Result<R, E>` with
    /// `E: Display` (the caller then gets `E`'s text as a remote error).
    #[diagnostic::on_unimplemented(
        message = "this handler answers a request whose reply type is `{R}`, so it must return `{R}` or `Result<{R}, E>` with `E: Display`, not `{Self}`",
        label = "not the request's reply type",
        note = "the reply type is declared on the request: `#[reply({R})]`"
    )]
    pub trait IntoReply<R> {
        /// The error a handler may return instead.
        type Error: ::core::fmt::Display;

        /// The reply or the error.
        fn into_reply(self) -> ::core::result::Result<R, Self::Error>;
    }

    impl<R> IntoReply<R> for R {
        type Error = ::core::convert::Infallible;

        #[inline]
        fn into_reply(self) -> ::core::result::Result<R, Self::Error> {
            ::core::result::Result::Ok(self)
        }
    }

    impl<R, E: ::core::fmt::Display> IntoReply<R> for ::core::result::Result<R, E> {
        type Error = E;

        #[inline]
        fn into_reply(self) -> ::core::result::Result<R, E> {
            self
        }
    }

    /// String equality usable in constants (action-name checks of the macros).
    #[must_use]
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

/// The README's example, compiled with the tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
