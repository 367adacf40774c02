//! The contract between the XDP program (`xdp-ebpf`) and the daemon (`userspace`): map names, and the
//! `#[repr(C)]` keys and values stored in those maps. Nothing else crosses the kernel/userspace boundary.
//!
//! This crate is `no_std` and allocation-free so the eBPF side can use it; the `user` feature adds `aya::Pod`
//! impls for userspace. It must not grow logic beyond small pure helpers on these types: policy belongs in
//! userspace, which compiles it into map entries.
#![no_std]

pub mod maps;
pub mod stats;

pub use maps::{EntrySource, ListEntry};
pub use stats::{Action, Counter, Reason};
