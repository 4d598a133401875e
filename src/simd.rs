//! Run-time CPU dispatch for plain Rust loops.
//!
//! The binary is built for baseline x86-64 (no `target-cpu=native`), so a loop the compiler
//! vectorises runs 4 f32 lanes wide (SSE2) unless it is compiled for a wider ISA.
//! [`multiversion!`](crate::multiversion) compiles one function body three times (AVX-512F,
//! AVX2 + FMA, baseline) and picks the widest the CPU has at each call (the feature test is a
//! cached atomic load). Results are the same on every path as long as the body does not depend
//! on FMA contraction: Rust never reassociates or fuses floating-point operations by itself.

/// Defines `fn NAME<T: BOUND>(ARGS) -> RET` whose body is compiled for AVX-512F, for AVX2 +
/// FMA and for the baseline, and dispatched at run time (see the module documentation).
///
/// ```ignore
/// multiversion! {
///     /// Doc comment.
///     fn scale<T: WithDType>(dst: &mut [T], k: T) -> () { for v in dst { *v = *v * k } }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$t:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[allow(unsafe_code)]
        $vis fn $name<$t: $bound>($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn inner<$t: $bound>($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn v4<$t: $bound>($($arg: $ty),*) -> $ret {
                    inner($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3<$t: $bound>($($arg: $ty),*) -> $ret {
                    inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked on the line above).
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA (checked on the line above).
                    return unsafe { v3($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}
