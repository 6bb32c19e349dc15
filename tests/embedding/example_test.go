// Package embedding shows Tiyn embedded in another Go program: the
// merchant's own service builds the ledger and mounts the Monetix and REST
// handlers on its own http.ServeMux beside its own routes.
package embedding_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/tiyn/tiyn/adapters/cleanpath"
	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tiyn-embed")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// 1. The store (SQLite here; "postgres://…" for PostgreSQL), migrated.
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: "sqlite:" + filepath.Join(dir, "ledger.db"), GroupCommit: true})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	// 2. The ledger: the use cases over the store, a clock and an id source.
	var ledger ports.Ledger = app.NewService(store, system.Clock{}, &system.IDs{})

	// 3. The handlers, on the program's own mux beside its own routes.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shop/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello from the shop") })
	rest.Register(mux, ledger, rest.Options{Tokens: []rest.Token{{Name: "backoffice", Role: rest.RoleWrite, Secret: "backoffice-token-0123456789"}}})
	platform, err := monetix.New(ledger, monetix.Config{Projects: []monetix.Project{{ID: "1234", Secret: []byte("project-secret")}}})
	if err != nil {
		log.Fatal(err)
	}
	platform.Register(mux)

	// cleanpath.Guard answers /v1//accounts and the like with the API's
	// JSON 404, where a bare ServeMux would send an HTML redirect.
	srv := httptest.NewServer(cleanpath.Guard(mux, nil))
	defer srv.Close()

	// The program can also call the ledger directly.
	opened, err := ledger.OpenAccount(ctx, ports.OpenAccount{CustomerID: "6552", Currency: domain.KZT, Actor: "shop"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("opened", opened.Account.CustomerID(), opened.Account.Currency(), opened.Account.Balance())

	// The platform asks whether the customer exists.
	body, _ := monetix.SignedJSON([]byte("project-secret"), monetix.VerifyRequestBody("1234", "6552"))
	res, err := http.Post(srv.URL+"/v1/monetix/requests", "application/json", strings.NewReader(string(body)))
	if err != nil {
		log.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	answer, _ := monetix.ParseAnswer(raw, nil)
	fmt.Println("verify code", answer.Code, answer.Currency)

	res, err = http.Get(srv.URL + "/shop/hello")
	if err != nil {
		log.Fatal(err)
	}
	raw, _ = io.ReadAll(res.Body)
	_ = res.Body.Close()
	fmt.Println(string(raw))
	// Output:
	// opened 6552 KZT 0.00
	// verify code 0 KZT
	// hello from the shop
}
