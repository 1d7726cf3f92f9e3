//! The server's side of requests, over real sockets with a raw client: replies returned,
//! failed, deferred, dropped; requests to plain handlers and to nobody; both codecs.

mod request_support;
mod server_support;

use repod::server::{Server, DROPPED_REPLY};
use repod::{CodecKind, Message, Request, RequestError};
use serde::de::DeserializeOwned;

use request_support::*;
use server_support::{serve, within, TestClient};

const CODECS: [CodecKind; 2] = [CodecKind::Bincode, CodecKind::MsgPack];

async fn request<M: Message>(client: &mut TestClient, rid: u64, msg: &M) {
    let frame = client
        .codec
        .encode_request(rid, msg, usize::MAX)
        .expect("encode");
    client.send_payload(frame.slice(4..)).await;
}

/// The next message, which must be the reply to `rid`.
async fn reply<T: DeserializeOwned>(client: &mut TestClient, rid: u64) -> Result<T, RequestError> {
    let raw = client.recv().await.expect("a reply before the end");
    assert_eq!(raw.reply_id(), Some(rid), "not the reply to {rid}: {raw:?}");
    assert_eq!(raw.action(), "reply");
    raw.decode_reply()
}

async fn start(codec: CodecKind) -> (TestClient, repod::server::ServerHandle<Player>) {
    let (addr, handle, _task) = serve(Server::<Player>::builder().codec(codec)).await;
    (TestClient::connect(addr, codec).await, handle)
}

#[tokio::test]
async fn a_returned_reply_answers_the_request() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            request(&mut client, 7, &ListRooms { mode: "ffa".into() }).await;
            let rooms: RoomList = reply(&mut client, 7).await.expect("ok");
            assert_eq!(rooms.rooms, ["ffa-1", "ffa-2"], "{codec}");
            // Ids are the client's: any number, in any order.
            request(&mut client, u64::MAX, &ListRooms { mode: "ctf".into() }).await;
            let rooms: RoomList = reply(&mut client, u64::MAX).await.expect("ok");
            assert_eq!(rooms.rooms, ["ctf-1", "ctf-2"]);
        })
        .await;
    }
}

#[tokio::test]
async fn a_handler_error_is_the_reply() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            request(
                &mut client,
                1,
                &JoinRoom {
                    room: "attic".into(),
                },
            )
            .await;
            let error = reply::<Joined>(&mut client, 1).await.expect_err("an error");
            assert_eq!(
                error,
                RequestError::Remote("no such room: attic".into()),
                "{codec}"
            );
            request(
                &mut client,
                2,
                &JoinRoom {
                    room: "lobby".into(),
                },
            )
            .await;
            let joined: Joined = reply(&mut client, 2).await.expect("ok");
            assert_eq!(
                joined,
                Joined {
                    room: "lobby".into(),
                    seat: 1
                }
            );
        })
        .await;
    }
}

#[tokio::test]
async fn a_request_type_sent_as_a_plain_message_gets_no_reply() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            client.send(&ListRooms { mode: "ffa".into() }).await;
            // Its error is an ordinary error message, as for any handler.
            client
                .send(&JoinRoom {
                    room: "attic".into(),
                })
                .await;
            let error: repod::ErrorMessage = client.expect().await;
            assert_eq!(error.message, "no such room: attic");
            client
                .send(&Chat {
                    text: "after".into(),
                })
                .await;
            let said: Said = client.expect().await;
            assert_eq!(said.text, "after", "{codec}");
        })
        .await;
    }
}

#[tokio::test]
async fn requests_to_handlers_that_do_not_answer_get_an_error_reply() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            // A plain handler runs, then the caller learns it answers nothing.
            request(&mut client, 3, &Chat { text: "hi".into() }).await;
            let said: Said = client.expect().await;
            assert_eq!(said.text, "hi");
            let error = reply::<()>(&mut client, 3).await.expect_err("an error");
            assert_eq!(
                error,
                RequestError::Remote("action \"chat\" does not answer requests".into())
            );
            // A unit action written as a string.
            #[derive(serde::Serialize)]
            struct Poke;
            impl Message for Poke {
                const ACTION: &'static str = "poke";
            }
            impl Request for Poke {
                type Reply = ();
            }
            request(&mut client, 4, &Poke).await;
            let error = reply::<()>(&mut client, 4).await.expect_err("an error");
            assert_eq!(
                error,
                RequestError::Remote("action \"poke\" does not answer requests".into())
            );
            // An action nobody handles: the fallback ran and did not answer it.
            request(&mut client, 5, &Nobody).await;
            let error = reply::<String>(&mut client, 5).await.expect_err("an error");
            assert_eq!(
                error,
                RequestError::Remote("no handler answered action \"nobody\"".into()),
                "{codec}"
            );
        })
        .await;
    }
}

#[tokio::test]
async fn an_invalid_request_body_is_an_error_reply() {
    #[derive(serde::Serialize)]
    struct BadRooms {
        mode: u32,
    }
    impl Message for BadRooms {
        const ACTION: &'static str = "list_rooms";
    }
    impl Request for BadRooms {
        type Reply = RoomList;
    }
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            request(&mut client, 9, &BadRooms { mode: 3 }).await;
            let error = reply::<RoomList>(&mut client, 9)
                .await
                .expect_err("an error");
            let RequestError::Remote(text) = error else {
                panic!("not a remote error: {error:?}");
            };
            assert!(
                text.starts_with("invalid body for action \"list_rooms\""),
                "{codec}: {text}"
            );
            // The connection carries on.
            request(&mut client, 10, &ListRooms { mode: "x".into() }).await;
            assert!(reply::<RoomList>(&mut client, 10).await.is_ok());
        })
        .await;
    }
}

#[tokio::test]
async fn deferred_replies_come_later_and_in_any_order() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            for rid in 1..=3 {
                request(&mut client, rid, &FindMatch { players: 3 }).await;
            }
            // Answered together, the latest first.
            for (rid, position) in [(3, 3), (2, 2), (1, 1)] {
                let found: MatchFound = reply(&mut client, rid).await.expect("ok");
                assert_eq!(found.position, position, "{codec}");
            }
        })
        .await;
    }
}

#[tokio::test]
async fn deferred_replies_from_another_thread_and_a_handle() {
    for codec in CODECS {
        within(async {
            let (mut client, server) = start(codec).await;
            request(&mut client, 1, &Stall { n: 11 }).await;
            request(&mut client, 2, &Stall { n: 22 }).await;
            // Wait until both tokens are held, then answer one through the handle.
            loop {
                let held = server
                    .call(|ctx| ctx.state().stalled.len())
                    .await
                    .expect("call");
                if held == 2 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            let answered = server
                .call(|ctx| {
                    let token = ctx.state_mut().stalled.remove(&22).expect("held");
                    ctx.reply(token, &220)
                })
                .await
                .expect("call");
            assert!(answered.is_ok());
            assert_eq!(reply::<u64>(&mut client, 2).await, Ok(220));
            // The other from a thread of its own.
            client.send(&Release).await;
            assert_eq!(reply::<u64>(&mut client, 1).await, Ok(11), "{codec}");
        })
        .await;
    }
}

#[tokio::test]
async fn a_dropped_token_sends_an_error_reply() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            request(&mut client, 5, &Forget).await;
            let error = reply::<u32>(&mut client, 5).await.expect_err("an error");
            assert_eq!(error, RequestError::Remote(DROPPED_REPLY.into()), "{codec}");
        })
        .await;
    }
}

#[tokio::test]
async fn a_fallback_answers_requests_by_hand() {
    within(async {
        let codec = CodecKind::MsgPack;
        let (mut client, _server) = start(codec).await;
        #[derive(serde::Serialize)]
        struct EchoRaw {
            text: String,
        }
        impl Message for EchoRaw {
            const ACTION: &'static str = "echo_raw";
        }
        impl Request for EchoRaw {
            type Reply = String;
        }
        request(
            &mut client,
            8,
            &EchoRaw {
                text: "back".into(),
            },
        )
        .await;
        assert_eq!(reply::<String>(&mut client, 8).await, Ok("back".into()));
    })
    .await;
}

#[tokio::test]
async fn a_reply_that_does_not_fit_is_a_decode_error() {
    for codec in CODECS {
        within(async {
            let (mut client, _server) = start(codec).await;
            request(&mut client, 6, &ListRoomsAsNumber { mode: "x".into() }).await;
            let error = reply::<u8>(&mut client, 6).await.expect_err("an error");
            assert!(
                matches!(error, RequestError::Decode(_)),
                "{codec}: {error:?}"
            );
        })
        .await;
    }
}

#[test]
fn request_types_declare_their_reply() {
    fn reply_of<R: Request>() -> &'static str {
        std::any::type_name::<R::Reply>()
    }
    assert!(reply_of::<ListRooms>().ends_with("RoomList"));
    assert_eq!(reply_of::<Forget>(), "u32");
    assert_eq!(ListRooms::ACTION, "list_rooms");
}

/// A channel without a fallback.
#[derive(Default)]
struct Quiet;

#[repod::channel]
impl Quiet {
    #[action]
    fn double(&mut self, req: Double) -> u64 {
        req.n * 2
    }
}

#[tokio::test]
async fn a_request_nobody_handles_gets_an_error_reply() {
    for codec in CODECS {
        within(async {
            let (addr, _handle, _task) = serve(Server::<Quiet>::builder().codec(codec)).await;
            let mut client = TestClient::connect(addr, codec).await;
            request(&mut client, 1, &Nobody).await;
            let error = reply::<String>(&mut client, 1).await.expect_err("an error");
            assert_eq!(
                error,
                RequestError::Remote("no handler for action \"nobody\"".into()),
                "{codec}"
            );
            request(&mut client, 2, &Double { n: 21 }).await;
            assert_eq!(reply::<u64>(&mut client, 2).await, Ok(42));
        })
        .await;
    }
}
