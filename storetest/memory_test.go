package storetest_test

import (
	"testing"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) chat.Store { return storetest.NewMemory() })
}

// TestMemoryShared runs the suite against one store shared by every
// subtest, as a database kept between runs would be.
func TestMemoryShared(t *testing.T) {
	st := storetest.NewMemory()
	storetest.Run(t, func(*testing.T) chat.Store { return st })
	storetest.Run(t, func(*testing.T) chat.Store { return st })
}
