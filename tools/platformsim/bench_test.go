package platformsim

import "testing"

// The simulator's own cost per answer scanned (the cost per body written
// is monetix.BodyWriter's, benchmarked in the adapter). On the benchmark
// machine this CPU is taken from the server, so keep an eye on it.
func BenchmarkParseAnswer(b *testing.B) {
	ans := []byte(`{"code":0,"description":"kassa24 terminal payment","payment_id":"dep_01jd8r5m6a1b2c3d4e5f6g7h8j"}` + "\n")
	b.ReportAllocs()
	for b.Loop() {
		if a, ok := parseAnswer(ans, true); !ok || a.PaymentID == "" {
			b.Fatal("unparsed")
		}
	}
}
