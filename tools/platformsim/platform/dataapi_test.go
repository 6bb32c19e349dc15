package platform_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

const (
	dataToken  = "data-token-0123456789"
	dataSecret = "data-secret-0123456789"
)

// TestDataAPIThroughTheAdapter reads a day from the simulated Data API
// with the adapter's own source: only operations completed in the day,
// in pages, a duplicate listed twice, the faults' changes visible, and a
// request with another token or secret refused.
func TestDataAPIThroughTheAdapter(t *testing.T) {
	loc, err := domain.LoadBusinessZone("")
	if err != nil {
		t.Fatal(err)
	}
	day, err := domain.ParseBusinessDay("2026-12-02", loc)
	if err != nil {
		t.Fatal(err)
	}
	ps := platform.NewPayments()
	at := day.Start().Add(time.Hour)
	const n = 25
	for i := range n {
		id := "p" + strconv.Itoa(i)
		if err := ps.Open(1234, id, int64(1000+i), 10_000, "KZT", at); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue // still processing: in no interval
		}
		done := at.Add(time.Duration(i) * time.Minute)
		if i == 1 {
			done = day.End() // the next day
		}
		if err := ps.Update(id, int64(1000+i), platform.StatusSuccess, done); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ps.Inject("p2", platform.FaultAmount, 10_100, ""))
	must(ps.Inject("p3", platform.FaultCurrency, 0, "USD"))
	must(ps.Inject("p4", platform.FaultDeclined, 0, ""))
	must(ps.Inject("p5", platform.FaultDuplicate, 0, ""))
	must(ps.Inject("p0", platform.FaultPending, 0, ""))
	if err := ps.Inject("p6", platform.FaultPending, 0, ""); err == nil {
		t.Fatal("a completed sale marked pending")
	}
	if err := ps.Inject("p6", platform.FaultAmount, 10_000, ""); err == nil {
		t.Fatal("an amount fault with the same amount accepted")
	}

	api, err := platform.NewDataAPI(platform.DataAPIConfig{Payments: ps, Token: dataToken, Secret: []byte(dataSecret)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	read := func(token, secret string) ([]ports.SourceRow, error) {
		src, err := monetix.NewDataSource(monetix.DataConfig{URL: srv.URL, Token: token, Secret: []byte(secret), PageSize: 7, RequireSignature: true})
		if err != nil {
			t.Fatal(err)
		}
		var rows []ports.SourceRow
		_, err = src.Operations(t.Context(), day, func(r ports.SourceRow) error { rows = append(rows, r); return nil },
			func(e ports.RowError) error { t.Errorf("bad row %+v", e); return nil })
		return rows, err
	}
	rows, err := read(dataToken, dataSecret)
	if err != nil {
		t.Fatal(err)
	}
	// p0 not completed, p1 completed the next day, p5 twice.
	if len(rows) != n-2+1 {
		t.Fatalf("%d rows, want %d", len(rows), n-1)
	}
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.PaymentID]++
		switch r.PaymentID {
		case "p2":
			if r.Amount.Minor() != 10_100 {
				t.Errorf("p2: amount %s", r.Amount)
			}
		case "p3":
			if r.Amount.Currency().Code() != "USD" {
				t.Errorf("p3: currency %s", r.Amount.Currency().Code())
			}
		case "p4":
			if r.Status != monetix.StatusDecline {
				t.Errorf("p4: status %s", r.Status)
			}
		}
		if !day.Contains(r.CompletedAt) {
			t.Errorf("%s completed %s, outside %s", r.PaymentID, r.CompletedAt, day)
		}
	}
	if seen["p0"] != 0 || seen["p1"] != 0 || seen["p5"] != 2 || seen["p6"] != 1 {
		t.Fatalf("listings %v", seen)
	}
	if _, err := read("another-token-0123456789", dataSecret); err == nil {
		t.Fatal("an unknown token was answered")
	}
	if _, err := read(dataToken, "another-secret"); err == nil {
		t.Fatal("a request signed with another secret was answered")
	}
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, monetix.DataOperationsPath, nil),
		httptest.NewRequest(http.MethodPost, "/v1/other", bytes.NewReader([]byte("{}"))),
		httptest.NewRequest(http.MethodPost, monetix.DataOperationsPath, bytes.NewReader([]byte("{"))),
	} {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			t.Errorf("%s %s answered 200", r.Method, r.URL.Path)
		}
	}
	if st := api.Stats(); st.Refused < 5 || st.Answered < 4 {
		t.Errorf("stats %+v", st)
	}
}
