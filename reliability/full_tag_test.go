//go:build reliability_full

package reliability_test

// fullTag selects the full sizes (build tag reliability_full).
const fullTag = true
