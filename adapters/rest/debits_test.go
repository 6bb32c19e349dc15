package rest_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type debitJSON struct {
	TransferID        string `json:"transfer_id"`
	AccountID         string `json:"account_id"`
	AmountMinor       int64  `json:"amount_minor"`
	Amount            string `json:"amount"`
	Currency          string `json:"currency"`
	Description       string `json:"description"`
	BalanceAfterMinor int64  `json:"balance_after_minor"`
	BalanceAfter      string `json:"balance_after"`
	IdempotencyKey    string `json:"idempotency_key"`
	CreatedAt         string `json:"created_at"`
	Replayed          bool   `json:"replayed"`
}

func (e *env) balanceMinor(accountID string) int64 {
	e.t.Helper()
	rec := e.do("GET", "/v1/accounts/"+accountID, readSecret, "")
	wantStatus(e.t, rec, http.StatusOK)
	return decode[accountJSON](e.t, rec).BalanceMinor
}

func TestDebitAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	e.credit("c1", 200_000) // 2000.00
	path := "/v1/accounts/" + acc.ID + "/debits"

	rec := e.do("POST", path, writeSecret, `{"amount":"150.00","description":"coffee"}`, "Idempotency-Key", "k-1")
	wantStatus(t, rec, http.StatusCreated)
	first := decode[debitJSON](t, rec)
	if first.TransferID == "" || first.AccountID != acc.ID || first.AmountMinor != 15_000 || first.Amount != "150.00" ||
		first.Currency != "KZT" || first.Description != "coffee" || first.BalanceAfterMinor != 185_000 ||
		first.BalanceAfter != "1850.00" || first.IdempotencyKey != "k-1" || first.Replayed || first.CreatedAt == "" {
		t.Fatalf("debit = %+v", first)
	}
	if rec.Header().Get("Idempotent-Replayed") != "" {
		t.Fatal("a first debit must not say Idempotent-Replayed")
	}

	// The same request with other whitespace, key order and an equivalent
	// amount ("150.0") is a replay: 200, the original result, no new money.
	for _, body := range []string{
		"{\n  \"description\" : \"coffee\",\n  \"amount\" : \"150.00\"\n}\n",
		`{"amount":"150.0","description":"coffee"}`,
		`{"amount":"150","description":"coffee"}`,
	} {
		rec = e.do("POST", path, writeSecret, body, "Idempotency-Key", "k-1")
		wantStatus(t, rec, http.StatusOK)
		if rec.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay lacks Idempotent-Replayed: true (body %q)", body)
		}
		again := decode[debitJSON](t, rec)
		if !again.Replayed || again.TransferID != first.TransferID || again.AmountMinor != 15_000 || again.CreatedAt != first.CreatedAt ||
			again.BalanceAfterMinor != first.BalanceAfterMinor || again.BalanceAfter != first.BalanceAfter || again.IdempotencyKey != "k-1" {
			t.Fatalf("replay = %+v, first = %+v", again, first)
		}
	}
	if got := e.balanceMinor(acc.ID); got != 185_000 {
		t.Fatalf("balance after replays = %d, want 185000", got)
	}

	// Same key, another request: 409, nothing moves.
	for _, body := range []string{`{"amount":"151.00","description":"coffee"}`, `{"amount":"150.00","description":"tea"}`, `{"amount":"150.00"}`} {
		wantError(t, e.do("POST", path, writeSecret, body, "Idempotency-Key", "k-1"), http.StatusConflict, "idempotency_key_reused")
	}
	if got := e.balanceMinor(acc.ID); got != 185_000 {
		t.Fatalf("balance after conflicts = %d, want 185000", got)
	}

	// A new key is a new debit.
	rec = e.do("POST", path, writeSecret, `{"amount":"0.01"}`, "Idempotency-Key", "k-2")
	wantStatus(t, rec, http.StatusCreated)
	if d := decode[debitJSON](t, rec); d.BalanceAfterMinor != 184_999 || d.Description != "" {
		t.Fatalf("second debit = %+v", d)
	}

	// Insufficient funds: 422, and the key stays usable.
	wantError(t, e.do("POST", path, writeSecret, `{"amount":"5000.00"}`, "Idempotency-Key", "k-3"), http.StatusUnprocessableEntity, "insufficient_funds")
	wantStatus(t, e.do("POST", path, writeSecret, `{"amount":"1849.99"}`, "Idempotency-Key", "k-3"), http.StatusCreated)
	if got := e.balanceMinor(acc.ID); got != 0 {
		t.Fatalf("balance = %d, want 0", got)
	}
}

func TestDebitRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	e.credit("c1", 100_000)
	path := "/v1/accounts/" + acc.ID + "/debits"
	tests := []struct {
		name, body, key string
		status          int
		code            string
		message         string
	}{
		{"no key", `{"amount":"1.00"}`, "", http.StatusBadRequest, "invalid_request", "Idempotency-Key"},
		{"key too long", `{"amount":"1.00"}`, strings.Repeat("k", 256), http.StatusBadRequest, "invalid_request", "255"},
		{"key with space", `{"amount":"1.00"}`, "a b", http.StatusBadRequest, "invalid_request", "Idempotency-Key"},
		{"number amount", `{"amount":150.00}`, "k", http.StatusBadRequest, "invalid_amount", "decimal string"},
		{"integer amount", `{"amount":150}`, "k", http.StatusBadRequest, "invalid_amount", "decimal string"},
		{"missing amount", `{"description":"x"}`, "k", http.StatusBadRequest, "invalid_amount", "required"},
		{"null amount", `{"amount":null}`, "k", http.StatusBadRequest, "invalid_amount", "required"},
		{"three decimals", `{"amount":"1.001"}`, "k", http.StatusBadRequest, "invalid_amount", "decimals"},
		{"zero", `{"amount":"0.00"}`, "k", http.StatusBadRequest, "invalid_amount", "greater than zero"},
		{"negative", `{"amount":"-1.00"}`, "k", http.StatusBadRequest, "invalid_amount", "greater than zero"},
		{"exponent", `{"amount":"1e3"}`, "k", http.StatusBadRequest, "invalid_amount", ""},
		{"thousands separator", `{"amount":"1,000.00"}`, "k", http.StatusBadRequest, "invalid_amount", ""},
		{"overflow", `{"amount":"999999999999999999999"}`, "k", http.StatusBadRequest, "invalid_amount", ""},
		{"description too long", `{"amount":"1.00","description":"` + strings.Repeat("d", 501) + `"}`, "k", http.StatusBadRequest, "invalid_request", "500"},
		{"description control char", `{"amount":"1.00","description":"a\nb"}`, "k", http.StatusBadRequest, "invalid_request", "control"},
		{"unknown field", `{"amount":"1.00","currency":"KZT"}`, "k", http.StatusBadRequest, "invalid_request", "currency"},
		{"trailing data", `{"amount":"1.00"}{}`, "k", http.StatusBadRequest, "invalid_json", ""},
		{"empty body", ``, "k", http.StatusBadRequest, "invalid_json", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var headers []string
			if tc.key != "" {
				headers = []string{"Idempotency-Key", tc.key}
			}
			msg := wantError(t, e.do("POST", path, writeSecret, tc.body, headers...), tc.status, tc.code)
			if !strings.Contains(msg, tc.message) {
				t.Fatalf("message %q does not mention %q", msg, tc.message)
			}
		})
	}
	t.Run("unknown account", func(t *testing.T) {
		t.Parallel()
		wantError(t, e.do("POST", "/v1/accounts/acc_nope/debits", writeSecret, `{"amount":"1.00"}`, "Idempotency-Key", "k"), http.StatusNotFound, "not_found")
	})
	t.Run("read token", func(t *testing.T) {
		t.Parallel()
		wantError(t, e.do("POST", path, readSecret, `{"amount":"1.00"}`, "Idempotency-Key", "k-read"), http.StatusForbidden, "forbidden")
	})
	if got := e.balanceMinor(acc.ID); got != 100_000 {
		t.Fatalf("rejected debits moved money: balance %d", got)
	}
}

func TestDebitBlockedAndClosedAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	blocked := e.openAccount("b")
	e.credit("b", 10_000)
	wantStatus(t, e.do("POST", "/v1/accounts/"+blocked.ID+"/block", writeSecret, ""), http.StatusOK)
	wantError(t, e.do("POST", "/v1/accounts/"+blocked.ID+"/debits", writeSecret, `{"amount":"1.00"}`, "Idempotency-Key", "k"),
		http.StatusConflict, "account_blocked")

	closed := e.openAccount("c")
	wantStatus(t, e.do("POST", "/v1/accounts/"+closed.ID+"/close", writeSecret, ""), http.StatusOK)
	wantError(t, e.do("POST", "/v1/accounts/"+closed.ID+"/debits", writeSecret, `{"amount":"1.00"}`, "Idempotency-Key", "k"),
		http.StatusConflict, "account_closed")
}

// TestDebitRace: 50 clients send the same debit with one key at once.
// Exactly one debit happens; everyone gets a success answer (201 once, 200
// replays otherwise) naming the same transfer; the balance drops once.
func TestDebitRace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  func(*testing.T) *env
	}{{"one transaction per update", newEnv}, {"group commit", newGroupCommitEnv}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testDebitRace(t, tc.env(t))
		})
	}
}

func testDebitRace(t *testing.T, e *env) {
	acc := e.openAccount("c1")
	e.credit("c1", 100_000)
	const clients = 50
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		codes   = make([]int, clients)
		bodies  = make([]string, clients)
		replays = make([]string, clients)
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec := e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"150.00","description":"race"}`, "Idempotency-Key", "race-key")
			codes[i], bodies[i], replays[i] = rec.Code, rec.Body.String(), rec.Header().Get("Idempotent-Replayed")
		}()
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("debit race did not finish in 60s")
	}

	created, replayed := 0, 0
	transfers := map[string]bool{}
	for i := range clients {
		switch codes[i] {
		case http.StatusCreated:
			created++
		case http.StatusOK:
			replayed++
			if replays[i] != "true" || !strings.Contains(bodies[i], `"replayed":true`) {
				t.Errorf("client %d: 200 without replay marks: %s", i, bodies[i])
			}
		default:
			t.Errorf("client %d: status %d %s", i, codes[i], bodies[i])
			continue
		}
		var d debitJSON
		if err := jsonUnmarshal(bodies[i], &d); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		transfers[d.TransferID] = true
	}
	if created != 1 || replayed != clients-1 {
		t.Fatalf("created %d, replayed %d; want 1 and %d", created, replayed, clients-1)
	}
	if len(transfers) != 1 {
		t.Fatalf("answers name %d transfers, want 1", len(transfers))
	}
	if got := e.balanceMinor(acc.ID); got != 100_000-15_000 {
		t.Fatalf("balance = %d, want %d", got, 100_000-15_000)
	}
	st := decode[statementJSON](t, e.do("GET", "/v1/accounts/"+acc.ID+"/statement", readSecret, ""))
	if len(st.Items) != 2 {
		t.Fatalf("statement has %d lines, want credit + one debit", len(st.Items))
	}
}
