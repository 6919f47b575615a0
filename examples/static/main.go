// Command static serves a single chat room and its browser client.
//
//	go run ./examples/static [-addr localhost:8080] [-db hubchat-static.db] [-files DIR] [-rate N] [-history N] [-hosts name,...] [-admin localhost:8081]
//
// Open the printed URL in a few browser windows. GET / serves the client
// (package webui), /ws is the chat endpoint (?username=name) and GET
// /metrics serves the room's metrics for Prometheus (package prommetrics;
// in production, serve them where only Prometheus reaches).
//
// The room's messages are kept in the SQLite file -db (package
// sqlitestore), hubchat-static.db in the working directory unless set, so
// that after a restart, even after a crash or kill -9, joiners get the
// messages from before; the program prints the file's path at start.
// -db "" or -db :memory: keeps them in memory only, for the life of the
// process. A message is in the file within moments of being sent: the hub
// writes what it accepts in the background, many messages per
// transaction, and on shutdown writes what is left.
//
// Members share files and images (the client's attach button; see
// chat.Hub.FilesHandler, at /files/): they are kept in the directory
// -files, by default beside the -db file (hubchat-static-files for
// hubchat-static.db), so that they survive a restart with the history.
// -files "" turns file sharing off; so does -db "" unless -files is set.
//
// -rate limits each connection to N messages per second (0: no limit) and
// -history sets how many messages a joiner sees (0: none). The chat
// endpoint answers only to the host names of -addr (for a loopback host:
// localhost, 127.0.0.1 and [::1]) and to -hosts, on any port, which
// defeats DNS rebinding; upgrades addressed to another Host get 403.
// SIGINT or SIGTERM closes every client with 1001 (going away) and exits.
//
// -admin serves the moderation API of package internal/admin on a
// loopback address of its own (off by default), for the operator's shell:
//
//	curl -d user=bob -d for=1h -d reason=spam localhost:8081/ban
//	curl -d user=bob -d body='Please keep it friendly.' localhost:8081/send
//
// It answers only clients on the machine itself, and no browser.
//
// The program is the package's quick start made whole: a hub, a server on
// a mux beside the web client and the metrics, an http.Server, and the
// shutdown order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/admin"
	"github.com/hubchat/chat/examples/internal/webserver"
	"github.com/hubchat/chat/prommetrics"
	"github.com/hubchat/chat/sqlitestore"
	"github.com/hubchat/chat/webui"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // -h: the usage is printed
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, cfg, os.Stdout)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// config is the command line, parsed.
type config struct {
	addr  string
	db    string // SQLite file of the history; "" for memory only
	files string // directory of the shared files; "" for none
	admin string // address of the moderation API; "" for none
	opts  chat.Options
}

// parseFlags parses the command-line arguments (without the program name),
// writing usage and errors to out.
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("static", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "localhost:8080", "`host:port` to listen on (port 0 picks a free port)")
	db := fs.String("db", "hubchat-static.db", "SQLite `file` that keeps the history across restarts; \"\" or :memory: keeps it in memory only")
	rate := fs.Float64("rate", 20, "messages per second per connection; 0 turns the limit off")
	history := fs.Int("history", 50, "messages of history a joiner receives; 0 turns history off")
	hosts := fs.String("hosts", "", "comma-separated extra host `names` (Host header, any port) the chat answers to, besides those of -addr")
	adminAddr := fs.String("admin", "", "loopback `host:port` for the moderation API (kick, ban, mute, send); empty: none")
	files := fs.String("files", "", "`directory` of the shared files (default: beside -db, e.g. hubchat-static-files); \"\" turns file sharing off")
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
	names := webserver.HostNames(host)
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	if *db == ":memory:" {
		*db = ""
	}
	filesSet := false
	fs.Visit(func(f *flag.Flag) { filesSet = filesSet || f.Name == "files" })
	if !filesSet {
		*files = filesBeside(*db)
	}
	cfg := config{addr: *addr, db: *db, files: *files, admin: *adminAddr, opts: chat.Options{
		Name: "lobby", RateLimit: *rate, HistorySize: *history,
		AllowedHosts: webserver.HostPatterns(names...),
	}}
	if *rate == 0 {
		cfg.opts.RateLimit = -1 // chat.Options: negative turns the limit off
	}
	if *history == 0 {
		cfg.opts.HistorySize = -1 // chat.Options: negative turns history off
	}
	return cfg, nil
}

// filesBeside returns the default directory of the shared files for the
// history file db: beside it, named after it without its extension and
// with "-files" ("" for no db).
func filesBeside(db string) string {
	if db == "" {
		return ""
	}
	return strings.TrimSuffix(db, filepath.Ext(db)) + "-files"
}

// run serves the chat until ctx is done, then shuts it down gracefully.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	history := "in memory only"
	if cfg.db != "" {
		// The room's messages in a SQLite file, which the hub reads its
		// history and last message ID from at start.
		st, err := sqlitestore.Open(ctx, cfg.db, sqlitestore.Options{})
		if err != nil {
			return fmt.Errorf("-db: %w", err)
		}
		defer st.Close() // after hub.Shutdown below, which stores what is left
		cfg.opts.Store = st
		if history, err = filepath.Abs(cfg.db); err != nil {
			history = cfg.db
		}
	}

	// Listen first, so that the printed URL has the real port.
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

	files := "off"
	if cfg.files != "" {
		// Shared files in a directory, named by random IDs.
		cfg.opts.Files = chat.DirFiles(cfg.files)
		if files, err = filepath.Abs(cfg.files); err != nil {
			files = cfg.files
		}
	}

	hub := chat.NewHub(cfg.opts) // the room
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))                                       // *chat.Server is an http.Handler
	mux.Handle("/files/", webserver.Files(hub.FilesHandler()))                   // uploads and downloads, at "files/" beside ws
	mux.Handle("GET /metrics", webserver.Metrics(prommetrics.NewCollector(hub))) // for Prometheus
	mux.Handle("/", webui.Handler())                                             // the web client, which connects to ./ws
	hs := webserver.New(mux)                                                     // an http.Server with timeouts
	servers := []*http.Server{hs}
	served := make(chan error, 2) // Serve's results; Serve never returns nil
	go func() { served <- hs.Serve(ln) }()
	host, _, _ := net.SplitHostPort(cfg.addr)
	fmt.Fprintf(stdout, "static chat: open %s (WebSocket %s)\n",
		webserver.URL("http", host, ln.Addr(), "/"), webserver.URL("ws", host, ln.Addr(), "/ws"))
	fmt.Fprintf(stdout, "  history: %s\n", history)
	fmt.Fprintf(stdout, "  files: %s\n", files)

	if adminLn != nil {
		adminSrv := webserver.New(admin.Handler(hub))
		servers = append(servers, adminSrv)
		go func() { served <- adminSrv.Serve(adminLn) }()
		fmt.Fprintf(stdout, "moderation: curl -d user=NAME %s\n", webserver.URL("http", "", adminLn.Addr(), "/kick"))
	}

	running := len(servers)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served: // a Serve failed: shut down the rest all the same
		running--
	}
	sctx, cancel := context.WithTimeout(context.Background(), webserver.ShutdownTimeout)
	defer cancel()
	// The hub first: it closes every WebSocket with 1001 (going away) and
	// waits for them, which http.Server.Shutdown does not do for hijacked
	// connections. Then the HTTP servers, which end their Serve.
	errs := []error{serveErr, hub.Shutdown(sctx)}
	for _, s := range servers {
		errs = append(errs, s.Shutdown(sctx))
	}
	for range running {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
