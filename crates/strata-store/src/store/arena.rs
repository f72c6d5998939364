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
//! [`MAX_CHUNK`] (2 KiB), so rounding wastes at most 7 bytes for small items
//! and at most 7 bytes plus 1/16 for larger ones. Records above 2 KiB get a page of their own
//! from the global allocator, where a 16-byte header is under 1%.
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
pub(crate) const MAX_CHUNK: usize = 2048;
const NO_CHUNK: u16 = u16::MAX;
const LARGE: u16 = u16::MAX;

/// The chunk sizes, ascending.
fn class_sizes() -> &'static [u32] {
    static SIZES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    SIZES.get_or_init(|| {
        let mut sizes: Vec<u32> = (2..=32).map(|i| i * 8).collect();
        let mut size = 256u32;
        while size < MAX_CHUNK as u32 {
            size = (size + size / 16).div_ceil(8) * 8;
            sizes.push(size.min(MAX_CHUNK as u32));
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

/// Bytes of arena memory a record of `len` bytes occupies.
pub(crate) fn footprint(len: usize) -> usize {
    match class_of(len) {
        Some(class) => class_sizes()[class] as usize,
        // The global allocator's header and rounding.
        None => len.div_ceil(16) * 16 + 16,
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
    /// Bytes allocated for a large record.
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
    /// Bytes obtained from the global allocator and not yet returned.
    allocated_bytes: usize,
}

// SAFETY: the arena owns its pages exclusively; raw pointers are only a way
// to address them, like a Vec's buffer.
unsafe impl Send for Arena {}
// SAFETY: shared access only reads page memory.
unsafe impl Sync for Arena {}

fn page_layout() -> Layout {
    Layout::from_size_align(PAGE_BYTES, 64).expect("valid page layout")
}

fn large_layout(bytes: usize) -> Layout {
    Layout::from_size_align(bytes, 8).expect("record size fits a layout")
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
        let full = page.free_head == NO_CHUNK && usize::from(page.bump) * 8 + size > PAGE_BYTES;
        if full {
            self.unlist(page_no);
        }
        (page_no << OFFSET_BITS) | u32::from(offset)
    }

    fn alloc_large(&mut self, len: usize) -> Loc {
        let layout = large_layout(len);
        // SAFETY: len > MAX_CHUNK > 0.
        let base = NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        self.allocated_bytes += footprint(len);
        let page_no = self.page_number();
        self.pages[page_no as usize] = Page {
            base: Some(base),
            class: LARGE,
            live: 1,
            free_head: NO_CHUNK,
            bump: 0,
            partial_at: NOT_PARTIAL,
            large_bytes: u32::try_from(len).expect("records are under 4 GiB"),
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
            // SAFETY: allocated in alloc_large with this layout, freed once.
            unsafe { dealloc(base.as_ptr(), large_layout(bytes)) };
            self.allocated_bytes -= footprint(bytes);
            page.base = None;
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
        if page.live == 0 {
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
                let layout = if page.class == LARGE {
                    large_layout(page.large_bytes as usize)
                } else {
                    page_layout()
                };
                // SAFETY: allocated with this layout, freed once.
                unsafe { dealloc(base.as_ptr(), layout) };
            }
        }
        self.pages.clear();
        self.spare_numbers.clear();
        self.partial.clear();
        self.allocated_bytes = 0;
    }

    /// Bytes held from the global allocator (pages and large records).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.allocated_bytes
    }

    /// Heap bytes of the arena's own bookkeeping.
    pub(crate) fn bookkeeping_bytes(&self) -> usize {
        self.pages.capacity() * std::mem::size_of::<Page>()
            + self.spare_numbers.capacity() * 4
            + self.partial.iter().map(|p| p.capacity() * 4).sum::<usize>()
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
        assert!(sizes.len() < 64, "{} classes", sizes.len());
        for len in 1..=MAX_CHUNK {
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
        assert_eq!(class_of(MAX_CHUNK + 1), None);
        assert_eq!(footprint(59), 64);
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
        assert_eq!(arena.chunk(big).len(), 100_000);
        arena.free(big);
        assert_eq!(arena.allocated_bytes(), 0);
    }

    proptest! {
        // Model: every live chunk keeps the bytes written into it; chunks
        // never overlap; freed memory is reused.
        #[test]
        fn chunks_keep_their_bytes(ops in proptest::collection::vec((0usize..3000, any::<bool>()), 1..400)) {
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
