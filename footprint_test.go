package chat

import (
	"testing"
	"unsafe"
)

// TestFootprint checks what every connection and every member costs (see
// client and member): one field more in either moves every idle
// connection to the allocator's next size class (BenchmarkIdleMemory
// shows it). Move what only some have to their extra structs instead.
func TestFootprint(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size, max uintptr
	}{
		{"client", unsafe.Sizeof(client{}), 256},
		{"member", unsafe.Sizeof(member{}), 64},
	} {
		if tc.size > tc.max {
			t.Errorf("%s: %d bytes, want at most %d", tc.name, tc.size, tc.max)
		}
	}
}
