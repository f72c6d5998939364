//! The hot path allocates nothing: parsing `get`, `mg`, `set` and `ms`, and
//! encoding their replies into a buffer with room, are counted by a global
//! allocator that tallies allocations per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use strata_proto::memcache::encode::{encode_end, encode_status, encode_value};
use strata_proto::memcache::{Limits, MetaCode, MetaReply, Parsed, Request, Status, parse_request};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor, so reading it from inside
    // the allocator never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while running `work`.
fn allocations(work: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn parsing_hot_requests_allocates_nothing() {
    let limits = Limits::default();
    let pipeline: &[u8] = b"get user:1\r\nget a b c d\r\nmg user:1 v f t c k Oop q\r\n\
        set user:1 0 60 5\r\nhello\r\nms user:1 5 T60 F3 c\r\nworld\r\ndelete user:1\r\nmn\r\n";
    let mut requests = 0;
    let counted = allocations(|| {
        let mut rest = pipeline;
        while let Ok(Parsed::Request { request, consumed }) = parse_request(rest, &limits) {
            // Touch what a server reads, so nothing is parsed lazily elsewhere.
            match &request {
                Request::Get(get) => assert!(get.keys.iter().count() > 0),
                Request::MetaGet(meta) => assert!(meta.flags.iter().count() > 0 && meta.flags.ttl().is_none()),
                Request::Store(store) => assert_eq!(store.data.len(), 5),
                Request::MetaSet(set) => assert_eq!(set.meta.flags.ttl(), Some(60)),
                _ => {}
            }
            requests += 1;
            rest = &rest[consumed..];
        }
        assert!(rest.is_empty());
    });
    assert_eq!(requests, 7);
    assert_eq!(counted, 0, "the request parser allocated");
}

#[test]
fn encoding_replies_into_a_buffer_with_room_allocates_nothing() {
    let mut out = Vec::with_capacity(4096);
    let counted = allocations(|| {
        encode_value(&mut out, b"user:1", 3, b"hello", Some(u64::MAX));
        encode_end(&mut out);
        encode_status(&mut out, Status::Stored);
        let mut reply = MetaReply::value(&mut out, 5);
        reply
            .uint(b'f', 3)
            .int(b't', -1)
            .uint(b'c', 42)
            .key(b"user:1", false)
            .token(b'O', b"op");
        reply.finish_with_data(b"hello");
        let mut reply = MetaReply::status(&mut out, MetaCode::Hd);
        reply.key(b"\x00\x01", true);
        reply.finish();
    });
    assert_eq!(counted, 0, "a reply encoder allocated");
    assert!(out.starts_with(b"VALUE user:1 3 5 18446744073709551615\r\nhello\r\nEND\r\nSTORED\r\n"));
}

#[test]
fn base64_keys_are_the_only_allocation() {
    let limits = Limits::default();
    let counted = allocations(|| {
        let parsed = parse_request(b"mg dXNlcjox b v\r\n", &limits);
        let Ok(Parsed::Request {
            request: Request::MetaGet(meta),
            ..
        }) = parsed
        else {
            panic!("not mg")
        };
        assert_eq!(meta.key.as_ref(), b"user:1");
    });
    assert_eq!(counted, 1);
}
