package main

import (
	"bytes"
	"context"
	"strconv"
	"sync"
)

// A raw centrifuge client: the benchmark's own WebSocket client speaking
// centrifuge's JSON protocol (v2) directly. centrifuge-go decodes every
// push into structs and runs callbacks through a queue; with thousands of
// clients in one load generator that, not the server, can limit the rate.
// This client costs the load generator about what the other targets'
// clients cost, so "centrifuge-raw" shows what the centrifuge server
// itself sustains.
//
// Protocol: commands are {"id":N,"connect":{...}}, {"id":N,"subscribe":
// {"channel":...}} and {"id":N,"publish":{"channel":...,"data":<JSON>}};
// pushes are {"push":{"channel":...,"pub":{"data":<JSON>,...}}}; several
// may share a frame, one per line. The server's ping is an empty object,
// answered with an empty object.

// centPing is the server's ping and the client's pong.
var centPing = []byte("{}")

// dialCentrifugeRaw connects client id, sends connect and subscribe, and
// returns once the subscribe reply has arrived.
func dialCentrifugeRaw(ctx context.Context, addr string, id int, r *runState, _ bool) (client, error) {
	c, err := handshake(ctx, addr, centrifugePath, id, r)
	if err != nil {
		return nil, err
	}
	c.cent = true
	c.centID = 2
	name := "u" + strconv.Itoa(id)
	cmd := `{"id":1,"connect":{"name":"` + name + `"}}` + "\n" +
		`{"id":2,"subscribe":{"channel":"` + centrifugeChannel + `"}}`
	if err := c.writeFrame(opText, []byte(cmd)); err != nil {
		c.close()
		return nil, err
	}
	return c.start(ctx)
}

var (
	centSubscribed = []byte(`{"id":2,"subscribe"`)
	centError      = []byte(`"error":`)
)

// onCentrifuge handles one frame from the centrifuge server.
func (c *wsClient) onCentrifuge(p []byte) {
	if bytes.Equal(p, centPing) {
		c.writeFrame(opText, centPing) //nolint:errcheck // failures show up on read
		return
	}
	if !c.joined && bytes.Contains(p, centSubscribed) {
		c.joined = true
		close(c.ready)
	}
	if bytes.Contains(p, centError) && !bytes.Contains(p, bodyMarker) {
		c.r.errFrames.Add(1)
		c.r.note("centrifuge error to u" + itoa(c.id) + ": " + string(p))
	}
	c.r.onBodies(p)
}

// centPublish sends msg (a JSON object) as a publication to the channel.
func (c *wsClient) centPublish(msg []byte) error {
	c.centMu.Lock()
	c.centID++
	b := append(c.centBuf[:0], `{"id":`...)
	b = strconv.AppendInt(b, c.centID, 10)
	b = append(b, `,"publish":{"channel":"`+centrifugeChannel+`","data":`...)
	b = append(b, msg...)
	b = append(b, "}}"...)
	c.centBuf = b
	err := c.writeFrame(opText, b)
	c.centMu.Unlock()
	return err
}

// centState is the part of wsClient used by the centrifuge protocol.
type centState struct {
	centMu  sync.Mutex
	centID  int64
	centBuf []byte
}
