package streams

import "errors"

// ErrConflict is returned by [Ensure] and [Provision] when an existing
// stream's configuration conflicts with the wanted one in a way that
// cannot, or must not, be changed in place. The error names each field.
var ErrConflict = errors.New("streams: existing stream conflicts")
