//! IKEv2 registry values (RFC 7296 §3, IANA "IKEv2 Parameters").

use crate::wire_enum;

wire_enum! {
    /// IKEv2 payload type.
    PayloadType(u8) {
        NONE = 0, SA = 33, KE = 34, IDI = 35, IDR = 36, CERT = 37, CERTREQ = 38, AUTH = 39,
        NONCE = 40, NOTIFY = 41, DELETE = 42, VENDOR = 43, TSI = 44, TSR = 45, SK = 46,
        CP = 47, EAP = 48, GSPM = 49, SKF = 53,
    }
}

wire_enum! {
    /// IKEv2 exchange type.
    ExchangeType(u8) {
        IKE_SA_INIT = 34, IKE_AUTH = 35, CREATE_CHILD_SA = 36, INFORMATIONAL = 37,
        IKE_SESSION_RESUME = 38, IKE_INTERMEDIATE = 43, IKE_FOLLOWUP_KE = 44,
    }
}

wire_enum! {
    /// Protocol ID (proposals, notify, delete).
    ProtocolId(u8) { NONE = 0, IKE = 1, AH = 2, ESP = 3, }
}

wire_enum! {
    /// Transform type.
    TransformType(u8) { ENCR = 1, PRF = 2, INTEG = 3, DH = 4, ESN = 5, }
}

wire_enum! {
    /// Encryption algorithm transform IDs.
    EncrId(u16) {
        DES_IV64 = 1, DES = 2, TDES = 3, RC5 = 4, IDEA = 5, CAST = 6, BLOWFISH = 7,
        NULL = 11, AES_CBC = 12, AES_CTR = 13, AES_CCM_8 = 14, AES_CCM_12 = 15,
        AES_CCM_16 = 16, AES_GCM_8 = 18, AES_GCM_12 = 19, AES_GCM_16 = 20,
        NULL_AUTH_AES_GMAC = 21, CAMELLIA_CBC = 23, CHACHA20_POLY1305 = 28,
    }
}

wire_enum! {
    /// Pseudo-random function transform IDs.
    PrfId(u16) {
        HMAC_MD5 = 1, HMAC_SHA1 = 2, HMAC_TIGER = 3, AES128_XCBC = 4, HMAC_SHA2_256 = 5,
        HMAC_SHA2_384 = 6, HMAC_SHA2_512 = 7, AES128_CMAC = 8,
    }
}

wire_enum! {
    /// Integrity algorithm transform IDs.
    IntegId(u16) {
        NONE = 0, HMAC_MD5_96 = 1, HMAC_SHA1_96 = 2, DES_MAC = 3, KPDK_MD5 = 4,
        AES_XCBC_96 = 5, HMAC_MD5_128 = 6, HMAC_SHA1_160 = 7, AES_CMAC_96 = 8,
        HMAC_SHA2_256_128 = 12, HMAC_SHA2_384_192 = 13, HMAC_SHA2_512_256 = 14,
    }
}

wire_enum! {
    /// Diffie-Hellman / key exchange method IDs.
    DhGroup(u16) {
        NONE = 0, MODP768 = 1, MODP1024 = 2, MODP1536 = 5, MODP2048 = 14, MODP3072 = 15,
        MODP4096 = 16, MODP6144 = 17, MODP8192 = 18, ECP256 = 19, ECP384 = 20, ECP521 = 21,
        MODP1024_S160 = 22, MODP2048_S224 = 23, MODP2048_S256 = 24, ECP192 = 25,
        ECP224 = 26, BRAINPOOL224 = 27, BRAINPOOL256 = 28, BRAINPOOL384 = 29,
        BRAINPOOL512 = 30, CURVE25519 = 31, CURVE448 = 32,
    }
}

wire_enum! {
    /// Transform attribute types.
    TransformAttr(u16) { KEY_LENGTH = 14, }
}

wire_enum! {
    /// Identification types.
    IdType(u8) {
        IPV4_ADDR = 1, FQDN = 2, RFC822_ADDR = 3, IPV6_ADDR = 5, DER_ASN1_DN = 9,
        DER_ASN1_GN = 10, KEY_ID = 11, FC_NAME = 12, NULL = 13,
    }
}

wire_enum! {
    /// Authentication methods (RFC 7296 §3.8, RFC 7427 for 14).
    AuthMethod(u8) {
        RSA_SIG = 1, SHARED_KEY_MIC = 2, DSS_SIG = 3, ECDSA_256 = 9, ECDSA_384 = 10,
        ECDSA_521 = 11, GSPAM = 12, NULL = 13, DIGITAL_SIGNATURE = 14,
    }
}

wire_enum! {
    /// Certificate encodings.
    CertEncoding(u8) {
        PKCS7_X509 = 1, PGP = 2, DNS_SIGNED_KEY = 3, X509_SIG = 4, KERBEROS = 6,
        CRL = 7, ARL = 8, SPKI = 9, X509_ATTR = 10, RAW_RSA = 11, HASH_URL_X509 = 12,
        HASH_URL_X509_BUNDLE = 13, OCSP = 14, RAW_PUBLIC_KEY = 15,
    }
}

wire_enum! {
    /// Notify message types (errors < 16384, status ≥ 16384).
    NotifyType(u16) {
        UNSUPPORTED_CRITICAL_PAYLOAD = 1, INVALID_IKE_SPI = 4, INVALID_MAJOR_VERSION = 5,
        INVALID_SYNTAX = 7, INVALID_MESSAGE_ID = 9, INVALID_SPI = 11,
        NO_PROPOSAL_CHOSEN = 14, INVALID_KE_PAYLOAD = 17, AUTHENTICATION_FAILED = 24,
        SINGLE_PAIR_REQUIRED = 34, NO_ADDITIONAL_SAS = 35, INTERNAL_ADDRESS_FAILURE = 36,
        FAILED_CP_REQUIRED = 37, TS_UNACCEPTABLE = 38, INVALID_SELECTORS = 39,
        TEMPORARY_FAILURE = 43, CHILD_SA_NOT_FOUND = 44,
        INITIAL_CONTACT = 16384, SET_WINDOW_SIZE = 16385, ADDITIONAL_TS_POSSIBLE = 16386,
        IPCOMP_SUPPORTED = 16387, NAT_DETECTION_SOURCE_IP = 16388,
        NAT_DETECTION_DESTINATION_IP = 16389, COOKIE = 16390, USE_TRANSPORT_MODE = 16391,
        HTTP_CERT_LOOKUP_SUPPORTED = 16392, REKEY_SA = 16393,
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394, NON_FIRST_FRAGMENTS_ALSO = 16395,
        MOBIKE_SUPPORTED = 16396, ADDITIONAL_IP4_ADDRESS = 16397,
        ADDITIONAL_IP6_ADDRESS = 16398, NO_ADDITIONAL_ADDRESSES = 16399,
        UPDATE_SA_ADDRESSES = 16400, COOKIE2 = 16401, NO_NATS_ALLOWED = 16402,
        REDIRECT_SUPPORTED = 16406, REDIRECT = 16407, REDIRECTED_FROM = 16408,
        IKEV2_FRAGMENTATION_SUPPORTED = 16430, SIGNATURE_HASH_ALGORITHMS = 16431,
    }
}

wire_enum! {
    /// Traffic selector types.
    TsType(u8) { IPV4_ADDR_RANGE = 7, IPV6_ADDR_RANGE = 8, }
}

wire_enum! {
    /// Configuration payload types.
    CfgType(u8) { REQUEST = 1, REPLY = 2, SET = 3, ACK = 4, }
}

wire_enum! {
    /// Configuration attribute types.
    CfgAttr(u16) {
        INTERNAL_IP4_ADDRESS = 1, INTERNAL_IP4_NETMASK = 2, INTERNAL_IP4_DNS = 3,
        INTERNAL_IP4_NBNS = 4, INTERNAL_IP4_DHCP = 6, APPLICATION_VERSION = 7,
        INTERNAL_IP6_ADDRESS = 8, INTERNAL_IP6_DNS = 10, INTERNAL_IP6_DHCP = 12,
        INTERNAL_IP4_SUBNET = 13, SUPPORTED_ATTRIBUTES = 14, INTERNAL_IP6_SUBNET = 15,
    }
}

/// Header flag: sent by the original initiator.
pub const FLAG_INITIATOR: u8 = 0x08;
/// Header flag: version (can speak a higher major version).
pub const FLAG_VERSION: u8 = 0x10;
/// Header flag: response.
pub const FLAG_RESPONSE: u8 = 0x20;
