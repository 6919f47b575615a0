package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"
)

// The huge workload (issue #18) takes one room of cfg.hugeClients clients
// through every phase in turn, on one server process:
//
//  1. form: every client connects at once, cfg.dialConc handshakes in
//     flight, until all are connected (hubchat: joined) and the room has
//     formed (hubchat: every client knows every member; the others: a
//     probe message reaches every client);
//  2. idle: the server's RSS, Go heap and stacks per member, and the load
//     generator's RSS per client;
//  3. one message: hugeOneMessages single messages, each sent alone and
//     waited for until it reached every client, latency from the send;
//  4. sustained: cfg.sustainRate messages/s for cfg.sustainFor (latency
//     from the scheduled send, lost, evicted);
//  5. fan-out: the fan-out workload's windowed senders, for the server's
//     CPU per delivery, compared with a room of cfg.hugeBase (1,000) that
//     runs first, in a process of its own;
//  6. restart: the server process exits (as in a crash: its sockets close
//     at once), a new one starts on the same address, and every client
//     reconnects, cfg.dialConc in flight, hubchat clients resuming with
//     ?since= the last message id each received; timed from the exit to
//     every client connected and to the room formed again. The hubchat
//     target has a Store (fileStore), so that the new process numbers on
//     and can resume; after it, one message must reach every client.
//
// A phase that fails ends the run; the table shows how far it got.

// hugeOneMessages is how many single messages the one-message phase sends.
const hugeOneMessages = 5

// genBoundShare is the load generator's CPU share from which a phase's
// figures are the generator's, not the server's: flagged in the table.
const genBoundShare = 0.9

// hugeResult is one target's figures in the huge workload.
type hugeResult struct {
	target    string
	n         int
	err       error  // why the run ended early
	phase     string // the phase that failed
	connected int    // clients connected when the form phase failed

	connect, formed time.Duration
	formCPU         cpuShares        // until formed
	formDial        [3]time.Duration // p50, p99, max of a client's dial to ready
	formBytes       int64            // bytes the clients read until formed

	rssPer, heapPer, stackPer float64 // server, per member, idle
	gorPer                    float64 // server goroutines per member
	genRSSPer                 float64 // load generator RSS per client, idle
	genPeakRSS                int64   // load generator VmHWM at the end

	one              fixedResult // the single messages
	oneCPU           cpuShares
	sustained        fixedResult
	susCPU           cpuShares
	fanout, base     fanoutResult
	down             time.Duration // restart: exit until the new server listens
	reconnect        time.Duration // exit until every client reconnected
	reformed         time.Duration // exit until the room formed again
	resumed, plain   int64         // history frames with "resume":true / false
	restartCPU       cpuShares
	restartDial      [3]time.Duration
	restartBytes     int64
	afterRestartLost int64 // deliveries missing of the message after the restart
}

// hugePhases are the phases of the huge workload in order, as named in
// hugeResult.phase.
var hugePhases = []string{"start", "base", "form", "idle",
	"one message", "sustained", "fan-out", "restart", "after the restart"}

// reached reports whether r completed phase.
func (r hugeResult) reached(phase string) bool {
	if r.err == nil {
		return true
	}
	return slices.Index(hugePhases, r.phase) > slices.Index(hugePhases, phase)
}

// meter measures the CPU shares of the server, the load generator and
// everything else on the machine over a phase.
type meter struct {
	p                *targetProc
	srv0, gen0, all0 time.Duration
	t0               time.Time
}

func startMeter(p *targetProc) meter {
	m := meter{p: p, gen0: selfCPU(), all0: machineCPU(), t0: time.Now()}
	m.srv0, _ = p.cpu()
	return m
}

// cpuShares are CPU times over a phase as shares of one core.
type cpuShares struct{ srv, gen, other float64 }

// shares returns the CPU shares since the start.
func (m meter) shares() cpuShares {
	wall := float64(time.Since(m.t0))
	s, _ := m.p.cpu()
	srv, gen := s-m.srv0, selfCPU()-m.gen0
	other := machineCPU() - m.all0 - srv - gen
	return cpuShares{float64(srv) / wall, float64(gen) / wall, max(0, float64(other)/wall)}
}

// String formats the shares for the table.
func (c cpuShares) String() string {
	return fmtPct(c.srv) + " / " + fmtPct(c.gen) + " / " + fmtPct(c.other)
}

// phaseProfiles starts CPU profiles of the server and, unless -gen-profile
// profiles the whole run, of the load generator, for one phase, when
// cfg.profileDir is set. The returned function ends them.
func phaseProfiles(cfg *config, p *targetProc, name string, n int, phase string) func() {
	if cfg.profileDir == "" {
		return func() {}
	}
	base := filepath.Join(cfg.profileDir, fmt.Sprintf("%s-%s-%d", name, phase, n))
	srvErr := p.startProfile(base + ".pprof")
	if srvErr != nil {
		fmt.Fprintf(os.Stderr, "server profile %s: %v\n", base, srvErr)
	}
	var gen *os.File
	if !cfg.genProfiling {
		if f, err := os.Create(base + ".gen.pprof"); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				gen = f
			} else {
				f.Close()
			}
		}
	}
	return func() {
		if srvErr == nil {
			if err := p.stopProfile(); err != nil {
				fmt.Fprintf(os.Stderr, "server profile %s: %v\n", base, err)
			}
		}
		if gen != nil {
			pprof.StopCPUProfile()
			gen.Close()
		}
	}
}

// genRSS returns the load generator's RSS after a collection that returns
// freed memory to the system.
func genRSS() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	v, _ := procStatus("self", "VmRSS")
	return v
}

// storeEnv returns the environment that gives a hubchat target its Store
// in file, or nothing for other targets.
func storeEnv(name, file string) []string {
	if !specs[name].join {
		return nil
	}
	return []string{hubchatStoreEnv + "=" + file}
}

// runHuge runs the huge workload against target name.
func runHuge(cfg *config, name string, progress func(string, ...any)) (res hugeResult) {
	n := cfg.hugeClients
	res = hugeResult{target: name, n: n}
	spec := specs[name]
	fail := func(phase string, err error) hugeResult {
		res.phase, res.err = phase, err
		return res
	}
	dir, err := os.MkdirTemp("", "hubchat-huge-")
	if err != nil {
		return fail("start", err)
	}
	defer os.RemoveAll(dir)

	progress("huge %s: fan-out at %d for the base cost", name, cfg.hugeBase)
	res.base = runFanout(cfg, name, cfg.hugeBase, storeEnv(name, filepath.Join(dir, "base.jsonl"))...)
	if res.base.err != nil {
		return fail("base", fmt.Errorf("fan-out at %d: %w", cfg.hugeBase, res.base.err))
	}

	storeFile := filepath.Join(dir, "store.jsonl")
	p, err := cfg.start(name, storeEnv(name, storeFile)...)
	if err != nil {
		return fail("start", err)
	}
	defer func() { p.stop() }() // p is replaced by the restart
	ms0, err := p.mem()
	if err != nil {
		return fail("start", err)
	}
	rss0, _ := p.rss()
	gen0 := genRSS()

	// 1. Form.
	progress("huge %s n=%d: forming", name, n)
	r := newHugeState(cfg, spec, n)
	endProf := phaseProfiles(cfg, p, name, n, "form")
	m := startMeter(p)
	clients, elapsed, err := dialAll(spec, p.addr, n, cfg.dialConc, r, cfg.formLimit)
	if err != nil {
		endProf()
		if de := (*dialError)(nil); errors.As(err, &de) {
			res.connected = de.connected
		}
		return fail("form", err)
	}
	defer func() { closeAll(r, clients) }() // r and clients are replaced by the restart
	res.connect = elapsed
	err = formed(r, spec, clients, n, max(time.Second, cfg.formLimit-time.Since(m.t0)))
	res.formed = time.Since(m.t0)
	res.formCPU = m.shares()
	res.formDial, res.formBytes = dialFigures(r), r.bytes.Load()
	endProf()
	if err != nil {
		return fail("form", err)
	}
	if d := r.disconnects.Load(); d > 0 {
		return fail("form", fmt.Errorf("%d clients disconnected: %v", d, r.problems()))
	}

	// 2. Idle.
	progress("huge %s n=%d: idle memory", name, n)
	time.Sleep(cfg.idleWait)
	ms1, err := p.mem()
	if err != nil {
		return fail("idle", err)
	}
	rss1, _ := p.rss()
	if cfg.profileDir != "" {
		file := filepath.Join(cfg.profileDir, fmt.Sprintf("%s-idle-%d.heap", name, n))
		if err := p.heapProfile(file); err != nil {
			fmt.Fprintf(os.Stderr, "heap profile %s: %v\n", name, err)
		}
	}
	fn := float64(n)
	res.rssPer = float64(rss1-rss0) / fn
	res.heapPer = float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse)) / fn
	res.stackPer = float64(int64(ms1.StackInuse)-int64(ms0.StackInuse)) / fn
	res.gorPer = float64(ms1.Goroutines-ms0.Goroutines) / fn
	res.genRSSPer = float64(genRSS()-gen0) / fn

	// 3. One message at a time.
	progress("huge %s n=%d: %d single messages", name, n, hugeOneMessages)
	endProf = phaseProfiles(cfg, p, name, n, "one")
	m = startMeter(p)
	res.one = oneMessages(r, clients[0], n, hugeOneMessages)
	res.oneCPU = m.shares()
	endProf()
	if res.one.err != nil {
		return fail("one message", res.one.err)
	}

	// 4. Sustained.
	progress("huge %s n=%d: %d messages/s for %v", name, n, cfg.sustainRate, cfg.sustainFor)
	endProf = phaseProfiles(cfg, p, name, n, "sustained")
	m = startMeter(p)
	res.sustained.target = name
	measureFixed(r, clients, 1, cfg.sustainRate, cfg.sustainFor, cfg.fixedDrain, cfg.pad, &res.sustained)
	res.susCPU = m.shares()
	endProf()

	// 5. Fan-out.
	progress("huge %s n=%d: fan-out", name, n)
	res.fanout = fanoutResult{target: name, n: n}
	endProf = phaseProfiles(cfg, p, name, n, "fanout")
	measureFanout(cfg, p, r, clients, &res.fanout)
	endProf()
	if d := r.disconnects.Load(); d > 0 {
		return fail("fan-out", fmt.Errorf("%d clients disconnected: %v", d, r.problems()))
	}
	res.genPeakRSS, _ = procStatus("self", "VmHWM")

	// 6. Restart.
	progress("huge %s n=%d: restart", name, n)
	since := make([]int64, n)
	if spec.join {
		for i, c := range clients {
			since[i] = c.(*wsClient).lastID
		}
	}
	r.closing.Store(true)
	t0 := time.Now()
	p.stop()
	closeAll(r, clients)
	clients = nil
	p, err = cfg.start(name, append(storeEnv(name, storeFile), listenEnv+"="+p.addr)...)
	if err != nil {
		return fail("restart", err)
	}
	res.down = time.Since(t0)
	r = newHugeState(cfg, spec, n)
	r.since = since
	endProf = phaseProfiles(cfg, p, name, n, "restart")
	m = startMeter(p)
	clients, _, err = dialAll(spec, p.addr, n, cfg.dialConc, r, cfg.formLimit)
	if err != nil {
		endProf()
		return fail("restart", err)
	}
	res.reconnect = time.Since(t0)
	err = formed(r, spec, clients, n, max(time.Second, cfg.formLimit-time.Since(t0)))
	res.reformed = time.Since(t0)
	res.restartCPU = m.shares()
	res.restartDial, res.restartBytes = dialFigures(r), r.bytes.Load()
	endProf()
	res.resumed, res.plain = r.resumed.Load(), r.notResumed.Load()
	if err != nil {
		return fail("restart", err)
	}
	after := oneMessages(r, clients[0], n, 1)
	res.afterRestartLost = after.lost
	if after.err != nil {
		return fail("after the restart", after.err)
	}
	if v, err := procStatus("self", "VmHWM"); err == nil {
		res.genPeakRSS = v
	}
	return res
}

// newHugeState returns the run state of a huge room of n clients: the
// fan-out window is set before any frame arrives, and hubchat clients
// track message ids for the restart.
func newHugeState(cfg *config, spec targetSpec, n int) *runState {
	room := 0
	if spec.join {
		room = n
	}
	r := newRunState(room)
	r.setWindow(min(cfg.senders, n), cfg.window, n)
	r.trackIDs = spec.join
	return r
}

// dialFigures returns the p50, p99 and max of the clients' times from
// dialing to ready.
func dialFigures(r *runState) [3]time.Duration {
	return [3]time.Duration{r.dials.quantile(0.5), r.dials.quantile(0.99), r.dials.quantile(1)}
}

// formed waits until the room has formed: every hubchat client knows every
// member, or a probe reaches every client of another target.
func formed(r *runState, spec targetSpec, clients []client, n int, limit time.Duration) error {
	if spec.join {
		return waitFormed(r, limit)
	}
	return waitRegistered(r, clients[0], len(r.slots), n, limit)
}

// oneMessages sends k messages from c, one at a time, each once the one
// before reached all n clients (or 30 s passed), and returns their
// latencies from the send (sender 0's window slots are not used).
func oneMessages(r *runState, c client, n, k int) (res fixedResult) {
	r.resetCounts()
	dis0 := r.disconnects.Load()
	var buf []byte
	for i := range k {
		want := int64(i+1) * int64(n)
		buf = appendMessage(buf[:0], time.Now().UnixNano(), 0, int64(i), 0)
		res.sent++
		if err := c.send(buf); err != nil {
			res.err = err
			return
		}
		deadline := time.Now().Add(30 * time.Second)
		for r.received.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling, with a deadline
		}
		if i < k-1 {
			time.Sleep(200 * time.Millisecond) // apart, not queued behind each other
		}
	}
	res.deliveries = r.received.Load()
	res.lost = res.sent*int64(n) - res.deliveries
	h := r.hist.Load()
	res.p50, res.p99, res.max = h.quantile(0.5), h.quantile(0.99), h.quantile(1)
	res.disconnects = r.disconnects.Load() - dis0
	if res.lost != 0 || res.disconnects != 0 {
		res.err = fmt.Errorf("%d of %d deliveries missing after 30 s, %d disconnected: %v",
			res.lost, res.sent*int64(n), res.disconnects, r.problems())
	}
	return res
}

// noFileReserve is how many descriptors a process needs besides its
// clients' sockets (standard streams, pipes, listeners, epoll, profiles).
const noFileReserve = 100

// maxClients returns the largest room this machine lets both processes
// hold: the hard RLIMIT_NOFILE, which only a process with
// CAP_SYS_RESOURCE may raise, less a reserve.
func maxClients() int {
	if err := raiseNoFile(); err != nil {
		return 0
	}
	return int(noFileLimit()) - noFileReserve
}
