//go:build !reliability_full

package reliability_test

// fullTag selects the full sizes; JETWORKER_FULL=1 does too.
const fullTag = false
