//! Stopping a partial decode: whisper.cpp's abort callback, asked between graph nodes whether
//! the utterance's newer audio has overtaken the decode (between nodes of the encoder too with
//! the vendored whisper.cpp, `vendor/README.md`; upstream asks only after each whole graph).

use whisper_rs::FullParams;

use crate::Overtaken;

/// whisper.cpp's abort callback for a partial decode: asks `overtaken` between graph nodes.
#[allow(
    unsafe_code,
    reason = "the one raw callback whisper.cpp offers to stop a decode"
)]
unsafe extern "C" fn abort_when_overtaken(data: *mut std::ffi::c_void) -> bool {
    // SAFETY: `data` is the `&Overtaken` that `stop_when_overtaken` set, which outlives the
    // `whisper_full` call the callback runs in; `Overtaken` is `Sync` (an atomic read), so
    // ggml's threads may ask it at once.
    let overtaken = unsafe { &*data.cast::<Overtaken>() };
    overtaken.is_overtaken()
}

/// Makes the decode with `params` stop once `overtaken` says so. whisper-rs's closure-taking
/// `set_abort_callback_safe` hands the callback its boxed closure as the closure type itself
/// (0.16), so the raw callback and data pointer are set instead.
#[allow(
    unsafe_code,
    reason = "the one raw callback whisper.cpp offers to stop a decode"
)]
pub(super) fn stop_when_overtaken(params: &mut FullParams<'_, '_>, overtaken: &Overtaken) {
    // SAFETY: the callback only reads the `Overtaken` behind the pointer; `params` is used by
    // one `whisper_full` call while `overtaken` is borrowed by the caller.
    unsafe {
        params.set_abort_callback(Some(abort_when_overtaken));
        params.set_abort_callback_user_data(std::ptr::from_ref(overtaken).cast_mut().cast());
    }
}
