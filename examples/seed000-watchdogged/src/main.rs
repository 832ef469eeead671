//! Seed 000's watchdogged program, written for the lab from what the seed describes (its code
//! is not copied): refuse to run outside systemd or without a watchdog, send READY=1, then ping
//! the watchdog every half interval from a thread of its own, and answer HTTP on
//! 127.0.0.1:7878 with "Hello World!". The pinger knows nothing of the HTTP side: that is the
//! seed's design, and what the lab shows about it.
//!
//! One addition for the lab, documented in the seeds README: `GET /hang` hangs every later
//! request (the handler thread holds a lock forever), the way an HTTP side gets stuck while
//! the process lives; the pinger is untouched.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;

fn serve(stream: TcpStream, stuck: &Mutex<()>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    // Every request passes the lock: once /hang holds it, nothing is answered.
    let guard = stuck.lock().unwrap_or_else(|e| e.into_inner());
    if path == "/hang" {
        println!("HTTP side hangs (GET /hang)");
        std::mem::forget(guard);
        loop {
            std::thread::park();
        }
    }
    drop(guard);
    let body = "Hello World!";
    let mut stream = stream;
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn main() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        panic!("Not running under systemd (no NOTIFY_SOCKET), early exit.");
    }
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        panic!("Not watchdogged.");
    }
    let interval = Duration::from_micros(usec);
    // Listen first, then READY=1: a client of a ready service is never refused.
    let addr = "127.0.0.1:7878";
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    sd_notify::notify(false, &[NotifyState::Ready]).expect("send READY=1");
    println!("Listening for requests at http://{addr}");

    std::thread::spawn(move || loop {
        println!("Watchdog in {interval:?}, sleeping {:?}...", interval / 2);
        std::thread::sleep(interval / 2);
        sd_notify::notify(false, &[NotifyState::Watchdog]).expect("send WATCHDOG=1");
        println!("Watchdog notified");
    });

    let stuck = Arc::new(Mutex::new(()));
    for stream in listener.incoming().flatten() {
        let stuck = Arc::clone(&stuck);
        std::thread::spawn(move || {
            let _ = serve(stream, &stuck);
        });
    }
}
