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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::Tensor;

/// Activation buffers kept between calls. Its memory is released when it is dropped or
/// [`clear`](Arena::clear)ed.
///
/// Two policies. Outside a forward ([`ArenaCell::run_forward`]), and in the first forward at
/// given input sizes, a request takes the free buffer of the smallest capacity that fits
/// (`best_fit`). That first forward is also recorded: every request's length, and the events
/// at which its buffer is taken and given back. At its end [`plan_slots`] assigns the requests
/// to *slots*, one buffer each, whose requests never overlap in time, with the fewest bytes it
/// finds; from then on each forward that makes the same requests in the same order takes each
/// from its slot. A forward that leaves the recorded sequence drops the plan (its buffers
/// become free buffers) and the next one is recorded again; after the second such drop (input
/// sizes that keep changing) the arena stays on best fit, whose free buffers then serve every
/// size without being freed. Best fit alone holds what its arrival order leaves: a big early
/// buffer serves a small later request and the next big one needs a new buffer (seed 003's
/// shared head: 2.01× the liveness bound, `fpn check`); the plan sees every lifetime at once.
#[derive(Debug, Default)]
pub struct Arena {
    free: Vec<Vec<f32>>,
    /// The slot plan learned from a recorded forward, if any.
    plan: Option<Plan>,
    /// The forward being recorded, if one is.
    rec: Option<Recording>,
    /// In a forward that follows `plan`: the index of its next request.
    cursor: Option<usize>,
    /// How many plans a forward left (see [`Arena::take`]): from 2 on, no more are recorded (2
    /// from the start for the throwaway arena of a contended [`ArenaCell::run`]).
    dropped: u32,
}

/// Requests of a forward and their buffers' lifetimes, as [`Arena`] records them.
#[derive(Debug, Default)]
struct Recording {
    /// Events (takes and gives of recorded buffers) so far.
    events: usize,
    /// Each request in order.
    takes: Vec<Lifetime>,
    /// Buffers handed out and not yet given back: `(address, request)`.
    lent: Vec<(usize, usize)>,
}

/// A slot plan ([`plan_slots`]) of a recorded forward and the slots' buffers.
#[derive(Debug)]
struct Plan {
    /// The recorded length of each request.
    lens: Vec<usize>,
    /// Each request's slot.
    slot_of: Vec<usize>,
    /// Each slot's capacity: the longest of its requests.
    caps: Vec<usize>,
    /// Each slot's buffer while it is not lent (allocated at its first request).
    slots: Vec<Option<Vec<f32>>>,
    /// Slot buffers handed out and not yet given back: `(address, slot)`.
    lent: Vec<(usize, usize)>,
}

/// One buffer request of a forward, as [`plan_slots`] takes it: `len` floats, held from event
/// `first` to event `last` (inclusive; `usize::MAX` when still held at the end). Events are the
/// takes and gives of buffers, numbered in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// Floats requested.
    pub len: usize,
    /// The event that takes the buffer.
    pub first: usize,
    /// The event that gives it back.
    pub last: usize,
}

/// Most requests per forward that [`plan_slots`] plans (its work grows with their square);
/// past it the arena stays on best fit.
pub const MAX_PLANNED: usize = 4096;

/// Assigns each of `reqs` to a slot, a buffer that serves requests whose lifetimes do not
/// overlap, and returns each request's slot and each slot's capacity (its longest request), or
/// `None` past [`MAX_PLANNED`] requests. Four greedy passes, the one of fewest total floats kept
/// (the first on a tie): requests in order of length, or of length × lifetime, longest first;
/// each goes to a free slot (no overlapping request) that fits, the one whose last request
/// ended most recently before it (its buffer likeliest still in cache; the first two passes) or
/// the one of the smallest capacity (the last two); else to the free slot of the largest
/// capacity, grown to it; else to a new slot. Measured on the shipped specs of fixed sizes
/// (`fpn check`, bytes held ÷ liveness bound): smallest capacity by length alone bifpn_neck
/// 1.09, seed 003 1.53, by length × lifetime alone RetinaNet 1.26, the better of the two
/// 1.00–1.16; with the recency passes 1.00–1.12, RetinaNet 1.07, seed 003 1.49 (best fit:
/// 1.05–2.01). Forwards on Zen 5 (1 and 2 threads, interleaved) with the recency rule against
/// smallest capacity: ResNet-50 FPN and seed 003 1–2% faster at 1 thread, the rest even. The
/// liveness bound itself needs buffers split and merged (offsets in one block), which separate
/// buffers per tensor cannot be: an exact integer program over the same requests (scipy's
/// `milp`, session 19) proves the ResNet-18 pyramid's 5.26 MiB (×1.15 of its bound, five
/// outputs alive to the end beside one buffer of the largest temporary) the least any slot plan
/// holds, found none below RetinaNet's 29.52 MiB (×1.14) in 300 s, and one of 7.16 MiB for
/// seed 003's 7.28 (×1.43 against ×1.46). The one rule of the runtime's [`Arena`] and of
/// `fpn check`'s memory line.
pub fn plan_slots(reqs: &[Lifetime]) -> Option<(Vec<usize>, Vec<usize>)> {
    if reqs.len() > MAX_PLANNED {
        return None;
    }
    let by_len = |r: &Lifetime| r.len as u128;
    let by_area = |r: &Lifetime| {
        let end = r.last.min(reqs.len().saturating_mul(2));
        r.len as u128 * (end.saturating_sub(r.first) as u128 + 1)
    };
    let total = |caps: &[usize]| caps.iter().map(|&c| c as u128).sum::<u128>();
    let mut best = assign_slots(reqs, by_len, true);
    for (area, recent) in [(true, true), (false, false), (true, false)] {
        let next = if area {
            assign_slots(reqs, by_area, recent)
        } else {
            assign_slots(reqs, by_len, recent)
        };
        if total(&next.1) < total(&best.1) {
            best = next;
        }
    }
    Some(best)
}

/// One greedy pass of [`plan_slots`], requests taken by decreasing `key` (ties in order); a
/// request goes to the free slot that fits whose last request ended most recently before it
/// (`recent`; then the smaller capacity), or of the smallest capacity.
fn assign_slots(reqs: &[Lifetime], key: impl Fn(&Lifetime) -> u128, recent: bool) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..reqs.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(key(&reqs[k])));
    // each slot's capacity and its requests' lifetimes, sorted by start
    let mut slots: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
    let mut slot_of = vec![0; reqs.len()];
    let overlaps = |held: &[(usize, usize)], r: &Lifetime| {
        // the first lifetime starting after r's end, and the one before it
        let i = held.partition_point(|&(first, _)| first <= r.last);
        i > 0 && held[i - 1].1 >= r.first
    };
    for k in order {
        let r = &reqs[k];
        let mut fit: Option<usize> = None;
        let mut grow: Option<usize> = None;
        for (i, (cap, held)) in slots.iter().enumerate() {
            if overlaps(held, r) {
                continue;
            }
            if *cap >= r.len {
                // (events since the slot's last request ended, capacity), or capacity alone
                let rank = |cap: usize, held: &[(usize, usize)]| {
                    let j = held.partition_point(|&(first, _)| first <= r.last);
                    let gap = if j > 0 { r.first - held[j - 1].1 } else { usize::MAX };
                    if recent {
                        (gap, cap)
                    } else {
                        (cap, 0)
                    }
                };
                if fit.is_none_or(|f| rank(*cap, held) < rank(slots[f].0, &slots[f].1)) {
                    fit = Some(i);
                }
            } else if grow.is_none_or(|g| *cap > slots[g].0) {
                grow = Some(i);
            }
        }
        let i = match fit.or(grow) {
            Some(i) => i,
            None => {
                slots.push((0, Vec::new()));
                slots.len() - 1
            }
        };
        let (cap, held) = &mut slots[i];
        *cap = (*cap).max(r.len);
        let at = held.partition_point(|&(first, _)| first < r.first);
        held.insert(at, (r.first, r.last));
        slot_of[k] = i;
    }
    (slot_of, slots.into_iter().map(|(cap, _)| cap).collect())
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// Releases every free buffer, and the slot plan with its buffers (the next forward is
    /// recorded again).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Bytes held in free buffers (the slots' included).
    pub fn free_bytes(&self) -> usize {
        let slots = self.plan.iter().flat_map(|p| p.slots.iter().flatten());
        self.free
            .iter()
            .chain(slots)
            .map(|v| v.capacity() * std::mem::size_of::<f32>())
            .sum()
    }

    /// A buffer of capacity ≥ `len` for a request, still holding its last user's values
    /// (length whatever that user left): the request's slot in a planned forward, else the
    /// free buffer of the smallest capacity that fits (`best_fit`); in a recorded forward a
    /// new one where none fits (to know its address). `None` for `len` 0, if nothing fits
    /// outside a recorded forward, or if a new buffer cannot be had.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        if len == 0 {
            return None;
        }
        if let Some(k) = self.cursor {
            match self.plan.as_mut() {
                Some(plan) if plan.lens.get(k) == Some(&len) => {
                    self.cursor = Some(k + 1);
                    let s = plan.slot_of[k];
                    let v = match plan.slots[s].take() {
                        Some(v) => v,
                        None => {
                            // the slot's last buffer was not given back (an output still held,
                            // or dropped): a new one, and the old one is no longer the slot's
                            plan.lent.retain(|&(_, t)| t != s);
                            let mut v = Vec::new();
                            v.try_reserve_exact(plan.caps[s]).ok()?;
                            v
                        }
                    };
                    // at most one entry per slot: within the capacity reserved for them
                    plan.lent.push((v.as_ptr() as usize, s));
                    return Some(v);
                }
                // not the recorded request: this forward's requests differ from the recorded
                // ones (other sizes, another path); back to best fit on the slots' buffers
                // (those lent come back as free buffers), the next forward recorded, or, from
                // the second time on, best fit for good (input sizes that keep changing: a
                // plan per size would free and allocate buffers on every change). Requests
                // past the recorded ones mean that the recorded forward stopped early (an
                // op's error): not a change of sizes, not counted.
                _ => {
                    if let Some(plan) = self.plan.take() {
                        if k < plan.lens.len() {
                            self.dropped = self.dropped.saturating_add(1);
                        }
                        for v in plan.slots.into_iter().flatten() {
                            self.free.push(v);
                        }
                    }
                    self.cursor = None;
                }
            }
        }
        let found = best_fit(self.free.iter().map(Vec::capacity), len).map(|k| self.free.swap_remove(k));
        let Some(rec) = self.rec.as_mut() else { return found };
        let v = match found {
            Some(v) => v,
            None => {
                let mut v = Vec::new();
                v.try_reserve_exact(len).ok()?;
                v
            }
        };
        rec.lent.push((v.as_ptr() as usize, rec.takes.len()));
        rec.takes.push(Lifetime {
            len,
            first: rec.events,
            last: usize::MAX,
        });
        rec.events += 1;
        Some(v)
    }

    /// Starts a forward: one that follows the slot plan if there is one, else a recorded one.
    fn begin_forward(&mut self) {
        if self.plan.is_some() {
            self.cursor = Some(0);
            self.rec = None;
        } else if self.dropped >= 2 {
            self.cursor = None;
            self.rec = None;
        } else {
            self.cursor = None;
            self.rec = Some(Recording::default());
        }
    }

    /// Ends a forward: after a recorded one, plans the slots of its requests ([`plan_slots`]);
    /// the best-fit buffers are released (each slot's is allocated at its first request), and
    /// buffers still lent (the outputs) go to their slots when given back.
    fn end_forward(&mut self) {
        self.cursor = None;
        let Some(rec) = self.rec.take() else { return };
        let Some((slot_of, caps)) = plan_slots(&rec.takes) else {
            return;
        };
        let mut lent = Vec::with_capacity(caps.len().max(rec.lent.len()));
        lent.extend(rec.lent.iter().map(|&(addr, k)| (addr, slot_of[k])));
        self.free = Vec::new();
        self.plan = Some(Plan {
            lens: rec.takes.iter().map(|t| t.len).collect(),
            slots: vec![None; caps.len()],
            slot_of,
            caps,
            lent,
        });
    }

    /// Keeps `v` for a later request (its contents are discarded): in its slot if it is a slot's
    /// buffer (or a recorded one a slot is planned for) and long enough for it; else, without a
    /// plan, as a free buffer (with one it is freed).
    fn give(&mut self, v: Vec<f32>) {
        if v.capacity() == 0 {
            return;
        }
        let addr = v.as_ptr() as usize;
        if let Some(rec) = self.rec.as_mut() {
            if let Some(i) = rec.lent.iter().position(|&(a, _)| a == addr) {
                let (_, k) = rec.lent.swap_remove(i);
                rec.takes[k].last = rec.events;
                rec.events += 1;
            }
        }
        if let Some(plan) = self.plan.as_mut() {
            if let Some(i) = plan.lent.iter().position(|&(a, _)| a == addr) {
                let (_, s) = plan.lent.swap_remove(i);
                if plan.slots[s].is_none() && v.capacity() >= plan.caps[s] {
                    plan.slots[s] = Some(v);
                }
            }
            // else not a slot's buffer (one a slot replaced, an output given back late): a
            // planned forward takes nothing from the free buffers, so it is freed, not kept
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
/// `None`: the reuse rule of the [`Arena`] outside a planned forward and of the per-thread
/// scratch buffers (`fpn check`'s memory line plans with [`plan_slots`] instead).
pub(crate) fn best_fit<T: Ord + Copy>(sizes: impl IntoIterator<Item = T>, need: T) -> Option<usize> {
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

/// Runs `step` on the installed arena, if there is one (the start or end of a forward).
fn forward_mark(step: fn(&mut Arena)) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(mut slot) = c.try_borrow_mut() {
            if let Some(a) = slot.as_mut() {
                step(a);
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
            // a fresh arena, dropped after the call: nothing to record a plan for
            Err(std::sync::TryLockError::WouldBlock) => with_arena(
                &mut Arena {
                    dropped: 2,
                    ..Arena::default()
                },
                f,
            ),
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
    /// While the forward runs there, the pool's other threads stay on it (`keep_taking`):
    /// between ops they look for its next tasks instead of going to sleep, where each op's
    /// second task waited for a thread to wake (`perf sched` on ResNet-50 FPN at 2 threads:
    /// about six sleeps per forward, 30 µs from wake-up to running each; a 60 µs half of a 1×1
    /// conv in YOLOv8n's neck ran in about the time of the whole conv on one thread). Measured
    /// on Zen 5, 2 threads, interleaved runs of the bench before → after (best, median ms):
    /// YOLOv8n 11.76–12.15, 12.29–12.56 → 11.78–12.00, 12.06–12.45 (5 runs each); ResNet-50 FPN
    /// 26.0–26.5, 26.7–27.1 → 25.5–26.5, 26.4–27.0 (4); seed 001 and RetinaNet even. The
    /// threads spin for the forward's length, as ONNX Runtime's pool does during a run (its
    /// `allow_spinning` default).
    ///
    /// Whichever free thread takes the job runs the forward (`rayon::join`, from outside the
    /// pool), so a thread's per-thread scratch is warm once it has run a forward (and the tasks
    /// it steals). Pinning
    /// the forward to the pool's first thread with `rayon::broadcast` measured the same, but a
    /// broadcast waits until every thread of the pool has taken its job: behind one long job of
    /// someone else's on the pool, the forward would wait for it.
    pub fn run_forward<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let noted = || {
            let before = crate::kernel::parallel_work();
            let r = self.run(|| {
                forward_mark(Arena::begin_forward);
                let r = f();
                forward_mark(Arena::end_forward);
                r
            });
            let big = crate::kernel::parallel_work() != before;
            self.parallel.store(big, Ordering::Relaxed);
            r
        };
        let hop = rayon::current_thread_index().is_none()
            && rayon::current_num_threads() > 1
            && self.parallel.load(Ordering::Relaxed);
        if hop {
            // The forward on the thread that takes the job, the pool's other threads kept on
            // its tasks (`keep_taking`), joined rather than spawned: no allocation.
            let (done, home) = (AtomicBool::new(false), AtomicUsize::new(usize::MAX));
            let others = rayon::current_num_threads() - 1;
            rayon::join(
                || {
                    home.store(rayon::current_thread_index().unwrap_or(usize::MAX), Ordering::Release);
                    let _end = SetOnDrop(&done);
                    noted()
                },
                || keep_taking(&done, &home, others),
            )
            .0
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

/// Sets its flag when dropped (the forward's end, or its unwinding).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Keeps `threads` of the pool's threads on a forward ([`ArenaCell::run_forward`]): one runs
/// this loop, the others are asked for by joins that other threads steal. The loop runs
/// whatever work the pool has (the forward's tasks as its ops hand them out) until `done`,
/// instead of going to sleep between ops and waking 30 µs or more into the next one. It
/// returns at once on the forward's own thread (`home`, stored as the forward starts: that
/// thread, waiting inside one of its ops, may pop this job), on a thread already inside the
/// loop, and after [`KEEP_IDLE`] without work: a thread that runs it above another job (taken
/// while that job waited) is held back by it only that long, so no job waits on it for good.
fn keep_taking(done: &AtomicBool, home: &AtomicUsize, threads: usize) {
    if threads == 0 {
        return;
    }
    if threads > 1 {
        // one more thread kept by the other half of a join (stolen by another thread)
        rayon::join(|| keep_taking(done, home, 1), || keep_taking(done, home, threads - 1));
        return;
    }
    let here = rayon::current_thread_index().unwrap_or(usize::MAX);
    if here == home.load(Ordering::Acquire) || KEEPING.with(|k| k.replace(true)) {
        return;
    }
    let mut idle = std::time::Instant::now();
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle = std::time::Instant::now();
        } else if idle.elapsed() > KEEP_IDLE {
            break;
        } else {
            // as rayon's own idle loop between its rounds: other threads of the machine may
            // run, and the forward's deque is polled a few times a microsecond, not hammered
            std::thread::yield_now();
        }
    }
    KEEPING.with(|k| k.set(false));
}

/// How long [`keep_taking`] waits for work before it gives its thread back to the pool.
const KEEP_IDLE: std::time::Duration = std::time::Duration::from_millis(1);

thread_local! {
    /// Whether this thread is inside [`keep_taking`].
    static KEEPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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

    /// Every slot's requests are disjoint in time and fit its capacity, and the slots hold at
    /// least the liveness bound, on pseudo-random lifetimes; on the pattern best fit handles
    /// badly (a big buffer freed early, then two smaller ones alive together, then the big size
    /// again) the plan holds the bound, best fit one and a half times it.
    #[test]
    fn slot_plans_are_valid_and_beat_best_fit() {
        let mut rng = crate::Init::new(7);
        for case in 0..200 {
            let n = 1 + case % 40;
            let mut reqs = Vec::new();
            for k in 0..n {
                let first = 2 * k;
                let len = 1 + (rng.next_u64() % 1000) as usize;
                let last = if rng.next_u64().is_multiple_of(5) {
                    usize::MAX
                } else {
                    first + 1 + (rng.next_u64() % 12) as usize
                };
                reqs.push(Lifetime { len, first, last });
            }
            let (slot_of, caps) = plan_slots(&reqs).expect("few requests");
            for (i, a) in reqs.iter().enumerate() {
                assert!(caps[slot_of[i]] >= a.len, "case {case}: request {i} fits its slot");
                for (j, b) in reqs.iter().enumerate().skip(i + 1) {
                    let apart = a.last < b.first || b.last < a.first;
                    assert!(
                        slot_of[i] != slot_of[j] || apart,
                        "case {case}: {i} and {j} overlap in a slot"
                    );
                }
            }
            let bound = (0..2 * n + 12)
                .map(|e| {
                    reqs.iter()
                        .filter(|r| r.first <= e && e <= r.last)
                        .map(|r| r.len)
                        .sum::<usize>()
                })
                .max()
                .unwrap_or(0);
            assert!(caps.iter().sum::<usize>() >= bound, "case {case}");
        }
        // 100 (events 0-1), then 60 and 40 together (2-5), then 100 again (6-7)
        let reqs = [
            Lifetime {
                len: 100,
                first: 0,
                last: 1,
            },
            Lifetime {
                len: 60,
                first: 2,
                last: 4,
            },
            Lifetime {
                len: 40,
                first: 3,
                last: 5,
            },
            Lifetime {
                len: 100,
                first: 6,
                last: 7,
            },
        ];
        let (_, caps) = plan_slots(&reqs).expect("few requests");
        assert_eq!(caps.iter().sum::<usize>(), 100 + 40, "the 60 shares the 100's slot");
        assert!(plan_slots(&vec![
            Lifetime {
                len: 1,
                first: 0,
                last: 0
            };
            MAX_PLANNED + 1
        ])
        .is_none());
    }

    /// A forward of three requests on `arena`: a (`big` floats) and b (60) alive, a dies, c
    /// (`big`) made, b dies; c is the output, returned.
    fn small_forward(arena: &mut Arena, big: usize) -> Tensor {
        with_arena(arena, || {
            forward_mark(Arena::begin_forward);
            let a = crate::try_output([1, 1, 1, big], "t").expect("small");
            let b = crate::try_output([1, 1, 1, 60], "t").expect("small");
            recycle(a);
            let c = crate::try_output([1, 1, 1, big], "t").expect("small");
            recycle(b);
            forward_mark(Arena::end_forward);
            c
        })
    }

    /// A recorded forward, then forwards that follow its plan: the same requests get the same
    /// slot buffers (no new buffer after the first planned forward), the outputs given back
    /// after a forward go to their slots, and a forward with other requests drops the plan and
    /// the next one is recorded again.
    #[test]
    fn forwards_follow_the_recorded_plan() {
        let mut arena = Arena::new();
        let forward = small_forward;
        let give_back = |arena: &mut Arena, c: Tensor| with_arena(arena, || recycle(c));
        let c = forward(&mut arena, 100);
        assert!(arena.plan.is_some(), "planned after the recorded forward");
        give_back(&mut arena, c);
        let addr = |t: &Tensor| t.as_ptr() as usize;
        let c1 = forward(&mut arena, 100);
        let first = addr(&c1);
        give_back(&mut arena, c1);
        let held = arena.free_bytes();
        // each buffer holds its tensor and the pad that lets its values start on a line
        let pad = crate::LINE_PAD;
        assert_eq!(held, (100 + 60 + 2 * pad) * 4, "a and c share a slot");
        let c2 = forward(&mut arena, 100);
        assert_eq!(addr(&c2), first, "the same slot's buffer");
        give_back(&mut arena, c2);
        assert_eq!(arena.free_bytes(), held);
        // outputs kept (or dropped) by the caller: each forward's new output buffer replaces
        // the slot's, nothing piles up, and one given back late is freed
        let kept: Vec<Tensor> = (0..5).map(|_| forward(&mut arena, 100)).collect();
        let plan = arena.plan.as_ref().expect("still planned");
        assert!(plan.lent.len() <= plan.caps.len(), "one lent entry per slot at most");
        assert_eq!(arena.free_bytes(), (60 + pad) * 4, "the output's slot is lent out");
        for c in kept {
            give_back(&mut arena, c);
        }
        assert_eq!(
            arena.free_bytes(),
            held,
            "the last output back in its slot, the rest freed"
        );
        // other requests: the plan is dropped, the next forward recorded and planned again
        let c3 = forward(&mut arena, 200);
        assert!(arena.plan.is_none());
        give_back(&mut arena, c3);
        for _ in 0..3 {
            let c = forward(&mut arena, 200);
            assert!(arena.plan.is_some());
            give_back(&mut arena, c);
        }
        assert_eq!(arena.free_bytes(), (200 + 60 + 2 * pad) * 4);
    }

    /// Forwards whose sizes keep changing: the plan is dropped twice, then the arena stays on
    /// best fit, and from then on each size's forward reuses the buffers of the last one of
    /// that size (no buffer is freed and allocated per change).
    #[test]
    fn changing_sizes_fall_back_to_best_fit() {
        let mut arena = Arena::new();
        // the output's address, the output given back
        let forward = |arena: &mut Arena, big: usize| {
            let c = small_forward(arena, big);
            let at = c.as_ptr() as usize;
            with_arena(arena, || recycle(c));
            at
        };
        let mut seen = Vec::new();
        for round in 0..6 {
            for big in [100, 200] {
                let at = forward(&mut arena, big);
                if round >= 3 {
                    seen.push((big, at));
                }
            }
        }
        assert_eq!(arena.dropped, 2);
        assert!(arena.plan.is_none() && arena.rec.is_none());
        // a recorded forward cut short (an error) is left by the next full one, uncounted
        let mut fresh = Arena::new();
        with_arena(&mut fresh, || {
            forward_mark(Arena::begin_forward);
            recycle(crate::try_output([1, 1, 1, 100], "t").expect("small"));
            forward_mark(Arena::end_forward);
        });
        let c = small_forward(&mut fresh, 100);
        with_arena(&mut fresh, || recycle(c));
        assert_eq!(fresh.dropped, 0);
        assert!(fresh.plan.is_none(), "left, the next one recorded");
        let c = small_forward(&mut fresh, 100);
        with_arena(&mut fresh, || recycle(c));
        assert!(fresh.plan.is_some());
        let held = arena.free_bytes();
        for big in [100, 200] {
            let at = forward(&mut arena, big);
            assert!(seen.contains(&(big, at)), "{big}: a buffer of an earlier forward");
        }
        assert_eq!(arena.free_bytes(), held, "nothing allocated or freed");
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

    /// Forwards of two models at once from two threads, with nested parallel work (joins
    /// inside tasks, as ops that split a GEMM inside a band do): the threads kept on one
    /// forward ([`keep_taking`]) may take the other's tasks, or run above one of its jobs, and
    /// every forward still finishes with its own result (a watchdog fails the test instead of
    /// hanging it). A smoke test: the interleaving that would need `keep_taking`'s idle limit
    /// (a thread kept above a job its forward waits for) is rare, and 4 runs of this test
    /// without the limit and the re-entry guard finished too.
    #[test]
    fn concurrent_forwards_with_nested_work_finish() {
        use rayon::prelude::*;
        let work = |seed: u64| -> u64 {
            crate::kernel::note_parallel_work();
            (0..64u64)
                .into_par_iter()
                .map(|i| {
                    let (a, b) = rayon::join(
                        || {
                            (0..2000u32)
                                .into_par_iter()
                                .with_max_len(50)
                                .map(|j| (i * u64::from(j)) ^ seed)
                                .sum::<u64>()
                        },
                        || (0..100u64).map(|j| j + i + seed).sum::<u64>(),
                    );
                    a.wrapping_add(b)
                })
                .sum()
        };
        let want: Vec<u64> = (0..2).map(work).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        for m in 0..2u64 {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let cell = ArenaCell::default();
                let got: Vec<u64> = (0..500).map(|_| cell.run_forward(|| work(m))).collect();
                let _ = tx.send((m, got));
            });
        }
        drop(tx);
        for _ in 0..2 {
            let (m, got) = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("both models' forwards finish");
            assert!(got.iter().all(|&g| g == want[m as usize]), "model {m}: its own result");
        }
    }
}
