//! Rendering threads that yield to the requests.

/// The nice value of the rendering threads in a process that also answers
/// requests: a publication then takes the cores only when nobody is
/// waiting for them.
pub(super) const RENDER_NICENESS: i32 = 10;

/// Makes the threads that render publications (rayon's global pool) yield
/// to the others: for `decompte serve`, where a publication running on
/// every core would otherwise delay the declarations that arrive meanwhile
/// by as long as it lasts. Call it once, before the first publication.
pub fn render_in_background() -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .start_handler(|_| {
            let thread = rustix::thread::gettid();
            if let Err(error) = rustix::process::setpriority_process(Some(thread), RENDER_NICENESS)
            {
                tracing::warn!(%error, "could not lower the priority of a rendering thread");
            }
        })
        .build_global()
}
