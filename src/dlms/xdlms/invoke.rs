//! Invoke-Id-And-Priority (Green Book 9.5, "Invoke-Id-And-Priority"): one byte,
//! bits 0-3 invoke id, bits 4-5 reserved, bit 6 service class (1 = confirmed),
//! bit 7 priority (1 = high). It is not a 0..255 counter.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvokeIdAndPriority(pub u8);

impl InvokeIdAndPriority {
    const CONFIRMED: u8 = 0x40;
    const HIGH_PRIORITY: u8 = 0x80;

    pub fn new(invoke_id: u8, confirmed: bool, high_priority: bool) -> Self {
        let mut b = invoke_id & 0x0F;
        if confirmed {
            b |= Self::CONFIRMED;
        }
        if high_priority {
            b |= Self::HIGH_PRIORITY;
        }
        InvokeIdAndPriority(b)
    }

    pub fn invoke_id(self) -> u8 {
        self.0 & 0x0F
    }

    pub fn is_confirmed(self) -> bool {
        self.0 & Self::CONFIRMED != 0
    }

    pub fn is_high_priority(self) -> bool {
        self.0 & Self::HIGH_PRIORITY != 0
    }

    /// The same flags with the next invoke id (wrapping 15 -> 0).
    pub fn next(self) -> Self {
        InvokeIdAndPriority((self.0 & 0xF0) | ((self.0 + 1) & 0x0F))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gurux_default_byte() {
        // gurux-dlms sends 0xC1: high priority, confirmed, invoke id 1.
        let iip = InvokeIdAndPriority::new(1, true, true);
        assert_eq!(iip.0, 0xC1);
        assert_eq!(InvokeIdAndPriority(0xC1).invoke_id(), 1);
        assert!(iip.is_confirmed() && iip.is_high_priority());
        assert_eq!(InvokeIdAndPriority(0xCF).next().0, 0xC0);
        assert_eq!(InvokeIdAndPriority::new(0x1F, false, false).0, 0x0F);
    }
}
