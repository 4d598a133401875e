//! The one place that calls the `gemm` crate (the matrix kernel candle itself uses on the CPU).
//!
//! `gemm::gemm` takes raw pointers and strides. [`gemm_into`] checks every index it can reach
//! against the slices' lengths before the call, so the only thing its callers must guarantee
//! is that concurrent calls write disjoint parts of the destination.
#![allow(unsafe_code)]

use std::marker::PhantomData;

use candle_core::WithDType;
use gemm::Parallelism;

/// The matrix kernels the `gemm` crate runs on this CPU, chosen at run time (its `x86-v4`
/// feature compiles the AVX-512 ones beside the AVX2+FMA ones; the binary is the same on
/// every x86-64 machine): `"avx512f"`, `"fma"` (AVX2 + FMA) or `"scalar"`.
#[must_use]
pub fn kernel_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "fma";
        }
    }
    "scalar"
}

/// A read-only matrix view: element (r, c) is `data[r·row_stride + c·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The backing storage; the view must lie inside it.
    pub data: &'a [T],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<T> MatRef<'_, T> {
    fn assert_inside(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(
                last < self.data.len(),
                "matrix view reaches {last}, storage has {}",
                self.data.len()
            );
        }
    }
}

/// A destination buffer that several threads may write into, each into its own region.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: `MatMut` only hands its pointer to `gemm_into`, whose contract requires concurrent
// calls to write disjoint regions; the borrow keeps the buffer alive and unaliased meanwhile.
unsafe impl<T: Send> Send for MatMut<'_, T> {}
unsafe impl<T: Send> Sync for MatMut<'_, T> {}

impl<'a, T> MatMut<'a, T> {
    /// Borrows `data` mutably for as long as the view lives.
    pub fn new(data: &'a mut [T]) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// Calls `f(r, row)` for the `rows` rows of `cols` elements that start at `offset` and lie
    /// `row_stride` apart. Like [`gemm_into`], callers on different threads must touch disjoint
    /// regions.
    ///
    /// # Panics
    /// When the region reaches past the storage (checked before any call).
    pub fn for_each_row(&self, offset: usize, row_stride: usize, rows: usize, cols: usize, mut f: impl FnMut(usize, &mut [T])) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = offset + (rows - 1) * row_stride + (cols - 1);
        assert!(last < self.len, "row view reaches {last}, storage has {}", self.len);
        assert!(rows == 1 || cols <= row_stride, "rows of {cols} overlap at stride {row_stride}");
        for r in 0..rows {
            // SAFETY: in bounds (checked above); disjoint from other threads' regions by the
            // caller's contract, and the rows of one call do not overlap when cols ≤ row_stride.
            let row = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset + r * row_stride), cols) };
            f(r, row);
        }
    }
}

/// `dst[offset + r·dst_row_stride + c] (+)= Σ_k lhs[r, k] · rhs[k, c]` for `r < lhs.rows`,
/// `c < rhs.cols`, single-threaded. With `accumulate` the product is added to `dst`, otherwise
/// it replaces it.
///
/// Callers running this concurrently on one [`MatMut`] must write disjoint regions; every
/// index is checked against the buffers' lengths (a violation panics before any write).
pub fn gemm_into<T: WithDType>(
    dst: &MatMut<'_, T>,
    offset: usize,
    dst_row_stride: usize,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    accumulate: bool,
) {
    assert_eq!(lhs.cols, rhs.rows, "inner dimensions differ");
    lhs.assert_inside();
    rhs.assert_inside();
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    if m == 0 || n == 0 {
        return;
    }
    let last = offset + (m - 1) * dst_row_stride + (n - 1);
    assert!(
        last < dst.len,
        "destination view reaches {last}, storage has {}",
        dst.len
    );
    // SAFETY: every index gemm can touch in `lhs`, `rhs` and `dst` was checked to lie inside
    // its buffer above; the caller guarantees that no other thread writes this region of `dst`
    // meanwhile (see the doc comment), and `lhs`/`rhs` are shared borrows that do not alias it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr.add(offset),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::from_f64(1.0),
            T::from_f64(1.0),
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_isa_names_what_the_cpu_has() {
        let isa = kernel_isa();
        assert!(["avx512f", "fma", "scalar"].contains(&isa), "{isa}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(isa == "avx512f", std::arch::is_x86_feature_detected!("avx512f"));
    }

    #[test]
    fn small_product_with_strides_and_accumulation() {
        // lhs 2×3, rhs given transposed (col-major 3×2), dst with row stride 4 at offset 1.
        let a = [1.0f64, 2., 3., 4., 5., 6.];
        let bt = [1.0f64, 0., 2., 0., 1., 1.]; // rhs = [[1,0],[0,1],[2,1]]
        let mut out = vec![10.0f64; 9];
        let lhs = MatRef {
            data: &a,
            rows: 2,
            cols: 3,
            row_stride: 3,
            col_stride: 1,
        };
        let rhs = MatRef {
            data: &bt,
            rows: 3,
            cols: 2,
            row_stride: 1,
            col_stride: 3,
        };
        gemm_into(&MatMut::new(&mut out), 1, 4, lhs, rhs, true);
        // a·rhs = [[7, 5], [16, 11]]
        assert_eq!(out, vec![10., 17., 15., 10., 10., 26., 21., 10., 10.]);
        gemm_into(&MatMut::new(&mut out), 1, 4, lhs, rhs, false);
        assert_eq!(out, vec![10., 7., 5., 10., 10., 16., 11., 10., 10.]);
    }

    #[test]
    #[should_panic(expected = "destination view")]
    fn out_of_bounds_destination_panics_before_writing() {
        let a = [1.0f32; 4];
        let mut out = vec![0.0f32; 3];
        let m = MatRef {
            data: &a,
            rows: 2,
            cols: 2,
            row_stride: 2,
            col_stride: 1,
        };
        gemm_into(&MatMut::new(&mut out), 0, 2, m, m, false);
    }
}
