// Package multiportapp builds the multiport example: a main server with the
// browser client and an API to list and start chat servers, and any number
// of chat servers, each on its own port with its own [chat.Hub], so that
// messages never cross servers. It lives outside the program so that tests,
// including the browser tests in examples/e2e, can run it in-process on any
// port.
package multiportapp

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/kit/run"
	"github.com/hubchat/chat/examples/kit/webui"
)

//go:embed page
var page embed.FS

// maxRequestBytes caps the body of POST /api/servers.
const maxRequestBytes = 1 << 10

// Errors returned by [App.Start].
var (
	// ErrPortInUse means something, possibly one of the app's own chat
	// servers, already listens on the port.
	ErrPortInUse = errors.New("port in use")
	// ErrClosed means the app has been shut down.
	ErrClosed = errors.New("shutting down")
)

// Config configures an [App].
type Config struct {
	// Host is the host name chat servers listen on and put in their URLs.
	// Empty means "localhost".
	Host string

	// Origins lists the origins, as host:port, whose pages may connect to
	// the chat servers: the main UI's, see [Origins]. They are matched
	// literally. Empty means none besides each chat server's own origin.
	Origins []string

	// Allow is the range of ports POST /api/servers may start chat servers
	// on. The zero range allows none.
	Allow PortRange

	// Hosts lists the host names the main server and the chat servers
	// answer to, whatever the port: a request or upgrade whose Host header
	// names another gets 403. This defeats DNS rebinding, where a hostile
	// page's own name is re-pointed at 127.0.0.1, so that the page is
	// same-origin with the servers. Empty means localhost, 127.0.0.1 and
	// ::1; see [run.HostNames].
	Hosts []string

	// HTTP holds the timeouts of the chat servers' http.Servers.
	HTTP run.Config

	// Logger is passed to every hub. Nil means [slog.Default].
	Logger *slog.Logger
}

// ServerInfo describes one running chat server; it is the JSON of
// GET /api/servers and POST /api/servers.
type ServerInfo struct {
	Name string `json:"name"` // e.g. "Server 1 (8081)"
	Port int    `json:"port"`
	URL  string `json:"url"` // the WebSocket endpoint, e.g. "ws://localhost:8081/ws"
}

// App is the set of chat servers and the main server's handler. Use [New];
// the zero App is not usable. An App is safe for concurrent use.
type App struct {
	cfg     Config
	handler http.Handler

	mu      sync.Mutex
	closed  bool
	servers []chatServer // in start order
}

type chatServer struct {
	info ServerInfo
	srv  *run.Server
}

// New returns an app with no chat servers; add them with [App.Start].
func New(cfg Config) *App {
	if cfg.Host == "" {
		cfg.Host = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = run.HostNames("localhost")
	}
	cfg.Hosts = slices.Clone(cfg.Hosts)
	a := &App{cfg: cfg}
	sub, err := fs.Sub(page, "page")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	// The API changes state on POST: refuse cross-site browser requests.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	mux := http.NewServeMux()
	mux.Handle("/api/servers", csrf.Handler(http.HandlerFunc(a.serveServers)))
	mux.Handle("/", webui.Handler(sub))
	a.handler = run.AllowHosts(cfg.Hosts, mux)
	return a
}

// Handler returns the main server's handler, for Config.Hosts only: the
// client at GET /, and /api/servers, where GET lists the chat servers and POST {"port":N} starts
// one on an allowed, free port and answers 201 with its [ServerInfo].
// Errors are JSON objects {"error":"..."}.
func (a *App) Handler() http.Handler { return a.handler }

// Start starts a chat server with its own hub on the port (0 picks a free
// one) of Config.Host, whatever Config.Allow says. It returns
// [ErrPortInUse] if the port is taken and [ErrClosed] after Shutdown.
func (a *App) Start(port int) (ServerInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ServerInfo{}, ErrClosed
	}
	for _, s := range a.servers {
		if port != 0 && s.info.Port == port {
			return ServerInfo{}, fmt.Errorf("%w: %d already runs %s", ErrPortInUse, port, s.info.Name)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.Host, strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return ServerInfo{}, fmt.Errorf("%w: %d is used by another program", ErrPortInUse, port)
	}
	if err != nil {
		return ServerInfo{}, err
	}
	port = run.Port(ln.Addr())
	info := ServerInfo{
		Name: fmt.Sprintf("Server %d (%d)", len(a.servers)+1, port),
		Port: port,
		URL:  run.URL("ws", a.cfg.Host, ln.Addr(), "/ws"),
	}
	hub := chat.NewHub(chat.Options{
		Name:           info.Name,
		OriginPatterns: quotePatterns(a.cfg.Origins),
		AllowedHosts:   run.HostPatterns(a.cfg.Hosts...),
		Logger:         a.cfg.Logger,
	})
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	a.servers = append(a.servers, chatServer{info: info, srv: run.Serve(ln, mux, a.cfg.HTTP, hub)})
	return info, nil
}

// Servers lists the running chat servers in start order.
func (a *App) Servers() []ServerInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	infos := make([]ServerInfo, len(a.servers))
	for i, s := range a.servers {
		infos[i] = s.info
	}
	return infos
}

// Shutdown stops every chat server: each hub closes its clients with 1001
// (going away), then its HTTP server stops. Later calls to Start fail. It
// returns when all have stopped, or ctx.Err() if ctx ends first.
func (a *App) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	servers := a.servers
	a.servers = nil
	a.mu.Unlock()

	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.srv.Shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *App) serveServers(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, a.Servers())
	case http.MethodPost:
		a.startServer(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET or POST")
	}
}

// startServer handles POST /api/servers {"port":N}.
func (a *App) startServer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Port *int `json:"port"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: at most %d bytes", maxRequestBytes))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, `malformed request: want {"port":N}: `+err.Error())
		return
	}
	if req.Port == nil {
		writeError(w, http.StatusBadRequest, `missing "port": want {"port":N}`)
		return
	}
	port := *req.Port
	if !a.cfg.Allow.Contains(port) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("port %d is outside the allowed range %v", port, a.cfg.Allow))
		return
	}
	info, err := a.Start(port)
	switch {
	case errors.Is(err, ErrPortInUse):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		a.cfg.Logger.Warn("multiport: cannot start chat server", "port", port, "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("cannot start a server on port %d", port))
	default:
		writeJSON(w, http.StatusCreated, info)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // only fails if the client went away
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// PortRange is an inclusive range of TCP ports. The zero PortRange is empty.
type PortRange struct{ First, Last int }

// ParsePortRange parses "8083-8099" or a single port "8083".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hi = lo
	}
	first, err1 := ParsePort(lo)
	last, err2 := ParsePort(hi)
	if err := errors.Join(err1, err2); err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	if first > last {
		return PortRange{}, fmt.Errorf("port range %q: %d > %d", s, first, last)
	}
	return PortRange{first, last}, nil
}

// ParsePort parses a port number from 1 to 65535.
func ParsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("invalid port %q: want a number from 1 to 65535", s)
	}
	return p, nil
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port int) bool {
	return r.First > 0 && r.First <= port && port <= r.Last
}

// String returns the range as ParsePortRange accepts it.
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Origins returns the host:port origins a browser may report for a page
// served on port of each host, one for each of [run.HostNames](hosts...).
func Origins(port int, hosts ...string) []string {
	var out []string
	for _, h := range run.HostNames(hosts...) {
		out = append(out, net.JoinHostPort(h, strconv.Itoa(port)))
	}
	return out
}

// quotePatterns escapes literal origins for chat.Options.OriginPatterns.
func quotePatterns(origins []string) []string {
	out := make([]string, len(origins))
	for i, o := range origins {
		out[i] = run.Quote(o)
	}
	return out
}
