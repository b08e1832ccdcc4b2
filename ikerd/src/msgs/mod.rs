//! ISAKMP/IKEv1 and IKEv2 message codecs (owned by the IKE codec work).
