package rest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
)

// Role is what a token may do.
type Role string

// Roles, each a superset of the one before: read < write < operator.
const (
	// RoleRead may call GET routes only.
	RoleRead Role = "read"
	// RoleWrite is the back office: it may also open accounts and debit
	// them.
	RoleWrite Role = "write"
	// RoleOperator is a person working the exceptions and the accounts: it
	// may do everything write may, plus resolve exceptions (credit or
	// dismiss, propose, approve, reject), block, unblock and close
	// accounts, reconcile and close business days.
	RoleOperator Role = "operator"
)

// Roles lists the roles, least first.
func Roles() []Role { return []Role{RoleRead, RoleWrite, RoleOperator} }

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleOperator:
		return 3
	}
	return 0
}

// allows reports whether a token with role r may call a route needing need.
func (r Role) allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// Allows reports whether a token with role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.allows(need) }

// Limits on configured tokens.
const (
	// MinTokenSecretLen: a bearer token shorter than 16 bytes is guessable;
	// refuse it at start-up rather than run with it.
	MinTokenSecretLen = 16
	// MaxTokenSecretLen bounds a secret so a mistaken file does not become
	// a token.
	MaxTokenSecretLen = 1024
	// MaxTokenNameLen bounds a token name: it is the actor in the audit
	// trail and in logs.
	MaxTokenNameLen = 64
)

// Token is one configured bearer token. Name identifies the caller in the
// audit trail and logs; Secret is what the caller presents.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

// String shows the token without its secret, so printing a Token (or a
// slice of them) by mistake cannot leak it.
func (t Token) String() string { return t.Name + ":" + string(t.Role) + ":<redacted>" }

// GoString is String for %#v.
func (t Token) GoString() string { return "rest.Token{" + t.String() + "}" }

// LogValue keeps the secret out of structured logs.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", t.Name), slog.String("role", string(t.Role)))
}

// ParseTokens reads the TIYN_API_TOKENS syntax "NAME:ROLE:TOKEN[,NAME:ROLE:TOKEN…]".
// Newlines separate entries too (for TIYN_API_TOKENS_FILE); blank entries
// and entries starting with '#' are ignored. It refuses unknown roles,
// duplicate names or secrets, and secrets shorter than MinTokenSecretLen.
// Errors name the entry by its position and never repeat a secret (nor the
// role or an invalid name, in case fields were swapped).
func ParseTokens(s string) ([]Token, error) {
	var (
		out     []Token
		byName  = map[string]int{}
		bySHA   = map[[sha256.Size]byte]int{}
		entries = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
		pos     = 0
	)
	for _, raw := range entries {
		entry := strings.TrimSpace(raw)
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		pos++
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("API token entry %d: want NAME:ROLE:TOKEN, found %d field(s)", pos, len(parts))
		}
		name, role, secret := strings.TrimSpace(parts[0]), Role(strings.TrimSpace(parts[1])), strings.TrimSpace(parts[2])
		if err := validateTokenName(name); err != nil {
			return nil, fmt.Errorf("API token entry %d: %w", pos, err)
		}
		if role.rank() == 0 {
			return nil, fmt.Errorf("API token entry %d (%s): unknown role; want %q, %q or %q", pos, name, RoleRead, RoleWrite, RoleOperator)
		}
		switch {
		case secret == "":
			return nil, fmt.Errorf("API token entry %d (%s): empty token", pos, name)
		case len(secret) < MinTokenSecretLen:
			return nil, fmt.Errorf("API token entry %d (%s): token shorter than %d bytes", pos, name, MinTokenSecretLen)
		case len(secret) > MaxTokenSecretLen:
			return nil, fmt.Errorf("API token entry %d (%s): token longer than %d bytes", pos, name, MaxTokenSecretLen)
		case strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return nil, fmt.Errorf("API token entry %d (%s): token contains a space or control character", pos, name)
		}
		if prev, dup := byName[name]; dup {
			return nil, fmt.Errorf("API token entry %d: duplicate name %q (also entry %d)", pos, name, prev)
		}
		digest := sha256.Sum256([]byte(secret))
		if prev, dup := bySHA[digest]; dup {
			return nil, fmt.Errorf("API token entry %d (%s): same token as entry %d", pos, name, prev)
		}
		byName[name], bySHA[digest] = pos, pos
		out = append(out, Token{Name: name, Role: role, Secret: secret})
	}
	return out, nil
}

// validateTokenName allows names that are safe in logs and audit rows:
// letters, digits, '.', '_' and '-'.
func validateTokenName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > MaxTokenNameLen {
		return fmt.Errorf("name longer than %d bytes", MaxTokenNameLen)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("name may hold only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// authenticator checks bearer tokens in constant time. It compares SHA-256
// digests, so every comparison has the same length whatever was presented,
// and it compares against every configured token, so the time taken does
// not tell which one (if any) matched.
type authenticator struct {
	tokens  []Token
	digests [][sha256.Size]byte
	// compare is subtle.ConstantTimeCompare; a field so that an internal
	// test can count that every token is compared.
	compare func(a, b []byte) int
}

func newAuthenticator(tokens []Token) *authenticator {
	a := &authenticator{compare: subtle.ConstantTimeCompare}
	for _, t := range tokens {
		a.tokens = append(a.tokens, t)
		a.digests = append(a.digests, sha256.Sum256([]byte(t.Secret)))
	}
	return a
}

// match returns the token whose secret is presented.
func (a *authenticator) match(presented string) (Token, bool) {
	d := sha256.Sum256([]byte(presented))
	found := -1
	for i := range a.digests {
		eq := a.compare(d[:], a.digests[i][:])
		unset := subtle.ConstantTimeEq(int32(found), -1)
		found = subtle.ConstantTimeSelect(eq&unset, i, found)
	}
	if found < 0 {
		return Token{}, false
	}
	return a.tokens[found], true
}

// authenticate reads "Authorization: Bearer <token>" and returns the
// matching token or an unauthorized error.
func (a *authenticator) authenticate(r *http.Request) (Token, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return Token{}, errUnauthorized("missing Authorization: Bearer token", false)
	}
	scheme, credentials, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, errUnauthorized("the Authorization header must use the Bearer scheme", true)
	}
	credentials = strings.TrimSpace(credentials)
	if credentials == "" {
		return Token{}, errUnauthorized("empty bearer token", true)
	}
	tok, ok := a.match(credentials)
	if !ok {
		return Token{}, errUnauthorized("invalid bearer token", true)
	}
	return tok, nil
}

type actorKey struct{}

type actorSlotKey struct{}

// withActor stores the authenticated token name in ctx.
func withActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// ContextWithActorSlot returns ctx with an empty slot that the REST handler
// fills with the authenticated token name. A logging middleware wrapped
// around the handler installs it before calling the handler and reads it
// with ActorFrom afterwards: a context value set deeper in the chain is
// not otherwise visible to the code that called it.
func ContextWithActorSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, actorSlotKey{}, new(atomic.Pointer[string]))
}

// setActorSlot fills the slot installed by ContextWithActorSlot, if any.
func setActorSlot(ctx context.Context, name string) {
	if slot, ok := ctx.Value(actorSlotKey{}).(*atomic.Pointer[string]); ok {
		slot.Store(&name)
	}
}

// ActorFrom returns the name of the token that authenticated the request
// ("" before authentication or when it failed). It works on the handler's
// own request context and on a context prepared with ContextWithActorSlot.
func ActorFrom(ctx context.Context) string {
	if name, ok := ctx.Value(actorKey{}).(string); ok {
		return name
	}
	if slot, ok := ctx.Value(actorSlotKey{}).(*atomic.Pointer[string]); ok {
		if p := slot.Load(); p != nil {
			return *p
		}
	}
	return ""
}

// Authenticator matches a presented token secret against the configured
// tokens, in constant time (see authenticator), for another driving
// adapter that takes the same tokens in another way: the operator
// console's login form.
type Authenticator struct{ a *authenticator }

// NewAuthenticator returns an Authenticator of tokens.
func NewAuthenticator(tokens []Token) *Authenticator {
	return &Authenticator{a: newAuthenticator(tokens)}
}

// Match returns the token whose secret is presented, comparing it with
// every configured token.
func (a *Authenticator) Match(secret string) (Token, bool) { return a.a.match(secret) }

// SetActor names the caller of a request for the access log, as the REST
// handler does for a bearer token: it fills the slot ContextWithActorSlot
// installed, if any.
func SetActor(ctx context.Context, name string) { setActorSlot(ctx, name) }
