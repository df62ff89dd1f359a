//! Which instruction-set build of the kernels this CPU runs, decided once
//! for the whole crate (VIF, ADM and motion dispatch on the same answer).

pub(crate) use reel_cpu::Isa;

/// The widest build whose every feature this CPU has ([`reel_cpu::detect`]).
/// A non-empty `REEL_VMAF_NO_AVX512` caps it at AVX2 and a non-empty
/// `REEL_VMAF_NO_SIMD` selects the portable build (for tests and benches;
/// every build gives the same scores).
pub(crate) fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| reel_cpu::detect("REEL_VMAF"))
}
