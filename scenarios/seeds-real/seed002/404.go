// Seed 002's Go service, written for the lab from the seed's description: answer every
// request with a 404, signal readiness with go-systemd after net.Listen(), and send watchdog
// keep-alives only after an HTTP query to itself succeeded (the seed's health-checked loop).
//
// One addition for the lab: GET /hang makes every later request hang (handlers wait on a
// lock the hung one holds), the way an HTTP side gets stuck while the process lives.
package main

import (
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-systemd/daemon"
)

func main() {
	var stuck sync.Mutex
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		stuck.Lock()
		if r.URL.Path == "/hang" {
			log.Printf("HTTP side hangs (GET /hang)")
			select {}
		}
		stuck.Unlock()
		http.NotFound(w, r)
	})
	l, err := net.Listen("tcp", ":8081")
	if err != nil {
		log.Panicf("cannot listen: %s", err)
	}
	daemon.SdNotify(false, "READY=1")
	go func() {
		interval, err := daemon.SdWatchdogEnabled(false)
		if err != nil || interval == 0 {
			return
		}
		client := http.Client{Timeout: interval / 3}
		for {
			_, err := client.Get("http://127.0.0.1:8081")
			if err == nil {
				daemon.SdNotify(false, "WATCHDOG=1")
			} else {
				log.Printf("health check failed, no keep-alive: %s", err)
			}
			time.Sleep(interval / 3)
		}
	}()
	http.Serve(l, nil)
}
