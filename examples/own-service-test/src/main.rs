//! tiny-web: the service under test in this example, the way a service author's own program
//! would be. `tiny-web --listen ADDR:PORT` answers `GET /healthz` with 200 and anything else
//! with 404, one thread per connection. No systemd integration at all (Type=simple): what the
//! test checks is whether its unit file brings it back.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read the headers up to the blank line, so the client is not reset mid-request.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path == "/healthz" { ("200 OK", "ok\n") } else { ("404 Not Found", "not found\n") };
    let mut stream = stream;
    write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = match args.iter().position(|a| a == "--listen").and_then(|i| args.get(i + 1)) {
        Some(addr) => addr.clone(),
        None => {
            eprintln!("usage: tiny-web --listen ADDR:PORT");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("tiny-web: cannot listen on {listen}: {e}");
        std::process::exit(1);
    });
    println!("tiny-web: listening on {listen}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}
