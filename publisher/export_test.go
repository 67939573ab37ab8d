package publisher_test

import "github.com/google/uuid"

// newBenchID makes the same kind of ID the publisher generates, so the
// raw-msgid baseline pays for it too.
func newBenchID() string { return uuid.Must(uuid.NewV7()).String() }
