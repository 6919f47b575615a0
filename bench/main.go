// Command bench runs the same chat workloads against hubchat and four other
// Go WebSocket broadcast servers and prints one markdown table per
// workload, every figure with its ratio to hubchat's.
//
// Each target runs as a child process (this executable, started with
// HUBCHAT_BENCH_SERVE=<target>), pinned to its own CPU when possible; the
// load generator runs in this process on the other CPU. Everything is on
// 127.0.0.1, every loop is bounded, and every child is stopped before the
// program exits. See README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pinnedEnv marks a load generator that has already pinned itself.
const pinnedEnv = "HUBCHAT_BENCH_PINNED"

func main() {
	if name := os.Getenv(serveEnv); name != "" {
		os.Exit(serveMain(name))
	}
	os.Exit(benchMain())
}

func benchMain() int {
	var (
		targetsF   = flag.String("targets", strings.Join(availableTargets(), ","), "comma-separated targets to run")
		workloadsF = flag.String("workloads", "fanout,fixed,idle,connect", "comma-separated workloads: fanout, fixed, idle, connect, huge")
		sizesF     = flag.String("sizes", "100,1000,5000", "fan-out client counts")
		quick      = flag.Bool("quick", false, "smoke run: small sizes, short phases (about 30 s)")
		huge       = flag.Bool("huge", false, "issue #18: the huge workload against hubchat, limit and melody, 256 handshakes in flight")
		pin        = flag.Bool("pin", true, "pin the load generator to CPU 0 and targets to CPU 1 (needs taskset and 2 CPUs)")
		timeout    = flag.Duration("timeout", 10*time.Minute, "abort everything after this long")
		cfg        config
	)
	flag.IntVar(&cfg.senders, "senders", 4, "fan-out and fixed load: sending clients")
	flag.IntVar(&cfg.window, "window", 8, "fan-out: messages per sender that may be on their way to clients")
	flag.DurationVar(&cfg.duration, "duration", 2*time.Second, "fan-out: measured time per target and size")
	flag.DurationVar(&cfg.warmup, "warmup", 300*time.Millisecond, "fan-out: unmeasured time before it")
	flag.IntVar(&cfg.rate, "rate", 100, "fixed load: messages/s offered")
	flag.DurationVar(&cfg.fixedFor, "fixed-duration", 3*time.Second, "fixed load: how long")
	flag.IntVar(&cfg.fixedConns, "fixed-clients", 1000, "fixed load: clients")
	flag.DurationVar(&cfg.fixedDrain, "fixed-drain", 5*time.Second, "fixed load: wait this long after the last send for deliveries; later ones count as lost")
	flag.IntVar(&cfg.conns, "conns", 10000, "idle memory and connect rate: clients")
	flag.IntVar(&cfg.dialConc, "dial-concurrency", 128, "connections being set up at once")
	flag.IntVar(&cfg.rounds, "rounds", 5, "connect and idle: rounds (every target once per round, fresh processes); tables show each target's median round")
	flag.DurationVar(&cfg.formLimit, "form-limit", 90*time.Second, "connect: give up on a hubchat room that has not formed after this long")
	flag.IntVar(&cfg.pad, "pad", 0, "extra bytes per message body")
	flag.DurationVar(&cfg.idleWait, "idle-wait", time.Second, "idle memory: how long clients are idle before the server's memory is read")
	flag.IntVar(&cfg.sendQueue, "hubchat-sendqueue", 4096, "hubchat Options.SendQueue")
	flag.StringVar(&cfg.profileDir, "profile-dir", "", "write a server CPU profile of every fan-out phase into this directory")
	genProfile := flag.String("gen-profile", "", "write a CPU profile of the load generator (the whole run) to this file")
	flag.IntVar(&cfg.hugeClients, "huge-clients", 100000, "huge: clients in the room (capped at what RLIMIT_NOFILE allows)")
	flag.IntVar(&cfg.hugeBase, "huge-base", 1000, "huge: the room size whose fan-out CPU per delivery the huge room's is compared with")
	flag.IntVar(&cfg.sustainRate, "sustain-rate", 10, "huge: messages/s of the sustained phase")
	flag.DurationVar(&cfg.sustainFor, "sustain-duration", 15*time.Second, "huge: how long the sustained phase lasts")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	def := func(name string, apply func()) {
		if !set[name] {
			apply()
		}
	}

	if *huge {
		def("targets", func() { *targetsF = "hubchat,limit,melody" })
		def("workloads", func() { *workloadsF = "huge" })
		def("dial-concurrency", func() { cfg.dialConc = 256 })
		def("form-limit", func() { cfg.formLimit = 5 * time.Minute })
		def("timeout", func() { *timeout = 2 * time.Hour })
	}
	if *quick {
		def("sizes", func() { *sizesF = "100,1000" })
		def("duration", func() { cfg.duration = time.Second })
		def("warmup", func() { cfg.warmup = 200 * time.Millisecond })
		def("fixed-duration", func() { cfg.fixedFor = 2 * time.Second })
		def("conns", func() { cfg.conns = 2000 })
		def("rounds", func() { cfg.rounds = 1 })
	}

	if *pin && os.Getenv(pinnedEnv) == "" && runtime.NumCPU() >= 2 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			if exe, err := os.Executable(); err == nil {
				// Re-execute under taskset so that every thread of the load
				// generator, and its GOMAXPROCS, sees one CPU.
				args := append([]string{"taskset", "-c", "0", exe}, os.Args[1:]...)
				err := syscall.Exec(ts, args, append(os.Environ(), pinnedEnv+"=1"))
				fmt.Fprintf(os.Stderr, "pinning failed (%v); running unpinned\n", err)
			}
		}
	}
	cfg.serverCPU = -1
	if os.Getenv(pinnedEnv) != "" {
		cfg.serverCPU = 1
	}

	targets := splitList(*targetsF)
	for _, t := range targets {
		if specs[t].dial == nil || servers[specs[t].serverName(t)] == nil {
			fmt.Fprintf(os.Stderr, "unknown target %q; available: %v\n", t, availableTargets())
			return 2
		}
	}
	workloads := map[string]bool{}
	for _, w := range splitList(*workloadsF) {
		switch w {
		case "fanout", "fixed", "idle", "connect", "huge":
			workloads[w] = true
		default:
			fmt.Fprintf(os.Stderr, "unknown workload %q\n", w)
			return 2
		}
	}
	var sizes []int
	for _, s := range splitList(*sizesF) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			return 2
		}
		sizes = append(sizes, n)
	}
	// Here, after any re-execution under taskset: this is the process that
	// does the work.
	if *genProfile != "" {
		f, err := os.Create(*genProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if err := raiseNoFile(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot raise RLIMIT_NOFILE: %v\n", err)
	}
	cfg.genProfiling = *genProfile != ""
	hugeWanted := cfg.hugeClients
	if workloads["huge"] {
		if lim := maxClients(); cfg.hugeClients > lim {
			fmt.Fprintf(os.Stderr, "RLIMIT_NOFILE allows one process %d descriptors, and it cannot be raised (that needs CAP_SYS_RESOURCE): the huge room has %d clients, not %d\n",
				noFileLimit(), lim, cfg.hugeClients)
			cfg.hugeClients = lim
		}
		if cfg.hugeClients < 1 {
			fmt.Fprintln(os.Stderr, "no room for the huge workload")
			return 2
		}
	}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}

	// Stop every child on interrupt or when the time is up.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "\n%v: stopping targets\n", s)
		case <-time.After(*timeout):
			fmt.Fprintf(os.Stderr, "\ntimeout %v: stopping targets\n", *timeout)
		}
		stopAllTargets()
		os.Exit(1)
	}()

	start := time.Now()
	fmt.Printf("## hubchat benchmark\n\n%s, GOMAXPROCS %d (load generator), %d CPUs on the machine, targets pinned to CPU %d (-1 = unpinned)\n",
		runtime.Version(), runtime.GOMAXPROCS(0), numCPUMachine(), cfg.serverCPU)
	fmt.Printf("Load average (1, 5, 15 min) at the start: %s\n", loadAvg())
	fmt.Println("Ratios are the target's figure divided by hubchat's: below 1 means a lower figure than hubchat (better for costs and latencies, worse for rates).")

	res := &results{fanout: map[int][]fanoutResult{}}
	progress := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	if workloads["fanout"] {
		for _, n := range sizes {
			for _, t := range targets {
				progress("fan-out %s n=%d", t, n)
				r := runFanout(&cfg, t, n)
				if r.err != nil {
					progress("  %s: %v", t, r.err)
				}
				res.fanout[n] = append(res.fanout[n], r)
			}
			fanoutTable(&cfg, n, res.fanout[n]).print(os.Stdout)
		}
	}
	if workloads["fixed"] {
		for _, t := range targets {
			progress("fixed load %s", t)
			res.fixed = append(res.fixed, runFixed(&cfg, t))
		}
		fixedTable(&cfg, res.fixed).print(os.Stdout)
	}
	if workloads["idle"] || workloads["connect"] {
		// Round-robin, so that a slow spell of the machine hits every
		// target alike, and the median round per target. The generator's
		// first 10,000 clients cost it more (its heap grows, page faults),
		// so an unreported warm-up round comes first, and each round starts
		// at a different target.
		crs := make(map[string][]connectResult)
		irs := make(map[string][]idleResult)
		if cfg.rounds > 1 {
			progress("connect+idle %s n=%d warm-up (not reported)", targets[0], cfg.conns)
			runConnectIdle(&cfg, targets[0])
		}
		for round := range max(1, cfg.rounds) {
			for k := range targets {
				t := targets[(round+k)%len(targets)]
				progress("connect+idle %s n=%d round %d", t, cfg.conns, round+1)
				cr, ir := runConnectIdle(&cfg, t)
				if cr.err != nil {
					progress("  %s: %v", t, cr.err)
				}
				crs[t] = append(crs[t], cr)
				irs[t] = append(irs[t], ir)
			}
		}
		for _, t := range targets {
			res.connect = append(res.connect, medianConnect(crs[t]))
			res.idle = append(res.idle, medianIdle(irs[t]))
		}
		if workloads["idle"] {
			idleTable(&cfg, res.idle).print(os.Stdout)
		}
		if workloads["connect"] {
			connectTable(&cfg, res.connect).print(os.Stdout)
		}
	}
	if workloads["huge"] {
		var rs []hugeResult
		for _, t := range targets {
			r := runHuge(&cfg, t, progress)
			if r.err != nil {
				progress("  %s: %s: %v", t, r.phase, r.err)
			}
			rs = append(rs, r)
		}
		hugeTable(&cfg, rs).print(os.Stdout)
		if contains(targets, "hubchat") {
			hugeChecks(&cfg, hugeWanted, rs).print(os.Stdout)
		}
	}
	if contains(targets, "hubchat") && (workloads["fanout"] || workloads["fixed"] || workloads["idle"] || workloads["connect"]) {
		checksTable(res).print(os.Stdout)
	}
	fmt.Printf("\ntotal time %.1fs; load average (1, 5, 15 min) at the end: %s\n", time.Since(start).Seconds(), loadAvg())
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// numCPUMachine counts the machine's online CPUs, whatever our affinity.
func numCPUMachine() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if found {
			b, _ = strconv.Atoi(hi)
		}
		n += b - a + 1
	}
	return n
}

// loadAvg returns the machine's load averages over 1, 5 and 15 minutes:
// other engineers' work on a shared machine shows here.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
