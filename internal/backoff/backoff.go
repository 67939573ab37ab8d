// Package backoff computes retry delays: exponential growth with jitter
// and a cap.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Exponential describes delays that double from Base up to Max, each
// reduced by a random part of up to Jitter of itself.
type Exponential struct {
	// Base is the delay after the first failed attempt.
	Base time.Duration
	// Max caps the delay before jitter.
	Max time.Duration
	// Jitter is the fraction, in [0, 1], of the delay that is random.
	Jitter float64
}

// Delay returns the delay after the given failed attempt (1-based). It is
// in [d*(1-Jitter), d] where d = min(Base*2^(attempt-1), Max).
func (e Exponential) Delay(attempt int) time.Duration {
	d := e.Ceiling(attempt)
	j := min(max(e.Jitter, 0), 1)
	if j == 0 || d <= 0 {
		return d
	}
	return d - time.Duration(rand.Float64()*j*float64(d))
}

// Ceiling returns the delay after the given attempt before jitter.
func (e Exponential) Ceiling(attempt int) time.Duration {
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

// Floor returns the smallest delay Delay can return for the attempt.
func (e Exponential) Floor(attempt int) time.Duration {
	d := e.Ceiling(attempt)
	j := min(max(e.Jitter, 0), 1)
	return d - time.Duration(j*float64(d))
}
