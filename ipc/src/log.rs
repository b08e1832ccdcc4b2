//! Structured logs to stderr (the supervisor appends them to <run-dir>/<daemon>.log; systemd sends
//! stderr to the journal). Level from FERROSWAN_LOG (tracing filter syntax), default info.

pub fn init(program: &'static str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROSWAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd the journal adds its own timestamps.
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let res = if under_journal {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    if res.is_ok() {
        tracing::debug!("{program} logging initialised");
    }
}
