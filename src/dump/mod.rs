//! Go goroutine dumps: the model, the streaming parser, annotation, grouping, rendering.
//! Everything here is pure: bytes in, bytes out.

pub mod annotate;
pub mod group;
pub mod model;
pub mod parse;
pub mod render;

pub use model::{DumpInfo, DumpKind, DumpTime, Goroutine, Sink, TimeSource};
pub use parse::{LineTime, Parser, TimePolicy};
