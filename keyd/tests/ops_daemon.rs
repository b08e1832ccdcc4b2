//! keyd as a process: started on a temporary config and run dir with a root-owned 0600
//! ipsec.secrets, asked both IKEv1 operations over keyd.sock as ikerd, refused for confd, its
//! OpenSSL keys rebuilt by `RereadSecrets`, and its log says what it did without a secret in it.
//!
//! Needs root (the secrets file must be root-owned, and only root or the service user may claim
//! the ikerd role); CI runs as root. Without root the test fails, it does not skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipc::client::Conn;
use ipc::ike::{Endpoint, IkeId, PrfAlg};
use ipc::keyd::{KeydChannel, KeydContext, KeydRequest, KeydResponse, V1PskSkeyid, V1RsaSign};
use ipc::sa::SecretBytes;
use ipc::Role;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;

/// A keyd process on its own directories; killed (by its pid) and cleaned up on drop.
struct Keyd {
    child: std::cell::RefCell<Child>,
    dir: PathBuf,
}

impl Keyd {
    fn config(&self) -> PathBuf {
        self.dir.join("etc")
    }
    fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    fn socket(&self) -> PathBuf {
        self.run().join("keyd.sock")
    }
    fn log(&self) -> String {
        fs::read_to_string(self.run().join("keyd.log")).unwrap_or_default()
    }

    fn start(tag: &str, secrets: &str) -> Keyd {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root: ipsec.secrets must be root-owned and only root may claim the ikerd role"
        );
        let dir =
            std::env::temp_dir().join(format!("ferroswan-keyd-ops-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::create_dir_all(dir.join("run")).unwrap();
        write_secrets(&dir.join("etc"), secrets, 0o600);
        let keyd = Keyd {
            child: std::cell::RefCell::new(spawn(&dir)),
            dir,
        };
        keyd.wait_ready();
        keyd
    }

    /// Until keyd accepts connections (a socket file may be left by the keyd before it).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(status) = self.child.borrow_mut().try_wait().unwrap() {
                panic!("keyd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "keyd.sock not accepting after 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `RereadSecrets` as confd asks it: keyd, confined, answers `Restarting` and exits with
    /// status 75; this test starts it again (as the supervisor does) and asks what it loaded.
    async fn reread(&self) -> KeydResponse {
        assert_eq!(
            ask(&self.socket(), Role::Confd, KeydRequest::RereadSecrets).await,
            KeydResponse::Restarting
        );
        let status = self.child.borrow_mut().wait().unwrap();
        assert_eq!(status.code(), Some(75), "{}", self.log());
        *self.child.borrow_mut() = spawn(&self.dir);
        self.wait_ready();
        ask(&self.socket(), Role::Confd, KeydRequest::SecretsSummary).await
    }
}

fn spawn(dir: &Path) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("run/keyd.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_keyd"))
        .arg("--config-dir")
        .arg(dir.join("etc"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .env("FERROSWAN_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

impl Drop for Keyd {
    fn drop(&mut self) {
        let mut child = self.child.borrow_mut();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        if std::env::var_os("FERROSWAN_KEEP_TEST_DIRS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn write_secrets(config: &Path, text: &str, mode: u32) {
    let path = config.join("ipsec.secrets");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

fn hmac(md: MessageDigest, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let pkey = PKey::hmac(key).unwrap();
    let mut signer = Signer::new(md, &pkey).unwrap();
    signer.update(&parts.concat()).unwrap();
    signer.sign_to_vec().unwrap()
}

fn ctx() -> KeydContext {
    KeydContext {
        conn: "west-east".into(),
        serial: 1,
        peer: Endpoint::new("192.0.2.2".parse().unwrap(), 500),
    }
}

fn psk_request() -> V1PskSkeyid {
    V1PskSkeyid {
        ctx: ctx(),
        local_id: IkeId::Fqdn("west".into()),
        remote_id: IkeId::Fqdn("east".into()),
        prf: PrfAlg::HmacSha1,
        ni: (1..=16).collect(),
        nr: (17..=48).collect(),
    }
}

fn sign_request(pubkey: Option<String>) -> V1RsaSign {
    V1RsaSign {
        ctx: ctx(),
        local_id: IkeId::Fqdn("west".into()),
        local_pubkey: pubkey,
        prf: PrfAlg::HmacSha1,
        skeyid: SecretBytes::new(vec![0x42; 20]),
        initiator: true,
        g_xi: vec![0x11; 256],
        g_xr: vec![0x22; 256],
        cky_i: [1; 8],
        cky_r: [2; 8],
        sai_b: vec![0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0],
        id_b: [&[2u8, 17, 1, 244][..], b"west"].concat(),
    }
}

fn expected_hash_i(req: &V1RsaSign) -> Vec<u8> {
    hmac(
        MessageDigest::sha1(),
        req.skeyid.expose(),
        &[
            &req.g_xi, &req.g_xr, &req.cky_i, &req.cky_r, &req.sai_b, &req.id_b,
        ],
    )
}

fn recover(pubkey: &str, sig: &[u8]) -> Vec<u8> {
    let public = keyfmt::parse_rsasigkey(pubkey).unwrap();
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(public.modulus()).unwrap(),
        BigNum::from_slice(public.exponent()).unwrap(),
    )
    .unwrap();
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.public_decrypt(sig, &mut out, Padding::PKCS1).unwrap();
    out.truncate(n);
    out
}

fn secrets_text(psk: &str, key: &keyfmt::RsaPrivateKey) -> String {
    let block = keyfmt::render_rsa_block(key, "west", "Mon Nov 23 10:56:42 2026");
    format!("@west @east : PSK \"{psk}\"\n@west {}\n", block.as_str())
}

async fn ask(sock: &Path, role: Role, req: KeydRequest) -> KeydResponse {
    let mut conn = Conn::<KeydChannel>::connect(sock, role)
        .await
        .unwrap_or_else(|e| panic!("connect as {role}: {e}"));
    conn.call(req).await.unwrap().0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn keyd_serves_skeyid_and_signatures_to_ikerd_only() {
    const PSK1: &str = "daemon test: first west-east secret";
    const PSK2: &str = "daemon test: second west-east secret";
    let key1 = keyfmt::generate(2048).unwrap();
    let key2 = keyfmt::generate(2048).unwrap();
    let keyd = Keyd::start("serve", &secrets_text(PSK1, &key1));
    let sock = keyd.socket();
    let mut seen_secret_values: Vec<Vec<u8>> = Vec::new();

    ipc::runtime::run_local(async {
        // SKEYID for ikerd.
        let req = psk_request();
        let want = hmac(MessageDigest::sha1(), PSK1.as_bytes(), &[&req.ni, &req.nr]);
        match ask(&sock, Role::Ikerd, KeydRequest::V1PskSkeyid(req.clone())).await {
            KeydResponse::Skeyid(s) => assert_eq!(s.expose(), want.as_slice()),
            other => panic!("{other:?}"),
        }
        seen_secret_values.push(want);
        // Not for confd.
        match ask(&sock, Role::Confd, KeydRequest::V1PskSkeyid(req.clone())).await {
            KeydResponse::Denied(why) => assert!(why.contains("only ikerd"), "{why}"),
            other => panic!("{other:?}"),
        }
        // No PSK for another pair.
        let mut other_pair = req.clone();
        other_pair.remote_id = IkeId::Fqdn("north".into());
        assert_eq!(
            ask(&sock, Role::Ikerd, KeydRequest::V1PskSkeyid(other_pair)).await,
            KeydResponse::Denied("no PSK for @west/@north".into())
        );

        // A signature, by the conn's public key and by the local ID.
        let pub1 = key1.public_key().to_rfc3110_base64();
        for pubkey in [Some(pub1.clone()), None] {
            let req = sign_request(pubkey);
            match ask(&sock, Role::Ikerd, KeydRequest::V1RsaSign(req.clone())).await {
                KeydResponse::Signature { sig, pubkey } => {
                    assert_eq!(pubkey, pub1);
                    assert_eq!(recover(&pubkey, &sig), expected_hash_i(&req));
                    seen_secret_values.push(expected_hash_i(&req));
                }
                other => panic!("{other:?}"),
            }
        }
        match ask(
            &sock,
            Role::Confd,
            KeydRequest::V1RsaSign(sign_request(None)),
        )
        .await
        {
            KeydResponse::Denied(why) => assert!(why.contains("only ikerd"), "{why}"),
            other => panic!("{other:?}"),
        }

        // New secrets: a new PSK and a new key; after RereadSecrets keyd uses both.
        write_secrets(&keyd.config(), &secrets_text(PSK2, &key2), 0o600);
        match keyd.reread().await {
            KeydResponse::SecretsLoaded(s) => assert_eq!((s.psks, s.rsa_keys), (1, 1), "{s:?}"),
            other => panic!("{other:?}"),
        }
        let req = psk_request();
        let want = hmac(MessageDigest::sha1(), PSK2.as_bytes(), &[&req.ni, &req.nr]);
        match ask(&sock, Role::Ikerd, KeydRequest::V1PskSkeyid(req)).await {
            KeydResponse::Skeyid(s) => assert_eq!(s.expose(), want.as_slice()),
            other => panic!("{other:?}"),
        }
        let req = sign_request(None);
        match ask(&sock, Role::Ikerd, KeydRequest::V1RsaSign(req.clone())).await {
            KeydResponse::Signature { sig, pubkey } => {
                assert_eq!(pubkey, key2.public_key().to_rfc3110_base64());
                assert_eq!(recover(&pubkey, &sig), expected_hash_i(&req));
            }
            other => panic!("{other:?}"),
        }
        // The old key is gone with the old file.
        assert!(matches!(
            ask(
                &sock,
                Role::Ikerd,
                KeydRequest::V1RsaSign(sign_request(Some(pub1.clone())))
            )
            .await,
            KeydResponse::Denied(_)
        ));

        // A secrets file keyd refuses (group/world readable): it then holds nothing.
        write_secrets(&keyd.config(), &secrets_text(PSK2, &key2), 0o644);
        assert!(matches!(keyd.reread().await, KeydResponse::Error(_)));
        match ask(&sock, Role::Ikerd, KeydRequest::V1PskSkeyid(psk_request())).await {
            KeydResponse::Error(why) => assert!(why.starts_with("no secrets loaded: "), "{why}"),
            other => panic!("{other:?}"),
        }
        // Still serving after all that.
        assert_eq!(
            ask(&sock, Role::Ikerd, KeydRequest::Ping).await,
            KeydResponse::Pong
        );
    })
    .unwrap();

    // The log: one line per request with its context; refusals at warn level with the reason.
    let log = keyd.log();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{log}"))
    };
    assert!(
        line("keyd: \"west-east\" #1 peer 192.0.2.2:500: SKEYID (PSK) for @west/@east (")
            .contains("INFO")
    );
    let refused = line("keyd: \"west-east\" #1 peer 192.0.2.2:500: refused SKEYID (PSK) for @west/@east asked by confd");
    assert!(
        refused.contains("WARN") && refused.contains("only ikerd"),
        "{refused}"
    );
    let refused = line("refused SKEYID (PSK) for @west/@north asked by ikerd");
    assert!(
        refused.contains("WARN") && refused.contains("no PSK for @west/@north"),
        "{refused}"
    );
    assert!(line("keyd: \"west-east\" #1 peer 192.0.2.2:500: RSA signature of HASH_I (HMAC-SHA1) for @west with key").contains(&key1.public_key().keyid()));
    assert!(line("refused RSA signature of HASH_I for @west asked by confd").contains("WARN"));
    assert!(
        line("refused SKEYID (PSK) for @west/@east asked by ikerd").contains("no secrets loaded")
    );
    // No secret in it: not the PSKs, the private keys, SKEYID or the signed hashes.
    for psk in [PSK1, PSK2] {
        assert!(!log.contains(psk), "PSK in the log:\n{log}");
    }
    for key in [&key1, &key2] {
        for n in [key.private_exponent(), key.prime1(), key.prime2()] {
            let h = hex(n.expose_bytes());
            assert!(
                !log.contains(&h[..32]),
                "private key material in the log:\n{log}"
            );
        }
    }
    for value in &seen_secret_values {
        assert!(
            !log.to_lowercase().contains(&hex(value)),
            "SKEYID or hash in the log:\n{log}"
        );
    }
}
