package ports_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tiyn/tiyn/ports"
)

func TestSettleReadAheadAccumulates(t *testing.T) {
	k := func(p string) ports.SettleKey { return ports.SettleKey{PaymentID: p, DedupeKey: "d-" + p} }
	ctx := context.Background()
	if got := ports.SettleReadAhead(ctx); got != nil {
		t.Fatalf("empty context names %v", got)
	}
	if ports.WithSettleReadAhead(ctx) != ctx {
		t.Error("naming nothing returned a new context")
	}
	one := ports.WithSettleReadAhead(ctx, k("a"))
	two := ports.WithSettleReadAhead(one, k("b"), k("c"))
	other := ports.WithSettleReadAhead(one, k("x"))
	if got := ports.SettleReadAhead(two); !slices.Equal(got, []ports.SettleKey{k("a"), k("b"), k("c")}) {
		t.Errorf("two = %v", got)
	}
	// Siblings never see each other's keys (no shared backing array).
	if got := ports.SettleReadAhead(other); !slices.Equal(got, []ports.SettleKey{k("a"), k("x")}) {
		t.Errorf("other = %v", got)
	}
	if got := ports.SettleReadAhead(one); !slices.Equal(got, []ports.SettleKey{k("a")}) {
		t.Errorf("one = %v", got)
	}
}

func TestAccountReadAheadAccumulates(t *testing.T) {
	k := func(c string) ports.AccountKey { return ports.AccountKey{CustomerID: c} }
	ctx := context.Background()
	if got := ports.AccountReadAhead(ctx); got != nil {
		t.Fatalf("empty context names %v", got)
	}
	one := ports.WithAccountReadAhead(ctx, k("a"))
	two := ports.WithAccountReadAhead(one, k("b"))
	other := ports.WithAccountReadAhead(one, k("x"))
	if got := ports.AccountReadAhead(two); !slices.Equal(got, []ports.AccountKey{k("a"), k("b")}) {
		t.Errorf("two = %v", got)
	}
	if got := ports.AccountReadAhead(other); !slices.Equal(got, []ports.AccountKey{k("a"), k("x")}) {
		t.Errorf("other = %v", got)
	}
	// The two kinds of keys do not mix.
	if got := ports.SettleReadAhead(two); got != nil {
		t.Errorf("settle keys %v in a context naming only accounts", got)
	}
}
