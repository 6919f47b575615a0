package chat

import (
	"net"
	"syscall"
	"unsafe"
)

// maxIovecs is the most buffers one writev takes (IOV_MAX).
const maxIovecs = 1024

// A rawWriter is writeNow's state and scratch space, one per batch, so
// that a write allocates nothing.
type rawWriter struct {
	bufs    *net.Buffers
	iov     []syscall.Iovec
	blocked bool
	err     error
	fn      func(fd uintptr) bool // write, bound once
}

// rawConnOf returns nc's raw connection if nc is a plain TCP or Unix
// socket, else nil. A wrapper (TLS, or a type that embeds *net.TCPConn to
// count or shape traffic) gets nil, so that its Write is not bypassed.
func rawConnOf(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeNow writes as much of *bufs to rc as the socket takes right now,
// with writev and without waiting, and consumes what was written. blocked
// reports that the socket's buffer filled before everything was written.
// Unlike a write with a short deadline, it arms no timer: a deadline per
// write costs a busy hub a tenth of its CPU.
func writeNow(rc syscall.RawConn, bufs *net.Buffers, w *rawWriter) (blocked bool, err error) {
	if w.fn == nil {
		w.fn = w.write
	}
	w.bufs, w.blocked, w.err = bufs, false, nil
	err = rc.Write(w.fn)
	clear(w.iov[:cap(w.iov)]) // do not keep the frames alive
	w.bufs = nil
	if err == nil {
		err = w.err
	}
	return w.blocked, err
}

// write is writeNow's callback: it writes *w.bufs to fd until done, or
// until the socket takes no more (blocked) or fails (err).
func (w *rawWriter) write(fd uintptr) bool {
	bufs := w.bufs
	for len(*bufs) > 0 {
		v := w.iov[:0]
		for _, b := range *bufs {
			if len(v) == maxIovecs {
				break
			}
			if len(b) > 0 {
				v = append(v, syscall.Iovec{Base: &b[0]})
				v[len(v)-1].SetLen(len(b))
			}
		}
		w.iov = v
		if len(v) == 0 {
			*bufs = (*bufs)[:0]
			break
		}
		n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
		switch e {
		case 0:
			consume(bufs, int64(n))
		case syscall.EINTR:
		case syscall.EAGAIN:
			w.blocked = true
			return true
		default:
			w.err = e
			return true
		}
	}
	return true
}

// consume drops the first n bytes of *v, as a write of them does.
func consume(v *net.Buffers, n int64) {
	for len(*v) > 0 {
		l := int64(len((*v)[0]))
		if l > n {
			(*v)[0] = (*v)[0][n:]
			return
		}
		n -= l
		(*v)[0] = nil
		*v = (*v)[1:]
	}
}
