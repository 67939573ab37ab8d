package publisher

import (
	"fmt"
	"strings"
)

// ValidateSubject checks that s is a subject one can publish on: not
// empty, no white space, no empty tokens and no wildcard tokens. The error
// wraps [ErrInvalidSubject] and quotes s. It does no I/O.
func ValidateSubject(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalidSubject)
	}
	if strings.ContainsAny(s, " \t\r\n\f\v") {
		return fmt.Errorf("%w: %q contains white space", ErrInvalidSubject, s)
	}
	for tok := range strings.SplitSeq(s, ".") {
		switch tok {
		case "":
			return fmt.Errorf("%w: %q has an empty token", ErrInvalidSubject, s)
		case "*", ">":
			return fmt.Errorf("%w: %q has a wildcard token %q", ErrInvalidSubject, s, tok)
		}
	}
	return nil
}
