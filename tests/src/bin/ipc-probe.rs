//! A misbehaving IPC client for the end-to-end tests: connects to one daemon socket and sends one
//! kind of bad input. Prints `pid=N` and then what the server did (`rejected: …`, `closed`, …).
//!
//! usage: ipc-probe SOCKET ACTION [ROLE]
//!   garbage | oversize ROLE | truncated ROLE | unknown-variant ROLE | trailing ROLE | hello-as ROLE |
//!   supervisor-stop

use ipc::channel::Channel;
use ipc::frame::{self, HELLO_MAX};
use ipc::hello::{Hello, HelloReply, Role};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn max_frame(socket: &str) -> usize {
    match socket.rsplit('/').next().unwrap_or_default() {
        "keyd.sock" => ipc::keyd::KeydChannel::MAX_FRAME,
        "fwd.sock" => ipc::fwd::FwdChannel::MAX_FRAME,
        "ikerd.sock" => ipc::ikerd::IkerdChannel::MAX_FRAME,
        "ctl.sock" => ipc::ctl::CtlChannel::MAX_FRAME,
        "supervisor.sock" => ipc::supervisor::SupervisorChannel::MAX_FRAME,
        other => panic!("unknown socket {other}"),
    }
}

fn read_frame(s: &mut UnixStream, max: usize) -> Option<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let len = frame::parse_header(h, max).ok()?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Say hello as `role`; Err with the server's reason if refused.
fn hello(s: &mut UnixStream, role: Role) -> Result<(), String> {
    let f = frame::encode(&Hello::new(role), HELLO_MAX).map_err(|e| e.to_string())?;
    s.write_all(&f).map_err(|e| e.to_string())?;
    let body = read_frame(s, HELLO_MAX).ok_or("closed during hello")?;
    match frame::decode::<HelloReply>(&body).map_err(|e| e.to_string())? {
        HelloReply::Accepted { .. } => Ok(()),
        HelloReply::Rejected { reason } => Err(reason),
    }
}

/// After sending something bad: did the server close the connection?
fn outcome(s: &mut UnixStream) -> String {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => "closed".into(),
        Ok(n) => format!("answered {n} bytes"),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            "still open".into()
        }
        Err(e) => format!("closed ({e})"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(socket), Some(action)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: ipc-probe SOCKET ACTION [ROLE]");
        std::process::exit(2);
    };
    let role = args
        .get(3)
        .map(|r| Role::from_name(r).unwrap_or_else(|| panic!("unknown role {r}")));
    println!("pid={}", std::process::id());
    let mut s = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            println!("connect failed: {e}");
            return;
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(8))).ok();
    let max = max_frame(socket);
    let need_hello = |s: &mut UnixStream| -> bool {
        match hello(s, role.expect("this action needs a ROLE")) {
            Ok(()) => true,
            Err(reason) => {
                println!("rejected: {reason}");
                false
            }
        }
    };
    match action.as_str() {
        "garbage" => {
            s.write_all(b"GET / HTTP/1.1\r\nHost: ferroswan\r\n\r\n")
                .ok();
            // The server may send its refusal before closing.
            let got =
                read_frame(&mut s, HELLO_MAX).and_then(|b| frame::decode::<HelloReply>(&b).ok());
            match got {
                Some(HelloReply::Rejected { reason }) => println!("rejected: {reason}"),
                other => println!("{:?} then {}", other, outcome(&mut s)),
            }
        }
        "hello-as" => {
            if need_hello(&mut s) {
                println!("accepted");
            }
        }
        "oversize" => {
            if need_hello(&mut s) {
                let len = u32::try_from(max + 1).unwrap_or(u32::MAX);
                s.write_all(&len.to_be_bytes()).ok();
                s.write_all(&[0u8; 64]).ok();
                println!("{}", outcome(&mut s));
            }
        }
        "truncated" => {
            if need_hello(&mut s) {
                s.write_all(&100u32.to_be_bytes()).ok();
                s.write_all(&[1u8; 10]).ok();
                s.shutdown(std::net::Shutdown::Write).ok();
                println!("{}", outcome(&mut s));
            }
        }
        "unknown-variant" => {
            if need_hello(&mut s) {
                // ClientMsg { id: 1, req: <variant 127> }: no channel has 127 request kinds.
                s.write_all(&[0, 0, 0, 2, 1, 0x7f]).ok();
                println!("{}", outcome(&mut s));
            }
        }
        "trailing" => {
            if need_hello(&mut s) {
                // ClientMsg { id: 1, req: variant 0 } followed by one extra byte.
                s.write_all(&[0, 0, 0, 3, 1, 0, 0]).ok();
                println!("{}", outcome(&mut s));
            }
        }
        "supervisor-stop" => {
            use ipc::channel::{ClientMsg, ServerMsg};
            use ipc::supervisor::{SupervisorRequest, SupervisorResponse};
            if hello(&mut s, Role::Ctl).is_ok() {
                let f = frame::encode(
                    &ClientMsg {
                        id: 1,
                        req: SupervisorRequest::Stop,
                    },
                    max,
                )
                .expect("encode");
                s.write_all(&f).ok();
                match read_frame(&mut s, max).map(|b| {
                    frame::decode::<ServerMsg<SupervisorResponse, ipc::channel::NoEvent>>(&b)
                }) {
                    Some(Ok(ServerMsg::Response { resp, .. })) => println!("answer: {resp:?}"),
                    other => println!("unexpected: {other:?}"),
                }
            }
        }
        other => {
            eprintln!("unknown action {other}");
            std::process::exit(2);
        }
    }
}
