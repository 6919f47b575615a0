// Package redistest runs throw-away redis-server processes for tests: of
// redisbroker, and of other modules that run hubs on a redisbroker.Broker
// (pgstore's tests, for one). Each server listens on a free port of
// 127.0.0.1, keeps nothing on disk and is stopped at the end of its test.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by one test, on 127.0.0.1,
// without persistence: a restart loses every key, as a crash would.
type Server struct {
	t    testing.TB
	path string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start starts a server on a free port and stops it at the end of the
// test. Without redis-server on $PATH the test is skipped, or fails if the
// environment has CI=true. The first call silences go-redis' own logging,
// as Main does.
func Start(t testing.TB) *Server {
	t.Helper()
	quietOnce.Do(quiet)
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found (apt-get install redis-server)")
		}
		t.Skip("redis-server not found; install it to run the Redis tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, path: path, port: port}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the stopped server again, on the same port, empty, and
// waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	ready := make(chan struct{})
	s.done = make(chan struct{})
	cmd, done := s.cmd, s.done
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
	}()
	select {
	case <-ready:
	case <-done:
		s.t.Fatalf("redis-server on port %d exited at start", s.port)
	case <-time.After(10 * time.Second):
		s.t.Fatalf("redis-server on port %d not ready within 10s", s.port)
	}
}

// Stop kills the server abruptly, as a crash would, and waits for it to
// exit. It does nothing if the server is stopped.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Client returns a new client of the server, closed at the end of the
// test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Main runs the tests of m and then fails the run if goroutines outlive
// them for more than 5 s. It silences go-redis' own logging of the failed
// dials the tests provoke, unless VERBOSE is set.
func Main(m *testing.M) {
	quietOnce.Do(quiet)
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := settle(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var quietOnce sync.Once

// quiet silences go-redis' logging unless VERBOSE is set. It must run
// before the first client logs: go-redis reads its logger unguarded.
func quiet() {
	if os.Getenv("VERBOSE") == "" {
		redis.SetLogger(discard{})
	}
}

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

// settle waits until at most n goroutines run, or reports the stacks of
// all of them.
func settle(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("goroutine leak: %d running, %d before the tests:\n%s", runtime.NumGoroutine(), n, buf)
		}
		<-tick.C
	}
	return nil
}
