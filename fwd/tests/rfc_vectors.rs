//! ESP packet known-answer tests through the public `EspSa` API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{hex, sa};
use fwd::esp::{EncAlg, EspError, IntegAlg, Mode};

struct Case {
    name: &'static str,
    key: &'static str,
    spi: u32,
    seq: u64,
    mode: Mode,
    next_header: u8,
    payload: &'static str,
    esp: &'static str,
}

// RFC 3602 §4, cases #5-#8: AES-128-CBC ESP packets without integrity
// (SPI / sequence number / IV / ciphertext as printed in the RFC; the payload
// is the original packet's data (transport, #5-#6) or the whole inner IP packet
// (tunnel, #7-#8)).
const RFC3602: &[Case] = &[
    Case {
        name: "RFC 3602 case 5 (transport, ICMP, 64 bytes)",
        key: "90d382b4 10eeba7a d938c46c ec1a82bf",
        spi: 0x4321,
        seq: 1,
        mode: Mode::Transport,
        next_header: 1,
        payload: "08000ebd a70a0000 8e9c083d b95b0700 08090a0b 0c0d0e0f 10111213 14151617
                  18191a1b 1c1d1e1f 20212223 24252627 28292a2b 2c2d2e2f 30313233 34353637",
        esp: "00004321 00000001 e96e8c08 ab465763 fd098d45 dd3ff893
              f663c25d 325c18c6 a9453e19 4e120849 a4870b66 cc6b9965 330013b4 898dc856
              a4699e52 3a55db08 0b59ec3a 8e4b7e52 775b07d1 db34ed9c 538ab50c 551b874a
              a269add0 47ad2d59 13ac19b7 cfbad4a6",
    },
    Case {
        name: "RFC 3602 case 6 (transport, ICMP, 28 bytes)",
        key: "90d382b4 10eeba7a d938c46c ec1a82bf",
        spi: 0x4321,
        seq: 8,
        mode: Mode::Transport,
        next_header: 1,
        payload: "0800b5e8 a80a0500 a69c083d 0b660e00 77777777 77777777 77777777",
        esp: "00004321 00000008 69d08df7 d203329d b093fc49 24e5bd80
              f5199588 1ec4e0c4 488987ce 742e8109 689bb379 d2d750c0 d915dca3 46a89f75",
    },
    Case {
        name: "RFC 3602 case 7 (tunnel, IPv4 ICMP, 84 bytes)",
        key: "01234567 89abcdef 01234567 89abcdef",
        spi: 0x8765,
        seq: 2,
        mode: Mode::Tunnel,
        next_header: 4,
        payload: "45000054 09040000 4001f988 c0a87b03 c0a87bc8 08009f76 a90a0100 b49c083d
                  02a20400 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f 20212223
                  24252627 28292a2b 2c2d2e2f 30313233 34353637",
        esp: "00008765 00000002 f4e76524 4f6407ad f13dc138 0f673f37
              773b5241 a4c44922 5e4f3ce5 ed611b0c 237ca96c f74a9301 3c1b0ea1 a0cf70f8
              e4ecaec7 8ac53aad 7a0f022b 859243c6 47752e94 a859352b 8a4d4d2d ecd136e5
              c177f132 ad3fbfb2 201ac990 4c74ee0a 109e0ca1 e4dfe9d5 a100b842 f1c22f0d",
    },
    Case {
        name: "RFC 3602 case 8 (tunnel, IPv4 ICMP, 68 bytes)",
        key: "01234567 89abcdef 01234567 89abcdef",
        spi: 0x8765,
        seq: 5,
        mode: Mode::Tunnel,
        next_header: 4,
        payload: "45000044 090c0000 4001f990 c0a87b03 c0a87bc8 0800d63c aa0a0200 c69c083d
                  a3de0300 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff
                  ffffffff",
        esp: "00008765 00000005 85d47224 b5f3dd5d 2101d4ea 8dffab22
              15b92683 819596a8 047232cc 00f7048f e45318e1 1f8a0f62 ede3c3fc 61203bb5
              0f980a08 c9843fd3 a1b06d5c 07ff9639 b7eb7dfb 3512e5de 435e7207 ed971ef3
              d2726d9b 5ef6affc 6d17a0de cbb13892",
    },
];

#[test]
fn rfc3602_open() {
    for c in RFC3602 {
        let mut rx = sa(c.spi, EncAlg::AesCbc128, IntegAlg::None, &hex(c.key), &[], false, c.mode);
        let mut pkt = hex(c.esp);
        let o = rx.open(&mut pkt).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(pkt[o.payload.clone()], hex(c.payload)[..], "{}", c.name);
        assert_eq!(o.next_header, c.next_header, "{}", c.name);
        assert_eq!(o.seq, c.seq);
        // the same packet again is a replay
        let mut again = hex(c.esp);
        assert_eq!(rx.open(&mut again), Err(EspError::Replay), "{}", c.name);
    }
}

#[test]
fn rfc3602_seal_is_byte_exact() {
    for c in RFC3602 {
        let mut tx = sa(c.spi, EncAlg::AesCbc128, IntegAlg::None, &hex(c.key), &[], false, c.mode);
        tx.set_tx_seq(c.seq - 1);
        let want = hex(c.esp);
        let payload = hex(c.payload);
        let head = tx.headroom();
        let mut buf = vec![0u8; head + payload.len() + tx.max_tailroom()];
        buf[head..head + payload.len()].copy_from_slice(&payload);
        let iv = want[8..24].to_vec();
        let r = tx.seal_with_iv(&mut buf, head..head + payload.len(), c.next_header, &iv).unwrap();
        assert_eq!(buf[r], want[..], "{}", c.name);
    }
}

// RFC 3686 §6 test vectors #1-#4 (AES-CTR keystream with nonce || IV ||
// counter from 1). ESP's ciphertext starts with the payload, so the first
// bytes of the sealed body must equal the RFC's ciphertext.
#[test]
fn rfc3686_ctr_keystream() {
    let cases = [
        (EncAlg::AesCtr128, "AE6852F8121067CC4BF7A5765577F39E", "00000030", "0000000000000000",
         "53696E676C6520626C6F636B206D7367", "E4095D4FB7A7B3792D6175A3261311B8"),
        (EncAlg::AesCtr128, "7E24067817FAE0D743D6CE1F32539163", "006CB6DB", "C0543B59DA48D90B",
         "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
         "5104A106168A72D9790D41EE8EDAD388EB2E1EFC46DA57C8FCE630DF9141BE28"),
        (EncAlg::AesCtr128, "7691BE035E5020A8AC6E618529F9A0DC", "00E0017B", "27777F3F4A1786F0",
         "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20212223",
         "C1CF48A89F2FFDD9CF4652E9EFDB72D74540A42BDE6D7836D59A5CEAAEF3105325B2072F"),
        (EncAlg::AesCtr192, "16AF5B145FC9F579C175F93E3BFB0EED863D06CCFDB78515", "00000048", "36733C147D6D93CB",
         "53696E676C6520626C6F636B206D7367", "4B55384FE259C9C84E7935A003CBE928"),
    ];
    for (enc, key, nonce, iv, pt, ct) in cases {
        let mut k = hex(key);
        k.extend_from_slice(&hex(nonce));
        let mut tx = sa(1, enc, IntegAlg::HmacSha256_128, &k, &[5; 32], false, Mode::Transport);
        let mut rx = sa(1, enc, IntegAlg::HmacSha256_128, &k, &[5; 32], false, Mode::Transport);
        let pt = hex(pt);
        let head = tx.headroom();
        let mut buf = vec![0u8; head + pt.len() + tx.max_tailroom()];
        buf[head..head + pt.len()].copy_from_slice(&pt);
        let r = tx.seal_with_iv(&mut buf, head..head + pt.len(), 17, &hex(iv)).unwrap();
        let mut pkt = buf[r].to_vec();
        assert_eq!(pkt[16..16 + pt.len()], hex(ct)[..]);
        let o = rx.open(&mut pkt).unwrap();
        assert_eq!(pkt[o.payload], pt[..]);
    }
}
