// Command static serves a single chat room and its browser client.
//
//	go run ./examples/static [-addr localhost:8080] [-rate N] [-history N] [-hosts name,...] [-admin localhost:8081]
//
// Open the printed URL in a few browser windows. GET / serves the client
// and /ws is the chat endpoint (?username=name). -rate limits each
// connection to N messages per second (0: no limit) and -history sets how
// many messages a joiner sees (0: none). The chat endpoint answers only
// to the host names of -addr (for a loopback host: localhost, 127.0.0.1
// and [::1]) and to -hosts, on any port, which defeats DNS rebinding;
// upgrades addressed to another Host get 403. SIGINT or SIGTERM closes
// every client with 1001 (going away) and exits.
//
// -admin serves the moderation API of package kit/admin on a loopback
// address of its own (off by default), for the operator's shell:
//
//	curl -d user=bob -d for=1h -d reason=spam localhost:8081/ban
//	curl -d user=bob -d body='Please keep it friendly.' localhost:8081/send
//
// It answers only clients on the machine itself, and no browser.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/kit/admin"
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
	addr  string
	admin string // address of the moderation API; "" for none
	opts  chat.Options
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
	adminAddr := fs.String("admin", "", "loopback `host:port` for the moderation API (kick, ban, mute, send); empty: none")
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
	cfg := config{addr: *addr, admin: *adminAddr, opts: chat.Options{
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
	var adminLn net.Listener
	if cfg.admin != "" {
		if adminLn, err = listenLoopback(cfg.admin); err != nil {
			ln.Close()
			return err
		}
	}
	app := staticapp.New(cfg.opts)
	srv := run.Serve(ln, app.Handler(), run.Config{}, app.Hub())
	host, _, _ := net.SplitHostPort(cfg.addr)
	fmt.Fprintf(stdout, "static chat: open %s (WebSocket %s)\n",
		run.URL("http", host, ln.Addr(), "/"), run.URL("ws", host, ln.Addr(), "/ws"))
	if adminLn == nil {
		return run.Wait(ctx, srv.Shutdown, srv)
	}
	adminSrv := run.Serve(adminLn, admin.Handler(app.Hub()), run.Config{})
	fmt.Fprintf(stdout, "moderation: curl -d user=NAME %s\n", run.URL("http", "", adminLn.Addr(), "/kick"))
	return run.Wait(ctx, func(ctx context.Context) error {
		return errors.Join(srv.Shutdown(ctx), adminSrv.Shutdown(ctx))
	}, srv, adminSrv)
}

// listenLoopback listens on addr, which must be a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("-admin %s: not a loopback address: use localhost:PORT", addr)
	}
	return ln, nil
}
