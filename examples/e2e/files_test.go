package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/hubchat/chat/examples/internal/chattest"
)

// writeFiles writes the files to upload into a new directory: name →
// content.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// catPNG returns a 40×30 PNG image.
func catPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		img.Set(x, x*3/4, color.RGBA{R: 220, G: 120, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// attach picks the file at path with the composer's file input and waits
// until it has been uploaded, ready to go with the next message.
func (u *user) attach(path string) {
	u.t.Helper()
	u.waitFor("the attach button", `(() => { const b = document.querySelector(".composer .attach"); return b && !b.hidden; })()`)
	u.do(chromedp.SetUploadFiles(chromedp.CSS(`.composer input[type=file]`), []string{path}))
	u.waitFor("the upload of "+filepath.Base(path), `document.querySelector(".chat-foot .upload")?.dataset.state === "ready" && `+
		`!document.querySelector(".chat-foot .upload").hidden`)
}

// fileLink returns the URL of the download link of the file named name in
// the log, waiting for it.
func (u *user) fileLink(name string) string {
	u.t.Helper()
	sel := fmt.Sprintf(`[...document.querySelectorAll("[role=log] a.file")].find((a) => a.querySelector(".file-name").textContent === %s)`, js(name))
	u.waitFor("a download link for "+name, sel+" !== undefined")
	return eval[string](u, sel+".href")
}

// fetchFile GETs a file's URL and returns the response's headers.
func fetchFile(t *testing.T, url string) (http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp.Header, b.Bytes()
}

// checkAttachment checks that the file at url is served as a download
// that no browser renders.
func checkAttachment(t *testing.T, url, name string) {
	t.Helper()
	h, _ := fetchFile(t, url)
	if got, want := h.Get("Content-Disposition"), "attachment; filename="+name; got != want {
		t.Errorf("GET %s: Content-Disposition %q, want %q", name, got, want)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Type") != "application/octet-stream" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("GET %s: headers %v, want nosniff, application/octet-stream and a sandboxing policy", name, h)
	}
}

// TestFiles: in the static app, an image becomes a preview in another
// member's page, a text file and an SVG become download links (the SVG
// served as an attachment), a file with a disguised name is refused with a
// visible error, and a file alone (no text) goes too.
func TestFiles(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../static")
	_, url := startStatic(t, bin, "127.0.0.1:0")
	img := catPNG(t)
	dir := writeFiles(t, map[string][]byte{
		"cat.png":          img,
		"notes.txt":        []byte("Buy milk.\n"),
		"drawing.svg":      []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>`),
		"cat\u202egnp.exe": []byte("MZ not really"),
	})

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	bob.open(url)
	bob.join("bob")
	alice.waitLog("bob joined")

	// An image with a caption: a preview at bob's.
	alice.attach(filepath.Join(dir, "cat.png"))
	alice.typeInto("Message", "my cat\r")
	bob.waitLog("my cat")
	bob.waitFor("the preview to load", `(() => { const i = document.querySelector("[role=log] img.preview");
		return i && i.complete && i.naturalWidth === 40 && i.naturalHeight === 30; })()`)
	src := eval[string](bob, `document.querySelector("[role=log] img.preview").src`)
	if !strings.HasPrefix(src, url+"files/") {
		t.Errorf("preview src %q, want a file of %sfiles/", src, url)
	}
	if h, b := fetchFile(t, src); h.Get("Content-Type") != "image/png" || !bytes.Equal(b, img) ||
		!strings.HasPrefix(h.Get("Content-Disposition"), "inline") {
		t.Errorf("GET the preview: %v, %d bytes; want the image, inline", h, len(b))
	}
	if alt := eval[string](bob, `document.querySelector("[role=log] img.preview").alt`); alt != "cat.png" {
		t.Errorf("the preview's alt text is %q, want cat.png", alt)
	}

	// A text file alone, sent with the Send button: a download link with
	// its name and size.
	alice.attach(filepath.Join(dir, "notes.txt"))
	alice.click("Send")
	link := bob.fileLink("notes.txt")
	if got := eval[string](bob, `[...document.querySelectorAll("[role=log] a.file")].pop().textContent`); !strings.Contains(got, "10 B") {
		t.Errorf("the link reads %q, want the size 10 B", got)
	}
	checkAttachment(t, link, "notes.txt")

	// An SVG with script: a download link, never a preview, served as an
	// attachment.
	alice.attach(filepath.Join(dir, "drawing.svg"))
	alice.typeInto("Message", "a drawing\r")
	checkAttachment(t, bob.fileLink("drawing.svg"), "drawing.svg")
	if n := eval[int](bob, `document.querySelectorAll("[role=log] img").length`); n != 1 {
		t.Errorf("%d images in bob's log, want 1 (the cat)", n)
	}

	// A name that hides its extension behind a bidi override is refused,
	// and alice sees why.
	alice.do(chromedp.SetUploadFiles(chromedp.CSS(`.composer input[type=file]`), []string{filepath.Join(dir, "cat\u202egnp.exe")}))
	alice.waitFor("the upload error", textOf(".chat-foot > .form-error")+`.includes("invisible character U+202E")`)
	alice.say("after the refusal")
	bob.waitLog("after the refusal")
	if strings.Contains(bob.logText(), "gnp") {
		t.Errorf("bob's log shows the refused file: %q", bob.logText())
	}
}

// TestFilesMultiport: the multiport page shares files with chat servers
// on other ports (uploads cross-origin, previews from another port).
func TestFilesMultiport(t *testing.T) {
	browser := newBrowser(t)
	bin := chattest.Build(t, "../multiport")
	url := startMultiport(t, bin, port(t, 8083))
	dir := writeFiles(t, map[string][]byte{"cat.png": catPNG(t), "notes.txt": []byte("Buy milk.\n")})

	alice := newUser(t, browser, "alice", 1100, 720, false)
	bob := newUser(t, browser, "bob", 1100, 720, false)
	alice.open(url)
	alice.join("alice")
	bob.open(url)
	bob.join("bob")
	alice.waitLog("bob joined")

	alice.attach(filepath.Join(dir, "cat.png"))
	alice.typeInto("Message", "cat on another port\r")
	bob.waitLog("cat on another port")
	bob.waitFor("the preview to load", `(() => { const i = document.querySelector("[role=log] img.preview");
		return i && i.complete && i.naturalWidth === 40; })()`)
	server := strings.TrimSuffix(strings.Replace(chatServers(t, url)[0].URL, "ws://", "http://", 1), "ws")
	if src := eval[string](bob, `document.querySelector("[role=log] img.preview").src`); !strings.HasPrefix(src, server+"files/") {
		t.Errorf("preview src %q, want a file of the chat server, %sfiles/", src, server)
	}
	alice.attach(filepath.Join(dir, "notes.txt"))
	alice.click("Send")
	checkAttachment(t, bob.fileLink("notes.txt"), "notes.txt")
}
