//! Screened graph-Laplacian systems on the pixel grid, `(I + λ·L_w) u = f`, solved by
//! preconditioned conjugate gradients. Shared by RTV, WLS and the SD filter.
//!
//! `L_w = D − W` is the Laplacian of the 4- or 8-connected pixel graph with non-negative
//! edge weights `W`, so `A = I + λ·L_w` is a symmetric, strictly diagonally dominant
//! M-matrix. Two consequences the operators rely on: the system is SPD (CG converges), and
//! `A⁻¹` is non-negative with unit row sums (`A·1 = 1`), so the solution is a convex
//! combination of `f` and stays inside `f`'s range (up to the solver tolerance).
//!
//! The reference MATLAB codes (`tsmooth.m`, `wlsFilter.m`, `sdfilter.m`) assemble the same
//! matrix with `spdiags` and call `A\b` (RTV's `ichol` + `pcg(.., 0.1, 100)` branch is dead
//! code: `exist('ichol','builtin')` is 0 for a file function). We stop PCG at a relative
//! residual of [`REL_TOL`]. Because `L_w` is positive semi-definite, every eigenvalue of `A`
//! is ≥ 1, so the error is bounded by the residual: `‖u − A⁻¹f‖₂ ≤ ‖r‖₂ ≤ REL_TOL·‖f‖₂`,
//! i.e. an RMS error of at most `REL_TOL` times the RMS of `f` (≤ 1e-5 on [0, 1] images).
//!
//! Preconditioner: a modified incomplete Cholesky with the stencil's own sparsity
//! ("D-ILU": `M = (D̃ + Lₐ) D̃⁻¹ (D̃ + Lₐ)ᵀ`, only the diagonal `D̃` is computed). On the
//! 5-point stencil it is exactly MIC(0); all dropped fill-in is lumped onto the diagonal
//! ([`MIC_OMEGA`] = 1, which halved the iteration counts against 0.95 and took 2–3× fewer
//! than IC(0) on a 1024² test image: RTV 16–24, WLS 77, SDF 3–6 per solve). The sweeps are
//! sequential within a row, so parallelism is over channels.

use rayon::prelude::*;

use super::Planes;

/// Relative residual `‖b − A·x‖ / ‖b‖` at which PCG stops.
pub(crate) const REL_TOL: f64 = 1e-5;
/// Iteration cap; reached only for extreme weights, and then the last iterate is kept.
pub(crate) const MAX_ITER: usize = 2000;
/// Fraction of the dropped fill-in moved onto the diagonal (0: IC(0)/D-ILU, 1: MIC(0)).
const MIC_OMEGA: f32 = 1.0;

/// A forward neighbour of a pixel in row-major order, with its `(dy, dx)` offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Neighbour {
    /// `(0, +1)`: the pixel to the right.
    East,
    /// `(+1, 0)`: the pixel below.
    South,
    /// `(+1, +1)`: below right.
    SouthEast,
    /// `(+1, −1)`: below left.
    SouthWest,
}

impl Neighbour {
    /// `(dy, dx)` of the neighbour.
    pub(crate) fn offset(self) -> (usize, isize) {
        match self {
            Self::East => (0, 1),
            Self::South => (1, 0),
            Self::SouthEast => (1, 1),
            Self::SouthWest => (1, -1),
        }
    }

    /// Linear index of the neighbour of `(y, x)`, if it lies inside an `h×w` grid.
    pub(crate) fn of(self, y: usize, x: usize, h: usize, w: usize) -> Option<usize> {
        let (dy, dx) = self.offset();
        let (ny, nx) = (y + dy, x as isize + dx);
        (ny < h && nx >= 0 && (nx as usize) < w).then(|| ny * w + nx as usize)
    }
}

/// `A = I + λ·L_w` on an `h×w` grid: its diagonal, the coupling to the right neighbour and
/// the couplings to the next row. Every coupling `a[i] = A(i, i + o) ≤ 0` is stored at the
/// earlier pixel `i` and is zero where the neighbour falls outside the grid.
#[derive(Debug, Clone)]
pub(crate) struct GridSystem {
    h: usize,
    w: usize,
    diag: Vec<f32>,
    /// `A(i, i + 1)`; zero in the last column (all zero without East edges).
    east: Vec<f32>,
    /// `(dx, A(i, i + w + dx))` for each next-row neighbour direction that has edges.
    below: Vec<(isize, Vec<f32>)>,
}

/// The columns `x` for which pixel `(y, x)` has a next-row neighbour `(y + 1, x + dx)`.
fn sending(dx: isize, w: usize) -> std::ops::Range<usize> {
    usize::from(dx < 0)..w - usize::from(dx > 0)
}

impl GridSystem {
    /// Assembles `I + λ·L_w` from per-edge weights. `edges[k].1[i] ≥ 0` is the weight of the
    /// edge from pixel `i` to its `edges[k].0` neighbour; entries whose neighbour falls outside
    /// the grid are ignored. At most one array per direction.
    ///
    /// # Panics
    /// 1. When a weight array's length is not `h * w`.
    pub(crate) fn screened(
        h: usize,
        w: usize,
        lambda: f32,
        edges: Vec<(Neighbour, Vec<f32>)>,
    ) -> Self {
        let mut diag = vec![1.0f32; h * w];
        let mut east = vec![0.0f32; h * w];
        let mut below = Vec::with_capacity(edges.len());
        for (nb, mut wts) in edges {
            assert_eq!(wts.len(), h * w, "edge weight array length must be h*w");
            let mut any = false;
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    match nb.of(y, x, h, w) {
                        Some(j) => {
                            let a = lambda * wts[i];
                            diag[i] += a;
                            diag[j] += a;
                            wts[i] = -a;
                            any = true;
                        }
                        None => wts[i] = 0.0,
                    }
                }
            }
            match nb.offset() {
                (0, _) => east = wts,
                (_, dx) if any => below.push((dx, wts)),
                _ => {}
            }
        }
        Self { h, w, diag, east, below }
    }

    /// `out = A·x`, evaluated as `x_i + Σ_k c_ik·(x_i − x_k)` rather than `diag·x + Σ a·x_k`:
    /// with couplings up to 1e4 (WLS on flat regions) the second form cancels in `f32` and
    /// leaves errors of ~1e-3, the first is exact on constant images.
    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        out.copy_from_slice(x);
        // a = −c ≤ 0, so the edge (i, k) adds a·(x_k − x_i) to row i and its negation to row k.
        for i in 0..(h * w).saturating_sub(1) {
            let f = self.east[i] * (x[i + 1] - x[i]);
            out[i] += f;
            out[i + 1] -= f;
        }
        for (dx, a) in &self.below {
            for y in 0..h.saturating_sub(1) {
                for xx in sending(*dx, w) {
                    let i = y * w + xx;
                    let k = (i + w).wrapping_add_signed(*dx);
                    let f = a[i] * (x[k] - x[i]);
                    out[i] += f;
                    out[k] -= f;
                }
            }
        }
    }

    /// The diagonal `D̃` of the modified incomplete factorisation, as `1 / D̃`.
    fn preconditioner(&self) -> Vec<f32> {
        let (h, w) = (self.h, self.w);
        // Row sums of the strictly upper part (≤ 0).
        let mut upper = self.east.clone();
        for (_, a) in &self.below {
            for (u, &v) in upper.iter_mut().zip(a) {
                *u += v;
            }
        }
        let fill = |a: f32, j: usize, inv_d: &[f32]| {
            a * ((1.0 - MIC_OMEGA) * a + MIC_OMEGA * upper[j]) * inv_d[j]
        };
        let mut inv_d = vec![0.0f32; h * w];
        let mut d = vec![0.0f32; w];
        for y in 0..h {
            let row = y * w;
            d.copy_from_slice(&self.diag[row..row + w]);
            if y > 0 {
                for (dx, a) in &self.below {
                    for x in sending(-dx, w) {
                        let j = (row - w + x).wrapping_add_signed(-dx);
                        d[x] -= fill(a[j], j, &inv_d);
                    }
                }
            }
            for (x, &dx_sum) in d.iter().enumerate() {
                let i = row + x;
                let mut di = dx_sum;
                if x > 0 {
                    di -= fill(self.east[i - 1], i - 1, &inv_d);
                }
                // A is strictly diagonally dominant with unit excess, so D̃ ≥ 1 in exact
                // arithmetic; the floor only guards rounding.
                inv_d[i] = 1.0 / di.max(1e-3 * self.diag[i]);
            }
        }
        inv_d
    }

    /// `z = M⁻¹ r`: forward then backward substitution, a row at a time. The terms from the
    /// neighbouring row are final and summed in a vectorisable pass; only the East coupling
    /// is a sequential recurrence.
    fn precondition(&self, inv_d: &[f32], r: &[f32], z: &mut [f32], t: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        for y in 0..h {
            let row = y * w;
            t.copy_from_slice(&r[row..row + w]);
            if y > 0 {
                for (dx, a) in &self.below {
                    for x in sending(-dx, w) {
                        let j = (row - w + x).wrapping_add_signed(-dx);
                        t[x] -= a[j] * z[j];
                    }
                }
            }
            let mut prev = 0.0f32;
            for (x, &tx) in t.iter().enumerate() {
                let i = row + x;
                let e = if x > 0 { self.east[i - 1] } else { 0.0 };
                prev = (tx - e * prev) * inv_d[i];
                z[i] = prev;
            }
        }
        for y in (0..h).rev() {
            let row = y * w;
            t.fill(0.0);
            if y + 1 < h {
                for (dx, a) in &self.below {
                    for x in sending(*dx, w) {
                        let i = row + x;
                        t[x] += a[i] * z[(i + w).wrapping_add_signed(*dx)];
                    }
                }
            }
            let mut next = 0.0f32;
            for x in (0..w).rev() {
                let i = row + x;
                next = z[i] - (t[x] + self.east[i] * next) * inv_d[i];
                z[i] = next;
            }
        }
    }

    /// Solves `A·x = b` by PCG from the initial guess `x` (overwritten with the solution).
    /// Returns the number of iterations.
    fn pcg(&self, inv_d: &[f32], b: &[f32], x: &mut [f32]) -> usize {
        let n = b.len();
        let norm_b = dot(b, b).sqrt();
        if norm_b == 0.0 {
            x.fill(0.0);
            return 0;
        }
        let mut r = vec![0.0f32; n];
        self.apply(x, &mut r);
        for (ri, &bi) in r.iter_mut().zip(b) {
            *ri = bi - *ri;
        }
        let mut t = vec![0.0f32; self.w];
        let mut z = vec![0.0f32; n];
        self.precondition(inv_d, &r, &mut z, &mut t);
        let mut p = z.clone();
        let mut q = vec![0.0f32; n];
        let mut rz = dot(&r, &z);
        for it in 0..MAX_ITER {
            if dot(&r, &r).sqrt() <= REL_TOL * norm_b {
                return it;
            }
            self.apply(&p, &mut q);
            let pq = dot(&p, &q);
            if pq <= 0.0 {
                return it;
            }
            let alpha = (rz / pq) as f32;
            for (((xi, ri), &pi), &qi) in x.iter_mut().zip(r.iter_mut()).zip(&p).zip(&q) {
                *xi += alpha * pi;
                *ri -= alpha * qi;
            }
            self.precondition(inv_d, &r, &mut z, &mut t);
            let rz_new = dot(&r, &z);
            let beta = (rz_new / rz) as f32;
            rz = rz_new;
            for (pi, &zi) in p.iter_mut().zip(&z) {
                *pi = zi + beta * *pi;
            }
        }
        MAX_ITER
    }

    /// Solves `A·u = f` for every channel of `f` (rayon over channels), starting from
    /// `guess` (same shape) or from `f`. Returns the solution and the largest iteration count.
    ///
    /// # Panics
    /// 1. When `f` (or `guess`) is not `h×w`.
    pub(crate) fn solve_planes(&self, f: &Planes, guess: Option<&Planes>) -> (Planes, usize) {
        assert_eq!((f.h, f.w), (self.h, self.w), "right-hand side must match the grid");
        let inv_d = self.preconditioner();
        let mut u = guess.unwrap_or(f).clone();
        assert_eq!(
            (u.c, u.h, u.w),
            (f.c, f.h, f.w),
            "initial guess must match the right-hand side"
        );
        let iters = u
            .planes_mut()
            .into_par_iter()
            .enumerate()
            .map(|(ch, x)| self.pcg(&inv_d, f.plane(ch), x))
            .max()
            .unwrap_or(0);
        (u, iters)
    }
}

/// Dot product accumulated in `f64`.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense `A = I + Σ_edges c·(e_i − e_k)(e_i − e_k)ᵀ` of a small system, in `f64`
    /// straight from the stored couplings (not through the `f32` `apply`).
    fn dense(sys: &GridSystem) -> Vec<Vec<f64>> {
        let (h, w) = (sys.h, sys.w);
        let n = h * w;
        let mut a = vec![vec![0.0f64; n]; n];
        let mut edge = |i: usize, k: usize, coupling: f32| {
            let c = -f64::from(coupling);
            a[i][i] += c;
            a[k][k] += c;
            a[i][k] -= c;
            a[k][i] -= c;
        };
        for i in 0..n.saturating_sub(1) {
            edge(i, i + 1, sys.east[i]);
        }
        for (dx, cs) in &sys.below {
            for y in 0..h.saturating_sub(1) {
                for x in sending(*dx, w) {
                    let i = y * w + x;
                    edge(i, (i + w).wrapping_add_signed(*dx), cs[i]);
                }
            }
        }
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1.0;
        }
        a
    }

    /// Gaussian elimination in f64 (the naive reference for `A\b`).
    fn direct_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for k in 0..n {
            let (top, rest) = a.split_at_mut(k + 1);
            let pivot = &top[k];
            for (off, row) in rest.iter_mut().enumerate() {
                let f = row[k] / pivot[k];
                for (v, p) in row[k..].iter_mut().zip(&pivot[k..]) {
                    *v -= f * p;
                }
                b[k + 1 + off] -= f * b[k];
            }
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|j| a[i][j] * x[j]).sum();
            x[i] = (b[i] - s) / a[i][i];
        }
        x
    }

    fn weights(n: usize, seed: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|i| scale * (((i + seed) * 2_654_435_761usize) % 997) as f32 / 997.0).collect()
    }

    fn system(h: usize, w: usize, eight: bool, scale: f32) -> GridSystem {
        let n = h * w;
        let mut edges =
            vec![(Neighbour::East, weights(n, 1, scale)), (Neighbour::South, weights(n, 2, scale))];
        if eight {
            edges.push((Neighbour::SouthEast, weights(n, 3, scale)));
            edges.push((Neighbour::SouthWest, weights(n, 4, scale)));
        }
        GridSystem::screened(h, w, 1.0, edges)
    }

    #[test]
    fn matrix_is_symmetric_with_unit_row_sums_and_apply_matches_it() {
        for eight in [false, true] {
            let sys = system(4, 5, eight, 3.0);
            let a = dense(&sys);
            for (i, row) in a.iter().enumerate() {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5);
                for (j, &v) in row.iter().enumerate() {
                    assert!((v - a[j][i]).abs() < 1e-6);
                    assert!(i == j || v <= 0.0);
                }
            }
            let x = weights(20, 7, 1.0);
            let mut ax = vec![0.0f32; 20];
            sys.apply(&x, &mut ax);
            for (row, &got) in a.iter().zip(&ax) {
                let want: f64 = row.iter().zip(&x).map(|(&v, &xk)| v * f64::from(xk)).sum();
                assert!((f64::from(got) - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn pcg_matches_direct_solve() {
        for (eight, scale) in
            [(false, 1.0), (false, 200.0), (false, 2e4), (true, 5.0), (true, 500.0)]
        {
            let (h, w) = (6, 7);
            let sys = system(h, w, eight, scale);
            let f = Planes::from_fn(2, h, w, |c, y, x| ((c * 13 + y * 5 + x * 3) % 7) as f32 / 6.0);
            let (u, iters) = sys.solve_planes(&f, None);
            assert!(iters < MAX_ITER);
            for ch in 0..2 {
                let b = f.plane(ch).iter().map(|&v| f64::from(v)).collect();
                let want = direct_solve(dense(&sys), b);
                for (got, want) in u.plane(ch).iter().zip(&want) {
                    assert!((f64::from(*got) - want).abs() < 1e-4, "eight={eight} scale={scale}");
                }
            }
        }
    }

    #[test]
    fn constant_rhs_is_exact_even_with_huge_couplings() {
        // WLS on a flat region has couplings of 1e4; A·1 = 1 must hold to the last bit.
        let sys = system(9, 11, true, 1e4);
        let (u, iters) = sys.solve_planes(&Planes::constant(2, 9, 11, 0.6), None);
        assert_eq!(iters, 0);
        assert!(u.data.iter().all(|&v| v == 0.6));
    }

    #[test]
    fn zero_rhs_gives_zero() {
        let sys = system(3, 3, false, 1.0);
        let (u, _) = sys.solve_planes(&Planes::zeros(1, 3, 3), None);
        assert!(u.data.iter().all(|&v| v == 0.0));
    }
}
