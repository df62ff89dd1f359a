//! Pieces shared by all levels: the Watson noise-floor model, the
//! reciprocal table, frame regions and the angle test.

/// Luma parameters of Watson et al.'s DWT visibility model:
/// amplitude `a`, `k`, `f0` and the per-orientation `g`.
const MODEL_A: f32 = 0.495;
const MODEL_K: f32 = 0.466;
const MODEL_F0: f32 = 0.401;
const MODEL_G: [f32; 4] = [1.501, 1.0, 0.534, 1.0];

/// Basis function amplitudes A(lambda, theta) of the 7/9 wavelet.
const BASIS_AMP: [[f32; 4]; 4] = [
    [0.62171, 0.67234, 0.72709, 0.67234],
    [0.34537, 0.41317, 0.49428, 0.41317],
    [0.18004, 0.22727, 0.28688, 0.22727],
    [0.091401, 0.11792, 0.15214, 0.11792],
];

/// Viewing distance in picture heights and reference display height.
const VIEW_DIST: f64 = 3.0;
const DISPLAY_HEIGHT: f64 = 1080.0;

/// Visibility threshold (quantisation step) for `scale` and orientation
/// `theta` (1 = horizontal/vertical, 2 = diagonal), in single precision as
/// libvmaf computes it.
fn quant_step(scale: usize, theta: usize) -> f32 {
    let r = (VIEW_DIST * DISPLAY_HEIGHT * std::f64::consts::PI / 180.0) as f32;
    let two_pow = f64::from(1u32 << (scale + 1));
    let temp =
        (two_pow * f64::from(MODEL_F0) * f64::from(MODEL_G[theta]) / f64::from(r)).log10() as f32;
    // The exponent is formed in single precision.
    let expo = f64::from(MODEL_K * temp * temp);
    (2.0 * f64::from(MODEL_A) * 10f64.powf(expo) / f64::from(BASIS_AMP[scale][theta])) as f32
}

/// Reciprocal thresholds for the h, v and d bands of `scale`.
pub fn rfactor(scale: usize) -> [f32; 3] {
    let f1 = quant_step(scale, 1);
    let f2 = quant_step(scale, 2);
    [1.0 / f1, 1.0 / f1, 1.0 / f2]
}

/// `trunc(2^30 / m)` for `1 <= m <= 2^15`, libvmaf's reciprocal table
/// entry. The f64 quotient is exact enough: the true quotient is at least
/// `1/m` away from the next integer, far more than the rounding error.
/// The truncation goes through the 2^52 + 2^51 rounding constant instead of
/// a float -> int cast, whose saturating semantics do not vectorise on AVX2.
#[inline(always)]
pub fn recip30(m: i32) -> i32 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let d = 1_073_741_824.0 / f64::from(m);
    // Round to nearest, then step down if that went up: floor(d) = trunc(d).
    let x = d + MAGIC;
    let nearest = x - MAGIC;
    (x.to_bits() as i32) - i32::from(nearest > d)
}

/// `cos(1 degree)^2` rounded to single precision.
pub fn cos1_sq() -> f64 {
    let c = (std::f64::consts::PI / 180.0).cos();
    f64::from((c * c) as f32)
}

/// Is the distorted (h, v) vector within one degree of the reference one?
/// Evaluated in the mixed float/double precision of libvmaf.
#[inline(always)]
pub fn within_one_degree(cos_sq: f64, oh: i64, ov: i64, th: i64, tv: i64) -> bool {
    let dot = oh * th + ov * tv;
    let o2 = oh * oh + ov * ov;
    let t2 = th * th + tv * tv;
    let dp = f64::from(dot as f32) / 4096.0;
    dp >= 0.0
        && dp * dp >= cos_sq * (f64::from(o2 as f32) / 4096.0) * (f64::from(t2 as f32) / 4096.0)
}

/// Half-open rectangle `[top, bottom) x [left, right)`.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Region {
    pub fn area(&self) -> usize {
        (self.bottom - self.top) * (self.right - self.left)
    }
}

/// Border cut on one axis: `n * 0.1 - 0.5`, truncated toward zero.
fn border(n: usize) -> i64 {
    (n as f64 * 0.1 - 0.5) as i64
}

/// The scored region (10% border removed on every side).
pub fn inner_region(w: usize, h: usize) -> Region {
    let l = border(w).clamp(0, w as i64 / 2) as usize;
    let t = border(h).clamp(0, h as i64 / 2) as usize;
    Region {
        top: t,
        bottom: h - t,
        left: l,
        right: w - l,
    }
}

/// The scored region widened by the one-sample reach of the masking filter
/// (and then some, as libvmaf does), clipped to the band.
pub fn outer_region(w: usize, h: usize) -> Region {
    let axis = |n: usize| -> (usize, usize) {
        let lo = (n as f64 * 0.1 - 0.5 - 1.0) as i64;
        let hi = n as i64 - lo + 2;
        (
            lo.clamp(0, n as i64) as usize,
            hi.clamp(0, n as i64) as usize,
        )
    };
    let (left, right) = axis(w);
    let (top, bottom) = axis(h);
    Region {
        top,
        bottom: bottom.max(top),
        left,
        right: right.max(left),
    }
}

/// `ceil(log2(n))` as libvmaf evaluates it in double precision, negative
/// results clamped to zero (only reachable for frames libvmaf rejects).
pub fn ceil_log2_minus(n: usize, minus: f64) -> u32 {
    let v = ((n.max(1)) as f64).log2() - minus;
    v.ceil().max(0.0) as u32
}

/// Rounding offset for a right shift by `s` (zero when `s == 0`).
pub fn half(s: u32) -> i64 {
    if s == 0 {
        0
    } else {
        1i64 << (s - 1)
    }
}

/// Row indices above and below `i` for the 3x3 masking neighbourhood:
/// the first row reflects (1, 0, 1), the last repeats (h-2, h-1, h-1).
#[inline]
pub fn neighbours(i: usize, n: usize) -> (usize, usize) {
    let last = n.saturating_sub(1);
    let prev = if i == 0 { 1.min(last) } else { i - 1 };
    let next = if i >= last { last } else { i + 1 };
    (prev, next)
}

/// The decoupled rows (restored detail `r`, CSF-weighted impairment `csf`
/// and its masking contribution `flt`) of the three most recent band rows:
/// the numerator only ever needs rows `i - 1 ..= i + 1`, so the decoupling
/// is computed row by row into this ring instead of whole planes. Each
/// buffer holds the h, v and d orientations back to back (`3 * w`).
pub struct RowCache<T> {
    w: usize,
    tag: [usize; 3],
    r: [Vec<T>; 3],
    csf: [Vec<T>; 3],
    flt: [Vec<T>; 3],
}

impl<T: Copy + Default> RowCache<T> {
    pub fn new(w: usize) -> Self {
        let v = || vec![T::default(); 3 * w];
        RowCache {
            w,
            tag: [usize::MAX; 3],
            r: [v(), v(), v()],
            csf: [v(), v(), v()],
            flt: [v(), v(), v()],
        }
    }

    /// The buffers (r, csf, flt) of row `row` if it still has to be
    /// computed, which the caller must then do; `None` when cached. Rows
    /// used together must differ by at most 2. (No closure here: closures
    /// would not inherit the SIMD target features of the caller.)
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    pub fn missing(&mut self, row: usize) -> Option<(&mut [T], &mut [T], &mut [T])> {
        let k = row % 3;
        if self.tag[k] == row {
            return None;
        }
        self.tag[k] = row;
        Some((&mut self.r[k], &mut self.csf[k], &mut self.flt[k]))
    }

    /// Orientation `b` of the restored detail of a cached row.
    #[inline(always)]
    pub fn r(&self, row: usize, b: usize) -> &[T] {
        &self.r[row % 3][b * self.w..(b + 1) * self.w]
    }

    #[inline(always)]
    pub fn csf(&self, row: usize, b: usize) -> &[T] {
        &self.csf[row % 3][b * self.w..(b + 1) * self.w]
    }

    #[inline(always)]
    pub fn flt(&self, row: usize, b: usize) -> &[T] {
        &self.flt[row % 3][b * self.w..(b + 1) * self.w]
    }
}

/// Zero the parts of the three `w`-long orientation rows in `buf` that lie
/// outside `left..right` (all of them when `all`).
#[inline(always)]
pub fn zero_outside<T: Copy + Default>(
    buf: &mut [T],
    w: usize,
    left: usize,
    right: usize,
    all: bool,
) {
    for row in buf.chunks_exact_mut(w) {
        if all {
            row.fill(T::default());
        } else {
            row[..left].fill(T::default());
            row[right..].fill(T::default());
        }
    }
}

/// Per-thread pool of work buffers: a frame needs a few dozen planes of
/// intermediates and fresh allocations of that size cost page faults on
/// every frame. Buffers are handed out with stale contents: for output
/// planes that are overwritten in full.
pub mod pool {
    use std::cell::RefCell;

    thread_local! {
        static P16: RefCell<Vec<Vec<i16>>> = const { RefCell::new(Vec::new()) };
        static P32: RefCell<Vec<Vec<i32>>> = const { RefCell::new(Vec::new()) };
    }

    fn pick<T: Copy + Default>(pool: &mut Vec<Vec<T>>, len: usize) -> Vec<T> {
        // Smallest buffer that fits, else the largest one, else a new one.
        let fit = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)
            .or_else(|| {
                pool.iter()
                    .enumerate()
                    .max_by_key(|(_, v)| v.capacity())
                    .map(|(i, _)| i)
            });
        let mut v = match fit {
            Some(i) => pool.swap_remove(i),
            None => Vec::new(),
        };
        v.truncate(len);
        v.resize(len, T::default());
        v
    }

    /// A buffer whose every element the caller overwrites: only the part
    /// beyond any earlier contents is zeroed (saves a memset per plane).
    pub fn i16s_dirty(len: usize) -> Vec<i16> {
        P16.with(|p| pick(&mut p.borrow_mut(), len))
    }

    /// See [`i16s_dirty`].
    pub fn i32s_dirty(len: usize) -> Vec<i32> {
        P32.with(|p| pick(&mut p.borrow_mut(), len))
    }

    pub fn put16(v: Vec<i16>) {
        P16.with(|p| p.borrow_mut().push(v));
    }

    pub fn put32(v: Vec<i32>) {
        P32.with(|p| p.borrow_mut().push(v));
    }
}
