//! The storage formats a tensor can have and their byte sizes.

/// Storage format of one tensor.
///
/// The numeric codes are part of the `.eddy` file format (see
/// `runtime/FORMAT.md`) and never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorFormat {
    /// IEEE-754 binary32, little-endian.
    F32,
    /// IEEE-754 binary16, little-endian.
    F16,
    /// 8-bit codes in groups with an f16 scale and minimum per group.
    W8 {
        /// Weights per group (32, 64, 128 or 256).
        group: u32,
    },
    /// 4-bit codes in groups with an f16 scale and minimum per group.
    W4 {
        /// Weights per group.
        group: u32,
    },
    /// 2-bit codes in groups with an f16 scale and minimum per group.
    W2 {
        /// Weights per group.
        group: u32,
    },
}

/// A format code or shape that cannot describe a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The format code is not one this version knows.
    UnknownFormat(u32),
    /// The format parameter (e.g. group size) is invalid for this format.
    BadParameter {
        /// Format code.
        code: u32,
        /// The offending parameter.
        param: u32,
    },
    /// Columns are not a multiple of the group size.
    RaggedGroup {
        /// Columns of the tensor.
        cols: u64,
        /// Group size of the format.
        group: u32,
    },
    /// The byte size of the tensor does not fit in 64 bits.
    SizeOverflow,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::UnknownFormat(c) => write!(f, "unknown tensor format code {c}"),
            FormatError::BadParameter { code, param } => {
                write!(f, "invalid parameter {param} for tensor format code {code}")
            }
            FormatError::RaggedGroup { cols, group } => write!(
                f,
                "{cols} columns are not a multiple of the group size {group}; choose a group size that divides the columns"
            ),
            FormatError::SizeOverflow => write!(f, "tensor byte size overflows 64 bits"),
        }
    }
}

/// Group sizes the integer formats accept.
pub const GROUP_SIZES: [u32; 4] = [32, 64, 128, 256];

/// Bytes of per-group header: f16 scale + f16 minimum.
pub const GROUP_HEADER_BYTES: usize = 4;

impl TensorFormat {
    /// Decode a format from its file code and parameter.
    pub fn from_code(code: u32, param: u32) -> Result<Self, FormatError> {
        let group_ok = GROUP_SIZES.contains(&param);
        match (code, param) {
            (0, 0) => Ok(TensorFormat::F32),
            (1, 0) => Ok(TensorFormat::F16),
            (2, group) if group_ok => Ok(TensorFormat::W8 { group }),
            (3, group) if group_ok => Ok(TensorFormat::W4 { group }),
            (4, group) if group_ok => Ok(TensorFormat::W2 { group }),
            (0..=4, p) => Err(FormatError::BadParameter { code, param: p }),
            _ => Err(FormatError::UnknownFormat(code)),
        }
    }

    /// The file code of this format.
    pub fn code(self) -> u32 {
        match self {
            TensorFormat::F32 => 0,
            TensorFormat::F16 => 1,
            TensorFormat::W8 { .. } => 2,
            TensorFormat::W4 { .. } => 3,
            TensorFormat::W2 { .. } => 4,
        }
    }

    /// The format parameter stored next to the code (group size, or 0).
    pub fn param(self) -> u32 {
        self.group_size().unwrap_or(0) as u32
    }

    /// Group size of an integer format.
    pub fn group_size(self) -> Option<usize> {
        match self {
            TensorFormat::W8 { group } | TensorFormat::W4 { group } | TensorFormat::W2 { group } => {
                Some(group as usize)
            }
            _ => None,
        }
    }

    /// Bits per code of an integer format.
    pub fn code_bits(self) -> Option<u32> {
        match self {
            TensorFormat::W8 { .. } => Some(8),
            TensorFormat::W4 { .. } => Some(4),
            TensorFormat::W2 { .. } => Some(2),
            _ => None,
        }
    }

    /// Short human-readable name, as `eddy inspect` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TensorFormat::F32 => "f32",
            TensorFormat::F16 => "f16",
            TensorFormat::W8 { group: 32 } => "w8g32",
            TensorFormat::W8 { group: 64 } => "w8g64",
            TensorFormat::W8 { group: 128 } => "w8g128",
            TensorFormat::W8 { .. } => "w8g256",
            TensorFormat::W4 { group: 32 } => "w4g32",
            TensorFormat::W4 { group: 64 } => "w4g64",
            TensorFormat::W4 { group: 128 } => "w4g128",
            TensorFormat::W4 { .. } => "w4g256",
            TensorFormat::W2 { group: 32 } => "w2g32",
            TensorFormat::W2 { group: 64 } => "w2g64",
            TensorFormat::W2 { group: 128 } => "w2g128",
            TensorFormat::W2 { .. } => "w2g256",
        }
    }

    /// Bytes of one group (header + packed codes), for integer formats.
    pub fn group_bytes(self) -> Option<usize> {
        Some(GROUP_HEADER_BYTES + self.group_size()? * self.code_bits()? as usize / 8)
    }

    /// Bits of storage per element, including scales.
    pub fn bits_per_weight(self) -> f64 {
        match self {
            TensorFormat::F32 => 32.0,
            TensorFormat::F16 => 16.0,
            _ => {
                let g = self.group_size().unwrap_or(1) as f64;
                self.group_bytes().unwrap_or(0) as f64 * 8.0 / g
            }
        }
    }

    /// Bytes needed for a tensor of `rows` rows of `cols` elements
    /// (a 1-D tensor is one row). Overflow is an error, never a wrap.
    pub fn byte_len(self, rows: u64, cols: u64) -> Result<u64, FormatError> {
        let n = rows.checked_mul(cols).ok_or(FormatError::SizeOverflow)?;
        match self {
            TensorFormat::F32 => n.checked_mul(4).ok_or(FormatError::SizeOverflow),
            TensorFormat::F16 => n.checked_mul(2).ok_or(FormatError::SizeOverflow),
            _ => {
                let group = self.group_size().unwrap_or(1) as u64;
                if cols % group != 0 {
                    return Err(FormatError::RaggedGroup { cols, group: group as u32 });
                }
                (n / group)
                    .checked_mul(self.group_bytes().unwrap_or(0) as u64)
                    .ok_or(FormatError::SizeOverflow)
            }
        }
    }

    /// Required alignment in bytes of the tensor's data in memory.
    pub fn alignment(self) -> usize {
        match self {
            TensorFormat::F32 => 4,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TensorFormat; 8] = [
        TensorFormat::F32,
        TensorFormat::F16,
        TensorFormat::W8 { group: 32 },
        TensorFormat::W4 { group: 64 },
        TensorFormat::W2 { group: 32 },
        TensorFormat::W2 { group: 64 },
        TensorFormat::W2 { group: 128 },
        TensorFormat::W2 { group: 256 },
    ];

    #[test]
    fn codes_round_trip() {
        for f in ALL {
            assert_eq!(TensorFormat::from_code(f.code(), f.param()), Ok(f));
        }
        assert_eq!(TensorFormat::from_code(99, 0), Err(FormatError::UnknownFormat(99)));
        assert!(matches!(TensorFormat::from_code(0, 7), Err(FormatError::BadParameter { .. })));
        assert!(matches!(TensorFormat::from_code(4, 48), Err(FormatError::BadParameter { .. })));
        assert!(matches!(TensorFormat::from_code(2, 0), Err(FormatError::BadParameter { .. })));
    }

    #[test]
    fn byte_len_checks_overflow_and_groups() {
        assert_eq!(TensorFormat::F32.byte_len(3, 5), Ok(60));
        assert_eq!(TensorFormat::F16.byte_len(3, 5), Ok(30));
        assert_eq!(TensorFormat::F32.byte_len(u64::MAX, 2), Err(FormatError::SizeOverflow));
        assert_eq!(TensorFormat::F32.byte_len(1 << 62, 1), Err(FormatError::SizeOverflow));
        // W2 g64: 4 header bytes + 16 code bytes per group.
        assert_eq!(TensorFormat::W2 { group: 64 }.byte_len(3, 128), Ok(3 * 2 * 20));
        assert_eq!(TensorFormat::W4 { group: 32 }.byte_len(1, 64), Ok(2 * 20));
        assert_eq!(TensorFormat::W8 { group: 32 }.byte_len(1, 32), Ok(36));
        assert_eq!(
            TensorFormat::W2 { group: 64 }.byte_len(1, 100),
            Err(FormatError::RaggedGroup { cols: 100, group: 64 })
        );
        assert_eq!(
            TensorFormat::W2 { group: 256 }.byte_len(u64::MAX / 256, 256 * 256),
            Err(FormatError::SizeOverflow)
        );
    }

    #[test]
    fn bits_per_weight_include_scales() {
        assert_eq!(TensorFormat::W2 { group: 64 }.bits_per_weight(), 2.5);
        assert_eq!(TensorFormat::W2 { group: 128 }.bits_per_weight(), 2.25);
        assert_eq!(TensorFormat::W4 { group: 32 }.bits_per_weight(), 5.0);
        assert_eq!(TensorFormat::W8 { group: 64 }.bits_per_weight(), 8.5);
        assert_eq!(TensorFormat::F16.bits_per_weight(), 16.0);
    }
}
