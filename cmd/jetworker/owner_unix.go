//go:build unix

package main

import (
	"os"
	"syscall"
)

// fileOwner returns the uid owning the file, or -1 if unknown.
func fileOwner(st os.FileInfo) int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid)
	}
	return -1
}
