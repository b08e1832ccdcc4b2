//! CBC encryption of IKEv1 message bodies (RFC 2409 Appendix B): 3DES-CBC and AES-CBC.
//! The caller keeps the IV chain: the next IV is the last ciphertext block.

use super::CryptoError;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ipc::ike::IkeEncr;
use zeroize::Zeroizing;

/// A phase-1 cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Cipher {
    TripleDes,
    Aes { key_bits: u16 },
}

impl V1Cipher {
    /// The cipher for an `ike=` encryption, if IKEv1 can use it.
    pub fn of(e: IkeEncr) -> Option<Self> {
        match e {
            IkeEncr::TripleDesCbc => Some(V1Cipher::TripleDes),
            IkeEncr::AesCbc { key_bits } if matches!(key_bits, 128 | 192 | 256) => {
                Some(V1Cipher::Aes { key_bits })
            }
            _ => None,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            V1Cipher::TripleDes => 24,
            V1Cipher::Aes { key_bits } => usize::from(key_bits / 8),
        }
    }

    pub fn block_len(self) -> usize {
        match self {
            V1Cipher::TripleDes => 8,
            V1Cipher::Aes { .. } => 16,
        }
    }

    /// Encrypt `plain`, padded with zero bytes to a whole number of blocks (no padding when it is
    /// aligned already, as pluto does).
    pub fn encrypt(self, key: &[u8], iv: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let bs = self.block_len();
        let mut buf = plain.to_vec();
        let rem = buf.len() % bs;
        if rem != 0 || buf.is_empty() {
            buf.resize(buf.len() + (bs - rem), 0);
        }
        let n = buf.len();
        macro_rules! enc {
            ($c:ty) => {{
                let e = cbc::Encryptor::<$c>::new_from_slices(key, iv)
                    .map_err(|_| CryptoError::BadKeyLength)?;
                e.encrypt_padded_mut::<NoPadding>(&mut buf, n)
                    .map_err(|_| CryptoError::BadCiphertextLength(n, bs))?;
            }};
        }
        match self {
            V1Cipher::TripleDes => enc!(des::TdesEde3),
            V1Cipher::Aes { key_bits: 128 } => enc!(aes::Aes128),
            V1Cipher::Aes { key_bits: 192 } => enc!(aes::Aes192),
            V1Cipher::Aes { key_bits: 256 } => enc!(aes::Aes256),
            V1Cipher::Aes { .. } => return Err(CryptoError::BadKeyLength),
        }
        Ok(buf)
    }

    /// Decrypt a body; its length must be a positive multiple of the block size. Padding is left
    /// in place (the payload chain's lengths say where the message ends).
    pub fn decrypt(
        self,
        key: &[u8],
        iv: &[u8],
        ct: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let bs = self.block_len();
        if ct.is_empty() || !ct.len().is_multiple_of(bs) {
            return Err(CryptoError::BadCiphertextLength(ct.len(), bs));
        }
        let mut buf = Zeroizing::new(ct.to_vec());
        macro_rules! dec {
            ($c:ty) => {{
                let d = cbc::Decryptor::<$c>::new_from_slices(key, iv)
                    .map_err(|_| CryptoError::BadKeyLength)?;
                d.decrypt_padded_mut::<NoPadding>(&mut buf)
                    .map_err(|_| CryptoError::BadCiphertextLength(ct.len(), bs))?;
            }};
        }
        match self {
            V1Cipher::TripleDes => dec!(des::TdesEde3),
            V1Cipher::Aes { key_bits: 128 } => dec!(aes::Aes128),
            V1Cipher::Aes { key_bits: 192 } => dec!(aes::Aes192),
            V1Cipher::Aes { key_bits: 256 } => dec!(aes::Aes256),
            V1Cipher::Aes { .. } => return Err(CryptoError::BadKeyLength),
        }
        Ok(buf)
    }

    /// The last block of a ciphertext: the next IV of the chain.
    pub fn last_block(self, ct: &[u8]) -> Vec<u8> {
        let bs = self.block_len();
        ct.get(ct.len().saturating_sub(bs)..)
            .unwrap_or(&[])
            .to_vec()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3602 §4 case 1 (AES-128-CBC, one block).
    #[test]
    fn aes_rfc3602_case1() {
        let c = V1Cipher::Aes { key_bits: 128 };
        let key = hex("06a9214036b8a15b512e03d534120006");
        let iv = hex("3dafba429d9eb430b422da802c9fac41");
        let ct = c.encrypt(&key, &iv, b"Single block msg").unwrap();
        assert_eq!(ct, hex("e353779c1079aeb82708942dbe77181a"));
        assert_eq!(&c.decrypt(&key, &iv, &ct).unwrap()[..], b"Single block msg");
        assert_eq!(c.last_block(&ct), ct);
    }

    #[test]
    fn round_trips_and_pads() {
        for c in [
            V1Cipher::TripleDes,
            V1Cipher::Aes { key_bits: 128 },
            V1Cipher::Aes { key_bits: 192 },
            V1Cipher::Aes { key_bits: 256 },
        ] {
            let key = vec![7u8; c.key_len()];
            let iv = vec![9u8; c.block_len()];
            let ct = c.encrypt(&key, &iv, b"hello world").unwrap();
            assert_eq!(ct.len() % c.block_len(), 0);
            let pt = c.decrypt(&key, &iv, &ct).unwrap();
            assert_eq!(&pt[..11], b"hello world");
            assert!(pt[11..].iter().all(|b| *b == 0));
            assert!(c.decrypt(&key, &iv, &ct[1..]).is_err());
            assert!(c.decrypt(&key, &iv, &[]).is_err());
            assert!(c.encrypt(&key[1..], &iv, b"x").is_err());
        }
    }

    /// 3DES-CBC against OpenSSL (an independent implementation).
    #[test]
    fn tdes_matches_openssl() {
        let key = hex("0123456789abcdef23456789abcdef01456789abcdef0123");
        let iv = hex("1234567890abcdef");
        let pt = b"The quick brown fox jumps over t";
        let ours = V1Cipher::TripleDes.encrypt(&key, &iv, pt).unwrap();
        let mut c = openssl::symm::Crypter::new(
            openssl::symm::Cipher::des_ede3_cbc(),
            openssl::symm::Mode::Encrypt,
            &key,
            Some(&iv),
        )
        .unwrap();
        c.pad(false);
        let mut out = vec![0u8; pt.len() + 8];
        let n = c.update(pt, &mut out).unwrap();
        let m = c.finalize(&mut out[n..]).unwrap();
        out.truncate(n + m);
        assert_eq!(ours, out);
    }
}
