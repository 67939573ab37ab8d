package webhook

import "errors"

// ErrInvalidSignature is wrapped by [Verify] when a signature header is
// malformed or does not match the body and secret.
var ErrInvalidSignature = errors.New("webhook: invalid signature")

// ErrSignatureExpired is wrapped by [Verify] when a signature's timestamp
// is further from the current time than the tolerance allows.
var ErrSignatureExpired = errors.New("webhook: signature timestamp out of tolerance")
