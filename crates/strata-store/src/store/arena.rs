//! Where a shard's records live: a slab arena addressed by 32-bit locators.
//!
//! # Why not the global allocator
//!
//! A `malloc` per item costs a header and rounding (glibc: 59 bytes become an
//! 80-byte chunk) and an 8-byte pointer to find it again. The arena packs
//! records into 16 KiB pages cut into chunks of one size class each, with no
//! per-chunk header, and names a chunk by a 4-byte [`Loc`]: 21 bits of page
//! number, 11 bits of offset in 8-byte units. The index stores locators
//! directly, so a lookup goes hash → index → record with no pointer table in
//! between.
//!
//! # Size classes
//!
//! Every multiple of 8 bytes from 16 to 256, then steps of about 1/16 up to
//! 2 KiB, so rounding wastes at most 7 bytes for small items and at most 7
//! bytes plus 1/16 for larger ones. Above that, six coarse classes split a
//! page into 7, 6, 5, 4, 3 and 2 chunks (2336 B … [`MAX_CHUNK`], 8 KiB), so
//! that a page wastes almost nothing at its end.
//!
//! # Large records
//!
//! Records above 8 KiB get memory of their own from the global allocator,
//! in whole pages: their footprint, which the store charges, is the record
//! rounded up to 4 KiB (at most a third more for a record this large), what
//! a page-granular allocator holds for it.
//!
//! # What is really held
//!
//! The arena's counts are only true of the process if the allocator gives
//! back what is freed. glibc's `malloc` does not: under a churn of mixed
//! sizes its heaps fragment, per thread, and memory it holds free stays
//! resident — measured, a 64 MiB store of 100 B–120 KB values held 136 MiB
//! of RSS with every byte of its records accounted for. The `strata`
//! binary therefore runs on jemalloc set to return freed pages at once
//! (`dirty_decay_ms:0`), so that resident memory follows these counts.
//!
//! # Pages
//!
//! A page hands out never-used chunks from a bump offset first and returned
//! chunks from its own free list (threaded through the free chunks
//! themselves), so a fresh page is touched only as it fills and resident
//! memory follows use. Each class keeps a list of pages with free chunks;
//! a page whose last chunk is freed goes back to the global allocator, so
//! memory freed by eviction or expiry in one class can serve another.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;

/// A record's address in its shard's arena.
pub(crate) type Loc = u32;

const PAGE_BYTES: usize = 16 * 1024;
const OFFSET_BITS: u32 = 11;
const OFFSET_MASK: u32 = (1 << OFFSET_BITS) - 1;
/// Pages a shard can address: 2^21 × 16 KiB = 32 GiB.
pub(crate) const MAX_PAGES: usize = 1 << (32 - OFFSET_BITS);
/// The largest chunk served from pages.
pub(crate) const MAX_CHUNK: usize = 8192;
/// The largest of the fine (1/16-step) classes.
const FINE_MAX: u32 = 2048;
const NO_CHUNK: u16 = u16::MAX;
const LARGE: u16 = u16::MAX;

/// The chunk sizes, ascending.
fn class_sizes() -> &'static [u32] {
    static SIZES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    SIZES.get_or_init(|| {
        let mut sizes: Vec<u32> = (2..=32).map(|i| i * 8).collect();
        let mut size = 256u32;
        while size < FINE_MAX {
            size = (size + size / 16).div_ceil(8) * 8;
            sizes.push(size.min(FINE_MAX));
        }
        // Coarse classes: a page cut into `per_page` chunks, 8-byte aligned.
        for per_page in (2..=7).rev() {
            sizes.push((PAGE_BYTES / per_page) as u32 / 8 * 8);
        }
        sizes.dedup();
        sizes
    })
}

/// The class serving records of `len` bytes, or `None` above [`MAX_CHUNK`].
fn class_of(len: usize) -> Option<usize> {
    if len > MAX_CHUNK {
        return None;
    }
    if len <= 256 {
        return Some(len.max(16).div_ceil(8) - 2);
    }
    let sizes = class_sizes();
    Some(sizes.partition_point(|&s| (s as usize) < len))
}

/// Chunks in a page of `class`.
fn per_page(class: usize) -> u32 {
    (PAGE_BYTES / class_sizes()[class] as usize) as u32
}

/// Bytes of arena memory a record of `len` bytes occupies.
pub(crate) fn footprint(len: usize) -> usize {
    match class_of(len) {
        Some(class) => class_sizes()[class] as usize,
        None => large::mapped_len(len),
    }
}

#[derive(Debug)]
struct Page {
    base: Option<NonNull<u8>>,
    /// Size class, or LARGE for a single large record.
    class: u16,
    /// Live chunks.
    live: u16,
    /// Offset (8-byte units) of the first returned chunk, or NO_CHUNK.
    free_head: u16,
    /// Offset (8-byte units) of the first never-used chunk.
    bump: u16,
    /// Position in its class's partial list, if on it.
    partial_at: u32,
    /// Bytes mapped for a large record (whole pages).
    large_bytes: u32,
}

const NOT_PARTIAL: u32 = u32::MAX;

impl Page {
    /// Debug builds check what the arena's soundness rests on: a locator of
    /// a small-class page names a chunk boundary the page has handed out,
    /// wholly inside the page. (Liveness — not freed since — is the
    /// caller's promise: a shard holds a `Loc` only while its record lives.)
    fn debug_check(&self, offset: usize, size: usize) {
        debug_assert!(self.live > 0, "locator into a page with no live chunk");
        debug_assert!(
            offset + size <= PAGE_BYTES,
            "chunk at {offset} (+{size}) past the page end"
        );
        debug_assert_eq!(
            offset % size,
            0,
            "offset {offset} is not a chunk boundary of class {size}"
        );
        debug_assert!(
            offset < usize::from(self.bump) * 8,
            "offset {offset} never handed out (bump at {})",
            usize::from(self.bump) * 8
        );
    }
}

/// A shard's arena.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    pages: Vec<Page>,
    /// Page numbers not in use (their memory already returned).
    spare_numbers: Vec<u32>,
    /// Per class: pages with at least one free chunk.
    partial: Vec<Vec<u32>>,
    /// Per class: free chunks (returned or never used) in its pages.
    free_chunks: Vec<u32>,
    /// Bytes obtained from the global allocator and not yet returned.
    allocated_bytes: usize,
}

// SAFETY: the arena owns its pages exclusively; raw pointers are only a way
// to address them, like a Vec's buffer.
unsafe impl Send for Arena {}
// SAFETY: shared access only reads page memory.
unsafe impl Sync for Arena {}

/// Pages are aligned to the kernel's pages: an allocator then has no reason
/// to offset them inside a larger extent (jemalloc shifts allocations of
/// lesser alignment by a random part of a page, so a 16 KiB page would
/// touch five kernel pages — 25% more resident memory than counted).
fn page_layout() -> Layout {
    Layout::from_size_align(PAGE_BYTES, 4096).expect("valid page layout")
}

impl Arena {
    /// Allocates a chunk for a record of `len` bytes. The chunk's contents are
    /// unspecified; the caller writes the record.
    pub(crate) fn alloc(&mut self, len: usize) -> Loc {
        let Some(class) = class_of(len) else {
            return self.alloc_large(len);
        };
        if self.partial.len() <= class {
            self.partial.resize_with(class + 1, Vec::new);
            self.free_chunks.resize(class + 1, 0);
        }
        let page_no = match self.partial[class].last() {
            Some(&page_no) => page_no,
            None => {
                let page_no = self.new_page(class as u16);
                self.partial[class].push(page_no);
                self.pages[page_no as usize].partial_at = (self.partial[class].len() - 1) as u32;
                page_no
            }
        };
        let size = class_sizes()[class] as usize;
        let page = &mut self.pages[page_no as usize];
        let base = page.base.expect("slab pages have memory");
        let offset = if page.free_head != NO_CHUNK {
            let offset = page.free_head;
            // SAFETY: a free chunk stores the next free offset in its first
            // two bytes (written by `free`); the chunk is inside this page.
            let next = unsafe {
                base.as_ptr()
                    .add(usize::from(offset) * 8)
                    .cast::<u16>()
                    .read_unaligned()
            };
            page.free_head = next;
            offset
        } else {
            let offset = page.bump;
            page.bump += (size / 8) as u16;
            offset
        };
        page.live += 1;
        self.free_chunks[class] -= 1;
        let full = page.free_head == NO_CHUNK && usize::from(page.bump) * 8 + size > PAGE_BYTES;
        if full {
            self.unlist(page_no);
        }
        (page_no << OFFSET_BITS) | u32::from(offset)
    }

    fn alloc_large(&mut self, len: usize) -> Loc {
        let bytes = large::mapped_len(len);
        let base = large::map(bytes);
        self.allocated_bytes += bytes;
        let page_no = self.page_number();
        self.pages[page_no as usize] = Page {
            base: Some(base),
            class: LARGE,
            live: 1,
            free_head: NO_CHUNK,
            bump: 0,
            partial_at: NOT_PARTIAL,
            large_bytes: u32::try_from(bytes).expect("records are under 4 GiB"),
        };
        page_no << OFFSET_BITS
    }

    fn page_number(&mut self) -> u32 {
        match self.spare_numbers.pop() {
            Some(page_no) => page_no,
            None => {
                assert!(
                    self.pages.len() < MAX_PAGES,
                    "shard arena is full (32 GiB); use more shards"
                );
                self.pages.push(Page {
                    base: None,
                    class: 0,
                    live: 0,
                    free_head: NO_CHUNK,
                    bump: 0,
                    partial_at: NOT_PARTIAL,
                    large_bytes: 0,
                });
                (self.pages.len() - 1) as u32
            }
        }
    }

    fn new_page(&mut self, class: u16) -> u32 {
        let layout = page_layout();
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        self.allocated_bytes += PAGE_BYTES;
        self.free_chunks[usize::from(class)] += per_page(usize::from(class));
        let page_no = self.page_number();
        self.pages[page_no as usize] = Page {
            base: Some(base),
            class,
            live: 0,
            free_head: NO_CHUNK,
            bump: 0,
            partial_at: NOT_PARTIAL,
            large_bytes: 0,
        };
        page_no
    }

    fn unlist(&mut self, page_no: u32) {
        let page = &mut self.pages[page_no as usize];
        let at = page.partial_at;
        if at == NOT_PARTIAL {
            return;
        }
        page.partial_at = NOT_PARTIAL;
        let list = &mut self.partial[usize::from(page.class)];
        list.swap_remove(at as usize);
        if let Some(&moved) = list.get(at as usize) {
            self.pages[moved as usize].partial_at = at;
        }
    }

    /// Returns the chunk at `loc` to the arena.
    pub(crate) fn free(&mut self, loc: Loc) {
        let page_no = loc >> OFFSET_BITS;
        let offset = (loc & OFFSET_MASK) as u16;
        let page = &mut self.pages[page_no as usize];
        let base = page.base.expect("freeing a chunk of a live page");
        if page.class == LARGE {
            let bytes = page.large_bytes as usize;
            page.base = None;
            // SAFETY: mapped in alloc_large with this length, unmapped once.
            unsafe { large::unmap(base, bytes) };
            self.allocated_bytes -= bytes;
            self.spare_numbers.push(page_no);
            return;
        }
        page.debug_check(usize::from(offset) * 8, class_sizes()[usize::from(page.class)] as usize);
        // SAFETY: the chunk at `offset` is inside this page and no longer
        // holds a record; its first two bytes now link the free list.
        unsafe {
            base.as_ptr()
                .add(usize::from(offset) * 8)
                .cast::<u16>()
                .write_unaligned(page.free_head)
        };
        page.free_head = offset;
        page.live -= 1;
        let class = usize::from(page.class);
        self.free_chunks[class] += 1;
        if page.live == 0 {
            self.free_chunks[class] -= per_page(class);
            self.unlist(page_no);
            let page = &mut self.pages[page_no as usize];
            // SAFETY: allocated in new_page with page_layout, freed once; no
            // chunk of it is live.
            unsafe { dealloc(base.as_ptr(), page_layout()) };
            page.base = None;
            self.allocated_bytes -= PAGE_BYTES;
            self.spare_numbers.push(page_no);
        } else if page.partial_at == NOT_PARTIAL {
            self.partial[class].push(page_no);
            self.pages[page_no as usize].partial_at = (self.partial[class].len() - 1) as u32;
        }
    }

    /// The memory of the chunk at `loc`, at least as long as the record
    /// allocated there.
    pub(crate) fn chunk(&self, loc: Loc) -> &[u8] {
        let (ptr, len) = self.locate(loc);
        // SAFETY: `locate` gives a live chunk inside a live page; the shard
        // writes every record fully before reading it.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// The memory of the chunk at `loc`, writable.
    pub(crate) fn chunk_mut(&mut self, loc: Loc) -> &mut [u8] {
        let (ptr, len) = self.locate(loc);
        // SAFETY: as in `chunk`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }

    fn locate(&self, loc: Loc) -> (*mut u8, usize) {
        let page = &self.pages[(loc >> OFFSET_BITS) as usize];
        let base = page.base.expect("locator of a live page").as_ptr();
        if page.class == LARGE {
            debug_assert_eq!(loc & OFFSET_MASK, 0, "a large record's locator has no offset");
            return (base, page.large_bytes as usize);
        }
        let offset = (loc & OFFSET_MASK) as usize * 8;
        let size = class_sizes()[usize::from(page.class)] as usize;
        page.debug_check(offset, size);
        // SAFETY: offsets handed out by `alloc` are inside the page (checked
        // above in debug builds).
        (unsafe { base.add(offset) }, size)
    }

    /// Frees everything.
    pub(crate) fn clear(&mut self) {
        for page in &mut self.pages {
            if let Some(base) = page.base.take() {
                if page.class == LARGE {
                    // SAFETY: mapped in alloc_large with this length, once.
                    unsafe { large::unmap(base, page.large_bytes as usize) };
                } else {
                    // SAFETY: allocated in new_page with this layout, once.
                    unsafe { dealloc(base.as_ptr(), page_layout()) };
                }
            }
        }
        self.pages.clear();
        self.spare_numbers.clear();
        self.partial.clear();
        self.free_chunks.clear();
        self.allocated_bytes = 0;
    }

    /// Bytes held from the global allocator (pages and large records).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.allocated_bytes
    }

    /// Heap bytes of the arena's own bookkeeping.
    pub(crate) fn bookkeeping_bytes(&self) -> usize {
        self.page_table_bytes() + self.partial.iter().map(|p| p.capacity() * 4).sum::<usize>()
    }

    /// Heap bytes of the page table, in constant time.
    pub(crate) fn page_table_bytes(&self) -> usize {
        self.pages.capacity() * std::mem::size_of::<Page>() + self.spare_numbers.capacity() * 4
    }

    /// A page that compaction can free: of a class holding at least a
    /// page's worth of free chunks, the partly used page with the fewest
    /// live chunks, if those fit in the free chunks of the class's other
    /// pages. Its class's size with it.
    pub(crate) fn compactable_page(&self) -> Option<u32> {
        self.partial.iter().enumerate().find_map(|(class, pages)| {
            let per = per_page(class);
            let free = self.free_chunks[class];
            if free < per {
                return None;
            }
            let &page_no = pages.iter().min_by_key(|&&p| self.pages[p as usize].live)?;
            let live = u32::from(self.pages[page_no as usize].live);
            (free - (per - live) >= live).then_some(page_no)
        })
    }

    /// The live chunks of small-class page `page_no`; the page is taken off
    /// its class's list, so allocations until its next free go elsewhere.
    pub(crate) fn evacuate(&mut self, page_no: u32) -> Vec<Loc> {
        self.unlist(page_no);
        let page = &self.pages[page_no as usize];
        let base = page.base.expect("a live page");
        let size = class_sizes()[usize::from(page.class)] as usize;
        let mut free = vec![false; PAGE_BYTES / 8];
        let mut at = page.free_head;
        while at != NO_CHUNK {
            free[usize::from(at)] = true;
            // SAFETY: free chunks link the list in their first two bytes.
            at = unsafe { base.as_ptr().add(usize::from(at) * 8).cast::<u16>().read_unaligned() };
        }
        (0..usize::from(page.bump))
            .step_by(size / 8)
            .filter(|&unit| !free[unit])
            .map(|unit| (page_no << OFFSET_BITS) | unit as u32)
            .collect()
    }

    /// A chunk of the class of `like`'s page.
    pub(crate) fn alloc_like(&mut self, like: Loc) -> Loc {
        let class = usize::from(self.pages[(like >> OFFSET_BITS) as usize].class);
        self.alloc(class_sizes()[class] as usize)
    }

    /// Copies the chunk at `from` to `to`, of the same class.
    pub(crate) fn copy_chunk(&mut self, from: Loc, to: Loc) {
        let (source, len) = self.locate(from);
        let (target, target_len) = self.locate(to);
        assert_eq!(len, target_len, "chunks of one class");
        // SAFETY: two live chunks of `len` bytes, distinct (one is being
        // vacated, the other freshly allocated), so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(source, target, len) };
    }

    /// Bytes the arena must add to hold a record of `len` bytes: none if
    /// its class has a free chunk, else a page (or the record's mapping).
    pub(crate) fn growth_for(&self, len: usize) -> usize {
        match class_of(len) {
            Some(class) if self.partial.get(class).is_some_and(|pages| !pages.is_empty()) => 0,
            Some(_) => PAGE_BYTES,
            None => large::mapped_len(len),
        }
    }
}

/// Memory for large records, in whole pages.
mod large {
    use std::alloc::Layout;
    use std::ptr::NonNull;

    /// The page size the footprint rounds to: the kernel's on the
    /// platforms strata serves from.
    const PAGE: usize = 4096;

    /// The bytes held for a record of `len` bytes.
    pub(super) fn mapped_len(len: usize) -> usize {
        len.div_ceil(PAGE) * PAGE
    }

    fn layout(bytes: usize) -> Layout {
        Layout::from_size_align(bytes, PAGE).expect("record size fits a layout")
    }

    /// Allocates `bytes` (a multiple of the page size), page-aligned.
    pub(super) fn map(bytes: usize) -> NonNull<u8> {
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { std::alloc::alloc(layout(bytes)) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(layout(bytes)))
    }

    /// Frees what [`map`] allocated.
    ///
    /// # Safety
    ///
    /// `base` and `bytes` come from one call of [`map`], and nothing uses
    /// the memory afterwards.
    pub(super) unsafe fn unmap(base: NonNull<u8>, bytes: usize) {
        // SAFETY: the caller's promise: allocated by `map` with this layout.
        unsafe { std::alloc::dealloc(base.as_ptr(), layout(bytes)) };
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_cover_every_size_tightly() {
        let sizes = class_sizes();
        assert_eq!(sizes[0], 16);
        assert_eq!(*sizes.last().unwrap(), MAX_CHUNK as u32);
        assert!(sizes.len() < 80, "{} classes", sizes.len());
        for len in 1..=FINE_MAX as usize {
            let class = class_of(len).unwrap();
            let size = sizes[class] as usize;
            assert!(size >= len, "len {len} class size {size}");
            if class > 0 {
                assert!(
                    (sizes[class - 1] as usize) < len.max(16),
                    "len {len} not in the smallest class"
                );
            }
            let len = len.max(16);
            assert!(size - len <= 7 + len / 16, "len {len} wastes {}", size - len);
        }
        // Coarse classes: whole pages cut into 7 … 2 chunks.
        for len in FINE_MAX as usize + 1..=MAX_CHUNK {
            let size = sizes[class_of(len).unwrap()] as usize;
            let per_page = PAGE_BYTES / size;
            assert!(size >= len && (2..=7).contains(&per_page), "len {len} in class {size}");
            assert!(PAGE_BYTES - per_page * size < 64, "class {size} wastes the page's end");
            assert_eq!(size % 8, 0);
        }
        assert_eq!(class_of(MAX_CHUNK + 1), None);
        assert_eq!(footprint(59), 64);
        assert_eq!(footprint(MAX_CHUNK + 1), 12 * 1024);
    }

    #[test]
    fn pages_are_returned_when_empty() {
        let mut arena = Arena::default();
        let locs: Vec<Loc> = (0..10_000).map(|_| arena.alloc(64)).collect();
        assert!(arena.allocated_bytes() >= 10_000 * 64);
        for &loc in &locs {
            arena.free(loc);
        }
        assert_eq!(arena.allocated_bytes(), 0);
        let big = arena.alloc(100_000);
        assert_eq!(arena.chunk(big).len(), footprint(100_000));
        assert!(footprint(100_000) >= 100_000 && footprint(100_000) < 100_000 + 64 * 1024);
        assert_eq!(arena.allocated_bytes(), footprint(100_000));
        arena.free(big);
        assert_eq!(arena.allocated_bytes(), 0);
    }

    proptest! {
        // Model: every live chunk keeps the bytes written into it; chunks
        // never overlap; freed memory is reused.
        #[test]
        fn chunks_keep_their_bytes(ops in proptest::collection::vec((0usize..20_000, any::<bool>()), 1..400)) {
            let mut arena = Arena::default();
            let mut live: Vec<(Loc, usize, u8)> = Vec::new();
            for (i, (len, free)) in ops.into_iter().enumerate() {
                if free && !live.is_empty() {
                    let (loc, len, fill) = live.swap_remove(i % live.len());
                    prop_assert!(arena.chunk(loc)[..len].iter().all(|&b| b == fill));
                    arena.free(loc);
                } else {
                    let len = len.max(1);
                    let loc = arena.alloc(len);
                    let fill = (i % 251) as u8;
                    prop_assert!(arena.chunk(loc).len() >= len);
                    arena.chunk_mut(loc)[..len].fill(fill);
                    live.push((loc, len, fill));
                }
                for &(loc, len, fill) in &live {
                    prop_assert!(arena.chunk(loc)[..len].iter().all(|&b| b == fill), "chunk {} clobbered", loc);
                }
            }
        }
    }
}
