package rest_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestMessagesSayWhatIsAllowed: a message a person reads states amounts in
// the currency's major units with the currency, and says exactly what a
// header may hold.
func TestMessagesSayWhatIsAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("msg-1")
	e.credit("msg-1", 10_000)
	path := "/v1/accounts/" + acc.ID + "/debits"

	msg := wantError(t, e.do("POST", path, writeSecret, `{"amount":"1000.00"}`, "Idempotency-Key", "msg-k1"),
		http.StatusUnprocessableEntity, "insufficient_funds")
	for _, want := range []string{"100.00 KZT", "1000.00 KZT", acc.ID} {
		if !strings.Contains(msg, want) {
			t.Errorf("insufficient funds message %q lacks %q", msg, want)
		}
	}

	// "printable ASCII" would include the space the key refuses.
	for key, where := range map[string]string{"a b": "a space at byte 2", "ключ": "byte 1"} {
		msg = wantError(t, e.do("POST", path, writeSecret, `{"amount":"1.00"}`, "Idempotency-Key", key), http.StatusBadRequest, "invalid_request")
		if strings.Contains(msg, "printable") || !strings.Contains(msg, "no spaces") || !strings.Contains(msg, "! to ~") || !strings.Contains(msg, where) {
			t.Errorf("key %q: message %q should say what is allowed and what was found (%s)", key, msg, where)
		}
	}
	msg = wantError(t, e.do("POST", path, writeSecret, `{"amount":"1.00"}`), http.StatusBadRequest, "invalid_request")
	if !strings.Contains(msg, "required") || !strings.Contains(msg, "no spaces") {
		t.Errorf("missing key: message %q", msg)
	}
	if got := e.balanceMinor(acc.ID); got != 10_000 {
		t.Fatalf("refused debits moved money: %d", got)
	}
}
