//go:build unix

package chat_test

import (
	"fmt"
	"syscall"
)

// raiseNoFile lifts the soft limit on open files to the hard one; it fails
// if the hard limit is below need.
func raiseNoFile(need uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("cannot read the open-file limit: %w", err)
	}
	if rl.Max < need {
		return fmt.Errorf("open-file limit %d < %d needed; raise it (ulimit -Hn) to run this benchmark", rl.Max, need)
	}
	if cur := rl.Cur; cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil && cur < need {
			return fmt.Errorf("cannot raise the open-file limit: %w", err)
		}
	}
	return nil
}
