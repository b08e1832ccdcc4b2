//! Every message type of every channel survives encode → frame → decode unchanged, and no byte string
//! makes the decoders panic.

use crate::channel::{Channel, ClientMsg, ServerMsg};
use crate::frame::{self, HELLO_MAX};
use crate::hello::{Hello, HelloReply};
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + Debug>(msg: &T, max: usize) {
    let size = postcard::to_stdvec(msg).expect("serializes").len();
    if size > max {
        // Over the channel's cap: the sender refuses to build the frame at all.
        assert!(matches!(
            frame::encode(msg, max),
            Err(frame::FrameError::TooLarge { .. })
        ));
        return;
    }
    let f = frame::encode(msg, max).expect("encodes within the cap");
    let (payload, used) = frame::decode_frame(&f, max)
        .expect("valid frame")
        .expect("complete");
    assert_eq!(used, f.len());
    let back: T = frame::decode(payload).expect("decodes");
    assert_eq!(&back, msg);
    // A strict prefix of the payload is an error (or a different message), never a panic.
    let n = payload.len();
    for cut in [0, 1, n / 3, n / 2, n.saturating_sub(1)] {
        if cut < n {
            assert!(frame::decode::<T>(&payload[..cut])
                .map(|m| m != *msg)
                .unwrap_or(true));
        }
    }
}

fn client<C: Channel>(id: u32, req: C::Request)
where
    C::Request: PartialEq,
{
    roundtrip(&ClientMsg { id, req }, C::MAX_FRAME);
}

fn response<C: Channel>(id: u32, resp: C::Response)
where
    C::Response: PartialEq,
    C::Event: PartialEq,
{
    roundtrip(
        &ServerMsg::<C::Response, C::Event>::Response { id, resp },
        C::MAX_FRAME,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hello(h in any::<Hello>(), r in any::<HelloReply>()) {
        roundtrip(&h, HELLO_MAX);
        // Rejection reasons are bounded by the hello cap; short ones round-trip.
        if frame::encode(&r, HELLO_MAX).is_ok() { roundtrip(&r, HELLO_MAX); }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = frame::decode_frame(&bytes, 1024);
        let _ = frame::decode::<Hello>(&bytes);
        let _ = frame::decode::<ClientMsg<crate::ctl::CtlRequest>>(&bytes);
        let _ = frame::decode::<ServerMsg<crate::ctl::CtlResponse, crate::channel::NoEvent>>(&bytes);
        let _ = frame::decode::<ServerMsg<crate::supervisor::SupervisorResponse, crate::channel::NoEvent>>(&bytes);
    }
}

#[test]
fn keyd() {
    big_stack(
        || {
            (
                any::<u32>(),
                any::<crate::keyd::KeydRequest>(),
                any::<crate::keyd::KeydResponse>(),
            )
        },
        |(id, q, a)| {
            client::<crate::keyd::KeydChannel>(id, q);
            response::<crate::keyd::KeydChannel>(id, a);
        },
    );
}

#[test]
fn fwd() {
    big_stack(
        || {
            (
                any::<u32>(),
                any::<crate::fwd::FwdRequest>(),
                any::<crate::fwd::FwdResponse>(),
            )
        },
        |(id, q, a)| {
            client::<crate::fwd::FwdChannel>(id, q);
            response::<crate::fwd::FwdChannel>(id, a);
        },
    );
}

#[test]
fn ikerd() {
    big_stack(
        || {
            (
                any::<u32>(),
                any::<crate::ikerd::IkerdRequest>(),
                any::<crate::ikerd::IkerdResponse>(),
            )
        },
        |(id, q, a)| {
            client::<crate::ikerd::IkerdChannel>(id, q);
            response::<crate::ikerd::IkerdChannel>(id, a);
        },
    );
}

#[test]
fn ctl() {
    big_stack(
        || {
            (
                any::<u32>(),
                any::<crate::ctl::CtlRequest>(),
                any::<crate::ctl::CtlResponse>(),
            )
        },
        |(id, q, a)| {
            client::<crate::ctl::CtlChannel>(id, q);
            response::<crate::ctl::CtlChannel>(id, a);
        },
    );
}

#[test]
fn supervisor() {
    big_stack(
        || {
            (
                any::<u32>(),
                any::<crate::supervisor::SupervisorRequest>(),
                any::<crate::supervisor::SupervisorResponse>(),
            )
        },
        |(id, q, a)| {
            client::<crate::supervisor::SupervisorChannel>(id, q);
            response::<crate::supervisor::SupervisorChannel>(id, a);
        },
    );
}

#[test]
fn fwd_events() {
    big_stack(
        any::<crate::fwd::FwdEvent>,
        |e| {
            roundtrip(
                &ServerMsg::<crate::fwd::FwdResponse, crate::fwd::FwdEvent>::Event(e),
                crate::fwd::FwdChannel::MAX_FRAME,
            )
        },
    );
}

/// Run a property over the channel's message enums on a thread with a large stack: proptest builds
/// the strategies of these deep enums on the stack, which overflows a test thread's default 2 MiB.
fn big_stack<S: Strategy + 'static>(strategy: fn() -> S, check: fn(S::Value))
where
    S::Value: 'static,
{
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
            runner
                .run(&strategy(), |v| {
                    check(v);
                    Ok(())
                })
                .unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
}
