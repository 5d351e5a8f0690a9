//! Per-conv timing of prepared convs ([`crate::Conv2d`]), to find where a forward's time goes.
//!
//! Off by default, and then a relaxed atomic load per conv call. When on, every
//! [`Conv2d::forward_into`](crate::Conv2d::forward_into) call is timed as it runs in the
//! forward, then run three more times and the fastest of those kept as its time on warm caches:
//! the two side by side show what a forward loses to cold weights and inputs (ResNet-50 FPN on
//! Zen 5: its 7² convs took 2.2× their warm time, which led to the GEMM's prefetch). The extra
//! runs compute the same output (a conv's residual may not alias its output), so a profiled
//! forward's results are unchanged, only slower. Timings are summed per conv shape over every
//! call until [`take`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static ON: AtomicBool = AtomicBool::new(false);

/// Whether a profiled call is rerun for its warm time (see [`set_warm`]).
static WARM: AtomicBool = AtomicBool::new(true);

/// Timings by shape, summed.
static TABLE: Mutex<BTreeMap<ConvKey, (u64, Duration, Duration)>> = Mutex::new(BTreeMap::new());

/// What identifies a conv in the profile.
pub(crate) type ConvKey = ([usize; 4], [usize; 4], [usize; 2], usize);

/// Turns per-conv timing on or off for the whole process.
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Whether per-conv timing is on.
#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether a profiled call is also rerun three times for its warm time (the default), or only
/// timed as it runs (`warm` is then zero). Without the reruns, and without the copy of the sum
/// a conv onto its output keeps for them, a forward runs as it does unprofiled, apart from a
/// clock read and a lock per conv: the mode to time convs at 2 threads, where the reruns and
/// copies had doubled some convs' times in the forward (ResNet-50's 256←64 1×1 at 56² onto its
/// residual: 0.49 ms per call profiled, 0.28–0.36 timed alone, Zen 5).
pub fn set_warm(on: bool) {
    WARM.store(on, Ordering::Relaxed);
}

/// Whether profiled calls are rerun for their warm time ([`set_warm`]).
#[inline]
pub fn warm() -> bool {
    WARM.load(Ordering::Relaxed)
}

/// One conv shape's timings since the last [`take`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvProfile {
    /// The weight's shape `[cout, cin / groups, kh, kw]`.
    pub weight: [usize; 4],
    /// The input's shape `[n, cin, h, w]`.
    pub input: [usize; 4],
    /// The stride.
    pub stride: [usize; 2],
    /// The group count.
    pub groups: usize,
    /// Calls timed.
    pub calls: u64,
    /// Their time as they ran in the forward, summed.
    pub in_forward: Duration,
    /// Their time on warm caches (each call's fastest of three reruns), summed.
    pub warm: Duration,
}

/// The timings recorded since the last call (all shapes, in shape order), and a fresh start.
pub fn take() -> Vec<ConvProfile> {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *table)
        .into_iter()
        .map(
            |((weight, input, stride, groups), (calls, in_forward, warm))| ConvProfile {
                weight,
                input,
                stride,
                groups,
                calls,
                in_forward,
                warm,
            },
        )
        .collect()
}

/// Runs `conv` as the forward's call, then three times more unless [`set_warm`] turned that
/// off, and records both times under `key`; returns the first run's result (an error stops
/// there, unrecorded). `reset` runs, untimed, before each of the three (a conv onto its output
/// restores the output's contents).
pub(crate) fn timed<E>(
    key: ConvKey,
    mut reset: impl FnMut(),
    mut conv: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    let t = std::time::Instant::now();
    conv()?;
    let in_forward = t.elapsed();
    let reruns = if warm() { 3 } else { 0 };
    let mut warm = if reruns == 0 { Duration::ZERO } else { Duration::MAX };
    for _ in 0..reruns {
        reset();
        let t = std::time::Instant::now();
        conv()?;
        warm = warm.min(t.elapsed());
    }
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let e = table.entry(key).or_insert((0, Duration::ZERO, Duration::ZERO));
    e.0 += 1;
    e.1 += in_forward;
    e.2 += warm;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conv2d, Conv2dParams, ConvOpts};
    use ndarray::Array4;

    /// A profiled conv computes what an unprofiled one does, and its calls are recorded under
    /// its shape (other tests' convs running meanwhile may be recorded too; only this one's
    /// entry is checked).
    #[test]
    fn profiled_convs_are_timed_and_unchanged() {
        let w = Array4::from_shape_fn([5, 3, 3, 3], |(a, b, c, d)| {
            ((a * 7 + b * 5 + c * 3 + d) % 11) as f32 - 5.0
        });
        let params = Conv2dParams {
            padding: [1, 1, 1, 1],
            stride: [2, 2],
            ..Conv2dParams::default()
        };
        let conv = Conv2d::new(w, None, params).expect("a valid conv");
        let x = Array4::from_shape_fn([1, 3, 11, 13], |(_, c, h, w)| ((c * 31 + h * 7 + w) % 13) as f32 * 0.25);
        let want = conv.forward(x.view(), &ConvOpts::default()).expect("runs");
        set_enabled(true);
        let got = [0, 1].map(|_| conv.forward(x.view(), &ConvOpts::default()).expect("runs"));
        set_enabled(false);
        assert!(got.iter().all(|g| *g == want), "profiling changed the output");
        let mine: Vec<_> = take()
            .into_iter()
            .filter(|p| p.weight == [5, 3, 3, 3] && p.input == [1, 3, 11, 13])
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!((mine[0].calls, mine[0].stride, mine[0].groups), (2, [2, 2], 1));
        assert!(mine[0].in_forward > Duration::ZERO && mine[0].warm > Duration::ZERO);
        // Off again: nothing more is recorded.
        conv.forward(x.view(), &ConvOpts::default()).expect("runs");
        assert!(!take()
            .iter()
            .any(|p| p.weight == [5, 3, 3, 3] && p.input == [1, 3, 11, 13]));
        // Without the warm reruns: timed as it runs, warm zero, onto a sum too.
        set_warm(false);
        set_enabled(true);
        let onto = conv
            .forward_onto(x.view(), &ConvOpts::default(), want.clone())
            .expect("runs");
        set_enabled(false);
        set_warm(true);
        assert_eq!(onto, want.mapv(|v| v + v), "the conv added onto the sum once");
        let mine: Vec<_> = take()
            .into_iter()
            .filter(|p| p.weight == [5, 3, 3, 3] && p.input == [1, 3, 11, 13])
            .collect();
        assert_eq!(mine.len(), 1);
        assert!(mine[0].calls == 1 && mine[0].in_forward > Duration::ZERO && mine[0].warm == Duration::ZERO);
    }
}
