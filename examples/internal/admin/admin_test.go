package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/admin"
	"github.com/hubchat/chat/examples/internal/chattest"
)

func TestMain(m *testing.M) { chattest.Main(m) }

// start serves a hub's chat and its admin API; it returns their URLs.
func start(t *testing.T) (hub *chat.Hub, wsURL, adminURL string) {
	t.Helper()
	hub = chat.NewHub(chat.Options{RateLimit: -1})
	chatSrv := httptest.NewServer(chat.NewServer(hub))
	adminSrv := httptest.NewServer(admin.Handler(hub))
	t.Cleanup(func() {
		hub.Shutdown(context.Background())
		chatSrv.Close()
		adminSrv.Close()
	})
	return hub, chattest.WSURL(chatSrv.URL), adminSrv.URL
}

// post posts form to the admin API and returns the status and body.
func post(t *testing.T, adminURL, path string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", adminURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestModerate(t *testing.T) {
	hub, ws, api := start(t)
	alice := chattest.Join(t, ws, "", "alice")
	bob := chattest.Join(t, ws, "", "bob")
	alice.ReadUntil("join")

	call := func(path string, want int, kv ...string) string {
		t.Helper()
		form := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		code, body := post(t, api, path, form, nil)
		if code != want {
			t.Errorf("%s %v: %d %q, want %d", path, kv, code, body, want)
		}
		return body
	}

	call("/send", 204, "user", "bob", "body", "hello bob")
	if f := bob.ReadUntil("message"); f.Body != "hello bob" || !f.System || f.To != "bob" {
		t.Errorf("bob got %+v", f)
	}
	call("/mute", 204, "user", "bob", "for", "1h")
	bob.Say("hi")
	if f := bob.ReadUntil("error"); !strings.HasPrefix(f.Error, "you are muted") {
		t.Errorf("muted bob got %+v", f)
	}
	call("/unmute", 204, "user", "bob")
	call("/kick", 204, "user", "bob", "reason", "calm down")
	if f := bob.ReadUntil("error"); f.Error != "kicked by a moderator: calm down" {
		t.Errorf("kicked bob got %+v", f)
	}
	if code := bob.CloseCode(); code != 1008 {
		t.Errorf("bob's close code %d", code)
	}
	alice.ReadUntil("leave")
	call("/ban", 204, "user", "bob", "for", "1h", "reason", "spam")
	c, _, err := chattest.Dial(t, ws+"?username=bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if f := c.ReadUntil("error"); !strings.HasPrefix(f.Error, `username "bob" is banned until`) {
		t.Errorf("banned bob got %+v", f)
	}
	call("/unban", 204, "user", "bob")
	chattest.Join(t, ws, "", "bob")

	// Bad input.
	for _, tc := range []struct {
		path string
		code int
		kv   []string
	}{
		{"/kick", 404, []string{"user", "nobody"}},
		{"/send", 404, []string{"user", "nobody", "body", "hi"}},
		{"/send", 400, []string{"user", "bob"}},
		{"/kick", 400, []string{}},
		{"/ban", 400, []string{"user", "bob"}},
		{"/ban", 400, []string{"user", "bob", "for", "-1h"}},
		{"/mute", 400, []string{"user", "bob", "for", "soon"}},
	} {
		call(tc.path, tc.code, tc.kv...)
	}
	resp, err := http.Get(api + "/kick?user=bob")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}

	// Browsers are refused: no page may post here.
	for _, h := range []http.Header{{"Origin": {"http://evil.example"}}, {"Sec-Fetch-Site": {"cross-site"}}} {
		if code, _ := post(t, api, "/kick", url.Values{"user": {"bob"}}, h); code != 403 {
			t.Errorf("request with %v: %d, want 403", h, code)
		}
	}
	if err := hub.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	call("/unban", 503, "user", "bob")
}

func TestLoopbackOnly(t *testing.T) {
	hub := chat.NewHub(chat.Options{})
	defer hub.Close()
	h := admin.Handler(hub)
	for addr, want := range map[string]int{"192.0.2.7:4000": 403, "[2001:db8::1]:4000": 403, "127.0.0.1:4000": 404, "[::1]:4000": 404} {
		req := httptest.NewRequest("POST", "/kick", strings.NewReader("user=bob"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("from %s: %d, want %d", addr, rec.Code, want)
		}
	}
}
