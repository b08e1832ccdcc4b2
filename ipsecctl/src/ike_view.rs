//! Output of `ipsecctl status` (the IKE part), `ipsecctl trafficstatus` and the `ipsec auto
//! --status` of FreeS/WAN: ikerd's report (connections, ISAKMP/IKE SAs, IPsec SAs) joined with
//! fwd's counters for each IPsec SA, as pluto-like text or as JSON.

use ipc::ike::{ChildSaStatus, ConnStatus, IkeAuto, IkeSaStatus, IkeStatusReport};
use ipc::policy::{Look, SaInfo};
use ipc::sa::{Direction, IpsecProto};
use serde::Serialize;
use std::fmt::Write as _;

/// What pluto printed in parentheses after each state name.
pub fn state_story(state: &str) -> &'static str {
    match state {
        "STATE_MAIN_I1" => "sent MI1, expecting MR1",
        "STATE_MAIN_I2" => "sent MI2, expecting MR2",
        "STATE_MAIN_I3" => "sent MI3, expecting MR3",
        "STATE_MAIN_I4" => "ISAKMP SA established",
        "STATE_MAIN_R0" => "expecting MI1",
        "STATE_MAIN_R1" => "sent MR1, expecting MI2",
        "STATE_MAIN_R2" => "sent MR2, expecting MI3",
        "STATE_MAIN_R3" => "sent MR3, ISAKMP SA established",
        "STATE_QUICK_I1" => "sent QI1, expecting QR1",
        "STATE_QUICK_I2" => "sent QI2, IPsec SA established",
        "STATE_QUICK_R0" => "expecting QI1",
        "STATE_QUICK_R1" => "sent QR1, inbound IPsec SA installed, expecting QI2",
        "STATE_QUICK_R2" => "IPsec SA established",
        "STATE_INFO" => "got Informational Message in clear",
        "STATE_INFO_PROTECTED" => "got encrypted Informational Message",
        "STATE_PARENT_I1" => "sent v2I1, expected v2R1",
        "STATE_PARENT_I2" => "sent v2I2, expected v2R2",
        "STATE_PARENT_I3" => "PARENT SA established",
        "STATE_PARENT_R1" => "received v2I1, sent v2R1",
        "STATE_PARENT_R2" => "received v2I2, PARENT SA established",
        "STATE_V2_IPSEC_I" => "IPsec SA established",
        "STATE_V2_IPSEC_R" => "IPsec SA established",
        _ => "",
    }
}

fn auto_name(a: IkeAuto) -> &'static str {
    match a {
        IkeAuto::Add => "add",
        IkeAuto::Route => "route",
        IkeAuto::Start => "start",
    }
}

fn proto_name(p: IpsecProto) -> &'static str {
    match p {
        IpsecProto::Esp => "esp",
        IpsecProto::Ah => "ah",
    }
}

/// Whether `conn` is `name` or one of its instances (`name[3]`).
pub fn is_conn(conn: &str, name: &str) -> bool {
    conn == name
        || conn
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('[') && rest.ends_with(']'))
}

/// The report restricted to one conn (and its instances).
pub fn filter(r: &IkeStatusReport, name: &str) -> IkeStatusReport {
    IkeStatusReport {
        conns: r
            .conns
            .iter()
            .filter(|c| is_conn(&c.name, name))
            .cloned()
            .collect(),
        ike_sas: r
            .ike_sas
            .iter()
            .filter(|s| is_conn(&s.conn, name))
            .cloned()
            .collect(),
        child_sas: r
            .child_sas
            .iter()
            .filter(|s| is_conn(&s.conn, name))
            .cloned()
            .collect(),
    }
}

/// fwd's SA for one SPI and direction (of the same conn if there are several).
fn fwd_sa<'a>(
    look: Option<&'a Look>,
    conn: &str,
    proto: IpsecProto,
    spi: u32,
    dir: Direction,
) -> Option<&'a SaInfo> {
    let candidates = look?
        .sas
        .iter()
        .filter(move |s| s.id.spi == spi && s.id.proto == proto && s.direction == dir);
    let all: Vec<&SaInfo> = candidates.collect();
    all.iter()
        .find(|s| s.conn == conn)
        .or_else(|| all.first())
        .copied()
}

/// One IPsec SA pair with fwd's counters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChildView {
    #[serde(flatten)]
    pub status: ChildSaStatus,
    /// `esp.1234abcd@192.0.2.1` (the inbound SA: our SPI, our address), when fwd lists it.
    pub sa_in: Option<String>,
    pub sa_out: Option<String>,
    pub in_bytes: Option<u64>,
    pub in_packets: Option<u64>,
    pub out_bytes: Option<u64>,
    pub out_packets: Option<u64>,
}

pub fn child_view(c: &ChildSaStatus, look: Option<&Look>) -> ChildView {
    let sa_in = fwd_sa(look, &c.conn, c.proto, c.spi_in, Direction::In);
    let sa_out = fwd_sa(look, &c.conn, c.proto, c.spi_out, Direction::Out);
    let name = |s: &SaInfo| format!("{}.{:x}@{}", proto_name(s.id.proto), s.id.spi, s.id.dst);
    ChildView {
        status: c.clone(),
        sa_in: sa_in.map(name),
        sa_out: sa_out.map(name),
        in_bytes: sa_in.map(|s| s.bytes),
        in_packets: sa_in.map(|s| s.packets),
        out_bytes: sa_out.map(|s| s.bytes),
        out_packets: sa_out.map(|s| s.packets),
    }
}

/// `ipsecctl status --json`'s `ike` member.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IkeView {
    pub conns: Vec<ConnStatus>,
    pub ike_sas: Vec<IkeSaStatus>,
    pub child_sas: Vec<ChildView>,
    /// Whether fwd's counters could be read.
    pub fwd_counters: bool,
}

pub fn ike_view(r: &IkeStatusReport, look: Option<&Look>) -> IkeView {
    IkeView {
        conns: r.conns.clone(),
        ike_sas: r.ike_sas.clone(),
        child_sas: r.child_sas.iter().map(|c| child_view(c, look)).collect(),
        fwd_counters: look.is_some(),
    }
}

fn event(what: &str, secs: Option<u64>) -> String {
    match (what.is_empty(), secs) {
        (true, _) => String::new(),
        (false, Some(s)) => format!("; {what} in {s}s"),
        (false, None) => format!("; {what}"),
    }
}

fn state_text(state: &str) -> String {
    match state_story(state) {
        "" => state.to_string(),
        story => format!("{state} ({story})"),
    }
}

/// The IKE part of `ipsecctl status`, as pluto's `--status` showed it.
pub fn status_text(r: &IkeStatusReport, look: Option<&Look>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Connections: {}", r.conns.len());
    for c in &r.conns {
        let _ = writeln!(out, "\"{}\": {}; {}", c.name, c.summary, c.state);
        let _ = writeln!(
            out,
            "\"{}\":   {} {}; auto={}",
            c.name,
            c.version,
            c.auth,
            auto_name(c.auto)
        );
        if let Some(f) = &c.last_failure {
            let _ = writeln!(out, "\"{}\":   last failure: {f}", c.name);
        }
    }
    let _ = writeln!(out, "ISAKMP/IKE SAs: {}", r.ike_sas.len());
    for s in &r.ike_sas {
        let mut line = format!(
            "#{}: \"{}\" {}{}; {} {} -> {}{}",
            s.serial,
            s.conn,
            state_text(&s.state),
            event(&s.next_event, s.next_event_secs),
            if s.version == 2 { "IKEv2" } else { "IKEv1" },
            s.local,
            s.remote,
            if s.nat_t { " NAT-T" } else { "" },
        );
        if !s.local_id.is_empty() || !s.remote_id.is_empty() {
            let or_unknown = |id: &str| {
                if id.is_empty() {
                    "?".to_string()
                } else {
                    id.to_string()
                }
            };
            let _ = write!(
                line,
                " {} <-> {}",
                or_unknown(&s.local_id),
                or_unknown(&s.remote_id)
            );
        }
        if !s.algs.is_empty() {
            let _ = write!(line, "; {}", s.algs);
        }
        let _ = writeln!(out, "{line}; age {}s", s.age_secs);
    }
    let _ = writeln!(out, "IPsec SAs: {}", r.child_sas.len());
    for c in &r.child_sas {
        let v = child_view(c, look);
        let _ = writeln!(
            out,
            "#{}: \"{}\" {}{}; isakmp#{}",
            c.serial,
            c.conn,
            state_text(&c.state),
            event(&c.next_event, c.next_event_secs),
            c.parent
        );
        let side = |sa: &Option<String>, spi: u32, bytes: Option<u64>, packets: Option<u64>| {
            let name = sa
                .clone()
                .unwrap_or_else(|| format!("{}.{spi:x}", proto_name(c.proto)));
            match (bytes, packets) {
                (Some(b), Some(p)) => format!("{name} ({b} bytes, {p} packets)"),
                _ => name,
            }
        };
        let _ = writeln!(
            out,
            "#{}: \"{}\" {} {} {} {} === {}{}; age {}s",
            c.serial,
            c.conn,
            side(&v.sa_out, c.spi_out, v.out_bytes, v.out_packets),
            side(&v.sa_in, c.spi_in, v.in_bytes, v.in_packets),
            c.algs,
            c.local_ts,
            c.remote_ts,
            if c.encap { " UDP-encap" } else { "" },
            c.age_secs
        );
    }
    if look.is_none() && !r.child_sas.is_empty() {
        out.push_str("(fwd could not be asked: no byte counters)\n");
    }
    out.trim_end().to_string()
}

/// One line of `ipsecctl trafficstatus`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Traffic {
    pub serial: u64,
    pub conn: String,
    #[serde(rename = "type")]
    pub proto: String,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    /// The peer's ID (from the ISAKMP/IKE SA the IPsec SA was negotiated under).
    pub id: String,
    pub age_secs: u64,
}

/// Established IPsec SAs with their byte and packet counts (Libreswan's `ipsec trafficstatus`).
pub fn traffic(r: &IkeStatusReport, look: Option<&Look>) -> Vec<Traffic> {
    r.child_sas
        .iter()
        .filter(|c| c.established)
        .map(|c| {
            let v = child_view(c, look);
            Traffic {
                serial: c.serial,
                conn: c.conn.clone(),
                proto: proto_name(c.proto).to_ascii_uppercase(),
                in_bytes: v.in_bytes.unwrap_or(0),
                out_bytes: v.out_bytes.unwrap_or(0),
                in_packets: v.in_packets.unwrap_or(0),
                out_packets: v.out_packets.unwrap_or(0),
                id: r
                    .ike_sas
                    .iter()
                    .find(|s| s.serial == c.parent)
                    .map(|s| s.remote_id.clone())
                    .unwrap_or_default(),
                age_secs: c.age_secs,
            }
        })
        .collect()
}

pub fn traffic_text(t: &[Traffic]) -> String {
    if t.is_empty() {
        return "no established IPsec SAs".into();
    }
    t.iter()
        .map(|x| {
            format!(
                "#{}: \"{}\", type={}, add_time={}s ago, inBytes={}, outBytes={}, inPackets={}, outPackets={}, id='{}'",
                x.serial, x.conn, x.proto, x.age_secs, x.in_bytes, x.out_bytes, x.in_packets, x.out_packets, x.id
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ipc::ike::Endpoint;
    use ipc::policy::Look;
    use ipc::sa::{EncrAlg, IntegAlg, SaId, SaMode};

    fn report() -> IkeStatusReport {
        let ep = |s: &str| Endpoint::new(s.parse().unwrap(), 500);
        IkeStatusReport {
            conns: vec![ConnStatus {
                name: "west-east".into(),
                summary: "10.1.0.0/16===192.0.2.1[@west]...192.0.2.2[@east]===10.2.0.0/16".into(),
                auth: "RSASIG".into(),
                version: "IKEv1".into(),
                auto: IkeAuto::Start,
                state: "erouted; eroute owner #2".into(),
                last_failure: None,
            }],
            ike_sas: vec![IkeSaStatus {
                serial: 1,
                conn: "west-east".into(),
                version: 1,
                initiator: true,
                state: "STATE_MAIN_I4".into(),
                established: true,
                local: ep("192.0.2.1"),
                remote: ep("192.0.2.2"),
                local_id: "@west".into(),
                remote_id: "@east".into(),
                algs: "AES_CBC_128/SHA1/MODP2048".into(),
                nat_t: false,
                age_secs: 60,
                next_event_secs: Some(2700),
                next_event: "EVENT_SA_REPLACE".into(),
            }],
            child_sas: vec![ChildSaStatus {
                serial: 2,
                parent: 1,
                conn: "west-east".into(),
                state: "STATE_QUICK_I2".into(),
                established: true,
                proto: IpsecProto::Esp,
                spi_in: 0x1234abcd,
                spi_out: 0xc0ffee01,
                algs: "ESP_AES_128/HMAC_SHA1".into(),
                local_ts: "10.1.0.0/16".into(),
                remote_ts: "10.2.0.0/16".into(),
                encap: false,
                age_secs: 59,
                next_event_secs: Some(27000),
                next_event: "EVENT_SA_REPLACE".into(),
            }],
        }
    }

    fn sa(spi: u32, dir: Direction, dst: &str, bytes: u64, packets: u64) -> SaInfo {
        SaInfo {
            id: SaId {
                spi,
                proto: IpsecProto::Esp,
                dst: dst.parse().unwrap(),
            },
            conn: "west-east".into(),
            direction: dir,
            src: "192.0.2.9".parse().unwrap(),
            dst: dst.parse().unwrap(),
            mode: SaMode::Tunnel,
            encap: None,
            encr: EncrAlg::AesCbc { key_bits: 128 },
            integ: IntegAlg::HmacSha1_96,
            esn: false,
            replay_window: 128,
            packets,
            bytes,
            errors: 0,
            seq: 0,
            age_secs: 59,
            state: "mature".into(),
        }
    }

    fn look() -> Look {
        Look {
            sas: vec![
                sa(0x1234abcd, Direction::In, "192.0.2.1", 1000, 10),
                sa(0xc0ffee01, Direction::Out, "192.0.2.2", 2000, 20),
                // an SA with the same SPI the other way (another peer) is not confused with it
                sa(0x1234abcd, Direction::Out, "198.51.100.7", 7, 7),
            ],
            ..Look::default()
        }
    }

    #[test]
    fn pluto_like_status_with_counters() {
        let t = status_text(&report(), Some(&look()));
        for want in [
            "\"west-east\": 10.1.0.0/16===192.0.2.1[@west]...192.0.2.2[@east]===10.2.0.0/16; erouted; eroute owner #2",
            "#1: \"west-east\" STATE_MAIN_I4 (ISAKMP SA established); EVENT_SA_REPLACE in 2700s; IKEv1 192.0.2.1:500 -> 192.0.2.2:500 @west <-> @east; AES_CBC_128/SHA1/MODP2048",
            "#2: \"west-east\" STATE_QUICK_I2 (sent QI2, IPsec SA established); EVENT_SA_REPLACE in 27000s; isakmp#1",
            "#2: \"west-east\" esp.c0ffee01@192.0.2.2 (2000 bytes, 20 packets) esp.1234abcd@192.0.2.1 (1000 bytes, 10 packets) ESP_AES_128/HMAC_SHA1 10.1.0.0/16 === 10.2.0.0/16",
        ] {
            assert!(t.contains(want), "{want:?} not in:\n{t}");
        }
        // no fwd: SPIs without counters, and a note
        let t = status_text(&report(), None);
        assert!(t.contains("esp.c0ffee01 esp.1234abcd ESP_AES_128"), "{t}");
        assert!(t.contains("no byte counters"));
    }

    #[test]
    fn traffic_per_established_sa() {
        let mut r = report();
        let mut half = r.child_sas[0].clone();
        half.serial = 3;
        half.established = false;
        r.child_sas.push(half);
        let t = traffic(&r, Some(&look()));
        assert_eq!(t.len(), 1);
        assert_eq!(
            (
                t[0].in_bytes,
                t[0].out_bytes,
                t[0].in_packets,
                t[0].out_packets
            ),
            (1000, 2000, 10, 20)
        );
        assert_eq!(t[0].id, "@east");
        assert_eq!(
            traffic_text(&t),
            "#2: \"west-east\", type=ESP, add_time=59s ago, inBytes=1000, outBytes=2000, inPackets=10, outPackets=20, id='@east'"
        );
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j[0]["type"], "ESP");
        assert_eq!(traffic_text(&[]), "no established IPsec SAs");
    }

    #[test]
    fn json_view_and_filter() {
        let v = serde_json::to_value(ike_view(&report(), Some(&look()))).unwrap();
        assert_eq!(v["conns"][0]["name"], "west-east");
        assert_eq!(v["child_sas"][0]["spi_in"], 0x1234abcd_u32);
        assert_eq!(v["child_sas"][0]["in_bytes"], 1000);
        assert_eq!(v["child_sas"][0]["sa_out"], "esp.c0ffee01@192.0.2.2");
        assert!(is_conn("rw[3]", "rw") && is_conn("rw", "rw"));
        assert!(!is_conn("rw2", "rw") && !is_conn("rw[3", "rw"));
        assert_eq!(filter(&report(), "west-east"), report());
        let none = filter(&report(), "other");
        assert!(none.conns.is_empty() && none.ike_sas.is_empty() && none.child_sas.is_empty());
    }
}
