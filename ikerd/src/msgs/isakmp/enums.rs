//! ISAKMP / IKEv1 registry values (RFC 2407, 2408, 2409, 3947, 3706).

use crate::wire_enum;

wire_enum! {
    /// ISAKMP next-payload type (RFC 2408 §3.1, RFC 3947, drafts).
    PayloadType(u8) {
        NONE = 0, SA = 1, PROPOSAL = 2, TRANSFORM = 3, KE = 4, ID = 5, CERT = 6, CR = 7,
        HASH = 8, SIG = 9, NONCE = 10, N = 11, D = 12, VID = 13, ATTR = 14, SAK = 15,
        SAT = 16, KD = 17, SEQ = 18, POP = 19, NAT_D = 20, NAT_OA = 21, GAP = 22,
        NAT_D_DRAFT = 130, NAT_OA_DRAFT = 131, FRAGMENT = 132,
    }
}

wire_enum! {
    /// ISAKMP exchange type (RFC 2408 §3.1, RFC 2409).
    ExchangeType(u8) {
        NONE = 0, BASE = 1, IDENT = 2, AUTH_ONLY = 3, AGGRESSIVE = 4, INFO = 5,
        TRANSACTION = 6, QUICK = 32, NEW_GROUP = 33,
    }
}

wire_enum! {
    /// Protocol identifier (RFC 2407 §4.4.1).
    ProtocolId(u8) {
        RESERVED = 0, ISAKMP = 1, IPSEC_AH = 2, IPSEC_ESP = 3, IPCOMP = 4,
    }
}

wire_enum! {
    /// Domain of interpretation.
    Doi(u32) { ISAKMP = 0, IPSEC = 1, GDOI = 2, }
}

wire_enum! {
    /// Oakley (phase 1) SA attribute class (RFC 2409 Appendix A).
    OakleyAttr(u16) {
        ENCRYPTION_ALGORITHM = 1, HASH_ALGORITHM = 2, AUTHENTICATION_METHOD = 3,
        GROUP_DESCRIPTION = 4, GROUP_TYPE = 5, GROUP_PRIME = 6, GROUP_GENERATOR_ONE = 7,
        GROUP_GENERATOR_TWO = 8, GROUP_CURVE_A = 9, GROUP_CURVE_B = 10, LIFE_TYPE = 11,
        LIFE_DURATION = 12, PRF = 13, KEY_LENGTH = 14, FIELD_SIZE = 15, GROUP_ORDER = 16,
    }
}

wire_enum! {
    /// IPsec DOI (phase 2) SA attribute class (RFC 2407 §4.5).
    IpsecAttr(u16) {
        SA_LIFE_TYPE = 1, SA_LIFE_DURATION = 2, GROUP_DESCRIPTION = 3,
        ENCAPSULATION_MODE = 4, AUTH_ALGORITHM = 5, KEY_LENGTH = 6, KEY_ROUNDS = 7,
        COMPRESS_DICT_SIZE = 8, COMPRESS_PRIVATE_ALG = 9, ECN_TUNNEL = 10,
    }
}

wire_enum! {
    /// Oakley encryption algorithm.
    OakleyEncr(u16) {
        DES_CBC = 1, IDEA_CBC = 2, BLOWFISH_CBC = 3, RC5_R16_B64_CBC = 4, TDES_CBC = 5,
        CAST_CBC = 6, AES_CBC = 7, CAMELLIA_CBC = 8,
    }
}

wire_enum! {
    /// Oakley hash algorithm.
    OakleyHash(u16) { MD5 = 1, SHA = 2, TIGER = 3, SHA2_256 = 4, SHA2_384 = 5, SHA2_512 = 6, }
}

wire_enum! {
    /// Oakley authentication method.
    OakleyAuth(u16) {
        PRESHARED_KEY = 1, DSS_SIG = 2, RSA_SIG = 3, RSA_ENC = 4, RSA_REV_ENC = 5,
        ECDSA_P256 = 9, ECDSA_P384 = 10, ECDSA_P521 = 11,
        XAUTH_INIT_PSK = 65001, XAUTH_RESP_PSK = 65002, XAUTH_INIT_RSA = 65005,
        XAUTH_RESP_RSA = 65006,
    }
}

wire_enum! {
    /// Oakley group description.
    OakleyGroup(u16) {
        MODP768 = 1, MODP1024 = 2, EC2N155 = 3, EC2N185 = 4, MODP1536 = 5,
        MODP2048 = 14, MODP3072 = 15, MODP4096 = 16, MODP6144 = 17, MODP8192 = 18,
        ECP256 = 19, ECP384 = 20, ECP521 = 21,
    }
}

wire_enum! {
    /// Oakley life type / IPsec SA life type.
    LifeType(u16) { SECONDS = 1, KILOBYTES = 2, }
}

wire_enum! {
    /// IPsec encapsulation mode (RFC 2407, RFC 3947).
    EncapsulationMode(u16) {
        TUNNEL = 1, TRANSPORT = 2, UDP_TUNNEL = 3, UDP_TRANSPORT = 4,
        UDP_TUNNEL_DRAFT = 61443, UDP_TRANSPORT_DRAFT = 61444,
    }
}

wire_enum! {
    /// ESP transform identifier (RFC 2407 §4.4.4).
    EspTransform(u8) {
        DES_IV64 = 1, DES = 2, TDES = 3, RC5 = 4, IDEA = 5, CAST = 6, BLOWFISH = 7,
        NULL = 11, AES_CBC = 12, AES_CTR = 13, AES_CCM_8 = 14, AES_CCM_12 = 15,
        AES_CCM_16 = 16, AES_GCM_8 = 18, AES_GCM_12 = 19, AES_GCM_16 = 20,
        NULL_AUTH_AES_GMAC = 23,
    }
}

wire_enum! {
    /// Identification type (RFC 2407 §4.6.2.1).
    IdType(u8) {
        IPV4_ADDR = 1, FQDN = 2, USER_FQDN = 3, IPV4_ADDR_SUBNET = 4, IPV6_ADDR = 5,
        IPV6_ADDR_SUBNET = 6, IPV4_ADDR_RANGE = 7, IPV6_ADDR_RANGE = 8, DER_ASN1_DN = 9,
        DER_ASN1_GN = 10, KEY_ID = 11,
    }
}

wire_enum! {
    /// Notify message type (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706).
    NotifyType(u16) {
        INVALID_PAYLOAD_TYPE = 1, DOI_NOT_SUPPORTED = 2, SITUATION_NOT_SUPPORTED = 3,
        INVALID_COOKIE = 4, INVALID_MAJOR_VERSION = 5, INVALID_MINOR_VERSION = 6,
        INVALID_EXCHANGE_TYPE = 7, INVALID_FLAGS = 8, INVALID_MESSAGE_ID = 9,
        INVALID_PROTOCOL_ID = 10, INVALID_SPI = 11, INVALID_TRANSFORM_ID = 12,
        ATTRIBUTES_NOT_SUPPORTED = 13, NO_PROPOSAL_CHOSEN = 14, BAD_PROPOSAL_SYNTAX = 15,
        PAYLOAD_MALFORMED = 16, INVALID_KEY_INFORMATION = 17, INVALID_ID_INFORMATION = 18,
        INVALID_CERT_ENCODING = 19, INVALID_CERTIFICATE = 20, CERT_TYPE_UNSUPPORTED = 21,
        INVALID_CERT_AUTHORITY = 22, INVALID_HASH_INFORMATION = 23,
        AUTHENTICATION_FAILED = 24, INVALID_SIGNATURE = 25, ADDRESS_NOTIFICATION = 26,
        NOTIFY_SA_LIFETIME = 27, CERTIFICATE_UNAVAILABLE = 28,
        UNSUPPORTED_EXCHANGE_TYPE = 29, UNEQUAL_PAYLOAD_LENGTHS = 30,
        CONNECTED = 16384, RESPONDER_LIFETIME = 24576, REPLAY_STATUS = 24577,
        INITIAL_CONTACT = 24578, R_U_THERE = 36136, R_U_THERE_ACK = 36137,
    }
}

wire_enum! {
    /// Certificate encoding (RFC 2408 §3.9).
    CertEncoding(u8) {
        PKCS7 = 1, PGP = 2, DNS_SIGNED_KEY = 3, X509_SIG = 4, X509_KE = 5,
        KERBEROS = 6, CRL = 7, ARL = 8, SPKI = 9, X509_ATTR = 10,
    }
}

wire_enum! {
    /// Mode-config attribute payload type (draft-dukes-ike-mode-cfg).
    CfgType(u8) { REQUEST = 1, REPLY = 2, SET = 3, ACK = 4, }
}

/// Header flag: the body after the header is encrypted.
pub const FLAG_ENCRYPTION: u8 = 0x01;
/// Header flag: commit.
pub const FLAG_COMMIT: u8 = 0x02;
/// Header flag: authentication only.
pub const FLAG_AUTH_ONLY: u8 = 0x04;
