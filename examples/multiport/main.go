// Command multiport runs several chat servers, one room per port, and a
// main server with a browser client that switches between them and can ask
// for more.
//
//	go run ./examples/multiport [-addr localhost:8080] [-servers 8081,8082] [-bridge 8081,8082] [-host localhost] [-allow 8083-8099] [-db hubchat-multiport.db] [-files DIR] [-origin host:port,...] [-hosts name,...]
//	go run ./examples/multiport [flags] custom PORT
//
// The first form serves the client on -addr, with GET /metrics (every
// chat server's metrics for Prometheus, labelled with its room: package
// prommetrics), and starts a chat server on each of -servers; the client
// may start more on the ports of -allow (POST /api/servers). The second
// starts a single chat server on PORT that the client at -addr can
// connect to (it serves no /metrics). Chat servers listen on -host and
// accept pages from the main server's origin and from -origin. Every
// server answers only to the host names it prints (for a loopback host:
// localhost, 127.0.0.1 and [::1]) and to -hosts, on any port, which
// defeats DNS rebinding; other Host headers get 403. SIGINT or SIGTERM
// closes every client with 1001 (going away) and exits.
//
// Each chat server's room keeps its messages under its port, "port 8081",
// in the SQLite file -db, hubchat-multiport.db in the working directory
// unless set, so that a chat server started again on a port, after a
// restart or a crash, has that port's history. Several processes may
// share the file (the main one and "custom" ones). -db "" or -db :memory:
// keeps the messages in memory only.
//
// Members share files and images (the client's attach button; see
// chat.Hub.FilesHandler, at /files/ of each chat server): each port's are
// kept in a directory of its own under -files, by default beside the -db
// file (hubchat-multiport-files/8081 for hubchat-multiport.db), so that
// they survive a restart with the history. -files "" turns file sharing
// off; so does -db "" unless -files is set.
//
// The chat servers of one process reach each other. A member sends a
// private message to a user of another server with "/msg bob@8082 hi"
// (on the wire, "to":"bob@8082"): bob receives it from alice@8081, and
// alice her copy; an unknown port or user gets an error frame, and nothing
// is delivered. Names ending in @PORT are therefore refused. The servers
// of -bridge (those started later on its ports too) share one room, named
// after the bridge, through a chat.MemoryBroker: their members see each
// other and every message, tagged with the server it came from, and share
// one directory of files.
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
	"strconv"
	"strings"
	"syscall"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/webserver"
	"github.com/hubchat/chat/sqlitestore"
)

func main() {
	cfg, err := parseArgs(os.Args[1:], os.Stderr)
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
	addr    string // main server
	host    string // chat servers
	servers []int
	bridge  []int // ports whose chat servers share one room
	allow   portRange
	origins []string // extra origins
	hosts   []string // extra host names
	db      string   // SQLite file of the rooms; "" for memory only
	files   string   // directory of the shared files, one subdirectory per port; "" for none
	custom  int      // if not 0: run only a chat server on this port
}

// parseArgs parses the command-line arguments (without the program name),
// writing usage and errors to out. Flags may come before or after
// "custom PORT".
func parseArgs(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("multiport", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: multiport [flags]\n       multiport [flags] custom PORT")
		fs.PrintDefaults()
	}
	cfg := config{}
	fs.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:port` of the main server, which serves the UI")
	fs.StringVar(&cfg.host, "host", "localhost", "`host` the chat servers listen on")
	servers := fs.String("servers", "8081,8082", "comma-separated `ports` of the chat servers to start")
	allow := fs.String("allow", "8083-8099", "`range` of ports the UI may start chat servers on")
	origins := fs.String("origin", "", "comma-separated extra `host:port` origins whose pages may use the chat servers")
	bridge := fs.String("bridge", "", "comma-separated `ports` of chat servers that share one room (a bridge), e.g. 8081,8082")
	hosts := fs.String("hosts", "", "comma-separated extra host `names` (Host header, any port) the servers answer to, besides those of -addr and -host")
	fs.StringVar(&cfg.db, "db", "hubchat-multiport.db", "SQLite `file` that keeps each port's room across restarts; \"\" or :memory: keeps them in memory only")
	files := fs.String("files", "", "`directory` of the shared files, a subdirectory per port (default: beside -db, e.g. hubchat-multiport-files); \"\" turns file sharing off")
	filesSet := false

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return config{}, err
		}
		fs.Visit(func(f *flag.Flag) { filesSet = filesSet || f.Name == "files" })
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(positional) == 0:
	case positional[0] == "custom" && len(positional) == 2:
		p, err := parsePort(positional[1])
		if err != nil {
			return config{}, err
		}
		cfg.custom = p
	default:
		fs.Usage()
		return config{}, fmt.Errorf("unexpected arguments %q", positional)
	}

	var err error
	if cfg.allow, err = parsePortRange(*allow); err != nil {
		return config{}, fmt.Errorf("-allow: %w", err)
	}
	if cfg.servers, err = parsePorts(*servers); err != nil {
		return config{}, fmt.Errorf("-servers: %w", err)
	}
	if cfg.bridge, err = parsePorts(*bridge); err != nil {
		return config{}, fmt.Errorf("-bridge: %w", err)
	}
	cfg.origins = splitList(*origins)
	cfg.hosts = splitList(*hosts)
	if cfg.db == ":memory:" {
		cfg.db = ""
	}
	cfg.files = *files
	if !filesSet && cfg.db != "" {
		cfg.files = strings.TrimSuffix(cfg.db, filepath.Ext(cfg.db)) + "-files"
	}
	return cfg, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for x := range strings.SplitSeq(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// run runs the servers until ctx is done, then shuts them down
// gracefully.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	mainHost, mainPort, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	var store chat.Store
	history, files := "in memory only", "off"
	if cfg.files != "" {
		if files, err = filepath.Abs(cfg.files); err != nil {
			files = cfg.files
		}
	}
	if cfg.db != "" {
		st, err := sqlitestore.Open(ctx, cfg.db, sqlitestore.Options{})
		if err != nil {
			return fmt.Errorf("-db: %w", err)
		}
		defer st.Close() // after the hubs' shutdown, which stores what is left
		store = st
		if history, err = filepath.Abs(cfg.db); err != nil {
			history = cfg.db
		}
	}
	if cfg.custom != 0 {
		// The main UI runs elsewhere, by default at -addr: let its pages in.
		port, err := strconv.Atoi(mainPort)
		if err != nil || port == 0 {
			return fmt.Errorf("-addr %q: custom needs the main server's port", cfg.addr)
		}
		app := newRooms(roomsConfigFor(cfg, port, mainHost, store))
		info, err := app.start(cfg.custom)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "multiport: chat server %s at %s\n", info.Name, info.URL)
		fmt.Fprintf(stdout, "  open the main UI (http://%s/), type %d into Port\n", cfg.addr, info.Port)
		fmt.Fprintf(stdout, "  history: %s\n", history)
		fmt.Fprintf(stdout, "  files: %s\n", files)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), webserver.ShutdownTimeout)
		defer cancel()
		return app.shutdown(sctx)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	app := newRooms(roomsConfigFor(cfg, webserver.Port(ln.Addr()), mainHost, store))
	hs := webserver.New(app.handler()) // the main server: the UI and /api/servers
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	// shutdown stops the chat servers, whose hubs close their WebSockets,
	// then the main server, which ends Serve.
	shutdown := func(serveErr error) error {
		sctx, cancel := context.WithTimeout(context.Background(), webserver.ShutdownTimeout)
		defer cancel()
		err := errors.Join(app.shutdown(sctx), hs.Shutdown(sctx))
		if serveErr == nil {
			serveErr = <-served
		}
		if !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(serveErr, err)
		}
		return err
	}

	fmt.Fprintf(stdout, "multiport: open %s\n", webserver.URL("http", mainHost, ln.Addr(), "/"))
	for _, port := range cfg.servers {
		info, err := app.start(port)
		if err != nil {
			return errors.Join(fmt.Errorf("chat server on port %d: %w", port, err), shutdown(nil))
		}
		fmt.Fprintf(stdout, "  %s: %s\n", info.Name, info.URL)
	}
	if len(cfg.bridge) > 0 {
		fmt.Fprintf(stdout, "  bridged: the chat servers on ports %s share one room\n", portList(cfg.bridge))
	}
	fmt.Fprintf(stdout, "  the UI may start chat servers on ports %v\n", cfg.allow)
	fmt.Fprintf(stdout, "  history: %s\n", history)
	fmt.Fprintf(stdout, "  files: %s\n", files)

	var serveErr error // Serve never returns nil
	select {
	case <-ctx.Done():
	case serveErr = <-served: // Serve failed: shut down the rest all the same
	}
	return shutdown(serveErr)
}

// roomsConfigFor returns the configuration of the chat servers for a main
// UI served on mainPort of mainHost.
func roomsConfigFor(cfg config, mainPort int, mainHost string, store chat.Store) roomsConfig {
	return roomsConfig{
		Host:    cfg.host,
		Origins: append(originsOf(mainPort, mainHost, cfg.host), cfg.origins...),
		Allow:   cfg.allow,
		Hosts:   append(webserver.HostNames(mainHost, cfg.host), cfg.hosts...),
		Store:   store,
		Files:   cfg.files,
		Bridge:  cfg.bridge,
	}
}

// parsePorts parses a comma-separated list of ports; empty items are
// skipped.
func parsePorts(list string) ([]int, error) {
	var ports []int
	for s := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := parsePort(s)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}
