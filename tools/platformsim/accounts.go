package platformsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Mismatch is a customer whose balance differs from what the run expects.
type Mismatch struct {
	CustomerID string `json:"customer_id"`
	// Want is the balance expected: the balance at the start plus every
	// payment whose final outcome is a success answered 200, counted once.
	Want int64 `json:"want_minor"`
	// WantUpTo, when set, is the highest acceptable balance: payments whose
	// success callback never got a 200 may or may not have been credited.
	WantUpTo int64 `json:"want_up_to_minor,omitempty"`
	// Got is the balance_minor the REST API answered.
	Got int64 `json:"got_minor"`
}

// accountJSON is the part of the REST account the simulator reads.
type accountJSON struct {
	ID           string `json:"id"`
	CustomerID   string `json:"customer_id"`
	Currency     string `json:"currency"`
	BalanceMinor *int64 `json:"balance_minor"`
}

func decodeAccount(ans []byte, customerID string) (accountJSON, error) {
	var a accountJSON
	if err := json.Unmarshal(ans, &a); err != nil {
		return a, fmt.Errorf("unreadable account %s", snippet(ans))
	}
	if a.BalanceMinor == nil || a.CustomerID != customerID || a.Currency != simCurrency {
		return a, fmt.Errorf("unexpected account %s", snippet(ans))
	}
	return a, nil
}

// forEachCustomer runs fn for every customer on Concurrency goroutines,
// each with its own sender (no latency recorded). It stops at the first
// failure and returns it.
func (s *sim) forEachCustomer(ctx context.Context, fn func(snd *sender, i int) string) string {
	var (
		next  atomic.Int64
		once  sync.Once
		first string
		wg    sync.WaitGroup
	)
	for range min(s.cfg.Concurrency, len(s.customers)) {
		snd := newSender(s)
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(s.customers) || ctx.Err() != nil {
					return
				}
				if fail := fn(snd, i); fail != "" {
					once.Do(func() { first = fail })
					next.Store(int64(len(s.customers))) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	if first == "" && ctx.Err() != nil {
		return ctx.Err().Error()
	}
	return first
}

// openAccounts opens every customer's KZT account through the REST API.
func (s *sim) openAccounts(ctx context.Context) error {
	fail := s.forEachCustomer(ctx, func(snd *sender, i int) string {
		c := &s.customers[i]
		body, err := json.Marshal(map[string]string{"customer_id": c.id, "currency": simCurrency})
		if err != nil {
			return "POST " + accountsPath + ": " + err.Error()
		}
		return snd.retrying(ctx, func() (string, bool) {
			status, ans, err := snd.post(ctx, -1, s.accountsURL, s.restHdr, body)
			if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
				msg, transient := httpFailure("POST "+accountsPath+" for "+c.id, status, ans, err)
				if status == http.StatusUnauthorized || status == http.StatusForbidden {
					msg += " (the token must be a valid write token)"
				}
				return msg, transient
			}
			a, err := decodeAccount(ans, c.id)
			if err != nil {
				return "POST " + accountsPath + ": " + err.Error(), false
			}
			c.start = *a.BalanceMinor
			return "", false
		})
	})
	if fail != "" {
		return fmt.Errorf("%w: opening accounts: %s", ErrSetup, fail)
	}
	return nil
}

// checkBalances reads every customer's balance and returns the mismatches,
// sorted by customer id. Balances that cannot be read count as errors.
func (s *sim) checkBalances(ctx context.Context) []Mismatch {
	var (
		mu  sync.Mutex
		out = []Mismatch{}
	)
	s.forEachCustomer(ctx, func(snd *sender, i int) string {
		c := &s.customers[i]
		u := *s.accountsURL
		u.RawQuery = "customer_id=" + url.QueryEscape(c.id) + "&currency=" + simCurrency
		var got int64
		fail := snd.retrying(ctx, func() (string, bool) {
			status, ans, err := snd.do(ctx, -1, http.MethodGet, &u, s.restHdr, nil)
			if err != nil || status != http.StatusOK {
				return httpFailure("GET "+accountsPath+" for "+c.id, status, ans, err)
			}
			a, err := decodeAccount(ans, c.id)
			if err != nil {
				return "GET " + accountsPath + ": " + err.Error(), false
			}
			got = *a.BalanceMinor
			return "", false
		})
		if fail != "" {
			s.errs.add("balance not checked: " + fail)
			return "" // check the other customers all the same
		}
		s.checked.Add(1)
		s.actualTotal.Add(got - c.start)
		want := c.start + c.want.Load()
		upTo := want + c.maybe.Load() + c.dropped.Load()
		if got < want || got > upTo {
			m := Mismatch{CustomerID: c.id, Want: want, Got: got}
			if upTo != want {
				m.WantUpTo = upTo
			}
			mu.Lock()
			out = append(out, m)
			mu.Unlock()
		}
		return ""
	})
	slices.SortFunc(out, func(a, b Mismatch) int { return strings.Compare(a.CustomerID, b.CustomerID) })
	return out
}
