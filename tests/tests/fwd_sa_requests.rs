//! fwd validates every SA request as untrusted input: a client speaking ikerd's role (as a
//! compromised ikerd would) gets malformed SAs refused with the reason logged; good ones install.

use ferroswan_tests::*;
use ipc::client::Conn;
use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::sa::*;
use ipc::Role;
use std::time::Duration;

fn spec(spi: u32, key_len: usize) -> SaSpec {
    SaSpec {
        conn: "west-east".into(),
        direction: Direction::In,
        proto: IpsecProto::Esp,
        spi,
        src: "192.0.2.2".parse().expect("addr"),
        dst: "192.0.2.1".parse().expect("addr"),
        mode: SaMode::Tunnel,
        encap: None,
        encr: EncrAlg::AesGcm { key_bits: 128, icv_bytes: 16 },
        enc_key: SecretBytes::new(vec![0x5a; key_len]),
        integ: IntegAlg::None,
        auth_key: SecretBytes::default(),
        esn: true,
        replay_window: 1024,
        lifetime: SaLifetime::default(),
    }
}

#[test]
fn fwd_installs_good_sas_and_refuses_bad_ones_from_ikerd() {
    require_root();
    let inst = Instance::new("sareq").expect("instance");
    // fwd takes from ikerd only SAs of the IKE conns confd names: configure "west-east".
    run_ok(inst.ns.cmd("ip").args(["addr", "add", "192.0.2.1/24", "dev", "lo"])).expect("address");
    std::fs::write(
        inst.config_dir.join("ipsec.conf"),
        "version 2\n\nconfig setup\n\nconn west-east\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauto=add\n",
    )
    .expect("conf");
    inst.start().expect("start");
    inst.wait_status(Duration::from_secs(20), "ready", all_ready).expect("ready");
    let sock = inst.socket("fwd.sock");
    let answers = ipc::runtime::run_local(async move {
        let mut c = Conn::<FwdChannel>::connect(&sock, Role::Ikerd).await.expect("connect as ikerd");
        let mut out = Vec::new();
        for req in [
            FwdRequest::AddSa(spec(0x1001, 20)),
            FwdRequest::AddSa(spec(0x1001, 20)),
            FwdRequest::AddSa(spec(0x1002, 16)),
            FwdRequest::AddSa(spec(5, 20)),
            FwdRequest::DeleteSa(spec(0x1001, 20).id()),
            FwdRequest::AddSa(spec(0x1003, 20)),
        ] {
            out.push(c.call(req).await.expect("answer").0);
        }
        out
    })
    .expect("runtime");
    let id = |spi| spec(spi, 20).id();
    assert_eq!(answers[0], FwdResponse::SaAdded(id(0x1001)));
    assert!(matches!(&answers[1], FwdResponse::Denied(m) if m.contains("exists already")), "{:?}", answers[1]);
    assert!(matches!(&answers[2], FwdResponse::Denied(m) if m.contains("needs 20 bytes")), "{:?}", answers[2]);
    assert!(matches!(&answers[3], FwdResponse::Denied(m) if m.contains("reserved")), "{:?}", answers[3]);
    assert_eq!(answers[4], FwdResponse::SaDeleted(id(0x1001)));
    assert_eq!(answers[5], FwdResponse::SaAdded(id(0x1003)));
    let log = inst.log("fwd");
    assert!(log.contains("refused SA") && log.contains("from ikerd (pid=") && log.contains("needs 20 bytes"), "{log}");
    assert!(!log.contains("5a, 5a") && !log.contains("[90, 90"), "key bytes in the log");
    let s = inst.status_json().expect("status");
    assert!(daemon(&s, "fwd").expect("fwd")["notes"].to_string().contains("SAs: 1 (0 from confd, 1 from ikerd)"), "{s:#}");
}
