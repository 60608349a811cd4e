//! # steno-process-faults
//!
//! Not a library: the home of `steno-scripted-worker`, a worker process serving core's scripted
//! transcriber with faults to inject on demand (crashes, garbage on the pipe, failures), and of
//! the tests that run the process backend (`tests/workers.rs`) and the NATS backend
//! (`tests/nats.rs`, with a real `nats-server`) against it. It lives apart from
//! `steno-process` so that the published crate ships no fault-injection binary.
