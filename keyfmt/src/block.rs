//! The RSA private-key block of ipsec.secrets, as FreeS/WAN's
//! `ipsec rsasigkey` (and Libreswan before 3.x) writes it:
//!
//! ```text
//! : RSA    {
//!     # RSA 3072 bits   gateway   Mon Nov 23 10:56:42 2026
//!     # for signatures only, UNSAFE FOR ENCRYPTION
//!     #pubkey=0sAQ…
//!     Modulus: 0x…
//!     PublicExponent: 0x010001
//!     # everything after this point is secret
//!     PrivateExponent: 0x…
//!     Prime1: 0x…
//!     Prime2: 0x…
//!     Exponent1: 0x…
//!     Exponent2: 0x…
//!     Coefficient: 0x…
//!     }
//! # do not change the indenting of that "}"
//! ```
//!
//! (Indentation is one tab in the real file.) Values may be `0x` hex or `0s` base64. Field names are matched without
//! regard to case. Libreswan's `CKAIDNSS:` field is accepted and ignored.
//!
//! This module only converts between text and numbers and checks that the
//! numbers belong together; it performs no private-key operation.

use rsa::BigUint;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::encoding::{self, strip_leading_zeros};
use crate::error::BlockError;
use crate::rfc3110::RsaPublicKey;

/// A secret big-endian number: zeroized on drop, never shown by `Debug`,
/// compared in constant time (for equal lengths).
#[derive(Clone)]
pub struct SecretNumber(Zeroizing<Vec<u8>>);

impl PartialEq for SecretNumber {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for SecretNumber {}

impl SecretNumber {
    /// Take ownership of secret big-endian bytes (leading zeros are dropped).
    pub fn new(bytes: &[u8]) -> Self {
        SecretNumber(Zeroizing::new(strip_leading_zeros(bytes).to_vec()))
    }

    /// The big-endian bytes. Callers must not copy them into unzeroized memory.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    fn to_biguint(&self) -> BigUint {
        BigUint::from_bytes_be(&self.0)
    }
}

impl std::fmt::Debug for SecretNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An RSA private key in the FreeS/WAN field layout (PKCS #1 naming:
/// Prime1 = p, Prime2 = q, Exponent1 = d mod (p−1), Exponent2 = d mod (q−1),
/// Coefficient = q⁻¹ mod p). Secret fields zeroize on drop; `Debug` shows
/// only the public half. Equality compares the secret fields in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPrivateKey {
    public: RsaPublicKey,
    private_exponent: SecretNumber,
    prime1: SecretNumber,
    prime2: SecretNumber,
    exponent1: SecretNumber,
    exponent2: SecretNumber,
    coefficient: SecretNumber,
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("public", &self.public)
            .field("private", &format_args!("<redacted>"))
            .finish()
    }
}

/// Field names in the order `ipsec rsasigkey` writes them.
const FIELD_NAMES: [&str; 8] = [
    "Modulus",
    "PublicExponent",
    "PrivateExponent",
    "Prime1",
    "Prime2",
    "Exponent1",
    "Exponent2",
    "Coefficient",
];
/// Libreswan (NSS era) extra field, ignored.
const IGNORED_FIELD: &str = "CKAIDNSS";

impl RsaPrivateKey {
    /// Assemble from parts. Call [`RsaPrivateKey::check_consistency`] before trusting it.
    pub fn from_parts(
        public: RsaPublicKey,
        private_exponent: SecretNumber,
        prime1: SecretNumber,
        prime2: SecretNumber,
        exponent1: SecretNumber,
        exponent2: SecretNumber,
        coefficient: SecretNumber,
    ) -> Self {
        RsaPrivateKey {
            public,
            private_exponent,
            prime1,
            prime2,
            exponent1,
            exponent2,
            coefficient,
        }
    }

    /// Parse the `Name: value` fields of a block body, in file order.
    /// `fields[i].0` is the name with or without its trailing colon.
    /// Errors name the index of the offending field. Does not check that
    /// the numbers are consistent: see [`RsaPrivateKey::check_consistency`].
    pub fn from_fields(fields: &[(&str, &str)]) -> Result<Self, BlockError> {
        let mut values: [Option<SecretNumber>; 8] = Default::default();
        for (index, (raw_name, raw_value)) in fields.iter().enumerate() {
            let name = raw_name.strip_suffix(':').unwrap_or(raw_name);
            if name.eq_ignore_ascii_case(IGNORED_FIELD) {
                continue;
            }
            let slot = FIELD_NAMES
                .iter()
                .position(|known| known.eq_ignore_ascii_case(name))
                .and_then(|position| values.get_mut(position));
            let Some(slot) = slot else {
                return Err(BlockError::at(
                    index,
                    format!("unknown RSA key field {name:?}"),
                ));
            };
            if slot.is_some() {
                return Err(BlockError::at(
                    index,
                    format!("RSA key field {name} given twice"),
                ));
            }
            let bytes = encoding::decode_prefixed(raw_value)
                .map_err(|e| BlockError::at(index, format!("RSA key field {name}: {e}")))?;
            *slot = Some(SecretNumber::new(&bytes));
        }
        let [modulus, public_exponent, private_exponent, prime1, prime2, exponent1, exponent2, coefficient] =
            values;
        let private_fields = [
            &private_exponent,
            &prime1,
            &prime2,
            &exponent1,
            &exponent2,
            &coefficient,
        ];
        if private_fields.iter().all(|v| v.is_none()) {
            return Err(BlockError::whole(
                "RSA key block holds only the public key (Libreswan 3 and later keep the private key in \
                 their NSS database); the block needs the private fields written by ipsec rsasigkey",
            ));
        }
        let missing =
            |name: &str| BlockError::whole(format!("RSA key block lacks the {name} field"));
        let modulus = modulus.ok_or_else(|| missing("Modulus"))?;
        let public_exponent = public_exponent.ok_or_else(|| missing("PublicExponent"))?;
        let public =
            RsaPublicKey::from_components(public_exponent.expose_bytes(), modulus.expose_bytes())
                .map_err(|e| BlockError::whole(format!("RSA public key: {e}")))?;
        Ok(RsaPrivateKey {
            public,
            private_exponent: private_exponent.ok_or_else(|| missing("PrivateExponent"))?,
            prime1: prime1.ok_or_else(|| missing("Prime1"))?,
            prime2: prime2.ok_or_else(|| missing("Prime2"))?,
            exponent1: exponent1.ok_or_else(|| missing("Exponent1"))?,
            exponent2: exponent2.ok_or_else(|| missing("Exponent2"))?,
            coefficient: coefficient.ok_or_else(|| missing("Coefficient"))?,
        })
    }

    /// The public key of a block's fields (`Modulus:` and `PublicExponent:`),
    /// ignoring every other field, so that public-only blocks (Libreswan's
    /// NSS era) and blocks with placeholder private fields can be compared.
    pub fn public_key_from_fields(fields: &[(&str, &str)]) -> Result<RsaPublicKey, BlockError> {
        let mut modulus = None;
        let mut exponent = None;
        for (index, (raw_name, raw_value)) in fields.iter().enumerate() {
            let name = raw_name.strip_suffix(':').unwrap_or(raw_name);
            let slot = if name.eq_ignore_ascii_case("Modulus") {
                &mut modulus
            } else if name.eq_ignore_ascii_case("PublicExponent") {
                &mut exponent
            } else {
                continue;
            };
            let bytes = encoding::decode_prefixed(raw_value)
                .map_err(|e| BlockError::at(index, format!("RSA key field {name}: {e}")))?;
            *slot = Some(bytes);
        }
        let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
            return Err(BlockError::whole(
                "RSA key block lacks Modulus or PublicExponent",
            ));
        };
        RsaPublicKey::from_components(&exponent, &modulus)
            .map_err(|e| BlockError::whole(format!("RSA public key: {e}")))
    }

    /// Check that the private fields belong to the public key, as pluto's
    /// RSA private key sanity check does: Prime1 × Prime2 = Modulus,
    /// Exponent1 = PrivateExponent mod (Prime1 − 1), Exponent2 likewise,
    /// Coefficient × Prime2 ≡ 1 (mod Prime1), and PublicExponent ×
    /// PrivateExponent ≡ 1 modulo both Prime1 − 1 and Prime2 − 1.
    ///
    /// Blocks whose private fields hold a placeholder (Libreswan's NSS
    /// era wrote a CKA_ID there) fail the first test.
    pub fn check_consistency(&self) -> Result<(), BlockError> {
        // Bound the arithmetic below: no private field can be longer than the modulus.
        let modulus_len = self.public.modulus().len();
        let private_fields = [
            &self.private_exponent,
            &self.prime1,
            &self.prime2,
            &self.exponent1,
            &self.exponent2,
            &self.coefficient,
        ];
        if private_fields
            .iter()
            .any(|field| field.expose_bytes().len() > modulus_len)
        {
            return Err(BlockError::whole(
                "RSA key: a private field is longer than the Modulus",
            ));
        }
        let one = BigUint::from(1u8);
        let n = BigUint::from_bytes_be(self.public.modulus());
        let e = BigUint::from_bytes_be(self.public.exponent());
        let d = Zeroizing::new(self.private_exponent.to_biguint());
        let p = Zeroizing::new(self.prime1.to_biguint());
        let q = Zeroizing::new(self.prime2.to_biguint());
        if *p <= one || *q <= one {
            return Err(BlockError::whole(
                "RSA key: Prime1 and Prime2 must be greater than 1",
            ));
        }
        if &*p * &*q != n {
            return Err(BlockError::whole(
                "RSA key: Prime1 × Prime2 is not the Modulus (the private fields do not belong to this key; \
                 blocks holding an NSS CKA_ID instead of the private key are not supported)",
            ));
        }
        let p_minus_1 = Zeroizing::new(&*p - &one);
        let q_minus_1 = Zeroizing::new(&*q - &one);
        if *Zeroizing::new(&*d % &*p_minus_1) != *Zeroizing::new(self.exponent1.to_biguint()) {
            return Err(BlockError::whole(
                "RSA key: Exponent1 is not PrivateExponent mod (Prime1 - 1)",
            ));
        }
        if *Zeroizing::new(&*d % &*q_minus_1) != *Zeroizing::new(self.exponent2.to_biguint()) {
            return Err(BlockError::whole(
                "RSA key: Exponent2 is not PrivateExponent mod (Prime2 - 1)",
            ));
        }
        let d_times_e = Zeroizing::new(&*d * &e);
        if *Zeroizing::new(&*d_times_e % &*p_minus_1) != one
            || *Zeroizing::new(&*d_times_e % &*q_minus_1) != one
        {
            return Err(BlockError::whole(
                "RSA key: PrivateExponent is not the inverse of PublicExponent",
            ));
        }
        let coefficient = Zeroizing::new(self.coefficient.to_biguint());
        if *Zeroizing::new((&*coefficient * &*q) % &*p) != one {
            return Err(BlockError::whole(
                "RSA key: Coefficient is not the inverse of Prime2 mod Prime1",
            ));
        }
        Ok(())
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    pub fn private_exponent(&self) -> &SecretNumber {
        &self.private_exponent
    }
    pub fn prime1(&self) -> &SecretNumber {
        &self.prime1
    }
    pub fn prime2(&self) -> &SecretNumber {
        &self.prime2
    }
    pub fn exponent1(&self) -> &SecretNumber {
        &self.exponent1
    }
    pub fn exponent2(&self) -> &SecretNumber {
        &self.exponent2
    }
    pub fn coefficient(&self) -> &SecretNumber {
        &self.coefficient
    }
}

/// Render the whole `: RSA {` … `}` block as `ipsec rsasigkey` writes it.
/// `hostname` and `date` go into the first comment line (callers pass
/// e.g. the output of `hostname` and a ctime-style date).
pub fn render_rsa_block(key: &RsaPrivateKey, hostname: &str, date: &str) -> Zeroizing<String> {
    let public = key.public_key();
    let hex = |n: &SecretNumber| Zeroizing::new(encoding::encode_hex_prefixed(n.expose_bytes()));
    let mut out = Zeroizing::new(String::with_capacity(64 + public.modulus().len() * 10));
    let mut push = |line: &str| {
        out.push_str(line);
        out.push('\n');
    };
    push(": RSA\t{");
    push(&format!(
        "\t# RSA {} bits   {}   {}",
        public.modulus_bits(),
        hostname,
        date
    ));
    push("\t# for signatures only, UNSAFE FOR ENCRYPTION");
    push(&format!("\t#pubkey={}", public.to_rfc3110_base64()));
    push(&format!(
        "\tModulus: {}",
        encoding::encode_hex_prefixed(public.modulus())
    ));
    push(&format!(
        "\tPublicExponent: {}",
        encoding::encode_hex_prefixed(public.exponent())
    ));
    push("\t# everything after this point is secret");
    for (name, value) in [
        ("PrivateExponent", &key.private_exponent),
        ("Prime1", &key.prime1),
        ("Prime2", &key.prime2),
        ("Exponent1", &key.exponent1),
        ("Exponent2", &key.exponent2),
        ("Coefficient", &key.coefficient),
    ] {
        let line = Zeroizing::new(format!("\t{}: {}", name, hex(value).as_str()));
        push(&line);
    }
    push("\t}");
    push("# do not change the indenting of that \"}\"");
    out
}

/// Parse a block written as text: either the whole `: RSA {` … `}` entry
/// or only the lines between the braces. Comment lines (`#…`) and blank
/// lines are skipped. On error returns the 1-based line number within
/// `text` when the error concerns one line. Checks consistency too.
pub fn parse_rsa_block(text: &str) -> Result<RsaPrivateKey, (Option<usize>, BlockError)> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    let mut field_lines: Vec<usize> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw_line.trim();
        let line = line.strip_prefix(':').map(str::trim_start).unwrap_or(line);
        let line = match line.get(..3) {
            Some(word) if word.eq_ignore_ascii_case("rsa") => {
                line.get(3..).unwrap_or("").trim_start()
            }
            _ => line,
        };
        if line.is_empty() || line.starts_with('#') || line == "{" || line == "}" {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err((
                Some(line_number),
                BlockError::whole("expected `Name: value` in RSA key block"),
            ));
        };
        fields.push((name, value));
        field_lines.push(line_number);
    }
    let key = RsaPrivateKey::from_fields(&fields)
        .map_err(|e| (e.field_index.and_then(|i| field_lines.get(i).copied()), e))?;
    key.check_consistency().map_err(|e| (None, e))?;
    Ok(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// FreeS/WAN 2001 test key (public exponent 3) from the Libreswan test tree.
    const CASSIDY_BLOCK: &str = include_str!("../testdata/cassidy-e3.block");

    #[test]
    fn parses_freeswan_exponent_3_key() {
        let key = parse_rsa_block(CASSIDY_BLOCK).unwrap();
        assert_eq!(key.public_key().exponent(), &[3]);
        assert_eq!(key.public_key().keyid(), "AQN3cn11F");
        let pubkey_comment = CASSIDY_BLOCK
            .lines()
            .find_map(|l| l.trim().strip_prefix("#pubkey="))
            .unwrap();
        assert_eq!(key.public_key().to_rfc3110_base64(), pubkey_comment);
    }

    #[test]
    fn render_then_parse_is_identity() {
        let key = parse_rsa_block(CASSIDY_BLOCK).unwrap();
        let text = render_rsa_block(&key, "cassidy", "Fri Aug 24 16:10:10 2001");
        assert!(
            text.starts_with(": RSA\t{\n\t# RSA 2047 bits   cassidy   Fri Aug 24 16:10:10 2001\n")
        );
        assert!(text.contains("\tPublicExponent: 0x03\n"));
        assert!(text.ends_with("\t}\n# do not change the indenting of that \"}\"\n"));
        let again = parse_rsa_block(&text).unwrap();
        assert_eq!(again, key);
    }

    #[test]
    fn debug_hides_secrets() {
        let key = parse_rsa_block(CASSIDY_BLOCK).unwrap();
        let shown = format!("{key:?} {:?}", key.prime1());
        assert!(shown.contains("<redacted>"));
        assert!(!shown.to_lowercase().contains("e9980c43"), "{shown}");
    }

    #[test]
    fn field_errors_name_lines() {
        let (line, err) = parse_rsa_block("Modulus: 0x03\nBogus: 0x01\n").unwrap_err();
        assert_eq!(line, Some(2));
        assert_eq!(err.message, "unknown RSA key field \"Bogus\"");
        let (line, err) = parse_rsa_block("Modulus: 0x03\nModulus: 0x03\n").unwrap_err();
        assert_eq!(
            (line, err.message.as_str()),
            (Some(2), "RSA key field Modulus given twice")
        );
        let (line, err) = parse_rsa_block("PublicExponent: 0xq\n").unwrap_err();
        assert_eq!(line, Some(1));
        assert!(err
            .message
            .starts_with("RSA key field PublicExponent: not valid hex"));
        let (line, err) = parse_rsa_block("PublicExponent: 0x03\nPrime1: 0x03\n").unwrap_err();
        assert_eq!(
            (line, err.message.as_str()),
            (None, "RSA key block lacks the Modulus field")
        );
        let (_, err) = parse_rsa_block("PublicExponent: 0x03\nModulus: 0x03\n").unwrap_err();
        assert!(err
            .message
            .starts_with("RSA key block holds only the public key"));
    }

    #[test]
    fn placeholder_private_fields_are_inconsistent() {
        let mut text = String::new();
        for line in CASSIDY_BLOCK.lines() {
            let trimmed = line.trim();
            let placeholder = [
                "PrivateExponent:",
                "Prime1:",
                "Prime2:",
                "Exponent1:",
                "Exponent2:",
                "Coefficient:",
            ]
            .iter()
            .any(|f| trimmed.starts_with(f));
            if placeholder {
                let name = trimmed.split_whitespace().next().unwrap();
                text.push_str(&format!(
                    "\t{name} 0x61559973d3acef7d3a370e3e82ad92c18a8225f1\n"
                ));
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        let (_, err) = parse_rsa_block(&text).unwrap_err();
        assert!(
            err.message
                .starts_with("RSA key: Prime1 × Prime2 is not the Modulus"),
            "{}",
            err.message
        );
    }
}
