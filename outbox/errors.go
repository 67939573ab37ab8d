package outbox

import "errors"

var (
	// ErrInvalidOptions is wrapped by the error [Outbox.Enqueue] and its
	// variants return, before any SQL, for contradictory or malformed
	// [EnqueueOpts]: Delay and At both set, a negative Delay, an ID or
	// header with line breaks, an invalid header name.
	ErrInvalidOptions = errors.New("outbox: invalid enqueue options")
	// ErrReservedHeader is wrapped by the error for a header whose name
	// starts with "Nats-" or "Jetworker-" (in any case), returned before any SQL by
	// [Outbox.Enqueue] and its variants. Such headers are directives to
	// the server (Nats-Rollup: all would wipe a stream, Nats-Expected-*
	// would make publishes fail) or jetworker's own; the relay sets the
	// ones it needs, Nats-Msg-Id from EnqueueOpts.ID and
	// Jetworker-Enqueued-At from the row's due time. A row inserted by hand with one is
	// moved aside by the relay.
	ErrReservedHeader = errors.New("outbox: header reserved for the server")
	// ErrInvalidConfig is wrapped by every problem [New], [NewRelay],
	// [Migrate] and [MigrationSQL] find in a [Config] or [RelayConfig].
	ErrInvalidConfig = errors.New("outbox: invalid configuration")
	// ErrNotMigrated is returned by [Relay.Run] when the outbox table does
	// not exist: run [Migrate] (or jetworker outbox migrate) first.
	ErrNotMigrated = errors.New("outbox: outbox table missing, run the migration")
	// ErrDeadNotFound is wrapped by the error [Outbox.RetryDead] and
	// [Outbox.DeleteDead] return for IDs that are not dead rows; the
	// message lists them. The other IDs were handled.
	ErrDeadNotFound = errors.New("outbox: no such dead row")
	// ErrAlreadyRunning is returned by a second call to [Relay.Run].
	ErrAlreadyRunning = errors.New("outbox: relay already running")
)
