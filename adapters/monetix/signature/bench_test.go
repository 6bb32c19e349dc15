package signature_test

import (
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// callbackVector is V3, the kassa24 purchase callback: the message this
// package handles most often.
func callbackVector(b *testing.B) vector {
	for _, v := range loadVectors(b) {
		if strings.HasPrefix(v.Name, "kassa24 purchase callback") {
			return v
		}
	}
	b.Fatal("callback vector not found")
	return vector{}
}

func BenchmarkSignCallback(b *testing.B) {
	v := callbackVector(b)
	secret, body := []byte(v.Secret), []byte(v.JSON)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		sig, err := signature.SignBody(secret, body)
		if err != nil || sig != v.Signature {
			b.Fatalf("SignBody = %q, %v", sig, err)
		}
	}
}

func BenchmarkVerifyCallback(b *testing.B) {
	v := callbackVector(b)
	secret, body := []byte(v.Secret), []byte(v.JSON)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signature.VerifyBody(secret, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStringToSignCallback isolates flatten+sort+join from JSON decoding.
func BenchmarkStringToSignCallback(b *testing.B) {
	v := callbackVector(b)
	doc := mustDecode(b, v.JSON)
	b.ReportAllocs()
	for b.Loop() {
		if s := signature.StringToSign(doc); len(s) != len(v.StringToSign) {
			b.Fatal(s)
		}
	}
}

// BenchmarkVerifyDecodedCallback is Verify on an already decoded document:
// flatten+sort+join plus the HMAC.
func BenchmarkVerifyDecodedCallback(b *testing.B) {
	v := callbackVector(b)
	doc := mustDecode(b, v.JSON)
	secret := []byte(v.Secret)
	b.ReportAllocs()
	for b.Loop() {
		if err := signature.Verify(secret, doc); err != nil {
			b.Fatal(err)
		}
	}
}
