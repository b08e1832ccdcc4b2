//! Traffic selector payloads TSi / TSr (RFC 7296 §3.13).

use super::enums::TsType;
use crate::msgs::codec::{
    patch_u16_len, placeholder_u16, put_u16, Codec, DecodeError, MAX_SELECTORS,
};
use crate::msgs::reader::Reader;
use std::net::IpAddr;

/// One traffic selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE / TS_IPV6_ADDR_RANGE; both addresses of the
    /// same family.
    Range {
        /// IP protocol (0 = any).
        ip_protocol: u8,
        /// Start port.
        start_port: u16,
        /// End port.
        end_port: u16,
        /// Start address.
        start: IpAddr,
        /// End address.
        end: IpAddr,
    },
    /// Any other TS type, body kept raw (after type and length).
    Other {
        /// TS type.
        ts_type: TsType,
        /// Body.
        data: Vec<u8>,
    },
}

impl Codec for TrafficSelector {
    fn encode(&self, out: &mut Vec<u8>) {
        let start_at = out.len();
        match self {
            TrafficSelector::Range {
                ip_protocol,
                start_port,
                end_port,
                start,
                end,
            } => {
                let v6 = start.is_ipv6();
                out.push(if v6 {
                    TsType::IPV6_ADDR_RANGE.0
                } else {
                    TsType::IPV4_ADDR_RANGE.0
                });
                out.push(*ip_protocol);
                let at = placeholder_u16(out);
                put_u16(out, *start_port);
                put_u16(out, *end_port);
                for a in [start, end] {
                    match a {
                        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
                    }
                }
                patch_u16_len(out, at, start_at);
            }
            TrafficSelector::Other { ts_type, data } => {
                out.push(ts_type.0);
                out.push(0);
                let at = placeholder_u16(out);
                out.extend_from_slice(data);
                patch_u16_len(out, at, start_at);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ts_type = TsType(r.u8("TS type")?);
        let proto = r.u8("TS ip protocol")?;
        let len = usize::from(r.u16("TS length")?);
        if len < 4 {
            return Err(DecodeError::BadLength {
                what: "traffic selector",
                len,
            });
        }
        let mut b = r.sub(len - 4, "traffic selector")?;
        let alen = match ts_type {
            TsType::IPV4_ADDR_RANGE => 4,
            TsType::IPV6_ADDR_RANGE => 16,
            _ => {
                if proto != 0 {
                    return Err(DecodeError::Invalid {
                        what: "unknown TS byte 2",
                        value: u64::from(proto),
                    });
                }
                return Ok(TrafficSelector::Other {
                    ts_type,
                    data: b.rest().to_vec(),
                });
            }
        };
        let start_port = b.u16("TS start port")?;
        let end_port = b.u16("TS end port")?;
        let (start, end) = if alen == 4 {
            (
                IpAddr::from(b.array::<4>("TS start")?),
                IpAddr::from(b.array::<4>("TS end")?),
            )
        } else {
            (
                IpAddr::from(b.array::<16>("TS start")?),
                IpAddr::from(b.array::<16>("TS end")?),
            )
        };
        b.expect_empty("traffic selector")?;
        Ok(TrafficSelector::Range {
            ip_protocol: proto,
            start_port,
            end_port,
            start,
            end,
        })
    }
}

/// TSi / TSr payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsPayload {
    /// Selectors.
    pub selectors: Vec<TrafficSelector>,
}

impl Codec for TsPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.selectors.len().min(MAX_SELECTORS);
        out.extend_from_slice(&[u8::try_from(n).unwrap_or(u8::MAX), 0, 0, 0]);
        for s in self.selectors.iter().take(n) {
            s.encode(out);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = usize::from(r.u8("TS count")?);
        let _reserved = r.take(3, "TS reserved")?;
        let mut selectors = Vec::with_capacity(n);
        for _ in 0..n {
            selectors.push(TrafficSelector::read(r)?);
        }
        r.expect_empty("TS payload")?;
        Ok(TsPayload { selectors })
    }
}
