package monetix

import (
	"fmt"

	"github.com/tiyn/tiyn/domain"
)

// ProviderName is domain.Channel.Provider for every deposit this adapter
// opens or settles.
const ProviderName = "monetix"

// MaxMethodNameLen bounds a method name (it is stored in every deposit's
// channel and in the clearing account id).
const MaxMethodNameLen = 64

// Method is a terminal payment method of the platform, as data: its name on
// the wire, its currency and its per-payment limits in minor units. The
// handler's registry of methods is Config.Methods, so another terminal method
// of the same platform is one more Method value (see the package doc).
type Method struct {
	// Name is the wire value of check_deposit's payment_method and of the
	// callback's payment.method, e.g. "kassa24".
	Name string
	// Currency is the only currency the method accepts.
	Currency domain.Currency
	// Limits are the platform's per-payment limits for the method; a
	// project may override them (Project.Limits).
	Limits domain.AmountLimits
	// Description is answered in check_deposit's "description".
	Description string
}

// Kassa24 is the Cash-in Kazakhstan terminal method: KZT only, purchases of
// 1.00 to 500,000.00 KZT (100 to 50,000,000 tiyn), per the method page.
var Kassa24 = Method{
	Name:        "kassa24",
	Currency:    domain.KZT,
	Limits:      domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000},
	Description: "Deposit via Kassa24 terminal",
}

// Validate checks that m can be served: a non-empty name of ASCII letters,
// digits and punctuation other than ':' (it becomes part of the clearing
// account id; no space or control character), a registered currency and
// valid limits.
func (m Method) Validate() error {
	if m.Name == "" || len(m.Name) > MaxMethodNameLen {
		return fmt.Errorf("%w: method name must have 1..%d bytes", domain.ErrInvalidInput, MaxMethodNameLen)
	}
	for i := 0; i < len(m.Name); i++ {
		if c := m.Name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("%w: method name %q may hold only ASCII letters, digits and punctuation other than ':' (no space, no control or non-ASCII character)", domain.ErrInvalidInput, m.Name)
		}
	}
	if m.Currency.IsZero() {
		return fmt.Errorf("%w: method %s has no currency", domain.ErrInvalidInput, m.Name)
	}
	if m.Limits.MinMinor <= 0 || m.Limits.MaxMinor < m.Limits.MinMinor {
		return fmt.Errorf("%w: method %s: limits need 0 < min (%s %s) <= max (%s %s)", domain.ErrInvalidInput, m.Name,
			domain.NewAmount(m.Limits.MinMinor, m.Currency), m.Currency, domain.NewAmount(m.Limits.MaxMinor, m.Currency), m.Currency)
	}
	return nil
}

// limitsFor returns the per-payment limits of m for project p: the
// project's own when it has them, else the method's.
func (m Method) limitsFor(p Project) domain.AmountLimits {
	if p.Limits != nil {
		return *p.Limits
	}
	return m.Limits
}
