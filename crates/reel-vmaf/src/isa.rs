//! Which instruction-set build of the kernels this CPU runs, decided once
//! for the whole crate (VIF, ADM and motion dispatch on the same answer).

/// The kernel builds: AVX-512, AVX2, or the portable code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Base,
}

/// The widest build whose every feature this CPU has. A non-empty
/// `REEL_VMAF_NO_AVX512` caps it at AVX2 and a non-empty `REEL_VMAF_NO_SIMD`
/// selects the portable build (for tests and benches; every build gives
/// the same scores).
#[cfg(target_arch = "x86_64")]
pub(crate) fn isa() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        if set("REEL_VMAF_NO_SIMD") {
            return Isa::Base;
        }
        let avx2 = has!("avx2") && has!("fma") && has!("bmi1") && has!("bmi2") && has!("lzcnt") && has!("popcnt");
        let avx512 =
            avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") && has!("avx512cd");
        if avx512 && !set("REEL_VMAF_NO_AVX512") {
            Isa::Avx512
        } else if avx2 {
            Isa::Avx2
        } else {
            Isa::Base
        }
    })
}

/// Other architectures run the portable build.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn isa() -> Isa {
    Isa::Base
}
