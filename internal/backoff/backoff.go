// Package backoff computes retry delays: exponential growth with jitter
// and a cap.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Exponential describes delays that double from Base up to Max, each
// spread evenly around that nominal value by up to Jitter of it, earlier
// or later.
type Exponential struct {
	// Base is the delay after the first failed attempt.
	Base time.Duration
	// Max caps the nominal delay (before jitter).
	Max time.Duration
	// Jitter is the fraction, in [0, 1], by which a delay may differ from
	// its nominal value, in either direction.
	Jitter float64
}

// Delay returns the delay after the given failed attempt (1-based): a
// random value, uniform in [d*(1-Jitter), d*(1+Jitter)] where
// d = min(Base*2^(attempt-1), Max) is the nominal delay, so the mean is d.
func (e Exponential) Delay(attempt int) time.Duration {
	d := e.Nominal(attempt)
	j := min(max(e.Jitter, 0), 1)
	if j == 0 || d <= 0 {
		return d
	}
	return d + time.Duration((2*rand.Float64()-1)*j*float64(d))
}

// Nominal returns the delay after the given attempt before jitter.
func (e Exponential) Nominal(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := e.Base
	for i := 1; i < attempt; i++ {
		if d >= e.Max/2 {
			return e.Max
		}
		d *= 2
	}
	return min(d, e.Max)
}

// Bounds returns the smallest and largest delay Delay can return for the
// attempt.
func (e Exponential) Bounds(attempt int) (lo, hi time.Duration) {
	d := e.Nominal(attempt)
	j := min(max(e.Jitter, 0), 1)
	return d - time.Duration(j*float64(d)), d + time.Duration(j*float64(d))
}
