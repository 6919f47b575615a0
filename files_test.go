package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

// fileServer is a hub with file sharing behind an httptest.Server: the
// chat at /ws, the files handler at /files/.
type fileServer struct {
	*testServer
	dir   string // DirFiles' directory
	files string // http://127.0.0.1:port/files/
}

// startFiles starts a hub with opts and, unless opts.Files is set, a
// DirFiles in a fresh directory.
func startFiles(t *testing.T, opts chat.Options) *fileServer {
	t.Helper()
	dir := t.TempDir()
	if opts.Files == nil {
		opts.Files = chat.DirFiles(dir)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	hub := chat.NewHub(opts)
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.Handle("/files/", hub.FilesHandler())
	ts := serveHub(t, hub, mux, "/ws")
	return &fileServer{testServer: ts, dir: dir, files: ts.http.URL + "/files/"}
}

// joinUp joins as name and returns the connection and its upload token,
// from the upload frame that follows the welcome.
func (s *fileServer) joinUp(t *testing.T, name string) (*conn, string) {
	t.Helper()
	c := s.joinAs(t, name)
	up := c.next()
	if up.Type != "upload" || up.Token == "" || up.URL != "files/" || up.Max <= 0 {
		t.Fatalf("%s: frame after the welcome = %+v, want the upload frame", name, up)
	}
	return c, up.Token
}

// response is an HTTP response, read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorText returns the "error" of a JSON error response.
func (r response) errorText() string {
	var e struct{ Error string }
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

// do sends req and reads the response.
func do(t *testing.T, req *http.Request) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// uploadReq returns an upload request of content named name with token
// (none if "").
func (s *fileServer) uploadReq(t *testing.T, token, name string, content io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.files+"?name="+url.QueryEscape(name), content)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(chat.UploadTokenHeader, token)
	}
	return req
}

// upload uploads content named name with token and returns the response.
func (s *fileServer) upload(t *testing.T, token, name string, content []byte) response {
	t.Helper()
	return do(t, s.uploadReq(t, token, name, bytes.NewReader(content)))
}

// mustUpload uploads content and returns the file's object.
func (s *fileServer) mustUpload(t *testing.T, token, name string, content []byte) fileObj {
	t.Helper()
	r := s.upload(t, token, name, content)
	if r.status != http.StatusCreated {
		t.Fatalf("upload of %q: %d %s, want 201", name, r.status, r.body)
	}
	var f fileObj
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("upload of %q: %v in %s", name, err, r.body)
	}
	return f
}

// get downloads the file at the URL u, relative to the WebSocket
// endpoint, as a client resolves a file's "url".
func (s *fileServer) get(t *testing.T, u string) response {
	t.Helper()
	base, err := url.Parse(s.http.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := base.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, ref.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// stored lists what DirFiles' directory holds, temporary files included.
func (s *fileServer) stored(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(s.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// pngImage returns a small PNG image.
func pngImage(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sendFile sends a message with the file id and body.
func (c *conn) sendFile(body, id string) {
	c.send(map[string]string{"type": "message", "body": body, "file": id})
}

// TestFileSharing: an upload, a message that shares it, its download, and
// both again after a restart with the Store and the directory.
func TestFileSharing(t *testing.T) {
	t.Parallel()
	st, dir := storetest.NewMemory(), t.TempDir()
	opts := chat.Options{Store: st, Files: chat.DirFiles(dir)}
	s := startFiles(t, opts)
	alice, tok := s.joinUp(t, "alice")
	bob, _ := s.joinUp(t, "bob")
	alice.next() // bob's join

	img := pngImage(t)
	f := s.mustUpload(t, tok, "cat.png", img)
	want := fileObj{ID: f.ID, Name: "cat.png", Size: int64(len(img)), Type: "image/png", URL: "files/" + f.ID}
	diff(t, "upload response", want, f)

	alice.sendFile("look", f.ID)
	wantMsg := frame{Type: "message", Username: "alice", Body: "look", File: &want}
	diff(t, "alice's message at bob", wantMsg, bob.next())
	diff(t, "alice's echo", wantMsg, alice.next())

	// A file without a body, and a body of spaces, which goes as none.
	txt := s.mustUpload(t, tok, "notes.txt", []byte("some notes\n"))
	alice.sendFile("  ", txt.ID)
	wantTxt := fileObj{ID: txt.ID, Name: "notes.txt", Size: 11, Type: "text/plain; charset=utf-8", URL: "files/" + txt.ID}
	diff(t, "a file alone", frame{Type: "message", Username: "alice", File: &wantTxt}, bob.next())

	r := s.get(t, f.URL)
	if r.status != http.StatusOK || !bytes.Equal(r.body, img) {
		t.Fatalf("GET %s: %d, %d bytes, want 200 and the image", f.URL, r.status, len(r.body))
	}
	for k, v := range map[string]string{
		"Content-Type":           "image/png",
		"Content-Disposition":    `inline; filename=cat.png`,
		"X-Content-Type-Options": "nosniff",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("GET image: %s = %q, want %q", k, got, v)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") {
		t.Errorf("GET image: Content-Security-Policy %q, want default-src 'none' and sandbox", csp)
	}
	r = s.get(t, txt.URL)
	if r.header.Get("Content-Disposition") != "attachment; filename=notes.txt" || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET text: %v, want an attachment of type application/octet-stream", r.header)
	}

	// A restart: the history and the files are back.
	alice.ws.Close()
	bob.ws.Close()
	ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
	defer cancel()
	if err := s.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := startFiles(t, opts)
	carol := s2.dial(t, "username=carol")
	carol.nextN(2) // join, users
	hist := carol.next()
	if hist.Messages == nil || len(*hist.Messages) != 2 {
		t.Fatalf("history after the restart: %+v, want the two messages", hist)
	}
	diff(t, "the history's first message", wantMsg, (*hist.Messages)[0])
	if r := s2.get(t, (*hist.Messages)[0].File.URL); r.status != http.StatusOK || !bytes.Equal(r.body, img) {
		t.Errorf("GET after the restart: %d, %d bytes, want 200 and the image", r.status, len(r.body))
	}
}

// TestDisguisedUploads: the type is sniffed from the content, never taken
// from the name or the request, and whatever is not a raster image is
// served as an attachment.
func TestDisguisedUploads(t *testing.T) {
	t.Parallel()
	s := startFiles(t, chat.Options{UploadRate: -1})
	alice, tok := s.joinUp(t, "alice")
	for _, tc := range []struct {
		name, content, wantType string
	}{
		{"cat.png", "<!DOCTYPE html><html><script>alert(1)</script></html>", "text/html; charset=utf-8"},
		{"logo.svg", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`, "text/xml; charset=utf-8"},
		{"drawing.svg", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, "text/plain; charset=utf-8"},
		{"page.html", "<html><body onload=alert(1)>", "text/html; charset=utf-8"},
		{"photo.jpg", "GIF89a" + strings.Repeat("\x00", 20), "image/gif"},
	} {
		req := s.uploadReq(t, tok, tc.name, strings.NewReader(tc.content))
		req.Header.Set("Content-Type", "image/png") // the client's claim: ignored
		r := do(t, req)
		if r.status != http.StatusCreated {
			t.Fatalf("upload of %s: %d %s", tc.name, r.status, r.body)
		}
		var f fileObj
		if err := json.Unmarshal(r.body, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type != tc.wantType {
			t.Errorf("%s: type %q, want %q (sniffed)", tc.name, f.Type, tc.wantType)
		}
		g := s.get(t, f.URL)
		wantDisp, wantType := "attachment; filename="+tc.name, "application/octet-stream"
		if tc.wantType == "image/gif" {
			wantDisp, wantType = "inline; filename="+tc.name, "image/gif"
		}
		if g.header.Get("Content-Disposition") != wantDisp || g.header.Get("Content-Type") != wantType ||
			g.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(g.header.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("GET %s: Content-Disposition %q, Content-Type %q, nosniff %q, CSP %q; want %q, %q, nosniff and a sandbox",
				tc.name, g.header.Get("Content-Disposition"), g.header.Get("Content-Type"),
				g.header.Get("X-Content-Type-Options"), g.header.Get("Content-Security-Policy"), wantDisp, wantType)
		}
	}
	// Nobody was disturbed.
	alice.say("still here")
	diff(t, "after the uploads", msg("alice", "still here"), alice.next())
}

// TestUploadRefused: bad uploads get a clear error, store nothing, and
// disturb nobody.
func TestUploadRefused(t *testing.T) {
	t.Parallel()
	s := startFiles(t, chat.Options{MaxUploadBytes: 1000, UploadRate: -1})
	alice, tok := s.joinUp(t, "alice")
	other := startFiles(t, chat.Options{Name: "other"})
	_, foreign := other.joinUp(t, "alice")

	chunked := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) } // no Content-Length
	for _, tc := range []struct {
		what    string
		token   string
		name    string
		content io.Reader
		status  int
		errText string
	}{
		{"no token", "", "a.txt", strings.NewReader("x"), 401, "missing upload token"},
		{"unknown token", "NOTATOKEN", "a.txt", strings.NewReader("x"), 401, "invalid upload token"},
		{"another room's token", foreign, "a.txt", strings.NewReader("x"), 401, "invalid upload token"},
		{"too large", tok, "big.bin", bytes.NewReader(make([]byte, 1001)), 413, "file too large: at most 1000 bytes"},
		{"too large, chunked", tok, "big.bin", chunked(make([]byte, 5000)), 413, "file too large"},
		{"too large, chunked, small head", tok, "big.bin", chunked(make([]byte, 1001)), 413, "file too large"},
		{"empty", tok, "empty.txt", strings.NewReader(""), 400, "empty file"},
		{"no name", tok, "", strings.NewReader("x"), 400, "missing file name"},
		{"blank name", tok, "   ", strings.NewReader("x"), 400, "missing file name"},
		{"path up", tok, "../../etc/passwd", strings.NewReader("x"), 400, "no paths"},
		{"absolute path", tok, "/etc/passwd", strings.NewReader("x"), 400, "no paths"},
		{"backslash", tok, `..\..\boot.ini`, strings.NewReader("x"), 400, "no paths"},
		{"dot dot", tok, "..", strings.NewReader("x"), 400, "invalid file name"},
		{"NUL", tok, "cat.png\x00.exe", strings.NewReader("x"), 400, "character U+0000 not allowed"},
		{"newline", tok, "a\nb.txt", strings.NewReader("x"), 400, "character U+000A not allowed"},
		{"bidi override", tok, "cat\u202egnp.exe", strings.NewReader("x"), 400, "invisible character U+202E"},
		{"zero width", tok, "a\u200b.txt", strings.NewReader("x"), 400, "invisible character U+200B"},
		{"invalid UTF-8", tok, "a\xff.txt", strings.NewReader("x"), 400, "not valid UTF-8"},
		{"long name", tok, strings.Repeat("é", 129), strings.NewReader("x"), 400, "129 characters, at most 128"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r := do(t, s.uploadReq(t, tc.token, tc.name, tc.content))
			if r.status != tc.status || !strings.Contains(r.errorText(), tc.errText) {
				t.Errorf("%d %s, want %d and an error containing %q", r.status, r.body, tc.status, tc.errText)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q, want application/json", r.header.Get("Content-Type"))
			}
		})
	}
	if got := s.stored(t); len(got) != 0 {
		t.Errorf("stored after the refused uploads: %q, want nothing", got)
	}
	alice.say("still here")
	diff(t, "after the refused uploads", msg("alice", "still here"), alice.next())

	// A connection's token ends with it.
	carol, ctok := s.joinUp(t, "carol")
	alice.next() // carol's join
	carol.ws.Close()
	diff(t, "carol's leave", leave("carol"), alice.next())
	if r := s.upload(t, ctok, "late.txt", []byte("x")); r.status != http.StatusUnauthorized {
		t.Errorf("upload with the token of a closed connection: %d %s, want 401", r.status, r.body)
	}
}

// TestUploadRate: a member over its upload rate gets 429; others upload
// on. Uploads refused before their body is read do not count.
func TestUploadRate(t *testing.T) {
	t.Parallel()
	s := startFiles(t, chat.Options{UploadRate: 1.0 / 3600, UploadBurst: 2})
	_, tok := s.joinUp(t, "alice")
	_, tok2 := s.joinUp(t, "bob")
	for range 3 {
		if r := s.upload(t, tok, "../a.txt", []byte("file")); r.status != http.StatusBadRequest {
			t.Fatalf("a bad name: %d %s, want 400", r.status, r.body)
		}
	}
	for range 2 {
		s.mustUpload(t, tok, "a.txt", []byte("file"))
	}
	r := s.upload(t, tok, "a.txt", []byte("one too many"))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.errorText(), "upload rate exceeded") {
		t.Errorf("third upload: %d %v %s, want 429 with Retry-After", r.status, r.header, r.body)
	}
	if n := len(s.stored(t)); n != 4 {
		t.Errorf("%d files in the directory, want 4 (two uploads)", n)
	}
	s.mustUpload(t, tok2, "b.txt", []byte("bob's"))
}

// TestUploadAuthenticate: with Options.Authenticate, an upload without a
// token is the request's identity's, which must be a member.
func TestUploadAuthenticate(t *testing.T) {
	t.Parallel()
	s := startFiles(t, chat.Options{Authenticate: headerAuth})
	s.dialAs(t, chat.Identity{Name: "alice"}).nextN(3)
	with := func(name string) *http.Request {
		req := s.uploadReq(t, "", "a.txt", strings.NewReader("hello"))
		if name != "" {
			req.Header.Set(identityHeader, `{"Name":"`+name+`"}`)
		}
		return req
	}
	if r := do(t, with("alice")); r.status != http.StatusCreated {
		t.Errorf("alice's upload: %d %s, want 201", r.status, r.body)
	}
	if r := do(t, with("mallory")); r.status != http.StatusForbidden || !strings.Contains(r.errorText(), "not a member") {
		t.Errorf("a non-member's upload: %d %s, want 403", r.status, r.body)
	}
	if r := do(t, with("")); r.status != http.StatusUnauthorized || r.errorText() != "no identity" {
		t.Errorf("an unauthenticated upload: %d %s, want 401", r.status, r.body)
	}
	if n := len(s.stored(t)); n != 2 {
		t.Errorf("%d files in the directory, want 2 (one upload)", n)
	}
}

// TestUploadOrigins: uploads follow the origin and host rules of
// upgrades; an allowed origin gets its preflight answered.
func TestUploadOrigins(t *testing.T) {
	t.Parallel()
	s := startFiles(t, chat.Options{OriginPatterns: []string{"good.example"}, AllowedHosts: []string{"127.0.0.1:*"}})
	_, tok := s.joinUp(t, "alice")

	req := s.uploadReq(t, tok, "a.txt", strings.NewReader("x"))
	req.Header.Set("Origin", "http://evil.example")
	if r := do(t, req); r.status != http.StatusForbidden || !strings.Contains(r.errorText(), "origin") {
		t.Errorf("from evil.example: %d %s, want 403", r.status, r.body)
	}
	req = s.uploadReq(t, tok, "a.txt", strings.NewReader("x"))
	req.Header.Set("Origin", "http://good.example")
	if r := do(t, req); r.status != http.StatusCreated || r.header.Get("Access-Control-Allow-Origin") != "http://good.example" {
		t.Errorf("from good.example: %d %v %s, want 201 with Access-Control-Allow-Origin", r.status, r.header, r.body)
	}
	req = s.uploadReq(t, tok, "a.txt", strings.NewReader("x"))
	req.Host = "evil.example"
	if r := do(t, req); r.status != http.StatusForbidden || !strings.Contains(r.errorText(), "host") {
		t.Errorf("to Host evil.example: %d %s, want 403", r.status, r.body)
	}

	preflight := func(origin string) response {
		req, err := http.NewRequest(http.MethodOptions, s.files, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,"+strings.ToLower(chat.UploadTokenHeader))
		return do(t, req)
	}
	r := preflight("http://good.example")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "http://good.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), chat.UploadTokenHeader) {
		t.Errorf("preflight from good.example: %d %v", r.status, r.header)
	}
	if r := preflight("http://evil.example"); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from evil.example: %d %v, want 403", r.status, r.header)
	}
	if n := len(s.stored(t)); n != 2 {
		t.Errorf("%d files in the directory, want 2 (one upload)", n)
	}
}

// TestFilesHandlerRequests: methods, unknown and malformed IDs, and file
// sharing off.
func TestFilesHandlerRequests(t *testing.T) {
	t.Parallel()
	s := startFiles(t, chat.Options{})
	_, tok := s.joinUp(t, "alice")
	f := s.mustUpload(t, tok, "a.txt", []byte("hello"))
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", f.ID, 200},
		{"HEAD", f.ID, 200},
		{"GET", "", 405},
		{"PUT", "", 405},
		{"DELETE", f.ID, 405},
		{"POST", f.ID, 405},
		{"GET", "AAAAAAAAAAAAAAAAAAAAAAAAAA", 404},
		{"GET", strings.ToLower(f.ID), 404},
		{"GET", "..%2F..%2Fetc%2Fpasswd", 404},
		{"GET", "%2e%2e", 404},
		{"GET", f.ID + ".json", 404},
		{"GET", strings.Repeat("A", 65), 404},
	} {
		req, err := http.NewRequest(tc.method, s.files+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, req); r.status != tc.status {
			t.Errorf("%s /files/%s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.status)
		}
	}

	// Without Files: 404, and a message with a file gets an error frame.
	off := startServer(t, chat.Options{})
	mux := http.NewServeMux()
	mux.Handle("/files/", off.hub.FilesHandler())
	hs := httptest.NewServer(mux)
	defer hs.Close()
	for _, method := range []string{"GET", "POST"} {
		req, err := http.NewRequest(method, hs.URL+"/files/"+f.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, req); r.status != http.StatusNotFound {
			t.Errorf("%s without Files: %d, want 404", method, r.status)
		}
	}
	alice := off.joinAs(t, "alice")
	alice.sendFile("hi", f.ID)
	diff(t, "a file without Files", frame{Type: "error", Error: "file sharing is off in this room"}, alice.next())
}

// TestAttachmentRefused: a message may only carry a file its sender
// uploaded to the room; anything else gets an error frame and nothing is
// published.
func TestAttachmentRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startFiles(t, chat.Options{Files: chat.DirFiles(dir)})
	other := startFiles(t, chat.Options{Name: "other", Files: chat.DirFiles(dir)})
	alice, _ := s.joinUp(t, "alice")
	bob, btok := s.joinUp(t, "bob")
	alice.next() // bob's join
	_, otok := other.joinUp(t, "alice")
	bobs := s.mustUpload(t, btok, "b.txt", []byte("bob's"))
	elsewhere := other.mustUpload(t, otok, "o.txt", []byte("other room's"))

	for _, tc := range []struct{ what, id string }{
		{"bob's file", bobs.ID},
		{"another room's file, her own", elsewhere.ID},
		{"an unknown id", "AAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"a path", "../../etc/passwd"},
		{"empty", ""},
	} {
		alice.sendFile("mine", tc.id)
		got := alice.next()
		if got.Type != "error" || !strings.HasPrefix(got.Error, "no such file") {
			t.Errorf("%s: %+v, want an error frame", tc.what, got)
		}
	}
	alice.send(map[string]any{"type": "message", "body": "x", "file": 12})
	if got := alice.next(); got.Type != "error" {
		t.Errorf("a number as the file: %+v, want an error frame", got)
	}
	alice.send(map[string]any{"type": "message"})
	if got := alice.next(); got.Type != "error" || got.Error != "empty body" {
		t.Errorf("neither body nor file: %+v, want an error frame", got)
	}
	// Nothing was published: bob's next frame is alice's next message.
	alice.say("after")
	diff(t, "bob's next frame", msg("alice", "after"), bob.next())
}

// TestDirFiles: DirFiles stores nothing of a failed upload and refuses
// IDs it cannot have issued.
func TestDirFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs := chat.DirFiles(dir)
	ctx := t.Context()
	broken := io.MultiReader(strings.NewReader("partial"), iotestErrReader{})
	if _, err := fs.Put(ctx, chat.FileMeta{}, broken); !errors.Is(err, errBroken) {
		t.Errorf("Put of a failing reader: %v, want it to wrap the reader's error", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := fs.Put(cancelled, chat.FileMeta{}, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("after failed Puts the directory holds %v, want nothing", ents)
	}
	meta := chat.FileMeta{File: chat.File{Name: "a b.txt", Type: "text/plain"}, Room: "r", Owner: "Zoë", Time: time.UnixMilli(1_763_780_000_123)}
	got, err := fs.Put(ctx, meta, strings.NewReader("content"))
	if err != nil {
		t.Fatal(err)
	}
	meta.ID, meta.Size = got.ID, 7
	rc, back, err := fs.Open(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(rc)
	rc.Close()
	if d := cmp.Diff(meta, back); d != "" || string(content) != "content" {
		t.Errorf("Open: %q, meta (-want +got):\n%s", content, d)
	}
	for _, id := range []string{"", "..", "../" + got.ID, got.ID + ".json", strings.ToLower(got.ID), got.ID[:25], "/etc/passwd", got.ID + "\x00"} {
		if _, _, err := fs.Open(ctx, id); !errors.Is(err, chat.ErrNoSuchFile) {
			t.Errorf("Open(%q): %v, want ErrNoSuchFile", id, err)
		}
	}
}

var errBroken = errors.New("broken reader")

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errBroken }
