//! CPU-bound work over a large slice split across the machine's cores, results kept in the
//! slice's order: a whole-estate evaluation judges 100,000 assets and hashes 300,000 findings
//! on one thread otherwise, while the other core waits. Small inputs stay on the calling
//! thread, where a thread would cost more than it saves.

use std::num::NonZeroUsize;

/// Items below which the work stays on the calling thread.
const SERIAL_BELOW: usize = 4_096;

/// `work` over contiguous parts of `items` on up to one scoped thread per core, each part's
/// results in order and the parts in order: the same `Vec` the serial
/// `work(0, items)` gives when `work` maps each item on its own. `work` gets the part's
/// offset in `items`, for slices kept parallel to `items`.
pub fn map_parts<T, R, F>(items: &[T], work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &[T]) -> Vec<R> + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    if items.len() < SERIAL_BELOW || cores == 1 {
        return work(0, items);
    }
    let part = items.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .chunks(part)
            .enumerate()
            .map(|(i, chunk)| scope.spawn(move || work(i * part, chunk)))
            .collect();
        let mut results = Vec::with_capacity(items.len());
        for handle in handles {
            // A panic in `work` is a bug; carry it to the caller as the serial call would.
            match handle.join() {
                Ok(part) => results.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_in_order_with_their_offsets() {
        for len in [0, 1, SERIAL_BELOW - 1, SERIAL_BELOW, 3 * SERIAL_BELOW + 7] {
            let items: Vec<usize> = (0..len).collect();
            let mapped = map_parts(&items, |offset, part| {
                part.iter()
                    .enumerate()
                    .map(|(i, item)| {
                        assert_eq!(offset + i, *item, "offset of part");
                        item * 2
                    })
                    .collect()
            });
            assert_eq!(mapped, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
