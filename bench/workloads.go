package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// config holds the workload parameters (see the flags in main.go).
type config struct {
	senders    int           // fan-out: concurrent senders
	window     int           // fan-out: messages per sender not yet delivered to everyone
	duration   time.Duration // fan-out: measured phase
	warmup     time.Duration // fan-out: unmeasured phase before it
	rate       int           // fixed load: messages per second offered
	fixedFor   time.Duration // fixed load: how long
	fixedConns int           // fixed load: clients
	fixedDrain time.Duration // fixed load: how long to wait for stragglers
	conns      int           // idle memory and connect rate: clients
	dialConc   int           // connections being set up at once
	rounds     int           // connect and idle: rounds, each target once per round
	formLimit  time.Duration // connect: how long a hubchat room may take to form
	pad        int           // extra body bytes
	serverCPU  int           // CPU to pin targets to, -1 for none
	sendQueue  int           // hubchat SendQueue
	profileDir string        // if set, CPU profiles of fan-out phases go here
	idleWait   time.Duration // idle memory: how long clients are idle before the server's memory is read

	// The huge workload (huge.go).
	hugeClients  int           // the room's size
	hugeBase     int           // the room whose CPU per delivery it is compared with
	sustainRate  int           // sustained phase: messages/s
	sustainFor   time.Duration // sustained phase: how long
	genProfiling bool          // -gen-profile profiles the whole run
}

// targetSpec is how the load generator talks to a target.
type targetSpec struct {
	server string // server to start; empty means the target's own name
	dial   func(ctx context.Context, addr string, id int, r *runState, join bool) (client, error)
	join   bool // hubchat: clients join a room and see join/users frames
}

func (s targetSpec) serverName(target string) string {
	if s.server != "" {
		return s.server
	}
	return target
}

var specs = map[string]targetSpec{
	"hubchat":        {dial: dialWS, join: true},
	"limit":          {dial: dialWS},
	"melody":         {dial: dialWS},
	"gorilla":        {dial: dialWS},
	"centrifuge":     {dial: dialCentrifuge},
	"centrifuge-raw": {server: "centrifuge", dial: dialCentrifugeRaw},
}

// start launches the server of target name for one workload, with env
// added to its environment.
func (cfg *config) start(name string, env ...string) (*targetProc, error) {
	return startTarget(specs[name].serverName(name), cfg.serverCPU,
		append([]string{hubchatSendQueueEnv + "=" + strconv.Itoa(cfg.sendQueue)}, env...)...)
}

// dialAll connects n clients with at most conc handshakes (and joins) in
// flight and returns them with the time it took.
func dialAll(spec targetSpec, addr string, n, conc int, r *runState, limit time.Duration) ([]client, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	clients := make([]client, n)
	var (
		next    atomic.Int64
		ok      atomic.Int64
		errOnce sync.Once
		dialErr error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				c, err := spec.dial(ctx, addr, i, r, spec.join)
				r.dials.add(int64(time.Since(t0)))
				if err != nil {
					errOnce.Do(func() { dialErr = &dialError{int(ok.Load()), fmt.Errorf("client %d: %w", i, err)} })
					cancel()
					return
				}
				clients[i] = c
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if dialErr == nil && ctx.Err() != nil {
		dialErr = &dialError{int(ok.Load()), fmt.Errorf("%d of %d clients connected within %v", ok.Load(), n, limit)}
	}
	if dialErr != nil {
		closeAll(r, clients)
		return nil, elapsed, dialErr
	}
	return clients, elapsed, nil
}

// A dialError is dialAll's failure: the clients connected until then, and
// what went wrong.
type dialError struct {
	connected int
	err       error
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// closeAll tears down every client.
func closeAll(r *runState, clients []client) {
	r.closing.Store(true)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c.close()
			<-sem
		}()
	}
	wg.Wait()
}

// waitFormed waits until every hubchat client knows every member.
func waitFormed(r *runState, timeout time.Duration) error {
	select {
	case <-r.formedCh:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("room not formed after %v: %d of %d clients know everyone",
			timeout, r.formed.Load(), r.roomSize)
	}
}

// drain waits until expected deliveries have arrived, none arrived for
// stall, or limit has passed; it returns when the last delivery was seen.
func drain(r *runState, expected int64, stall, limit time.Duration) time.Time {
	last := r.received.Load()
	start := time.Now()
	lastAt := start
	for {
		n := r.received.Load()
		now := time.Now()
		if n != last {
			last, lastAt = n, now
		}
		if n >= expected || now.Sub(lastAt) > stall || now.Sub(start) > limit {
			return lastAt
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// selfCPU returns the CPU time the load generator has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the CPU time all processes have used (user, nice,
// system, irq, softirq, steal).
func machineCPU() time.Duration { return procStatCPU(1, 2, 3, 6, 7, 8) }

// stealCPU returns the CPU time the hypervisor has given to other guests
// while this machine's processes were ready to run (steal): a round with
// much of it measured a disturbed machine.
func stealCPU() time.Duration { return procStatCPU(8) }

// procStatCPU sums the given fields of /proc/stat's first line, in ticks.
func procStatCPU(fields ...int) time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for _, i := range fields {
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * clockTick
}

// windowed runs senders for d: each keeps at most cfg.window messages that
// have not yet reached every client. It returns how many were sent.
func windowed(cfg *config, r *runState, senders []client, seq []int64, d time.Duration) int64 {
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for s, c := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				select {
				case r.sems[s] <- struct{}{}:
				case <-stop:
					return
				}
				select {
				case <-stop:
					<-r.sems[s]
					return
				default:
				}
				n := seq[s]
				seq[s]++
				r.slots[s][n%int64(len(r.slots[s]))].Store(0)
				buf = appendMessage(buf[:0], time.Now().UnixNano(), s, n, cfg.pad)
				// Counted before sending: a send that times out may still
				// be delivered.
				sent.Add(1)
				if err := c.send(buf); err != nil {
					r.note("send: " + err.Error())
					return
				}
			}
		}()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	return sent.Load()
}

// fanoutResult is one target's figures for the fan-out workload.
type fanoutResult struct {
	target      string
	n           int
	err         error
	sent        int64
	deliveries  int64
	elapsed     time.Duration
	rate        float64 // deliveries/s
	p50, p99    time.Duration
	lost        int64
	disconnects int64
	cpuPerDel   time.Duration // server CPU per delivery
	srvBusy     float64       // server CPU / wall time
	genBusy     float64       // load generator CPU / wall time
	otherBusy   float64       // CPU used by other processes / wall time
	perRead     float64       // frames per client read: the server's batching
	notes       []string
}

// openRoom starts target name, connects n clients (joined, for targets
// that join) and, where clients see joins, waits until every client knows
// every other. stop closes the clients and stops the target.
func openRoom(cfg *config, name string, n int, env ...string) (p *targetProc, r *runState, clients []client, stop func(), err error) {
	spec := specs[name]
	if p, err = cfg.start(name, env...); err != nil {
		return nil, nil, nil, nil, err
	}
	room := 0
	if spec.join {
		room = n
	}
	r = newRunState(room)
	// The window is set before any frame arrives: readers use it unlocked.
	senders := min(cfg.senders, n)
	r.setWindow(senders, cfg.window, n)
	if clients, _, err = dialAll(spec, p.addr, n, cfg.dialConc, r, 2*time.Minute); err != nil {
		p.stop()
		return nil, nil, nil, nil, err
	}
	stop = func() {
		closeAll(r, clients)
		p.stop()
	}
	if spec.join {
		err = waitFormed(r, 2*time.Minute)
	} else if n > 0 {
		err = waitRegistered(r, clients[0], senders, n, time.Minute)
	}
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	return p, r, clients, stop, nil
}

// waitRegistered waits until a message reaches all n clients. Servers that
// add a connection to their broadcast list only after its handshake (the
// bare ones here do) would otherwise miss the first messages to some
// clients, and a windowed sender would wait for those forever. Probes come
// from sender id probeID, outside the window, and are counted apart from
// the measured deliveries.
func waitRegistered(r *runState, c client, probeID, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var buf []byte
	for probe := int64(0); time.Now().Before(deadline); probe++ {
		r.probes.Store(0)
		buf = appendMessage(buf[:0], time.Now().UnixNano(), probeID, probe, 0)
		if err := c.send(buf); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		round := time.Now().Add(500 * time.Millisecond)
		for r.probes.Load() < int64(n) && time.Now().Before(round) {
			time.Sleep(time.Millisecond) // polling, with a deadline
		}
		if r.probes.Load() >= int64(n) {
			return nil
		}
	}
	return fmt.Errorf("a probe message did not reach all %d clients within %v", n, timeout)
}

// runFanout measures n clients, cfg.senders of which send as fast as the
// window allows, every client receiving every message.
func runFanout(cfg *config, name string, n int, env ...string) (res fanoutResult) {
	res = fanoutResult{target: name, n: n}
	p, r, clients, stop, err := openRoom(cfg, name, n, env...)
	if err != nil {
		res.err = err
		return
	}
	defer stop()
	measureFanout(cfg, p, r, clients, &res)
	return res
}

// measureFanout runs the fan-out workload on a room that openRoom (or the
// huge workload) opened, with the window it set, and fills in res.
func measureFanout(cfg *config, p *targetProc, r *runState, clients []client, res *fanoutResult) {
	n, name := len(clients), res.target
	s := len(r.slots) // the window openRoom set
	seq := make([]int64, s)
	if cfg.warmup > 0 {
		sent := windowed(cfg, r, clients[:s], seq, cfg.warmup)
		drain(r, sent*int64(n), 2*time.Second, 10*time.Second)
	}
	r.resetCounts()
	dis0 := r.disconnects.Load()

	var profWG sync.WaitGroup
	if cfg.profileDir != "" {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			file := filepath.Join(cfg.profileDir, fmt.Sprintf("%s-fanout-%d.pprof", name, n))
			if err := p.profile(cfg.duration, file); err != nil {
				fmt.Fprintf(os.Stderr, "profile %s: %v\n", name, err)
			}
		}()
	}
	cpu0, _ := p.cpu()
	self0 := selfCPU()
	all0 := machineCPU()
	t0 := time.Now()
	res.sent = windowed(cfg, r, clients[:s], seq, cfg.duration)
	expected := res.sent * int64(n)
	t1 := drain(r, expected, 3*time.Second, 20*time.Second)
	cpu1, _ := p.cpu()
	self1 := selfCPU()
	all1 := machineCPU()
	profWG.Wait()

	res.deliveries = r.received.Load()
	res.elapsed = t1.Sub(t0)
	res.rate = float64(res.deliveries) / res.elapsed.Seconds()
	h := r.hist.Load()
	res.p50, res.p99 = h.quantile(0.50), h.quantile(0.99)
	res.lost = expected - res.deliveries
	res.disconnects = r.disconnects.Load() - dis0
	if res.deliveries > 0 {
		res.cpuPerDel = (cpu1 - cpu0) / time.Duration(res.deliveries)
	}
	res.srvBusy = float64(cpu1-cpu0) / float64(res.elapsed)
	res.genBusy = float64(self1-self0) / float64(res.elapsed)
	res.otherBusy = max(0, float64(all1-all0-(cpu1-cpu0)-(self1-self0))/float64(res.elapsed))
	res.perRead = r.framesPerRead()
	res.notes = r.problems()
}

// fixedResult is one target's figures for the fixed-load workload.
type fixedResult struct {
	target        string
	err           error
	sent          int64
	deliveries    int64
	p50, p99, max time.Duration
	lost          int64 // not delivered within cfg.fixedDrain after the last send
	disconnects   int64 // clients the server closed meanwhile (hubchat: evicted)
	notes         []string
}

// runFixed offers cfg.rate messages/s from cfg.senders clients into
// cfg.fixedConns clients. Latency is measured from each message's intended
// send time, so a sender that falls behind does not hide queueing.
func runFixed(cfg *config, name string) (res fixedResult) {
	res = fixedResult{target: name}
	n := cfg.fixedConns
	_, r, clients, stop, err := openRoom(cfg, name, n)
	if err != nil {
		res.err = err
		return
	}
	defer stop()
	time.Sleep(200 * time.Millisecond) // let the connect burst settle
	measureFixed(r, clients, min(cfg.senders, n), cfg.rate, cfg.fixedFor, cfg.fixedDrain, cfg.pad, &res)
	return res
}

// measureFixed offers rate messages/s from the first s clients into all of
// them for d, waits up to drainFor after the last send, and fills in res.
func measureFixed(r *runState, clients []client, s, rate int, d, drainFor time.Duration, pad int, res *fixedResult) {
	n := len(clients)
	r.resetCounts()
	dis0 := r.disconnects.Load()
	interval := time.Duration(s) * time.Second / time.Duration(rate)
	count := int(d / interval)
	start := time.Now().Add(10 * time.Millisecond)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i, c := range clients[:s] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			next := start.Add(time.Duration(i) * interval / time.Duration(s))
			for k := range count {
				time.Sleep(time.Until(next))
				buf = appendMessage(buf[:0], next.UnixNano(), i, int64(k), pad)
				sent.Add(1)
				if err := c.send(buf); err != nil {
					r.note("send: " + err.Error())
					return
				}
				next = next.Add(interval)
			}
		}()
	}
	wg.Wait()
	res.sent = sent.Load()
	expected := res.sent * int64(n)
	drain(r, expected, 3*time.Second, drainFor)
	res.deliveries = r.received.Load()
	h := r.hist.Load()
	res.p50, res.p99, res.max = h.quantile(0.5), h.quantile(0.99), h.quantile(1)
	res.lost = expected - res.deliveries
	res.disconnects = r.disconnects.Load() - dis0
	res.notes = r.problems()
}

// connectResult is one target's figures for the connect-rate workload.
type connectResult struct {
	target  string
	n       int
	err     error
	elapsed time.Duration // until every client was connected (and joined)
	rate    float64       // connections/s
	formed  time.Duration // hubchat: until every client knew every member
	srvBusy float64       // server CPU / wall time until formed (or connected)
	genBusy float64       // load generator CPU / wall time, likewise
	perRead float64       // frames per client read

	// Until every client was connected: server and load generator CPU
	// per connection, and CPU time the hypervisor took from this machine
	// (steal) / wall time.
	srvPerConn, genPerConn time.Duration
	steal                  float64

	rounds   int       // rounds this result is the median of
	allRates []float64 // every round's connections/s, in order
}

// medianConnect returns the round with the median connect rate, or the
// first that failed: a failure is never outvoted.
func medianConnect(rs []connectResult) connectResult {
	for _, r := range rs {
		if r.err != nil {
			r.rounds = len(rs)
			return r
		}
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b connectResult) int { return cmp.Compare(a.rate, b.rate) })
	m := s[len(s)/2]
	m.rounds = len(rs)
	for _, r := range rs {
		m.allRates = append(m.allRates, r.rate)
	}
	return m
}

// medianIdle returns the round with the median RSS per connection, or the
// first that failed.
func medianIdle(rs []idleResult) idleResult {
	for _, r := range rs {
		if r.err != nil {
			return r
		}
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b idleResult) int { return cmp.Compare(a.rssPerConn, b.rssPerConn) })
	return s[len(s)/2]
}

// idleResult is one target's figures for the idle-memory workload.
type idleResult struct {
	target     string
	n          int
	err        error
	rssPerConn float64 // bytes
	heapPer    float64 // bytes of HeapInuse
	stackPer   float64 // bytes of StackInuse
	gorPer     float64 // goroutines
}

// runConnectIdle connects cfg.conns clients as fast as cfg.dialConc allows
// (the connect-rate workload), waits for the hubchat room to form, then
// measures the server's memory with every client idle.
func runConnectIdle(cfg *config, name string) (cr connectResult, ir idleResult) {
	n := cfg.conns
	cr = connectResult{target: name, n: n}
	ir = idleResult{target: name, n: n}
	fail := func(err error) (connectResult, idleResult) {
		cr.err, ir.err = err, err
		return cr, ir
	}
	if lim := noFileLimit(); lim < uint64(n)+256 {
		return fail(fmt.Errorf("skipped: RLIMIT_NOFILE %d is too low for %d connections", lim, n))
	}
	spec := specs[name]
	p, err := cfg.start(name)
	if err != nil {
		return fail(err)
	}
	defer p.stop()
	ms0, err := p.mem()
	if err != nil {
		return fail(err)
	}
	rss0, _ := p.rss()

	room := 0
	if spec.join {
		room = n
	}
	r := newRunState(room)
	if cfg.profileDir != "" && spec.join {
		// The connect storm and the room forming after it: about 2 s on
		// the 2-core machine (a profile must end before the round does).
		go func() {
			file := filepath.Join(cfg.profileDir, fmt.Sprintf("%s-connect-%d.pprof", name, n))
			if err := p.profile(2*time.Second, file); err != nil {
				fmt.Fprintf(os.Stderr, "profile %s: %v\n", name, err)
			}
		}()
	}
	cpu0, _ := p.cpu()
	self0 := selfCPU()
	steal0 := stealCPU()
	start := time.Now()
	clients, elapsed, err := dialAll(spec, p.addr, n, cfg.dialConc, r, cfg.formLimit)
	if err != nil {
		return fail(err)
	}
	defer closeAll(r, clients)
	cr.elapsed = elapsed
	cr.rate = float64(n) / elapsed.Seconds()
	if cpu, err := p.cpu(); err == nil {
		cr.srvPerConn = (cpu - cpu0) / time.Duration(n)
	}
	cr.genPerConn = (selfCPU() - self0) / time.Duration(n)
	cr.steal = float64(stealCPU()-steal0) / float64(elapsed)
	if spec.join {
		if err := waitFormed(r, max(time.Second, cfg.formLimit-time.Since(start))); err != nil {
			cr.err = err
		} else {
			cr.formed = time.Unix(0, r.formedAt.Load()).Sub(start)
		}
	}
	wall := time.Since(start)
	cpu1, _ := p.cpu()
	cr.srvBusy = float64(cpu1-cpu0) / float64(wall)
	cr.genBusy = float64(selfCPU()-self0) / float64(wall)
	cr.perRead = r.framesPerRead()
	if d := r.disconnects.Load(); d > 0 && cr.err == nil {
		cr.err = fmt.Errorf("%d clients disconnected: %v", d, r.problems())
	}

	time.Sleep(cfg.idleWait) // idle
	ms1, err := p.mem()
	if err != nil {
		ir.err = err
		return
	}
	rss1, _ := p.rss()
	if cfg.profileDir != "" {
		file := filepath.Join(cfg.profileDir, fmt.Sprintf("%s-idle-%d.heap", name, n))
		if err := p.heapProfile(file); err != nil {
			fmt.Fprintf(os.Stderr, "heap profile %s: %v\n", name, err)
		}
	}
	fn := float64(n)
	ir.rssPerConn = float64(rss1-rss0) / fn
	ir.heapPer = float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse)) / fn
	ir.stackPer = float64(int64(ms1.StackInuse)-int64(ms0.StackInuse)) / fn
	ir.gorPer = float64(ms1.Goroutines-ms0.Goroutines) / fn
	return cr, ir
}
