//go:build !linux

package chat

import (
	"net"
	"syscall"
)

// iovecs is writeNow's scratch space; writeNow exists on Linux only.
type iovecs struct{}

// rawConnOf returns nil: elsewhere the outbox writes with a short deadline.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func writeNow(syscall.RawConn, *net.Buffers, *iovecs) (bool, error) {
	panic("chat: writeNow without a raw connection")
}
