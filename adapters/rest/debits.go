package rest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// MaxIdempotencyKeyLen bounds the Idempotency-Key header (the use case
// enforces the same bound).
const MaxIdempotencyKeyLen = 255

// Header names of the idempotent debit.
const (
	headerIdempotencyKey      = "Idempotency-Key"
	headerIdempotentReplayed  = "Idempotent-Replayed"
	idempotencyKeyDescription = "1 to 255 visible ASCII characters, ! to ~ (letters, digits, punctuation): no spaces, no control or non-ASCII characters"
)

type debitRequest struct {
	Amount      decimalText `json:"amount"`
	Description string      `json:"description"`
}

// debit: POST /v1/accounts/{id}/debits with an Idempotency-Key header.
// 201 for a new debit; 200 with "replayed": true and Idempotent-Replayed:
// true for a repeat of the same request under the same key; 409 for the
// same key with another request.
func (a *api) debit(w http.ResponseWriter, r *http.Request) error {
	key := r.Header.Get(headerIdempotencyKey)
	if err := validateIdempotencyKey(key); err != nil {
		return err
	}
	var req debitRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if !req.Amount.set {
		return errInvalidAmount("amount is required, as a decimal string such as \"150.00\"")
	}
	if err := validateText("description", req.Description, domain.MaxDescriptionLen); err != nil {
		return err
	}
	id := r.PathValue("id")
	// The amount's meaning (how many decimals) depends on the account's
	// currency, so the account is read first.
	acc, err := a.ledger.Account(r.Context(), id)
	if err != nil {
		return notFound(err, "account", id)
	}
	amount, err := domain.ParsePositiveAmount(req.Amount.text, acc.Currency())
	if err != nil {
		return err
	}
	res, err := a.ledger.Debit(r.Context(), ports.Debit{
		AccountID:      acc.ID(),
		Amount:         amount,
		Description:    req.Description,
		IdempotencyKey: key,
		RequestHash:    debitRequestHash(acc.ID(), amount, req.Description),
		Actor:          ActorFrom(r.Context()),
	})
	if errors.Is(err, domain.ErrInsufficientFunds) {
		return a.insufficientFunds(r, acc, amount)
	}
	if err != nil {
		return notFound(err, "account", id)
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
		w.Header().Set(headerIdempotentReplayed, "true")
	}
	return a.writeJSON(w, status, viewDebit(res))
}

// validateIdempotencyKey requires the header and keeps it to printable
// ASCII: it is stored, logged and compared byte for byte.
func validateIdempotencyKey(key string) error {
	if key == "" {
		return errInvalidRequest("the %s header is required (%s)", headerIdempotencyKey, idempotencyKeyDescription)
	}
	if len(key) > MaxIdempotencyKeyLen {
		return errInvalidRequest("the %s header is longer than %d bytes", headerIdempotencyKey, MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			found := "a byte outside ! to ~"
			if key[i] == ' ' {
				found = "a space"
			}
			return errInvalidRequest("the %s header has %s at byte %d; it must be %s",
				headerIdempotencyKey, found, i+1, idempotencyKeyDescription)
		}
	}
	return nil
}

// insufficientFunds says, in major units with the currency, what the
// account holds (read again: the refused debit changed nothing) and what
// the debit asked for.
func (a *api) insufficientFunds(r *http.Request, acc domain.Account, amount domain.Amount) error {
	balance := acc.Balance()
	if now, err := a.ledger.Account(r.Context(), acc.ID()); err == nil {
		balance = now.Balance()
	}
	return newHTTPError(http.StatusUnprocessableEntity, CodeInsufficientFunds,
		"insufficient funds: account %s holds %s %s, less than the debit of %s %s",
		acc.ID(), balance, balance.Currency().Code(), amount, amount.Currency().Code())
}

// debitRequestHash identifies "the same request" for idempotency: the hex
// SHA-256 of the canonical request (account, amount in minor units and
// currency, description), not of the raw bytes, so a retry that differs
// only in whitespace, key order or "150.0" versus "150.00" is a replay.
// Fields are NUL-separated, which cannot occur inside any of them.
func debitRequestHash(accountID string, amount domain.Amount, description string) string {
	h := sha256.New()
	for _, part := range []string{"debit/v1", accountID, strconv.FormatInt(amount.Minor(), 10), amount.Currency().Code(), description} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
