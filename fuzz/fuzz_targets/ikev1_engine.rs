//! ikerd's IKEv1 engine as a responder (and with one initiation under way) fed arbitrary datagrams:
//! it must never panic or hang, whatever arrives on port 500 or 4500, and keyd's answers (a fixed
//! SKEYID, or a refusal) are fed back as the daemon would.
#![no_main]

use ikerd::actions::Action;
use ikerd::ikev1::{Engine, EngineConfig};
use ipc::ike::*;
use ipc::keyd::{KeydRequest, KeydResponse};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode, SecretBytes};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn end(host: Option<IpAddr>, id: IkeId, net: Option<Net>) -> IkeEnd {
    IkeEnd {
        host,
        id,
        subnets: net.into_iter().collect(),
        proto: 0,
        port: 0,
        rsasigkeys: Vec::new(),
        nexthop: None,
        sourceip: None,
        updown: None,
        firewall: false,
    }
}

fn conn(name: &str, remote: Option<IpAddr>, auto: IkeAuto) -> IkeConn {
    let me: IpAddr = [192, 0, 2, 2].into();
    IkeConn {
        name: name.into(),
        versions: IkeVersions { initiate: 1, accept_v1: true, accept_v2: false },
        auth: AuthMethod::Psk,
        local: end(Some(me), IkeId::Ip(me), Some(Net { addr: [10, 2, 0, 0].into(), prefix: 24 })),
        remote: end(remote, remote.map_or(IkeId::Any, IkeId::Ip), None),
        mode: SaMode::Tunnel,
        proto: IpsecProto::Esp,
        ike: vec![
            IkeProposal { encr: IkeEncr::AesCbc { key_bits: 128 }, prf: PrfAlg::HmacSha1, integ: None, dh: DhGroup::Modp1024 },
            IkeProposal { encr: IkeEncr::TripleDesCbc, prf: PrfAlg::HmacMd5, integ: None, dh: DhGroup::Modp1024 },
        ],
        esp: vec![EspProposal { encr: EncrAlg::AesCbc { key_bits: 128 }, integ: IntegAlg::HmacSha1_96, pfs_group: None }],
        pfs: true,
        ike_lifetime_secs: 3600,
        sa_lifetime_secs: 1800,
        rekey: true,
        rekey_margin_secs: 540,
        rekey_fuzz_percent: 100,
        keying_tries: 1,
        dpd: Some(DpdSpec { delay_secs: 5, timeout_secs: 20, action: DpdAction::Restart }),
        auto,
    }
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut e = Engine::new(
        EngineConfig { ike_port: 500, natt_port: 4500 },
        Box::new(rand::rngs::StdRng::seed_from_u64(7)),
    );
    let peer: IpAddr = [192, 0, 2, 1].into();
    e.load_conns(
        IkeSettings { uniqueids: true },
        vec![conn("rw", None, IkeAuto::Add), conn("net", Some(peer), IkeAuto::Start)],
        t0,
    );
    let local = Endpoint::new([192, 0, 2, 2].into(), 500);
    // Datagrams: [flags][len][bytes...]; flag bit 0 picks port 4500, bit 1 advances the clock.
    let mut rest = data;
    let mut now = t0;
    let mut rounds = 0;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len()) * 4;
        let n = n.min(tail.len());
        let (dgram, more) = tail.split_at(n);
        rest = more;
        let port = if flags & 1 == 1 { 4500 } else { 500 };
        if flags & 2 == 2 {
            now += Duration::from_secs(u64::from(flags >> 2));
            e.tick(now);
        }
        e.receive(Endpoint { port, ..local }, Endpoint::new(peer, port), dgram, now);
        while let Some(a) = e.poll_action() {
            if let Action::Keyd { ticket, req } = a {
                let resp = match req {
                    KeydRequest::V1PskSkeyid(_) => Ok(KeydResponse::Skeyid(SecretBytes::new(vec![0x5a; 20]))),
                    _ => Ok(KeydResponse::Denied("fuzz".into())),
                };
                e.keyd_answer(ticket, resp, now);
            }
        }
        rounds += 1;
        if rounds > 16 {
            break;
        }
    }
    let _ = e.status(now);
    let _ = e.fwd_states();
});
