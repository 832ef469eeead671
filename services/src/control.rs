//! The control endpoint: live fault injection and a state report, for the lab to drive
//! a running server with curl.
//!
//! `POST /control/fault?kind=KIND[&part=P|&code=N|&signal=S][&after=DURATION]`
//! `GET  /control/state`
//!
//! The query is translated into the same `KIND[:ARG][@after=D]` grammar as `--fault`, so
//! both paths share one parser and one set of error messages.

use std::sync::Arc;
use std::time::Duration;

use crate::duration;
use crate::faults::{self, FaultSpec, Trigger};
use crate::http::{Request, Response};
use crate::state::Shared;

/// Work to do after the response went out (a fault that kills the process must not eat
/// the answer to the request that asked for it).
pub type After = Box<dyn FnOnce(&Arc<Shared>) + Send>;

pub fn handle(request: &Request, shared: &Arc<Shared>) -> (Response, Option<After>) {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/control/state") => (Response::new(200, shared.report()), None),
        ("POST", "/control/fault") => match parse_fault_query(&request.query) {
            Ok(spec) => schedule(spec, shared),
            Err(e) => (Response::new(400, format!("{e}\n")), None),
        },
        (_, "/control/state") => (Response::new(405, "use GET\n"), None),
        (_, "/control/fault") => (Response::new(405, "use POST\n"), None),
        _ => (Response::new(404, "control endpoints: POST /control/fault, GET /control/state\n"), None),
    }
}

fn schedule(spec: FaultSpec, shared: &Arc<Shared>) -> (Response, Option<After>) {
    let Trigger::After(delay) = spec.trigger else {
        unreachable!("parse_fault_query only builds after= triggers")
    };
    let fault = spec.fault;
    // A fault the process survives takes effect before the reply: "injected" in the answer
    // must be true when the lab reads it, or the lab's next request can be served before
    // the flag is set (seen under load: a probe right after a handler hang got its 200).
    // Exit, signal and watchdog-trigger faults (systemd kills at once) come after the reply,
    // or nobody would answer; so does exhaust-fds, which must also take the descriptor this
    // reply's connection frees (taken before, that one free slot let a fresh-socket pinger
    // go on pinging).
    let survivable = !matches!(
        fault,
        faults::Fault::Exit(_) | faults::Fault::Signal(_) | faults::Fault::WatchdogTrigger | faults::Fault::ExhaustFds | faults::Fault::Oom
    );
    if delay.is_zero() && survivable {
        faults::inject(shared, fault, "control endpoint");
        return (Response::new(202, format!("fault {fault} injected\n")), None);
    }
    let body = if delay.is_zero() {
        format!("fault {fault} injected\n")
    } else {
        format!("fault {fault} scheduled in {}\n", duration::show(delay))
    };
    let action: After = Box::new(move |shared: &Arc<Shared>| {
        if delay.is_zero() {
            faults::inject(shared, fault, "control endpoint");
        } else {
            let shared = Arc::clone(shared);
            let spawned = std::thread::Builder::new().name("control-fault".into()).spawn(move || {
                std::thread::sleep(delay);
                faults::inject(&shared, fault, &format!("control endpoint, after={}", duration::show(delay)));
            });
            if let Err(e) = spawned {
                crate::log::event!("cannot schedule fault {fault}: {e}");
            }
        }
    });
    (Response::new(202, body), Some(action))
}

pub fn parse_fault_query(query: &str) -> Result<FaultSpec, String> {
    let mut kind = None;
    let mut arg: Option<(String, String)> = None;
    let mut after = Duration::ZERO;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        match k.as_str() {
            "kind" => kind = Some(v),
            "part" | "code" | "signal" => {
                if let Some((prev, _)) = &arg {
                    return Err(format!("query has both {prev}= and {k}="));
                }
                arg = Some((k, v));
            }
            "after" => after = duration::parse(&v).map_err(|e| format!("after=: {e}"))?,
            other => return Err(format!("unknown query parameter {other:?} (use kind, part, code, signal, after)")),
        }
    }
    let kind = kind.ok_or("missing kind= (one of hang, exit, signal, stop-watchdog, close-listener, exhaust-fds, unhealthy, watchdog-trigger, oom)")?;
    let expected = match kind.as_str() {
        "hang" => Some("part"),
        "exit" => Some("code"),
        "signal" => Some("signal"),
        _ => None,
    };
    let text = match (&arg, expected) {
        (Some((k, v)), Some(want)) if k == want => format!("{kind}:{v}"),
        (Some((k, _)), Some(want)) => return Err(format!("kind={kind} takes {want}=, not {k}=")),
        (None, Some(want)) => return Err(format!("kind={kind} needs {want}=")),
        (Some((k, _)), None) => return Err(format!("kind={kind} takes no {k}=")),
        (None, None) => kind.clone(),
    };
    let fault = text.parse()?;
    Ok(FaultSpec { fault, trigger: Trigger::After(after) })
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| format!("bad percent escape in {s:?}"))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Fault, Parts, Signal};

    #[test]
    fn queries() {
        let s = parse_fault_query("kind=hang&part=accept%2Chandlers").unwrap();
        assert_eq!(s.fault, Fault::Hang(Parts { accept: true, handlers: true, watchdog: false }));
        let s = parse_fault_query("kind=signal&signal=SEGV&after=2s").unwrap();
        assert_eq!((s.fault, s.trigger), (Fault::Signal(Signal(11)), Trigger::After(Duration::from_secs(2))));
        assert_eq!(parse_fault_query("kind=exit&code=0").unwrap().fault, Fault::Exit(0));
        assert_eq!(parse_fault_query("kind=close-listener").unwrap().fault, Fault::CloseListener);
    }

    #[test]
    fn query_errors() {
        assert!(parse_fault_query("").unwrap_err().contains("missing kind="));
        assert!(parse_fault_query("kind=hang").unwrap_err().contains("needs part="));
        assert!(parse_fault_query("kind=exit&part=accept").unwrap_err().contains("takes code="));
        assert!(parse_fault_query("kind=unhealthy&code=1").unwrap_err().contains("takes no code="));
        assert!(parse_fault_query("kind=exit&code=1&colour=red").unwrap_err().contains("unknown query parameter"));
        assert!(parse_fault_query("kind=exit&code=1&after=soon").unwrap_err().contains("after="));
        assert!(parse_fault_query("kind=boom").unwrap_err().contains("unknown fault kind"));
    }
}
