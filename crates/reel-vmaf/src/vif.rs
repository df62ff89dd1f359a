//! Integer VIF at four scales, bit-exact with libvmaf's `integer_vif`.
//!
//! Each scale filters the reference and distorted planes (and their squares
//! and product) with a separable symmetric filter, vertical pass first,
//! rounding each pass to fixed point exactly as libvmaf does, then turns the
//! local variances into log-domain information terms through a 2048-per-octave
//! log2 table. Between scales both planes are low-passed with the next
//! scale's filter and decimated by two. Edges mirror without repeating the
//! edge sample. 8-bit input is the `bpc = 8` case of the same arithmetic.
use std::sync::OnceLock;

use crate::isa::{isa, Isa};
use crate::Plane;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// The vertical pass stores its rows offset by this (as signed 16-bit
/// values around zero), which the `pmaddwd` horizontal passes need.
const XOR: u16 = 0x8000;

/// Per-scale VIF scores (`integer_vif_scale0..3` in libvmaf's log), plus the
/// numerator and denominator each is the ratio of (`integer_vif_num_scaleN`,
/// `integer_vif_den_scaleN` in libvmaf's debug output).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VifScore {
    pub scale: [f64; 4],
    pub num: [f32; 4],
    pub den: [f32; 4],
}

const FILTER0: [u16; 17] =
    [489, 935, 1640, 2640, 3896, 5274, 6547, 7455, 7784, 7455, 6547, 5274, 3896, 2640, 1640, 935, 489];
const FILTER1: [u16; 9] = [1244, 3663, 7925, 12590, 14692, 12590, 7925, 3663, 1244];
const FILTER2: [u16; 5] = [3571, 16004, 26386, 16004, 3571];
const FILTER3: [u16; 3] = [10904, 43728, 10904];
const FILTERS: [&[u16]; 4] = [&FILTER0, &FILTER1, &FILTER2, &FILTER3];

/// The noise variance, 2.0 in 16.16 fixed point.
const SIGMA_NSQ: u32 = 2 << 16;
/// libvmaf's default `vif_enhn_gain_limit`.
const GAIN_LIMIT: f64 = 100.0;

/// `round(log2(i) * 2048)` for the 16-bit mantissas `32767..=65535`.
fn log2_table() -> &'static [u16; 65536] {
    static TABLE: OnceLock<Box<[u16; 65536]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u16; 65536]);
        for (i, v) in t.iter_mut().enumerate().skip(32767) {
            // libvmaf uses single-precision log2f; a correctly rounded float
            // log2 is the double result rounded to float.
            let l = (i as f64).log2() as f32;
            *v = f64::from(l * 2048.0).round() as u16;
        }
        t
    })
}

/// Reflect an index into `0..n` without repeating the edge sample.
#[inline]
pub(crate) fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = if i < 0 {
        -i
    } else if i >= n {
        2 * n - i - 2
    } else {
        i
    };
    m.clamp(0, (n - 1).max(0)) as usize
}

/// Fill `half` mirrored samples on each side of `buf[half..half + w]`.
#[inline]
fn pad_row<T: Copy>(buf: &mut [T], half: usize, w: usize) {
    for f in 1..=half {
        buf[half - f] = buf[half + mirror(-(f as isize), w)];
        buf[half + w - 1 + f] = buf[half + mirror((w - 1 + f) as isize, w)];
    }
}


/// Accumulators of one scale's statistic.
#[derive(Default)]
struct Accum {
    num_log: i64,
    den_log: i64,
    num_non_log: i64,
    den_non_log: i64,
}

/// Per-lane accumulators, reduced into an [`Accum`] at the end of a scale.
struct Lanes<const N: usize> {
    num_log: [i64; N],
    den_log: [i64; N],
    num_non_log: [i64; N],
    den_non_log: [i64; N],
}

impl<const N: usize> Lanes<N> {
    fn new() -> Self {
        Lanes { num_log: [0; N], den_log: [0; N], num_non_log: [0; N], den_non_log: [0; N] }
    }

    fn add_to(&self, acc: &mut Accum) {
        acc.num_log += self.num_log.iter().sum::<i64>();
        acc.den_log += self.den_log.iter().sum::<i64>();
        acc.num_non_log += self.num_non_log.iter().sum::<i64>();
        acc.den_non_log += self.den_non_log.iter().sum::<i64>();
    }
}

/// The log2 table's upper half as `u32` (`[m - 32768]` for the normalised
/// mantissas `m` in `32768..=65535`), which vector gathers can read.
fn log2_table32() -> &'static [u32; 32768] {
    static TABLE: OnceLock<Box<[u32; 32768]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let t16 = log2_table();
        let mut t = Box::new([0u32; 32768]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = u32::from(t16[i + 32768]);
        }
        t
    })
}

/// log2(v) * 2048 for `v >= 2^15` (any value for other `v`, never a panic).
#[inline(always)]
fn log2_lane(table: &[u32; 32768], v: u64) -> i64 {
    let k = 48 - v.leading_zeros() as i64;
    let m = if k >= 0 { v >> (k & 63) } else { v << ((-k) & 63) };
    i64::from(table[(m as usize) & 0x7fff]) + 2048 * k
}

/// The statistic of `N` pixels' (co)variances (the scalar path).
#[inline(always)]
fn accum_block<const N: usize>(acc: &mut Lanes<N>, table: &[u32; 32768], s1: &[i32; N], s2: &[i32; N], s12: &[i32; N]) {
    const EPS: f64 = 65536.0 * 1.0e-10;
    for l in 0..N {
        let (a, b, c) = (s1[l], s2[l], s12[l]);
        if i64::from(a) >= i64::from(SIGMA_NSQ) {
            acc.den_log[l] += log2_lane(table, u64::from(SIGMA_NSQ.wrapping_add(a as u32))) - 2048 * 17;
            if c > 0 && b > 0 {
                let g = f64::from(c) / (f64::from(a) + EPS);
                let sv_sq = (f64::from(b) - g * f64::from(c)) as i32;
                let sv_sq = sv_sq.max(0) as u32;
                let g = g.min(GAIN_LIMIT);
                let numer1 = sv_sq.wrapping_add(SIGMA_NSQ);
                let numer1_tmp = ((g * g * f64::from(a)) as i64).wrapping_add(i64::from(numer1));
                acc.num_log[l] += log2_lane(table, numer1_tmp as u64) - log2_lane(table, u64::from(numer1));
            }
        } else {
            acc.num_non_log[l] += i64::from(b);
            acc.den_non_log[l] += 1;
        }
    }
}

/// A symmetric filter folded around its centre: `c` weighs the centre tap,
/// `p[k - 1]` the two taps `k` away.
#[derive(Clone, Copy)]
struct Folded {
    half: usize,
    c: u32,
    p: [u32; 8],
}

impl Folded {
    fn new(filt: &[u16]) -> Folded {
        let half = filt.len() / 2;
        let mut p = [0u32; 8];
        for (k, v) in p.iter_mut().enumerate().take(half) {
            *v = u32::from(filt[half + k + 1]);
        }
        Folded { half, c: u32::from(filt[half]), p }
    }
}

/// `N` samples of `s` from `c`, widened (zeros if out of range, which the
/// callers never are).
#[inline(always)]
fn ld<const N: usize>(s: &[u16], c: usize) -> [u32; N] {
    let mut o = [0u32; N];
    if let Some(Ok(x)) = s.get(c..c + N).map(<&[u16; N]>::try_from) {
        for l in 0..N {
            o[l] = u32::from(x[l]);
        }
    }
    o
}

/// [`ld`] of rows stored offset by [`XOR`].
#[inline(always)]
fn ld_x<const N: usize>(s: &[u16], c: usize) -> [u32; N] {
    let mut o = [0u32; N];
    if let Some(Ok(x)) = s.get(c..c + N).map(<&[u16; N]>::try_from) {
        for l in 0..N {
            o[l] = u32::from(x[l] ^ XOR);
        }
    }
    o
}

/// [`st`] offset by [`XOR`].
#[inline(always)]
fn st_x<const N: usize>(s: &mut [u16], c: usize, v: &[u32; N]) {
    if let Some(Ok(x)) = s.get_mut(c..c + N).map(<&mut [u16; N]>::try_from) {
        for l in 0..N {
            x[l] = (v[l] as u16) ^ XOR;
        }
    }
}

#[inline(always)]
fn st<const N: usize>(s: &mut [u16], c: usize, v: &[u32; N]) {
    if let Some(Ok(x)) = s.get_mut(c..c + N).map(<&mut [u16; N]>::try_from) {
        for l in 0..N {
            x[l] = v[l] as u16;
        }
    }
}

/// Rounding of one scale's vertical pass.
#[derive(Clone, Copy)]
struct VShift {
    mu_shift: u32,
    mu_round: u32,
    sq_shift: u32,
    sq_round: u32,
}

/// Vertical pass of columns `c..c + N`: means (rounded to 16 bits) and the
/// second moments (rounded to 32 bits, split into 16-bit halves) written to
/// `out` (mu1, mu2, xx lo/hi, yy lo/hi, xy lo/hi) at `o + c`.
#[inline(always)]
fn vblock<const N: usize, const H: usize, const EXACT: bool>(
    tp: &[&[u16]; 17],
    tq: &[&[u16]; 17],
    f: &Folded,
    sh: VShift,
    c: usize,
    out: &mut [Vec<u16>; 8],
    o: usize,
) {
    let half = H;
    let mut m1 = [0u32; N];
    let mut m2 = [0u32; N];
    let mut xl = [0u32; N];
    let mut xh = [0u32; N];
    let mut yl = [0u32; N];
    let mut yh = [0u32; N];
    let mut zl = [0u32; N];
    let mut zh = [0u32; N];
    {
        let p = ld::<N>(tp[half], c);
        let q = ld::<N>(tq[half], c);
        let fc = f.c;
        for l in 0..N {
            m1[l] = fc * p[l];
            m2[l] = fc * q[l];
            if EXACT {
                xl[l] = fc * (p[l] * p[l]);
                yl[l] = fc * (q[l] * q[l]);
                zl[l] = fc * (p[l] * q[l]);
            } else {
                let (pp, qq, pq) = (p[l] * p[l], q[l] * q[l], p[l] * q[l]);
                xl[l] = fc * (pp & 0xffff);
                xh[l] = fc * (pp >> 16);
                yl[l] = fc * (qq & 0xffff);
                yh[l] = fc * (qq >> 16);
                zl[l] = fc * (pq & 0xffff);
                zh[l] = fc * (pq >> 16);
            }
        }
    }
    for k in 1..=half {
        let fk = f.p[k - 1];
        let pa = ld::<N>(tp[half - k], c);
        let pb = ld::<N>(tp[half + k], c);
        let qa = ld::<N>(tq[half - k], c);
        let qb = ld::<N>(tq[half + k], c);
        for l in 0..N {
            m1[l] = m1[l].wrapping_add(fk * (pa[l] + pb[l]));
            m2[l] = m2[l].wrapping_add(fk * (qa[l] + qb[l]));
            if EXACT {
                xl[l] = xl[l].wrapping_add(fk * (pa[l] * pa[l] + pb[l] * pb[l]));
                yl[l] = yl[l].wrapping_add(fk * (qa[l] * qa[l] + qb[l] * qb[l]));
                zl[l] = zl[l].wrapping_add(fk * (pa[l] * qa[l] + pb[l] * qb[l]));
            } else {
                let (ppa, ppb) = (pa[l] * pa[l], pb[l] * pb[l]);
                let (qqa, qqb) = (qa[l] * qa[l], qb[l] * qb[l]);
                let (pqa, pqb) = (pa[l] * qa[l], pb[l] * qb[l]);
                xl[l] = xl[l].wrapping_add(fk * ((ppa & 0xffff) + (ppb & 0xffff)));
                xh[l] = xh[l].wrapping_add(fk * ((ppa >> 16) + (ppb >> 16)));
                yl[l] = yl[l].wrapping_add(fk * ((qqa & 0xffff) + (qqb & 0xffff)));
                yh[l] = yh[l].wrapping_add(fk * ((qqa >> 16) + (qqb >> 16)));
                zl[l] = zl[l].wrapping_add(fk * ((pqa & 0xffff) + (pqb & 0xffff)));
                zh[l] = zh[l].wrapping_add(fk * ((pqa >> 16) + (pqb >> 16)));
            }
        }
    }
    let mut r = [[0u32; N]; 8];
    for l in 0..N {
        r[0][l] = m1[l].wrapping_add(sh.mu_round) >> sh.mu_shift;
        r[1][l] = m2[l].wrapping_add(sh.mu_round) >> sh.mu_shift;
        let (x, y, z) = if EXACT {
            (xl[l], yl[l], zl[l])
        } else {
            let s = sh.sq_shift;
            let r = sh.sq_round;
            (
                (xh[l] << (16 - s)).wrapping_add(xl[l].wrapping_add(r) >> s),
                (yh[l] << (16 - s)).wrapping_add(yl[l].wrapping_add(r) >> s),
                (zh[l] << (16 - s)).wrapping_add(zl[l].wrapping_add(r) >> s),
            )
        };
        r[2][l] = x & 0xffff;
        r[3][l] = x >> 16;
        r[4][l] = y & 0xffff;
        r[5][l] = y >> 16;
        r[6][l] = z & 0xffff;
        r[7][l] = z >> 16;
    }
    for (row, v) in out.iter_mut().zip(&r) {
        st_x::<N>(row, o + c, v);
    }
}

/// The folded filter over `N` outputs from padded index `c + half`.
#[inline(always)]
fn hsum<const N: usize, const H: usize>(row: &[u16], c: usize, f: &Folded) -> [u32; N] {
    let half = H;
    let x = ld_x::<N>(row, c + half);
    let mut a = [0u32; N];
    for l in 0..N {
        a[l] = f.c * x[l];
    }
    for k in 1..=half {
        let fk = f.p[k - 1];
        let xa = ld_x::<N>(row, c + half - k);
        let xb = ld_x::<N>(row, c + half + k);
        for l in 0..N {
            a[l] = a[l].wrapping_add(fk * (xa[l] + xb[l]));
        }
    }
    a
}

/// Horizontal pass of columns `c..c + N`, the local (co)variances and
/// their statistic.
#[inline(always)]
fn hblock<const N: usize, const H: usize>(rows: &[Vec<u16>; 8], f: &Folded, c: usize, out: &mut [[i32; N]; 3]) {
    let mu1 = hsum::<N, H>(&rows[0], c, f);
    let mu2 = hsum::<N, H>(&rows[1], c, f);
    let mut sq = [[0u32; N]; 3];
    for (t, s) in sq.iter_mut().enumerate() {
        let lo = hsum::<N, H>(&rows[2 + 2 * t], c, f);
        let hi = hsum::<N, H>(&rows[3 + 2 * t], c, f);
        for l in 0..N {
            s[l] = hi[l].wrapping_add(lo[l].wrapping_add(32768) >> 16);
        }
    }
    let [o1, o2, o12] = out;
    for l in 0..N {
        let (a, b) = (u64::from(mu1[l]), u64::from(mu2[l]));
        let mu1_sq = ((a * a + 0x8000_0000) >> 32) as u32;
        let mu2_sq = ((b * b + 0x8000_0000) >> 32) as u32;
        let mu12 = ((a * b + 0x8000_0000) >> 32) as u32;
        o1[l] = sq[0][l].wrapping_sub(mu1_sq) as i32;
        o2[l] = (sq[1][l].wrapping_sub(mu2_sq) as i32).max(0);
        o12[l] = sq[2][l].wrapping_sub(mu12) as i32;
    }
}

/// The rows a vertical filter centred on row `i` reads.
#[inline(always)]
fn column_taps(plane: &[u16], i: usize, w: usize, h: usize, half: usize) -> [&[u16]; 17] {
    let mut t: [&[u16]; 17] = [&[]; 17];
    for (k, s) in t.iter_mut().enumerate().take(2 * half + 1) {
        let r = mirror(i as isize + k as isize - half as isize, h);
        *s = plane.get(r * w..r * w + w).unwrap_or(&[]);
    }
    t
}

/// One scale's (numerator, denominator). At scale 0 the vertical pass rounds
/// by the sample depth instead of 16 bits.
#[inline(always)]
fn statistic<const B: usize, const H: usize, const EXACT: bool, const ISA: u8>(rf: &[u16], ds: &[u16], w: usize, h: usize, scale: usize, bpc: u32) -> (f32, f32) {
    let f = Folded::new(FILTERS[scale]);
    let half = f.half;
    let (mu_shift, sq_shift) = if scale == 0 { (bpc, 2 * (bpc - 8)) } else { (16, 16) };
    let sh = VShift {
        mu_shift,
        mu_round: 1u32 << (mu_shift - 1),
        sq_shift,
        sq_round: if sq_shift == 0 { 0 } else { 1u32 << (sq_shift - 1) },
    };
    let table = log2_table32();
    let mut acc = Accum::default();
    let mut lanes = Lanes::<B>::new();
    let mut lane1 = Lanes::<1>::new();
    let pw = w + 2 * half;
    // One spare sample past the padding for the paired loads of `hrow`.
    let mut rows: [Vec<u16>; 8] = std::array::from_fn(|_| vec![0u16; pw + 1]);
    let filt = FILTERS[scale];
    let mut coef = [0i32; 9];
    for (m, v) in coef.iter_mut().enumerate().take(half + 1) {
        let lo = u32::from(filt[2 * m]);
        let hi = filt.get(2 * m + 1).map_or(0, |&x| u32::from(x));
        *v = (lo | (hi << 16)) as i32;
    }
    let corr = filt.iter().fold(0u32, |a, &x| a.wrapping_add(u32::from(x) << 15));
    // pmaddwd needs taps below 2^15 (all but scale 3's).
    let paired = filt.iter().all(|&x| x < 0x8000);
    let mut s1 = vec![0i32; w];
    let mut s2 = vec![0i32; w];
    let mut s12 = vec![0i32; w];
    let wb = w / B * B;
    for i in 0..h {
        let tp = column_taps(rf, i, w, h, half);
        let tq = column_taps(ds, i, w, h, half);
        let mut c = 0;
        while c < wb {
            vblock::<B, H, EXACT>(&tp, &tq, &f, sh, c, &mut rows, half);
            c += B;
        }
        for c in wb..w {
            vblock::<1, H, EXACT>(&tp, &tq, &f, sh, c, &mut rows, half);
        }
        for row in rows.iter_mut() {
            pad_row(row, half, w);
        }
        let mut c = 0;
        #[cfg(target_arch = "x86_64")]
        if paired {
            #[allow(unsafe_code)]
            // SAFETY: ISA is 1 or 2 only on the paths isa() chose after
            // checking every feature the kernels enable.
            {
                c = match (ISA, H) {
                    (2, 8) => unsafe { avx512::hrow::<9>(&rows, &coef, corr, w, &mut s1, &mut s2, &mut s12) },
                    (2, 4) => unsafe { avx512::hrow::<5>(&rows, &coef, corr, w, &mut s1, &mut s2, &mut s12) },
                    (2, 2) => unsafe { avx512::hrow::<3>(&rows, &coef, corr, w, &mut s1, &mut s2, &mut s12) },
                    (1, 8) => unsafe { avx2::hrow::<9>(&rows, &coef, corr, w, &mut s1, &mut s2, &mut s12) },
                    (1, 4) => unsafe { avx2::hrow::<5>(&rows, &coef, corr, w, &mut s1, &mut s2, &mut s12) },
                    (1, 2) => unsafe { avx2::hrow::<3>(&rows, &coef, corr, w, &mut s1, &mut s2, &mut s12) },
                    _ => 0,
                };
            }
        }
        while c + B <= w {
            let mut o = [[0i32; B]; 3];
            hblock::<B, H>(&rows, &f, c, &mut o);
            s1[c..c + B].copy_from_slice(&o[0]);
            s2[c..c + B].copy_from_slice(&o[1]);
            s12[c..c + B].copy_from_slice(&o[2]);
            c += B;
        }
        for c in c..w {
            let mut o = [[0i32; 1]; 3];
            hblock::<1, H>(&rows, &f, c, &mut o);
            s1[c] = o[0][0];
            s2[c] = o[1][0];
            s12[c] = o[2][0];
        }
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: ISA is 1 or 2 only on the paths isa() chose after checking
        // every feature accum_row enables.
        let done = match ISA {
            2 => unsafe { avx512::accum_row(&mut acc, table, &s1, &s2, &s12) },
            1 => unsafe { avx2::accum_row(&mut acc, table, &s1, &s2, &s12) },
            _ => 0,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        let mut c = done;
        while c + B <= w {
            let blk = |s: &[i32]| -> [i32; B] { std::array::from_fn(|l| s[c + l]) };
            accum_block::<B>(&mut lanes, table, &blk(&s1), &blk(&s2), &blk(&s12));
            c += B;
        }
        for c in c..w {
            accum_block::<1>(&mut lane1, table, &[s1[c]], &[s2[c]], &[s12[c]]);
        }
    }
    lanes.add_to(&mut acc);
    lane1.add_to(&mut acc);

    let num = acc.num_log as f64 / 2048.0
        + (acc.den_non_log as f64 - (acc.num_non_log as f64 / 16384.0) / 65025.0);
    let den = acc.den_log as f64 / 2048.0 + acc.den_non_log as f64;
    (num as f32, den as f32)
}

/// Vertical low-pass of one plane's columns `c..c + N`, rounded by `shift`.
#[inline(always)]
fn vsub<const N: usize, const H: usize>(t: &[&[u16]; 17], f: &Folded, c: usize, round: u32, shift: u32, out: &mut [u16], o: usize) {
    let half = H;
    let x = ld::<N>(t[half], c);
    let mut a = [0u32; N];
    for l in 0..N {
        a[l] = f.c * x[l];
    }
    for k in 1..=half {
        let fk = f.p[k - 1];
        let xa = ld::<N>(t[half - k], c);
        let xb = ld::<N>(t[half + k], c);
        for l in 0..N {
            a[l] = a[l].wrapping_add(fk * (xa[l] + xb[l]));
        }
    }
    for v in a.iter_mut() {
        *v = v.wrapping_add(round) >> shift;
    }
    st::<N>(out, o + c, &a);
}

/// Horizontal low-pass at even columns: outputs `c..c + N` of a padded row
/// split into its even (`ev`) and odd (`od`) samples.
#[inline(always)]
fn hsub<const N: usize, const H: usize>(ev: &[u16], od: &[u16], f: &Folded, c: usize, out: &mut [u16]) {
    let half = H;
    // Padded index of output j's centre is 2j + half.
    let at = |d: usize| -> [u32; N] {
        if d.is_multiple_of(2) {
            ld::<N>(ev, c + d / 2)
        } else {
            ld::<N>(od, c + d / 2)
        }
    };
    let x = at(half);
    let mut a = [0u32; N];
    for l in 0..N {
        a[l] = f.c * x[l];
    }
    for k in 1..=half {
        let fk = f.p[k - 1];
        let xa = at(half - k);
        let xb = at(half + k);
        for l in 0..N {
            a[l] = a[l].wrapping_add(fk * (xa[l] + xb[l]));
        }
    }
    for v in a.iter_mut() {
        *v = v.wrapping_add(32768) >> 16;
    }
    st::<N>(out, c, &a);
}

/// Low-pass with `filt` and keep every other row and column.
#[inline(always)]
fn subsample<const B: usize, const H: usize>(src: &[u16], w: usize, h: usize, filt: &[u16], v_shift: u32) -> Vec<u16> {
    let f = Folded::new(filt);
    let half = f.half;
    let (w2, h2) = (w / 2, h / 2);
    let v_round = 1u32 << (v_shift - 1);
    let mut out = vec![0u16; w2 * h2];
    let pw = w + 2 * half;
    let mut row = vec![0u16; pw + 1];
    let mut ev = vec![0u16; pw.div_ceil(2)];
    let mut od = vec![0u16; pw.div_ceil(2)];
    let wb = w / B * B;
    let w2b = w2 / B * B;
    for (i2, orow) in out.chunks_exact_mut(w2.max(1)).enumerate().take(h2) {
        let t = column_taps(src, 2 * i2, w, h, half);
        let mut c = 0;
        while c < wb {
            vsub::<B, H>(&t, &f, c, v_round, v_shift, &mut row, half);
            c += B;
        }
        for c in wb..w {
            vsub::<1, H>(&t, &f, c, v_round, v_shift, &mut row, half);
        }
        pad_row(&mut row, half, w);
        for (m, (e, o)) in ev.iter_mut().zip(od.iter_mut()).enumerate() {
            *e = row[2 * m];
            *o = row[2 * m + 1];
        }
        let mut c = 0;
        while c < w2b {
            hsub::<B, H>(&ev, &od, &f, c, orow);
            c += B;
        }
        for c in w2b..w2 {
            hsub::<1, H>(&ev, &od, &f, c, orow);
        }
    }
    out
}

/// The four scales, each kernel `B` columns wide.
#[inline(always)]
fn vif_impl<const B: usize, const ISA: u8>(rf0: &[u16], ds0: &[u16], w: usize, h: usize, bpc: u32) -> VifScore {
    let mut out = VifScore { scale: [1.0; 4], num: [0.0; 4], den: [0.0; 4] };
    let mut rf: std::borrow::Cow<[u16]> = std::borrow::Cow::Borrowed(rf0);
    let mut ds: std::borrow::Cow<[u16]> = std::borrow::Cow::Borrowed(ds0);
    let (mut cw, mut ch) = (w, h);
    for scale in 0..4 {
        if scale > 0 {
            let shift = if scale == 1 { bpc } else { 16 };
            let fs = FILTERS[scale];
            let (nr, nd) = match scale {
                1 => (subsample::<B, 4>(&rf, cw, ch, fs, shift), subsample::<B, 4>(&ds, cw, ch, fs, shift)),
                2 => (subsample::<B, 2>(&rf, cw, ch, fs, shift), subsample::<B, 2>(&ds, cw, ch, fs, shift)),
                _ => (subsample::<B, 1>(&rf, cw, ch, fs, shift), subsample::<B, 1>(&ds, cw, ch, fs, shift)),
            };
            rf = nr.into();
            ds = nd.into();
            cw /= 2;
            ch /= 2;
        }
        let (num, den) = match (scale, bpc) {
            (0, 8) => statistic::<B, 8, true, ISA>(&rf, &ds, cw, ch, scale, bpc),
            (0, _) => statistic::<B, 8, false, ISA>(&rf, &ds, cw, ch, scale, bpc),
            (1, _) => statistic::<B, 4, false, ISA>(&rf, &ds, cw, ch, scale, bpc),
            (2, _) => statistic::<B, 2, false, ISA>(&rf, &ds, cw, ch, scale, bpc),
            _ => statistic::<B, 1, false, ISA>(&rf, &ds, cw, ch, scale, bpc),
        };
        out.num[scale] = num;
        out.den[scale] = den;
        out.scale[scale] = f64::from(num / den);
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn vif_avx512(rf: &[u16], ds: &[u16], w: usize, h: usize, bpc: u32) -> VifScore {
    vif_impl::<16, 2>(rf, ds, w, h, bpc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn vif_avx2(rf: &[u16], ds: &[u16], w: usize, h: usize, bpc: u32) -> VifScore {
    vif_impl::<8, 1>(rf, ds, w, h, bpc)
}

/// VIF of `distorted` against `reference` at libvmaf's four scales.
///
/// Both planes must have the same size and depth; sizes below 16x16 (where
/// the coarsest scale would have fewer rows or columns than its filter
/// reaches) return all-ones scores.
pub fn vif(reference: &Plane, distorted: &Plane) -> VifScore {
    let (w, h) = (reference.width, reference.height);
    let n = w * h;
    if w < 16
        || h < 16
        || distorted.width != w
        || distorted.height != h
        || reference.data.len() < n
        || distorted.data.len() < n
    {
        return VifScore { scale: [1.0; 4], num: [0.0; 4], den: [0.0; 4] };
    }
    let bpc = u32::from(reference.bpc.clamp(8, 16));
    let (rf, ds) = (&reference.data[..n], &distorted.data[..n]);
    #[cfg(target_arch = "x86_64")]
    match isa() {
        Isa::Avx512 => {
            #[allow(unsafe_code)]
            // SAFETY: isa() checked that the CPU has every feature vif_avx512 enables.
            return unsafe { vif_avx512(rf, ds, w, h, bpc) };
        }
        Isa::Avx2 => {
            #[allow(unsafe_code)]
            // SAFETY: isa() checked that the CPU has every feature vif_avx2 enables.
            return unsafe { vif_avx2(rf, ds, w, h, bpc) };
        }
        Isa::Base => {}
    }
    vif_impl::<8, 0>(rf, ds, w, h, bpc)
}
