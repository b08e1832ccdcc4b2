//! What the sans-IO IKE engines ask the daemon to do.

use ipc::fwd::{UpdownEnv, UpdownVerb};
use ipc::ike::Endpoint;
use ipc::keyd::KeydRequest;
use ipc::policy::{ConnState, RemoveMode};

/// One thing for the daemon to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a datagram. `local.port` is the IKE port (500: ikerd's own socket) or the NAT-T port
    /// (4500: relayed through fwd, which adds the non-ESP marker; `bytes` never carries the marker).
    Send {
        local: Endpoint,
        remote: Endpoint,
        bytes: Vec<u8>,
    },
    /// Ask keyd; answer with the engine's `keyd_answer(ticket, response)`.
    Keyd { ticket: u64, req: KeydRequest },
    /// The complete desired fwd state of one conn instance (all its live SAs, both directions, and
    /// its policies). fwd keeps the counters/replay state of SAs that are unchanged, so re-sending
    /// the whole state on every change (new SA, rekey, delete) is right.
    Install(ConnState),
    /// Take a conn instance's state out of fwd.
    Remove { conn: String, mode: RemoveMode },
    /// Run the updown script of `conn` (the conn as configured: a road warrior's template, not
    /// its instance; `env.instance` names the instance) with `verb`. Goes to fwd in order with
    /// `Install`/`Remove`: `up-*` follows the Install that put the SAs in, `down-*` precedes the
    /// change that takes them out.
    Updown {
        conn: String,
        verb: UpdownVerb,
        env: UpdownEnv,
    },
}
