package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	centclient "github.com/centrifugal/centrifuge-go"
)

// centClient is a centrifuge-go client (JSON protocol) subscribed to the
// chat channel; publications go to the run's body handler.
type centClient struct {
	c   *centclient.Client
	sub *centclient.Subscription
	r   *runState
}

// resetDialer dials TCP connections that are reset on close, so that
// thousands of closed clients leave no TIME_WAIT entries behind.
func resetDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, network, addr)
	if err == nil {
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	return nc, err
}

// dialCentrifuge connects and subscribes client id; it returns once the
// subscription is active.
func dialCentrifuge(ctx context.Context, addr string, id int, r *runState, _ bool) (client, error) {
	name := "u" + strconv.Itoa(id)
	c := centclient.NewJsonClient("ws://"+addr+centrifugePath, centclient.Config{
		Name:           name,
		NetDialContext: resetDialer,
		// No reconnects in a benchmark: a disconnect is a failure.
		HandshakeTimeout: 10 * time.Second,
	})
	cc := &centClient{c: c, r: r}
	var once sync.Once
	subscribed := make(chan struct{})
	failed := make(chan error, 1)
	c.OnDisconnected(func(e centclient.DisconnectedEvent) {
		if !r.closing.Load() {
			r.disconnects.Add(1)
			r.note(fmt.Sprintf("centrifuge client %s disconnected: %d %s", name, e.Code, e.Reason))
		}
	})
	c.OnError(func(e centclient.ErrorEvent) {
		select {
		case failed <- e.Error:
		default:
		}
	})
	sub, err := c.NewSubscription(centrifugeChannel)
	if err != nil {
		return nil, err
	}
	cc.sub = sub
	sub.OnSubscribed(func(centclient.SubscribedEvent) { once.Do(func() { close(subscribed) }) })
	sub.OnPublication(func(e centclient.PublicationEvent) { r.onBodies(e.Data) })
	if err := c.Connect(); err != nil {
		c.Close()
		return nil, err
	}
	if err := sub.Subscribe(); err != nil {
		c.Close()
		return nil, err
	}
	select {
	case <-subscribed:
		return cc, nil
	case err := <-failed:
		c.Close()
		return nil, err
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		c.Close()
		return nil, errors.New("centrifuge: timed out subscribing")
	}
}

func (cc *centClient) send(msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cc.sub.Publish(ctx, msg)
	return err
}

func (cc *centClient) close() { cc.c.Close() }
