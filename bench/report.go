package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// table is a markdown table.
type table struct {
	title  string
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// print writes the table with aligned columns.
func (t *table) print(w io.Writer) {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], len([]rune(c)))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintf(w, "\n### %s\n\n", t.title)
	line(t.header)
	sep := make([]string, len(width))
	for i := range width {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
}

// ratio formats v/ref, the figure relative to hubchat's.
func ratio(v, ref float64, ok bool) string {
	if !ok || ref <= 0 || v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v/ref)
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk/s", r/1e3)
	default:
		return fmt.Sprintf("%.0f/s", r)
	}
}

// fmtDurs formats durations separated by slashes.
func fmtDurs(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmtDur(d)
	}
	return strings.Join(s, " / ")
}

// fmtBytes formats a byte count in MiB or GiB.
func fmtBytes(b int64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func fmtKiB(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

func fmtPerRead(f float64) string {
	if f <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", f)
}

func fmtPct(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

func errCell(err error) string {
	s := err.Error()
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return "ERROR: " + strings.ReplaceAll(s, "|", "/")
}

// fanoutTable renders the fan-out results for one client count.
func fanoutTable(cfg *config, n int, rs []fanoutResult) *table {
	t := &table{
		title: fmt.Sprintf("Fan-out: %d clients, %d senders, window %d per sender, %v measured",
			n, min(cfg.senders, n), cfg.window, cfg.duration),
		header: []string{"target", "deliveries/s", "vs hubchat", "p50", "p99", "lost", "srv CPU/delivery", "vs hubchat", "srv CPU", "gen CPU", "other CPU", "frames/read", "notes"},
	}
	var ref fanoutResult
	hasRef := false
	for _, r := range rs {
		if r.target == "hubchat" && r.err == nil {
			ref, hasRef = r, true
		}
	}
	for _, r := range rs {
		if r.err != nil {
			t.add(r.target, errCell(r.err))
			continue
		}
		notes := ""
		if r.disconnects > 0 {
			notes = fmt.Sprintf("%d disconnected; ", r.disconnects)
		}
		if len(r.notes) > 0 {
			notes += strings.ReplaceAll(r.notes[0], "|", "/")
			if len(notes) > 90 {
				notes = notes[:90] + "…"
			}
		}
		t.add(r.target, fmtRate(r.rate), ratio(r.rate, ref.rate, hasRef),
			fmtDur(r.p50), fmtDur(r.p99), fmt.Sprint(r.lost),
			fmtDur(r.cpuPerDel), ratio(float64(r.cpuPerDel), float64(ref.cpuPerDel), hasRef),
			fmtPct(r.srvBusy), fmtPct(r.genBusy), fmtPct(r.otherBusy), fmtPerRead(r.perRead), notes)
	}
	return t
}

// fixedTable renders the fixed-load results.
func fixedTable(cfg *config, rs []fixedResult) *table {
	t := &table{
		title: fmt.Sprintf("Fixed load: %d messages/s offered into %d clients for %v (latency from the scheduled send time; lost = not delivered %v after the last send)",
			cfg.rate, cfg.fixedConns, cfg.fixedFor, cfg.fixedDrain),
		header: []string{"target", "sent", "p50", "vs hubchat", "p99", "vs hubchat", "max", "lost", "disconnected"},
	}
	var ref fixedResult
	hasRef := false
	for _, r := range rs {
		if r.target == "hubchat" && r.err == nil {
			ref, hasRef = r, true
		}
	}
	for _, r := range rs {
		if r.err != nil {
			t.add(r.target, errCell(r.err))
			continue
		}
		t.add(r.target, fmt.Sprint(r.sent), fmtDur(r.p50), ratio(float64(r.p50), float64(ref.p50), hasRef),
			fmtDur(r.p99), ratio(float64(r.p99), float64(ref.p99), hasRef), fmtDur(r.max), fmt.Sprint(r.lost), fmt.Sprint(r.disconnects))
	}
	return t
}

// idleTable renders the idle-memory results.
func idleTable(cfg *config, rs []idleResult) *table {
	t := &table{
		title:  fmt.Sprintf("Idle memory: %d connected (and joined) idle clients, server side, per connection; each target's median of %d rounds", cfg.conns, max(1, cfg.rounds)),
		header: []string{"target", "RSS", "vs hubchat", "Go heap", "vs hubchat", "goroutine stacks", "goroutines"},
	}
	var ref idleResult
	hasRef := false
	for _, r := range rs {
		if r.target == "hubchat" && r.err == nil {
			ref, hasRef = r, true
		}
	}
	for _, r := range rs {
		if r.err != nil {
			t.add(r.target, errCell(r.err))
			continue
		}
		t.add(r.target, fmtKiB(r.rssPerConn), ratio(r.rssPerConn, ref.rssPerConn, hasRef),
			fmtKiB(r.heapPer), ratio(r.heapPer, ref.heapPer, hasRef),
			fmtKiB(r.stackPer), fmt.Sprintf("%.2f", r.gorPer))
	}
	return t
}

// connectTable renders the connect-rate results.
func connectTable(cfg *config, rs []connectResult) *table {
	t := &table{
		title: fmt.Sprintf("Connect rate: %d clients, %d handshakes in flight (hubchat: connect+join); each target's median of %d rounds",
			cfg.conns, cfg.dialConc, max(1, cfg.rounds)),
		header: []string{"target", "connections/s", "vs hubchat", "all connected", "room formed", "hubchat room formed ÷ this target's connect time", "srv CPU/conn", "gen CPU/conn", "steal", "srv CPU to formed", "gen CPU to formed", "frames/read", "every round"},
	}
	var ref connectResult
	hasRef := false
	for _, r := range rs {
		if r.target == "hubchat" && r.err == nil && r.formed > 0 {
			ref, hasRef = r, true
		}
	}
	for _, r := range rs {
		if r.err != nil && r.elapsed == 0 {
			t.add(r.target, errCell(r.err))
			continue
		}
		formed := "n/a"
		if r.formed > 0 {
			formed = fmtDur(r.formed)
		} else if r.err != nil {
			formed = errCell(r.err)
		}
		hub := "-"
		if hasRef {
			hub = fmt.Sprintf("%.2fx", float64(ref.formed)/float64(r.elapsed))
		}
		var each []string
		for _, v := range r.allRates {
			each = append(each, fmtRate(v))
		}
		t.add(r.target, fmtRate(r.rate), ratio(r.rate, ref.rate, hasRef), fmtDur(r.elapsed), formed, hub,
			fmtDur(r.srvPerConn), fmtDur(r.genPerConn), fmtPct(r.steal), fmtPct(r.srvBusy), fmtPct(r.genBusy), fmtPerRead(r.perRead), strings.Join(each, ", "))
	}
	return t
}

// results collects everything one run measured.
type results struct {
	fanout  map[int][]fanoutResult
	fixed   []fixedResult
	idle    []idleResult
	connect []connectResult
}

func find[T any](rs []T, target string, name func(T) string) (T, bool) {
	for _, r := range rs {
		if name(r) == target {
			return r, true
		}
	}
	var zero T
	return zero, false
}

// checksTable compares hubchat against the library's performance targets.
func checksTable(res *results) *table {
	t := &table{
		title:  "hubchat against its performance targets",
		header: []string{"requirement", "measured", "result"},
	}
	verdict := func(ok bool) string {
		if ok {
			return "pass"
		}
		return "FAIL"
	}
	fname := func(r fanoutResult) string {
		if r.err != nil {
			return ""
		}
		return r.target
	}
	if rs, ok := res.fanout[1000]; ok {
		hub, okH := find(rs, "hubchat", fname)
		if okH {
			if m, ok := find(rs, "melody", fname); ok {
				v := float64(hub.cpuPerDel) / float64(m.cpuPerDel)
				t.add("fan-out 1000: CPU/delivery <= 0.2x melody", fmt.Sprintf("%.3fx", v), verdict(v <= 0.2))
				v = hub.rate / m.rate
				t.add("fan-out 1000: deliveries/s >= 5x melody", fmt.Sprintf("%.2fx", v), verdict(v >= 5))
			}
			if l, ok := find(rs, "limit", fname); ok {
				v := float64(hub.cpuPerDel) / float64(l.cpuPerDel)
				t.add("fan-out 1000: CPU/delivery <= 1.5x limit", fmt.Sprintf("%.2fx", v), verdict(v <= 1.5))
			}
			if c, ok := find(rs, "centrifuge", fname); ok {
				v := hub.rate / c.rate
				t.add("fan-out 1000: deliveries/s >= 3x centrifuge", fmt.Sprintf("%.2fx", v), verdict(v >= 3))
			}
			if c, ok := find(rs, "centrifuge-raw", fname); ok {
				v := hub.rate / c.rate
				t.add("(extra) deliveries/s >= 3x centrifuge-raw", fmt.Sprintf("%.2fx", v), verdict(v >= 3))
			}
			if rs5, ok := res.fanout[5000]; ok {
				if h5, ok := find(rs5, "hubchat", fname); ok {
					v := float64(h5.cpuPerDel) / float64(hub.cpuPerDel)
					t.add("CPU/delivery at 5000 no worse than at 1000 (10% noise allowed)",
						fmt.Sprintf("%s vs %s = %.2fx", fmtDur(h5.cpuPerDel), fmtDur(hub.cpuPerDel), v), verdict(v <= 1.1))
				}
			}
		}
	}
	if len(res.fanout) > 0 || res.fixed != nil {
		var lost, disc int64
		seen := false
		for _, rs := range res.fanout {
			if h, ok := find(rs, "hubchat", fname); ok {
				lost += h.lost
				disc += h.disconnects
				seen = true
			}
		}
		if h, ok := find(res.fixed, "hubchat", func(r fixedResult) string { return r.target }); ok && h.err == nil {
			lost += h.lost
			seen = true
		}
		if seen {
			t.add("zero lost messages, no disconnects", fmt.Sprintf("lost %d, disconnected %d", lost, disc), verdict(lost == 0 && disc == 0))
		}
	}
	fxname := func(r fixedResult) string {
		if r.err != nil {
			return ""
		}
		return r.target
	}
	if h, ok := find(res.fixed, "hubchat", fxname); ok {
		if m, ok := find(res.fixed, "melody", fxname); ok {
			t.add("fixed load: p99 <= melody", fmt.Sprintf("%s vs %s", fmtDur(h.p99), fmtDur(m.p99)), verdict(h.p99 <= m.p99))
		}
	}
	if h, ok := find(res.idle, "hubchat", func(r idleResult) string { return r.target }); ok && h.err == nil {
		t.add("idle memory <= 12 KiB/connection (RSS)", fmtKiB(h.rssPerConn), verdict(h.rssPerConn <= 12*1024))
	}
	cname := func(r connectResult) string { return r.target }
	if h, ok := find(res.connect, "hubchat", cname); ok && h.elapsed > 0 {
		if m, ok := find(res.connect, "melody", cname); ok && m.err == nil {
			v := h.rate / m.rate
			t.add("connect rate >= melody", fmt.Sprintf("%.2fx (%s vs %s)", v, fmtRate(h.rate), fmtRate(m.rate)), verdict(v >= 1))
			if h.formed > 0 {
				v := float64(h.formed) / float64(m.elapsed)
				t.add(fmt.Sprintf("room of %d forms in <= 3x melody's accept time", h.n),
					fmt.Sprintf("%.2fx (%s vs %s)", v, fmtDur(h.formed), fmtDur(m.elapsed)), verdict(v <= 3))
			} else {
				t.add(fmt.Sprintf("room of %d forms in <= 3x melody's accept time", h.n), "room did not form", "FAIL")
			}
		}
	}
	return t
}

// hugeTable renders the huge workload: one column per target, one row per
// figure, with issue #18's target for it.
func hugeTable(cfg *config, rs []hugeResult) *table {
	t := &table{
		title: fmt.Sprintf("One room of %d clients (%d handshakes in flight), every phase on one server process; \"GEN-BOUND\" marks a phase whose figures the load generator, at ≥ %.0f%% CPU, may have capped",
			cfg.hugeClients, cfg.dialConc, 100*genBoundShare),
		header: []string{"figure", "issue #18 target"},
	}
	for _, r := range rs {
		t.header = append(t.header, r.target)
	}
	flag := func(share float64) string {
		if share >= genBoundShare {
			return " GEN-BOUND"
		}
		return ""
	}
	row := func(figure, target, phase string, cell func(r hugeResult) string) {
		cells := []string{figure, target}
		for _, r := range rs {
			if r.reached(phase) {
				cells = append(cells, cell(r))
			} else {
				cells = append(cells, "-")
			}
		}
		t.add(cells...)
	}
	errs := false
	for _, r := range rs {
		errs = errs || r.err != nil
	}
	if errs {
		cells := []string{"gave up", ""}
		for _, r := range rs {
			c := ""
			if r.err != nil {
				c = fmt.Sprintf("in %s", r.phase)
				if r.phase == "form" && r.connected > 0 {
					c += fmt.Sprintf(" with %d connected", r.connected)
				}
				c += ": " + strings.TrimPrefix(errCell(r.err), "ERROR: ")
			}
			cells = append(cells, c)
		}
		t.add(cells...)
	}
	row("connected (hubchat: and joined)", "all, 0 failed", "form", func(r hugeResult) string {
		return fmt.Sprintf("%d of %d", r.n, r.n)
	})
	row("all connected after", "", "form", func(r hugeResult) string { return fmtDur(r.connect) })
	row("room formed after (hubchat: every client knows every member; others: a message reached all)", "< 60 s", "form", func(r hugeResult) string {
		return fmtDur(r.formed) + flag(r.formCPU.gen)
	})
	row("a client's dial until connected (hubchat: joined): p50 / p99 / max", "", "form", func(r hugeResult) string { return fmtDurs(r.formDial[:]) })
	row("bytes the clients read until formed", "", "form", func(r hugeResult) string { return fmtBytes(r.formBytes) })
	row("CPU until formed: server / generator / other processes", "", "form", func(r hugeResult) string { return r.formCPU.String() })
	row("server RSS per member, idle", "≤ 6 KiB", "idle", func(r hugeResult) string { return fmtKiB(r.rssPer) })
	row("server Go heap / goroutine stacks per member; goroutines per member", "", "idle", func(r hugeResult) string {
		return fmt.Sprintf("%s / %s; %.2f", fmtKiB(r.heapPer), fmtKiB(r.stackPer), r.gorPer)
	})
	row(fmt.Sprintf("one message to all (%d, one at a time): p50 / p99 / max from the send", hugeOneMessages), "p99 < 1 s", "one message", func(r hugeResult) string {
		return fmtDurs([]time.Duration{r.one.p50, r.one.p99, r.one.max})
	})
	row("single messages: CPU server / generator / other processes (with 200 ms pauses)", "", "one message", func(r hugeResult) string { return r.oneCPU.String() })
	sus := fmt.Sprintf("sustained %d msgs/s for %v", cfg.sustainRate, cfg.sustainFor)
	row(sus+": p50 / p99 / max from the scheduled send", "", "sustained", func(r hugeResult) string {
		return fmtDurs([]time.Duration{r.sustained.p50, r.sustained.p99, r.sustained.max}) + flag(r.susCPU.gen)
	})
	row(sus+": lost / evicted", "0 / 0", "sustained", func(r hugeResult) string {
		return fmt.Sprintf("%d of %d / %d", r.sustained.lost, r.sustained.sent*int64(r.n), r.sustained.disconnects)
	})
	row(sus+": CPU server / generator / other processes", "", "sustained", func(r hugeResult) string { return r.susCPU.String() })
	row(fmt.Sprintf("fan-out: server CPU per delivery here / in a room of %d", cfg.hugeBase), "≤ 1.2x", "fan-out", func(r hugeResult) string {
		return fmt.Sprintf("%s / %s = %.2fx", fmtDur(r.fanout.cpuPerDel), fmtDur(r.base.cpuPerDel),
			float64(r.fanout.cpuPerDel)/float64(r.base.cpuPerDel)) + flag(r.fanout.genBusy)
	})
	row(fmt.Sprintf("fan-out: deliveries/s, p99, CPU server / generator / other processes (room of %d: same)", cfg.hugeBase), "", "fan-out", func(r hugeResult) string {
		return fmt.Sprintf("%s, %s, %s / %s / %s (%s, %s, %s / %s / %s)",
			fmtRate(r.fanout.rate), fmtDur(r.fanout.p99), fmtPct(r.fanout.srvBusy), fmtPct(r.fanout.genBusy), fmtPct(r.fanout.otherBusy),
			fmtRate(r.base.rate), fmtDur(r.base.p99), fmtPct(r.base.srvBusy), fmtPct(r.base.genBusy), fmtPct(r.base.otherBusy))
	})
	row("restart: the new server listens after", "", "restart", func(r hugeResult) string { return fmtDur(r.down) })
	row("restart: every client reconnected / room formed again, after the exit", "< 90 s", "restart", func(r hugeResult) string {
		return fmtDur(r.reconnect) + " / " + fmtDur(r.reformed) + flag(r.restartCPU.gen)
	})
	row(`restart: history frames with "resume":true / false`, "every client resumes", "restart", func(r hugeResult) string {
		if !specs[r.target].join {
			return "n/a"
		}
		return fmt.Sprintf("%d / %d", r.resumed, r.plain)
	})
	row("restart: a client's dial until connected (hubchat: joined): p50 / p99 / max", "", "restart", func(r hugeResult) string { return fmtDurs(r.restartDial[:]) })
	row("restart: bytes the clients read until formed again", "", "restart", func(r hugeResult) string { return fmtBytes(r.restartBytes) })
	row("restart: CPU server / generator / other processes", "", "restart", func(r hugeResult) string { return r.restartCPU.String() })
	row("after the restart: one message, deliveries missing", "0", "after the restart", func(r hugeResult) string { return fmt.Sprint(r.afterRestartLost) })
	row("load generator: RSS per client idle; peak RSS", "", "idle", func(r hugeResult) string {
		return fmt.Sprintf("%s; %.0f MiB", fmtKiB(r.genRSSPer), float64(r.genPeakRSS)/(1<<20))
	})
	return t
}

// hugeChecks checks hubchat's huge run against issue #18's targets.
func hugeChecks(cfg *config, wanted int, rs []hugeResult) *table {
	t := &table{
		title:  fmt.Sprintf("hubchat against issue #18's targets, in a room of %d", cfg.hugeClients),
		header: []string{"requirement", "measured", "result"},
	}
	h, ok := find(rs, "hubchat", func(r hugeResult) string { return r.target })
	if !ok {
		return t
	}
	verdict := func(ok bool) string {
		if ok {
			return "pass"
		}
		return "FAIL"
	}
	if cfg.hugeClients < wanted {
		t.add(fmt.Sprintf("%d members in one room", wanted),
			fmt.Sprintf("%d: the most this machine's RLIMIT_NOFILE allows one process", cfg.hugeClients), "not measurable here")
	}
	done := h.reached
	if done("form") {
		t.add("connected and joined, 0 failed", fmt.Sprintf("%d of %d", h.n, h.n), "pass")
		t.add("room forms in < 60 s", fmtDur(h.formed), verdict(h.formed < time.Minute))
	} else {
		t.add("connected and joined, 0 failed", strings.TrimPrefix(errCell(h.err), "ERROR: "), "FAIL")
	}
	if done("idle") {
		t.add("server RSS ≤ 6 KiB per member", fmtKiB(h.rssPer), verdict(h.rssPer <= 6*1024))
	}
	if done("one message") {
		t.add("one message reaches all: p99 < 1 s from send", fmtDur(h.one.p99), verdict(h.one.p99 < time.Second))
	}
	if done("sustained") {
		t.add(fmt.Sprintf("sustained %d msgs/s: 0 lost, none evicted", cfg.sustainRate),
			fmt.Sprintf("lost %d, evicted %d", h.sustained.lost, h.sustained.disconnects),
			verdict(h.sustained.lost == 0 && h.sustained.disconnects == 0))
	}
	if done("fan-out") {
		v := float64(h.fanout.cpuPerDel) / float64(h.base.cpuPerDel)
		t.add(fmt.Sprintf("CPU per delivery ≤ 1.2x a room of %d's", cfg.hugeBase),
			fmt.Sprintf("%s vs %s = %.2fx", fmtDur(h.fanout.cpuPerDel), fmtDur(h.base.cpuPerDel), v), verdict(v <= 1.2))
	}
	if done("after the restart") {
		t.add("re-forms after a restart in < 90 s, every client resuming",
			fmt.Sprintf("%s, %d of %d resumed", fmtDur(h.reformed), h.resumed, h.n),
			verdict(h.reformed < 90*time.Second && h.resumed == int64(h.n)))
	} else if h.phase == "restart" || h.phase == "after the restart" {
		t.add("re-forms after a restart in < 90 s", strings.TrimPrefix(errCell(h.err), "ERROR: "), "FAIL")
	}
	return t
}
