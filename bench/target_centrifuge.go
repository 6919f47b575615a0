package main

import (
	"context"
	"net/http"

	"github.com/centrifugal/centrifuge"
)

// centrifugeChannel is the one channel of the centrifuge target.
const centrifugeChannel = "chat"

// centrifugePath is where the centrifuge target accepts WebSocket clients.
const centrifugePath = "/connection/websocket"

// The centrifuge target is one centrifuge node with one channel that every
// client subscribes to and publishes into from the client side. History,
// presence and recovery are off (the defaults).
func init() {
	servers["centrifuge"] = func(mux *http.ServeMux) error {
		node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
		if err != nil {
			return err
		}
		node.OnConnecting(func(_ context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
			return centrifuge.ConnectReply{
				Credentials: &centrifuge.Credentials{UserID: e.Name},
			}, nil
		})
		node.OnConnect(func(c *centrifuge.Client) {
			c.OnSubscribe(func(_ centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
				cb(centrifuge.SubscribeReply{}, nil)
			})
			c.OnPublish(func(_ centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
				cb(centrifuge.PublishReply{}, nil)
			})
		})
		if err := node.Run(); err != nil {
			return err
		}
		mux.Handle(centrifugePath, centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
			CheckOrigin: func(*http.Request) bool { return true },
		}))
		return nil
	}
}
