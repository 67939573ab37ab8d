//go:build !unix

package bench

import "time"

// processCPU is the CPU time this process has used; 0 where unknown.
func processCPU() time.Duration { return 0 }
