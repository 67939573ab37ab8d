package dashboard

import "errors"

var (
	// ErrAlreadyRunning is returned by [Server.Run] when it is called a
	// second time.
	ErrAlreadyRunning = errors.New("dashboard: Run called twice")
	// ErrNotReady is wrapped by the error of a check made with [ChanCheck]
	// while its channel is still open.
	ErrNotReady = errors.New("dashboard: not ready")
)
