package sqlstore

import "testing"

func TestChunksArePowersOfTwoCoveringEveryRow(t *testing.T) {
	for n := range 3*maxChunkRows + 2 {
		next, total := 0, 0
		for _, c := range chunks(n) {
			if c.from != next || c.n <= 0 || c.n > maxChunkRows || c.n&(c.n-1) != 0 {
				t.Fatalf("chunks(%d): bad chunk %+v after row %d", n, c, next)
			}
			next += c.n
			total += c.n
		}
		if total != n {
			t.Fatalf("chunks(%d) cover %d rows", n, total)
		}
	}
	if got := len(chunks(maxChunkRows - 1)); got != 6 {
		t.Errorf("chunks(%d) = %d statements, want 6 (32+16+8+4+2+1)", maxChunkRows-1, got)
	}
}

func TestMultiRow(t *testing.T) {
	if got := multiRow("INSERT INTO t VALUES ", "(?, ?)", 3, " RETURNING id"); got != "INSERT INTO t VALUES (?, ?), (?, ?), (?, ?) RETURNING id" {
		t.Errorf("multiRow = %q", got)
	}
}

func TestPartitionOfKeepsAKeyTogether(t *testing.T) {
	b := &batcher{}
	for range 4 {
		b.parts = append(b.parts, &partition{})
	}
	if b.partitionOf("") != b.parts[0] {
		t.Error("a write without a key must go to partition 0")
	}
	used := map[*partition]bool{}
	for i := range 200 {
		key := "acc_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		p := b.partitionOf(key)
		if p != b.partitionOf(key) {
			t.Fatalf("key %q maps to two partitions", key)
		}
		used[p] = true
	}
	if len(used) != 4 {
		t.Errorf("200 keys used %d of 4 partitions", len(used))
	}
}
