//go:build !unix

package chat_test

// raiseNoFile does nothing where there is no open-file limit to raise.
func raiseNoFile(uint64) error { return nil }
