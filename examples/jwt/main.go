// Command jwt serves a chat room for signed-in users. A login page issues
// a JSON Web Token, signed with HS256, in a cookie; the room's
// chat.Options.Authenticate verifies it at every WebSocket upgrade and
// turns it into the member's chat.Identity, whose display name every
// member sees.
//
//	go run ./examples/jwt [-addr localhost:8080] [-ttl 12h] [-key-file path] [-hosts name,...]
//
// Open the printed URL, sign in with a username and a display name, and
// open the room in a second tab: the tabs of one user are one member (one
// join, every message in every tab, the leave when the last one closes).
// GET /metrics serves the room's metrics for Prometheus, as in the other
// examples.
//
// It demonstrates the mechanics, not accounts: anyone may sign in under
// any valid username, with no password (see login). A real program checks
// a password or asks a single sign-on provider there, and keeps its
// signing key secret and stable: -key-file reads it from a file (at least
// 32 bytes). Without it, the program makes a random key at start, so a
// restart signs everyone out.
//
// The token is HS256 only (jwt.WithValidMethods refuses "none", HS512,
// RS256 and every other algorithm), must have an expiry (-ttl, 12 hours by
// default) and the issuer "hubchat-jwt-example", and carries the username
// as "sub" and the display name as "name". The cookie is HttpOnly (no
// script reads it), SameSite=Strict (no other site's page sends it: with
// the chat's same-origin check, that stops cross-site WebSocket
// hijacking), Secure over HTTPS, and expires with the token. A missing,
// expired, tampered or otherwise invalid token gets 401 at the upgrade,
// and the page then sends the user to the login page. A token is checked
// when a connection opens: an open connection outlives its token. POST
// /login and /logout refuse cross-origin requests
// (http.CrossOriginProtection), and the server answers only to the host
// names of -addr and -hosts, against DNS rebinding.
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/webserver"
	"github.com/hubchat/chat/prommetrics"
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
	ttl   time.Duration
	key   []byte   // the HS256 key; random if no -key-file
	hosts []string // the host names the server answers to
}

// minKeyBytes is the shortest signing key accepted: HS256's output size.
const minKeyBytes = 32

// parseFlags parses the command-line arguments (without the program name),
// writing usage and errors to out.
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("jwt", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "localhost:8080", "`host:port` to listen on (port 0 picks a free port)")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long a sign-in lasts: the token's and the cookie's lifetime")
	keyFile := fs.String("key-file", "", "`file` holding the HS256 signing key (at least 32 bytes); default: a random key, so a restart signs everyone out")
	hosts := fs.String("hosts", "", "comma-separated extra host `names` (Host header, any port) the server answers to, besides those of -addr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *ttl <= 0 {
		return config{}, errors.New("-ttl must be positive")
	}
	cfg := config{addr: *addr, ttl: *ttl}
	if *keyFile != "" {
		key, err := os.ReadFile(*keyFile)
		if err != nil {
			return config{}, err
		}
		if len(key) < minKeyBytes {
			return config{}, fmt.Errorf("-key-file %s: %d bytes, want at least %d", *keyFile, len(key), minKeyBytes)
		}
		cfg.key = key
	} else {
		cfg.key = make([]byte, minKeyBytes)
		rand.Read(cfg.key)
	}
	host, _, _ := net.SplitHostPort(*addr) // a bad address fails at Listen
	cfg.hosts = webserver.HostNames(host)
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.hosts = append(cfg.hosts, h)
		}
	}
	return cfg, nil
}

// run serves the chat until ctx is done, then shuts it down gracefully.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	a := newApp(cfg)
	hs := webserver.New(a.handler())
	served := make(chan error, 1) // Serve never returns nil
	go func() { served <- hs.Serve(ln) }()
	host, _, _ := net.SplitHostPort(cfg.addr)
	fmt.Fprintf(stdout, "jwt chat: open %s\n", webserver.URL("http", host, ln.Addr(), "/"))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), webserver.ShutdownTimeout)
	defer cancel()
	// The hub first: http.Server.Shutdown leaves WebSockets alone.
	err = errors.Join(serveErr, a.hub.Shutdown(sctx), hs.Shutdown(sctx))
	if serveErr == nil {
		if e := <-served; !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// Token and cookie.
const (
	cookieName = "hubchat_token"
	issuer     = "hubchat-jwt-example"
)

// claims are a token's claims: the registered ones (sub: the username,
// exp, iat, iss) and the display name as "name", as OpenID Connect has it.
type claims struct {
	Display string `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// An app is the program's handlers around one room.
type app struct {
	hub    *chat.Hub
	key    []byte
	ttl    time.Duration
	hosts  []string
	parser *jwt.Parser
}

func newApp(cfg config) *app {
	a := &app{key: cfg.key, ttl: cfg.ttl, hosts: cfg.hosts}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // "none", HS512, RS256...: refused
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithIssuedAt(),
	)
	a.hub = chat.NewHub(chat.Options{
		Name:         "lobby",
		Authenticate: a.authenticate,
		AllowedHosts: webserver.HostPatterns(cfg.hosts...),
	})
	return a
}

// handler returns the program's routes, for the host names it answers to.
func (a *app) handler() http.Handler {
	csrf := http.NewCrossOriginProtection() // POSTs from other sites' pages get 403
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(a.hub))
	mux.HandleFunc("GET /{$}", a.chatPage)
	mux.HandleFunc("GET /login", a.loginPage)
	mux.Handle("POST /login", csrf.Handler(http.HandlerFunc(a.login)))
	mux.Handle("POST /logout", csrf.Handler(http.HandlerFunc(a.logout)))
	mux.HandleFunc("GET /me", a.me)
	mux.Handle("GET /metrics", webserver.Metrics(prommetrics.NewCollector(a.hub))) // for Prometheus
	client := webui.Handler()                                                      // the web client's chat.js, chat.css and theme.js
	mux.Handle("GET /chat.js", client)
	mux.Handle("GET /chat.css", client)
	mux.Handle("GET /theme.js", client)
	static := http.FileServerFS(pageFiles)
	for _, f := range []string{"/jwt.js", "/jwt.css"} {
		mux.Handle("GET "+f, securityHeaders(static))
	}
	return webserver.AllowHosts(a.hosts, mux)
}

// authenticate is the room's chat.Options.Authenticate: the identity in a
// valid token, or an error (401).
func (a *app) authenticate(r *http.Request) (chat.Identity, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return chat.Identity{}, errors.New("not signed in")
	}
	return a.verify(c.Value)
}

// verify checks a token: HS256 with the key, not expired, from issuer,
// naming a user.
func (a *app) verify(token string) (chat.Identity, error) {
	var c claims
	if _, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.key, nil }); err != nil {
		return chat.Identity{}, fmt.Errorf("invalid token: %w", err)
	}
	if c.Subject == "" {
		return chat.Identity{}, errors.New("invalid token: no subject")
	}
	return chat.Identity{Name: c.Subject, Display: c.Display}, nil
}

// issue returns a token for id, issued at now, and its expiry.
func (a *app) issue(id chat.Identity, now time.Time) (string, time.Time, error) {
	exp := now.Add(a.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		Display: id.Display,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   id.Name,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	})
	s, err := tok.SignedString(a.key)
	return s, exp, err
}

// chatPage serves the room to a signed-in user, and sends anyone else to
// the login page.
func (a *app) chatPage(w http.ResponseWriter, r *http.Request) {
	id, err := a.authenticate(r)
	if err != nil {
		http.Redirect(w, r, "login", http.StatusSeeOther)
		return
	}
	render(w, http.StatusOK, "chat.html", id)
}

// loginForm is what the login page shows.
type loginForm struct {
	Name, Display, Error string
	Expired              bool
}

func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "login.html", loginForm{Expired: r.URL.Query().Has("expired")})
}

// login signs a user in: it checks the form and sets the cookie.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	form := loginForm{Name: r.PostForm.Get("username"), Display: r.PostForm.Get("display")}
	// A demo: anyone may be anyone. A real program checks a password, or
	// asks a single sign-on provider, here.
	id, err := chat.ValidateIdentity(chat.Identity{Name: form.Name, Display: form.Display})
	if err != nil {
		form.Error = strings.TrimPrefix(err.Error(), "chat: ")
		render(w, http.StatusBadRequest, "login.html", form)
		return
	}
	token, exp, err := a.issue(id, time.Now())
	if err != nil {
		http.Error(w, "cannot sign in", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    token,
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(a.ttl / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout signs the user out: it deletes the cookie.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "login", http.StatusSeeOther)
}

// me answers who is signed in, or 401: the page asks when the chat
// connection fails, to tell an expired sign-in from a server that is down.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	id, err := a.authenticate(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"username": id.Name, "display": id.Display})
}

//go:embed page
var page embed.FS

// pageFiles are the static files of the pages: jwt.js and jwt.css.
var pageFiles, _ = fs.Sub(page, "page")

// pages are the HTML templates, which escape what they insert.
var pages = template.Must(template.ParseFS(page, "page/*.html"))

// contentSecurityPolicy allows the pages' own scripts and styles only,
// nothing inline, avatars over https, and forms that post to the server.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: https:; connect-src 'self' ws: wss:; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the pages' security headers on h's responses.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		h.ServeHTTP(w, r)
	})
}

func setSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// render writes the template name with data and the given status.
func render(w http.ResponseWriter, status int, name string, data any) {
	setSecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data) // the templates cannot fail but for a broken connection
}
