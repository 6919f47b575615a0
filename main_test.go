package chat_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines outlive the tests: it is what proves
// that Shutdown, Close and disconnects clean up after themselves.
func TestMain(m *testing.M) {
	if spec := os.Getenv("HUBCHAT_IDLE_CLIENTS"); spec != "" {
		os.Exit(idleClients(spec)) // the client process of BenchmarkIdleMemory
	}
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines polls until only the test framework's goroutines are
// left, and returns the stacks of the others if the deadline passes.
func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		var leaked []string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if !interesting(g) {
				continue
			}
			leaked = append(leaked, g)
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
}

// interesting reports whether a goroutine's stack belongs to the code
// under test rather than to the runtime or the test binary itself.
func interesting(stack string) bool {
	if !strings.HasPrefix(stack, "goroutine ") {
		return false
	}
	for _, benign := range []string{
		"leakedGoroutines",      // this goroutine
		"os/signal.signal_recv", // signal handling, started once
		"testing.(*F)",          // fuzzing workers
		"runtime.ensureSigM",
	} {
		if strings.Contains(stack, benign) {
			return false
		}
	}
	return true
}
