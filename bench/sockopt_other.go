//go:build !linux

package main

// setBindNoPort does nothing where IP_BIND_ADDRESS_NO_PORT does not exist:
// ports are then chosen at bind time, ~28,000 per source address.
func setBindNoPort(int) error { return nil }
