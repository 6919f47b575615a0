package chattest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build builds the main package in dir (a directory, relative to the
// test's) into a temporary directory and returns the program's path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// Program is a program started by [Start]. Its methods fail the
// test from the calling goroutine, which must be the test's.
type Program struct {
	t      testing.TB
	cmd    *exec.Cmd
	lines  chan string   // stdout, line by line; closed at EOF
	exited chan struct{} // closed once the program has exited
	err    error         // cmd.Wait's; set before exited is closed
	stderr syncBuffer
}

// Start starts the program bin with args in a new temporary directory, so
// that nothing it writes by default lands in the source tree. At cleanup
// a program still running is killed; if the test failed, what it wrote to
// stderr is logged.
func Start(t testing.TB, bin string, args ...string) *Program {
	t.Helper()
	p := &Program{
		t:      t,
		cmd:    exec.Command(bin, args...),
		lines:  make(chan string, 256),
		exited: make(chan struct{}),
	}
	p.cmd.Dir = t.TempDir()
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads that far: drop
			}
		}
		close(p.lines)
		p.err = p.cmd.Wait() // after the last read of stdout, as Wait requires
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() && p.stderr.Len() > 0 {
			t.Logf("%s wrote to stderr:\n%s", filepath.Base(bin), p.stderr.String())
		}
	})
	return p
}

// Line returns the next line the program wrote to stdout, failing the test
// if none comes within [Timeout].
func (p *Program) Line() string {
	p.t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.t.Fatalf("%s exited (%v) before writing a line; stderr:\n%s", p.cmd.Path, p.err, p.stderr.String())
		}
		return line
	case <-time.After(Timeout):
		p.t.Fatalf("%s wrote no line within %v", p.cmd.Path, Timeout)
		return ""
	}
}

// Stop sends SIGTERM and waits until the program has exited; it returns
// the program's exit error (nil for status 0). It fails the test if the
// program has not exited within [Timeout].
func (p *Program) Stop() error {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(Timeout):
		p.Kill()
		p.t.Fatalf("%s did not exit within %v of SIGTERM", p.cmd.Path, Timeout)
		return nil
	}
}

// Kill kills the program (SIGKILL: no chance to clean up, as in a crash or
// a power cut of the process) and waits until it has exited.
func (p *Program) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Dir returns the program's working directory.
func (p *Program) Dir() string { return p.cmd.Dir }
