//! The geometry of a KV cache as the SIMD attention kernels walk it, and
//! the per-call query sums the Q4 scores need.

use crate::KvRows;
use eddy_quant::{kv_group, KvFormat};

/// Scale groups per row the SIMD scores kernels keep Q4 query sums for on
/// the stack (head_dim up to 2048 at groups of 32); rows with more go to
/// the scalar reference.
pub(crate) const MAX_GROUPS: usize = 64;

/// Lanes of the reference's partial sums (see `eddy_quant::kv_dot`).
pub(crate) const LANES: usize = 8;

/// Geometry of a valid set of rows.
pub(crate) struct KvShape {
    /// Values per row.
    pub head_dim: usize,
    /// Values per scale group (32, or the whole row).
    pub group: usize,
    /// Groups per row.
    pub groups: usize,
    /// Offset of the group parameters in a row (bytes of codes).
    pub code_bytes: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
}

impl KvShape {
    /// The shape of `rows` if the SIMD kernels cover it: valid rows (see
    /// [`KvRows::row_bytes`]), a query or output of `len == head_dim`
    /// values, at most [`MAX_GROUPS`] groups. `None` sends the caller to
    /// the scalar reference, which handles (or ignores) everything else.
    pub(crate) fn of(rows: &KvRows<'_>, len: usize) -> Option<Self> {
        rows.row_bytes()?;
        let head_dim = rows.head_dim;
        let group = kv_group(head_dim);
        let groups = head_dim / group;
        let code_bytes = match rows.format {
            KvFormat::F32 => 4 * head_dim,
            KvFormat::F16 => 2 * head_dim,
            KvFormat::Q8 => head_dim,
            KvFormat::Q4 => head_dim / 2,
        };
        (len == head_dim && groups <= MAX_GROUPS).then_some(KvShape {
            head_dim,
            group,
            groups,
            code_bytes,
            stride: rows.stride,
        })
    }

    /// Σ q per group and lane (`sums[g][j % 8] += q[g * group + j]` in
    /// order), exactly as the reference sums it for every Q4 row: the
    /// kernels compute it once per call.
    pub(crate) fn query_sums(&self, q: &[f32]) -> [[f32; LANES]; MAX_GROUPS] {
        let mut sums = [[0f32; LANES]; MAX_GROUPS];
        for (s, qg) in sums.iter_mut().zip(q.chunks_exact(self.group)) {
            for (j, qi) in qg.iter().enumerate() {
                s[j % LANES] += qi;
            }
        }
        sums
    }
}
