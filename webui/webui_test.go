package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hubchat/chat/webui"
)

// get serves one request with h and returns the response.
func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, path, nil))
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHandler(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
		contentType  string
		contains     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `data-hubchat-ws="ws"`},
		{"GET", "/chat.js", 200, "text/javascript; charset=utf-8", "textContent"},
		{"GET", "/chat.css", 200, "text/css; charset=utf-8", ".msg.mine"},
		{"GET", "/theme.js", 200, "text/javascript; charset=utf-8", "prefers-color-scheme"},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/index.html", 301, "", ""}, // to ./, as http.FileServer does
		{"GET", "/nope", 404, "text/plain; charset=utf-8", "not found"},
		{"GET", "/../go.mod", 404, "text/plain; charset=utf-8", ""},
		{"POST", "/", 405, "text/plain; charset=utf-8", "method not allowed"},
		{"DELETE", "/chat.js", 405, "text/plain; charset=utf-8", "method not allowed"},
	}
	h := webui.Handler()
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := get(t, h, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Type"); tc.contentType != "" && got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if tc.status == 405 {
				if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow = %q, want GET, HEAD", got)
				}
				return
			}
			if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self';") ||
				strings.Contains(got, "unsafe-inline") {
				t.Errorf("Content-Security-Policy = %q, want scripts from the page's origin only", got)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
		})
	}
}

// TestPageHandler: a page's files replace the client's of the same name
// and add to them; the client's others are still served.
func TestPageHandler(t *testing.T) {
	page := fstest.MapFS{
		"index.html": {Data: []byte(`<main id="mine"></main>`)},
		"page.js":    {Data: []byte(`// page`)},
	}
	h := webui.PageHandler(page)
	for path, want := range map[string]string{
		"/":         `<main id="mine"></main>`,
		"/page.js":  "// page",
		"/chat.js":  "window.HubChat",
		"/chat.css": "@media",
		"/theme.js": "hubchat.theme",
	} {
		resp, body := get(t, h, "GET", path)
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %s, body %.40q; want 200 and %q", path, resp.Status, body, want)
		}
	}
	if resp, _ := get(t, h, "GET", "/nope.js"); resp.StatusCode != 404 {
		t.Errorf("GET /nope.js: %s, want 404", resp.Status)
	}
	if resp, body := get(t, webui.PageHandler(nil), "GET", "/"); resp.StatusCode != 200 || !strings.Contains(body, "data-hubchat-ws") {
		t.Errorf("PageHandler(nil) GET /: %s, want the client's page", resp.Status)
	}
}

func TestFS(t *testing.T) {
	if err := fstest.TestFS(webui.FS(), "index.html", "chat.js", "chat.css", "theme.js"); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyHost: the page may load images from and upload to its own
// host on any port (chat servers of other ports share files), and a Host
// header cannot add anything else to the policy.
func TestPolicyHost(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"localhost:8080", "img-src 'self' data: https: localhost:*; connect-src 'self' ws: wss: localhost:*;"},
		{"chat.example.com", "img-src 'self' data: https: chat.example.com:*; connect-src 'self' ws: wss: chat.example.com:*;"},
		{"127.0.0.1:8080", "img-src 'self' data: https: 127.0.0.1:*; connect-src 'self' ws: wss: 127.0.0.1:*;"},
		{"[::1]:8080", "img-src 'self' data: https:; connect-src 'self' ws: wss:;"},
		{"evil; script-src *:8080", "img-src 'self' data: https:; connect-src 'self' ws: wss:;"},
		{"", "img-src 'self' data: https:; connect-src 'self' ws: wss:;"},
	} {
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		webui.Handler().ServeHTTP(rec, req)
		if got := rec.Header().Get("Content-Security-Policy"); !strings.Contains(got, tc.want) || !strings.Contains(got, "script-src 'self';") {
			t.Errorf("Host %q: Content-Security-Policy %q, want it to contain %q", tc.host, got, tc.want)
		}
	}
}

// TestThemeBeforePaint: the page loads theme.js in its head as a plain
// script (no defer, no async) before its style sheet, so that the chosen
// theme applies before the first paint.
func TestThemeBeforePaint(t *testing.T) {
	_, page := get(t, webui.Handler(), "GET", "/")
	head, _, ok := strings.Cut(page, "</head>")
	script := strings.Index(head, `<script src="theme.js"></script>`)
	css := strings.Index(head, `<link rel="stylesheet" href="chat.css">`)
	if !ok || script < 0 || css < 0 || script > css {
		t.Errorf("the page's head does not load theme.js, undeferred, before chat.css:\n%s", head)
	}
}
