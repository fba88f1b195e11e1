//! Copies into memory that the CPU will not read again soon, with stores that bypass the
//! cache.
//!
//! A recurrent layer under `return_sequences` writes each step's state into its sequence
//! output, `(batch, timesteps, units)`: one row per batch row, `timesteps·units` values
//! apart. An output beyond the cache (W6's is 105 MB) would have each ordinary store read its
//! cache line from memory first, to write it back later: twice the output's size in memory
//! traffic, and lines of the recurrence's working set evicted for it. Streaming stores
//! (`movntps`) write whole lines straight to memory instead.

/// Whether a destination of `values` f32 values is worth streaming: well beyond the 1–2 MiB
/// of L2 a core has, where an ordinary store would fetch every line first. Below it, the
/// output stays in the cache for whatever reads it next (Bidirectional's concat, a next
/// layer).
pub(crate) fn worth_streaming(values: usize) -> bool {
    values >= STREAM_VALUES
}

/// 32 MiB of f32.
const STREAM_VALUES: usize = 8 << 20;

/// `dst[r·ldd .. r·ldd + cols] = src[r·cols .. (r+1)·cols]` for every row `r` of `src`, with
/// streaming stores where the CPU has them (AVX-512 or AVX2), ordinary ones otherwise; the
/// stores are fenced before it returns, so the values are there for any later read, on any
/// thread.
///
/// # Panics
/// If `dst` is shorter than the last row needs (an invariant of the crate's callers).
pub(crate) fn stream_rows(dst: &mut [f32], ldd: usize, src: &[f32], cols: usize) {
    if cols == 0 {
        return;
    }
    let rows = src.len() / cols;
    assert!(
        rows == 0 || dst.len() >= (rows - 1) * ldd + cols,
        "stream_rows: {} values cannot hold {rows} rows of {cols}, {ldd} apart",
        dst.len()
    );
    #[cfg(target_arch = "x86_64")]
    {
        if super::has_avx512() {
            // SAFETY: the CPU has AVX-512F; the rows were checked to fit.
            return unsafe { x86::rows_avx512(dst, ldd, src, cols) };
        }
        if super::has_avx2() {
            // SAFETY: the CPU has AVX2; the rows were checked to fit.
            return unsafe { x86::rows_avx(dst, ldd, src, cols) };
        }
    }
    rows_portable(dst, ldd, src, cols);
}

/// [`stream_rows`] with ordinary stores.
fn rows_portable(dst: &mut [f32], ldd: usize, src: &[f32], cols: usize) {
    for (r, s) in src.chunks_exact(cols).enumerate() {
        dst[r * ldd..r * ldd + cols].copy_from_slice(s);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// One row, `d.len() == s.len()`: streaming stores of 16 values from the first
    /// 64-byte-aligned value of `d` on, and masked ordinary stores of exactly the values
    /// before and after them (an ordinary store into a line that a streaming store writes
    /// too would bring the line into the cache only to evict it again).
    #[target_feature(enable = "avx512f")]
    unsafe fn row_avx512(d: &mut [f32], s: &[f32]) {
        let n = d.len().min(s.len());
        let (dp, sp) = (d.as_mut_ptr(), s.as_ptr());
        let head = dp.align_offset(64).min(n);
        // SAFETY (every access below): both slices hold n values; the masks cover indices
        // below n only; the streamed vectors start at aligned addresses i with i + 16 <= n.
        let mask = |len: usize| ((1_u32 << len) - 1) as __mmask16;
        if head > 0 {
            let m = mask(head);
            _mm512_mask_storeu_ps(dp, m, _mm512_maskz_loadu_ps(m, sp));
        }
        let mut i = head;
        while i + 16 <= n {
            _mm512_stream_ps(dp.add(i), _mm512_loadu_ps(sp.add(i)));
            i += 16;
        }
        if i < n {
            let m = mask(n - i);
            _mm512_mask_storeu_ps(dp.add(i), m, _mm512_maskz_loadu_ps(m, sp.add(i)));
        }
    }

    /// [`row_avx512`] with 8 values per streaming store, the ends copied value by value.
    #[target_feature(enable = "avx")]
    unsafe fn row_avx(d: &mut [f32], s: &[f32]) {
        let n = d.len().min(s.len());
        let (dp, sp) = (d.as_mut_ptr(), s.as_ptr());
        let head = dp.align_offset(32).min(n);
        let body = head + (n - head) / 8 * 8;
        for j in (0..head).chain(body..n) {
            d[j] = s[j];
        }
        let mut i = head;
        while i < body {
            // SAFETY: i + 8 <= body <= n, both slices hold n values, dp + i is aligned.
            _mm256_stream_ps(dp.add(i), _mm256_loadu_ps(sp.add(i)));
            i += 8;
        }
    }

    /// [`super::stream_rows`] with 16-lane streaming stores.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_avx512(dst: &mut [f32], ldd: usize, src: &[f32], cols: usize) {
        for (r, s) in src.chunks_exact(cols).enumerate() {
            row_avx512(&mut dst[r * ldd..r * ldd + cols], s);
        }
        _mm_sfence();
    }

    /// [`super::stream_rows`] with 8-lane streaming stores.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn rows_avx(dst: &mut [f32], ldd: usize, src: &[f32], cols: usize) {
        for (r, s) in src.chunks_exact(cols).enumerate() {
            row_avx(&mut dst[r * ldd..r * ldd + cols], s);
        }
        _mm_sfence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of rows, as [`stream_rows`] takes them.
    type Copy = fn(&mut [f32], usize, &[f32], usize);

    /// The copies of every path the CPU has, by name.
    fn paths() -> Vec<(&'static str, Copy)> {
        let mut paths: Vec<(&'static str, Copy)> =
            vec![("portable", rows_portable), ("dispatched", stream_rows)];
        #[cfg(target_arch = "x86_64")]
        {
            if crate::linalg::has_avx2() {
                // SAFETY: the CPU has AVX2; the test's rows fit.
                paths.push(("avx", |d, l, s, c| unsafe { x86::rows_avx(d, l, s, c) }));
            }
            if crate::linalg::has_avx512() {
                // SAFETY: the CPU has AVX-512F; the test's rows fit.
                paths.push(("avx512", |d, l, s, c| unsafe {
                    x86::rows_avx512(d, l, s, c)
                }));
            }
        }
        paths
    }

    /// Every row lands at its offset, on every path, whatever the alignment of the
    /// destination and the width of the rows (a head, a streamed body and a tail, or a row
    /// shorter than a vector), and nothing between the rows or before them is touched.
    #[test]
    fn rows_land_where_they_belong() {
        for (path, copy) in paths() {
            for cols in [1, 7, 8, 16, 33, 100] {
                for offset in 0..17 {
                    let (rows, ldd) = (5, cols + 3);
                    let src: Vec<f32> = (0..rows * cols).map(|v| v as f32 + 0.5).collect();
                    let mut buf = vec![-1.0_f32; offset + rows * ldd];
                    copy(&mut buf[offset..], ldd, &src, cols);
                    for r in 0..rows {
                        for c in 0..ldd {
                            let got = buf[offset + r * ldd + c];
                            let want = if c < cols { src[r * cols + c] } else { -1.0 };
                            assert_eq!(
                                got, want,
                                "{path}: {cols} cols, offset {offset}, ({r}, {c})"
                            );
                        }
                    }
                    assert!(buf[..offset].iter().all(|&v| v == -1.0), "{path}");
                }
            }
        }
    }

    /// A destination too short for the rows is refused before anything is written.
    #[test]
    #[should_panic(expected = "cannot hold 3 rows of 4, 6 apart")]
    fn a_short_destination_is_refused() {
        let mut dst = vec![0.0_f32; 15];
        stream_rows(&mut dst, 6, &[1.0; 12], 4);
    }
}
