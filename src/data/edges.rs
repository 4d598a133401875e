//! Edge labels, made as the authors made them (reference-implementation.md §2.2, from
//! `dataset_utils/blend_conc.py`): OpenCV's 3 × 3 Sobel in x and in y of the smooth GT
//! on the 0–255 scale with the reflect-101 border, each |G| saturated to 0–255 as
//! `convertScaleAbs` does, combined as 0.5·|Gx| + 0.5·|Gy| (`addWeighted`, rounded half
//! to even and saturated), then binarised: below 50 → 0, otherwise 255.
//!
//! Which channel: the authors ran it on OpenCV's channel 0 of the GT, which is **blue**.
//! An edge between two colours of equal blue (red against green, say) then gets no
//! label. The default here is [`EdgeChannel::Luma`], the GT's 8-bit luma (0.299 R +
//! 0.587 G + 0.114 B, rounded as `cv2.cvtColor` rounds), which is what "Sobel of the
//! smooth GT" means for a colour image; [`EdgeChannel::Blue`] reproduces the reference.
//!
//! The derivatives are [`crate::ops::sobel_plane`]'s (OpenCV's kernel and border).
//! The GT is quantised to 8 bits first, because the reference read it back from an
//! 8-bit file; labels made here therefore match labels made later from the PNG.

use crate::data::imageio::Gray8;
use crate::io::quantize8;
use crate::ops::{sobel_plane, Planes};

/// The label threshold on the 0.5·|Gx| + 0.5·|Gy| scale (0–255).
pub const EDGE_THRESHOLD: u8 = 50;

/// The GT channel the Sobel runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeChannel {
    /// 8-bit luma, 0.299 R + 0.587 G + 0.114 B (the default).
    #[default]
    Luma,
    /// The blue channel, as the reference code (OpenCV BGR channel 0).
    Blue,
}

impl std::str::FromStr for EdgeChannel {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "luma" => Ok(Self::Luma),
            "blue" => Ok(Self::Blue),
            _ => Err(crate::Error::InvalidParam { name: "edge-channel", value: s.into(), expected: "luma or blue" }),
        }
    }
}

/// The 8-bit channel the labels are computed on.
#[must_use]
pub fn edge_channel_u8(gt: &Planes, channel: EdgeChannel) -> Vec<u8> {
    let n = gt.plane_len();
    if gt.c < 3 {
        return gt.plane(0).iter().map(|&v| quantize8(v)).collect();
    }
    match channel {
        EdgeChannel::Blue => gt.plane(2).iter().map(|&v| quantize8(v)).collect(),
        EdgeChannel::Luma => (0..n)
            .map(|i| {
                let q = |ch: usize| f32::from(quantize8(gt.data[ch * n + i]));
                quantize8((0.299 * q(0) + 0.587 * q(1) + 0.114 * q(2)) / 255.0)
            })
            .collect(),
    }
}

/// 0.5·sat(|Gx|) + 0.5·sat(|Gy|), rounded half to even: OpenCV's `Sobel` (ksize 3,
/// reflect-101), `convertScaleAbs` and `addWeighted(0.5, 0.5)` on an 8-bit plane.
#[must_use]
pub fn sobel_magnitude_u8(plane: &[u8], h: usize, w: usize) -> Vec<u8> {
    let f: Vec<f32> = plane.iter().map(|&v| f32::from(v)).collect();
    // On integer input the f32 responses are exact integers (|G| ≤ 1020).
    let (gx, gy) = sobel_plane(&f, h, w);
    gx.iter()
        .zip(&gy)
        .map(|(x, y)| {
            let s = (x.abs().min(255.0) + y.abs().min(255.0)) as u32;
            // s/2 rounded half to even (cvRound): 99/2 = 49.5 → 50, 101/2 = 50.5 → 50.
            let half = s / 2;
            (if s % 2 == 1 && half % 2 == 1 { half + 1 } else { half }).min(255) as u8
        })
        .collect()
}

/// Binary edge labels (0 or 255) of a smooth GT: the Sobel magnitude of `channel`
/// thresholded at [`EDGE_THRESHOLD`].
#[must_use]
pub fn edge_labels(gt: &Planes, channel: EdgeChannel) -> Gray8 {
    let plane = edge_channel_u8(gt, channel);
    let data = sobel_magnitude_u8(&plane, gt.h, gt.w)
        .into_iter()
        .map(|m| if m >= EDGE_THRESHOLD { 255 } else { 0 })
        .collect();
    Gray8 { h: gt.h, w: gt.w, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sobel written the textbook way: pad by reflect-101, then correlate with the two
    /// kernels OpenCV documents.
    fn direct(plane: &[u8], h: usize, w: usize) -> Vec<u8> {
        const KX: [[i32; 3]; 3] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]];
        const KY: [[i32; 3]; 3] = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]];
        let pad = |i: isize, n: usize| -> usize {
            if i < 0 {
                (-i) as usize
            } else if i as usize >= n {
                2 * n - 2 - i as usize
            } else {
                i as usize
            }
        };
        let mut out = vec![0; h * w];
        for y in 0..h {
            for x in 0..w {
                let (mut gx, mut gy) = (0i32, 0i32);
                for (dy, (krx, kry)) in KX.iter().zip(&KY).enumerate() {
                    for dx in 0..3 {
                        let yy = pad(y as isize + dy as isize - 1, h);
                        let xx = pad(x as isize + dx as isize - 1, w);
                        let v = i32::from(plane[yy * w + xx]);
                        gx += krx[dx] * v;
                        gy += kry[dx] * v;
                    }
                }
                let m = 0.5 * f64::from(gx.abs().min(255)) + 0.5 * f64::from(gy.abs().min(255));
                // Round half to even, as cvRound.
                let r = m.round();
                let r = if (m - m.floor() - 0.5).abs() < 1e-9 && r % 2.0 != 0.0 { r - 1.0 } else { r };
                out[y * w + x] = if r >= 50.0 { 255 } else { 0 };
            }
        }
        out
    }

    #[test]
    fn matches_a_direct_sobel() {
        let (h, w) = (13, 17);
        let gt = Planes::from_fn(3, h, w, |c, y, x| {
            let step = if x > 8 { 0.6 } else { 0.2 };
            let ramp = (y * 13 + x * 7 + c * 50) % 97;
            (step + ramp as f32 / 400.0).min(1.0)
        });
        for channel in [EdgeChannel::Luma, EdgeChannel::Blue] {
            let plane = edge_channel_u8(&gt, channel);
            let got = edge_labels(&gt, channel);
            assert_eq!(got.data, direct(&plane, h, w), "{channel:?}");
            assert!(got.data.contains(&255) && got.data.contains(&0));
        }
    }

    #[test]
    fn half_way_magnitudes_round_to_even() {
        // A vertical step of 33 gives |Gx| = 4·33 = 132 at the step, |Gy| = 0 → 66.
        // A step giving |Gx| = 99 exactly: 0.5·99 = 49.5 → 50 (even) → edge.
        let mut plane = vec![0u8; 3 * 4];
        for y in 0..3 {
            plane[y * 4 + 2] = 25;
            plane[y * 4 + 3] = 25;
        }
        // At x = 1: Gx = 4·25 = 100 → 50 → edge. At x = 2: Gx = 4·25 − 4·0 = 100 too.
        let m = sobel_magnitude_u8(&plane, 3, 4);
        assert_eq!(m[1], 50);
    }

    #[test]
    fn blue_misses_a_red_green_edge_that_luma_sees() {
        let gt = Planes::from_fn(3, 6, 6, |c, _, x| match (c, x < 3) {
            (0, true) | (1, false) => 0.8,
            _ => 0.0,
        });
        assert!(edge_labels(&gt, EdgeChannel::Blue).data.iter().all(|&v| v == 0));
        assert!(edge_labels(&gt, EdgeChannel::Luma).data.contains(&255));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn constant_images_have_no_edges(v in 0.0f32..=1.0, h in 1usize..9, w in 1usize..9) {
            let gt = Planes::constant(3, h, w, v);
            prop_assert!(edge_labels(&gt, EdgeChannel::Luma).data.iter().all(|&e| e == 0));
        }

        #[test]
        fn labels_are_binary(data in proptest::collection::vec(any::<u8>(), 30)) {
            let gt = Planes::from_fn(1, 5, 6, |_, y, x| f32::from(data[y * 6 + x]) / 255.0);
            prop_assert!(edge_labels(&gt, EdgeChannel::Luma).data.iter().all(|&e| e == 0 || e == 255));
        }
    }
}
