//! The IPC frame decoder and every channel's strict message decoding, on arbitrary bytes.
#![no_main]
use ipc::channel::{Channel, ClientMsg, NoEvent, ServerMsg};
use ipc::frame;
use libfuzzer_sys::fuzz_target;

fn messages<C: Channel>(payload: &[u8]) {
    let _ = frame::decode::<ClientMsg<C::Request>>(payload);
    let _ = frame::decode::<ServerMsg<C::Response, NoEvent>>(payload);
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Walk the input as a stream of frames, as a server reads a connection.
    while let Ok(Some((payload, used))) = frame::decode_frame(rest, 64 * 1024) {
        let _ = frame::decode::<ipc::hello::Hello>(payload);
        messages::<ipc::keyd::KeydChannel>(payload);
        messages::<ipc::fwd::FwdChannel>(payload);
        messages::<ipc::ikerd::IkerdChannel>(payload);
        messages::<ipc::ctl::CtlChannel>(payload);
        messages::<ipc::supervisor::SupervisorChannel>(payload);
        rest = rest.get(used..).unwrap_or_default();
    }
});
