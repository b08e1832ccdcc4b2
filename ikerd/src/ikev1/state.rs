//! State names and numbers, as pluto prints them.

/// An ISAKMP (phase 1) state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MmState {
    /// Initiator: MI1 sent, expecting MR1.
    MainI1,
    /// Initiator: MI2 sent, expecting MR2.
    MainI2,
    /// Initiator: MI3 sent, expecting MR3.
    MainI3,
    /// Initiator: ISAKMP SA established.
    MainI4,
    /// Responder: MR1 sent, expecting MI2.
    MainR1,
    /// Responder: MR2 sent, expecting MI3.
    MainR2,
    /// Responder: ISAKMP SA established.
    MainR3,
}

impl MmState {
    pub fn name(self) -> &'static str {
        match self {
            MmState::MainI1 => "STATE_MAIN_I1",
            MmState::MainI2 => "STATE_MAIN_I2",
            MmState::MainI3 => "STATE_MAIN_I3",
            MmState::MainI4 => "STATE_MAIN_I4",
            MmState::MainR1 => "STATE_MAIN_R1",
            MmState::MainR2 => "STATE_MAIN_R2",
            MmState::MainR3 => "STATE_MAIN_R3",
        }
    }

    pub fn established(self) -> bool {
        matches!(self, MmState::MainI4 | MmState::MainR3)
    }
}

impl std::fmt::Display for MmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Quick Mode (phase 2) state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QmState {
    /// Initiator: QI1 sent, expecting QR1.
    QuickI1,
    /// Initiator: QI2 sent, IPsec SA established.
    QuickI2,
    /// Responder: QR1 sent, inbound SA installed, expecting QI2.
    QuickR1,
    /// Responder: IPsec SA established.
    QuickR2,
}

impl QmState {
    pub fn name(self) -> &'static str {
        match self {
            QmState::QuickI1 => "STATE_QUICK_I1",
            QmState::QuickI2 => "STATE_QUICK_I2",
            QmState::QuickR1 => "STATE_QUICK_R1",
            QmState::QuickR2 => "STATE_QUICK_R2",
        }
    }

    pub fn established(self) -> bool {
        matches!(self, QmState::QuickI2 | QmState::QuickR2)
    }
}

impl std::fmt::Display for QmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
