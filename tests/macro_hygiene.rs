//! The expansions name only `::repod::__private::…` and `::core::…`: this file proves they need
//! no prelude, compiling under `no_implicit_prelude` beside items shadowing prelude names.
//!
//! That they need no other dependency is proved by `repod-examples`, which depends on `repod`,
//! `serde`, tokio, clap and tracing (with tracing-subscriber) only, with no bincode, rmpv or
//! bytes, and uses every macro.
#![no_implicit_prelude]
#![deny(unused_qualifications)]
#![allow(dead_code, non_camel_case_types)]

// Items shadowing what a careless expansion might use.
struct Result;
struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct String;
struct Vec;
struct Box;
mod core {}
mod __private {}

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("chat")]
struct Chat {
    text: ::std::string::String,
}

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("ping")]
struct Ping;

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("move")]
struct r#Move(u8, u8);

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("wrap")]
struct Wrap<T> {
    inner: T,
}

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("ask")]
#[reply(::std::vec::Vec<u8>)]
struct Ask {
    n: u8,
}

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("try_ask")]
#[reply(u8)]
struct TryAsk;

#[derive(::serde::Serialize, ::serde::Deserialize, ::repod::Message)]
#[action("later")]
#[reply(())]
struct Later;

struct State {
    hits: u32,
}

struct Ch {
    seen: u32,
}

#[::repod::channel(state = State)]
impl Ch {
    /// Doc comments and other attributes stay.
    #[action("chat")]
    fn r#chat(&mut self, ctx: &mut ::repod::Context<'_, Self>, msg: Chat) {
        let _ = msg.text;
        ctx.state_mut().hits += 1;
        self.seen += 1;
    }

    #[action]
    fn ping(&mut self, _msg: Ping) -> ::core::result::Result<(), &'static str> {
        ::core::result::Result::Ok(())
    }

    #[action("move")]
    fn r#move(&mut self, ctx: &mut ::repod::Context<'_, Self>, _m: r#Move) {
        let _ = ctx;
    }

    #[action("socketConnect")]
    fn socket_connect(&mut self) {}

    #[action]
    fn ask(&mut self, msg: Ask) -> ::std::vec::Vec<u8> {
        ::std::vec![msg.n]
    }

    #[action]
    fn try_ask(&mut self, _msg: TryAsk) -> ::core::result::Result<u8, &'static str> {
        ::core::result::Result::Err("no")
    }

    #[action]
    fn later(&mut self, _msg: Later, reply: ::repod::ReplyTo<Later>) {
        let _ = reply.send(&());
    }

    // Compiled out, and so are its match arms, variant and entry in `ACTIONS`.
    #[cfg(any())]
    #[action("never")]
    fn never(&mut self, _msg: Missing) {}

    fn network_received(&mut self, msg: ::repod::RawMessage) {
        let _ = msg;
    }

    fn on_close(&mut self, _ctx: &mut ::repod::Context<'_, Self>, _reason: &::repod::CloseReason) {}

    // A hook without its context; a helper with a handler's shape (checked not to take a
    // message, by generated code that must need no prelude either).
    fn on_connect(&mut self) {}

    fn helper(&mut self, _ctx: &mut ::repod::Context<'_, Self>, n: u32) {
        self.seen += n;
    }

    fn on_error(&mut self, _ctx: &mut ::repod::Context<'_, Self>, _error: &::repod::ChannelError) {}
}

struct Li;

#[::repod::listener(vis = pub(crate))]
impl Li {
    #[::repod::action]
    fn connected(&mut self, _ctx: &mut ::repod::ClientContext<'_>, _c: ::repod::Connected) {}
}

#[test]
fn expansions_compile_without_the_prelude() {
    ::std::assert_eq!(
        <Ch as ::repod::Channel>::ACTIONS,
        &[
            "chat",
            "ping",
            "move",
            "socketConnect",
            "ask",
            "try_ask",
            "later"
        ]
    );
    ::std::assert_eq!(ChMessage::Move(r#Move(1, 2)).action(), "move");
    ::std::assert_eq!(<Li as ::repod::Listener>::ACTIONS, &["connected"]);
    ::std::assert_eq!(<Wrap<u8> as ::repod::Message>::ACTION, "wrap");
}
