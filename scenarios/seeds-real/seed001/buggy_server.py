#!/usr/bin/python3
"""Seed 001's server, written for the lab from the seed's description: an HTTP server on
port 8080 that "hangs randomly". Single-threaded (http.server.HTTPServer), so a request that
hangs hangs the whole server: later connections wait in the kernel's backlog, unanswered.

Each request hangs with probability --hang-probability, drawn from a generator seeded with
--seed at start: the same seed hangs at the same request after every restart, which makes the
lab's runs repeatable (seed 2 at p=0.25: the third request).
"""

import argparse
import http.server
import random
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--hang-probability", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    class Handler(http.server.BaseHTTPRequestHandler):
        count = 0

        def do_GET(self):
            Handler.count += 1
            if rng.random() < args.hang_probability:
                print(f"buggy_server: request {Handler.count} hangs", file=sys.stderr, flush=True)
                while True:
                    time.sleep(3600)
            body = b"hello from buggy_server.py\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.HTTPServer(("0.0.0.0", args.port), Handler)
    print(f"buggy_server: listening on {args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
