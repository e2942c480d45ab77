//! Faults from outside the program: a worker process SIGKILLed at a moment between its task
//! making a 64 MiB result and the scheduler having read all of it (the timer is armed in the
//! task, so where it lands — in the task, the encoding, the send — varies). The get fails with `worker_died` naming the task (or succeeds, when the kill comes
//! after the result arrived); the caller lives on, and the next get on the same graph works.
//! (A full disk: tests/c/faults.c. Lying plugins: tests/plugins.rs.)

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

use daskr::{Comp, ErrorKind, Func, Graph, Options, Scheduler, Value};

const BIG: usize = 64 << 20;

extern "C" fn kill_self(_: libc::c_int) {
    // SAFETY: kill and getpid are async-signal-safe.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// `big(delay_us)`: arms a timer that SIGKILLs this (worker) process after `delay_us`, then
/// returns 64 MiB — so the kill lands while the result is encoded or on its way.
fn big() -> Func {
    Func::new("big", |c| {
        let us = c.arg(0).and_then(Value::as_int).unwrap_or(0);
        // SAFETY: installs a handler and arms a one-shot timer in this worker process.
        unsafe {
            libc::signal(libc::SIGALRM, kill_self as *const () as usize);
            let t = libc::itimerval {
                it_interval: libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
                it_value: libc::timeval {
                    tv_sec: 0,
                    tv_usec: us as libc::suseconds_t,
                },
            };
            libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
        }
        c.ret(Value::bytes(&vec![7u8; BIG]));
    })
}

fn procs() -> Options<'static> {
    Options {
        scheduler: Scheduler::Processes,
        num_workers: 2,
        ..Options::default()
    }
}

#[test]
fn a_worker_killed_while_sending_a_result_is_worker_died_and_the_caller_goes_on() {
    let f = big();
    let len = Func::new("len", |c| {
        let n = c
            .arg(0)
            .and_then(Value::as_bytes)
            .map_or(-1, |b| b.len() as i64);
        c.ret(Value::Int(n));
    });
    let (mut died, mut arrived) = (0, 0);
    for delay_us in [1, 1_000, 10_000, 30_000, 100_000, 999_999] {
        let mut g = Graph::new();
        g.add(
            "big",
            Comp::task(&f, vec![Comp::value(Value::Int(delay_us))], vec![]),
        )
        .unwrap();
        g.add("n", Comp::task(&len, vec![Comp::key("big")], vec![]))
            .unwrap();
        g.add_value("other", Value::Int(5)).unwrap();
        // The big result itself must travel back to the caller: ask for it.
        match g.get(&Value::str("big"), &procs()) {
            Ok(v) => {
                assert_eq!(v.as_bytes().map(<[u8]>::len), Some(BIG), "delay {delay_us}");
                arrived += 1;
            }
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::WorkerDied, "delay {delay_us}: {e}");
                assert_eq!(e.key.as_deref(), Some("big"), "delay {delay_us}: {e}");
                died += 1;
            }
        }
        // The caller is intact: other results of the same graph come.
        assert_eq!(
            g.get(&Value::str("other"), &procs()).unwrap(),
            Value::Int(5),
            "delay {delay_us}"
        );
    }
    eprintln!("faults: killed while sending: {died} worker_died, {arrived} arrived first");
    assert!(died > 0, "no kill landed before the result arrived");
}
