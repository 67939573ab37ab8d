package schedule

import "time"

// Fire describes one fire attempt, passed to Hooks.FiredFunc.
type Fire struct {
	// Schedule is the entry's name.
	Schedule string
	// Slot is the slot fired.
	Slot time.Time
	// ID is the message ID sent: "<name>@<slot RFC 3339 UTC>".
	ID string
	// Lag is the time from the slot to the publish's PubAck (jitter
	// included).
	Lag time.Duration
	// Duplicate is true when the stream already had this ID (another
	// leader fired the slot first); the slot was still published once.
	Duplicate bool
	// Err is the failure, if any; the slot is tried again later.
	Err error
}

// Hooks let metrics and health checks observe a [Scheduler] without it
// depending on them. Every field is optional. They run on the scheduler's
// goroutines and must not block.
type Hooks struct {
	// LeaderFunc is called with true when this instance gains leadership
	// and false when it loses it or stops.
	LeaderFunc func(leading bool)
	// FiredFunc is called after every fire attempt.
	FiredFunc func(Fire)
	// RenewFailedFunc is called when a lease write fails for a reason
	// other than losing the lease (timeouts, connection trouble).
	RenewFailedFunc func(err error)
}

// JoinHooks combines hooks (metrics and your own, say) into one: each
// function of the result calls the corresponding functions of hooks in
// the order given. Missing functions are skipped.
func JoinHooks(hooks ...Hooks) Hooks {
	var leaders []func(bool)
	var fires []func(Fire)
	var renews []func(error)
	for _, h := range hooks {
		if h.LeaderFunc != nil {
			leaders = append(leaders, h.LeaderFunc)
		}
		if h.FiredFunc != nil {
			fires = append(fires, h.FiredFunc)
		}
		if h.RenewFailedFunc != nil {
			renews = append(renews, h.RenewFailedFunc)
		}
	}
	var out Hooks
	if len(leaders) > 0 {
		out.LeaderFunc = func(l bool) {
			for _, f := range leaders {
				f(l)
			}
		}
	}
	if len(fires) > 0 {
		out.FiredFunc = func(fr Fire) {
			for _, f := range fires {
				f(fr)
			}
		}
	}
	if len(renews) > 0 {
		out.RenewFailedFunc = func(err error) {
			for _, f := range renews {
				f(err)
			}
		}
	}
	return out
}

func (h Hooks) leader(l bool) {
	if h.LeaderFunc != nil {
		h.LeaderFunc(l)
	}
}

func (h Hooks) fired(f Fire) {
	if h.FiredFunc != nil {
		h.FiredFunc(f)
	}
}

func (h Hooks) renewFailed(err error) {
	if h.RenewFailedFunc != nil {
		h.RenewFailedFunc(err)
	}
}
