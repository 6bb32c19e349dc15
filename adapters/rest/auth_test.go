package rest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/ports"
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	secretA := "aaaaaaaaaaaaaaaa"         // exactly the minimum
	secretB := "b:with:colons-0123456789" // a secret may hold ':'
	ok := []struct {
		name, in string
		want     []rest.Token
	}{
		{"empty", "", nil},
		{"one", "ops:write:" + secretA, []rest.Token{{Name: "ops", Role: rest.RoleWrite, Secret: secretA}}},
		{"comma list with spaces", " ops:write:" + secretA + " , viewer:read:" + secretB + " ",
			[]rest.Token{{Name: "ops", Role: rest.RoleWrite, Secret: secretA}, {Name: "viewer", Role: rest.RoleRead, Secret: secretB}}},
		{"file with comments and blank lines", "# tokens\n\nops:write:" + secretA + "\r\n  # viewer below\nviewer:read:" + secretB + "\n,\n",
			[]rest.Token{{Name: "ops", Role: rest.RoleWrite, Secret: secretA}, {Name: "viewer", Role: rest.RoleRead, Secret: secretB}}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rest.ParseTokens(tc.in)
			if err != nil {
				t.Fatalf("ParseTokens: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d tokens, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("token %d = %#v, want %#v (secrets equal: %v)", i, got[i], tc.want[i], got[i].Secret == tc.want[i].Secret)
				}
			}
		})
	}

	secret := "s3cr3t-VALUE-never-echo"
	bad := []struct {
		name, in, wantMsg string
	}{
		{"one field", secret, "entry 1"},
		{"two fields", "ops:" + secret, "entry 1"},
		{"empty secret", "ops:write:", "empty token"},
		{"short secret", "ops:write:short-" + "123", "shorter than 16"},
		{"unknown role", "ops:admin:" + secret, "unknown role"},
		{"swapped fields", "ops:" + secret + ":write", "unknown role"},
		{"upper-case role", "ops:WRITE:" + secret, "unknown role"},
		{"empty name", ":write:" + secret, "empty name"},
		{"bad name", "o p:write:" + secret, "name may hold"},
		{"secret as name", secret + "!:write:" + secret, "name may hold"},
		{"duplicate name", "ops:write:" + secret + "\nops:read:" + secret + "-other", `duplicate name "ops"`},
		{"duplicate secret", "ops:write:" + secret + ",viewer:read:" + secret, "same token as entry 1"},
		{"second entry bad", "ops:write:" + secret + ",# comment,viewer:read:x", "entry 2"},
		{"space inside secret", "ops:write:" + secret + " tail", "space or control"},
		{"secret too long", "ops:write:" + strings.Repeat("s", 1025), "longer than 1024"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rest.ParseTokens(tc.in)
			if err == nil {
				t.Fatalf("ParseTokens accepted %d tokens", len(got))
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "short-123") {
				t.Fatalf("error %q echoes the secret", err)
			}
		})
	}
}

func TestTokenNeverPrintsSecret(t *testing.T) {
	t.Parallel()
	tok := rest.Token{Name: "ops", Role: rest.RoleWrite, Secret: "do-not-print-this-secret"}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("token", "token", tok)
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprint([]rest.Token{tok}), logs.String()} {
		if strings.Contains(s, tok.Secret) {
			t.Fatalf("printed token leaks its secret: %s", s)
		}
		if !strings.Contains(s, "ops") {
			t.Fatalf("printed token lost its name: %s", s)
		}
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	tests := []struct {
		name, method, path, auth string
		status                   int
		code                     string
	}{
		{"no header", "GET", "/v1/accounts", "", http.StatusUnauthorized, "unauthorized"},
		{"basic scheme", "GET", "/v1/accounts", "Basic " + readSecret, http.StatusUnauthorized, "unauthorized"},
		{"bare token", "GET", "/v1/accounts", readSecret, http.StatusUnauthorized, "unauthorized"},
		{"empty bearer", "GET", "/v1/accounts", "Bearer ", http.StatusUnauthorized, "unauthorized"},
		{"wrong token", "GET", "/v1/accounts", "Bearer wrong-0123456789abcdef0123456789", http.StatusUnauthorized, "unauthorized"},
		{"prefix of a token", "GET", "/v1/accounts", "Bearer " + readSecret[:len(readSecret)-1], http.StatusUnauthorized, "unauthorized"},
		{"token plus a byte", "GET", "/v1/accounts", "Bearer " + readSecret + "x", http.StatusUnauthorized, "unauthorized"},
		{"token in other case", "GET", "/v1/accounts", "Bearer " + strings.ToUpper(readSecret), http.StatusUnauthorized, "unauthorized"},
		{"name instead of token", "GET", "/v1/accounts", "Bearer " + readName, http.StatusUnauthorized, "unauthorized"},
		{"read on GET", "GET", "/v1/accounts", "Bearer " + readSecret, http.StatusOK, ""},
		{"lower-case scheme", "GET", "/v1/accounts", "bearer " + readSecret, http.StatusOK, ""},
		{"write on GET", "GET", "/v1/accounts/" + acc.ID, "Bearer " + writeSecret, http.StatusOK, ""},
		{"read on POST", "POST", "/v1/accounts/" + acc.ID + "/block", "Bearer " + readSecret, http.StatusForbidden, "forbidden"},
		{"read on open", "POST", "/v1/accounts", "Bearer " + readSecret, http.StatusForbidden, "forbidden"},
		{"no token on POST", "POST", "/v1/accounts/" + acc.ID + "/block", "", http.StatusUnauthorized, "unauthorized"},
		{"no token on CSV", "GET", "/v1/deposits.csv", "", http.StatusUnauthorized, "unauthorized"},
		{"no token on openapi", "GET", "/v1/openapi.json", "", http.StatusUnauthorized, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := serve(e.h, req)
			if tc.code == "" {
				wantStatus(t, rec, tc.status)
				return
			}
			wantError(t, rec, tc.status, tc.code)
			if tc.status == http.StatusUnauthorized {
				challenge := rec.Header().Get("WWW-Authenticate")
				if !strings.HasPrefix(challenge, "Bearer") {
					t.Fatalf("WWW-Authenticate = %q", challenge)
				}
				if tc.auth != "" && !strings.Contains(challenge, `error="invalid_token"`) {
					t.Fatalf("a presented but bad token should say invalid_token: %q", challenge)
				}
			}
			if strings.Contains(rec.Body.String(), readSecret) || strings.Contains(rec.Body.String(), writeSecret) {
				t.Fatal("an error body echoes a secret")
			}
		})
	}
	// Forbidden requests changed nothing.
	if got := decode[accountJSON](t, e.do("GET", "/v1/accounts/"+acc.ID, readSecret, "")); got.Status != "active" {
		t.Fatalf("a read token blocked the account: %+v", got)
	}
}

func TestNoTokensRefusesEverything(t *testing.T) {
	t.Parallel()
	svc := app.NewService(newStore(t), system.Clock{}, &system.IDs{})
	e := newEnvWith(t, svc, rest.Options{Tokens: []rest.Token{}})
	wantError(t, e.do("GET", "/v1/accounts", readSecret, ""), http.StatusUnauthorized, "unauthorized")
	wantError(t, e.do("GET", "/v1/accounts", "", ""), http.StatusUnauthorized, "unauthorized")
}

// actorLedger records the Actor every command carries.
type actorLedger struct {
	*app.Service
	actors chan string
}

func (l actorLedger) OpenAccount(ctx context.Context, cmd ports.OpenAccount) (ports.AccountResult, error) {
	l.actors <- cmd.Actor
	return l.Service.OpenAccount(ctx, cmd)
}

func (l actorLedger) Debit(ctx context.Context, cmd ports.Debit) (ports.DebitResult, error) {
	l.actors <- cmd.Actor
	return l.Service.Debit(ctx, cmd)
}

func TestActorIsTheTokenName(t *testing.T) {
	t.Parallel()
	svc := app.NewService(newStore(t), system.Clock{}, &system.IDs{})
	ledger := actorLedger{Service: svc, actors: make(chan string, 10)}
	e := newEnvWith(t, ledger, rest.Options{})
	e.svc = svc

	// A logging middleware outside the handler sees the actor through the
	// slot it installs.
	var seen []string
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(rest.ContextWithActorSlot(r.Context()))
		e.h.ServeHTTP(w, r)
		seen = append(seen, rest.ActorFrom(r.Context()))
	})
	req := httptest.NewRequest("POST", "/v1/accounts", strings.NewReader(`{"customer_id":"c1"}`))
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	req.Header.Set("Content-Type", "application/json")
	wantStatus(t, serve(outer, req), http.StatusCreated)
	if got := <-ledger.actors; got != writeName {
		t.Fatalf("OpenAccount actor = %q, want %q", got, writeName)
	}
	acc := decode[accountJSON](t, e.do("GET", "/v1/accounts?customer_id=c1", readSecret, ""))
	e.credit("c1", 1_000)
	wantStatus(t, e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"1.00"}`, "Idempotency-Key", "k"), http.StatusCreated)
	if got := <-ledger.actors; got != writeName {
		t.Fatalf("Debit actor = %q", got)
	}

	// An unauthenticated request leaves the slot empty.
	wantError(t, serve(outer, httptest.NewRequest("GET", "/v1/accounts", nil)), http.StatusUnauthorized, "unauthorized")
	req = httptest.NewRequest("GET", "/v1/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	wantStatus(t, serve(outer, req), http.StatusOK)
	if strings.Join(seen, ",") != writeName+",,"+readName {
		t.Fatalf("actors seen by the middleware = %q", seen)
	}
	if rest.ActorFrom(context.Background()) != "" {
		t.Fatal("ActorFrom on a bare context must be empty")
	}
}
