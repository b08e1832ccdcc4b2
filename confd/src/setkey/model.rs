//! What a setkey(8) script says, parsed: one [`Statement`] per `…;`, each with the line it started
//! on. Shared by `ipsecctl setkey` (applied to fwd), `ipsecctl import setkey` (written out as manual
//! conns) and `ipsecctl import racoon` (whose `spdadd … require` policies say what to negotiate).

use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode, SecretBytes};
use std::net::IpAddr;

/// A statement and where it came from (1-based line of its first token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub line: usize,
    pub item: T,
}

/// `-m transport|tunnel|any` (setkey's default is `any`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SadMode {
    Any,
    Transport,
    Tunnel,
}

/// `add SRC DST esp|ah SPI [-m MODE] [-r WINDOW] [-E ALG KEY] [-A ALG KEY];`
#[derive(Debug, Clone, PartialEq)]
pub struct SaEntry {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpsecProto,
    pub spi: u32,
    pub mode: SadMode,
    /// `-r`: the replay window, in packets (setkey gives bytes ×8 on some systems; ferroswan reads
    /// packets, as Linux's setkey does).
    pub replay: Option<u32>,
    /// `-E ALG KEY` (ESP only).
    pub enc: Option<(EncrAlg, SecretBytes)>,
    /// `-A ALG KEY` (ESP integrity, or the AH algorithm).
    pub auth: Option<(IntegAlg, SecretBytes)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDir {
    In,
    Out,
    Fwd,
}

/// `require | use | unique[:ID]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Default,
    Use,
    Require,
    Unique(Option<u32>),
}

/// One `esp/tunnel/A-B/require` of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecRequest {
    pub proto: IpsecProto,
    pub mode: SaMode,
    /// Tunnel endpoints `A-B` (required for tunnel mode; empty in transport mode).
    pub endpoints: Option<(IpAddr, IpAddr)>,
    pub level: Level,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    /// `-P out none`: no IPsec (cleartext).
    None,
    /// `-P out discard`.
    Discard,
    /// `-P out ipsec esp/… ah/…`, outermost last as setkey writes them in order.
    Ipsec(Vec<IpsecRequest>),
}

/// `spdadd SRC[/PREFIX][[PORT]] DST[/PREFIX][[PORT]] UPPERSPEC -P DIR ACTION;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdEntry {
    pub src: Net,
    /// `[any]` or absent: None.
    pub src_port: Option<u16>,
    pub dst: Net,
    pub dst_port: Option<u16>,
    /// `any` = 0, `icmp` = 1, `tcp` = 6, `udp` = 17, `icmp6` = 58, or a number.
    pub upper: u8,
    pub dir: PolicyDir,
    pub action: PolicyAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `flush [esp|ah];`
    Flush(Option<IpsecProto>),
    /// `spdflush;`
    SpdFlush,
    Add(SaEntry),
    /// `delete SRC DST PROTO SPI;`
    Delete { src: IpAddr, dst: IpAddr, proto: IpsecProto, spi: u32 },
    /// `deleteall SRC DST PROTO;`
    DeleteAll { src: IpAddr, dst: IpAddr, proto: IpsecProto },
    /// `get SRC DST PROTO SPI;`
    Get { src: IpAddr, dst: IpAddr, proto: IpsecProto, spi: u32 },
    SpdAdd(SpdEntry),
    /// `spddelete SRC DST UPPERSPEC -P DIR;`
    SpdDelete { src: Net, src_port: Option<u16>, dst: Net, dst_port: Option<u16>, upper: u8, dir: PolicyDir },
    /// `dump [esp|ah];`
    Dump(Option<IpsecProto>),
    SpdDump,
}

/// A `file:line:` error: the whole script is refused, nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SetkeyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The modes of the SA entries a policy can use (for checks and conversion).
pub fn sa_mode(m: SadMode) -> Option<SaMode> {
    match m {
        SadMode::Any => None,
        SadMode::Transport => Some(SaMode::Transport),
        SadMode::Tunnel => Some(SaMode::Tunnel),
    }
}
