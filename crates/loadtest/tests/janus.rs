//! A meeting in Janus's VideoRoom, measured exactly like a Salon meeting:
//! Debian's `janus` started by the harness in a private network namespace,
//! three publishers who each receive the other two, every subscription
//! with media and nothing lost.
//!
//! Runs when `janus` is installed, or always with `SALON_JANUS=required`
//! (then the harness installs it with apt-get when it is missing, as root;
//! `scripts/test` sets it). `SALON_JANUS=skip` leaves it out. The namespace
//! needs root (`CAP_SYS_ADMIN`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use salon_loadtest::janus::netns;
use salon_loadtest::janus::server::{self, JanusOptions, JanusServer};
use salon_loadtest::{JanusTarget, Plan, Report, RunOptions};

/// The programs the test needs, or `None` when it should not run.
fn programs() -> Option<(PathBuf, PathBuf)> {
    let mode = std::env::var("SALON_JANUS").unwrap_or_default();
    if mode == "skip" {
        eprintln!("SALON_JANUS=skip: the Janus test does not run");
        return None;
    }
    let required = mode == "required";
    let mut say = |s: &str| eprintln!("{s}");
    let find = |program: &str, package: &str, say: &mut dyn FnMut(&str)| {
        if required {
            Some(
                server::find_or_install(program, package, say)
                    .unwrap_or_else(|e| panic!("SALON_JANUS=required: {e}")),
            )
        } else {
            server::find(program)
        }
    };
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match (
        root,
        find("janus", "janus", &mut say),
        find("ip", "iproute2", &mut say),
    ) {
        (true, Some(janus), Some(ip)) => Some((janus, ip)),
        _ if required => panic!("SALON_JANUS=required, but this needs root, janus and ip"),
        _ => {
            eprintln!("janus, ip or root privileges missing: the Janus test does not run");
            None
        }
    }
}

/// Run `plan` against a Janus of its own, in a namespace of its own, on a
/// thread of its own (namespaces belong to threads).
fn run_against_janus(janus: PathBuf, ip: PathBuf, plan: Plan) -> (Report, String) {
    std::thread::spawn(move || {
        netns::isolate(&ip).expect("a private network namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let server = JanusServer::start(&JanusOptions::new(janus))
                .await
                .expect("Janus starts");
            let target = Arc::new(JanusTarget::new(server.url()));
            let mut options = RunOptions::new(plan);
            options.server_pid = Some(server.pid());
            let report = salon_loadtest::run(target, options, |p| eprintln!("{p}"))
                .await
                .expect("the run starts");
            let log = server.log_tail(6000);
            server.stop().await;
            (report, log)
        })
    })
    .join()
    .expect("the run's thread")
}

#[test]
fn a_meeting_of_three_in_janus_loses_nothing() {
    let Some((janus, ip)) = programs() else {
        return;
    };
    // RUST_LOG=str0m=debug,… shows the client side.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut plan = Plan::meeting(1, 3);
    plan.ramp = Duration::from_secs(1);
    plan.settle = Duration::from_secs(10);
    plan.duration = Duration::from_secs(3);
    plan.prefix = "janus-test".into();
    let (r, log) = run_against_janus(janus, ip, plan);
    eprint!("{}", r.table());
    if std::env::var_os("SALON_JANUS_LOG").is_some() {
        eprintln!("Janus log:\n{log}");
    }
    let context = format!("{}\nJanus log:\n{log}", r.table());

    assert_eq!(r.target.kind, "janus");
    assert_eq!((r.joins.joined, r.joins.failed), (3, 0), "{context}");
    assert_eq!(r.joins.media_connected, 3, "{context}");
    let window = r.window.as_ref().expect("a window");
    assert_eq!(window.subscriptions.expected, 12, "{context}");
    assert_eq!(window.subscriptions.with_media, 12, "{context}");

    // Each publisher receives the other two's audio and video, whole.
    assert_eq!(r.subscriptions.len(), 12, "{context}");
    for s in &r.subscriptions {
        assert!(s.packets > 0, "no media: {s:?}\n{context}");
        assert_eq!(s.lost, 0, "loss: {s:?}\n{context}");
        let publisher = s.publisher.as_deref().expect("a known publisher");
        assert_ne!(publisher, s.subscriber, "{context}");
        assert!(s.latency_us.p50.is_some(), "{s:?}");
    }
    assert_eq!(window.received.lost, 0, "{context}");
    assert_eq!(window.received.foreign, 0, "{context}");
    assert!(window.received.packets > 0, "{context}");

    // The server's CPU, counted against what the subscribers received.
    let server = r.server.as_ref().expect("server figures");
    assert_eq!(server.forwarded_source, "subscribers");
    assert_eq!(server.forwarded_packets, window.received.packets);
    assert!(server.cpu_seconds.is_some_and(|c| c > 0.0), "{context}");
    assert!(server.cpu_us_per_forwarded_packet.is_some(), "{context}");
}
