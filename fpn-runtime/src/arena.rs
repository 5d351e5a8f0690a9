//! Reuse of activation buffers across ops and across calls: after a warm-up, a forward pass of
//! generated code allocates nothing.
//!
//! The compiler's schedule decides *when* each intermediate dies (its last use, computed once
//! over the graph); generated code hands the tensor back with [`recycle`] at that point instead
//! of dropping it, and the runtime's output allocation ([`crate::try_zeros`] and the ops built on
//! it) takes a buffer from the free list before asking the allocator. Because the schedule is
//! the same on every call with the same input sizes, the same requests meet the same buffers:
//! from the second or third call on, no request reaches the heap, no page is faulted in and
//! nothing is returned to the OS (the profile that motivated this, issue "Performance": 16% of a
//! large forward in page clearing and faults, 2% unmapping).
//!
//! An [`Arena`] is installed for the duration of a closure on the calling thread with
//! [`with_arena`] (it is moved into a thread-local slot and back, so no pointer outlives the
//! call); requests from other threads (inside rayon tasks) and calls outside any arena allocate
//! as before. [`ArenaCell`] is the per-model holder generated code keeps: a `Mutex` that a
//! forward takes with `try_lock`, so concurrent forwards on one model never wait (the loser runs
//! with a fresh arena).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::Tensor;

/// Free activation buffers, by capacity. Its memory is released when it is dropped or
/// [`clear`](Arena::clear)ed.
#[derive(Debug, Default)]
pub struct Arena {
    free: Vec<Vec<f32>>,
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// Releases every free buffer.
    pub fn clear(&mut self) {
        self.free = Vec::new();
    }

    /// Bytes held in free buffers.
    pub fn free_bytes(&self) -> usize {
        self.free
            .iter()
            .map(|v| v.capacity() * std::mem::size_of::<f32>())
            .sum()
    }

    /// The free buffer with the smallest capacity ≥ `len` ([`best_fit`], the policy
    /// `fpn_compiler::back::rust::memory_plan` replays for `fpn check`), still holding its last
    /// user's values; `None` if there is none.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let k = best_fit(self.free.iter().map(Vec::capacity), len)?;
        Some(self.free.swap_remove(k))
    }

    /// Keeps `v` for a later request (its contents are discarded).
    fn give(&mut self, v: Vec<f32>) {
        if v.capacity() == 0 {
            return;
        }
        // `free` grows only when a buffer is first seen; reserve in steps so a warm arena
        // pushing back what it handed out never reallocates.
        if self.free.len() == self.free.capacity() {
            self.free.reserve(self.free.len().max(16));
        }
        self.free.push(v);
    }
}

/// The index of the smallest of `sizes` that is at least `need` (the first such on a tie), or
/// `None`: the one reuse rule of the runtime's [`Arena`] and per-thread scratch buffers, and of
/// the compiler's replay of the arena (`fpn check`'s memory line). The chosen buffer is then
/// taken out with `swap_remove`, by all of them, so the replay sees the same free list.
pub fn best_fit<T: Ord + Copy>(sizes: impl IntoIterator<Item = T>, need: T) -> Option<usize> {
    sizes
        .into_iter()
        .enumerate()
        .filter(|&(_, s)| s >= need)
        .min_by_key(|&(_, s)| s)
        .map(|(k, _)| k)
}

thread_local! {
    /// The arena installed on this thread by [`with_arena`], if any.
    static CURRENT: RefCell<Option<Arena>> = const { RefCell::new(None) };
    /// How many calls of the GEMM library the thread is inside.
    static IN_GEMM: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether the calling thread is inside a call of the `gemm` crate. That crate allocates its
/// packing buffer on every call (gemm-common 0.19, `gemm_basic_generic`), the one allocation a
/// warm forward still makes; allocation-counting tests use this to tell it apart.
pub fn in_gemm() -> bool {
    IN_GEMM.try_with(|c| c.get() > 0).unwrap_or(false)
}

/// Marks the calling thread as inside the GEMM library while alive (see [`in_gemm`]).
pub(crate) struct GemmCall;

impl GemmCall {
    pub(crate) fn enter() -> Self {
        let _ = IN_GEMM.try_with(|c| c.set(c.get().saturating_add(1)));
        GemmCall
    }
}

impl Drop for GemmCall {
    fn drop(&mut self) {
        let _ = IN_GEMM.try_with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// Runs `f` with `arena` installed on the calling thread: buffers the runtime allocates for op
/// outputs on this thread come from it, and [`recycle`] gives them back to it. Nested calls
/// install the inner arena and restore the outer one after.
pub fn with_arena<R>(arena: &mut Arena, f: impl FnOnce() -> R) -> R {
    /// Puts the arena back into `*dst` and the previous one into the slot, also on unwind.
    struct Restore<'a> {
        dst: &'a mut Arena,
        prev: Option<Arena>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let prev = self.prev.take();
            let mine = CURRENT.try_with(|c| c.replace(prev)).ok().flatten();
            if let Some(a) = mine {
                *self.dst = a;
            }
        }
    }
    let prev = CURRENT.with(|c| c.replace(Some(std::mem::take(arena))));
    let _restore = Restore { dst: arena, prev };
    f()
}

/// Gives `t`'s buffer back to the arena installed on this thread (see [`with_arena`]), or
/// frees it if there is none. Generated code calls it where an intermediate dies.
pub fn recycle(t: Tensor) {
    let (v, _) = t.into_raw_vec_and_offset();
    give(v);
}

/// Gives `v` to the installed arena, or frees it.
pub(crate) fn give(v: Vec<f32>) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(mut slot) = c.try_borrow_mut() {
            if let Some(a) = slot.as_mut() {
                a.give(v);
            }
        }
    });
}

/// An empty buffer with capacity ≥ `len` from the installed arena, if it has one.
pub(crate) fn take(len: usize) -> Option<Vec<f32>> {
    CURRENT
        .try_with(|c| c.try_borrow_mut().ok()?.as_mut()?.take(len))
        .ok()
        .flatten()
}

/// A temporary tensor an op makes and drops (a padded copy of its input): its buffer goes back
/// to the installed arena on drop instead of to the allocator.
pub(crate) struct Temp(pub(crate) Tensor);

impl Drop for Temp {
    fn drop(&mut self) {
        let t = std::mem::replace(&mut self.0, Tensor::zeros((0, 0, 0, 0)));
        recycle(t);
    }
}

/// The [`Arena`] a generated model keeps between calls, and whether its last forward had work
/// to split over threads ([`run_forward`](Self::run_forward)). `Clone` gives an empty one
/// (buffers are not shared between models); `Default` is empty.
#[derive(Debug, Default)]
pub struct ArenaCell {
    arena: Mutex<Arena>,
    /// Whether the last [`run_forward`](Self::run_forward) ran a conv big enough to split.
    parallel: AtomicBool,
}

impl Clone for ArenaCell {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl ArenaCell {
    /// Runs `f` with this cell's arena installed ([`with_arena`]), or with a fresh one if another
    /// call holds it (never waits).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.arena.try_lock() {
            Ok(mut a) => with_arena(&mut a, f),
            Err(std::sync::TryLockError::Poisoned(p)) => with_arena(&mut p.into_inner(), f),
            Err(std::sync::TryLockError::WouldBlock) => with_arena(&mut Arena::new(), f),
        }
    }

    /// [`run`](Self::run) for a whole forward pass: called from outside rayon's pool, with 2 or
    /// more threads in it, and when the last forward ran a conv big enough to split over threads
    /// (`PAR_MIN_MACS` multiply-adds: the ops' own threshold), `f` runs on one of the pool's
    /// threads (the caller waits for it), else on the calling thread.
    ///
    /// From outside the pool every parallel op of the forward injects its tasks and puts the
    /// caller to sleep until they are done: two wake-ups per op. On a pool thread the op's tasks
    /// are pushed on that thread's own deque, and the thread works on them itself while the other
    /// threads steal. The results are the same bit for bit (each op splits its work by
    /// [`rayon::current_num_threads`], the same pool's count either way). The decision depends on
    /// the shapes only, not on timing. The hop costs about 13 µs, which a small forward whose ops
    /// all run inline would not win back (seed 000's block at 32²: 54 → 67 µs); it does not hop.
    /// Measured on Zen 5, 2 threads, best (median) ms: seed 001 0.846 (0.996) → 0.807 (0.835),
    /// ResNet-50 FPN 32.6 (33.1) → 31.6 (32.0), YOLOv8n 14.3 (14.7–16.6) → 13.9 (14.0–14.5).
    ///
    /// Whichever free thread takes the job runs the forward (`rayon::scope`), so a thread's
    /// per-thread scratch is warm once it has run a forward (and the tasks it steals). Pinning
    /// the forward to the pool's first thread with `rayon::broadcast` measured the same, but a
    /// broadcast waits until every thread of the pool has taken its job: behind one long job of
    /// someone else's on the pool, the forward would wait for it.
    pub fn run_forward<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let noted = || {
            let before = crate::kernel::parallel_work();
            let r = self.run(f);
            let big = crate::kernel::parallel_work() != before;
            self.parallel.store(big, Ordering::Relaxed);
            r
        };
        let hop = rayon::current_thread_index().is_none()
            && rayon::current_num_threads() > 1
            && self.parallel.load(Ordering::Relaxed);
        if hop {
            rayon::scope(|_| noted())
        } else {
            noted()
        }
    }

    /// Bytes of the buffers the cell holds between calls (0 while a call runs).
    pub fn bytes(&self) -> usize {
        self.arena.try_lock().map_or(0, |a| a.free_bytes())
    }

    /// Releases the memory of every free buffer (the next call allocates again).
    pub fn clear(&self) {
        if let Ok(mut a) = self.arena.lock() {
            a.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_best_fit_and_restored() {
        let mut arena = Arena::new();
        with_arena(&mut arena, || {
            recycle(Tensor::zeros((1, 1, 4, 4)));
            recycle(Tensor::zeros((1, 1, 2, 2)));
            let v = take(3).unwrap_or_default();
            assert_eq!(v.len(), 4, "a reused buffer keeps its values until the op writes them");
            assert_eq!(v.capacity(), 4, "smallest buffer that fits");
            assert!(take(100).is_none());
            give(v);
        });
        assert_eq!(arena.free.len(), 2);
        assert!(take(1).is_none(), "nothing installed outside with_arena");
        // nested: the inner arena is separate, the outer one comes back
        with_arena(&mut arena, || {
            let mut inner = Arena::new();
            with_arena(&mut inner, || assert!(take(1).is_none()));
            assert!(take(1).is_some());
        });
        assert_eq!(arena.free.len(), 1);
    }

    /// `run_forward` runs a first call on the calling thread and notes whether it had work to
    /// split; a call after one that had runs on a thread of the global pool where that pool has
    /// 2 or more threads, one after a call that had not inline again; the cell's arena is
    /// installed either way, and a call from a pool's thread stays on it.
    #[test]
    fn forwards_after_parallel_work_run_on_the_pool() {
        let cell = ArenaCell::default();
        let body = |big: bool| {
            move || {
                if big {
                    crate::kernel::note_parallel_work();
                }
                recycle(Tensor::zeros((1, 1, 2, 2)));
                (rayon::current_thread_index(), take(4).is_some())
            }
        };
        assert_eq!(
            cell.run_forward(body(true)),
            (None, true),
            "first call: inline, arena installed"
        );
        let pooled = rayon::current_num_threads() > 1;
        for _ in 0..3 {
            let (thread, reused) = cell.run_forward(body(true));
            assert!(reused, "the arena is installed on the pool's thread too");
            assert_eq!(thread.is_some(), pooled, "on a thread of the pool");
        }
        assert_eq!(cell.run_forward(body(false)).0.is_some(), pooled);
        assert_eq!(
            cell.run_forward(body(false)).0,
            None,
            "after a call with no work to split: inline"
        );
        cell.run_forward(body(true));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a 2-thread pool");
        let (outer, (inner, _)) = pool.install(|| (rayon::current_thread_index(), cell.run_forward(body(true))));
        assert_eq!(inner, outer, "already on a pool's thread: stays there");
    }
}
