//! ipsec.conf language: exact error texts, also/include/%default semantics, the typed model,
//! orientation, policy groups, diff and checkconfig rendering. All in memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use confd::conf::{self, model, Category, ConfError, MemFs, Orientation};
use std::net::IpAddr;
use std::path::Path;

const HEAD: &str = "version 2\n\nconfig setup\n\tinterfaces=%defaultroute\n\n";

fn base_conn(extra: &str) -> String {
    format!("{HEAD}conn west\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tauto=add\n{extra}")
}

fn errors(text: &str) -> Vec<ConfError> {
    match conf::load_str("/etc/ipsec.conf", text) {
        Ok((cfg, w)) => panic!("expected errors, got {cfg:?} {w:?}"),
        Err(e) => e,
    }
}

fn one_error(text: &str) -> String {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs[0].to_string()
}

fn ok(text: &str) -> (conf::Config, Vec<ConfError>) {
    match conf::load_str("/etc/ipsec.conf", text) {
        Ok(v) => v,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    }
}

#[test]
fn misspelt_keyword() {
    assert_eq!(
        one_error(&base_conn("\trightsubnett=10.0.0.0/8\n")),
        "/etc/ipsec.conf:10: unknown keyword `rightsubnett` in conn west: did you mean `rightsubnet`?"
    );
    assert_eq!(errors(&base_conn("\trightsubnett=10.0.0.0/8\n"))[0].category, Category::UnknownKeyword);
}

#[test]
fn bad_auto() {
    let errs = errors(&format!("{HEAD}conn west\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tauto=strat\n"));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category, Category::BadValue);
    assert_eq!(
        errs[0].to_string(),
        "/etc/ipsec.conf:9: auto=strat: expected one of add, start, up, route, ondemand, ignore, manual (did you mean `start`?)"
    );
}

#[test]
fn bad_subnet() {
    assert_eq!(
        one_error(&base_conn("\tleftsubnet=10.0.0.0/33\n")),
        "/etc/ipsec.conf:10: leftsubnet=10.0.0.0/33: `10.0.0.0/33`: prefix length `33` is not between 0 and 32"
    );
}

#[test]
fn bad_rsasigkey_base64() {
    let errs = errors(&base_conn("\tleftrsasigkey=0sAQNot*Base64!!\n"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].category, Category::BadValue);
    assert_eq!(
        errs[0].to_string(),
        "/etc/ipsec.conf:10: leftrsasigkey=0sAQNot*Base64!!: not valid base64 (Invalid symbol 42, offset 5.)"
    );
}

#[test]
fn rsasigkey_cert_is_unsupported() {
    let errs = errors(&base_conn("\tleftrsasigkey=%cert\n"));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category, Category::Unsupported);
    assert!(errs[0].message.contains("certificates are not supported yet"), "{}", errs[0]);
}

#[test]
fn fromcert_is_unsupported() {
    let errs = errors(&base_conn("\tleftid=%fromcert\n"));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category, Category::Unsupported);
    assert_eq!(
        errs[0].to_string(),
        "/etc/ipsec.conf:10: leftid=%fromcert: `%fromcert`: certificates are not supported yet; give the ID itself"
    );
}

#[test]
fn also_cycle_reported_once() {
    let text = format!(
        "{HEAD}conn a\n\talso=b\n\tleft=1.2.3.4\n\tauto=add\n\nconn b\n\talso=c\n\tright=5.6.7.8\n\nconn c\n\talso=b\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].category, Category::AlsoCycle);
    assert_eq!(errs[0].to_string(), "/etc/ipsec.conf:16: also=b makes a cycle: b -> c -> b");
}

#[test]
fn also_self_cycle() {
    let errs = errors(&base_conn("\talso=west\n"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].to_string(), "/etc/ipsec.conf:10: also=west makes a cycle: west -> west");
}

#[test]
fn missing_also() {
    assert_eq!(
        one_error(&base_conn("\talso=wset-base\n\nconn west-base\n\tauto=ignore\n")),
        "/etc/ipsec.conf:10: also=wset-base: no conn `wset-base`: did you mean `west-base`?"
    );
}

#[test]
fn missing_include() {
    let text = format!("{}include /etc/ipsec.d/missing.conf\n", base_conn(""));
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category, Category::MissingInclude);
    assert_eq!(
        errs[0].to_string(),
        "/etc/ipsec.conf:10: cannot read include file `/etc/ipsec.d/missing.conf`: No such file or directory"
    );
}

#[test]
fn include_glob_relative_and_no_match() {
    let fs = MemFs::new()
        .with("/etc/ipsec.conf", format!("{HEAD}include ipsec.d/*.conf\ninclude none/*.conf\n"))
        .with("/etc/ipsec.d/b.conf", "conn b\n\tleft=10.0.0.1\n\tright=10.0.0.2\n\tauto=add\n")
        .with("/etc/ipsec.d/a.conf", "conn a\n\tleft=10.0.0.1\n\tright=10.0.0.3\n\tauto=add\n")
        .with("/etc/ipsec.d/sub/c.conf", "conn c\n\tleft=10.0.0.1\n\tright=10.0.0.4\n");
    let (cfg, warnings) = conf::load_with(&fs, Path::new("/etc/ipsec.conf")).unwrap();
    let names: Vec<&str> = cfg.conns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(cfg.conns[0].location.to_string(), "/etc/ipsec.d/a.conf:1");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].to_string(), "/etc/ipsec.conf:7: include pattern `none/*.conf` matched no file");
}

#[test]
fn include_loop_and_depth_bounded() {
    let fs = MemFs::new().with("/etc/ipsec.conf", "include ipsec.conf\n");
    let errs = conf::load_with(&fs, Path::new("/etc/ipsec.conf")).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category, Category::Limit);
    let mut fs = MemFs::new();
    for i in 0..20 {
        fs.insert(format!("/c/f{i}.conf"), format!("include f{}.conf\n", i + 1));
    }
    fs.insert("/c/f20.conf", "");
    let errs = conf::load_with(&fs, Path::new("/c/f0.conf")).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("nested deeper than 10"), "{}", errs[0]);
}

#[test]
fn unsupported_and_obsolete_keywords_are_never_silent() {
    let text = format!(
        "{HEAD}conn west\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftcert=west.crt\n\tauto=add\n"
    );
    let errs = errors(&text);
    assert_eq!(errs[0].to_string(), "/etc/ipsec.conf:9: unsupported keyword `leftcert`: certificates are not supported yet");
    assert_eq!(errs[0].category, Category::UnsupportedKeyword);

    let text = "config setup\n\tlogfile=/tmp/pluto.log\n\thidetos=yes\n\tinterfaces=\"ipsec0=eth0\"\n";
    let (_, warnings) = ok(text);
    let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "/etc/ipsec.conf:2: unsupported keyword `logfile` ignored: ferroswan daemons log through the service manager",
            "/etc/ipsec.conf:3: obsolete keyword `hidetos` ignored: KLIPS is gone",
        ]
    );
}

#[test]
fn strongswan_dialect_is_rejected_clearly() {
    let text = "ca strongswan\n\tcacert=ca.pem\n\tauto=add\n\nconn home\n\tleft=1.2.3.4\n\tright=5.6.7.8\n\tleftauth=pubkey\n\tauto=add\n";
    let errs = errors(text);
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "/etc/ipsec.conf:1: `ca strongswan` sections are strongSwan's; certificates are not supported yet",
            "/etc/ipsec.conf:8: leftauth=pubkey: `pubkey` is strongSwan's; ferroswan reads authby=",
        ]
    );
}

#[test]
fn wrong_section_and_syntax() {
    let errs = errors("config setup\n\tleft=1.2.3.4\nleft=1\n\tright=2\n");
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "/etc/ipsec.conf:3: `left=1` is not indented: settings belong in a section and must start with a space or tab",
            "/etc/ipsec.conf:2: keyword `left` belongs in a conn section, not in config setup",
            "/etc/ipsec.conf:4: keyword `right` belongs in a conn section, not in config setup",
        ]
    );
}

#[test]
fn freeswan_1x_file_reads_unchanged() {
    let text = r#"# FreeS/WAN 1.x style
config setup
	interfaces="ipsec0=eth0"
	klipsdebug=none
	plutodebug=none
	plutoload=%search
	plutostart=%search
	uniqueids=yes

conn %default
	keyingtries=0
	authby=rsasig
	keylife=8h
	ikelifetime=1h

conn sunset-sunrise
	left=192.0.1.1
	leftsubnet=192.0.1.0/24
	leftnexthop=192.0.1.254
	leftid=@sunset.example.com
	leftrsasigkey=0x0103c16666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666667
	right=192.0.2.2
	rightsubnet=192.0.2.0/24
	rightnexthop=192.0.2.254
	auto=start

conn manual-test
	type=tunnel
	left=192.1.2.45
	right=192.1.2.23
	spi=0x200
	esp=3des-md5-96
	espenckey=0x4043434545464649_494a4a4c4c4f4f51_5152525454575758
	espauthkey=0x87658765876587658765876587658765
	leftespspi=0x300
	rightespspi=0x301
	auto=manual
"#;
    let (cfg, warnings) = ok(text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(cfg.setup.plutoload, ["%search"]);
    assert_eq!(cfg.setup.interfaces, model::Interfaces::List(vec!["ipsec0=eth0".into()]));
    let c = cfg.conn("sunset-sunrise").unwrap();
    assert_eq!(c.keying_tries, model::KeyingTries::Forever);
    assert_eq!(c.sa_lifetime_secs, 8 * 3600);
    assert_eq!(c.ike_lifetime_secs, 3600);
    assert_eq!(c.ike_policy, model::IkePolicy::V1_ONLY);
    assert_eq!(c.left.rsasigkeys[0].bits, 1032);
    assert_eq!(c.left.id.as_ref().map(ToString::to_string).as_deref(), Some("@sunset.example.com"));
    let m = cfg.conn("manual-test").unwrap().manual.as_ref().unwrap();
    assert_eq!(m.spi, Some(0x200));
    assert_eq!(m.esp_enc_key.as_ref().map(|k| k.len()), Some(24));
    assert_eq!(m.left.esp_spi, Some(0x300));
    // key material never shows in Debug or in checkconfig
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("<redacted>") && !dbg.to_lowercase().contains("4043434545"));
    let rendered = conf::render_checkconfig(&cfg);
    assert!(rendered.contains("espenckey=<redacted>"), "{rendered}");
    assert!(!rendered.contains("4043434545"));
}

#[test]
fn libreswan_file_reads_unchanged() {
    let text = r#"version 2.0
config setup
	logfile=/tmp/pluto.log
	plutodebug=all
	dumpdir=/tmp

conn westnet-eastnet-ikev2
	also=west-east-base
	also=westnet
	also=eastnet
	ikev2=insist
	ike=aes128-sha2;modp2048
	esp=aes128-sha2_512
	auto=ignore

conn west-east-base
	left=192.1.2.45
	right=192.1.2.23
	leftid=@west
	rightid="@east"
	authby=secret

conn westnet
	leftsubnet=192.0.1.0/24

conn eastnet
	rightsubnets={192.0.2.0/24, 192.0.22.0/24}
	rekeymargin=3m
	rekeyfuzz=50%
	dpddelay=30
	dpdtimeout=2m
	dpdaction=restart
"#;
    let (cfg, warnings) = ok(text);
    assert_eq!(warnings.len(), 2);
    let names: Vec<&str> = cfg.conns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["westnet-eastnet-ikev2"], "fragments are folded, not listed");
    let c = &cfg.conns[0];
    assert_eq!(c.ike_policy, model::IkePolicy::V2_ONLY);
    assert_eq!(c.authby, model::AuthBy::Secret);
    assert_eq!(c.right.subnets.len(), 2);
    assert_eq!(c.ike, ["aes128-sha2;modp2048"]);
    assert_eq!(c.rekey_margin_secs, 180);
    assert_eq!(c.rekey_fuzz_percent, 50);
    assert_eq!(
        c.dpd,
        Some(model::Dpd { delay_secs: 30, timeout_secs: 120, action: model::DpdAction::Restart })
    );
    assert_eq!(cfg.setup.plutodebug, model::LogLevel::Trace);
}

#[test]
fn keyexchange_versions() {
    let kx = |extra: &str| ok(&base_conn(extra)).0.conns[0].ike_policy;
    assert_eq!(kx(""), model::IkePolicy::V1_ONLY);
    assert_eq!(kx("\tkeyexchange=ikev1\n"), model::IkePolicy::V1_ONLY);
    assert_eq!(kx("\tkeyexchange=ikev2\n"), model::IkePolicy::V2_ONLY);
    assert_eq!(kx("\tkeyexchange=ike\n"), model::IkePolicy::V2_OR_V1);
    assert_eq!(kx("\tikev2=permit\n"), model::IkePolicy::V1_OR_V2);
    assert_eq!(kx("\tikev2=propose\n"), model::IkePolicy::V2_OR_V1);
    assert_eq!(kx("\tikev2=never\n"), model::IkePolicy::V1_ONLY);
    let errs = errors(&base_conn("\tkeyexchange=ikev1\n\tikev2=insist\n"));
    assert_eq!(errs[0].category, Category::BadConn);
}

#[test]
fn default_section_applies_and_conn_wins() {
    let text = format!(
        "conn %default\n\tkeylife=1h\n\tpfs=no\n\n{}\tpfs=yes\n",
        base_conn("").trim_start_matches("version 2\n")
    );
    let (cfg, _) = ok(&text);
    assert_eq!(cfg.conns[0].sa_lifetime_secs, 3600);
    assert!(cfg.conns[0].pfs);
}

#[test]
fn duplicate_keyword() {
    assert_eq!(
        one_error(&base_conn("\tleft=1.1.1.1\n")),
        "/etc/ipsec.conf:10: duplicate keyword `left` (first set at line 7)"
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn orientation() {
    let (cfg, _) = ok(&base_conn(""));
    let c = &cfg.conns[0];
    assert_eq!(conf::orient(c, &[ip("192.1.2.45")]), Ok(Orientation::LeftIsLocal));
    assert_eq!(conf::orient(c, &[ip("10.9.9.9"), ip("192.1.2.23")]), Ok(Orientation::RightIsLocal));
    assert_eq!(conf::orient(c, &[ip("10.9.9.9")]), Ok(Orientation::Unoriented));
    let e = conf::orient(c, &[ip("192.1.2.45"), ip("192.1.2.23")]).unwrap_err();
    assert_eq!(e.category, Category::Orientation);
    assert_eq!(
        e.to_string(),
        "/etc/ipsec.conf:6: conn `west`: both left=192.1.2.45 and right=192.1.2.23 are addresses of this host"
    );
    let (cfg, _) = ok(&format!("{HEAD}conn rw\n\tleft=%defaultroute\n\tright=%any\n\tauto=add\n"));
    assert_eq!(conf::orient(&cfg.conns[0], &[]), Ok(Orientation::LeftIsLocal));
}

#[test]
fn policy_groups() {
    let fs = MemFs::new()
        .with("/etc/ipsec.conf", HEAD)
        .with("/etc/ipsec.d/policies/clear", "# comment\n192.0.2.0/24\nns.example.com # dns\n\n")
        .with("/etc/ipsec.d/policies/private", "10.0.0.0/8\n")
        .with("/etc/ipsec.d/policies/block", "");
    let (cfg, _) = conf::load_with(&fs, Path::new("/etc/ipsec.conf")).unwrap();
    assert_eq!(cfg.policy_groups.len(), 2);
    assert_eq!(cfg.policy_groups[0].name, "clear");
    assert_eq!(cfg.policy_groups[0].action, conf::GroupAction::Clear);
    assert_eq!(cfg.policy_groups[0].members.len(), 2);
    assert_eq!(cfg.policy_groups[1].action, conf::GroupAction::Drop);
    let fs = fs.with("/etc/ipsec.d/policies/block", "10.0.0.1/8\n");
    let errs = conf::load_with(&fs, Path::new("/etc/ipsec.conf")).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category, Category::PolicyGroup);
    assert!(errs[0].to_string().starts_with("/etc/ipsec.d/policies/block:1: "), "{}", errs[0]);
}

#[test]
fn diff_and_serde() {
    let (old, _) = ok(&format!(
        "{HEAD}conn a\n\tleft=1.1.1.1\n\tright=2.2.2.2\n\tauto=add\nconn b\n\tleft=1.1.1.1\n\tright=3.3.3.3\n\tauto=add\nconn c\n\tleft=1.1.1.1\n\tright=4.4.4.4\n\tauto=add\n"
    ));
    let (new, _) = ok(&format!(
        "{HEAD}\n\nconn a\n\tleft=1.1.1.1\n\tright=2.2.2.2\n\tauto=add\nconn b\n\tleft=1.1.1.1\n\tright=3.3.3.4\n\tauto=add\nconn d\n\tleft=1.1.1.1\n\tright=5.5.5.5\n\tauto=add\n"
    ));
    let d = conf::diff(&old, &new);
    assert_eq!(d.added, ["d"]);
    assert_eq!(d.removed, ["c"]);
    assert_eq!(d.modified, ["b"], "a only moved: not modified");
    assert!(conf::diff(&new, &new).is_empty());
    let json = serde_json::to_string(&new).unwrap();
    let back: conf::Config = serde_json::from_str(&json).unwrap();
    assert_eq!(back, new);
}

#[test]
fn checkconfig_render_is_stable() {
    let (cfg, _) = ok(&base_conn("\tleftsubnet=10.1.0.0/16\n\trightid=@east\n\tauthby=secret\n"));
    let text = conf::render_checkconfig(&cfg);
    let expected = "version 2\n\nconfig setup\n\tinterfaces=%defaultroute\n\tplutodebug=none\n\tklipsdebug=none\n\tuniqueids=yes\n\nconn west\n\t# from /etc/ipsec.conf:6\n\tleft=192.1.2.45\n\tleftsubnets={10.1.0.0/16}\n\tright=192.1.2.23\n\trightid=@east\n\tauthby=secret\n\tauto=add\n\ttype=tunnel\n\tkeyexchange=ikev1\n\tpfs=yes\n\tikelifetime=3600s\n\tsalifetime=28800s\n\trekey=yes\n\trekeymargin=540s\n\trekeyfuzz=100%\n\tkeyingtries=3\n";
    assert_eq!(text, expected);
}

#[test]
fn garbage_never_panics() {
    for text in ["\0\0\0", "conn\n", "conn a b\n", "\t=\n", "conn a\n\tleft=\"\n", "version\n", "include\n", "conn %x\n\ta=b\n"] {
        let _ = conf::load_str("/x", text);
    }
    let fs = MemFs::new().with("/x", vec![0xff, 0xfe, b'\n']);
    let errs = conf::load_with(&fs, Path::new("/x")).unwrap_err();
    assert_eq!(errs[0].to_string(), "/x:1: not valid UTF-8");
}
