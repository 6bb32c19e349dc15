package system

import (
	"strings"
	"testing"
)

func TestIDsIncreaseAndAreUnique(t *testing.T) {
	t.Parallel()
	var g IDs
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := g.NewID("dep")
		if !strings.HasPrefix(id, "dep_") || len(id) != 4+26 {
			t.Fatalf("malformed id %q", id)
		}
		if id <= prev {
			t.Fatalf("id %q not after %q", id, prev)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		prev = id
	}
}
