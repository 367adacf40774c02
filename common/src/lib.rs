//! The contract between the XDP program (`xdp-ebpf`) and the daemon (`userspace`): map names and sizes, the
//! `#[repr(C)]` keys, values and events stored in those maps, and the names of the program's load-time
//! settings. Nothing else crosses the kernel/userspace boundary.
//!
//! This crate is `no_std` and allocation-free so the eBPF side can use it; the `user` feature adds `aya::Pod`
//! impls for userspace. It must not grow logic beyond small pure helpers on these types: policy belongs in
//! userspace, which compiles it into map entries and settings.
#![no_std]

pub mod events;
pub mod geo;
pub mod maps;
pub mod settings;
pub mod stats;

pub use events::DropEvent;
pub use maps::{EntrySource, ListEntry};
pub use stats::{Action, Counter, Reason};
