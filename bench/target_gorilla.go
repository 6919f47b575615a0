package main

import (
	"bytes"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// The gorilla target is the chat example of gorilla/websocket
// (examples/chat: hub.go and client.go), kept as close to the original as
// possible: one hub goroutine with register, unregister and broadcast
// channels; per client a readPump and a writePump with a buffered send
// channel of 256 messages. A client whose channel is full is dropped, as in
// the example. Like the example, writePump coalesces queued messages into
// one frame separated by newlines. Only maxMessageSize is raised (512 ->
// 4096) so that padded bodies fit, and the origin check is off.

func init() {
	servers["gorilla"] = func(mux *http.ServeMux) error {
		hub := newGorillaHub()
		go hub.run()
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			serveGorillaWs(hub, w, r)
		})
		return nil
	}
}

const (
	// Time allowed to write a message to the peer.
	gorillaWriteWait = 10 * time.Second
	// Time allowed to read the next pong message from the peer.
	gorillaPongWait = 60 * time.Second
	// Send pings to peer with this period. Must be less than pongWait.
	gorillaPingPeriod = (gorillaPongWait * 9) / 10
	// Maximum message size allowed from peer.
	gorillaMaxMessageSize = 4096
)

var (
	gorillaNewline = []byte{'\n'}
	gorillaSpace   = []byte{' '}
)

var gorillaUpgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// gorillaHub maintains the set of active clients and broadcasts messages to
// the clients.
type gorillaHub struct {
	clients    map[*gorillaClient]bool
	broadcast  chan []byte
	register   chan *gorillaClient
	unregister chan *gorillaClient
}

func newGorillaHub() *gorillaHub {
	return &gorillaHub{
		broadcast:  make(chan []byte),
		register:   make(chan *gorillaClient),
		unregister: make(chan *gorillaClient),
		clients:    make(map[*gorillaClient]bool),
	}
}

func (h *gorillaHub) run() {
	for {
		select {
		case client := <-h.register:
			h.clients[client] = true
		case client := <-h.unregister:
			if _, ok := h.clients[client]; ok {
				delete(h.clients, client)
				close(client.send)
			}
		case message := <-h.broadcast:
			for client := range h.clients {
				select {
				case client.send <- message:
				default:
					close(client.send)
					delete(h.clients, client)
				}
			}
		}
	}
}

// gorillaClient is a middleman between the websocket connection and the hub.
type gorillaClient struct {
	hub  *gorillaHub
	conn *websocket.Conn
	send chan []byte
}

// readPump pumps messages from the websocket connection to the hub.
func (c *gorillaClient) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(gorillaMaxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(gorillaPongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(gorillaPongWait)); return nil })
	for {
		_, message, err := c.conn.ReadMessage()
		if err != nil {
			break
		}
		message = bytes.TrimSpace(bytes.Replace(message, gorillaNewline, gorillaSpace, -1))
		c.hub.broadcast <- message
	}
}

// writePump pumps messages from the hub to the websocket connection.
func (c *gorillaClient) writePump() {
	ticker := time.NewTicker(gorillaPingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case message, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(gorillaWriteWait))
			if !ok {
				// The hub closed the channel.
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}

			w, err := c.conn.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			w.Write(message)

			// Add queued chat messages to the current websocket message.
			n := len(c.send)
			for i := 0; i < n; i++ {
				w.Write(gorillaNewline)
				w.Write(<-c.send)
			}

			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(gorillaWriteWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// serveGorillaWs handles websocket requests from the peer.
func serveGorillaWs(hub *gorillaHub, w http.ResponseWriter, r *http.Request) {
	conn, err := gorillaUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	client := &gorillaClient{hub: hub, conn: conn, send: make(chan []byte, 256)}
	client.hub.register <- client

	// Allow collection of memory referenced by the caller by doing all work in
	// new goroutines.
	go client.writePump()
	go client.readPump()
}
