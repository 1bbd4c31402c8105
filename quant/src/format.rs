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
            FormatError::SizeOverflow => write!(f, "tensor byte size overflows 64 bits"),
        }
    }
}

impl TensorFormat {
    /// Decode a format from its file code and parameter.
    pub fn from_code(code: u32, param: u32) -> Result<Self, FormatError> {
        match (code, param) {
            (0, 0) => Ok(TensorFormat::F32),
            (1, 0) => Ok(TensorFormat::F16),
            (0 | 1, p) => Err(FormatError::BadParameter { code, param: p }),
            _ => Err(FormatError::UnknownFormat(code)),
        }
    }

    /// The file code of this format.
    pub fn code(self) -> u32 {
        match self {
            TensorFormat::F32 => 0,
            TensorFormat::F16 => 1,
        }
    }

    /// The format parameter stored next to the code (0 if none).
    pub fn param(self) -> u32 {
        0
    }

    /// Short human-readable name, as `eddy inspect` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TensorFormat::F32 => "f32",
            TensorFormat::F16 => "f16",
        }
    }

    /// Bits of storage per element, including any scales.
    pub fn bits_per_weight(self) -> f64 {
        match self {
            TensorFormat::F32 => 32.0,
            TensorFormat::F16 => 16.0,
        }
    }

    /// Bytes needed for a tensor of `rows` rows of `cols` elements
    /// (a 1-D tensor is one row). Overflow is an error, never a wrap.
    pub fn byte_len(self, rows: u64, cols: u64) -> Result<u64, FormatError> {
        let n = rows.checked_mul(cols).ok_or(FormatError::SizeOverflow)?;
        let elem = match self {
            TensorFormat::F32 => 4,
            TensorFormat::F16 => 2,
        };
        n.checked_mul(elem).ok_or(FormatError::SizeOverflow)
    }

    /// Required alignment in bytes of the tensor's data in memory.
    pub fn alignment(self) -> usize {
        match self {
            TensorFormat::F32 => 4,
            TensorFormat::F16 => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for f in [TensorFormat::F32, TensorFormat::F16] {
            assert_eq!(TensorFormat::from_code(f.code(), f.param()), Ok(f));
        }
        assert_eq!(
            TensorFormat::from_code(99, 0),
            Err(FormatError::UnknownFormat(99))
        );
        assert!(matches!(
            TensorFormat::from_code(0, 7),
            Err(FormatError::BadParameter { .. })
        ));
    }

    #[test]
    fn byte_len_checks_overflow() {
        assert_eq!(TensorFormat::F32.byte_len(3, 5), Ok(60));
        assert_eq!(TensorFormat::F16.byte_len(3, 5), Ok(30));
        assert_eq!(
            TensorFormat::F32.byte_len(u64::MAX, 2),
            Err(FormatError::SizeOverflow)
        );
        assert_eq!(
            TensorFormat::F32.byte_len(1 << 62, 1),
            Err(FormatError::SizeOverflow)
        );
    }
}
