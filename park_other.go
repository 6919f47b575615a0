//go:build !linux

package chat

// A poller would let idle connections wait without a goroutine each; it
// exists on Linux only (park_linux.go). Elsewhere every reader blocks in
// its read.
type poller struct{}

func newPoller(*Hub) *poller        { return nil }
func (p *poller) close()            {}
func (p *poller) park(*client) bool { return false }
func (p *poller) forget(*client)    {}
