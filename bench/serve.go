package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	rpprof "runtime/pprof"
	"syscall"
	"time"
)

// serveEnv names the environment variable that turns this binary (or the
// test binary) into a target server: its value is the target's name.
const serveEnv = "HUBCHAT_BENCH_SERVE"

// hubchatSendQueueEnv carries the -hubchat-sendqueue flag to the hubchat
// target process.
const hubchatSendQueueEnv = "HUBCHAT_BENCH_SENDQUEUE"

// hubchatStoreEnv names a file for the hubchat target's Store (the huge
// workload, whose server restarts).
const hubchatStoreEnv = "HUBCHAT_BENCH_STORE"

// listenEnv, if set, is the address a target listens on (a restarted
// target takes its predecessor's); else 127.0.0.1 with a random port.
const listenEnv = "HUBCHAT_BENCH_LISTEN"

// A serverFactory mounts one target's WebSocket endpoint at /ws (centrifuge
// at its own path) on mux.
type serverFactory func(mux *http.ServeMux) error

// servers holds the target servers compiled into this binary, registered by
// the target_*.go files.
var servers = map[string]serverFactory{}

// targetOrder is the order of targets in tables; hubchat, the reference of
// every ratio, comes first.
var targetOrder = []string{"hubchat", "limit", "melody", "centrifuge", "centrifuge-raw", "gorilla"}

// availableTargets lists the targets whose server is compiled in, in table
// order.
func availableTargets() []string {
	var out []string
	for _, t := range targetOrder {
		if servers[specs[t].serverName(t)] != nil {
			out = append(out, t)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveMain runs the target server name on 127.0.0.1 with a random port,
// announces "LISTEN host:port" on stdout and serves until stdin is closed
// (the load generator exited or stopped it) or a signal arrives. It returns
// the process exit code.
func serveMain(name string) int {
	if err := raiseNoFile(); err != nil {
		fmt.Fprintf(os.Stderr, "target %s: %v\n", name, err)
	}
	mk := servers[name]
	if mk == nil {
		fmt.Fprintf(os.Stderr, "unknown target %q (have %v)\n", name, availableTargets())
		return 2
	}
	mux := http.NewServeMux()
	if err := mk(mux); err != nil {
		fmt.Fprintf(os.Stderr, "target %s: %v\n", name, err)
		return 1
	}
	mux.HandleFunc("/debug/mem", memHandler)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/cpuprofile", cpuProfileHandler)

	addr := "127.0.0.1:0"
	if a := os.Getenv(listenEnv); a != "" {
		addr = a
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "target %s: %v\n", name, err)
		return 1
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	// Timeouts for the HTTP side only (every target gets the same); the
	// WebSocket connections are the targets' own business.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln) //nolint:errcheck // ends when the process exits

	done := make(chan struct{})
	go func() {
		// The parent holds our stdin open; EOF means it is gone or done.
		io.Copy(io.Discard, os.Stdin) //nolint:errcheck
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	}
	// Exit without a graceful shutdown: closing thousands of connections
	// politely is not what is measured, and the parent waits for us.
	ln.Close()
	return 0
}

// memStats is the JSON answer of /debug/mem.
type memStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
}

// memHandler collects garbage, returns freed memory to the OS (so that the
// RSS read by the parent right after reflects live memory) and reports the
// runtime's memory statistics.
func memHandler(w http.ResponseWriter, _ *http.Request) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(memStats{ //nolint:errcheck
		HeapInuse:  ms.HeapInuse,
		HeapAlloc:  ms.HeapAlloc,
		StackInuse: ms.StackInuse,
		Sys:        ms.Sys,
		Goroutines: runtime.NumGoroutine(),
	})
}

// cpuProfileHandler starts a CPU profile into the file named by ?start=
// (the load generator runs on the same machine), or stops it with
// ?stop=1, so that a profile covers exactly one phase of a workload.
func cpuProfileHandler(w http.ResponseWriter, r *http.Request) {
	if r.FormValue("stop") != "" {
		rpprof.StopCPUProfile()
		return
	}
	f, err := os.Create(r.FormValue("start"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := rpprof.StartCPUProfile(f); err != nil {
		f.Close()
		http.Error(w, err.Error(), http.StatusConflict)
	}
	// The profile's file stays open until the process exits: it is
	// complete once StopCPUProfile has returned.
}

// raiseNoFile raises RLIMIT_NOFILE as far as allowed: to 1<<20 if the
// process may raise its hard limit (root), else the soft limit to the hard.
func raiseNoFile() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	want := syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	if lim.Max >= want.Max {
		want.Max = lim.Max
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return nil
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// noFileLimit returns the current soft RLIMIT_NOFILE.
func noFileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	return lim.Cur
}
