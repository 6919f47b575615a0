//go:build !linux

package chat

import (
	"net"
	"syscall"
)

// rawWriter is writeNow's state; writeNow exists on Linux only.
type rawWriter struct{}

// rawConnOf returns nil: elsewhere the outbox writes with a short deadline.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func writeNow(syscall.RawConn, *net.Buffers, *rawWriter) (bool, error) {
	panic("chat: writeNow without a raw connection")
}
