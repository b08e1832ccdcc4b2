//! Authentication payload (RFC 7296 §3.8) and the RFC 7427 digital
//! signature form.

use super::enums::AuthMethod;
use crate::msgs::codec::{Codec, DecodeError};
use crate::msgs::reader::Reader;

/// AUTH payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPayload {
    /// Method.
    pub method: AuthMethod,
    /// Authentication data.
    pub data: Vec<u8>,
}

/// RFC 7427 §3 authentication data: ASN.1 AlgorithmIdentifier (with a
/// one-byte length) followed by the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalSignature<'a> {
    /// DER AlgorithmIdentifier.
    pub algorithm: &'a [u8],
    /// Signature value.
    pub signature: &'a [u8],
}

impl AuthPayload {
    /// Split RFC 7427 authentication data (method 14).
    pub fn digital_signature(&self) -> Result<DigitalSignature<'_>, DecodeError> {
        if self.method != AuthMethod::DIGITAL_SIGNATURE {
            return Err(DecodeError::Invalid {
                what: "auth method for digital signature",
                value: u64::from(self.method.0),
            });
        }
        let mut r = Reader::new(&self.data);
        let n = usize::from(r.u8("ASN.1 length")?);
        let algorithm = r.take(n, "AlgorithmIdentifier")?;
        Ok(DigitalSignature {
            algorithm,
            signature: r.rest(),
        })
    }

    /// Build an RFC 7427 AUTH payload.
    pub fn new_digital_signature(algorithm: &[u8], signature: &[u8]) -> Option<Self> {
        let n = u8::try_from(algorithm.len()).ok()?;
        let mut data = Vec::with_capacity(1 + algorithm.len() + signature.len());
        data.push(n);
        data.extend_from_slice(algorithm);
        data.extend_from_slice(signature);
        Some(AuthPayload {
            method: AuthMethod::DIGITAL_SIGNATURE,
            data,
        })
    }
}

impl Codec for AuthPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.method.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let method = AuthMethod(r.u8("auth method")?);
        let _reserved = r.take(3, "auth reserved")?;
        Ok(AuthPayload {
            method,
            data: r.rest().to_vec(),
        })
    }
}
