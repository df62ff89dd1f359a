//! Which instruction-set build of a hot loop this CPU runs. The engines
//! (VMAF, change points, recommendations) ship their kernels as an
//! AVX-512, an AVX2 and a portable build and pick one at run time; this is
//! the one place that says what each build may assume, so no engine calls
//! a build its CPU cannot run.
//!
//! The levels are x86-64's microarchitecture levels: [`Isa::Avx2`] is
//! x86-64-v3 (AVX2, FMA, BMI1/2, LZCNT, POPCNT), [`Isa::Avx512`] is
//! x86-64-v4 (v3 plus AVX-512 F, BW, CD, DQ, VL). A build compiled with
//! `#[target_feature(enable = …)]` must enable no more than its level.

/// A kernel build.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Isa {
    /// x86-64-v4.
    Avx512,
    /// x86-64-v3.
    Avx2,
    /// Whatever the target was compiled for (SSE2 on x86-64).
    Base,
}

/// The widest build this CPU runs, capped by the environment: a non-empty
/// `{prefix}_NO_AVX512` stops at AVX2 and a non-empty `{prefix}_NO_SIMD`
/// selects the portable build (tests and benches compare the builds this
/// way). Each engine calls it once and keeps the answer.
pub fn detect(prefix: &str) -> Isa {
    let set = |suffix: &str| std::env::var_os(format!("{prefix}_{suffix}")).is_some_and(|v| !v.is_empty());
    if set("NO_SIMD") {
        return Isa::Base;
    }
    let widest = widest();
    if widest == Isa::Avx512 && set("NO_AVX512") {
        Isa::Avx2
    } else {
        widest
    }
}

#[cfg(target_arch = "x86_64")]
fn widest() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    let v3 = has!("avx2") && has!("fma") && has!("bmi1") && has!("bmi2") && has!("lzcnt") && has!("popcnt");
    let v4 = v3 && has!("avx512f") && has!("avx512bw") && has!("avx512cd") && has!("avx512dq") && has!("avx512vl");
    if v4 {
        Isa::Avx512
    } else if v3 {
        Isa::Avx2
    } else {
        Isa::Base
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn widest() -> Isa {
    Isa::Base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_only_narrows() {
        // No such variables are set: the CPU's own widest build.
        assert_eq!(detect("REEL_CPU_TEST_UNSET"), widest());
    }
}
