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

/// Defines a function whose body is compiled three times — for x86-64-v4
/// (AVX-512), for x86-64-v3 (AVX2) and for the baseline — and runs the
/// build `$isa()` (the caller's cached [`detect`]) allows. The body should
/// call `#[inline(always)]` code only, so that all of it gets the features.
/// With `avx512 = path;` the v4 build is that hand-written function instead
/// (same arguments, compiled for v4 or less).
///
/// The feature lists here are the levels [`detect`] checks, in one place:
/// a build can never enable a feature the detection did not find.
#[macro_export]
macro_rules! multiversion {
    (
        isa = $isa:path;
        $(#[$m:meta])*
        $vis:vis fn $name:ident $(<$($g:ident: $bound:path),+>)? ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $crate::multiversion! {
            @build $isa; v4; $(#[$m])* $vis fn $name $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? $body
        }
    };
    (
        isa = $isa:path;
        avx512 = $wide:path;
        $(#[$m:meta])*
        $vis:vis fn $name:ident $(<$($g:ident: $bound:path),+>)? ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $crate::multiversion! {
            @build $isa; $wide; $(#[$m])* $vis fn $name $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? $body
        }
    };
    (
        @build $isa:path; $wide:path;
        $(#[$m:meta])*
        $vis:vis fn $name:ident $(<$($g:ident: $bound:path),+>)? ($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$m])*
        $vis fn $name $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(dead_code)]
                #[target_feature(enable = "avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                fn v4 $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? $body
                #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                fn v3 $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? $body
                #[allow(unsafe_code)]
                match $isa() {
                    // SAFETY: `$isa` answers from `reel_cpu::detect`, which reports
                    // a level only when the CPU has every feature the build enables.
                    $crate::Isa::Avx512 => return unsafe { $wide($($arg),*) },
                    // SAFETY: as above, for x86-64-v3.
                    $crate::Isa::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::Isa::Base => {}
                }
            }
            $body
        }
    };
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
