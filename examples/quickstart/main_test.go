package main

import "testing"

// TestQuickstartRuns keeps the README's example program working.
func TestQuickstartRuns(t *testing.T) {
	t.Parallel()
	if err := run(); err != nil {
		t.Fatalf("quickstart: %v", err)
	}
}
