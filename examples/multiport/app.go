package main

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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/webserver"
	"github.com/hubchat/chat/prommetrics"
	"github.com/hubchat/chat/webui"
)

//go:embed page
var page embed.FS

// maxRequestBytes caps the body of POST /api/servers.
const maxRequestBytes = 1 << 10

// Errors returned by [rooms.start].
var (
	// errPortInUse means something, possibly one of the app's own chat
	// servers, already listens on the port.
	errPortInUse = errors.New("port in use")
	// errClosed means the app has been shut down.
	errClosed = errors.New("shutting down")
)

// roomsConfig configures [rooms].
type roomsConfig struct {
	// Host is the host name chat servers listen on and put in their URLs.
	// Empty means "localhost".
	Host string

	// Origins lists the origins, as host:port, whose pages may connect to
	// the chat servers: the main UI's, see [originsOf]. They are matched
	// literally. Empty means none besides each chat server's own origin.
	Origins []string

	// Allow is the range of ports POST /api/servers may start chat servers
	// on. The zero range allows none.
	Allow portRange

	// Hosts lists the host names the main server and the chat servers
	// answer to, whatever the port: a request or upgrade whose Host header
	// names another gets 403. This defeats DNS rebinding, where a hostile
	// page's own name is re-pointed at 127.0.0.1, so that the page is
	// same-origin with the servers. Empty means localhost, 127.0.0.1 and
	// ::1; see [webserver.HostNames].
	Hosts []string

	// Store keeps the messages of every chat server's room, named after
	// its port ("port 8081"), so that a chat server started again on a port
	// has that port's history, whatever its place in the start order. Nil
	// means memory only.
	Store chat.Store

	// Files is the directory of the files members share, with a
	// subdirectory for each chat server's port, so that a chat server
	// started again on a port has that port's files. Empty means file
	// sharing is off.
	Files string

	// Bridge lists the ports whose chat servers share one room, through
	// one [chat.MemoryBroker]: those in it that run, whenever started.
	// Empty means every chat server is a room of its own.
	Bridge []int

	// Logger is passed to every hub. Nil means [slog.Default].
	Logger *slog.Logger
}

// serverInfo describes one running chat server; it is the JSON of
// GET /api/servers and POST /api/servers.
type serverInfo struct {
	Name string `json:"name"` // e.g. "Server 1 (8081)"
	Port int    `json:"port"`
	URL  string `json:"url"` // the WebSocket endpoint, e.g. "ws://localhost:8081/ws"
}

// rooms is the multiport app: any number of chat servers, each with its
// own [chat.Hub] on its own port, one room per port but for those of
// roomsConfig.Bridge, which share one; the routing of private messages
// between servers (see route.go); and the main server's handler, which
// serves the browser client, an API to list and start chat servers, and
// the metrics of every hub. Use [newRooms]; the zero rooms is not usable.
// It is safe for concurrent use.
type rooms struct {
	cfg     roomsConfig
	h       http.Handler           // the main server's
	metrics *prommetrics.Collector // every hub's, labelled with its port (see portHub)
	broker  *chat.MemoryBroker     // of the bridge, if any

	mu      sync.Mutex
	closed  bool
	servers []*chatServer // in start order
}

// chatServer is one room: a hub and the http.Server of its port.
type chatServer struct {
	info   serverInfo
	hub    *chat.Hub
	hs     *http.Server
	served chan error // hs.Serve's result
}

// newRooms returns an app with no chat servers; add them with
// [rooms.start].
func newRooms(cfg roomsConfig) *rooms {
	if cfg.Host == "" {
		cfg.Host = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = webserver.HostNames("localhost")
	}
	cfg.Hosts = slices.Clone(cfg.Hosts)
	cfg.Bridge = slices.Clone(cfg.Bridge)
	a := &rooms{cfg: cfg, metrics: prommetrics.NewCollector()}
	if len(cfg.Bridge) > 0 {
		a.broker = chat.NewMemoryBroker()
	}
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
	mux.Handle("GET /metrics", webserver.Metrics(a.metrics)) // every room's
	// The page (index.html, multiport.js) with the webui client's chat.js
	// and chat.css.
	mux.Handle("/", webui.PageHandler(sub))
	a.h = webserver.AllowHosts(cfg.Hosts, mux)
	return a
}

// handler returns the main server's handler, for roomsConfig.Hosts only:
// the client at GET /; /api/servers, where GET lists the chat servers and
// POST {"port":N} starts one on an allowed, free port and answers 201 with
// its [serverInfo] (errors are JSON objects {"error":"..."}); and GET
// /metrics, the metrics of every chat server's hub for Prometheus, each
// labelled with its room ("port 8081").
func (a *rooms) handler() http.Handler { return a.h }

// start starts a chat server with its own hub on the port (0 picks a free
// one) of roomsConfig.Host, whatever roomsConfig.Allow says. It returns
// [errPortInUse] if the port is taken and [errClosed] after shutdown.
func (a *rooms) start(port int) (serverInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return serverInfo{}, errClosed
	}
	for _, s := range a.servers {
		if port != 0 && s.info.Port == port {
			return serverInfo{}, fmt.Errorf("%w: %d already runs %s", errPortInUse, port, s.info.Name)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.Host, strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return serverInfo{}, fmt.Errorf("%w: %d is used by another program", errPortInUse, port)
	}
	if err != nil {
		return serverInfo{}, err
	}
	port = webserver.Port(ln.Addr())
	s := &chatServer{
		info: serverInfo{
			Name: fmt.Sprintf("Server %d (%d)", len(a.servers)+1, port),
			Port: port,
			URL:  webserver.URL("ws", a.cfg.Host, ln.Addr(), "/ws"),
		},
		served: make(chan error, 1),
	}
	opts := chat.Options{
		Name:           fmt.Sprintf("port %d", port), // the room in the Store
		Store:          a.cfg.Store,
		OriginPatterns: quotePatterns(a.cfg.Origins), // the main page's: for uploads too
		AllowedHosts:   webserver.HostPatterns(a.cfg.Hosts...),
		Origin:         strconv.Itoa(port),
		CheckName:      checkName,
		OnMessage:      a.route(port),
		Logger:         a.cfg.Logger,
	}
	filesDir := strconv.Itoa(port)
	if a.bridged(port) {
		s.info.Name = fmt.Sprintf("Server %d (%d, bridged)", len(a.servers)+1, port)
		opts.Name = "bridge " + portList(a.cfg.Bridge) // one room for every hub of the bridge
		opts.Broker = a.broker
		filesDir = "bridge"
	}
	if a.cfg.Files != "" {
		opts.Files = chat.DirFiles(filepath.Join(a.cfg.Files, filesDir))
	}
	s.hub = chat.NewHub(opts)
	if err := a.metrics.Add(portHub{s.hub, port}); err != nil { // ports are unique: never
		ln.Close()
		return serverInfo{}, errors.Join(err, s.hub.Close())
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(s.hub))
	mux.Handle("/files/", webserver.Files(s.hub.FilesHandler())) // 404 with file sharing off
	s.hs = webserver.New(mux)
	go func() { s.served <- s.hs.Serve(ln) }()
	a.servers = append(a.servers, s)
	return s.info, nil
}

// list lists the running chat servers in start order.
func (a *rooms) list() []serverInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	infos := make([]serverInfo, len(a.servers))
	for i, s := range a.servers {
		infos[i] = s.info
	}
	return infos
}

// shutdown stops every chat server: each hub closes its clients with 1001
// (going away), then its HTTP server stops. Later calls to start fail. It
// returns when all have stopped, or ctx.Err() if ctx ends first.
func (a *rooms) shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	servers := a.servers
	a.servers = nil
	a.mu.Unlock()

	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shutdown stops the chat server: the hub first, which closes the
// WebSockets that http.Server.Shutdown leaves alone, then the HTTP server.
func (s *chatServer) shutdown(ctx context.Context) error {
	err := errors.Join(s.hub.Shutdown(ctx), s.hs.Shutdown(ctx))
	select {
	case serr := <-s.served:
		if !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(serr, err)
		}
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

func (a *rooms) serveServers(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, a.list())
	case http.MethodPost:
		a.startServer(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET or POST")
	}
}

// startServer handles POST /api/servers {"port":N}.
func (a *rooms) startServer(w http.ResponseWriter, r *http.Request) {
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
	if !a.cfg.Allow.contains(port) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("port %d is outside the allowed range %v", port, a.cfg.Allow))
		return
	}
	info, err := a.start(port)
	switch {
	case errors.Is(err, errPortInUse):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, errClosed):
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

// portRange is an inclusive range of TCP ports. The zero portRange is empty.
type portRange struct{ First, Last int }

// parsePortRange parses "8083-8099" or a single port "8083".
func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hi = lo
	}
	first, err1 := parsePort(lo)
	last, err2 := parsePort(hi)
	if err := errors.Join(err1, err2); err != nil {
		return portRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	if first > last {
		return portRange{}, fmt.Errorf("port range %q: %d > %d", s, first, last)
	}
	return portRange{first, last}, nil
}

// parsePort parses a port number from 1 to 65535.
func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("invalid port %q: want a number from 1 to 65535", s)
	}
	return p, nil
}

// Contains reports whether port is in the range.
func (r portRange) contains(port int) bool {
	return r.First > 0 && r.First <= port && port <= r.Last
}

// String returns the range as parsePortRange accepts it.
func (r portRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Origins returns the host:port origins a browser may report for a page
// served on port of each host, one for each of [webserver.HostNames](hosts...).
func originsOf(port int, hosts ...string) []string {
	var out []string
	for _, h := range webserver.HostNames(hosts...) {
		out = append(out, net.JoinHostPort(h, strconv.Itoa(port)))
	}
	return out
}

// quotePatterns escapes literal origins for chat.Options.OriginPatterns.
func quotePatterns(origins []string) []string {
	out := make([]string, len(origins))
	for i, o := range origins {
		out[i] = webserver.Quote(o)
	}
	return out
}

// portHub is a hub as the metrics see it: labelled room="port N" after its
// port, since the hubs of a bridge share one room's name.
type portHub struct {
	*chat.Hub
	port int
}

// Name returns the hub's label in the metrics.
func (h portHub) Name() string { return fmt.Sprintf("port %d", h.port) }
