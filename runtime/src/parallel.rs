//! Splitting matrix work across threads (feature `threads`).
//!
//! Without the feature, or with one thread, [`Workers`] runs everything on
//! the calling thread. With it, work is handed to a rayon pool of a fixed
//! size, created once per thread count and kept for the process lifetime
//! (a pool per matrix product would cost more than the product).

use crate::offload::Offload;

/// Hand-offs to a pool so far (see [`handoffs`]).
#[cfg(feature = "threads")]
static HANDOFFS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Work handed to a thread pool so far in this process: one per parallel
/// split (a matrix product, a recurrence over heads, ...) and one per
/// whole step run on the pool. Each is a round trip between threads; the
/// difference across a decode step is what the step pays in them.
pub fn handoffs() -> usize {
    #[cfg(feature = "threads")]
    return HANDOFFS.load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "threads"))]
    0
}

/// Count one hand-off to the pool.
#[cfg(feature = "threads")]
fn count_handoff() {
    HANDOFFS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    #[cfg(test)]
    HANDOFFS_HERE.with(|n| n.set(n.get() + 1));
}

#[cfg(all(test, feature = "threads"))]
std::thread_local! {
    /// Hand-offs made from this thread: what a unit test's own calls did,
    /// whatever other tests run beside it.
    static HANDOFFS_HERE: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Hand-offs made from the calling thread so far (unit tests).
#[cfg(all(test, feature = "threads"))]
pub(crate) fn handoffs_here() -> usize {
    HANDOFFS_HERE.with(|n| n.get())
}

/// Where matrix work runs: the calling thread, or a fixed pool of threads;
/// integer matrix products (and the scan) go to an [`Offload`] device
/// first when one is set.
#[derive(Clone, Copy, Default)]
pub struct Workers<'o> {
    #[cfg(feature = "threads")]
    pool: Option<&'static rayon::ThreadPool>,
    offload: Option<&'o dyn Offload>,
}

impl core::fmt::Debug for Workers<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.offload {
            Some(dev) => write!(f, "Workers({}, offload {})", self.count(), dev.name()),
            None => write!(f, "Workers({})", self.count()),
        }
    }
}

impl<'o> Workers<'o> {
    /// Everything on the calling thread.
    pub const fn single() -> Self {
        Workers {
            #[cfg(feature = "threads")]
            pool: None,
            offload: None,
        }
    }

    /// The same workers, with matrix products offered to `device` first.
    pub fn with_offload(self, device: &'o dyn Offload) -> Self {
        let mut workers = self;
        workers.offload = Some(device);
        workers
    }

    /// The offload device, if one is set.
    pub fn offload(&self) -> Option<&'o dyn Offload> {
        self.offload
    }

    /// A pool of `threads` threads (1 means the calling thread only).
    /// Pools are created once per size and shared by every model.
    #[cfg(feature = "threads")]
    pub fn threads(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        use std::sync::{Mutex, OnceLock};
        static POOLS: OnceLock<Mutex<std::vec::Vec<(usize, &'static rayon::ThreadPool)>>> = OnceLock::new();
        if threads <= 1 {
            return Ok(Workers::single());
        }
        let pools = POOLS.get_or_init(|| Mutex::new(std::vec::Vec::new()));
        let mut pools = pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&(_, pool)) = pools.iter().find(|(n, _)| *n == threads) {
            return Ok(Workers { pool: Some(pool), offload: None });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| std::format!("eddy-worker-{i}"))
            .build()?;
        // Leaked on purpose: one pool per distinct size, for the process.
        let pool: &'static rayon::ThreadPool = std::boxed::Box::leak(std::boxed::Box::new(pool));
        pools.push((threads, pool));
        Ok(Workers { pool: Some(pool), offload: None })
    }

    /// Number of threads matrix work is split across.
    pub fn count(&self) -> usize {
        #[cfg(feature = "threads")]
        if let Some(pool) = self.pool {
            return pool.current_num_threads();
        }
        1
    }

    /// Run `f` on the pool's threads (the caller waits) when there is a
    /// pool, else here. A whole token step runs this way, so each matrix
    /// product inside it splits by work stealing between threads that are
    /// already running, instead of a hand-off from an outside thread per
    /// product (measured at ~18 µs each on the 2-core dev machine, ~100 of
    /// them per Mamba-130m token).
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        #[cfg(feature = "threads")]
        if let Some(pool) = self.pool {
            count_handoff();
            return pool.install(f);
        }
        f()
    }

    /// Call `job(index, chunk)` for consecutive chunks of `chunk` items of
    /// `data`, in parallel when there is a pool. `job` gets a scratch slice
    /// of `perm_len` bytes of its own (the kernels' reordered activations).
    pub(crate) fn for_chunks<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        perm: &mut [i8],
        job: impl Fn(usize, &mut [T], &mut [i8]) + Sync,
    ) {
        let chunk = chunk.max(1);
        #[cfg(feature = "threads")]
        if let Some(pool) = self.pool {
            if data.len() > chunk {
                use rayon::prelude::*;
                let perm_len = perm.len();
                count_handoff();
                pool.install(|| {
                    data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| {
                        with_thread_perm(perm_len, |p| job(i, c, p));
                    })
                });
                return;
            }
        }
        for (i, c) in data.chunks_mut(chunk).enumerate() {
            job(i, c, perm);
        }
    }
}

impl Workers<'_> {
    /// Call `job(index, a_chunk, b_chunk)` for the consecutive chunks of
    /// `a` (`a_chunk` items) paired with those of `b` (`b_chunk` items), in
    /// parallel when there is a pool; pairs run as far as both have items.
    pub(crate) fn for_chunk_pairs<A: Send, B: Send>(
        &self,
        a: &mut [A],
        a_chunk: usize,
        b: &mut [B],
        b_chunk: usize,
        job: impl Fn(usize, &mut [A], &mut [B]) + Sync,
    ) {
        let (a_chunk, b_chunk) = (a_chunk.max(1), b_chunk.max(1));
        #[cfg(feature = "threads")]
        if let Some(pool) = self.pool {
            if a.len() > a_chunk {
                use rayon::prelude::*;
                count_handoff();
                pool.install(|| {
                    a.par_chunks_mut(a_chunk)
                        .zip(b.par_chunks_mut(b_chunk))
                        .enumerate()
                        .for_each(|(i, (x, y))| job(i, x, y))
                });
                return;
            }
        }
        for (i, (x, y)) in a.chunks_mut(a_chunk).zip(b.chunks_mut(b_chunk)).enumerate() {
            job(i, x, y);
        }
    }
}

/// Run `f` with this thread's reordering buffer of `len` bytes. The buffer
/// grows once per worker thread, then is reused: no allocation per step.
#[cfg(feature = "threads")]
fn with_thread_perm(len: usize, f: impl FnOnce(&mut [i8])) {
    use core::cell::RefCell;
    std::thread_local! {
        static PERM: RefCell<std::vec::Vec<i8>> = const { RefCell::new(std::vec::Vec::new()) };
    }
    PERM.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            f(&mut buf[..len]);
        }
        // Re-entered on the same thread (rayon work stealing inside a job
        // cannot happen here, but stay total): use a fresh buffer.
        Err(_) => f(&mut std::vec![0i8; len]),
    });
}
