//! MODP Diffie-Hellman (RFC 2409 groups 1 and 2, RFC 3526 groups 5 and 14–18) through OpenSSL.
//!
//! The private exponent comes from the engine's random source and is flagged constant-time, so
//! OpenSSL's `BN_mod_exp` takes its constant-time Montgomery path (DESIGN-NOTES §3). Public values
//! and the shared secret are left-padded to the length of the prime, as IKE requires.

use super::CryptoError;
use ipc::ike::DhGroup;
use openssl::bn::{BigNum, BigNumContext};
use zeroize::Zeroizing;

/// Is `g` one of the groups this module can do?
pub fn supported(g: DhGroup) -> bool {
    prime(g).is_ok()
}

fn prime(g: DhGroup) -> Result<BigNum, CryptoError> {
    Ok(match g {
        DhGroup::Modp768 => BigNum::get_rfc2409_prime_768()?,
        DhGroup::Modp1024 => BigNum::get_rfc2409_prime_1024()?,
        DhGroup::Modp1536 => BigNum::get_rfc3526_prime_1536()?,
        DhGroup::Modp2048 => BigNum::get_rfc3526_prime_2048()?,
        DhGroup::Modp3072 => BigNum::get_rfc3526_prime_3072()?,
        DhGroup::Modp4096 => BigNum::get_rfc3526_prime_4096()?,
        DhGroup::Modp6144 => BigNum::get_rfc3526_prime_6144()?,
        DhGroup::Modp8192 => BigNum::get_rfc3526_prime_8192()?,
        other => return Err(CryptoError::UnsupportedGroup(other.number())),
    })
}

/// Private exponent length in bits: the upper end of RFC 3526 §8's estimates (at least 256).
fn exponent_bits(g: DhGroup) -> usize {
    match g {
        DhGroup::Modp2048 => 320,
        DhGroup::Modp3072 => 420,
        DhGroup::Modp4096 => 480,
        DhGroup::Modp6144 => 540,
        DhGroup::Modp8192 => 620,
        _ => 256,
    }
}

/// The length of a group's public values and shared secret in bytes, if supported.
pub fn public_len(g: DhGroup) -> Option<usize> {
    prime(g)
        .ok()
        .and_then(|p| usize::try_from(p.num_bytes()).ok())
}

/// One side's ephemeral key pair.
pub struct DhPrivate {
    group: DhGroup,
    p: BigNum,
    x: BigNum,
    public: Vec<u8>,
}

impl std::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhPrivate({:?}, <redacted>)", self.group)
    }
}

impl DhPrivate {
    /// A fresh key pair; the exponent is drawn from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn rand::RngCore) -> Result<Self, CryptoError> {
        let p = prime(group)?;
        let len = usize::try_from(p.num_bytes()).map_err(|_| CryptoError::BadKeyLength)?;
        let mut xb = Zeroizing::new(vec![0u8; exponent_bits(group).div_ceil(8)]);
        loop {
            rng.fill_bytes(&mut xb);
            if xb.iter().any(|b| *b != 0) {
                break;
            }
        }
        let mut x = BigNum::new_secure()?;
        x.copy_from_slice(&xb)?;
        x.set_const_time();
        let g = BigNum::from_u32(2)?;
        let mut ctx = BigNumContext::new_secure()?;
        let mut y = BigNum::new()?;
        y.mod_exp(&g, &x, &p, &mut ctx)?;
        let public = y.to_vec_padded(i32::try_from(len).map_err(|_| CryptoError::BadKeyLength)?)?;
        Ok(DhPrivate {
            group,
            p,
            x,
            public,
        })
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// g^x mod p, padded to the prime's length (the KE payload body).
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// g^xy from the peer's public value. The value must have the prime's length and lie in
    /// [2, p-2] (RFC 2631 §2.1.5's range check, as strongSwan and pluto do).
    pub fn shared(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let len = self.public.len();
        if peer.len() != len {
            return Err(CryptoError::BadPublicValue("wrong length"));
        }
        let y = BigNum::from_slice(peer)?;
        let one = BigNum::from_u32(1)?;
        let mut pm1 = BigNum::new()?;
        pm1.checked_sub(&self.p, &one)?;
        if y.ucmp(&one) != std::cmp::Ordering::Greater || y.ucmp(&pm1) != std::cmp::Ordering::Less {
            return Err(CryptoError::BadPublicValue("outside 2..p-2"));
        }
        let mut ctx = BigNumContext::new_secure()?;
        let mut z = BigNum::new_secure()?;
        z.mod_exp(&y, &self.x, &self.p, &mut ctx)?;
        let out = z.to_vec_padded(i32::try_from(len).map_err(|_| CryptoError::BadKeyLength)?)?;
        Ok(Zeroizing::new(out))
    }
}

impl Drop for DhPrivate {
    fn drop(&mut self) {
        // BN_clear_free (BigNum's drop) wipes the exponent.
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn both_sides_agree_for_every_modp_group() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for g in [
            DhGroup::Modp768,
            DhGroup::Modp1024,
            DhGroup::Modp1536,
            DhGroup::Modp2048,
            DhGroup::Modp3072,
            DhGroup::Modp4096,
            DhGroup::Modp6144,
            DhGroup::Modp8192,
        ] {
            let a = DhPrivate::generate(g, &mut rng).unwrap();
            let b = DhPrivate::generate(g, &mut rng).unwrap();
            let len = public_len(g).unwrap();
            assert_eq!(a.public().len(), len);
            let s1 = a.shared(b.public()).unwrap();
            let s2 = b.shared(a.public()).unwrap();
            assert_eq!(*s1, *s2, "{g:?}");
            assert_eq!(s1.len(), len);
        }
        assert!(!supported(DhGroup::Ecp256));
    }

    /// Cross-check against an independent formulation: OpenSSL's own DH with the same prime and
    /// private key, and a small square-and-multiply with BigNum arithmetic.
    #[test]
    fn matches_independent_modexp() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let a = DhPrivate::generate(DhGroup::Modp1024, &mut rng).unwrap();
        let b = DhPrivate::generate(DhGroup::Modp1024, &mut rng).unwrap();
        let p = BigNum::get_rfc2409_prime_1024().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        // Square and multiply over the exponent's bits.
        let base = BigNum::from_slice(b.public()).unwrap();
        let xbytes = a.x.to_vec();
        let mut acc = BigNum::from_u32(1).unwrap();
        for byte in xbytes {
            for i in (0..8).rev() {
                let mut sq = BigNum::new().unwrap();
                sq.mod_sqr(&acc, &p, &mut ctx).unwrap();
                acc = sq;
                if byte >> i & 1 == 1 {
                    let mut m = BigNum::new().unwrap();
                    m.mod_mul(&acc, &base, &p, &mut ctx).unwrap();
                    acc = m;
                }
            }
        }
        let want = acc.to_vec_padded(128).unwrap();
        assert_eq!(*a.shared(b.public()).unwrap(), want);
    }

    #[test]
    fn rejects_degenerate_public_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = DhPrivate::generate(DhGroup::Modp1024, &mut rng).unwrap();
        let mut one = vec![0u8; 128];
        one[127] = 1;
        assert!(a.shared(&one).is_err());
        assert!(a.shared(&[0u8; 128]).is_err());
        assert!(a.shared(&[0xffu8; 128]).is_err());
        assert!(a.shared(&[2u8; 127]).is_err());
        let p = BigNum::get_rfc2409_prime_1024().unwrap().to_vec();
        assert!(a.shared(&p).is_err());
    }
}
