package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/chattest"
	"github.com/hubchat/chat/examples/internal/webserver"
)

func TestMain(m *testing.M) { chattest.Main(m) }

// testKey is the signing key of the tests' app.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// startApp serves a new app with testKey and returns it and its URL
// (http://127.0.0.1:port, no trailing slash).
func startApp(t *testing.T) (*app, string) {
	t.Helper()
	a := newApp(config{key: testKey, ttl: time.Hour, hosts: webserver.HostNames("127.0.0.1")})
	hs := httptest.NewServer(a.handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
		defer cancel()
		if err := a.hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return a, hs.URL
}

// client returns an HTTP client that keeps cookies and does not follow
// redirects.
func client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       chattest.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signIn posts the login form and returns the response, its body read.
func signIn(t *testing.T, c *http.Client, base, name, display string) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(base+"/login", url.Values{"username": {name}, "display": {display}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestLogin(t *testing.T) {
	_, base := startApp(t)
	c := client(t)

	// Signed out, the room sends you to the login page.
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / signed out: %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}

	before := time.Now()
	resp, _ = signIn(t, c, base, "alice", `Alice "<script>"`)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == cookieName {
			ck = k
		}
	}
	if ck == nil {
		t.Fatal("no token cookie")
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge != 3600 ||
		ck.Expires.Before(before.Add(time.Hour-time.Minute)) || ck.Expires.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, expiring in an hour", ck)
	}
	// The token: HS256, the username as sub, the display name as name,
	// an expiry.
	var cl claims
	tok, err := jwt.ParseWithClaims(ck.Value, &cl, func(*jwt.Token) (any, error) { return testKey, nil })
	if err != nil || tok.Method.Alg() != "HS256" || cl.Subject != "alice" || cl.Display != `Alice "<script>"` ||
		cl.ExpiresAt == nil || cl.Issuer != issuer {
		t.Errorf("token %+v, claims %+v, %v", tok.Header, cl, err)
	}

	// Signed in, the room's page names you, escaped.
	resp, err = c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<strong>Alice &#34;&lt;script&gt;&#34;</strong> (alice)") {
		t.Errorf("GET / signed in: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	// Signing out deletes the cookie.
	resp, err = c.Post(base+"/logout", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d, want 303", resp.StatusCode)
	}
	u, _ := url.Parse(base)
	if got := c.Jar.Cookies(u); len(got) != 0 {
		t.Errorf("cookies after logout: %v", got)
	}
}

func TestLoginRefused(t *testing.T) {
	_, base := startApp(t)
	for _, tc := range []struct {
		name, username, display, want string
	}{
		{"empty name", "", "Alice", "invalid username: empty"},
		{"invisible name", "al\u200bice", "", "invisible character U+200B"},
		{"long display name", "alice", strings.Repeat("x", 65), "invalid display name: 65 characters"},
		{"invisible display name", "alice", "Al\u2066ice", "invisible character U+2066"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := signIn(t, client(t), base, tc.username, tc.display)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), tc.want) {
				t.Errorf("%d, want 400 saying %q:\n%s", resp.StatusCode, tc.want, body)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("cookies set: %v", resp.Cookies())
			}
		})
	}

	// Another site's page cannot sign you in (or out).
	for _, path := range []string{"/login", "/logout"} {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader("username=mallory"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("cross-site POST %s: %d, cookies %v; want 403, none", path, resp.StatusCode, resp.Cookies())
		}
	}
}

// sign returns a token with the given claims, signed by method with key.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialWith opens the chat with the token cookie (none if token is "").
func dialWith(t *testing.T, base, token string) (*chattest.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Cookie", cookieName+"="+token)
	}
	return chattest.DialHeader(t, chattest.WSURL(base)+"/ws", h)
}

// TestTokens: the chat accepts a valid token and answers 401 to a missing,
// expired, tampered, wrongly signed or wrong-algorithm one.
func TestTokens(t *testing.T) {
	a, base := startApp(t)
	now := time.Now()
	valid := func(sub, display string) claims {
		return claims{Display: display, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}}
	}
	good, _, err := a.issue(chat.Identity{Name: "alice", Display: "Alice"}, now)
	if err != nil {
		t.Fatal(err)
	}

	// A valid token: the member joins under its name, with its display name.
	alice, _, err := dialWith(t, base, good)
	if err != nil {
		t.Fatal(err)
	}
	if f := alice.ReadUntil("join"); f.Username != "alice" || f.Display != "Alice" {
		t.Errorf("join %+v, want alice, Alice", f)
	}

	expired := valid("bob", "")
	expired.IssuedAt = jwt.NewNumericDate(now.Add(-2 * time.Hour))
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
	noExpiry := valid("bob", "")
	noExpiry.ExpiresAt = nil
	otherIssuer := valid("bob", "")
	otherIssuer.Issuer = "someone-else"
	noSubject := valid("", "Nobody")

	// Tampered: alice's token with its payload changed to bob's, the
	// signature kept.
	parts := strings.Split(good, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"alice"`, `"bob"`, 1)))
	tampered := strings.Join(parts, ".")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
	}{
		{"missing", ""},
		{"garbage", "not.a.token"},
		{"expired", sign(t, jwt.SigningMethodHS256, testKey, expired)},
		{"without expiry", sign(t, jwt.SigningMethodHS256, testKey, noExpiry)},
		{"tampered", tampered},
		{"signed with another key", sign(t, jwt.SigningMethodHS256, []byte("another key, just as long as it is"), valid("bob", ""))},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid("bob", ""))},
		{"HS512 with the same key", sign(t, jwt.SigningMethodHS512, testKey, valid("bob", ""))},
		{"HS384 with the same key", sign(t, jwt.SigningMethodHS384, testKey, valid("bob", ""))},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, valid("bob", ""))},
		{"another issuer", sign(t, jwt.SigningMethodHS256, testKey, otherIssuer)},
		{"no subject", sign(t, jwt.SigningMethodHS256, testKey, noSubject)},
		// Valid, but the display name is over the chat's cap: the chat
		// refuses it rather than cut it.
		{"display name over the cap", sign(t, jwt.SigningMethodHS256, testKey, valid("bob", strings.Repeat("B", 65)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := dialWith(t, base, tc.token)
			if err == nil {
				t.Fatal("upgrade succeeded, want 401")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("upgrade: %v, response %v; want 401", err, resp)
			}
		})
	}

	// The page's check of the sign-in says the same.
	for token, want := range map[string]int{good: 200, tampered: 401, "": 401} {
		req, _ := http.NewRequest("GET", base+"/me", nil)
		if token != "" {
			req.Header.Set("Cookie", cookieName+"="+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /me: %d, want %d", resp.StatusCode, want)
		}
	}
}

// TestTabs: two connections with one user's cookie are one member; the
// room sees one join, both get every message, and the leave comes with
// the last.
func TestTabs(t *testing.T) {
	_, base := startApp(t)
	token := func(name, display string) string {
		resp, _ := signIn(t, client(t), base, name, display)
		for _, k := range resp.Cookies() {
			if k.Name == cookieName {
				return k.Value
			}
		}
		t.Fatalf("no cookie for %s", name)
		return ""
	}
	aliceTok, bobTok := token("alice", "Alice"), token("bob", "")
	tab1, _, err := dialWith(t, base, aliceTok)
	if err != nil {
		t.Fatal(err)
	}
	tab1.ReadUntil("history")
	bob, _, err := dialWith(t, base, bobTok)
	if err != nil {
		t.Fatal(err)
	}
	if u := bob.ReadUntil("users"); u.Profiles["alice"].Display != "Alice" {
		t.Errorf("bob's snapshot %+v lacks alice's display name", u)
	}
	bob.ReadUntil("history")
	tab1.ReadUntil("join") // bob's

	tab2, _, err := dialWith(t, base, aliceTok)
	if err != nil {
		t.Fatal(err)
	}
	if f := tab2.ReadUntil("join"); f.Username != "alice" {
		t.Errorf("tab 2's own join: %+v", f)
	}
	tab2.ReadUntil("history")
	tab2.Say("from tab 2")
	for i, c := range []*chattest.Conn{tab1, tab2, bob} {
		// The next frame is the message: nobody saw a second join.
		if f, err := c.Read(); err != nil || f.Type != "message" || f.Username != "alice" || f.Body != "from tab 2" {
			t.Errorf("connection %d: %+v, %v; want alice's message", i, f, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil || cfg.addr != "localhost:8080" || cfg.ttl != 12*time.Hour || len(cfg.key) != minKeyBytes {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, testKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := parseFlags([]string{"-key-file", keyFile, "-ttl", "1h"}, io.Discard); err != nil || string(cfg.key) != string(testKey) || cfg.ttl != time.Hour {
		t.Errorf("-key-file: %+v, %v", cfg, err)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-key-file", short}, {"-ttl", "0"}, {"-ttl", "-1h"}, {"extra"}, {"-key-file", filepath.Join(t.TempDir(), "none")}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}

// TestRun: the program serves until its context ends, then shuts down.
func TestRun(t *testing.T) {
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, pw)
		pw.Close()
	}()
	line := make([]byte, 256)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	page := strings.TrimSpace(strings.TrimPrefix(string(line[:n]), "jwt chat: open "))
	resp, err := client(t).Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET %s: %d, want 303 to the login page", page, resp.StatusCode)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	case <-time.After(chattest.Timeout):
		t.Fatal("run did not return after its context ended")
	}
	if _, _, err := websocket.DefaultDialer.Dial(chattest.WSURL(page)+"ws", nil); err == nil {
		t.Error("the chat still answers after run returned")
	}
}

// TestMetrics: GET /metrics serves the room's metrics.
func TestMetrics(t *testing.T) {
	_, url := startApp(t)
	chattest.WaitMetrics(t, url+"/metrics", map[string]string{
		`hubchat_members{room="lobby"}`:     "0",
		`hubchat_connections{room="lobby"}`: "0",
	})
}
