//! Our `ike=`/`esp=` proposals to and from ISAKMP SA payloads, and the choice among a peer's
//! offers: the responder takes the first of the peer's transforms that one of its proposals
//! accepts; the initiator checks that the responder chose something it offered.

use super::natt::parse_encap_mode;
use crate::msgs::isakmp::sa::SIT_IDENTITY_ONLY;
use crate::msgs::isakmp::{
    AttrValue, Attribute, Doi, EncapsulationMode, EspTransform, IpsecAttr, LifeType, OakleyAttr,
    OakleyAuth, OakleyEncr, OakleyGroup, OakleyHash, Proposal, ProtocolId, SaPayload, Transform,
};
use ipc::ike::{AuthMethod, DhGroup, EspProposal, IkeEncr, IkeProposal, PrfAlg};
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode};

/// Phase-1 transform ID KEY_IKE.
pub const KEY_IKE: u8 = 1;

/// How an ISAKMP SA authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Psk,
    Rsa,
}

impl AuthKind {
    pub fn oakley(self) -> OakleyAuth {
        match self {
            AuthKind::Psk => OakleyAuth::PRESHARED_KEY,
            AuthKind::Rsa => OakleyAuth::RSA_SIG,
        }
    }
    /// pluto's name (`auth=PRESHARED_KEY`, `auth=RSA_SIG`).
    pub fn name(self) -> &'static str {
        match self {
            AuthKind::Psk => "PRESHARED_KEY",
            AuthKind::Rsa => "RSA_SIG",
        }
    }
    /// The policy word of the Quick Mode log line (`PSK+ENCRYPT…`).
    pub fn policy(self) -> &'static str {
        match self {
            AuthKind::Psk => "PSK",
            AuthKind::Rsa => "RSASIG",
        }
    }
}

/// The auth methods a conn offers or accepts, in order.
pub fn auths(m: AuthMethod) -> Vec<AuthKind> {
    match m {
        AuthMethod::Psk => vec![AuthKind::Psk],
        AuthMethod::RsaSig => vec![AuthKind::Rsa],
        AuthMethod::PskOrRsaSig => vec![AuthKind::Psk, AuthKind::Rsa],
    }
}

fn life_attrs(out: &mut Vec<Attribute>, ty_type: u16, ty_dur: u16, secs: u64) {
    out.push(Attribute::basic(ty_type, LifeType::SECONDS.0));
    let secs = u32::try_from(secs).unwrap_or(u32::MAX);
    match u16::try_from(secs) {
        Ok(v) => out.push(Attribute::basic(ty_dur, v)),
        Err(_) => out.push(Attribute::variable(ty_dur, secs.to_be_bytes().to_vec())),
    }
}

fn oakley_encr(e: IkeEncr) -> Option<(OakleyEncr, Option<u16>)> {
    match e {
        IkeEncr::TripleDesCbc => Some((OakleyEncr::TDES_CBC, None)),
        IkeEncr::AesCbc { key_bits } => Some((OakleyEncr::AES_CBC, Some(key_bits))),
        IkeEncr::AesGcm { .. } => None,
    }
}

fn oakley_hash(p: PrfAlg) -> OakleyHash {
    match p {
        PrfAlg::HmacMd5 => OakleyHash::MD5,
        PrfAlg::HmacSha1 => OakleyHash::SHA,
        PrfAlg::HmacSha2_256 => OakleyHash::SHA2_256,
        PrfAlg::HmacSha2_384 => OakleyHash::SHA2_384,
        PrfAlg::HmacSha2_512 => OakleyHash::SHA2_512,
    }
}

fn prf_of(h: u16) -> Option<PrfAlg> {
    Some(match OakleyHash(h) {
        OakleyHash::MD5 => PrfAlg::HmacMd5,
        OakleyHash::SHA => PrfAlg::HmacSha1,
        OakleyHash::SHA2_256 => PrfAlg::HmacSha2_256,
        OakleyHash::SHA2_384 => PrfAlg::HmacSha2_384,
        OakleyHash::SHA2_512 => PrfAlg::HmacSha2_512,
        _ => return None,
    })
}

/// A MODP group IKEv1 can use here.
pub fn modp(g: DhGroup) -> bool {
    crate::crypto::dh::supported(g)
}

fn encr_name(e: IkeEncr) -> String {
    match e {
        IkeEncr::TripleDesCbc => "3DES_CBC".into(),
        IkeEncr::AesCbc { key_bits } => format!("AES_CBC_{key_bits}"),
        IkeEncr::AesGcm {
            key_bits,
            icv_bytes,
        } => format!("AES_GCM_{}_{key_bits}", icv_bytes * 8),
    }
}

fn prf_name(p: PrfAlg) -> &'static str {
    match p {
        PrfAlg::HmacMd5 => "MD5",
        PrfAlg::HmacSha1 => "SHA1",
        PrfAlg::HmacSha2_256 => "SHA2_256",
        PrfAlg::HmacSha2_384 => "SHA2_384",
        PrfAlg::HmacSha2_512 => "SHA2_512",
    }
}

pub fn group_name(g: DhGroup) -> String {
    match g {
        DhGroup::Ecp256 => "ECP_256".into(),
        DhGroup::Ecp384 => "ECP_384".into(),
        DhGroup::Curve25519 => "CURVE25519".into(),
        other => format!("MODP{}", modp_bits(other)),
    }
}

fn modp_bits(g: DhGroup) -> u32 {
    match g {
        DhGroup::Modp768 => 768,
        DhGroup::Modp1024 => 1024,
        DhGroup::Modp1536 => 1536,
        DhGroup::Modp2048 => 2048,
        DhGroup::Modp3072 => 3072,
        DhGroup::Modp4096 => 4096,
        DhGroup::Modp6144 => 6144,
        DhGroup::Modp8192 => 8192,
        _ => 0,
    }
}

/// `AES_CBC_128/SHA1/MODP2048`.
pub fn ike_name(p: &IkeProposal) -> String {
    format!(
        "{}/{}/{}",
        encr_name(p.encr),
        prf_name(p.prf),
        group_name(p.dh)
    )
}

/// pluto's `cipher=aes_128 prf=sha group=MODP2048` words.
pub fn ike_established_words(p: &IkeProposal) -> String {
    let cipher = match p.encr {
        IkeEncr::TripleDesCbc => "3des".to_string(),
        IkeEncr::AesCbc { key_bits } => format!("aes_{key_bits}"),
        IkeEncr::AesGcm { key_bits, .. } => format!("aes_gcm_{key_bits}"),
    };
    format!(
        "cipher={cipher} prf={} group={}",
        crate::crypto::prf::Prf(p.prf).pluto_name(),
        group_name(p.dh)
    )
}

/// The SA payload of MI1: one proposal, one transform per IkeProposal and auth method.
pub fn p1_sa(ike: &[IkeProposal], auths: &[AuthKind], life_secs: u64) -> SaPayload {
    let mut transforms = Vec::new();
    for p in ike {
        let Some((encr, keylen)) = oakley_encr(p.encr) else {
            continue;
        };
        if !modp(p.dh) {
            continue;
        }
        for a in auths {
            let mut attrs = vec![
                Attribute::basic(OakleyAttr::ENCRYPTION_ALGORITHM.0, encr.0),
                Attribute::basic(OakleyAttr::HASH_ALGORITHM.0, oakley_hash(p.prf).0),
                Attribute::basic(OakleyAttr::AUTHENTICATION_METHOD.0, a.oakley().0),
                Attribute::basic(OakleyAttr::GROUP_DESCRIPTION.0, p.dh.number()),
            ];
            life_attrs(
                &mut attrs,
                OakleyAttr::LIFE_TYPE.0,
                OakleyAttr::LIFE_DURATION.0,
                life_secs,
            );
            if let Some(k) = keylen {
                attrs.push(Attribute::basic(OakleyAttr::KEY_LENGTH.0, k));
            }
            let number = u8::try_from(transforms.len() + 1).unwrap_or(u8::MAX);
            transforms.push(Transform {
                number,
                id: KEY_IKE,
                attributes: attrs,
            });
        }
    }
    transforms.truncate(usize::from(u8::MAX));
    SaPayload {
        doi: Doi::IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: Vec::new(),
            transforms,
        }],
    }
}

/// A phase-1 transform as we understand it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct P1Attrs {
    pub encr: Option<IkeEncr>,
    pub prf: Option<PrfAlg>,
    pub dh: Option<DhGroup>,
    pub auth: Option<AuthKind>,
    pub life_secs: Option<u64>,
    /// What we could not accept in it, if anything (unknown algorithm, attribute…).
    pub problem: Option<String>,
    names: [String; 3],
}

fn set_problem(p: &mut Option<String>, s: String) {
    if p.is_none() {
        *p = Some(s);
    }
}

/// Read a phase-1 transform's attributes.
pub fn parse_p1(t: &Transform) -> P1Attrs {
    let mut a = P1Attrs::default();
    let mut encr_id = None;
    let mut keylen = None;
    let mut life_type = None;
    if t.id != KEY_IKE {
        set_problem(
            &mut a.problem,
            format!("transform ID {} is not KEY_IKE", t.id),
        );
    }
    for at in &t.attributes {
        let v = at.as_u64();
        let basic = match at.value {
            AttrValue::Basic(b) => Some(b),
            AttrValue::Variable(_) => None,
        };
        match OakleyAttr(at.ty) {
            OakleyAttr::ENCRYPTION_ALGORITHM => encr_id = basic,
            OakleyAttr::KEY_LENGTH => keylen = basic,
            OakleyAttr::HASH_ALGORITHM => match basic.and_then(prf_of) {
                Some(p) => a.prf = Some(p),
                None => {
                    let n = basic.map_or("?".into(), |b| format!("{:?}", OakleyHash(b)));
                    a.names[1] = n.clone();
                    set_problem(&mut a.problem, format!("hash {n}"));
                }
            },
            OakleyAttr::AUTHENTICATION_METHOD => match basic.map(OakleyAuth) {
                Some(OakleyAuth::PRESHARED_KEY) => a.auth = Some(AuthKind::Psk),
                Some(OakleyAuth::RSA_SIG) => a.auth = Some(AuthKind::Rsa),
                other => set_problem(&mut a.problem, format!("auth method {other:?}")),
            },
            OakleyAttr::GROUP_DESCRIPTION => {
                match basic.and_then(DhGroup::from_number).filter(|g| modp(*g)) {
                    Some(g) => a.dh = Some(g),
                    None => {
                        let n = basic.map_or("?".into(), |b| format!("{:?}", OakleyGroup(b)));
                        a.names[2] = n.clone();
                        set_problem(&mut a.problem, format!("group {n}"));
                    }
                }
            }
            OakleyAttr::LIFE_TYPE => life_type = basic.map(LifeType),
            OakleyAttr::LIFE_DURATION => match (life_type, v) {
                (Some(LifeType::SECONDS), Some(s)) => a.life_secs = Some(s),
                (Some(LifeType::KILOBYTES), Some(_)) => {}
                _ => set_problem(
                    &mut a.problem,
                    "life duration without a known life type".into(),
                ),
            },
            other => set_problem(&mut a.problem, format!("attribute {other:?}")),
        }
    }
    match (encr_id.map(OakleyEncr), keylen) {
        (Some(OakleyEncr::TDES_CBC), None) => a.encr = Some(IkeEncr::TripleDesCbc),
        (Some(OakleyEncr::AES_CBC), Some(k)) if matches!(k, 128 | 192 | 256) => {
            a.encr = Some(IkeEncr::AesCbc { key_bits: k })
        }
        (Some(OakleyEncr::AES_CBC), k) => {
            a.names[0] = format!("AES_CBC_{}", k.map_or("?".into(), |k| k.to_string()));
            set_problem(&mut a.problem, format!("AES key length {k:?}"));
        }
        (e, _) => {
            let n = e.map_or("?".into(), |e| format!("{e:?}"));
            a.names[0] = n.clone();
            set_problem(&mut a.problem, format!("cipher {n}"));
        }
    }
    if a.prf.is_none() && a.names[1].is_empty() {
        set_problem(&mut a.problem, "no hash algorithm".into());
    }
    if a.dh.is_none() && a.names[2].is_empty() {
        set_problem(&mut a.problem, "no group".into());
    }
    a
}

impl P1Attrs {
    /// `3DES_CBC/MD5/MODP1024` (unknown parts by their registry names).
    pub fn name(&self) -> String {
        let e = self.encr.map_or_else(|| self.names[0].clone(), encr_name);
        let h = self
            .prf
            .map_or_else(|| self.names[1].clone(), |p| prf_name(p).into());
        let g = self.dh.map_or_else(|| self.names[2].clone(), group_name);
        format!("{e}/{h}/{g}")
    }

    fn matches(&self, p: &IkeProposal) -> bool {
        self.problem.is_none()
            && self.encr == Some(p.encr)
            && self.prf == Some(p.prf)
            && self.dh == Some(p.dh)
    }
}

/// What phase 1 agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct P1Choice {
    pub prop: IkeProposal,
    pub auth: AuthKind,
    pub life_secs: u64,
}

fn ours_list(ours: &[IkeProposal]) -> String {
    ours.iter().map(ike_name).collect::<Vec<_>>().join(", ")
}

/// Responder: pick the first of the peer's transforms that one of `ours` accepts, with an allowed
/// auth method. Ok: the SA payload to answer with (the peer's proposal, only the chosen
/// transform) and the choice. Err: the peer's offers and ours, for the log line.
pub fn choose_p1(
    sa: &SaPayload,
    ours: &[IkeProposal],
    auths: &[AuthKind],
    max_life: u64,
) -> Result<(SaPayload, P1Choice), (String, String)> {
    let mut offered = Vec::new();
    for prop in &sa.proposals {
        if prop.protocol != ProtocolId::ISAKMP {
            offered.push(format!("protocol {:?}", prop.protocol));
            continue;
        }
        for t in &prop.transforms {
            let a = parse_p1(t);
            let auth_ok = a.auth.is_some_and(|x| auths.contains(&x));
            offered.push(match a.auth {
                Some(x) if !auth_ok => format!("{} ({})", a.name(), x.name()),
                _ => a.name(),
            });
            if !auth_ok {
                continue;
            }
            if let (Some(p), Some(auth)) = (ours.iter().find(|p| a.matches(p)), a.auth) {
                let life = a.life_secs.unwrap_or(max_life).min(max_life).max(1);
                let reply = SaPayload {
                    doi: sa.doi,
                    situation: sa.situation,
                    proposals: vec![Proposal {
                        number: prop.number,
                        protocol: prop.protocol,
                        spi: prop.spi.clone(),
                        transforms: vec![t.clone()],
                    }],
                };
                return Ok((
                    reply,
                    P1Choice {
                        prop: *p,
                        auth,
                        life_secs: life,
                    },
                ));
            }
        }
    }
    Err((offered.join(", "), ours_list(ours)))
}

/// Initiator: the responder's MR1 SA must hold one transform that we offered.
pub fn check_p1_reply(
    sa: &SaPayload,
    ours: &[IkeProposal],
    auths: &[AuthKind],
    our_life: u64,
) -> Result<P1Choice, String> {
    let [prop] = sa.proposals.as_slice() else {
        return Err(format!(
            "responder's SA holds {} proposals, not 1",
            sa.proposals.len()
        ));
    };
    let [t] = prop.transforms.as_slice() else {
        return Err(format!(
            "responder's proposal holds {} transforms, not 1",
            prop.transforms.len()
        ));
    };
    let a = parse_p1(t);
    match (ours.iter().find(|p| a.matches(p)), a.auth) {
        (Some(p), Some(auth)) if auths.contains(&auth) => Ok(P1Choice {
            prop: *p,
            auth,
            life_secs: a.life_secs.unwrap_or(our_life).min(our_life).max(1),
        }),
        _ => Err(format!(
            "responder chose {} which we did not offer (we offered {})",
            a.name(),
            ours_list(ours)
        )),
    }
}

// ---- phase 2 ----

fn esp_transform(e: EncrAlg) -> Option<(EspTransform, Option<u16>)> {
    Some(match e {
        EncrAlg::Null => (EspTransform::NULL, None),
        EncrAlg::TripleDesCbc => (EspTransform::TDES, None),
        EncrAlg::AesCbc { key_bits } => (EspTransform::AES_CBC, Some(key_bits)),
        EncrAlg::AesCtr { key_bits } => (EspTransform::AES_CTR, Some(key_bits)),
        EncrAlg::AesGcm {
            key_bits,
            icv_bytes,
        } => (
            match icv_bytes {
                8 => EspTransform::AES_GCM_8,
                12 => EspTransform::AES_GCM_12,
                16 => EspTransform::AES_GCM_16,
                _ => return None,
            },
            Some(key_bits),
        ),
    })
}

fn encr_of(t: u8, keylen: Option<u16>) -> Option<EncrAlg> {
    let k = |ok: &[u16]| keylen.filter(|k| ok.contains(k));
    Some(match EspTransform(t) {
        EspTransform::NULL => EncrAlg::Null,
        EspTransform::TDES => EncrAlg::TripleDesCbc,
        EspTransform::AES_CBC => EncrAlg::AesCbc {
            key_bits: k(&[128, 192, 256])?,
        },
        EspTransform::AES_CTR => EncrAlg::AesCtr {
            key_bits: k(&[128, 192, 256])?,
        },
        EspTransform::AES_GCM_8 => EncrAlg::AesGcm {
            key_bits: k(&[128, 256])?,
            icv_bytes: 8,
        },
        EspTransform::AES_GCM_12 => EncrAlg::AesGcm {
            key_bits: k(&[128, 256])?,
            icv_bytes: 12,
        },
        EspTransform::AES_GCM_16 => EncrAlg::AesGcm {
            key_bits: k(&[128, 256])?,
            icv_bytes: 16,
        },
        _ => return None,
    })
}

/// The AUTH_ALGORITHM attribute value (RFC 2407 §4.5, RFC 4868 for SHA-2).
fn auth_attr(i: IntegAlg) -> Option<u16> {
    match i {
        IntegAlg::None => None,
        IntegAlg::HmacMd5_96 => Some(1),
        IntegAlg::HmacSha1_96 => Some(2),
        IntegAlg::HmacSha256_128 => Some(5),
        IntegAlg::HmacSha384_192 => Some(6),
        IntegAlg::HmacSha512_256 => Some(7),
    }
}

fn integ_of(v: u16) -> Option<IntegAlg> {
    Some(match v {
        1 => IntegAlg::HmacMd5_96,
        2 => IntegAlg::HmacSha1_96,
        5 => IntegAlg::HmacSha256_128,
        6 => IntegAlg::HmacSha384_192,
        7 => IntegAlg::HmacSha512_256,
        _ => return None,
    })
}

/// AH transform IDs (RFC 2407 §4.4.3, RFC 4868).
fn ah_transform(i: IntegAlg) -> Option<u8> {
    match i {
        IntegAlg::HmacMd5_96 => Some(2),
        IntegAlg::HmacSha1_96 => Some(3),
        IntegAlg::HmacSha256_128 => Some(5),
        IntegAlg::HmacSha384_192 => Some(6),
        IntegAlg::HmacSha512_256 => Some(7),
        IntegAlg::None => None,
    }
}

/// Encryption key bytes of KEYMAT (key, plus the 4-byte salt/nonce for CTR and GCM).
pub fn enc_key_len(e: EncrAlg) -> usize {
    match e {
        EncrAlg::Null => 0,
        EncrAlg::TripleDesCbc => 24,
        EncrAlg::AesCbc { key_bits } => usize::from(key_bits / 8),
        EncrAlg::AesCtr { key_bits } | EncrAlg::AesGcm { key_bits, .. } => {
            usize::from(key_bits / 8) + 4
        }
    }
}

/// Integrity key bytes of KEYMAT.
pub fn auth_key_len(i: IntegAlg) -> usize {
    match i {
        IntegAlg::None => 0,
        IntegAlg::HmacMd5_96 => 16,
        IntegAlg::HmacSha1_96 => 20,
        IntegAlg::HmacSha256_128 => 32,
        IntegAlg::HmacSha384_192 => 48,
        IntegAlg::HmacSha512_256 => 64,
    }
}

pub fn esp_encr_name(e: EncrAlg) -> String {
    match e {
        EncrAlg::Null => "NULL".into(),
        EncrAlg::TripleDesCbc => "3DES_CBC".into(),
        EncrAlg::AesCbc { key_bits } => format!("AES_CBC_{key_bits}"),
        EncrAlg::AesCtr { key_bits } => format!("AES_CTR_{key_bits}"),
        EncrAlg::AesGcm {
            key_bits,
            icv_bytes,
        } => format!("AES_GCM_{}_{key_bits}", icv_bytes * 8),
    }
}

pub fn integ_name(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::None => "NONE",
        IntegAlg::HmacMd5_96 => "HMAC_MD5",
        IntegAlg::HmacSha1_96 => "HMAC_SHA1",
        IntegAlg::HmacSha256_128 => "HMAC_SHA2_256",
        IntegAlg::HmacSha384_192 => "HMAC_SHA2_384",
        IntegAlg::HmacSha512_256 => "HMAC_SHA2_512",
    }
}

/// The PFS group of an `esp=` proposal: its own, else the IKE group with `pfs=yes`, else none.
pub fn pfs_group(e: &EspProposal, pfs: bool, ike_group: DhGroup) -> Option<DhGroup> {
    e.pfs_group.or(pfs.then_some(ike_group))
}

/// `ESP:AES_CBC_128/HMAC_SHA1[/MODP2048]`.
pub fn esp_name(proto: IpsecProto, e: &EspProposal, pfs: Option<DhGroup>) -> String {
    let mut s = match proto {
        IpsecProto::Esp => match e.integ {
            IntegAlg::None => format!("ESP:{}", esp_encr_name(e.encr)),
            i => format!("ESP:{}/{}", esp_encr_name(e.encr), integ_name(i)),
        },
        IpsecProto::Ah => format!("AH:{}", integ_name(e.integ)),
    };
    if let Some(g) = pfs {
        s.push('/');
        s.push_str(&group_name(g));
    }
    s
}

/// What our side wants from phase 2.
#[derive(Debug, Clone)]
pub struct P2Want<'a> {
    pub proto: IpsecProto,
    pub esp: &'a [EspProposal],
    pub pfs: bool,
    pub ike_group: DhGroup,
    pub mode: SaMode,
    pub life_secs: u64,
}

/// The Quick Mode SA payload: one proposal (our inbound SPI) with one transform per `esp=`
/// proposal whose PFS group is `pfs` (one KE payload can serve only one group).
pub fn p2_sa(
    want: &P2Want<'_>,
    spi: u32,
    pfs: Option<DhGroup>,
    encap: EncapsulationMode,
) -> SaPayload {
    let mut transforms = Vec::new();
    for e in want.esp {
        if pfs_group(e, want.pfs, want.ike_group) != pfs {
            continue;
        }
        let (id, keylen, auth) = match want.proto {
            IpsecProto::Esp => {
                let Some((id, keylen)) = esp_transform(e.encr) else {
                    continue;
                };
                (id.0, keylen, auth_attr(e.integ))
            }
            IpsecProto::Ah => {
                let Some(id) = ah_transform(e.integ) else {
                    continue;
                };
                (id, None, auth_attr(e.integ))
            }
        };
        let mut attrs = Vec::new();
        life_attrs(
            &mut attrs,
            IpsecAttr::SA_LIFE_TYPE.0,
            IpsecAttr::SA_LIFE_DURATION.0,
            want.life_secs,
        );
        if let Some(g) = pfs {
            attrs.push(Attribute::basic(IpsecAttr::GROUP_DESCRIPTION.0, g.number()));
        }
        attrs.push(Attribute::basic(IpsecAttr::ENCAPSULATION_MODE.0, encap.0));
        if let Some(a) = auth {
            attrs.push(Attribute::basic(IpsecAttr::AUTH_ALGORITHM.0, a));
        }
        if let Some(k) = keylen {
            attrs.push(Attribute::basic(IpsecAttr::KEY_LENGTH.0, k));
        }
        let number = u8::try_from(transforms.len() + 1).unwrap_or(u8::MAX);
        transforms.push(Transform {
            number,
            id,
            attributes: attrs,
        });
    }
    transforms.truncate(usize::from(u8::MAX));
    SaPayload {
        doi: Doi::IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: match want.proto {
                IpsecProto::Esp => ProtocolId::IPSEC_ESP,
                IpsecProto::Ah => ProtocolId::IPSEC_AH,
            },
            spi: spi.to_be_bytes().to_vec(),
            transforms,
        }],
    }
}

/// A phase-2 transform as we understand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2Attrs {
    pub proto: IpsecProto,
    pub encr: Option<EncrAlg>,
    pub integ: IntegAlg,
    pub group: Option<DhGroup>,
    pub encap: Option<(SaMode, bool)>,
    pub life_secs: Option<u64>,
    pub life_kb: Option<u64>,
    pub problem: Option<String>,
}

impl P2Attrs {
    pub fn proposal(&self) -> Option<EspProposal> {
        Some(EspProposal {
            encr: self.encr?,
            integ: self.integ,
            pfs_group: self.group,
        })
    }

    pub fn name(&self) -> String {
        match self.proposal() {
            Some(p) if self.problem.is_none() => esp_name(self.proto, &p, self.group),
            _ => format!(
                "{:?}:{}",
                self.proto,
                self.problem.as_deref().unwrap_or("?")
            )
            .to_uppercase(),
        }
    }
}

/// Read a phase-2 transform of protocol `proto`.
pub fn parse_p2(proto: IpsecProto, t: &Transform) -> P2Attrs {
    let mut a = P2Attrs {
        proto,
        encr: None,
        integ: IntegAlg::None,
        group: None,
        encap: None,
        life_secs: None,
        life_kb: None,
        problem: None,
    };
    let mut keylen = None;
    let mut life_type = None;
    let mut auth = None;
    for at in &t.attributes {
        let basic = match at.value {
            AttrValue::Basic(b) => Some(b),
            AttrValue::Variable(_) => None,
        };
        match IpsecAttr(at.ty) {
            IpsecAttr::SA_LIFE_TYPE => life_type = basic.map(LifeType),
            IpsecAttr::SA_LIFE_DURATION => match (life_type, at.as_u64()) {
                (Some(LifeType::SECONDS), Some(v)) => a.life_secs = Some(v),
                (Some(LifeType::KILOBYTES), Some(v)) => a.life_kb = Some(v),
                _ => set_problem(
                    &mut a.problem,
                    "life duration without a known life type".into(),
                ),
            },
            IpsecAttr::GROUP_DESCRIPTION => {
                match basic.and_then(DhGroup::from_number).filter(|g| modp(*g)) {
                    Some(g) => a.group = Some(g),
                    None => set_problem(&mut a.problem, format!("PFS group {basic:?}")),
                }
            }
            IpsecAttr::ENCAPSULATION_MODE => match basic.and_then(parse_encap_mode) {
                Some(m) => a.encap = Some(m),
                None => set_problem(&mut a.problem, format!("encapsulation mode {basic:?}")),
            },
            IpsecAttr::AUTH_ALGORITHM => match basic.and_then(integ_of) {
                Some(i) => auth = Some(i),
                None => set_problem(&mut a.problem, format!("auth algorithm {basic:?}")),
            },
            IpsecAttr::KEY_LENGTH => keylen = basic,
            other => set_problem(&mut a.problem, format!("attribute {other:?}")),
        }
    }
    match proto {
        IpsecProto::Esp => {
            a.encr = encr_of(t.id, keylen);
            if a.encr.is_none() {
                set_problem(
                    &mut a.problem,
                    format!(
                        "ESP transform {:?} key length {keylen:?}",
                        EspTransform(t.id)
                    ),
                );
            }
            a.integ = auth.unwrap_or(IntegAlg::None);
            let aead = matches!(a.encr, Some(EncrAlg::AesGcm { .. }));
            if aead && auth.is_some() {
                set_problem(&mut a.problem, "AES-GCM with an auth algorithm".into());
            }
            if !aead && auth.is_none() {
                set_problem(&mut a.problem, "ESP without integrity".into());
            }
        }
        IpsecProto::Ah => {
            a.encr = Some(EncrAlg::Null);
            match auth {
                Some(i) if ah_transform(i) == Some(t.id) => a.integ = i,
                _ => set_problem(&mut a.problem, format!("AH transform {}", t.id)),
            }
        }
    }
    a
}

/// What phase 2 agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct P2Choice {
    pub proto: IpsecProto,
    pub encr: EncrAlg,
    pub integ: IntegAlg,
    pub pfs: Option<DhGroup>,
    pub mode: SaMode,
    pub encap: bool,
    pub life_secs: u64,
    pub life_kb: u64,
    /// The responder shortened the initiator's lifetime (RESPONDER-LIFETIME is due).
    pub shortened: bool,
}

fn proto_of(p: ProtocolId) -> Option<IpsecProto> {
    match p {
        ProtocolId::IPSEC_ESP => Some(IpsecProto::Esp),
        ProtocolId::IPSEC_AH => Some(IpsecProto::Ah),
        _ => None,
    }
}

/// SPI of a phase-2 proposal.
pub fn spi_of(p: &Proposal) -> Option<u32> {
    let b: [u8; 4] = p.spi.as_slice().try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn allows(want: &P2Want<'_>) -> String {
    want.esp
        .iter()
        .map(|e| esp_name(want.proto, e, pfs_group(e, want.pfs, want.ike_group)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Responder: the first of the peer's phase-2 transforms that `want` accepts. Ok: the reply SA
/// (the peer's proposal with only the chosen transform; the caller puts in its own SPI), the
/// choice and the initiator's SPI. Err: (peer offered, conn allows).
pub fn choose_p2(
    sa: &SaPayload,
    want: &P2Want<'_>,
) -> Result<(SaPayload, P2Choice, u32), (String, String)> {
    let mut offered = Vec::new();
    for (i, prop) in sa.proposals.iter().enumerate() {
        let bundled = sa
            .proposals
            .iter()
            .enumerate()
            .any(|(j, q)| j != i && q.number == prop.number);
        let Some(proto) = proto_of(prop.protocol) else {
            offered.push(format!("{:?}", prop.protocol));
            continue;
        };
        let Some(spi) = spi_of(prop).filter(|s| *s >= 256) else {
            offered.push(format!("{proto:?} with a bad SPI").to_uppercase());
            continue;
        };
        for t in &prop.transforms {
            let a = parse_p2(proto, t);
            offered.push(if bundled {
                format!("{} (bundle)", a.name())
            } else {
                a.name()
            });
            if bundled || a.problem.is_some() || proto != want.proto {
                continue;
            }
            let Some(peer) = a.proposal() else { continue };
            let Some((mode, encap)) = a.encap else {
                continue;
            };
            if mode != want.mode {
                continue;
            }
            let ok = want.esp.iter().any(|e| {
                e.encr == peer.encr
                    && e.integ == peer.integ
                    && match pfs_group(e, want.pfs, want.ike_group) {
                        Some(g) => a.group == Some(g),
                        None => true,
                    }
            });
            if !ok {
                continue;
            }
            let peer_life = a.life_secs.unwrap_or(28800);
            let life = peer_life.min(want.life_secs).max(1);
            let reply = SaPayload {
                doi: sa.doi,
                situation: sa.situation,
                proposals: vec![Proposal {
                    number: prop.number,
                    protocol: prop.protocol,
                    spi: Vec::new(),
                    transforms: vec![t.clone()],
                }],
            };
            return Ok((
                reply,
                P2Choice {
                    proto,
                    encr: peer.encr,
                    integ: peer.integ,
                    pfs: a.group,
                    mode,
                    encap,
                    life_secs: life,
                    life_kb: a.life_kb.unwrap_or(0),
                    shortened: life < peer_life,
                },
                spi,
            ));
        }
    }
    Err((offered.join(", "), allows(want)))
}

/// Initiator: the responder's QR1 SA: one proposal, one transform from our offer. Returns the
/// choice and the responder's SPI.
pub fn check_p2_reply(
    sa: &SaPayload,
    want: &P2Want<'_>,
    offered_pfs: Option<DhGroup>,
) -> Result<(P2Choice, u32), String> {
    let [prop] = sa.proposals.as_slice() else {
        return Err(format!(
            "responder's SA holds {} proposals, not 1",
            sa.proposals.len()
        ));
    };
    let [t] = prop.transforms.as_slice() else {
        return Err(format!(
            "responder's proposal holds {} transforms, not 1",
            prop.transforms.len()
        ));
    };
    let proto = proto_of(prop.protocol).ok_or("responder chose a protocol we did not offer")?;
    let spi = spi_of(prop)
        .filter(|s| *s >= 256)
        .ok_or("responder's SPI is missing or reserved")?;
    let a = parse_p2(proto, t);
    let (Some(peer), Some((mode, encap)), None) = (a.proposal(), a.encap, &a.problem) else {
        return Err(format!("responder chose {}", a.name()));
    };
    let ok = proto == want.proto
        && mode == want.mode
        && a.group == offered_pfs
        && want.esp.iter().any(|e| {
            e.encr == peer.encr
                && e.integ == peer.integ
                && pfs_group(e, want.pfs, want.ike_group) == offered_pfs
        });
    if !ok {
        return Err(format!(
            "responder chose {} which we did not offer (we offered {})",
            a.name(),
            allows(want)
        ));
    }
    let life = a
        .life_secs
        .unwrap_or(want.life_secs)
        .min(want.life_secs)
        .max(1);
    Ok((
        P2Choice {
            proto,
            encr: peer.encr,
            integ: peer.integ,
            pfs: offered_pfs,
            mode,
            encap,
            life_secs: life,
            life_kb: a.life_kb.unwrap_or(0),
            shortened: false,
        },
        spi,
    ))
}

/// The lifetime a RESPONDER-LIFETIME notify carries (SA life attributes), if any.
pub fn responder_lifetime(data: &[u8]) -> (Option<u64>, Option<u64>) {
    let mut r = crate::msgs::reader::Reader::new(data);
    let attrs = crate::msgs::isakmp::sa::read_attributes(&mut r).unwrap_or_default();
    let (mut secs, mut kb, mut ty) = (None, None, None);
    for a in attrs {
        match IpsecAttr(a.ty) {
            IpsecAttr::SA_LIFE_TYPE => ty = a.as_u64(),
            IpsecAttr::SA_LIFE_DURATION => match ty {
                Some(1) => secs = a.as_u64(),
                Some(2) => kb = a.as_u64(),
                _ => {}
            },
            _ => {}
        }
    }
    (secs, kb)
}

/// The RESPONDER-LIFETIME notify data for `secs`.
pub fn responder_lifetime_data(secs: u64) -> Vec<u8> {
    use crate::msgs::codec::Codec;
    let mut attrs = Vec::new();
    life_attrs(
        &mut attrs,
        IpsecAttr::SA_LIFE_TYPE.0,
        IpsecAttr::SA_LIFE_DURATION.0,
        secs,
    );
    let mut out = Vec::new();
    for a in attrs {
        a.encode(&mut out);
    }
    out
}

/// ESP encapsulation mode value for our proposals.
pub fn encap_value(natt: Option<super::natt::NattVersion>, mode: SaMode) -> EncapsulationMode {
    super::natt::encap_mode(natt, mode)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ike(encr: IkeEncr, prf: PrfAlg, dh: DhGroup) -> IkeProposal {
        IkeProposal {
            encr,
            prf,
            integ: None,
            dh,
        }
    }

    #[test]
    fn phase1_choice_and_mismatch_text() {
        let theirs = p1_sa(
            &[
                ike(IkeEncr::TripleDesCbc, PrfAlg::HmacMd5, DhGroup::Modp1024),
                ike(
                    IkeEncr::AesCbc { key_bits: 128 },
                    PrfAlg::HmacSha1,
                    DhGroup::Modp2048,
                ),
            ],
            &[AuthKind::Psk],
            100_000,
        );
        let ours = [ike(
            IkeEncr::AesCbc { key_bits: 128 },
            PrfAlg::HmacSha1,
            DhGroup::Modp2048,
        )];
        let (reply, c) = choose_p1(&theirs, &ours, &[AuthKind::Psk], 3600).unwrap();
        assert_eq!(c.prop, ours[0]);
        assert_eq!(c.life_secs, 3600);
        assert_eq!(reply.proposals[0].transforms.len(), 1);
        assert_eq!(reply.proposals[0].transforms[0].number, 2);
        let back = check_p1_reply(&reply, &[ours[0]], &[AuthKind::Psk], 3600).unwrap();
        assert_eq!(back.prop, ours[0]);
        // RSA only: no transform acceptable
        let e = choose_p1(&theirs, &ours, &[AuthKind::Rsa], 3600).unwrap_err();
        assert_eq!(
            e.0,
            "3DES_CBC/MD5/MODP1024 (PRESHARED_KEY), AES_CBC_128/SHA1/MODP2048 (PRESHARED_KEY)"
        );
        let ours2 = [ike(
            IkeEncr::AesCbc { key_bits: 256 },
            PrfAlg::HmacSha2_256,
            DhGroup::Modp2048,
        )];
        let e = choose_p1(&theirs, &ours2, &[AuthKind::Psk], 3600).unwrap_err();
        assert_eq!(e.0, "3DES_CBC/MD5/MODP1024, AES_CBC_128/SHA1/MODP2048");
        assert_eq!(e.1, "AES_CBC_256/SHA2_256/MODP2048");
    }

    #[test]
    fn phase1_long_lifetime_is_tlv() {
        let sa = p1_sa(
            &[ike(
                IkeEncr::TripleDesCbc,
                PrfAlg::HmacMd5,
                DhGroup::Modp1024,
            )],
            &[AuthKind::Psk],
            86400,
        );
        let a = parse_p1(&sa.proposals[0].transforms[0]);
        assert_eq!(a.life_secs, Some(86400));
        assert!(a.problem.is_none());
    }

    #[test]
    fn phase2_choice_pfs_and_lifetime() {
        let esp = [EspProposal {
            encr: EncrAlg::AesCbc { key_bits: 128 },
            integ: IntegAlg::HmacSha1_96,
            pfs_group: None,
        }];
        let want = P2Want {
            proto: IpsecProto::Esp,
            esp: &esp,
            pfs: true,
            ike_group: DhGroup::Modp2048,
            mode: SaMode::Tunnel,
            life_secs: 28800,
        };
        let sa = p2_sa(
            &want,
            0x1234_5678,
            Some(DhGroup::Modp2048),
            EncapsulationMode::UDP_TUNNEL,
        );
        let short = P2Want {
            life_secs: 3600,
            ..want.clone()
        };
        let (reply, c, spi) = choose_p2(&sa, &short).unwrap();
        assert_eq!(spi, 0x1234_5678);
        assert_eq!(c.pfs, Some(DhGroup::Modp2048));
        assert!(c.encap);
        assert_eq!(c.life_secs, 3600);
        assert!(c.shortened);
        let mut reply = reply;
        reply.proposals[0].spi = 0x9999u32.to_be_bytes().to_vec();
        let (c2, rspi) = check_p2_reply(&reply, &want, Some(DhGroup::Modp2048)).unwrap();
        assert_eq!(rspi, 0x9999);
        assert_eq!(c2.encr, c.encr);
        // no PFS offered, PFS required: refused
        let nopfs = p2_sa(
            &P2Want {
                pfs: false,
                ..want.clone()
            },
            0x1000,
            None,
            EncapsulationMode::TUNNEL,
        );
        let e = choose_p2(&nopfs, &want).unwrap_err();
        assert_eq!(e.0, "ESP:AES_CBC_128/HMAC_SHA1");
        assert_eq!(e.1, "ESP:AES_CBC_128/HMAC_SHA1/MODP2048");
        let (s, k) = responder_lifetime(&responder_lifetime_data(100_000));
        assert_eq!((s, k), (Some(100_000), None));
    }
}
