package platformsim

import "testing"

// The simulator's own cost per message: one body built and signed, and one
// answer scanned. On the benchmark machine this CPU is taken from the
// server, so keep an eye on it.
func BenchmarkCallbackBody(b *testing.B) {
	s := newSigner([]byte(vectorSecret), 1234, "runtag")
	p := cbParams{kind: cbSuccess, paymentID: "dep_01jd8r5m6a1b2c3d4e5f6g7h8j", operationID: 36011000001676,
		amount: 10000, customerID: "sim-abcdefgh-17", providerPay: "k24-36011000001676"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		p.operationID++
		buf = s.callbackBody(buf[:0], p)
	}
}

func BenchmarkCheckDepositBody(b *testing.B) {
	s := newSigner([]byte(vectorSecret), 1234, "runtag")
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.checkDepositBody(buf[:0], "sim-abcdefgh-17", 10000)
	}
}

func BenchmarkParseAnswer(b *testing.B) {
	ans := []byte(`{"code":0,"description":"kassa24 terminal payment","payment_id":"dep_01jd8r5m6a1b2c3d4e5f6g7h8j"}` + "\n")
	b.ReportAllocs()
	for b.Loop() {
		if a, ok := parseAnswer(ans, true); !ok || a.PaymentID == "" {
			b.Fatal("unparsed")
		}
	}
}
