package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// TestStatementCSVMatchesREST: `tiyn statement --csv` and
// GET /v1/accounts/{id}/statement.csv print the same bytes for the same
// account, with enough lines to page on both sides (REST reads 500 a
// page, the command 1000), and for a period.
func TestStatementCSVMatchesREST(t *testing.T) {
	t.Parallel()
	env := migrated(t)
	seed(t, env)
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: env["TIYN_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	svc := app.NewService(store, system.Clock{}, &system.IDs{})
	acc, err := svc.AccountByCustomer(ctx, "6552", domain.KZT)
	if err != nil {
		t.Fatal(err)
	}
	const debits = 1100
	for i := range debits {
		description := "order " + strconv.Itoa(i)
		if i%97 == 0 {
			description = "+7 701 \"quoted\", with a comma\nand a line break"
		}
		if _, err := svc.Debit(ctx, ports.Debit{AccountID: acc.ID(), Amount: domain.NewAmount(1, domain.KZT),
			Description: description, IdempotencyKey: "csv-" + strconv.Itoa(i), RequestHash: "h" + strconv.Itoa(i), Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := rest.ParseTokens("viewer:read:r-0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	h := rest.New(svc, rest.Options{Tokens: tokens})
	viaREST := func(query string) []byte {
		req := httptest.NewRequest(http.MethodGet, "/v1/accounts/"+acc.ID()+"/statement.csv"+query, nil)
		req.Header.Set("Authorization", "Bearer r-0123456789abcdef0123456789abcdef")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("REST %s: %d %s", query, rec.Code, rec.Body.String())
		}
		return rec.Body.Bytes()
	}
	viaCLI := func(args ...string) []byte {
		m, stdout, stderr := testMain(env)
		if code, err := run(t, m, append([]string{"statement", "--csv"}, args...)...); code != exitOK {
			t.Fatalf("CLI %q: exit %d %v %s", args, code, err, stderr)
		}
		return []byte(stdout.String())
	}

	cli, api := viaCLI("6552"), viaREST("")
	if lines := bytes.Count(api, []byte("\n")); lines < 1+3+debits {
		t.Fatalf("REST export has %d lines, want at least %d", lines, 1+3+debits)
	}
	if !bytes.Equal(cli, api) {
		t.Fatalf("the CLI and the REST export differ:\n%s", firstDifference(cli, api))
	}
	if cli2 := viaCLI(acc.ID()); !bytes.Equal(cli2, api) {
		t.Fatal("the CLI by account id differs from the REST export")
	}
	// A period: nothing before 2000, and an empty export is just the header.
	empty := viaREST("?to=2000-01-01T00:00:00Z")
	if !bytes.Equal(viaCLI("6552", "--to", "2000-01-01"), empty) || bytes.Count(empty, []byte("\n")) != 1 {
		t.Fatalf("empty period: REST %q", empty)
	}
}

// firstDifference shows where two outputs part.
func firstDifference(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return "line " + strconv.Itoa(i+1) + ":\n CLI  " + la[i] + "\n REST " + lb[i]
		}
	}
	return "lengths " + strconv.Itoa(len(la)) + " and " + strconv.Itoa(len(lb))
}
