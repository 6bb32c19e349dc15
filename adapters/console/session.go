package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
)

// Sessions live in the server's memory: a restart logs everyone out, and
// with several instances behind one address a browser must keep to one
// (sticky sessions) or log in again. That is the price of keeping no
// session secret in the database; an operator logs in with a token.
//
// The cookie holds 32 random bytes; the server keeps only their SHA-256,
// so the session table does not hold what a cookie would need to present.
// A session ends at logout, after IdleTimeout without a request, or
// MaxAge after login, whichever comes first.

// Session defaults.
const (
	// DefaultIdleTimeout ends a session nobody used for 30 minutes.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMaxAge ends every session 12 hours after login: a working day.
	DefaultMaxAge = 12 * time.Hour
	// DefaultMaxSessions bounds the session table. Only a valid token can
	// create a session, so this only stops a token holder (or a script
	// holding one) from growing the table without end: at the bound, the
	// least recently used session is dropped.
	DefaultMaxSessions = 10_000
	// sessionIDBytes is the randomness of a session id and a CSRF token.
	sessionIDBytes = 32
)

// sessionCookie is the cookie holding the session id.
const sessionCookie = "tiyn_session"

type sessionKey [sha256.Size]byte

// session is one logged-in browser.
type session struct {
	key      sessionKey
	token    rest.Token // name and role only: Secret is cleared
	csrf     string
	created  time.Time
	lastSeen time.Time
	flash    *flash // a one-shot message for the next page
}

// flash is a message shown once after a redirect (post/redirect/get).
type flash struct {
	key    string // message key
	args   []any
	err    bool
	detail string
}

// sessionStore is the table of sessions.
type sessionStore struct {
	mu      sync.Mutex
	byKey   map[sessionKey]*session
	idle    time.Duration
	maxAge  time.Duration
	max     int
	now     func() time.Time
	randomF func([]byte) error
}

func newSessionStore(idle, maxAge time.Duration, max int, now func() time.Time) *sessionStore {
	return &sessionStore{
		byKey: map[sessionKey]*session{}, idle: idle, maxAge: maxAge, max: max, now: now,
		randomF: func(b []byte) error { _, err := rand.Read(b); return err },
	}
}

func (s *sessionStore) random() (string, error) {
	b := make([]byte, sessionIDBytes)
	if err := s.randomF(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func keyOf(id string) sessionKey { return sha256.Sum256([]byte(id)) }

// create starts a session for tok and returns its cookie value.
func (s *sessionStore) create(tok rest.Token) (string, *session, error) {
	id, err := s.random()
	if err != nil {
		return "", nil, err
	}
	csrf, err := s.random()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	tok.Secret = ""
	sess := &session{key: keyOf(id), token: tok, csrf: csrf, created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byKey) >= s.max {
		s.sweepLocked(now)
	}
	for len(s.byKey) >= s.max {
		s.dropLeastRecentLocked()
	}
	s.byKey[sess.key] = sess
	return id, sess, nil
}

// get returns the live session of a cookie value and marks it used; nil
// when there is none or it expired (an expired one is removed).
func (s *sessionStore) get(id string) *session {
	if id == "" {
		return nil
	}
	k := keyOf(id)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byKey[k]
	if !ok {
		return nil
	}
	if s.expired(sess, now) {
		delete(s.byKey, k)
		return nil
	}
	sess.lastSeen = now
	return sess
}

func (s *sessionStore) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) >= s.idle || now.Sub(sess.created) >= s.maxAge
}

// end removes a session (logout).
func (s *sessionStore) end(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byKey, sess.key)
}

// setFlash and takeFlash pass one message to the next page of a session.
func (s *sessionStore) setFlash(sess *session, f flash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.flash = &f
}

func (s *sessionStore) takeFlash(sess *session) *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := sess.flash
	sess.flash = nil
	return f
}

func (s *sessionStore) sweepLocked(now time.Time) {
	for k, sess := range s.byKey {
		if s.expired(sess, now) {
			delete(s.byKey, k)
		}
	}
}

func (s *sessionStore) dropLeastRecentLocked() {
	var (
		oldest *session
	)
	for _, sess := range s.byKey {
		if oldest == nil || sess.lastSeen.Before(oldest.lastSeen) {
			oldest = sess
		}
	}
	if oldest != nil {
		delete(s.byKey, oldest.key)
	}
}

// validCSRF compares a form's CSRF token with the session's in constant
// time (over SHA-256 digests, so the length of what was sent tells
// nothing either).
func validCSRF(sess *session, presented string) bool {
	if sess == nil || presented == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(sess.csrf))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
