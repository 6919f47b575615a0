package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// targetProc is a running target server: a child process of the load
// generator, optionally pinned to its own CPU.
type targetProc struct {
	name  string
	addr  string // host:port
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
	exit  chan struct{} // closed when the process has exited
}

// Every started target is registered here so that an interrupt or the
// global timeout can stop them all.
var (
	procsMu sync.Mutex
	procs   = map[*targetProc]bool{}
)

// startTarget starts this executable as target server name, pinned to cpu
// with taskset if cpu >= 0, and waits for it to listen.
func startTarget(name string, cpu int, env ...string) (*targetProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if cpu >= 0 {
		cmd = exec.Command("taskset", "-c", strconv.Itoa(cpu), exe)
	} else {
		cmd = exec.Command(exe)
	}
	cmd.Env = append(append(os.Environ(), serveEnv+"="+name), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &targetProc{name: name, cmd: cmd, stdin: stdin, pid: cmd.Process.Pid, exit: make(chan struct{})}
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		cmd.Wait() //nolint:errcheck // exit status is irrelevant
		close(p.exit)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "LISTEN ")
		if !ok {
			p.stop()
			return nil, fmt.Errorf("target %s: unexpected output %q", name, line)
		}
		p.addr = addr
		return p, nil
	case <-p.exit:
		p.stop()
		return nil, fmt.Errorf("target %s exited during start-up", name)
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, fmt.Errorf("target %s did not start", name)
	}
}

// stop ends the target: stdin EOF first, then SIGKILL after 5 s.
func (p *targetProc) stop() {
	p.stdin.Close()
	select {
	case <-p.exit:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill() //nolint:errcheck
		<-p.exit
	}
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
}

// stopAllTargets kills every target still running (interrupt, timeout).
func stopAllTargets() {
	procsMu.Lock()
	list := make([]*targetProc, 0, len(procs))
	for p := range procs {
		list = append(list, p)
	}
	procsMu.Unlock()
	for _, p := range list {
		p.cmd.Process.Kill() //nolint:errcheck
		p.stop()
	}
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpu returns the user+system CPU time the target has used so far.
func (p *targetProc) cpu() (time.Duration, error) {
	return procCPU(p.pid)
}

// procCPU reads utime+stime of a process from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime")
	}
	return time.Duration(ut+st) * clockTick, nil
}

// rss returns the target's resident set size in bytes (VmRSS).
func (p *targetProc) rss() (int64, error) {
	return procStatus(strconv.Itoa(p.pid), "VmRSS")
}

// procStatus returns a size field of /proc/<pid>/status (VmRSS, VmHWM) in
// bytes; pid may be "self".
func procStatus(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + field)
}

// startProfile starts a CPU profile of the target into file, until
// stopProfile.
func (p *targetProc) startProfile(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	return p.get("/debug/cpuprofile?start=" + url.QueryEscape(abs))
}

// stopProfile ends the profile startProfile began.
func (p *targetProc) stopProfile() error { return p.get("/debug/cpuprofile?stop=1") }

// get GETs path from the target and checks the status.
func (p *targetProc) get(path string) error {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// mem asks the target to collect garbage and report its memory statistics.
func (p *targetProc) mem() (memStats, error) {
	var ms memStats
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + p.addr + "/debug/mem")
	if err != nil {
		return ms, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&ms)
	return ms, err
}

// heapProfile fetches a heap profile (after a GC) from the target into file.
func (p *targetProc) heapProfile(file string) error {
	return p.fetch("/debug/pprof/heap?gc=1", 30*time.Second, file)
}

// profile fetches a CPU profile of d from the target into file.
func (p *targetProc) profile(d time.Duration, file string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	return p.fetch("/debug/pprof/profile?seconds="+strconv.Itoa(secs), d+30*time.Second, file)
}

// fetch GETs path from the target, within timeout, into file.
func (p *targetProc) fetch(path string, timeout time.Duration, file string) error {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
