package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

// Mount a chat room on a mux next to other handlers. Clients connect with
// ?username= and exchange JSON frames.
func ExampleServer() {
	hub := chat.NewHub(chat.Options{})
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the web client goes here") })
	hs := httptest.NewServer(mux) // in a program: http.ListenAndServe(addr, mux)
	defer hs.Close()
	defer hub.Shutdown(context.Background()) // WebSockets first: the HTTP server does not track them

	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	alice := dial(url + "?username=alice")
	defer alice.Close()
	printFrames(alice, 3) // her join, the users snapshot, the history

	bob := dial(url + "?username=bob")
	defer bob.Close()
	printFrames(alice, 1) // bob's join

	bob.WriteJSON(map[string]string{"type": "message", "body": "Hi, Alice!"})
	printFrames(alice, 1)
	// Output:
	// {"type":"join","username":"alice"}
	// {"type":"users","users":["alice"]}
	// {"messages":[],"type":"history"}
	// {"type":"join","username":"bob"}
	// {"body":"Hi, Alice!","type":"message","username":"bob"}
}

// Post a message from the server itself, e.g. an announcement. It goes to
// every member and into the history.
func ExampleHub_Post() {
	hub := chat.NewHub(chat.Options{SystemName: "server"})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())

	alice := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "?username=alice")
	defer alice.Close()
	printFrames(alice, 3)

	if err := hub.Post(context.Background(), "Maintenance at noon."); err != nil {
		fmt.Println(err)
	}
	printFrames(alice, 1)
	fmt.Println(hub.Users(), len(hub.History()))
	// Output:
	// {"type":"join","username":"alice"}
	// {"type":"users","users":["alice"]}
	// {"messages":[],"type":"history"}
	// {"body":"Maintenance at noon.","system":true,"type":"message","username":"server"}
	// [alice] 1
}

// Hooks see every message before it is published: OnMessage may rewrite
// the body or reject the message, and the sender gets the error's text.
func ExampleOptions_hooks() {
	hub := chat.NewHub(chat.Options{
		OnJoin: func(_ *chat.Hub, id chat.Identity) { fmt.Println("hook: joined:", id.Name) },
		OnMessage: func(_ *chat.Hub, _ chat.Identity, m *chat.Message) error {
			if strings.Contains(m.Body, "http://") {
				return errors.New("links are not allowed here")
			}
			m.Body = strings.ToUpper(m.Body)
			return nil
		},
	})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())

	alice := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "?username=alice")
	defer alice.Close()
	readFrames(alice, 3)

	alice.WriteJSON(map[string]string{"type": "message", "body": "hello"})
	alice.WriteJSON(map[string]string{"type": "message", "body": "see http://spam.example"})
	printFrames(alice, 2)
	// Output:
	// hook: joined: alice
	// {"body":"HELLO","type":"message","username":"alice"}
	// {"error":"links are not allowed here","type":"error"}
}

// Authenticate turns a request into an Identity: here a (stand-in) session
// cookie names the user. The display name and avatar are public: they
// travel with the join event and the users snapshot. Roles and claims
// reach the hooks only. A user's second tab is the same member: it gets
// its own welcome, and nobody sees a second join.
func ExampleOptions_authenticate() {
	sessions := map[string]chat.Identity{ // in a program: a signed token, a session store
		"s1": {Name: "alice", Display: "Alice Liddell", Avatar: "https://example.com/alice.png", Roles: []string{"admin"}},
		"s2": {Name: "bob", Display: "Bob"},
	}
	joined := make(chan string, 2) // the hook runs on the connection's goroutine
	hub := chat.NewHub(chat.Options{
		Authenticate: func(r *http.Request) (chat.Identity, error) {
			c, err := r.Cookie("session")
			if err != nil {
				return chat.Identity{}, errors.New("not signed in")
			}
			id, ok := sessions[c.Value]
			if !ok {
				return chat.Identity{}, errors.New("unknown session")
			}
			return id, nil
		},
		OnJoin: func(_ *chat.Hub, id chat.Identity) { joined <- fmt.Sprint("hook: joined: ", id.Name, " ", id.Roles) },
	})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	as := func(session string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Cookie": {"session=" + session}})
		if err != nil {
			panic(err)
		}
		return ws
	}

	alice := as("s1")
	defer alice.Close()
	printFrames(alice, 3)
	fmt.Println(<-joined)
	bob := as("s2")
	defer bob.Close()
	printFrames(bob, 2)
	fmt.Println(<-joined)
	printFrames(alice, 1) // bob's join

	tab2 := as("s1") // alice again: her second tab
	defer tab2.Close()
	printFrames(tab2, 3)
	bob.WriteJSON(map[string]string{"type": "message", "body": "Hi Alice", "to": "alice"})
	printFrames(alice, 1)
	printFrames(tab2, 1) // every tab gets it

	if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err != nil {
		fmt.Println(resp.Status)
	}
	// Output:
	// {"avatar":"https://example.com/alice.png","display":"Alice Liddell","type":"join","username":"alice"}
	// {"profiles":{"alice":{"avatar":"https://example.com/alice.png","display":"Alice Liddell"}},"type":"users","users":["alice"]}
	// {"messages":[],"type":"history"}
	// hook: joined: alice [admin]
	// {"display":"Bob","type":"join","username":"bob"}
	// {"profiles":{"alice":{"avatar":"https://example.com/alice.png","display":"Alice Liddell"},"bob":{"display":"Bob"}},"type":"users","users":["alice","bob"]}
	// hook: joined: bob []
	// {"display":"Bob","type":"join","username":"bob"}
	// {"avatar":"https://example.com/alice.png","display":"Alice Liddell","type":"join","username":"alice"}
	// {"profiles":{"alice":{"avatar":"https://example.com/alice.png","display":"Alice Liddell"},"bob":{"display":"Bob"}},"type":"users","users":["alice","bob"]}
	// {"messages":[],"type":"history"}
	// {"body":"Hi Alice","to":"alice","type":"message","username":"bob"}
	// {"body":"Hi Alice","to":"alice","type":"message","username":"bob"}
	// 401 Unauthorized
}

// Shut down gracefully: every client receives a 1001 close frame, and
// Shutdown returns once every connection and goroutine is gone.
func ExampleHub_Shutdown() {
	hub := chat.NewHub(chat.Options{})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()

	alice := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "?username=alice")
	defer alice.Close()
	readFrames(alice, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan error)
	go func() {
		_, _, err := alice.ReadMessage()
		closed <- err
	}()
	err := hub.Shutdown(ctx)
	fmt.Println("alice:", <-closed)
	fmt.Println("shutdown:", err)
	fmt.Println("post:", hub.Post(ctx, "anyone?"))
	// Output:
	// alice: websocket: close 1001 (going away): server is shutting down
	// shutdown: <nil>
	// post: chat: hub closed
}

// Kick a member from Go: it gets an error frame with the reason and a 1008
// close, and everyone else sees it leave. Kicking someone absent fails
// with ErrNoSuchUser.
func ExampleHub_Kick() {
	hub := chat.NewHub(chat.Options{})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	alice := dial(url + "?username=alice")
	defer alice.Close()
	readFrames(alice, 3)
	bob := dial(url + "?username=bob")
	defer bob.Close()
	readFrames(bob, 3)
	readFrames(alice, 1) // bob's join

	ctx := context.Background()
	if err := hub.Kick(ctx, "bob", "flooding"); err != nil {
		fmt.Println(err)
	}
	printFrames(bob, 1)
	_, _, err := bob.ReadMessage()
	fmt.Println("bob:", err)
	printFrames(alice, 1)
	fmt.Println(errors.Is(hub.Kick(ctx, "carol", ""), chat.ErrNoSuchUser))
	// Output:
	// {"error":"kicked by a moderator: flooding","type":"error"}
	// bob: websocket: close 1008 (policy violation): kicked by a moderator: flooding
	// {"type":"leave","username":"bob"}
	// true
}

// Ban a name for a while: the member is kicked, and the name (in any case)
// is refused at join until the ban ends or Unban lifts it.
func ExampleHub_Ban() {
	hub := chat.NewHub(chat.Options{})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	if err := hub.Ban(context.Background(), "mallory", 24*time.Hour, "spam"); err != nil {
		fmt.Println(err)
	}
	m := dial(url + "?username=Mallory")
	defer m.Close()
	text := readFrames(m, 1)[0]["error"].(string)
	before, _, _ := strings.Cut(text, " until ") // the rest is the ban's end, in UTC
	fmt.Println(before)
	_, _, err := m.ReadMessage()
	fmt.Println(websocket.IsCloseError(err, websocket.ClosePolicyViolation))

	if err := hub.Unban(context.Background(), "mallory"); err != nil {
		fmt.Println(err)
	}
	m2 := dial(url + "?username=Mallory")
	defer m2.Close()
	printFrames(m2, 1)
	// Output:
	// username "Mallory" is banned
	// true
	// {"type":"join","username":"Mallory"}
}

// Mute a member: it stays and hears everything, but its messages get an
// error frame and reach nobody.
func ExampleHub_Mute() {
	hub := chat.NewHub(chat.Options{})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())

	bob := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "?username=bob")
	defer bob.Close()
	readFrames(bob, 3)

	if err := hub.Mute(context.Background(), "bob", 10*time.Minute); err != nil {
		fmt.Println(err)
	}
	bob.WriteJSON(map[string]string{"type": "message", "body": "BUY NOW"})
	text := readFrames(bob, 1)[0]["error"].(string)
	fmt.Println(strings.HasPrefix(text, "you are muted until "))
	fmt.Println(len(hub.History()))
	// Output:
	// true
	// 0
}

// Send one member a private message from the server.
func ExampleHub_Send() {
	hub := chat.NewHub(chat.Options{SystemName: "moderator"})
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(context.Background())

	bob := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "?username=bob")
	defer bob.Close()
	readFrames(bob, 3)

	if err := hub.Send(context.Background(), "bob", "Please keep it friendly."); err != nil {
		fmt.Println(err)
	}
	printFrames(bob, 1)
	fmt.Println(hub.Send(context.Background(), "carol", "hello?"))
	// Output:
	// {"body":"Please keep it friendly.","system":true,"to":"bob","type":"message","username":"moderator"}
	// chat: user "carol" is not here
}

// Share files: uploads go to the hub's FilesHandler with the connection's
// upload token, and a message carries the file to the room. Files are
// named by random IDs; the type is sniffed from the content.
func ExampleHub_FilesHandler() {
	dir, _ := os.MkdirTemp("", "files")
	defer os.RemoveAll(dir)
	hub := chat.NewHub(chat.Options{Files: chat.DirFiles(dir)})
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.Handle("/files/", hub.FilesHandler()) // "files/" beside the Server: Options.FilesURL
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer hub.Shutdown(context.Background())

	alice := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?username=alice")
	defer alice.Close()
	welcome := readFrames(alice, 4) // her join, users, history, and the upload frame
	up := welcome[3]
	fmt.Println(up["type"], up["url"], up["max"])

	// POST the content to the upload URL, relative to the WebSocket's.
	req, _ := http.NewRequest("POST", hs.URL+"/files/?name=notes.txt", strings.NewReader("Buy milk.\n"))
	req.Header.Set(chat.UploadTokenHeader, up["token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var file map[string]any
	json.NewDecoder(resp.Body).Decode(&file)
	resp.Body.Close()
	fmt.Println(resp.Status, file["name"], file["size"], file["type"])

	alice.WriteJSON(map[string]any{"type": "message", "body": "the list", "file": file["id"]})
	m := readFrames(alice, 1)[0]
	f := m["file"].(map[string]any)
	fmt.Println(m["body"], f["name"], f["url"] == "files/"+f["id"].(string))

	resp, err = http.Get(hs.URL + "/files/" + f["id"].(string))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%s %q %s", resp.Header.Get("Content-Disposition"), resp.Header.Get("X-Content-Type-Options"), body)
	// Output:
	// upload files/ 1.048576e+07
	// 201 Created notes.txt 10 text/plain; charset=utf-8
	// the list notes.txt true
	// attachment; filename=notes.txt "nosniff" Buy milk.
}

func dial(url string) *websocket.Conn {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		panic(err)
	}
	return ws
}

func readFrames(ws *websocket.Conn, n int) []map[string]any {
	var out []map[string]any
	for range n {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f map[string]any
		if err := ws.ReadJSON(&f); err != nil {
			panic(err)
		}
		out = append(out, f)
	}
	return out
}

// printFrames prints frames without the fields that change from run to run.
func printFrames(ws *websocket.Conn, n int) {
	for _, f := range readFrames(ws, n) {
		delete(f, "id")
		delete(f, "ts")
		b, _ := json.Marshal(f) // sorts the keys
		fmt.Println(string(b))
	}
}

// A Store keeps the room's messages across a restart, and a client that
// reconnects with ?since= receives exactly the messages it missed.
func ExampleOptions_store() {
	ctx := context.Background()
	st := storetest.NewMemory() // in a program: sqlitestore or pgstore
	hub := chat.NewHub(chat.Options{Store: st})
	hub.Post(ctx, "first")
	since := hub.History()[0].ID // the last message a client saw
	hub.Post(ctx, "second")
	hub.Post(ctx, "third")
	hub.Shutdown(ctx) // waits until the Store has every message

	hub = chat.NewHub(chat.Options{Store: st}) // after a restart
	hs := httptest.NewServer(chat.NewServer(hub))
	defer hs.Close()
	defer hub.Shutdown(ctx)

	alice := dial("ws" + strings.TrimPrefix(hs.URL, "http") + "?username=alice&since=" + since)
	defer alice.Close()
	hist := readFrames(alice, 3)[2] // after her join and the users snapshot
	fmt.Println("resume:", hist["resume"])
	for _, m := range hist["messages"].([]any) {
		fmt.Println(m.(map[string]any)["body"])
	}
	// Output:
	// resume: true
	// second
	// third
}
