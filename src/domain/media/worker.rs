//! Image processing off the async workers: decoding and re-encoding take
//! tens to hundreds of milliseconds of CPU and up to
//! [`MAX_DECODE_BYTES`](super::process::MAX_DECODE_BYTES) of memory each, so
//! they run on a fixed set of threads (an actix `SyncArbiter`). The thread
//! count bounds both the CPU and the memory in use; further uploads queue.

use std::panic::AssertUnwindSafe;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};

use super::process::{self, ProcessError, ProcessedImage};

pub struct ImageWorker;

impl Actor for ImageWorker {
    type Context = SyncContext<Self>;
}

/// Process these uploaded bytes.
pub struct ProcessImage(pub Vec<u8>);

impl Message for ProcessImage {
    type Result = Result<ProcessedImage, ProcessError>;
}

impl Handler<ProcessImage> for ImageWorker {
    type Result = Result<ProcessedImage, ProcessError>;

    fn handle(&mut self, msg: ProcessImage, _: &mut Self::Context) -> Self::Result {
        // A decoder bug triggered by a hostile file must cost one request,
        // not a worker thread: a SyncArbiter does not replace threads that die.
        std::panic::catch_unwind(AssertUnwindSafe(|| process::process(&msg.0))).unwrap_or_else(
            |_| {
                Err(ProcessError::Undecodable(
                    "the decoder failed on this file".into(),
                ))
            },
        )
    }
}

/// Starts `threads` worker threads. Must run inside an actix `System`.
pub fn start(threads: usize) -> Addr<ImageWorker> {
    SyncArbiter::start(threads.max(1), || ImageWorker)
}
