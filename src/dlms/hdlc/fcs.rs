//! CRC-16/X.25 (ISO/IEC 13239; IEC 62056-46 clause 6.4.4.10): polynomial 0x1021 reflected,
//! initial value 0xFFFF, final XOR 0xFFFF, transmitted least significant byte first.

const fn make_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u16; 256] = make_table();

/// The check sequence of `data`, as the value to send little-endian.
pub fn fcs16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc = (crc >> 8) ^ TABLE[((crc ^ u16::from(b)) & 0xFF) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        // The catalogue check value of CRC-16/X.25 ("123456789" -> 0x906E).
        assert_eq!(fcs16(b"123456789"), 0x906E);
    }

    #[test]
    fn gurux_snrm_frame_checks() {
        // SNRM captured from gurux-dlms: 7E A0 07 03 21 93 | 0F 01 | 7E
        assert_eq!(
            fcs16(&[0xA0, 0x07, 0x03, 0x21, 0x93]).to_le_bytes(),
            [0x0F, 0x01]
        );
    }
}
