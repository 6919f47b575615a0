package webui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing/fstest"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/webui"
)

// A chat room with its web client: the page at /, the room at /ws.
func Example() {
	hub := chat.NewHub(chat.Options{})
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.Handle("/", webui.Handler())
	ts := httptest.NewServer(mux) // in a program: an http.Server
	defer ts.Close()
	defer hub.Shutdown(context.Background()) // WebSockets first, then HTTP

	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	fmt.Println(strings.Contains(string(page), `<main data-hubchat-ws="ws"`))
	// Output:
	// 200 OK text/html; charset=utf-8
	// true
}

// A page of your own that shares chat.js and chat.css: two rooms side by
// side, at /a/ws and /b/ws. In a program, page would be an embed.FS.
func ExamplePageHandler() {
	page := fstest.MapFS{"index.html": {Data: []byte(`<!doctype html>
<link rel="stylesheet" href="chat.css"><script src="chat.js" defer></script>
<main data-hubchat-ws="a/ws" data-hubchat-title="Room A"></main>
<main data-hubchat-ws="b/ws" data-hubchat-title="Room B"></main>
`)}}
	mux := http.NewServeMux()
	for _, room := range []string{"a", "b"} {
		hub := chat.NewHub(chat.Options{Name: room})
		defer hub.Close()
		mux.Handle("/"+room+"/ws", chat.NewServer(hub))
	}
	mux.Handle("/", webui.PageHandler(page))

	for _, path := range []string{"/", "/chat.js"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// / 200 text/html; charset=utf-8
	// /chat.js 200 text/javascript; charset=utf-8
}
