// Command static serves a single chat room and its browser client.
//
//	go run ./examples/static [-addr localhost:8080] [-rate N] [-history N] [-hosts name,...]
//
// Open the printed URL in a few browser windows. GET / serves the client
// and /ws is the chat endpoint (?username=name). -rate limits each
// connection to N messages per second (0: no limit) and -history sets how
// many messages a joiner sees (0: none). The chat endpoint answers only
// to the host names of -addr (for a loopback host: localhost, 127.0.0.1
// and [::1]) and to -hosts, on any port, which defeats DNS rebinding;
// upgrades addressed to another Host get 403. SIGINT or SIGTERM closes
// every client with 1001 (going away) and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/kit/run"
	"github.com/hubchat/chat/examples/kit/staticapp"
)

func main() {
	run.Main(func(ctx context.Context) error {
		cfg, err := parseFlags(os.Args[1:], os.Stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, os.Stdout)
	})
}

// config is the command line, parsed.
type config struct {
	addr string
	opts chat.Options
}

// parseFlags parses the command-line arguments (without the program name),
// writing usage and errors to out.
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("static", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "localhost:8080", "`host:port` to listen on (port 0 picks a free port)")
	rate := fs.Float64("rate", 20, "messages per second per connection; 0 turns the limit off")
	history := fs.Int("history", 50, "messages of history a joiner receives; 0 turns history off")
	hosts := fs.String("hosts", "", "comma-separated extra host `names` (Host header, any port) the chat answers to, besides those of -addr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *rate < 0 || *history < 0 {
		return config{}, fmt.Errorf("-rate and -history must not be negative")
	}
	host, _, _ := net.SplitHostPort(*addr) // a bad address fails at Listen
	names := run.HostNames(host)
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	cfg := config{addr: *addr, opts: chat.Options{
		Name: "lobby", RateLimit: *rate, HistorySize: *history,
		AllowedHosts: run.HostPatterns(names...),
	}}
	if *rate == 0 {
		cfg.opts.RateLimit = -1 // chat.Options: negative turns the limit off
	}
	if *history == 0 {
		cfg.opts.HistorySize = -1 // chat.Options: negative turns history off
	}
	return cfg, nil
}

// serve runs the app until ctx is done, then shuts it down gracefully.
func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	app := staticapp.New(cfg.opts)
	srv := run.Serve(ln, app.Handler(), run.Config{}, app.Hub())
	host, _, _ := net.SplitHostPort(cfg.addr)
	fmt.Fprintf(stdout, "static chat: open %s (WebSocket %s)\n",
		run.URL("http", host, ln.Addr(), "/"), run.URL("ws", host, ln.Addr(), "/ws"))
	return run.Wait(ctx, srv.Shutdown, srv)
}
