package main

import (
	"os"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// envInt returns the integer in environment variable name, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
